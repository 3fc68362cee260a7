/* Goal: whole jobs through the public API: a stateless job (no key_by) delivers exactly what
 * its operators keep, from every worker, with the memory source's events made up front; and
 * a job that is not complete is refused at run time with an error naming what is missing.
 *
 * Method: real jobs on 1 to 3 unpinned workers writing JSON lines to a temporary file, which
 * the test reads back and counts. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "weir/weir.h"

#define EVENTS 100000u

/* Event i: (ts = i, value = i % 10). */
static void fill(void *ctx, uint64_t first, uint64_t step, uint64_t count, uint8_t *records,
		 uint32_t record_length)
{
	(void)ctx;
	for (uint64_t k = 0; k < count; k++) {
		uint64_t event = first + k * step;
		int64_t values[2] = {(int64_t)event, (int64_t)(event % 10)};
		memcpy(records + k * record_length, values, sizeof(values));
	}
}

/* Keeps value == 3: a tenth of the events. */
static void keep_threes(void *ctx, const uint8_t *records, uint32_t count,
			uint32_t record_length, uint8_t *keep)
{
	(void)ctx;
	for (uint32_t i = 0; i < count; i++) {
		int64_t value;
		memcpy(&value, records + (size_t)i * record_length + 8, sizeof(value));
		keep[i] = value == 3;
	}
}

static uint64_t count_lines(const char *path, uint64_t *ts_sum)
{
	FILE *in = fopen(path, "r");
	assert_non_null(in);
	char line[256];
	uint64_t lines = 0;
	*ts_sum = 0;
	while (fgets(line, sizeof(line), in) != NULL) {
		const char *ts = strstr(line, "\"ts\":");
		assert_non_null(ts);
		*ts_sum += strtoull(ts + 5, NULL, 10);
		lines++;
	}
	fclose(in);
	return lines;
}

static void stateless_job_delivers_every_kept_record(void **state)
{
	(void)state;
	char path[] = "/tmp/weir-test-job-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	for (uint32_t workers = 1; workers <= 3; workers++) {
		struct weir_job_options options;
		weir_job_options_init(&options);
		options.worker_count = workers;
		options.pin_workers = false;
		struct weir_job *job;
		assert_int_equal(weir_job_create(&job, &options), 0);
		assert_int_equal(
			weir_job_source_memory(job, "ts:i64,value:i64", fill, NULL, EVENTS), 0);
		assert_int_equal(weir_job_filter(job, keep_threes, NULL), 0);
		assert_int_equal(weir_job_sink(job, path, WEIR_FORMAT_JSONL), 0);
		assert_int_equal(weir_job_run(job), 0);
		struct weir_job_stats stats;
		weir_job_get_stats(job, &stats);
		assert_int_equal(stats.events_in, EVENTS);
		assert_int_equal(stats.rows_out, EVENTS / 10);
		assert_true(stats.seconds > 0);
		weir_job_destroy(job);
		uint64_t ts_sum;
		assert_int_equal(count_lines(path, &ts_sum), EVENTS / 10);
		uint64_t expected = 0;
		for (uint64_t i = 3; i < EVENTS; i += 10)
			expected += i;
		assert_int_equal(ts_sum, expected); /* each kept event exactly once */
	}
	unlink(path);
}

static void incomplete_jobs_are_refused(void **state)
{
	(void)state;
	struct weir_job *job;
	assert_int_equal(weir_job_create(&job, NULL), 0);
	assert_int_equal(weir_job_run(job), -EINVAL); /* no source */
	assert_non_null(strstr(weir_job_error(job), "source"));
	assert_int_equal(weir_job_source_memory(job, "ts:i64,value:i64", fill, NULL, 10), 0);
	assert_int_equal(weir_job_source_memory(job, "ts:i64", fill, NULL, 10), -EEXIST);
	assert_int_equal(weir_job_run(job), -EINVAL); /* no sink */
	assert_non_null(strstr(weir_job_error(job), "sink"));
	assert_int_equal(weir_job_key_by(job, "value"), 0);
	assert_int_equal(weir_job_run(job), -EINVAL); /* key_by without a window */
	assert_non_null(strstr(weir_job_error(job), "window"));
	assert_int_equal(weir_job_source_memory(job, "ts:bogus", fill, NULL, 10), -EINVAL);
	weir_job_destroy(job);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stateless_job_delivers_every_kept_record),
		cmocka_unit_test(incomplete_jobs_are_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
