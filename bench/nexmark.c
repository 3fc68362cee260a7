/* Goal: NEXMark queries 0-2 (passthrough, currency conversion, selection) as `weir bench`
 * workloads nexmark-q0, nexmark-q1, nexmark-q2: how fast a stateless weir job moves the
 * NEXMark bid stream, next to a single-threaded loop doing the same query's work over the same
 * bids with no engine ("the bare generator").
 *
 * Method:
 * - The stream: NEXMark's event n is a person when n % 50 == 0, an auction when n % 50 is
 *   1-3, else a bid (1:3:46).  The queries read bids only, so the memory source's fill makes
 *   only bids, but numbers them in the full stream: the memory source's event b is the b-th
 *   bid, which is stream event n = (b / 46) * 50 + 4 + b % 46, and its ids and time come from
 *   n as the reference generator computes them (Beam's BidGenerator with its default config):
 *   the auction is, with P = 1/2 (hotAuctionRatio 2), the hot one: the first of the latest
 *   batch of HOT_AUCTION_RATIO = 100 auctions, else uniform over the 100 auctions still in
 *   flight plus a lead of 10; the bidder is, with P = 3/4 (hotBiddersRatio 4), the second
 *   person of the latest batch of HOT_BIDDER_RATIO = 100 people, else uniform over the 1,000
 *   active people plus a lead of 10; ids start at 1000.  price = round(10^(6 U) * 100) cents
 *   (PriceGenerator.nextPrice).  date_time = 1,700,000,000,000 ms + n * 10 us, in ms (one
 *   event every 10 us).  channel/url follow Flink's nexmark generator in spirit: with P = 1/2
 *   one of 4 hot channels, else "channel-K" (K < 10,000); url is the reference's 52-character
 *   item URL, with "&ch=K" instead of its longer "&channel_id=" suffix to fit str63; no
 *   `extra`.  Each bid is a function of n alone (splitmix64 seeded with n), so every worker
 *   count sees the same bids.  Persons and auctions are never materialised.
 * - Record: auction:i64, bidder:i64, price:i64 (cents), date_time:ts (ms), channel:str15,
 *   url:str63 = 112 bytes in weir's layout.
 * - Engine (child process): weir_job_source_memory over --events bids (default 10M; made on
 *   each worker before the job's clock starts) -> q0: nothing; q1: map price * 908 / 1000
 *   (dollars to euros, as the reference); q2: filter auction % 123 == 0, project
 *   auction, price -> a discarding (blackhole) sink, as NEXMark runs use; `weir bench`
 *   formats no row in the measured runs.  Rate: stats.events_in / stats.seconds.
 *   Checks: events_in == --events; rows_out == events_in (q0, q1) or == the selected bids
 *   counted by a plain loop over the same bids (q2).  Then a second, small run over the first
 *   NX_VERIFY_EVENTS bids writes JSON lines to a temporary file, which is read back: the row
 *   count and the sum of the output prices are the run's digest.
 * - Baseline (this process): one buffer of the first min(--events, NX_BASELINE_EVENTS) bids in
 *   weir's layout, made once; each run loops over it in 1024-record batches doing the query's
 *   work (q0: copy each batch out, as the source does, and sum the prices; q1: write converted
 *   records to an output batch; q2: filter, count, sum), in passes until NX_BASELINE_NS has
 *   gone by.  Its digest (rows and price sum over the first NX_VERIFY_EVENTS bids) must equal
 *   the engine's, else the bench fails (bench.c compares them). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench/workloads.h"
#include "core/schema.h"
#include "weir/weir.h"

#define NX_SCHEMA "auction:i64,bidder:i64,price:i64,date_time:ts,channel:str15,url:str63"
#define NX_EVENTS_DEFAULT UINT64_C(10000000)
#define NX_VERIFY_EVENTS UINT64_C(200000)
#define NX_BASELINE_EVENTS UINT64_C(4000000) /* 448 MB: well past any cache */
#define NX_BASELINE_NS INT64_C(500000000)
#define NX_BATCH 1024u
#define NX_LINE_MAX 1024

/* The NEXMark model (Beam's GeneratorConfig, BidGenerator, PriceGenerator). */
#define NX_PERSON_PROPORTION 1u
#define NX_AUCTION_PROPORTION 3u
#define NX_TOTAL_PROPORTION 50u
#define NX_BID_PROPORTION (NX_TOTAL_PROPORTION - NX_PERSON_PROPORTION - NX_AUCTION_PROPORTION)
#define NX_HOT_AUCTION_RATIO 100u
#define NX_HOT_BIDDER_RATIO 100u
#define NX_CONFIG_HOT_AUCTIONS 2u /* P(hot auction) = 1 - 1/2 */
#define NX_CONFIG_HOT_BIDDERS 4u  /* P(hot bidder) = 1 - 1/4 */
#define NX_IN_FLIGHT_AUCTIONS 100u
#define NX_ACTIVE_PEOPLE 1000u
#define NX_AUCTION_ID_LEAD 10u
#define NX_PERSON_ID_LEAD 10u
#define NX_FIRST_AUCTION_ID 1000
#define NX_FIRST_PERSON_ID 1000
#define NX_BASE_TIME_MS INT64_C(1700000000000)
#define NX_INTER_EVENT_US 10
#define NX_CHANNELS 10000u
#define NX_Q2_AUCTION_SKIP 123
#define NX_EURO_PER_1000_DOLLARS 908

enum nx_query { NX_Q0, NX_Q1, NX_Q2 };

/* Byte offsets of the bid's fields in weir's layout (from weir_schema_parse). */
struct nx_layout {
	uint32_t auction, bidder, price, date_time, channel, url;
	uint32_t record_length;
};

struct nx_bid {
	int64_t auction, bidder, price, date_time_ms;
	char channel[16], url[64]; /* NUL-terminated; at most 15 and 63 bytes */
};

/* The baseline's side, made once by prepare. */
struct nx_state {
	enum nx_query query;
	struct nx_layout layout;
	uint8_t *records; /* mmap'ed: count bids in weir's layout */
	size_t length;	  /* bytes mapped */
	uint64_t count;
};

static int64_t nx_now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* ---- the generator ---- */

static uint64_t nx_next(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t nx_below(uint64_t *state, uint64_t bound)
{
	return nx_next(state) % bound;
}

/* The stream event number of bid @bid (0-based among bids). */
static uint64_t nx_bid_event(uint64_t bid)
{
	return bid / NX_BID_PROPORTION * NX_TOTAL_PROPORTION + NX_PERSON_PROPORTION +
	       NX_AUCTION_PROPORTION + bid % NX_BID_PROPORTION;
}

/* Base-0 id of the last auction made at or before event @n (n is a bid here). */
static int64_t nx_last_auction(uint64_t n)
{
	uint64_t epoch = n / NX_TOTAL_PROPORTION, offset = n % NX_TOTAL_PROPORTION;
	if (offset < NX_PERSON_PROPORTION) {
		if (epoch == 0)
			return 0;
		epoch--;
		offset = NX_AUCTION_PROPORTION - 1;
	} else if (offset >= NX_PERSON_PROPORTION + NX_AUCTION_PROPORTION) {
		offset = NX_AUCTION_PROPORTION - 1;
	} else {
		offset -= NX_PERSON_PROPORTION;
	}
	return (int64_t)(epoch * NX_AUCTION_PROPORTION + offset);
}

static int64_t nx_last_person(uint64_t n)
{
	uint64_t epoch = n / NX_TOTAL_PROPORTION, offset = n % NX_TOTAL_PROPORTION;
	if (offset >= NX_PERSON_PROPORTION)
		offset = NX_PERSON_PROPORTION - 1;
	return (int64_t)(epoch * NX_PERSON_PROPORTION + offset);
}

/* The auction and bidder of stream event @n, drawing from @rng as BidGenerator does. */
static void nx_bid_ids(uint64_t n, uint64_t *rng, struct nx_bid *bid)
{
	int64_t last = nx_last_auction(n);
	if (nx_below(rng, NX_CONFIG_HOT_AUCTIONS) > 0) {
		bid->auction = last / NX_HOT_AUCTION_RATIO * NX_HOT_AUCTION_RATIO;
	} else {
		int64_t low = last > NX_IN_FLIGHT_AUCTIONS ? last - NX_IN_FLIGHT_AUCTIONS : 0;
		bid->auction = low + (int64_t)nx_below(rng, (uint64_t)(last - low) + 1 +
								NX_AUCTION_ID_LEAD);
	}
	bid->auction += NX_FIRST_AUCTION_ID;
	int64_t people = nx_last_person(n) + 1;
	if (nx_below(rng, NX_CONFIG_HOT_BIDDERS) > 0) {
		bid->bidder = (people - 1) / NX_HOT_BIDDER_RATIO * NX_HOT_BIDDER_RATIO + 1;
	} else {
		int64_t active = people < NX_ACTIVE_PEOPLE ? people : NX_ACTIVE_PEOPLE;
		bid->bidder = people - active +
			      (int64_t)nx_below(rng, (uint64_t)active + NX_PERSON_ID_LEAD);
	}
	bid->bidder += NX_FIRST_PERSON_ID;
}

static void nx_letters(uint64_t *rng, char *out, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++)
		out[i] = (char)('a' + nx_below(rng, 26));
	out[count] = '\0';
}

/* Bid number @b of the bid stream. */
static void nx_make_bid(uint64_t b, struct nx_bid *bid)
{
	static const char *const hot_channels[] = {"Google", "Facebook", "Baidu", "Apple"};
	uint64_t n = nx_bid_event(b);
	uint64_t rng = n * UINT64_C(0x2545f4914f6cdd1d) + 1;
	nx_bid_ids(n, &rng, bid);
	double u = (double)(nx_next(&rng) >> 11) * 0x1p-53;
	bid->price = llround(pow(10.0, u * 6.0) * 100.0);
	bid->date_time_ms = NX_BASE_TIME_MS + (int64_t)n * NX_INTER_EVENT_US / 1000;
	char a[6], c[6];
	nx_letters(&rng, a, 5);
	nx_letters(&rng, c, 5);
	if (nx_below(&rng, 2) > 0) {
		uint64_t k = nx_below(&rng, 4);
		snprintf(bid->channel, sizeof(bid->channel), "%s", hot_channels[k]);
		snprintf(bid->url, sizeof(bid->url),
			 "https://www.nexmark.com/%s/%s/item.htm?query=1", a, c);
	} else {
		uint64_t k = nx_below(&rng, NX_CHANNELS);
		snprintf(bid->channel, sizeof(bid->channel), "channel-%" PRIu64, k);
		snprintf(bid->url, sizeof(bid->url),
			 "https://www.nexmark.com/%s/%s/item.htm?query=1&ch=%" PRIu64, a, c, k);
	}
}

static void nx_put_i64(uint8_t *record, uint32_t offset, int64_t value)
{
	memcpy(record + offset, &value, sizeof(value));
}

static int64_t nx_get_i64(const uint8_t *record, uint32_t offset)
{
	int64_t value;
	memcpy(&value, record + offset, sizeof(value));
	return value;
}

/* A weir string field: length byte, content, zero padding up to @stored bytes. */
static void nx_put_str(uint8_t *record, uint32_t offset, uint32_t stored, const char *text)
{
	size_t length = strlen(text);
	memset(record + offset, 0, stored);
	record[offset] = (uint8_t)length;
	memcpy(record + offset + 1, text, length);
}

static void nx_write_bid(const struct nx_layout *layout, const struct nx_bid *bid,
			 uint8_t *record)
{
	nx_put_i64(record, layout->auction, bid->auction);
	nx_put_i64(record, layout->bidder, bid->bidder);
	nx_put_i64(record, layout->price, bid->price);
	nx_put_i64(record, layout->date_time, bid->date_time_ms);
	nx_put_str(record, layout->channel, 16, bid->channel);
	nx_put_str(record, layout->url, 64, bid->url);
}

/* weir_fill_fn: bids @first, @first + @step, ... */
static void nx_fill(void *ctx, uint64_t first, uint64_t step, uint64_t count, uint8_t *records,
		    uint32_t record_length)
{
	const struct nx_layout *layout = ctx;
	if (record_length != layout->record_length)
		abort(); /* our bug: the schema and the layout disagree */
	for (uint64_t k = 0; k < count; k++) {
		struct nx_bid bid;
		nx_make_bid(first + k * step, &bid);
		nx_write_bid(layout, &bid, records + k * record_length);
	}
}

static int nx_layout_init(struct nx_layout *layout)
{
	struct weir_schema schema;
	char error[128];
	int rc = weir_schema_parse(&schema, NX_SCHEMA, error, sizeof(error));
	if (rc != 0) {
		fprintf(stderr, "weir bench: nexmark: %s\n", error);
		return rc;
	}
	uint32_t *const offsets[] = {&layout->auction, &layout->bidder, &layout->price,
				     &layout->date_time, &layout->channel, &layout->url};
	for (uint32_t i = 0; i < schema.field_count; i++)
		*offsets[i] = schema.fields[i].offset;
	layout->record_length = schema.record_length;
	return 0;
}

/* ---- the queries' work, shared by the engine's callbacks and the baseline ---- */

static int64_t nx_euros(int64_t dollars)
{
	return dollars * NX_EURO_PER_1000_DOLLARS / 1000;
}

/* weir_map_fn for q1: the bid with its price in euros. */
static void nx_q1_map(void *ctx, const uint8_t *records, uint32_t count, uint32_t in_length,
		      uint8_t *out, uint32_t out_length)
{
	const struct nx_layout *layout = ctx;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *in = records + (size_t)i * in_length;
		uint8_t *to = out + (size_t)i * out_length;
		memcpy(to, in, in_length);
		nx_put_i64(to, layout->price, nx_euros(nx_get_i64(in, layout->price)));
	}
}

/* weir_filter_fn for q2: auction % 123 == 0. */
static void nx_q2_filter(void *ctx, const uint8_t *records, uint32_t count,
			 uint32_t record_length, uint8_t *keep)
{
	const struct nx_layout *layout = ctx;
	for (uint32_t i = 0; i < count; i++)
		keep[i] = nx_get_i64(records + (size_t)i * record_length, layout->auction) %
				  NX_Q2_AUCTION_SKIP == 0;
}

/* Rows and price sum of a query's output, reduced to one digest. */
struct nx_result {
	uint64_t rows;
	int64_t price_sum;
};

static uint64_t nx_digest(const struct nx_result *result)
{
	uint64_t state = result->rows ^ UINT64_C(0x6e65786d61726b00);
	uint64_t digest = nx_next(&state);
	state ^= (uint64_t)result->price_sum;
	return digest ^ nx_next(&state);
}

/* One batch of the query's work, as the baseline does it; adds to @result. */
static void nx_baseline_batch(enum nx_query query, const struct nx_layout *layout,
			      const uint8_t *records, uint32_t count, uint8_t *out,
			      struct nx_result *result)
{
	uint32_t length = layout->record_length;
	if (query == NX_Q0) {
		memcpy(out, records, (size_t)count * length);
		for (uint32_t i = 0; i < count; i++)
			result->price_sum += nx_get_i64(out + (size_t)i * length, layout->price);
		result->rows += count;
	} else if (query == NX_Q1) {
		nx_q1_map((void *)(uintptr_t)layout, records, count, length, out, length);
		for (uint32_t i = 0; i < count; i++)
			result->price_sum += nx_get_i64(out + (size_t)i * length, layout->price);
		result->rows += count;
	} else {
		for (uint32_t i = 0; i < count; i++) {
			const uint8_t *record = records + (size_t)i * length;
			bool keep = nx_get_i64(record, layout->auction) % NX_Q2_AUCTION_SKIP == 0;
			result->rows += keep;
			result->price_sum += keep ? nx_get_i64(record, layout->price) : 0;
		}
	}
}

/* ---- the engine (child process) ---- */

static uint64_t nx_event_count(uint64_t requested)
{
	return requested != 0 ? requested : NX_EVENTS_DEFAULT;
}

/* Builds and runs one query job over @events bids into @sink_path.  Returns: 0 or -errno. */
static int nx_run(enum nx_query query, const struct nx_layout *layout, uint32_t workers,
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
	rc = weir_job_source_memory(job, NX_SCHEMA, nx_fill, ctx, events);
	if (rc == 0 && query == NX_Q1)
		rc = weir_job_map(job, NX_SCHEMA, nx_q1_map, ctx);
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
static int nx_verify(enum nx_query query, const struct nx_layout *layout, uint32_t workers,
		     uint64_t events, struct nx_result *result)
{
	const char *tmp = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/weir-nexmark-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		fprintf(stderr, "weir bench: nexmark: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	close(fd);
	struct weir_job_stats stats;
	uint64_t count = events < NX_VERIFY_EVENTS ? events : NX_VERIFY_EVENTS;
	int rc = nx_run(query, layout, workers, count, path, &stats);
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
		uint64_t n = nx_bid_event(b);
		uint64_t rng = n * UINT64_C(0x2545f4914f6cdd1d) + 1;
		struct nx_bid bid;
		nx_bid_ids(n, &rng, &bid);
		selected += bid.auction % NX_Q2_AUCTION_SKIP == 0;
	}
	return selected;
}

static int nx_engine_once(enum nx_query query, const struct bench_env *env, uint32_t workers,
			  struct bench_sample *out)
{
	struct nx_layout layout;
	int rc = nx_layout_init(&layout);
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
	int rc = nx_layout_init(&state.layout);
	if (rc != 0)
		return rc;
	state.count = events < NX_BASELINE_EVENTS ? events : NX_BASELINE_EVENTS;
	state.length = (size_t)state.count * state.layout.record_length;
	void *memory = mmap(NULL, state.length, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (memory == MAP_FAILED) {
		fprintf(stderr, "weir bench: nexmark: %zu bytes: %s\n", state.length,
			strerror(errno));
		return -ENOMEM;
	}
	state.records = memory;
	fprintf(stderr, "weir bench: nexmark: making %" PRIu64 " bids for the baseline\n",
		state.count);
	nx_fill(&state.layout, 0, 1, state.count, state.records, state.layout.record_length);
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
	int64_t start = nx_now_ns(), elapsed = 0;
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
		elapsed = nx_now_ns() - start;
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
	if (state != NULL && state->records != NULL)
		munmap(state->records, state->length);
	env->state = NULL;
}
