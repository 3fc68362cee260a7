/* Goal: the window operator's event-time semantics, exactly: which rows fire when, what
 * tumbling and sliding windows contain, how late events within the allowed lateness re-emit an
 * updated row, how later ones go to the late output, and that the state budget refuses (and
 * counts) instead of growing past it.
 *
 * Method: build a real job (generator source, key_by card, window) only to configure the
 * operator, then drive the operator's vtable by hand on this thread: process() records we
 * write, advance() watermarks we choose, and capture rows through a fake sink. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/job_priv.h"
#include "core/mem.h"
#include "io/sink.h"
#include "tests/support/capture_sink.h"


static struct captured out_rows;
static struct captured late_rows;

struct fixture {
	struct weir_job *job;
	struct weir_emitter out;
	struct weir_emitter late;
	uint8_t out_buffer[8 * 256];
	uint8_t late_buffer[8 * 256];
	void *instance;
};

static struct fixture fx;

/* Schema of the events: ts:i64, card:str16, amount:f64. */
static void fixture_open(const char *window, int64_t lateness, const char *aggregates,
			 uint64_t budget_mib)
{
	memset(&fx, 0, sizeof(fx));
	memset(&out_rows, 0, sizeof(out_rows));
	memset(&late_rows, 0, sizeof(late_rows));
	struct weir_job_options options;
	weir_job_options_init(&options);
	options.state_budget_mib = budget_mib;
	assert_int_equal(weir_job_create(&fx.job, &options), 0);
	assert_int_equal(weir_job_source_generator(fx.job, "ts:i64,card:str16,amount:f64",
						   unused_generate, NULL, 0),
			 0);
	assert_int_equal(weir_job_key_by(fx.job, "card"), 0);
	struct weir_window_spec spec = {.time_column = "ts",
					.allowed_lateness = lateness,
					.aggregates = aggregates};
	assert_int_equal(weir_window_spec_parse(&spec, window), 0);
	assert_int_equal(weir_job_window(fx.job, &spec), 0);
	capture_open_keyed(fx.job, &out_rows, &late_rows, &fx.out, fx.out_buffer, &fx.late,
			   fx.late_buffer, &fx.instance);
}

static void fixture_close(void)
{
	fx.job->keyed_vtable->close(fx.job->keyed_ctx, fx.instance);
	weir_job_destroy(fx.job);
}

static void event(int64_t ts, const char *card, double amount)
{
	const struct weir_schema *schema = &fx.job->exchange_schema;
	uint8_t record[256];
	memset(record, 0, sizeof(record));
	weir_field_set_i64(&schema->fields[0], record, ts);
	record[schema->fields[1].offset] = (uint8_t)strlen(card);
	memcpy(record + schema->fields[1].offset + 1, card, strlen(card));
	weir_field_set_f64(&schema->fields[2], record, amount);
	fx.job->keyed_vtable->process(fx.instance, record, 1);
	weir_emitter_flush(&fx.out);
	weir_emitter_flush(&fx.late);
}

static void advance(int64_t watermark)
{
	fx.job->keyed_vtable->advance(fx.instance, watermark);
}

static const struct weir_field *out_field(const char *name)
{
	int index = weir_schema_find(&fx.job->out_schema, name);
	assert_true(index >= 0);
	return &fx.job->out_schema.fields[index];
}

static int64_t row_i64(uint32_t row, const char *name)
{
	return weir_field_get_i64(out_field(name), out_rows.rows[row]);
}

static double row_f64(uint32_t row, const char *name)
{
	return weir_field_get_f64(out_field(name), out_rows.rows[row]);
}

/* The row for (window_start, card), or -1. */
static int find_row(int64_t start, const char *card, uint32_t from)
{
	for (uint32_t r = from; r < out_rows.count; r++) {
		uint32_t length;
		const char *text = weir_field_get_str(out_field("card"), out_rows.rows[r], &length);
		if (row_i64(r, "window_start") == start && length == strlen(card) &&
		    memcmp(text, card, length) == 0)
			return (int)r;
	}
	return -1;
}

static void tumbling_fires_at_window_end(void **state)
{
	(void)state;
	fixture_open("tumbling:10", 0, "count,sum:amount,min:amount,max:amount,avg:amount", 64);
	event(1, "a", 1.0);
	event(5, "a", 2.0);
	event(12, "a", 4.0);
	event(3, "b", 1.5);
	advance(9);
	assert_int_equal(out_rows.count, 0); /* [0,10) needs the clock at 10 */
	advance(10);
	assert_int_equal(out_rows.count, 2);
	int a = find_row(0, "a", 0);
	int b = find_row(0, "b", 0);
	assert_true(a >= 0 && b >= 0);
	assert_int_equal(row_i64((uint32_t)a, "window_end"), 10);
	assert_int_equal(row_i64((uint32_t)a, "count"), 2);
	assert_true(row_f64((uint32_t)a, "sum_amount") == 3.0);
	assert_true(row_f64((uint32_t)a, "min_amount") == 1.0);
	assert_true(row_f64((uint32_t)a, "max_amount") == 2.0);
	assert_true(row_f64((uint32_t)a, "avg_amount") == 1.5);
	assert_int_equal(row_i64((uint32_t)b, "count"), 1);
	advance(INT64_MAX); /* end of stream fires the rest */
	assert_int_equal(out_rows.count, 3);
	int later = find_row(10, "a", 0);
	assert_true(later >= 0);
	assert_true(row_f64((uint32_t)later, "sum_amount") == 4.0);
	fixture_close();
}

static void sliding_counts_each_event_in_every_window(void **state)
{
	(void)state;
	fixture_open("sliding:10,5", 0, "count,sum:amount", 64);
	event(7, "a", 1.0);  /* windows [0,10) and [5,15) */
	event(12, "a", 2.0); /* windows [5,15) and [10,20) */
	event(-3, "b", 4.0); /* windows [-10,0) and [-5,5) */
	advance(INT64_MAX);
	assert_int_equal(out_rows.count, 5); /* a: [0,10) [5,15) [10,20); b: two */
	assert_int_equal(row_i64((uint32_t)find_row(0, "a", 0), "count"), 1);
	assert_int_equal(row_i64((uint32_t)find_row(5, "a", 0), "count"), 2);
	assert_true(row_f64((uint32_t)find_row(5, "a", 0), "sum_amount") == 3.0);
	assert_int_equal(row_i64((uint32_t)find_row(10, "a", 0), "count"), 1);
	assert_true(find_row(-10, "b", 0) >= 0);
	assert_true(find_row(-5, "b", 0) >= 0);
	assert_int_equal(find_row(15, "a", 0), -1);
	/* Windows fire in order of their end. */
	for (uint32_t r = 1; r < out_rows.count; r++)
		assert_true(row_i64(r, "window_end") >= row_i64(r - 1, "window_end"));
	fixture_close();
}

static void sliding_fires_progressively(void **state)
{
	(void)state;
	fixture_open("sliding:6,2", 0, "count", 64);
	for (int64_t ts = 0; ts < 20; ts++)
		event(ts, "k", 1.0);
	advance(6);
	assert_int_equal(out_rows.count, 3); /* [-4,2) [-2,4) [0,6): ends 2, 4, 6 */
	assert_int_equal(row_i64(0, "count"), 2);
	assert_int_equal(row_i64(1, "count"), 4);
	assert_int_equal(row_i64(2, "window_start"), 0);
	assert_int_equal(row_i64(2, "count"), 6);
	advance(7);
	assert_int_equal(out_rows.count, 3);
	advance(8);
	assert_int_equal(out_rows.count, 4);
	assert_int_equal(row_i64(3, "window_start"), 2);
	assert_int_equal(row_i64(3, "count"), 6);
	fixture_close();
}

static void late_event_within_lateness_re_emits(void **state)
{
	(void)state;
	fixture_open("tumbling:10", 5, "count,sum:amount", 64);
	event(3, "a", 1.0);
	advance(10);
	assert_int_equal(out_rows.count, 1);
	assert_int_equal(row_i64(0, "count"), 1);
	event(4, "a", 2.0); /* late, but the clock (10) is before 10 + 5 */
	assert_int_equal(out_rows.count, 2);
	assert_int_equal(row_i64(1, "window_start"), 0);
	assert_int_equal(row_i64(1, "count"), 2);
	assert_true(row_f64(1, "sum_amount") == 3.0);
	assert_int_equal(late_rows.count, 0);
	advance(15); /* the window's state is gone now */
	event(5, "a", 4.0);
	assert_int_equal(out_rows.count, 2);
	assert_int_equal(late_rows.count, 1);
	assert_int_equal(weir_field_get_i64(&fx.job->exchange_schema.fields[0], late_rows.rows[0]),
			 5);
	advance(INT64_MAX);
	fixture_close();
}

static void late_counters_reach_the_job(void **state)
{
	(void)state;
	fixture_open("tumbling:10", 5, "count", 64);
	event(3, "a", 1.0);
	advance(12);
	event(4, "a", 1.0);  /* within lateness: update */
	advance(20);
	event(1, "a", 1.0);  /* too late: dropped to the late output */
	event(25, "a", 1.0); /* on time */
	advance(INT64_MAX);
	fx.job->keyed_vtable->close(fx.job->keyed_ctx, fx.instance);
	struct weir_job_stats stats;
	weir_job_get_stats(fx.job, &stats);
	assert_int_equal(stats.late_updates, 1);
	assert_int_equal(stats.late_dropped, 1);
	assert_int_equal(stats.state_full, 0);
	weir_job_destroy(fx.job);
}

static void sliding_late_update_re_emits_every_fired_window(void **state)
{
	(void)state;
	fixture_open("sliding:10,5", 100, "count", 64);
	event(7, "a", 1.0);
	advance(15); /* fires [0,10) and [5,15) */
	uint32_t before = out_rows.count;
	assert_int_equal(before, 2);
	event(8, "a", 1.0);
	assert_int_equal(out_rows.count, before + 2);
	assert_int_equal(row_i64(before, "count"), 2);
	assert_int_equal(row_i64(before + 1, "count"), 2);
	advance(INT64_MAX);
	fixture_close();
}

static void state_budget_refuses_and_counts(void **state)
{
	(void)state;
	fixture_open("tumbling:1000", 0, "count", 1);
	char card[17];
	for (uint32_t i = 0; i < 40000; i++) {
		snprintf(card, sizeof(card), "k%u", i);
		event(1, card, 1.0);
	}
	advance(INT64_MAX);
	fx.job->keyed_vtable->close(fx.job->keyed_ctx, fx.instance);
	struct weir_job_stats stats;
	weir_job_get_stats(fx.job, &stats);
	assert_true(stats.state_full > 0);
	assert_true(stats.state_full < 40000);
	/* Every key the budget admitted has its row; nothing admitted was lost. */
	assert_int_equal(out_rows.count + stats.state_full, 40000);
	weir_job_destroy(fx.job);
}

/* distinct:COL is a HyperLogLog: nearly exact for small sets, within a few percent for large
 * ones, and merging panes (sliding windows) counts a value seen in two panes once. */
static void distinct_counts_approximately(void **state)
{
	(void)state;
	fixture_open("sliding:20,10", 0, "count,distinct:amount=amounts", 64);
	for (int i = 0; i < 7; i++)
		event(1 + i, "small", (double)(i % 7));
	for (int i = 0; i < 30000; i++)
		event(i % 20, "large", (double)(i % 5000));
	advance(INT64_MAX);
	int small = find_row(0, "small", 0);
	int large = find_row(0, "large", 0);
	assert_true(small >= 0 && large >= 0);
	int64_t small_estimate = row_i64((uint32_t)small, "amounts");
	int64_t large_estimate = row_i64((uint32_t)large, "amounts");
	print_message("distinct: 7 -> %lld, 5000 -> %lld\n", (long long)small_estimate,
		      (long long)large_estimate);
	assert_true(small_estimate >= 6 && small_estimate <= 8);
	assert_true(large_estimate > 5000 * 0.9 && large_estimate < 5000 * 1.1);
	assert_int_equal(row_i64((uint32_t)large, "count"), 30000);
	fixture_close();
}

static int build_window(const char *window, const char *time, const char *aggregates,
			int64_t lateness)
{
	struct weir_job *job;
	assert_int_equal(weir_job_create(&job, NULL), 0);
	assert_int_equal(weir_job_source_generator(job, "ts:i64,card:str16,amount:f64,f:f64",
						   unused_generate, NULL, 0),
			 0);
	assert_int_equal(weir_job_key_by(job, "card"), 0);
	struct weir_window_spec spec = {
		.time_column = time, .aggregates = aggregates, .allowed_lateness = lateness};
	int rc = weir_window_spec_parse(&spec, window);
	if (rc == 0)
		rc = weir_job_window(job, &spec);
	if (rc != 0)
		assert_true(strlen(weir_job_error(job)) > 0 || rc == -EINVAL);
	weir_job_destroy(job);
	return rc;
}

static void bad_specs_are_errors(void **state)
{
	(void)state;
	assert_int_equal(build_window("tumbling:10", "ts", "count,sum:amount", 0), 0);
	assert_int_equal(build_window("tumbling:0", "ts", "count", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:x", "ts", "count", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10x", "ts", "count", 0), -EINVAL);
	assert_int_equal(build_window("sliding:10", "ts", "count", 0), -EINVAL);
	assert_int_equal(build_window("sliding:10,20", "ts", "count", 0), -EINVAL);
	assert_int_equal(build_window("sliding:10,-1", "ts", "count", 0), -EINVAL);
	assert_int_equal(build_window("hopping:10", "ts", "count", 0), -EINVAL);
	assert_int_equal(build_window("sliding:100000,1", "ts", "count", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "nope", "count", 0), -ENOENT);
	assert_int_equal(build_window("tumbling:10", "amount", "count", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "sum:nope", 0), -ENOENT);
	assert_int_equal(build_window("tumbling:10", "ts", "sum:card", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "median:amount", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "count:amount", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "sum", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "count", -1), -EINVAL);
	assert_int_equal(build_window("sliding:10,5", "ts", "min:f,max:f,avg:amount", 0), 0);
	assert_int_equal(build_window("tumbling:10", "ts", "count=n,sum:amount=total", 0), 0);
	assert_int_equal(build_window("tumbling:10", "ts", "count,count", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "count=", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "count=card", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "distinct:card", 0), 0);
	assert_int_equal(build_window("tumbling:10", "ts", "distinct:nope", 0), -ENOENT);
	assert_int_equal(build_window("tumbling:10", "ts", "distinct", 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tumbling_fires_at_window_end),
		cmocka_unit_test(sliding_counts_each_event_in_every_window),
		cmocka_unit_test(sliding_fires_progressively),
		cmocka_unit_test(late_event_within_lateness_re_emits),
		cmocka_unit_test(late_counters_reach_the_job),
		cmocka_unit_test(sliding_late_update_re_emits_every_fired_window),
		cmocka_unit_test(state_budget_refuses_and_counts),
		cmocka_unit_test(bad_specs_are_errors),
		cmocka_unit_test(distinct_counts_approximately),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
