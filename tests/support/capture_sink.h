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

/* Emitters that write into @out_rows / @late_rows (each buffer: 8 rows), then the job's keyed
 * operator opened on them as worker 0 would, for a test to drive by hand.  Needs the job's
 * insides: include core/job_priv.h first. */
static void capture_open_keyed(struct weir_job *job, struct captured *out_rows,
			       struct captured *late_rows, struct weir_emitter *out,
			       uint8_t *out_buffer, struct weir_emitter *late,
			       uint8_t *late_buffer, void **instance)
{
	out_rows->record_length = job->out_schema.record_length;
	late_rows->record_length = job->exchange_schema.record_length;
	assert_true(out_rows->record_length <= CAPTURE_ROW_LENGTH_MAX);
	assert_true(late_rows->record_length <= CAPTURE_ROW_LENGTH_MAX);
	*out = (struct weir_emitter){.records = out_buffer,
				     .capacity = 8,
				     .record_length = out_rows->record_length,
				     .sink = &capture_vtable,
				     .sink_instance = out_rows};
	*late = (struct weir_emitter){.records = late_buffer,
				      .capacity = 8,
				      .record_length = late_rows->record_length,
				      .sink = &capture_vtable,
				      .sink_instance = late_rows};
	assert_int_equal(job->keyed_vtable->open(job->keyed_ctx, 0, WEIR_MEM_ARENA_DEFAULT, out,
						 late, instance),
			 0);
}

/* A generator that is never pulled: a job needs a source to configure its operators. */
static void unused_generate(void *ctx, uint64_t first, uint64_t step, uint32_t count,
			    uint8_t *records, uint32_t record_length)
{
	(void)ctx, (void)first, (void)step, (void)count, (void)records, (void)record_length;
}

#endif
