/* Goal: the window operator's event-time semantics, exactly: which rows fire when, what
 * tumbling and sliding windows contain, how late events within the allowed lateness re-emit an
 * updated row, how later ones go to the late output, and that the state budget refuses (and
 * counts) instead of growing past it.  And its checkpoints: an instance restored from a full
 * snapshot (and restored() at the snapshot's watermark) emits exactly what the original emits
 * from there on, rows and late events, for tumbling and sliding windows with and without
 * lateness; an incremental snapshot writes each cell changed since the last one once, and no
 * unchanged or evicted cell (before any snapshot: every cell); full + deltas replayed in order
 * (a later record of a cell wins) equal the original; restored() drops cells whose panes were
 * evicted at its watermark, so no window fires twice; each record's key group is that of its
 * key without the pane; a record of the wrong type or size is -EBADMSG, a restore past the
 * state budget -ENOSPC, and a store error stops the snapshot with its code.  The combiner
 * (two-phase aggregation) merges a call's records per key and pane into partial rows that
 * stand for every record once, and refuses what it cannot merge (distinct, a weight
 * column).
 *
 * Method: build a real job (generator source, key_by card, window) only to configure the
 * operator, then drive the operator's vtable by hand on this thread: process() records we
 * write, advance() watermarks we choose, and capture rows through a fake sink.  Checkpoints go
 * through weir_state_put into a fake store whose append() copies each record into memory; a
 * second instance of the same operator (the twin) restores them, then both get the same
 * events and watermarks and their rows are compared sorted (bytes, so sums must match to the
 * bit).  Random streams come from a printed seed (WEIR_SEED=n replays). */
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
#include "tests/support/test_rng.h"


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

/* A job whose events are ts:i64, card:str16, amount:f64, keyed by card, with the window. */
static struct weir_job *job_build(const char *window, int64_t lateness, const char *aggregates,
				  uint64_t budget_mib)
{
	struct weir_job *job = NULL;
	struct weir_job_options options;
	weir_job_options_init(&options);
	options.state_budget_mib = budget_mib;
	assert_int_equal(weir_job_create(&job, &options), 0);
	assert_int_equal(weir_job_source_generator(job, "ts:i64,card:str16,amount:f64",
						   unused_generate, NULL, 0),
			 0);
	assert_int_equal(weir_job_key_by(job, "card"), 0);
	struct weir_window_spec spec = {.time_column = "ts",
					.allowed_lateness = lateness,
					.aggregates = aggregates};
	assert_int_equal(weir_window_spec_parse(&spec, window), 0);
	assert_int_equal(weir_job_window(job, &spec), 0);
	return job;
}

static void fixture_open(const char *window, int64_t lateness, const char *aggregates,
			 uint64_t budget_mib)
{
	memset(&fx, 0, sizeof(fx));
	memset(&out_rows, 0, sizeof(out_rows));
	memset(&late_rows, 0, sizeof(late_rows));
	fx.job = job_build(window, lateness, aggregates, budget_mib);
	capture_open_keyed(fx.job, &out_rows, &late_rows, &fx.out, fx.out_buffer, &fx.late,
			   fx.late_buffer, &fx.instance);
}

static void fixture_close(void)
{
	fx.job->keyed_vtable->close(fx.job->keyed_ctx, fx.instance);
	weir_job_destroy(fx.job);
}

static void event_into(void *instance, struct weir_emitter *out, struct weir_emitter *late,
		       int64_t ts, const char *card, double amount)
{
	const struct weir_schema *schema = &fx.job->exchange_schema;
	uint8_t record[256];
	memset(record, 0, sizeof(record));
	weir_field_set_i64(&schema->fields[0], record, ts);
	record[schema->fields[1].offset] = (uint8_t)strlen(card);
	memcpy(record + schema->fields[1].offset + 1, card, strlen(card));
	weir_field_set_f64(&schema->fields[2], record, amount);
	fx.job->keyed_vtable->process(instance, record, 1);
	weir_emitter_flush(out);
	weir_emitter_flush(late);
}

static void event(int64_t ts, const char *card, double amount)
{
	event_into(fx.instance, &fx.out, &fx.late, ts, card, amount);
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

/* A job over ts, card, amount:f64, n:i64 keyed by card, windowed with @weight_column. */
static struct weir_job *weighted_job(const char *weight_column, int *window_rc)
{
	struct weir_job *job = NULL;
	struct weir_job_options options;
	weir_job_options_init(&options);
	assert_int_equal(weir_job_create(&job, &options), 0);
	assert_int_equal(weir_job_source_generator(job, "ts:i64,card:str16,amount:f64,n:i64",
						   unused_generate, NULL, 0),
			 0);
	assert_int_equal(weir_job_key_by(job, "card"), 0);
	struct weir_window_spec spec = {.time_column = "ts",
					.allowed_lateness = 5,
					.aggregates = "sum:n=events",
					.weight_column = weight_column};
	assert_int_equal(weir_window_spec_parse(&spec, "tumbling:10"), 0);
	*window_rc = weir_job_window(job, &spec);
	return job;
}

/* Records that stand for several events (weight_column, as flows' merged conversation rows):
 * the late, re-emitted and refused counts add their weights, not 1; a weight column that is
 * not an integer is refused. */
static void weighted_records_count_their_events(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	memset(&out_rows, 0, sizeof(out_rows));
	memset(&late_rows, 0, sizeof(late_rows));
	int rc = 0;
	fx.job = weighted_job("amount", &rc);
	assert_int_equal(rc, -EINVAL);
	weir_job_destroy(fx.job);
	fx.job = weighted_job("n", &rc);
	assert_int_equal(rc, 0);
	capture_open_keyed(fx.job, &out_rows, &late_rows, &fx.out, fx.out_buffer, &fx.late,
			   fx.late_buffer, &fx.instance);
	const struct weir_schema *schema = &fx.job->exchange_schema;
	const int64_t events[][2] = {{3, 4}, {4, 3}, {1, 7}, {25, 2}}; /* ts, n */
	const int64_t clocks[] = {12, 20, 20, INT64_MAX};
	for (uint32_t i = 0; i < 4; i++) {
		uint8_t record[256];
		memset(record, 0, sizeof(record));
		weir_field_set_i64(&schema->fields[0], record, events[i][0]);
		record[schema->fields[1].offset] = 1;
		record[schema->fields[1].offset + 1] = 'a';
		weir_field_set_i64(&schema->fields[3], record, events[i][1]);
		fx.job->keyed_vtable->process(fx.instance, record, 1);
		weir_emitter_flush(&fx.out);
		weir_emitter_flush(&fx.late);
		advance(clocks[i]);
	}
	fx.job->keyed_vtable->close(fx.job->keyed_ctx, fx.instance);
	struct weir_job_stats stats;
	weir_job_get_stats(fx.job, &stats);
	assert_int_equal(stats.late_updates, 3); /* ts 4 within the lateness, weight 3 */
	assert_int_equal(stats.late_dropped, 7); /* ts 1 past it, weight 7 */
	assert_int_equal(late_rows.count, 1);	 /* one record to the late output */
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

/* max_by:ts:amount is the time of the largest amount; equal amounts go to the later time
 * whatever order they came in, sliding windows merge their panes by the same rule, and a
 * payload below the cell's initial values (a negative time) is still taken. */
static void max_by_takes_the_payload_at_the_largest_order(void **state)
{
	(void)state;
	static const struct {
		int64_t ts;
		double amount;
	} events[] = {{1, 2.0}, {7, 5.0}, {3, 5.0}, {12, 4.0}, {-8, -1.0}};
	for (int reversed = 0; reversed < 2; reversed++) {
		fixture_open("sliding:10,5", 0, "max_by:ts:amount=ts_at_max,max:amount", 64);
		for (int i = 0; i < 5; i++) {
			int at = reversed ? 4 - i : i;
			event(events[at].ts, events[at].ts < 0 ? "b" : "a", events[at].amount);
		}
		advance(INT64_MAX);
		assert_int_equal(row_i64((uint32_t)find_row(-5, "a", 0), "ts_at_max"), 3);
		assert_int_equal(row_i64((uint32_t)find_row(0, "a", 0), "ts_at_max"), 7);
		assert_true(row_f64((uint32_t)find_row(0, "a", 0), "max_amount") == 5.0);
		assert_int_equal(row_i64((uint32_t)find_row(5, "a", 0), "ts_at_max"), 7);
		assert_int_equal(row_i64((uint32_t)find_row(10, "a", 0), "ts_at_max"), 12);
		assert_int_equal(row_i64((uint32_t)find_row(-10, "b", 0), "ts_at_max"), -8);
		fixture_close();
	}
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
	assert_int_equal(build_window("tumbling:10", "ts", "max_by:ts:amount=at", 0), 0);
	assert_int_equal(build_window("tumbling:10", "ts", "max_by:ts", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "max_by::amount", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "max_by:card:amount", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "max_by:ts:card", 0), -EINVAL);
	assert_int_equal(build_window("tumbling:10", "ts", "max_by:ts:nope", 0), -ENOENT);
}

/* ---- combine: two-phase aggregation ---- */

/* A job (ts:i64, card:str16, amount:f64, f:f64 keyed by @key) with a combined window. */
static int build_combined(struct weir_job **job, const char *key, const char *window,
			  const char *aggregates, const char *weight_column)
{
	assert_int_equal(weir_job_create(job, NULL), 0);
	assert_int_equal(weir_job_source_generator(*job, "ts:i64,card:str16,amount:f64,f:f64",
						   unused_generate, NULL, 0),
			 0);
	assert_int_equal(weir_job_key_by(*job, key), 0);
	struct weir_window_spec spec = {.time_column = "ts",
					.aggregates = aggregates,
					.weight_column = weight_column,
					.combine = true};
	assert_int_equal(weir_window_spec_parse(&spec, window), 0);
	return weir_job_window(*job, &spec);
}

static void put_event(const struct weir_schema *schema, uint8_t *record, int64_t ts,
		      const char *card, double amount)
{
	memset(record, 0, schema->record_length);
	weir_field_set_i64(&schema->fields[0], record, ts);
	record[schema->fields[1].offset] = (uint8_t)strlen(card);
	memcpy(record + schema->fields[1].offset + 1, card, strlen(card));
	memcpy(record + schema->fields[2].offset, &amount, 8);
	memcpy(record + schema->fields[3].offset, &amount, 8);
}

/* The 8-byte field @name of @row, as either number. */
static union number {
	int64_t i;
	double f;
} field_of(const struct weir_schema *schema, const uint8_t *row, const char *name)
{
	int index = weir_schema_find(schema, name);
	assert_true(index >= 0);
	union number value;
	memcpy(&value, row + schema->fields[index].offset, 8);
	return value;
}

/* The combiner merges a call's records per key and pane into partial rows (key, the first
 * record's time, weir_count, one column per partial), and the window over them names its
 * outputs as the window over the records would. */
static void combine_merges_per_key_and_pane(void **state)
{
	(void)state;
	struct weir_job *job;
	assert_int_equal(build_combined(&job, "card", "sliding:10,5",
					"count,sum:amount=total,min:amount,max:f,avg:amount,"
					"max_by:ts:amount",
					NULL),
			 0);
	const struct weir_schema *in = job->source.schema;
	const struct weir_schema *partial = &job->exchange_schema;
	assert_int_equal(job->stage_count, 1);
	const char *const expected[] = {"card", "ts", "weir_count", "weir_sum0", "weir_min0",
					"weir_max1", "weir_by0", "weir_at0"};
	assert_int_equal(partial->field_count, 8);
	for (uint32_t i = 0; i < 8; i++)
		assert_string_equal(partial->fields[i].name, expected[i]);
	const char *const outputs[] = {"window_start", "window_end", "card", "count", "total",
				       "min_amount", "max_f", "avg_amount", "max_by_ts_amount"};
	assert_int_equal(job->out_schema.field_count, 9);
	for (uint32_t i = 0; i < 9; i++)
		assert_string_equal(job->out_schema.fields[i].name, outputs[i]);

	/* Panes of 5: a at 1, 3, 4 (one row), a at 6 (the next pane), b at 2, a at 0. */
	const struct {
		int64_t ts;
		const char *card;
		double amount;
	} events[] = {{1, "a", 2.5}, {2, "b", 7}, {4, "a", -1}, {6, "a", 9}, {3, "a", 2.5},
		      {0, "a", 4}};
	uint8_t records[6][64], rows[6][128];
	assert_true(in->record_length <= sizeof(records[0]));
	assert_true(partial->record_length <= sizeof(rows[0]));
	for (uint32_t i = 0; i < 6; i++)
		put_event(in, records[i], events[i].ts, events[i].card, events[i].amount);
	const struct job_stage *stage = &job->stages[0];
	uint32_t count = stage->fn(stage->ctx, records[0], 6, sizeof(records[0]), rows[0],
				   sizeof(rows[0]));
	assert_int_equal(count, 3); /* a in pane 0, b in pane 0, a in pane 1: first-seen order */
	assert_int_equal(field_of(partial, rows[0], "ts").i, 1); /* its first record's time */
	assert_int_equal(field_of(partial, rows[0], "weir_count").i, 4);
	assert_true(field_of(partial, rows[0], "weir_sum0").f == 8.0);
	assert_true(field_of(partial, rows[0], "weir_min0").f == -1.0);
	assert_true(field_of(partial, rows[0], "weir_max1").f == 4.0);
	/* The largest amount, 4, came at ts 0; equal amounts 2.5 at 1 and 3 lose to it. */
	assert_true(field_of(partial, rows[0], "weir_at0").f == 4.0);
	assert_int_equal(field_of(partial, rows[0], "weir_by0").i, 0);
	assert_int_equal(rows[1][partial->fields[0].offset + 1], 'b');
	assert_int_equal(field_of(partial, rows[1], "weir_count").i, 1);
	assert_int_equal(field_of(partial, rows[2], "ts").i, 6);
	assert_int_equal(field_of(partial, rows[2], "weir_count").i, 1);
	weir_job_destroy(job);
}

/* More keys in one call than the merge table holds: the rest get rows of their own, and the
 * rows still stand for every record once. */
static void combine_overflow_keeps_every_record(void **state)
{
	(void)state;
	struct weir_job *job;
	assert_int_equal(build_combined(&job, "card", "tumbling:100", "count", NULL), 0);
	const struct weir_schema *in = job->source.schema;
	const struct weir_schema *partial = &job->exchange_schema;
	enum { RECORDS = 6000, LENGTH = 64 };
	uint8_t *records = malloc((size_t)RECORDS * LENGTH);
	uint8_t *rows = malloc((size_t)RECORDS * LENGTH);
	assert_non_null(records);
	assert_non_null(rows);
	for (uint32_t i = 0; i < RECORDS; i++) {
		char card[16];
		snprintf(card, sizeof(card), "c%u", i % 3000); /* each key twice */
		put_event(in, records + (size_t)i * LENGTH, i % 100, card, 1);
	}
	const struct job_stage *stage = &job->stages[0];
	uint32_t count = stage->fn(stage->ctx, records, RECORDS, LENGTH, rows, LENGTH);
	assert_true(count < RECORDS);
	assert_true(count >= 3000);
	int64_t weight = 0;
	for (uint32_t r = 0; r < count; r++)
		weight += field_of(partial, rows + (size_t)r * LENGTH, "weir_count").i;
	assert_int_equal(weight, RECORDS);
	free(records);
	free(rows);
	weir_job_destroy(job);
}

static void combine_refuses_what_it_cannot_merge(void **state)
{
	(void)state;
	struct weir_job *job;
	assert_int_equal(build_combined(&job, "card", "tumbling:10", "count,distinct:f", NULL),
			 -EINVAL);
	assert_non_null(strstr(weir_job_error(job), "distinct"));
	weir_job_destroy(job);
	assert_int_equal(build_combined(&job, "card", "tumbling:10", "count", "ts"), -EINVAL);
	assert_non_null(strstr(weir_job_error(job), "weight_column"));
	weir_job_destroy(job);
	/* The time column as a key column too: one partial column, rows merged at equal times. */
	assert_int_equal(build_combined(&job, "card,ts", "tumbling:10", "count", NULL), 0);
	assert_int_equal(job->exchange_schema.field_count, 3);
	weir_job_destroy(job);
	assert_int_equal(build_combined(&job, "card", "tumbling:10", "sum:nope", NULL), -ENOENT);
	weir_job_destroy(job);
}

/* ---- checkpoints ---- */

#define LOG_RECORDS_MAX 65536u
#define WRITER_SEED 0x9E3779B97F4A7C15ull
#define WRITER_GROUPS 4096u
#define STREAM_EVENTS 600u
#define CHECKPOINT_AGGREGATES "count,sum:amount,min:amount,max:amount,avg:amount,distinct:card"

struct saved_record {
	uint64_t epoch;
	uint16_t type;
	uint32_t key_group;
	uint32_t key_length;
	uint32_t value_length;
	size_t at; /* its key, then its value, in fake_log.bytes */
};

/* The fake store's one shard: every record appended, in order. */
struct fake_log {
	struct saved_record *records; /* [LOG_RECORDS_MAX] */
	uint32_t count;
	uint8_t *bytes;
	size_t used;
	size_t capacity;
	uint32_t fail_at; /* the append (from 1) that fails with -ENOSPC; 0: none */
};

static struct fake_log fake_log;

static int fake_append(void *shard, uint64_t epoch, const struct weir_state_record *record)
{
	struct fake_log *log = shard;
	if (log->fail_at != 0 && log->count + 1 == log->fail_at)
		return -ENOSPC;
	assert_true(log->count < LOG_RECORDS_MAX);
	size_t need = (size_t)record->key_length + record->value_length;
	if (log->used + need > log->capacity) {
		size_t capacity = log->capacity == 0 ? 1u << 16 : log->capacity;
		while (capacity < log->used + need)
			capacity *= 2;
		log->bytes = weir_mem_realloc(log->bytes, capacity, WEIR_MEM_ARENA_DEFAULT);
		assert_non_null(log->bytes);
		log->capacity = capacity;
	}
	memcpy(log->bytes + log->used, record->key, record->key_length);
	memcpy(log->bytes + log->used + record->key_length, record->value, record->value_length);
	log->records[log->count++] = (struct saved_record){.epoch = epoch,
							   .type = record->type,
							   .key_group = record->key_group,
							   .key_length = record->key_length,
							   .value_length = record->value_length,
							   .at = log->used};
	log->used += need;
	return 0;
}

static const struct weir_store_vtable fake_store = {.append = fake_append};

static void fake_log_reset(void)
{
	if (fake_log.records == NULL)
		fake_log.records = weir_mem_alloc(sizeof(struct saved_record) * LOG_RECORDS_MAX, 8,
						  WEIR_MEM_ARENA_DEFAULT);
	assert_non_null(fake_log.records);
	fake_log.count = 0;
	fake_log.used = 0;
	fake_log.fail_at = 0;
}

static struct weir_state_record saved(uint32_t i)
{
	const struct saved_record *r = &fake_log.records[i];
	return (struct weir_state_record){.type = r->type,
					  .key_group = r->key_group,
					  .key = fake_log.bytes + r->at,
					  .key_length = r->key_length,
					  .value = fake_log.bytes + r->at + r->key_length,
					  .value_length = r->value_length};
}

/* Snapshots fx.instance as checkpoint @epoch with the writer's @seed and @groups.
 * Returns: the records it appended. */
static uint32_t snapshot_with(bool full, uint64_t epoch, uint64_t seed, uint32_t groups)
{
	struct weir_state_writer writer = {.store = &fake_store,
					   .shard = &fake_log,
					   .epoch = epoch,
					   .seed = seed,
					   .key_groups = groups};
	uint32_t before = fake_log.count;
	assert_int_equal(fx.job->keyed_vtable->snapshot(fx.instance, full, &writer), 0);
	assert_int_equal(writer.error, 0);
	assert_int_equal(writer.records, fake_log.count - before);
	for (uint32_t i = before; i < fake_log.count; i++)
		assert_int_equal(fake_log.records[i].epoch, epoch);
	return fake_log.count - before;
}

static uint32_t snapshot(bool full, uint64_t epoch)
{
	return snapshot_with(full, epoch, WRITER_SEED, WRITER_GROUPS);
}

/* Whether record @i is the cell of (@card, @pane). */
static bool record_is(uint32_t i, const char *card, int64_t pane)
{
	struct weir_state_record record = saved(i);
	size_t length = strlen(card);
	int64_t its_pane;
	if (record.key_length != 1 + length + 8 || record.key[0] != length ||
	    memcmp(record.key + 1, card, length) != 0)
		return false;
	memcpy(&its_pane, record.key + 1 + length, 8);
	return its_pane == pane;
}

/* The second instance of the operator, restored from the fake log. */
struct twin {
	struct weir_job *job;
	struct weir_emitter out;
	struct weir_emitter late;
	uint8_t out_buffer[8 * 256];
	uint8_t late_buffer[8 * 256];
	void *instance;
};

static struct twin tw;
static struct captured twin_rows;
static struct captured twin_late_rows;

static void twin_open(struct weir_job *job)
{
	memset(&tw, 0, sizeof(tw));
	memset(&twin_rows, 0, sizeof(twin_rows));
	memset(&twin_late_rows, 0, sizeof(twin_late_rows));
	tw.job = job;
	capture_open_keyed(job, &twin_rows, &twin_late_rows, &tw.out, tw.out_buffer, &tw.late,
			   tw.late_buffer, &tw.instance);
}

static void twin_close(void)
{
	tw.job->keyed_vtable->close(tw.job->keyed_ctx, tw.instance);
}

static int twin_restore_one(uint32_t i)
{
	struct weir_state_record record = saved(i);
	return tw.job->keyed_vtable->restore(tw.instance, &record);
}

/* Replays records [from, to) of the fake log into the twin, then restored(@watermark). */
static void twin_restore(uint32_t from, uint32_t to, int64_t watermark)
{
	for (uint32_t i = from; i < to; i++) {
		int rc = twin_restore_one(i);
		if (rc != 0)
			fail_msg("restore of record %u: %d", i, rc);
	}
	assert_int_equal(tw.job->keyed_vtable->restored(tw.instance, watermark, false), 0);
	assert_int_equal(twin_rows.count, 0); /* restoring emits nothing */
	assert_int_equal(twin_late_rows.count, 0);
}

static void both_event(int64_t ts, const char *card, double amount)
{
	event(ts, card, amount);
	event_into(tw.instance, &tw.out, &tw.late, ts, card, amount);
}

static void both_advance(int64_t watermark)
{
	advance(watermark);
	tw.job->keyed_vtable->advance(tw.instance, watermark);
}

static uint32_t compared_length;

static int row_order(const void *a, const void *b)
{
	return memcmp(a, b, compared_length);
}

/* Rows @from.. of @original and all rows of @restored are the same, in any order. */
static void assert_same_rows(struct captured *original, uint32_t from, struct captured *restored)
{
	assert_true(original->count <= CAPTURE_ROWS_MAX && restored->count <= CAPTURE_ROWS_MAX);
	uint32_t count = original->count - from;
	if (restored->count != count)
		fail_msg("the original emitted %u rows after the checkpoint, the restored one %u",
			 count, restored->count);
	compared_length = original->record_length;
	qsort(original->rows[from], count, CAPTURE_ROW_LENGTH_MAX, row_order);
	qsort(restored->rows[0], count, CAPTURE_ROW_LENGTH_MAX, row_order);
	for (uint32_t r = 0; r < count; r++) {
		if (memcmp(original->rows[from + r], restored->rows[r], compared_length) != 0)
			fail_msg("sorted row %u of %u differs", r, count);
	}
}

/* Rows of @rows for windows starting at @start. */
static uint32_t rows_starting(const struct captured *rows, int64_t start)
{
	uint32_t count = 0;
	for (uint32_t r = 0; r < rows->count && r < CAPTURE_ROWS_MAX; r++)
		count += weir_field_get_i64(out_field("window_start"), rows->rows[r]) == start;
	return count;
}

/* A random stream: times run ahead one per event, each up to 40 behind; the watermark trails
 * by 20 and moves now and then, from event 30 on. */
struct stream_event {
	int64_t ts;
	char card[8];
	double amount;
	int64_t watermark; /* advance to this after the event, or WEIR_WATERMARK_NONE */
};

static struct stream_event stream[STREAM_EVENTS];

static void make_stream(void)
{
	int64_t watermark = WEIR_WATERMARK_NONE;
	for (uint32_t i = 0; i < STREAM_EVENTS; i++) {
		struct stream_event *e = &stream[i];
		e->ts = (int64_t)i - (int64_t)(test_rng_next() % 40);
		snprintf(e->card, sizeof(e->card), "k%u", (unsigned)(test_rng_next() % 12));
		e->amount = (double)(test_rng_next() % 1000) / 4; /* exact sums */
		e->watermark = WEIR_WATERMARK_NONE;
		if (i >= 30 && test_rng_next() % 12 == 0 && (int64_t)i - 20 > watermark)
			e->watermark = watermark = (int64_t)i - 20;
	}
}

/* The clock after events [0, @end). */
static int64_t stream_clock(uint32_t end)
{
	int64_t watermark = WEIR_WATERMARK_NONE;
	for (uint32_t i = 0; i < end; i++)
		watermark = stream[i].watermark != WEIR_WATERMARK_NONE ? stream[i].watermark
								      : watermark;
	return watermark;
}

/* Events [from, to) into the original, and into the twin too when @both. */
static void feed(uint32_t from, uint32_t to, bool both)
{
	for (uint32_t i = from; i < to; i++) {
		const struct stream_event *e = &stream[i];
		if (both)
			both_event(e->ts, e->card, e->amount);
		else
			event(e->ts, e->card, e->amount);
		if (e->watermark != WEIR_WATERMARK_NONE && both)
			both_advance(e->watermark);
		else if (e->watermark != WEIR_WATERMARK_NONE)
			advance(e->watermark);
	}
}

/* The rest of the stream into both, to the end; then the rows after @rows_from / @late_from
 * of the original must be the twin's. */
static void finish_both(uint32_t from, uint32_t rows_from, uint32_t late_from)
{
	feed(from, STREAM_EVENTS, true);
	both_advance(INT64_MAX);
	assert_same_rows(&out_rows, rows_from, &twin_rows);
	assert_same_rows(&late_rows, late_from, &twin_late_rows);
}

/* Full snapshot after event @cut, restore into the twin, finish both. */
static void restore_equals_original(const char *window, int64_t lateness, uint32_t cut)
{
	print_message("%s, lateness %lld, checkpoint after event %u\n", window,
		      (long long)lateness, cut);
	fixture_open(window, lateness, CHECKPOINT_AGGREGATES, 64);
	fake_log_reset();
	make_stream();
	feed(0, cut, false);
	uint32_t records = snapshot(true, 1);
	assert_true(records > 0);
	twin_open(fx.job);
	assert_int_equal(fx.job->keyed_vtable->state_bytes(tw.instance), 0); /* no cell yet */
	twin_restore(0, records, stream_clock(cut));
	uint32_t rows_from = out_rows.count, late_from = late_rows.count;
	finish_both(cut, rows_from, late_from);
	assert_true(twin_rows.count > 0);
	/* Every window fired and was evicted at the end: no live cell, no key bytes left. */
	assert_int_equal(fx.job->keyed_vtable->state_bytes(fx.instance), 0);
	assert_int_equal(fx.job->keyed_vtable->state_bytes(tw.instance), 0);
	twin_close();
	fixture_close();
}

static void restore_continues_exactly(void **state)
{
	(void)state;
	test_rng_seed();
	static const struct {
		const char *window;
		int64_t lateness;
	} cases[] = {{"tumbling:10", 0},   {"tumbling:10", 15},   {"sliding:20,5", 0},
		     {"sliding:30,10", 12}, {"sliding:12,8", 5}};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		uint32_t cut = STREAM_EVENTS / 4;
		cut += (uint32_t)(test_rng_next() % (STREAM_EVENTS / 2));
		restore_equals_original(cases[c].window, cases[c].lateness, cut);
	}
	/* Before the first watermark: restored(WEIR_WATERMARK_NONE). */
	restore_equals_original("sliding:20,5", 3, 20);
}

/* How many of records [from, to) are of (@card, @pane). */
static uint32_t records_of(uint32_t from, uint32_t to, const char *card, int64_t pane)
{
	uint32_t count = 0;
	for (uint32_t i = from; i < to; i++)
		count += record_is(i, card, pane);
	return count;
}

static void incremental_writes_changed_cells_once(void **state)
{
	(void)state;
	fixture_open("tumbling:10", 0, CHECKPOINT_AGGREGATES, 64);
	fake_log_reset();
	event(1, "a", 1.0);
	event(2, "b", 2.0);
	event(3, "c", 3.0); /* pane 0 */
	event(12, "a", 4.0);
	event(15, "b", 5.0); /* pane 1 */
	event(25, "c", 6.0); /* pane 2 */
	advance(9);
	assert_int_equal(snapshot(true, 1), 6);
	uint32_t full_end = fake_log.count;
	event(5, "b", 7.0); /* pane 0 changes, then is evicted */
	event(4, "a", 7.5);
	event(6, "c", 7.25);
	event(13, "a", 8.0);  /* (a, 1) changes */
	event(13, "a", 9.0);  /* and again: still one record */
	event(16, "d", 10.0); /* (d, 1) is new */
	advance(10);	      /* fires [0,10) and evicts pane 0 */
	/* New cells in the ids pane 0 gave back, each now listed twice as changed. */
	event(17, "e", 11.0);
	event(18, "f", 11.5);
	event(19, "g", 11.75);
	assert_int_equal(snapshot(false, 2), 5);
	uint32_t delta_end = fake_log.count;
	static const char *const written[] = {"a", "d", "e", "f", "g"};
	for (uint32_t k = 0; k < 5; k++)
		assert_int_equal(records_of(full_end, delta_end, written[k], 1), 1);
	assert_int_equal(snapshot(false, 3), 0); /* nothing changed since */
	/* Full + delta, (a, 1) twice: the later one wins. */
	twin_open(fx.job);
	twin_restore(0, delta_end, 10);
	uint32_t rows_from = out_rows.count, late_from = late_rows.count;
	both_event(14, "b", 12.0);
	both_event(27, "a", 13.0);
	both_event(3, "a", 14.0); /* too late in both */
	both_advance(20);
	both_advance(INT64_MAX);
	assert_same_rows(&out_rows, rows_from, &twin_rows);
	assert_same_rows(&late_rows, late_from, &twin_late_rows);
	assert_int_equal(twin_late_rows.count, 1);
	assert_int_equal(rows_starting(&twin_rows, 0), 0);  /* [0,10) fired before */
	assert_int_equal(rows_starting(&twin_rows, 10), 6); /* a, b, d, e, f, g */
	twin_close();
	fixture_close();
}

/* Before the first full snapshot nothing is tracked: an incremental one writes every cell,
 * in a fresh instance and in a restored one. */
static void first_snapshot_writes_everything(void **state)
{
	(void)state;
	fixture_open("sliding:20,10", 0, "count", 64);
	fake_log_reset();
	event(1, "a", 1.0);
	event(11, "a", 1.0);
	event(12, "b", 1.0);
	assert_int_equal(snapshot(false, 1), 3);
	assert_int_equal(snapshot(false, 2), 0);
	twin_open(fx.job);
	twin_restore(0, 3, WEIR_WATERMARK_NONE);
	struct weir_state_writer writer = {.store = &fake_store,
					   .shard = &fake_log,
					   .epoch = 3,
					   .seed = WRITER_SEED,
					   .key_groups = WRITER_GROUPS};
	assert_int_equal(tw.job->keyed_vtable->snapshot(tw.instance, false, &writer), 0);
	assert_int_equal(writer.records, 3);
	assert_int_equal(records_of(3, 6, "a", 0) + records_of(3, 6, "a", 1), 2);
	assert_int_equal(records_of(3, 6, "b", 1), 1);
	twin_close();
	fixture_close();
}

/* No two records of one snapshot, [from, to) of the log, are of the same cell. */
static void assert_cells_once(uint32_t from, uint32_t to)
{
	for (uint32_t i = from; i < to; i++) {
		struct weir_state_record a = saved(i);
		for (uint32_t j = i + 1; j < to; j++) {
			struct weir_state_record b = saved(j);
			if (a.key_length == b.key_length &&
			    memcmp(a.key, b.key, a.key_length) == 0)
				fail_msg("records %u and %u are of one cell", i, j);
		}
	}
}

/* A full snapshot, then deltas at random points; full + every delta restores the state. */
static void incremental_chain(const char *window, int64_t lateness)
{
	print_message("%s, lateness %lld\n", window, (long long)lateness);
	fixture_open(window, lateness, CHECKPOINT_AGGREGATES, 64);
	fake_log_reset();
	make_stream();
	uint32_t at = 40 + (uint32_t)(test_rng_next() % 60);
	feed(0, at, false);
	uint32_t full = snapshot(true, 1);
	assert_cells_once(0, full);
	uint64_t epoch = 1;
	while (at < STREAM_EVENTS * 3 / 4) {
		uint32_t next = at + 1 + (uint32_t)(test_rng_next() % 60);
		feed(at, next, false);
		uint32_t before = fake_log.count;
		snapshot(false, ++epoch);
		assert_cells_once(before, fake_log.count);
		at = next;
	}
	print_message("%u full records, %u in %llu deltas\n", full, fake_log.count - full,
		      (unsigned long long)(epoch - 1));
	twin_open(fx.job);
	twin_restore(0, fake_log.count, stream_clock(at));
	finish_both(at, out_rows.count, late_rows.count);
	twin_close();
	fixture_close();
}

static void incremental_chain_restores_the_state(void **state)
{
	(void)state;
	test_rng_seed();
	incremental_chain("tumbling:10", 0);
	incremental_chain("tumbling:10", 25);
	incremental_chain("sliding:20,5", 0);
	incremental_chain("sliding:30,10", 12);
}

/* Cells of panes evicted after the last full snapshot come back from the log; restored() at
 * the newer clock drops them again, so their windows do not fire twice. */
static void restored_drops_evicted_panes(void **state)
{
	(void)state;
	fixture_open("sliding:10,5", 5, "count,sum:amount", 64);
	fake_log_reset();
	event(2, "a", 1.0);  /* pane 0: last window [0,10) */
	event(7, "a", 2.0);  /* pane 1: [5,15) */
	event(12, "b", 3.0); /* pane 2: [10,20) */
	event(18, "a", 4.0); /* pane 3: [15,25) */
	advance(4);
	assert_int_equal(snapshot(true, 1), 4);
	advance(21); /* fires up to [10,20); evicts panes 0 and 1 (ends + 5 <= 21), keeps 2 */
	uint32_t fired = out_rows.count;
	assert_true(fired > 0);
	assert_int_equal(snapshot(false, 2), 0); /* evicted cells are not written */
	twin_open(fx.job);
	twin_restore(0, fake_log.count, 21);
	both_event(11, "b", 5.0); /* pane 2, within lateness: [10,20) again in both */
	both_event(3, "a", 6.0);  /* pane 0: too late in both */
	both_advance(INT64_MAX);
	assert_same_rows(&out_rows, fired, &twin_rows);
	assert_same_rows(&late_rows, 0, &twin_late_rows);
	assert_int_equal(twin_late_rows.count, 1);
	for (int64_t start = -5; start <= 5; start += 5)
		assert_int_equal(rows_starting(&twin_rows, start), 0);
	assert_int_equal(rows_starting(&twin_rows, 10), 1);
	assert_int_equal(rows_starting(&twin_rows, 15), 1);
	twin_close();
	fixture_close();
}

/* Each record's key group is that of its key without the pane, by the writer's seed and
 * group count, as the shuffle computes it. */
static void records_carry_their_key_group(void **state)
{
	(void)state;
	static const struct {
		uint64_t seed;
		uint32_t groups;
	} writers[] = {{WRITER_SEED, WRITER_GROUPS}, {1, 7}, {0, 1}, {42, 65536}};
	fixture_open("sliding:20,5", 0, "count", 64);
	fake_log_reset();
	char card[17];
	for (uint32_t i = 0; i < 300; i++) {
		snprintf(card, sizeof(card), "card-%u", i);
		event((int64_t)(i % 50), card, 1.0);
	}
	for (uint64_t w = 0; w < sizeof(writers) / sizeof(writers[0]); w++) {
		uint32_t from = fake_log.count;
		uint32_t records = snapshot_with(true, w + 1, writers[w].seed, writers[w].groups);
		assert_true(records >= 300);
		for (uint32_t i = from; i < fake_log.count; i++) {
			struct weir_state_record record = saved(i);
			assert_int_equal(record.type, 1);
			uint32_t key_length = record.key_length - 8;
			assert_int_equal(key_length, 1u + record.key[0]);
			uint64_t hash = weir_key_hash(record.key, key_length, writers[w].seed);
			uint32_t group = weir_key_group_of_hash(hash, writers[w].groups);
			if (record.key_group != group)
				fail_msg("record %u: group %u, expected %u", i, record.key_group,
					 group);
		}
	}
	fixture_close();
}

static void restore_rejects_foreign_records(void **state)
{
	(void)state;
	fixture_open("tumbling:10", 0, "count,sum:amount", 64);
	fake_log_reset();
	event(1, "a", 1.0);
	assert_int_equal(snapshot(true, 1), 1);
	twin_open(fx.job);
	const struct weir_keyed_op_vtable *op = fx.job->keyed_vtable;
	struct weir_state_record record = saved(0);
	uint8_t long_key[64] = {0};
	record.type = 2;
	assert_int_equal(op->restore(tw.instance, &record), -EBADMSG);
	record.type = 0;
	assert_int_equal(op->restore(tw.instance, &record), -EBADMSG);
	record = saved(0);
	record.value_length--;
	assert_int_equal(op->restore(tw.instance, &record), -EBADMSG);
	record.value_length += 2;
	assert_int_equal(op->restore(tw.instance, &record), -EBADMSG);
	record = saved(0);
	record.key_length = 7; /* shorter than a pane index */
	assert_int_equal(op->restore(tw.instance, &record), -EBADMSG);
	record.key = long_key;
	record.key_length = 1 + 16 + 8 + 1; /* longer than the longest card and a pane */
	assert_int_equal(op->restore(tw.instance, &record), -EBADMSG);
	/* A job with other aggregates keeps cells of another size. */
	struct weir_job *other = job_build("tumbling:10", 0, "count", 64);
	void *other_instance = NULL;
	struct weir_emitter out = {.capacity = 8}, late = {.capacity = 8};
	uint8_t buffer[8 * 256];
	out.records = late.records = buffer;
	assert_int_equal(other->keyed_vtable->open(other->keyed_ctx, 0, WEIR_MEM_ARENA_DEFAULT,
						   &out, &late, &other_instance),
			 0);
	record = saved(0);
	assert_int_equal(other->keyed_vtable->restore(other_instance, &record), -EBADMSG);
	other->keyed_vtable->close(other->keyed_ctx, other_instance);
	weir_job_destroy(other);
	/* The record as written restores. */
	assert_int_equal(twin_restore_one(0), 0);
	twin_close();
	fixture_close();
}

static void restore_past_the_budget_is_enospc(void **state)
{
	(void)state;
	fixture_open("tumbling:1000", 0, "count", 64);
	fake_log_reset();
	char card[17];
	for (uint32_t i = 0; i < 40000; i++) {
		snprintf(card, sizeof(card), "k%u", i);
		event(1, card, 1.0);
	}
	assert_int_equal(snapshot(true, 1), 40000);
	struct weir_job *small = job_build("tumbling:1000", 0, "count", 1);
	twin_open(small);
	int rc = 0;
	uint32_t restored = 0;
	while (restored < fake_log.count && rc == 0)
		rc = twin_restore_one(restored++);
	assert_int_equal(rc, -ENOSPC);
	print_message("a 1 MiB budget took %u of 40000 cells\n", restored - 1);
	assert_true(restored > 1000 && restored < 40000);
	/* Refused, the cells already taken kept: a full snapshot of them is what is reported
	 * (memory stays under the budget: the table's own tests show it refuses to grow). */
	assert_true(small->keyed_vtable->state_bytes(tw.instance) > 0);
	twin_close();
	weir_job_destroy(small);
	fixture_close();
}

/* The store's error stops the snapshot: returned, kept in the writer, nothing after it. */
static void store_error_stops_the_snapshot(void **state)
{
	(void)state;
	fixture_open("tumbling:10", 0, "count", 64);
	fake_log_reset();
	event(1, "a", 1.0);
	event(2, "b", 1.0);
	event(3, "c", 1.0);
	event(4, "d", 1.0);
	fake_log.fail_at = 3;
	struct weir_state_writer writer = {.store = &fake_store,
					   .shard = &fake_log,
					   .epoch = 1,
					   .seed = WRITER_SEED,
					   .key_groups = WRITER_GROUPS};
	assert_int_equal(fx.job->keyed_vtable->snapshot(fx.instance, true, &writer), -ENOSPC);
	assert_int_equal(writer.error, -ENOSPC);
	assert_int_equal(writer.records, 2);
	assert_int_equal(fake_log.count, 2);
	/* Later puts do nothing. */
	assert_int_equal(weir_state_put(&writer, 1, "key", 3, 3, "v", 1), -ENOSPC);
	assert_int_equal(fake_log.count, 2);
	fixture_close();
}

static int checkpoint_teardown(void **state)
{
	(void)state;
	weir_mem_free(fake_log.records, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(fake_log.bytes, WEIR_MEM_ARENA_DEFAULT);
	memset(&fake_log, 0, sizeof(fake_log));
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tumbling_fires_at_window_end),
		cmocka_unit_test(sliding_counts_each_event_in_every_window),
		cmocka_unit_test(sliding_fires_progressively),
		cmocka_unit_test(late_event_within_lateness_re_emits),
		cmocka_unit_test(weighted_records_count_their_events),
		cmocka_unit_test(late_counters_reach_the_job),
		cmocka_unit_test(sliding_late_update_re_emits_every_fired_window),
		cmocka_unit_test(state_budget_refuses_and_counts),
		cmocka_unit_test(bad_specs_are_errors),
		cmocka_unit_test(distinct_counts_approximately),
		cmocka_unit_test(max_by_takes_the_payload_at_the_largest_order),
		cmocka_unit_test(combine_merges_per_key_and_pane),
		cmocka_unit_test(combine_overflow_keeps_every_record),
		cmocka_unit_test(combine_refuses_what_it_cannot_merge),
		cmocka_unit_test(restore_continues_exactly),
		cmocka_unit_test(incremental_writes_changed_cells_once),
		cmocka_unit_test(first_snapshot_writes_everything),
		cmocka_unit_test(incremental_chain_restores_the_state),
		cmocka_unit_test(restored_drops_evicted_panes),
		cmocka_unit_test(records_carry_their_key_group),
		cmocka_unit_test(restore_rejects_foreign_records),
		cmocka_unit_test(restore_past_the_budget_is_enospc),
		cmocka_unit_test(store_error_stops_the_snapshot),
	};
	return cmocka_run_group_tests(tests, NULL, checkpoint_teardown);
}
