/* A sink for tests that drive a keyed operator's vtable by hand: rows land in memory (the
 * first CAPTURE_ROWS_MAX kept, all counted).  Include after <cmocka.h> and core/job.h. */
#ifndef WEIR_TESTS_CAPTURE_SINK_H
#define WEIR_TESTS_CAPTURE_SINK_H

#include <stdint.h>
#include <string.h>

#define CAPTURE_ROWS_MAX 4096
#define CAPTURE_ROW_LENGTH_MAX 256

struct captured {
	uint32_t count;
	uint32_t record_length;
	uint8_t rows[CAPTURE_ROWS_MAX][CAPTURE_ROW_LENGTH_MAX];
};

static void capture_write(void *instance, const uint8_t *records, uint32_t count)
{
	struct captured *into = instance;
	assert_true(into->record_length <= CAPTURE_ROW_LENGTH_MAX);
	for (uint32_t i = 0; i < count; i++, into->count++) {
		if (into->count < CAPTURE_ROWS_MAX) /* beyond that only counted */
			memcpy(into->rows[into->count], records + (size_t)i * into->record_length,
			       into->record_length);
	}
}

static const struct weir_sink_vtable capture_vtable = {.write = capture_write};

/* A generator that is never pulled: a job needs a source to configure its operators. */
static void unused_generate(void *ctx, uint64_t first, uint64_t step, uint32_t count,
			    uint8_t *records, uint32_t record_length)
{
	(void)ctx, (void)first, (void)step, (void)count, (void)records, (void)record_length;
}

#endif
