/* Goal: NEXMark queries 5, 7 and 8 (hot items, highest bid, monitor new users) as `weir bench`
 * workloads nexmark-q5, nexmark-q7, nexmark-q8: how fast weir runs NEXMark's keyed, windowed
 * queries, next to Flink's published per-core rates (the goal: 20x) and to a
 * hand-written single-threaded C program computing the same rows from the same events.
 *
 * Method:
 * - Events: the NEXMark model of bench/nexmark_model.c.  q5 and q7 read bids only, so their
 *   memory source makes the bid stream (112-byte records, as q0-q2); q8 reads persons and
 *   auctions only, so its memory source makes those (4 of every 50 stream events), projected
 *   to what q8 reads: id:i64 (the person's id, or the auction's seller), persons:i64 (1 for a
 *   person), auctions:i64 (1 for an auction), date_time:ts (ms).  The rates count the events
 *   each job reads (bids; persons and auctions), whereas Flink's count every stream event,
 *   so ours are the stricter numbers.
 * - The queries, as weir jobs:
 *   q5 (hot items): key_by auction, count per 10 s window sliding every 2 s, and per window
 *      the auction with the most bids (a top-1 sink on the count).
 *   q7 (highest bid): key_by auction, per 10 s tumbling window the max price and the bidder
 *      who bid it (max_by:bidder:price; equal prices: the larger bidder), and per window the
 *      highest (a top-1 sink on the max): the auction, price and bidder of the window's
 *      highest bid (Flink's q7 also gives its time).
 *   q8 (monitor new users): persons and auctions keyed by person id / seller, per 10 s
 *      tumbling window the persons and the auctions of each id, and only ids with both (a
 *      sink keeping rows with persons >= 1 and auctions >= 1): the persons who registered and
 *      opened an auction in the same window.  Flink joins two window aggregates on (id,
 *      window); co-grouping one keyed stream gives the same rows.
 *   Ties (equal counts or prices) go to the row whose bytes compare lower (the top-k sink's
 *   rule), so the result does not depend on the worker count.
 * - Engine (child process): the job over --events events (default 10M) made before the clock.
 *   q5 and q7 write their top rows to a temporary file; q8's measured run discards its rows
 *   (blackhole sink, as NEXMark runs use: over a million rows for 10M events).  Rate:
 *   stats.events_in / stats.seconds.  Then a checked run over the first min(--events,
 *   NW_BASELINE_EVENTS) events writes JSON lines to a temporary file, read back: the number of
 *   rows and the sum of a hash of each row's columns (order-free: rows of different workers
 *   interleave) are the digest.
 * - Baseline (this process): the same first events in the same layout, made once; each pass
 *   computes the query with hand-written tables (q5: per 2 s pane an open-addressing table
 *   auction -> bids, five panes merged when a window closes; q7: a running maximum per
 *   window, with its bidder; q8: per window a table id -> persons, auctions), in passes
 *   until NW_BASELINE_NS has gone by.  The first pass's digest must equal the engine's
 *   (bench.c compares them). */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/nexmark_model.h"
#include "bench/workloads.h"
#include "core/assert.h"
#include "core/schema.h"
#include "weir/weir.h"

#define NW_EVENTS_DEFAULT UINT64_C(10000000)
#define NW_BASELINE_EVENTS UINT64_C(4000000) /* bids: 448 MB, well past any cache */
#define NW_BASELINE_NS INT64_C(500000000)
#define NW_LINE_MAX 1024
#define NW_WINDOW_MS INT64_C(10000)
#define NW_Q5_SLIDE_MS INT64_C(2000)
#define NW_Q5_PANES 5 /* NW_WINDOW_MS / NW_Q5_SLIDE_MS */
#define NW_Q5_PANE_RING 8u /* pane tables kept: a power of two > NW_Q5_PANES */
#define NW_Q8_SCHEMA "id:i64,persons:i64,auctions:i64,date_time:ts"
#define NW_TABLE_SLOTS_MIN 4096u
#define NW_COLUMNS_MAX 4

WEIR_STATIC_ASSERT(NW_WINDOW_MS == NW_Q5_PANES * NW_Q5_SLIDE_MS, "q5 panes tile its windows");
WEIR_STATIC_ASSERT(NW_Q5_PANE_RING > NW_Q5_PANES, "a window's panes stay in the ring");

enum nw_query { NW_Q5, NW_Q7, NW_Q8 };

/* Byte offsets of q8's record fields. */
struct nw_seller_layout {
	uint32_t id, persons, auctions, date_time;
	uint32_t record_length;
};

/* What each query's output rows are digested on: these integer columns, in this order. */
static const char *const nw_columns[3][NW_COLUMNS_MAX] = {
	[NW_Q5] = {"window_start", "auction", "bids", NULL},
	[NW_Q7] = {"window_start", "auction", "price", "bidder"},
	[NW_Q8] = {"window_start", "id", "persons", "auctions"},
};

/* The baseline's side, made once by prepare. */
struct nw_state {
	enum nw_query query;
	struct nexmark_bid_layout bids;
	struct nw_seller_layout sellers;
	uint8_t *records; /* mmap'ed: count events in weir's layout */
	size_t length;	  /* bytes mapped */
	uint64_t count;
};

/* Rows of a query's output, reduced to a count and an order-free digest. */
struct nw_result {
	uint64_t rows;
	uint64_t digest;
};

static void nw_add_row(struct nw_result *result, const int64_t *values, uint32_t count)
{
	uint64_t state = UINT64_C(0x6e77696e646f7700);
	uint64_t hash = 0;
	for (uint32_t i = 0; i < count; i++) {
		state ^= (uint64_t)values[i];
		hash = nexmark_random(&state);
	}
	result->digest += hash; /* a sum: rows may arrive in any order */
	result->rows++;
}

/* The first of two i64 keys in weir's byte order: the top-k sink's tie rule. */
static bool nw_bytes_before(int64_t a, int64_t b)
{
	return memcmp(&a, &b, sizeof(a)) < 0;
}

/* ---- q8's events ---- */

static int nw_seller_layout_init(struct nw_seller_layout *layout)
{
	struct weir_schema schema;
	char error[128];
	int rc = weir_schema_parse(&schema, NW_Q8_SCHEMA, error, sizeof(error));
	if (rc != 0) {
		fprintf(stderr, "weir bench: nexmark: %s\n", error);
		return rc;
	}
	WEIR_VERIFY(schema.field_count == 4);
	layout->id = schema.fields[0].offset;
	layout->persons = schema.fields[1].offset;
	layout->auctions = schema.fields[2].offset;
	layout->date_time = schema.fields[3].offset;
	layout->record_length = schema.record_length;
	return 0;
}

/* weir_fill_fn (ctx: a struct nw_seller_layout): persons and auctions @first, @first + @step,
 * ... (numbered among persons and auctions). */
static void nw_fill_sellers(void *ctx, uint64_t first, uint64_t step, uint64_t count,
			    uint8_t *records, uint32_t record_length)
{
	const struct nw_seller_layout *layout = ctx;
	WEIR_VERIFY(record_length == layout->record_length);
	for (uint64_t k = 0; k < count; k++) {
		uint8_t *record = records + k * record_length;
		uint64_t n = nexmark_seller_event(first + k * step);
		bool person = nexmark_is_person(n);
		int64_t id, auction_id; /* id: the person's, or the auction's seller */
		if (person)
			id = nexmark_person_id(n);
		else
			nexmark_make_auction(n, &auction_id, &id);
		nexmark_put_i64(record, layout->id, id);
		nexmark_put_i64(record, layout->persons, person);
		nexmark_put_i64(record, layout->auctions, !person);
		nexmark_put_i64(record, layout->date_time, nexmark_time_ms(n));
	}
}

/* ---- the baseline's table: int64 key (never 0) -> int64 value, open addressing ---- */

struct nw_table {
	int64_t *keys; /* 0: empty */
	int64_t *values;
	uint32_t *used; /* the slots in use, for clearing and scanning */
	uint32_t used_count;
	uint32_t mask; /* slots - 1 */
	int64_t tag;   /* the pane or window the table holds */
};

static int nw_table_init(struct nw_table *table, uint32_t slots)
{
	WEIR_VERIFY(slots >= NW_TABLE_SLOTS_MIN && (slots & (slots - 1)) == 0);
	table->keys = calloc(slots, sizeof(*table->keys));
	table->values = calloc(slots, sizeof(*table->values));
	table->used = calloc(slots / 2, sizeof(*table->used));
	table->used_count = 0;
	table->mask = slots - 1;
	table->tag = INT64_MIN;
	if (table->keys == NULL || table->values == NULL || table->used == NULL)
		return -ENOMEM;
	return 0;
}

static void nw_table_fini(struct nw_table *table)
{
	free(table->keys);
	free(table->values);
	free(table->used);
	*table = (struct nw_table){.keys = NULL};
}

static void nw_table_clear(struct nw_table *table)
{
	for (uint32_t i = 0; i < table->used_count; i++)
		table->keys[table->used[i]] = 0;
	table->used_count = 0;
}

static uint32_t nw_table_home(const struct nw_table *table, int64_t key)
{
	return (uint32_t)(((uint64_t)key * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & table->mask;
}

static int nw_table_grow(struct nw_table *table)
{
	struct nw_table bigger;
	if (nw_table_init(&bigger, (table->mask + 1) * 2) != 0) {
		nw_table_fini(&bigger);
		return -ENOMEM;
	}
	bigger.tag = table->tag;
	for (uint32_t i = 0; i < table->used_count; i++) {
		uint32_t from = table->used[i];
		uint32_t slot = nw_table_home(&bigger, table->keys[from]);
		while (bigger.keys[slot] != 0)
			slot = (slot + 1) & bigger.mask;
		bigger.keys[slot] = table->keys[from];
		bigger.values[slot] = table->values[from];
		bigger.used[bigger.used_count++] = slot;
	}
	nw_table_fini(table);
	*table = bigger;
	return 0;
}

/* The value of @key, inserted as 0 when new; NULL only when out of memory. */
static int64_t *nw_table_at(struct nw_table *table, int64_t key)
{
	WEIR_ASSERT(key != 0);
	uint32_t slot = nw_table_home(table, key);
	while (table->keys[slot] != key) {
		if (table->keys[slot] == 0) {
			if (table->used_count == (table->mask + 1) / 2) {
				if (nw_table_grow(table) != 0)
					return NULL;
				return nw_table_at(table, key);
			}
			table->keys[slot] = key;
			table->values[slot] = 0;
			table->used[table->used_count++] = slot;
			break;
		}
		slot = (slot + 1) & table->mask;
	}
	return &table->values[slot];
}

/* ---- the baseline's queries: one pass over @count events ---- */

struct nw_q5_tables {
	struct nw_table panes[NW_Q5_PANE_RING]; /* pane p in panes[p % ring], tagged p */
	struct nw_table merged;
};

/* Window k (panes k .. k+4): the auction with the most bids, if any bid. */
static int nw_q5_window(struct nw_q5_tables *tables, int64_t k, struct nw_result *result)
{
	struct nw_table *merged = &tables->merged;
	nw_table_clear(merged);
	for (int64_t p = k; p < k + NW_Q5_PANES; p++) {
		const struct nw_table *pane = &tables->panes[(uint64_t)p % NW_Q5_PANE_RING];
		if (pane->tag != p)
			continue;
		for (uint32_t i = 0; i < pane->used_count; i++) {
			uint32_t slot = pane->used[i];
			int64_t *bids = nw_table_at(merged, pane->keys[slot]);
			if (bids == NULL)
				return -ENOMEM;
			*bids += pane->values[slot];
		}
	}
	int64_t best = 0, best_auction = 0;
	for (uint32_t i = 0; i < merged->used_count; i++) {
		uint32_t slot = merged->used[i];
		int64_t bids = merged->values[slot], auction = merged->keys[slot];
		if (bids > best || (bids == best && nw_bytes_before(auction, best_auction))) {
			best = bids;
			best_auction = auction;
		}
	}
	if (best > 0) {
		const int64_t row[] = {k * NW_Q5_SLIDE_MS, best_auction, best};
		nw_add_row(result, row, 3);
	}
	return 0;
}

static int nw_q5_pass(const struct nw_state *state, struct nw_q5_tables *tables,
		      struct nw_result *result)
{
	const struct nexmark_bid_layout *layout = &state->bids;
	const uint32_t length = layout->record_length;
	int64_t current = INT64_MIN, next_window = INT64_MIN;
	struct nw_table *pane = NULL;
	for (uint32_t p = 0; p < NW_Q5_PANE_RING; p++) {
		nw_table_clear(&tables->panes[p]);
		tables->panes[p].tag = INT64_MIN;
	}
	for (uint64_t i = 0; i < state->count; i++) {
		const uint8_t *record = state->records + i * length;
		int64_t time = nexmark_get_i64(record, layout->date_time);
		WEIR_ASSERT(time >= 0);
		int64_t p = time / NW_Q5_SLIDE_MS;
		if (p != current) {
			/* Bids come in time order.  Windows ending before pane p are complete;
			 * those that start after the current pane are empty. */
			WEIR_VERIFY(current == INT64_MIN || p > current);
			if (current != INT64_MIN) {
				int64_t last = p - NW_Q5_PANES;
				if (last > current)
					last = current;
				for (int64_t k = next_window; k <= last; k++) {
					if (nw_q5_window(tables, k, result) != 0)
						return -ENOMEM;
				}
				if (last + 1 > next_window)
					next_window = last + 1;
			} else {
				next_window = p - NW_Q5_PANES + 1;
			}
			current = p;
			pane = &tables->panes[(uint64_t)p % NW_Q5_PANE_RING];
			nw_table_clear(pane);
			pane->tag = p;
		}
		int64_t *bids = nw_table_at(pane, nexmark_get_i64(record, layout->auction));
		if (bids == NULL)
			return -ENOMEM;
		++*bids;
	}
	for (int64_t k = next_window; current != INT64_MIN && k <= current; k++) {
		if (nw_q5_window(tables, k, result) != 0)
			return -ENOMEM;
	}
	return 0;
}

static void nw_q7_pass(const struct nw_state *state, struct nw_result *result)
{
	const struct nexmark_bid_layout *layout = &state->bids;
	const uint32_t length = layout->record_length;
	int64_t window = INT64_MIN, best = -1, best_auction = 0, best_bidder = 0;
	for (uint64_t i = 0; i < state->count; i++) {
		const uint8_t *record = state->records + i * length;
		int64_t w = nexmark_get_i64(record, layout->date_time) / NW_WINDOW_MS;
		if (w != window) {
			if (window != INT64_MIN) {
				const int64_t row[] = {window * NW_WINDOW_MS, best_auction, best,
						       best_bidder};
				nw_add_row(result, row, 4);
			}
			window = w;
			best = -1;
		}
		int64_t price = nexmark_get_i64(record, layout->price);
		int64_t auction = nexmark_get_i64(record, layout->auction);
		int64_t bidder = nexmark_get_i64(record, layout->bidder);
		/* The engine's rules: the top-k sink's between auctions (the auction whose bytes
		 * compare lower), max_by's within one (the larger bidder). */
		if (price > best || (price == best && nw_bytes_before(auction, best_auction))) {
			best = price;
			best_auction = auction;
			best_bidder = bidder;
		} else if (price == best && auction == best_auction && bidder > best_bidder) {
			best_bidder = bidder;
		}
	}
	if (window != INT64_MIN) {
		const int64_t row[] = {window * NW_WINDOW_MS, best_auction, best, best_bidder};
		nw_add_row(result, row, 4);
	}
}

/* Persons count in the low 32 bits of a q8 cell, auctions in the high. */
#define NW_Q8_AUCTION_ONE (INT64_C(1) << 32)

static void nw_q8_window(const struct nw_table *table, struct nw_result *result)
{
	for (uint32_t i = 0; i < table->used_count; i++) {
		uint32_t slot = table->used[i];
		int64_t cell = table->values[slot];
		int64_t persons = cell & (NW_Q8_AUCTION_ONE - 1), auctions = cell >> 32;
		if (persons > 0 && auctions > 0) {
			const int64_t row[] = {table->tag * NW_WINDOW_MS, table->keys[slot],
					       persons, auctions};
			nw_add_row(result, row, 4);
		}
	}
}

static int nw_q8_pass(const struct nw_state *state, struct nw_table *table,
		      struct nw_result *result)
{
	const struct nw_seller_layout *layout = &state->sellers;
	const uint32_t length = layout->record_length;
	nw_table_clear(table);
	table->tag = INT64_MIN;
	for (uint64_t i = 0; i < state->count; i++) {
		const uint8_t *record = state->records + i * length;
		int64_t w = nexmark_get_i64(record, layout->date_time) / NW_WINDOW_MS;
		if (w != table->tag) {
			if (table->tag != INT64_MIN)
				nw_q8_window(table, result);
			nw_table_clear(table);
			table->tag = w;
		}
		int64_t *cell = nw_table_at(table, nexmark_get_i64(record, layout->id));
		if (cell == NULL)
			return -ENOMEM;
		*cell += nexmark_get_i64(record, layout->persons) +
			 nexmark_get_i64(record, layout->auctions) * NW_Q8_AUCTION_ONE;
	}
	if (table->tag != INT64_MIN)
		nw_q8_window(table, result);
	return 0;
}

/* ---- the engine (child process) ---- */

static uint64_t nw_event_count(uint64_t requested)
{
	return requested != 0 ? requested : NW_EVENTS_DEFAULT;
}

static uint64_t nw_checked_count(uint64_t events)
{
	return events < NW_BASELINE_EVENTS ? events : NW_BASELINE_EVENTS;
}

/* Builds and runs one query job over @events events into @sink_path ("/dev/null": rows
 * discarded).  Returns: 0 or -errno (said on stderr). */
static int nw_run(enum nw_query query, uint32_t workers, uint64_t events, const char *sink_path,
		  struct weir_job_stats *stats)
{
	static struct nexmark_bid_layout bids;		/* read by every worker */
	static struct nw_seller_layout sellers;
	int rc = query == NW_Q8 ? nw_seller_layout_init(&sellers) : nexmark_bid_layout_init(&bids);
	if (rc != 0)
		return rc;
	struct weir_job_options options;
	weir_job_options_init(&options);
	options.worker_count = workers;
	struct weir_job *job = NULL;
	rc = bench_job_create(&job, &options, "nexmark");
	if (rc != 0)
		return rc;
	struct weir_window_spec window = {
		.time_column = "date_time",
		.kind = WEIR_WINDOW_TUMBLING,
		.size = NW_WINDOW_MS,
		.slide = NW_WINDOW_MS,
	};
	struct weir_sink_options sink = {
		.path = sink_path,
		.format = strcmp(sink_path, "/dev/null") == 0 ? WEIR_FORMAT_DISCARD
							     : WEIR_FORMAT_JSONL,
	};
	if (query == NW_Q8) {
		rc = weir_job_source_memory(job, NW_Q8_SCHEMA, nw_fill_sellers, &sellers, events);
		if (rc == 0)
			rc = weir_job_key_by(job, "id");
		window.aggregates = "sum:persons=persons,sum:auctions=auctions";
		sink.min_column = "persons,auctions";
		sink.min_value = 1;
	} else {
		rc = weir_job_source_memory(job, NEXMARK_BID_SCHEMA, nexmark_fill_bids, &bids,
					    events);
		if (rc == 0)
			rc = weir_job_key_by(job, "auction");
		if (query == NW_Q5) {
			window.kind = WEIR_WINDOW_SLIDING;
			window.slide = NW_Q5_SLIDE_MS;
			window.aggregates = "count=bids";
			sink.rank_column = "bids";
		} else {
			window.aggregates = "max:price=price,max_by:bidder:price=bidder";
			sink.rank_column = "price";
		}
		sink.top_k = 1;
	}
	if (rc == 0)
		rc = weir_job_window(job, &window);
	if (rc == 0)
		rc = weir_job_sink_with(job, &sink);
	return bench_job_finish(job, rc, "nexmark", stats);
}

/* The rows of a JSON-lines file, digested on @query's columns. */
static int nw_read_rows(const char *path, enum nw_query query, struct nw_result *result)
{
	FILE *in = fopen(path, "r");
	if (in == NULL)
		return -errno;
	char line[NW_LINE_MAX];
	int rc = 0;
	*result = (struct nw_result){.rows = 0};
	while (rc == 0 && fgets(line, sizeof(line), in) != NULL) {
		int64_t values[NW_COLUMNS_MAX];
		uint32_t count = 0;
		for (; count < NW_COLUMNS_MAX && nw_columns[query][count] != NULL; count++) {
			rc = bench_json_integer(line, nw_columns[query][count], &values[count]);
			if (rc != 0)
				break;
		}
		if (rc == 0)
			nw_add_row(result, values, count);
	}
	fclose(in);
	if (rc != 0)
		fprintf(stderr, "weir bench: nexmark: unexpected output row: %s", line);
	return rc;
}

static int nw_engine_once(enum nw_query query, const struct bench_env *env, uint32_t workers,
			  struct bench_sample *out)
{
	uint64_t events = nw_event_count(env->options->events);
	char path[512];
	int rc = nexmark_temp_file(path, sizeof(path));
	if (rc != 0)
		return rc;
	struct weir_job_stats stats;
	rc = nw_run(query, workers, events, query == NW_Q8 ? "/dev/null" : path, &stats);
	if (rc == 0 && stats.events_in != events) {
		fprintf(stderr, "weir bench: nexmark: %" PRIu64 " of %" PRIu64 " events in\n",
			stats.events_in, events);
		rc = -EPROTO;
	}
	out->events = stats.events_in;
	out->seconds = stats.seconds;
	struct weir_job_stats checked_stats;
	struct nw_result checked = {.rows = 0};
	if (rc == 0)
		rc = nw_run(query, workers, nw_checked_count(events), path, &checked_stats);
	if (rc == 0)
		rc = nw_read_rows(path, query, &checked);
	unlink(path);
	if (rc != 0)
		return rc;
	out->digest = checked.digest;
	out->digest_total = checked.rows;
	out->has_digest = true;
	return 0;
}

int bench_nexmark_q5_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out)
{
	return nw_engine_once(NW_Q5, env, workers, out);
}

int bench_nexmark_q7_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out)
{
	return nw_engine_once(NW_Q7, env, workers, out);
}

int bench_nexmark_q8_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out)
{
	return nw_engine_once(NW_Q8, env, workers, out);
}

/* ---- the baseline (this process) ---- */

static int nw_prepare(enum nw_query query, struct bench_env *env)
{
	static struct nw_state state; /* one workload at a time */
	uint64_t events = nw_event_count(env->options->events);
	state = (struct nw_state){.query = query};
	int rc = query == NW_Q8 ? nw_seller_layout_init(&state.sellers)
				: nexmark_bid_layout_init(&state.bids);
	if (rc != 0)
		return rc;
	uint32_t length = query == NW_Q8 ? state.sellers.record_length
					 : state.bids.record_length;
	state.count = nw_checked_count(events);
	state.length = (size_t)state.count * length;
	rc = nexmark_records_map(&state.records, state.length);
	if (rc != 0)
		return rc;
	fprintf(stderr, "weir bench: nexmark: making %" PRIu64 " events for the baseline\n",
		state.count);
	if (query == NW_Q8)
		nw_fill_sellers(&state.sellers, 0, 1, state.count, state.records, length);
	else
		nexmark_fill_bids(&state.bids, 0, 1, state.count, state.records, length);
	snprintf(env->note, sizeof(env->note),
		 "%" PRIu64 " NEXMark %s (%u-byte records) made before the clock; baseline and "
		 "checked rows over the first %" PRIu64 " of them",
		 events, query == NW_Q8 ? "persons and auctions (4 of every 50 stream events)"
					: "bids (46 of every 50 stream events)",
		 length, state.count);
	env->state = &state;
	env->has_baseline = true;
	return 0;
}

int bench_nexmark_q5_prepare(struct bench_env *env)
{
	return nw_prepare(NW_Q5, env);
}

int bench_nexmark_q7_prepare(struct bench_env *env)
{
	return nw_prepare(NW_Q7, env);
}

int bench_nexmark_q8_prepare(struct bench_env *env)
{
	return nw_prepare(NW_Q8, env);
}

/* The baseline's tables: made at the first run, kept for the next ones (a hand-written
 * program would size them once too). */
static struct nw_q5_tables nw_q5_tables;
static struct nw_table nw_q8_table;

static int nw_tables_init(enum nw_query query)
{
	if (query == NW_Q5 && nw_q5_tables.merged.keys == NULL) {
		for (uint32_t p = 0; p < NW_Q5_PANE_RING; p++) {
			if (nw_table_init(&nw_q5_tables.panes[p], NW_TABLE_SLOTS_MIN) != 0)
				return -ENOMEM;
		}
		return nw_table_init(&nw_q5_tables.merged, NW_TABLE_SLOTS_MIN);
	}
	if (query == NW_Q8 && nw_q8_table.keys == NULL)
		return nw_table_init(&nw_q8_table, NW_TABLE_SLOTS_MIN);
	return 0;
}

int bench_nexmark_windowed_baseline_once(const struct bench_env *env, struct bench_sample *out)
{
	const struct nw_state *state = env->state;
	int rc = nw_tables_init(state->query);
	if (rc != 0) {
		fprintf(stderr, "weir bench: nexmark: baseline tables: out of memory\n");
		return rc;
	}
	struct nw_result first = {.rows = 0}, result = {.rows = 0};
	uint64_t done = 0;
	int64_t start = nexmark_now_ns(), elapsed = 0;
	while (done == 0 || elapsed < NW_BASELINE_NS) {
		result = (struct nw_result){.rows = 0};
		if (state->query == NW_Q5)
			rc = nw_q5_pass(state, &nw_q5_tables, &result);
		else if (state->query == NW_Q7)
			nw_q7_pass(state, &result);
		else
			rc = nw_q8_pass(state, &nw_q8_table, &result);
		if (rc != 0) {
			fprintf(stderr, "weir bench: nexmark: baseline: out of memory\n");
			return rc;
		}
		if (done == 0)
			first = result;
		done += state->count;
		elapsed = nexmark_now_ns() - start;
	}
	/* Every pass computes the same rows: a pass that differs is our bug. */
	WEIR_VERIFY(result.digest == first.digest && result.rows == first.rows);
	out->events = done;
	out->seconds = (double)elapsed / 1e9;
	out->digest = first.digest;
	out->digest_total = first.rows;
	out->has_digest = true;
	return 0;
}

void bench_nexmark_windowed_release(struct bench_env *env)
{
	struct nw_state *state = env->state;
	if (state != NULL)
		nexmark_records_unmap(state->records, state->length);
	for (uint32_t p = 0; p < NW_Q5_PANE_RING; p++)
		nw_table_fini(&nw_q5_tables.panes[p]);
	nw_table_fini(&nw_q5_tables.merged);
	nw_table_fini(&nw_q8_table);
	env->state = NULL;
}
