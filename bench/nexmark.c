/* Goal: NEXMark queries 0-2 (passthrough, currency conversion, selection) as `weir bench`
 * workloads nexmark-q0, nexmark-q1, nexmark-q2: how fast a stateless weir job moves the
 * NEXMark bid stream, next to a single-threaded loop doing the same query's work over the same
 * bids with no engine ("the bare generator").
 *
 * Method:
 * - The stream: bids of the NEXMark model (bench/nexmark_model.c), numbered in the full
 *   stream: the memory source's event b is the b-th bid; persons and auctions are never
 *   materialised (these queries read bids only).
 * - Record: auction:i64, bidder:i64, price:i64 (cents), date_time:ts (ms), channel:str15,
 *   url:str63 = 112 bytes in weir's layout.
 * - Engine (child process): weir_job_source_memory over --events bids (default 10M; made on
 *   each worker before the job's clock starts) -> q0: a callback reading every bid's price
 *   (the memory source lends its records in place, so a job with no operator would read
 *   nothing at all: its rate would be the cost of passing pointers, not of a query); q1: map
 *   price * 908 / 1000
 *   (dollars to euros, as the reference); q2: filter auction % 123 == 0, project
 *   auction, price -> a discarding (blackhole) sink, as NEXMark runs use; `weir bench`
 *   formats no row in the measured runs.  Rate: stats.events_in / stats.seconds.
 *   Checks: events_in == --events; rows_out == events_in (q0, q1) or == the selected bids
 *   counted by a plain loop over the same bids (q2).  Then a second, small run over the first
 *   NX_VERIFY_EVENTS bids writes JSON lines to a temporary file, which is read back: the row
 *   count and the sum of the output prices are the run's digest.
 * - Baseline (this process): one buffer of the first min(--events, NX_BASELINE_EVENTS) bids in
 *   weir's layout, made once; each run loops over it in 1024-record batches doing the query's
 *   work (q0: sum the prices; q1: write converted
 *   records to an output batch; q2: filter, count, sum), in passes until NX_BASELINE_NS has
 *   gone by.  Its digest (rows and price sum over the first NX_VERIFY_EVENTS bids) must equal
 *   the engine's, else the bench fails (bench.c compares them). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/nexmark_model.h"
#include "bench/workloads.h"
#include "core/schema.h"
#include "weir/weir.h"

#define NX_EVENTS_DEFAULT UINT64_C(10000000)
#define NX_VERIFY_EVENTS UINT64_C(200000)
#define NX_BASELINE_EVENTS UINT64_C(4000000) /* 448 MB: well past any cache */
#define NX_BASELINE_NS INT64_C(500000000)
#define NX_BATCH 1024u
#define NX_LINE_MAX 1024

#define NX_Q2_AUCTION_SKIP 123
#define NX_EURO_PER_1000_DOLLARS 908

enum nx_query { NX_Q0, NX_Q1, NX_Q2 };

/* The baseline's side, made once by prepare. */
struct nx_state {
	enum nx_query query;
	struct nexmark_bid_layout layout;
	uint8_t *records; /* mmap'ed: count bids in weir's layout */
	size_t length;	  /* bytes mapped */
	uint64_t count;
};

/* ---- the queries' work, shared by the engine's callbacks and the baseline ---- */

static int64_t nx_euros(int64_t dollars)
{
	return dollars * NX_EURO_PER_1000_DOLLARS / 1000;
}

/* weir_map_fn for q1: the bid with its price in euros. */
static void nx_q1_map(void *ctx, const uint8_t *records, uint32_t count, uint32_t in_length,
		      uint8_t *out, uint32_t out_length)
{
	const struct nexmark_bid_layout *layout = ctx;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *in = records + (size_t)i * in_length;
		uint8_t *to = out + (size_t)i * out_length;
		memcpy(to, in, in_length);
		nexmark_put_i64(to, layout->price, nx_euros(nexmark_get_i64(in, layout->price)));
	}
}

/* weir_filter_fn for q2: auction % 123 == 0. */
static void nx_q2_filter(void *ctx, const uint8_t *records, uint32_t count,
			 uint32_t record_length, uint8_t *keep)
{
	const struct nexmark_bid_layout *layout = ctx;
	for (uint32_t i = 0; i < count; i++)
		keep[i] = nexmark_get_i64(records + (size_t)i * record_length, layout->auction) %
				  NX_Q2_AUCTION_SKIP == 0;
}

/* What q0's callback read, so that the compiler cannot drop the reading. */
static _Atomic int64_t nx_q0_price_sum;

/* weir_filter_fn for q0: keeps every bid, having read its price (the passthrough's work). */
static void nx_q0_read(void *ctx, const uint8_t *records, uint32_t count, uint32_t record_length,
		       uint8_t *keep)
{
	const struct nexmark_bid_layout *layout = ctx;
	int64_t sum = 0;
	for (uint32_t i = 0; i < count; i++) {
		sum += nexmark_get_i64(records + (size_t)i * record_length, layout->price);
		keep[i] = 1;
	}
	atomic_fetch_add_explicit(&nx_q0_price_sum, sum, memory_order_relaxed);
}

/* Rows and price sum of a query's output, reduced to one digest. */
struct nx_result {
	uint64_t rows;
	int64_t price_sum;
};

static uint64_t nx_digest(const struct nx_result *result)
{
	uint64_t state = result->rows ^ UINT64_C(0x6e65786d61726b00);
	uint64_t digest = nexmark_random(&state);
	state ^= (uint64_t)result->price_sum;
	return digest ^ nexmark_random(&state);
}

/* One batch of the query's work, as the baseline does it; adds to @result. */
static void nx_baseline_batch(enum nx_query query, const struct nexmark_bid_layout *layout,
			      const uint8_t *records, uint32_t count, uint8_t *out,
			      struct nx_result *result)
{
	uint32_t length = layout->record_length;
	if (query == NX_Q0) {
		for (uint32_t i = 0; i < count; i++)
			result->price_sum +=
				nexmark_get_i64(records + (size_t)i * length, layout->price);
		result->rows += count;
	} else if (query == NX_Q1) {
		nx_q1_map((void *)(uintptr_t)layout, records, count, length, out, length);
		for (uint32_t i = 0; i < count; i++)
			result->price_sum +=
				nexmark_get_i64(out + (size_t)i * length, layout->price);
		result->rows += count;
	} else {
		for (uint32_t i = 0; i < count; i++) {
			const uint8_t *record = records + (size_t)i * length;
			bool keep =
				nexmark_get_i64(record, layout->auction) % NX_Q2_AUCTION_SKIP == 0;
			result->rows += keep;
			result->price_sum += keep ? nexmark_get_i64(record, layout->price) : 0;
		}
	}
}

/* ---- the engine (child process) ---- */

static uint64_t nx_event_count(uint64_t requested)
{
	return requested != 0 ? requested : NX_EVENTS_DEFAULT;
}

/* Builds and runs one query job over @events bids into @sink_path.  Returns: 0 or -errno. */
static int nx_run(enum nx_query query, const struct nexmark_bid_layout *layout, uint32_t workers,
		  uint64_t events, const char *sink_path, struct weir_job_stats *stats)
{
	struct weir_job_options options;
	weir_job_options_init(&options);
	options.worker_count = workers;
	struct weir_job *job = NULL;
	int rc = bench_job_create(&job, &options, "nexmark");
	if (rc != 0)
		return rc;
	void *ctx = (void *)(uintptr_t)layout; /* read only, by every worker */
	rc = weir_job_source_memory(job, NEXMARK_BID_SCHEMA, nexmark_fill_bids, ctx, events);
	if (rc == 0 && query == NX_Q0)
		rc = weir_job_filter(job, nx_q0_read, ctx);
	if (rc == 0 && query == NX_Q1)
		rc = weir_job_map(job, NEXMARK_BID_SCHEMA, nx_q1_map, ctx);
	if (rc == 0 && query == NX_Q2)
		rc = weir_job_filter(job, nx_q2_filter, ctx);
	if (rc == 0 && query == NX_Q2)
		rc = weir_job_project(job, "auction,price");
	/* The measured runs discard their rows, as NEXMark runs use a blackhole sink. */
	return bench_sink_run(job, rc, sink_path, "nexmark", stats);
}

/* Rows and price sum of a JSON-lines file (q2 rows must have auction % 123 == 0). */
static int nx_read_rows(const char *path, enum nx_query query, struct nx_result *result)
{
	FILE *in = fopen(path, "r");
	if (in == NULL)
		return -errno;
	char line[NX_LINE_MAX];
	int rc = 0;
	*result = (struct nx_result){.rows = 0};
	while (rc == 0 && fgets(line, sizeof(line), in) != NULL) {
		const char *price = strstr(line, "\"price\":");
		const char *auction = strstr(line, "\"auction\":");
		if (price == NULL || auction == NULL) {
			rc = -EBADMSG;
			break;
		}
		result->price_sum += strtoll(price + strlen("\"price\":"), NULL, 10);
		result->rows++;
		int64_t id = strtoll(auction + strlen("\"auction\":"), NULL, 10);
		if (query == NX_Q2 && id % NX_Q2_AUCTION_SKIP != 0)
			rc = -EBADMSG;
	}
	fclose(in);
	if (rc != 0)
		fprintf(stderr, "weir bench: nexmark: unexpected output row: %s", line);
	return rc;
}

/* The small checked run: the first NX_VERIFY_EVENTS bids to a file, read back. */
static int nx_verify(enum nx_query query, const struct nexmark_bid_layout *layout, uint32_t workers,
		     uint64_t events, struct nx_result *result)
{
	char path[512];
	int rc = nexmark_temp_file(path, sizeof(path));
	if (rc != 0)
		return rc;
	struct weir_job_stats stats;
	uint64_t count = events < NX_VERIFY_EVENTS ? events : NX_VERIFY_EVENTS;
	rc = nx_run(query, layout, workers, count, path, &stats);
	if (rc == 0)
		rc = nx_read_rows(path, query, result);
	unlink(path);
	if (rc == 0 && (stats.events_in != count || stats.rows_out != result->rows)) {
		fprintf(stderr, "weir bench: nexmark: checked run: %" PRIu64 " events of %" PRIu64
				", %" PRIu64 " rows counted, %" PRIu64 " in the file\n",
			stats.events_in, count, stats.rows_out, result->rows);
		rc = -EPROTO;
	}
	return rc;
}

/* Bids among the first @events that q2 selects, by a plain loop. */
static uint64_t nx_q2_expected(uint64_t events)
{
	uint64_t selected = 0;
	for (uint64_t b = 0; b < events; b++) {
		int64_t auction, bidder;
		nexmark_bid_keys(b, &auction, &bidder);
		selected += auction % NX_Q2_AUCTION_SKIP == 0;
	}
	return selected;
}

static int nx_engine_once(enum nx_query query, const struct bench_env *env, uint32_t workers,
			  struct bench_sample *out)
{
	struct nexmark_bid_layout layout;
	int rc = nexmark_bid_layout_init(&layout);
	if (rc != 0)
		return rc;
	uint64_t events = nx_event_count(env->options->events);
	struct weir_job_stats stats;
	rc = nx_run(query, &layout, workers, events, "/dev/null", &stats);
	if (rc != 0)
		return rc;
	uint64_t rows = query == NX_Q2 ? nx_q2_expected(events) : events;
	if (stats.events_in != events || stats.rows_out != rows) {
		fprintf(stderr, "weir bench: nexmark: %" PRIu64 " of %" PRIu64 " events in, %"
				PRIu64 " rows out, expected %" PRIu64 "\n",
			stats.events_in, events, stats.rows_out, rows);
		return -EPROTO;
	}
	struct nx_result checked = {.rows = 0};
	rc = nx_verify(query, &layout, workers, events, &checked);
	if (rc != 0)
		return rc;
	out->events = stats.events_in;
	out->seconds = stats.seconds;
	out->digest = nx_digest(&checked);
	out->digest_total = checked.rows;
	out->has_digest = true;
	return 0;
}

int bench_nexmark_q0_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out)
{
	return nx_engine_once(NX_Q0, env, workers, out);
}

int bench_nexmark_q1_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out)
{
	return nx_engine_once(NX_Q1, env, workers, out);
}

int bench_nexmark_q2_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out)
{
	return nx_engine_once(NX_Q2, env, workers, out);
}

/* ---- the baseline (this process) ---- */

static int nx_prepare(enum nx_query query, struct bench_env *env)
{
	static struct nx_state state; /* one workload at a time */
	uint64_t events = nx_event_count(env->options->events);
	state = (struct nx_state){.query = query};
	int rc = nexmark_bid_layout_init(&state.layout);
	if (rc != 0)
		return rc;
	state.count = events < NX_BASELINE_EVENTS ? events : NX_BASELINE_EVENTS;
	state.length = (size_t)state.count * state.layout.record_length;
	rc = nexmark_records_map(&state.records, state.length);
	if (rc != 0)
		return rc;
	fprintf(stderr, "weir bench: nexmark: making %" PRIu64 " bids for the baseline\n",
		state.count);
	nexmark_fill_bids(&state.layout, 0, 1, state.count, state.records,
			  state.layout.record_length);
	snprintf(env->note, sizeof(env->note),
		 "%" PRIu64 " NEXMark bids (%u-byte records; 46 of every 50 stream events; "
		 "persons and auctions not materialised) made before the clock, rows discarded "
		 "(blackhole sink); baseline over the first %" PRIu64 " of them; digests over the "
		 "first %" PRIu64, events, state.layout.record_length, state.count,
		 events < NX_VERIFY_EVENTS ? events : NX_VERIFY_EVENTS);
	env->state = &state;
	env->has_baseline = true;
	return 0;
}

int bench_nexmark_q0_prepare(struct bench_env *env)
{
	return nx_prepare(NX_Q0, env);
}

int bench_nexmark_q1_prepare(struct bench_env *env)
{
	return nx_prepare(NX_Q1, env);
}

int bench_nexmark_q2_prepare(struct bench_env *env)
{
	return nx_prepare(NX_Q2, env);
}

int bench_nexmark_baseline_once(const struct bench_env *env, struct bench_sample *out)
{
	const struct nx_state *state = env->state;
	static uint8_t out_batch[NX_BATCH * 256];
	uint32_t length = state->layout.record_length;
	if (length > 256)
		return -EINVAL;
	uint64_t verify = state->count < NX_VERIFY_EVENTS ? state->count : NX_VERIFY_EVENTS;
	struct nx_result result = {.rows = 0}, checked = {.rows = 0};
	uint64_t done = 0;
	int64_t start = nexmark_now_ns(), elapsed = 0;
	while (done == 0 || elapsed < NX_BASELINE_NS) {
		uint64_t at = 0;
		while (at < state->count) {
			uint64_t end = at + NX_BATCH < state->count ? at + NX_BATCH : state->count;
			if (done == 0 && at < verify && end > verify)
				end = verify; /* the digest covers this prefix of the first pass */
			nx_baseline_batch(state->query, &state->layout,
					  state->records + at * length, (uint32_t)(end - at),
					  out_batch, &result);
			at = end;
			if (done == 0 && at == verify)
				checked = result;
		}
		done += state->count;
		elapsed = nexmark_now_ns() - start;
	}
	/* Keeps the work alive: the compiler cannot drop sums that reach the report. */
	out->events = done + (result.price_sum == INT64_MIN);
	out->seconds = (double)elapsed / 1e9;
	out->digest = nx_digest(&checked);
	out->digest_total = checked.rows;
	out->has_digest = true;
	return 0;
}

void bench_nexmark_release(struct bench_env *env)
{
	struct nx_state *state = env->state;
	if (state != NULL)
		nexmark_records_unmap(state->records, state->length);
	env->state = NULL;
}
