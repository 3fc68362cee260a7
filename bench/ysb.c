/* Goal: the Yahoo Streaming Benchmark (YSB) in the engine-only form the throughput papers run
 * (no Kafka, no Redis): ad events already in memory -> keep event_type "view" -> join ad_id to
 * its campaign through a static table -> key by campaign -> count per 10 s tumbling window of
 * event time.  `weir bench ysb` (bench.c) runs it as a weir job in a child process and as a
 * hand-written baseline here, over the same events, and fails when their counts differ.
 *
 * Method:
 * - Events: event i is a function of i alone (splitmix64 of i), so the baseline's buffer and
 *   every weir partition hold identical data whatever the worker count.  1,000 ads in 100
 *   campaigns (ad a -> campaign a / 10); ad ids are 15 random hex digits, so the join needs a
 *   real lookup: an open-addressing table keyed by the ad_id's 16 bytes (length byte + text),
 *   built once per process.  event_type view/click/purchase uniform; event_time starts at
 *   YSB_BASE_MS and rises 1 ms every YSB_EVENTS_PER_MS events: 100,000 events (about 33,000
 *   views) per 10 s window.
 * - Layouts: the baseline reads a packed 78-byte C struct (YSB's row: user_id, page_id, ad_id
 *   16 B each, event_type, ad_type 9 B each, event_time i64 ms, ip u32).  weir aligns numbers
 *   and pads records to 8 bytes; with event_time first its layout is 80 bytes (ip at 76), the
 *   least padding any order gives (YSB's order would be 88).
 * - Engine: weir_job_source_memory (each worker fills its share before the job's clock starts)
 *   -> filter -> map to (campaign_id:i64, event_time:ts) -> key_by campaign_id -> tumbling
 *   10,000 ms "count" with combine (two-phase: each pull's ~680 views become at most 100
 *   partial counts before the shuffle, as Flink's local-global aggregation does),
 *   out-of-orderness 0 -> JSON lines in a file, which the child reads back into
 *   per-(window, campaign) counts.  Rate: stats.events_in / stats.seconds.
 * - Baseline: one fused single-threaded loop over the packed buffer (filter, the same table
 *   lookup, window = event_time / 10000, counts[window][campaign]++).  Rate: events / the
 *   loop's time.  Both sides reduce their counts to one digest (every non-zero cell in
 *   (window, campaign) order, then the total), compared by bench.c.
 * - Memory ceiling: streaming reads of the baseline's buffer (every word; one u64 per record),
 *   best of three, reported as GB/s and the records/s that bandwidth allows at 78 B each; and
 *   every word read by one thread per online core at once (each a contiguous share): what
 *   the memory gives several cores together, against which the workers' scaling is read. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "bench/workloads.h"
#include "weir/weir.h"

#define YSB_ADS 1000u
#define YSB_CAMPAIGNS 100u
#define YSB_ADS_PER_CAMPAIGN (YSB_ADS / YSB_CAMPAIGNS)
#define YSB_SLOTS 2048u /* a power of two, at least twice YSB_ADS */
#define YSB_WINDOW_MS INT64_C(10000)
#define YSB_BASE_MS INT64_C(1700000000000) /* 2023-11-14, a multiple of the window */
#define YSB_EVENTS_PER_MS 10u		   /* 100,000 events per window */
#define YSB_EVENTS_DEFAULT UINT64_C(20000000) /* 1.56 GB packed, 1.6 GB in weir's layout */
#define YSB_EVENTS_MAX UINT64_C(1000000000)
#define YSB_PACKED_LENGTH 78u
#define YSB_ROW_LINE_MAX 512
#define YSB_BANDWIDTH_TRIES 3

#define YSB_SCHEMA                                                                              \
	"event_time:ts,user_id:str15,page_id:str15,ad_id:str15,event_type:str8,ad_type:str8,"    \
	"ip:ipv4"
#define YSB_MAP_SCHEMA "campaign_id:i64,event_time:ts"

/* YSB's row as the baseline stores it: no padding. */
struct ysb_packed_event {
	uint8_t user_id[16];	/* str15: length byte, then up to 15 bytes, zero padded */
	uint8_t page_id[16];
	uint8_t ad_id[16];
	uint8_t event_type[9];	/* str8 */
	uint8_t ad_type[9];
	int64_t event_time;	/* ms */
	uint32_t ip;		/* network order */
} __attribute__((packed));

_Static_assert(sizeof(struct ysb_packed_event) == YSB_PACKED_LENGTH, "YSB's 78-byte row");

/* Byte offsets of the fields in one record of a layout. */
struct ysb_layout {
	uint32_t user_id, page_id, ad_id, event_type, ad_type, event_time, ip;
};

static const struct ysb_layout packed_layout = {
	.user_id = offsetof(struct ysb_packed_event, user_id),
	.page_id = offsetof(struct ysb_packed_event, page_id),
	.ad_id = offsetof(struct ysb_packed_event, ad_id),
	.event_type = offsetof(struct ysb_packed_event, event_type),
	.ad_type = offsetof(struct ysb_packed_event, ad_type),
	.event_time = offsetof(struct ysb_packed_event, event_time),
	.ip = offsetof(struct ysb_packed_event, ip),
};

struct ysb_slot {
	uint64_t key[2];  /* the ad_id's 16 bytes */
	int64_t campaign; /* -1: empty */
	uint64_t unused;  /* keeps a slot at 32 bytes, two to a cache line */
};

/* The static ad table: built once per process by ads_init(), read-only afterwards (workers
 * read it concurrently). */
struct ysb_ads {
	uint8_t ad_id[YSB_ADS][16];
	struct ysb_slot slots[YSB_SLOTS];
	bool ready;
};

static struct ysb_ads ysb_ads;

static const uint8_t ysb_view[9] = {4, 'v', 'i', 'e', 'w'};

static inline uint64_t splitmix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static int64_t monotonic_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* A str15 field holding 15 hex digits of @value. */
static void hex15(uint8_t *field, uint64_t value)
{
	static const char digits[] = "0123456789abcdef";
	field[0] = 15;
	for (uint32_t k = 0; k < 15; k++)
		field[1 + k] = (uint8_t)digits[(value >> (4 * k)) & 15];
}

static inline uint32_t ad_slot(uint64_t k0, uint64_t k1)
{
	uint64_t h = k0 ^ (k1 * UINT64_C(0x9e3779b97f4a7c15));
	h = (h ^ (h >> 31)) * UINT64_C(0xbf58476d1ce4e5b9);
	return (uint32_t)(h >> 40) & (YSB_SLOTS - 1);
}

/* The campaign of the ad whose 16 id bytes are at @ad_id, or -1 for an unknown ad. */
static inline int64_t ad_campaign(const struct ysb_ads *ads, const uint8_t *ad_id)
{
	uint64_t k0, k1;
	memcpy(&k0, ad_id, sizeof(k0));
	memcpy(&k1, ad_id + 8, sizeof(k1));
	for (uint32_t s = ad_slot(k0, k1), probes = 0; probes < YSB_SLOTS;
	     s = (s + 1) & (YSB_SLOTS - 1), probes++) {
		const struct ysb_slot *slot = &ads->slots[s];
		if (slot->key[0] == k0 && slot->key[1] == k1)
			return slot->campaign;
		if (slot->campaign < 0)
			return -1;
	}
	return -1;
}

/* Builds the ad ids and the lookup table.  Context: before any worker reads them. */
static int ads_init(struct ysb_ads *ads)
{
	if (ads->ready)
		return 0;
	for (uint32_t s = 0; s < YSB_SLOTS; s++)
		ads->slots[s] = (struct ysb_slot){.campaign = -1};
	for (uint32_t a = 0; a < YSB_ADS; a++) {
		hex15(ads->ad_id[a], splitmix64(UINT64_C(0xad000000) + a));
		if (ad_campaign(ads, ads->ad_id[a]) >= 0)
			return -EEXIST; /* two ads drew the same 60 bits: cannot happen */
		uint64_t k0, k1;
		memcpy(&k0, ads->ad_id[a], sizeof(k0));
		memcpy(&k1, ads->ad_id[a] + 8, sizeof(k1));
		uint32_t s = ad_slot(k0, k1);
		while (ads->slots[s].campaign >= 0)
			s = (s + 1) & (YSB_SLOTS - 1);
		ads->slots[s] = (struct ysb_slot){
			.key = {k0, k1}, .campaign = (int64_t)(a / YSB_ADS_PER_CAMPAIGN)};
	}
	for (uint32_t a = 0; a < YSB_ADS; a++)
		if (ad_campaign(ads, ads->ad_id[a]) != (int64_t)(a / YSB_ADS_PER_CAMPAIGN))
			return -EPROTO;
	ads->ready = true;
	return 0;
}

/* Event @i, written at @record in @layout.  The one definition of the data: both sides call
 * it, so they hold the same events. */
static void event_write(uint64_t i, uint8_t *record, const struct ysb_layout *layout)
{
	static const uint8_t types[3][9] = {
		{4, 'v', 'i', 'e', 'w'},
		{5, 'c', 'l', 'i', 'c', 'k'},
		{8, 'p', 'u', 'r', 'c', 'h', 'a', 's', 'e'},
	};
	static const uint8_t ad_types[5][9] = {
		{6, 'b', 'a', 'n', 'n', 'e', 'r'},
		{5, 'm', 'o', 'd', 'a', 'l'},
		{7, 's', 'p', 'o', 'n', 's', 'o', 'r'},
		{4, 'm', 'a', 'i', 'l'},
		{6, 'm', 'o', 'b', 'i', 'l', 'e'},
	};
	uint64_t h = splitmix64(i);
	int64_t time = YSB_BASE_MS + (int64_t)(i / YSB_EVENTS_PER_MS);
	uint32_t ip = (uint32_t)splitmix64(h ^ 3);
	hex15(record + layout->user_id, splitmix64(h ^ 1));
	hex15(record + layout->page_id, splitmix64(h ^ 2));
	memcpy(record + layout->ad_id, ysb_ads.ad_id[h % YSB_ADS], 16);
	memcpy(record + layout->event_type, types[(h >> 32) % 3], 9);
	memcpy(record + layout->ad_type, ad_types[(h >> 40) % 5], 9);
	memcpy(record + layout->event_time, &time, sizeof(time));
	memcpy(record + layout->ip, &ip, sizeof(ip));
}

static inline bool is_view(const uint8_t *event_type)
{
	return memcmp(event_type, ysb_view, sizeof(ysb_view)) == 0;
}

/* Windows the events 0 .. @event_count-1 fall into. */
static uint64_t window_count_of(uint64_t event_count)
{
	int64_t last = YSB_BASE_MS + (int64_t)((event_count - 1) / YSB_EVENTS_PER_MS);
	return (uint64_t)(last / YSB_WINDOW_MS - YSB_BASE_MS / YSB_WINDOW_MS) + 1;
}

/* Every non-zero cell of @counts (window-major) in order, then their total, folded into one
 * value; *total gets the total. */
static uint64_t digest_of(const uint32_t *counts, uint64_t window_count, uint64_t *total)
{
	uint64_t digest = UINT64_C(0x5953422d636f756e), sum = 0;
	for (uint64_t w = 0; w < window_count; w++) {
		for (uint32_t c = 0; c < YSB_CAMPAIGNS; c++) {
			uint32_t n = counts[w * YSB_CAMPAIGNS + c];
			if (n == 0)
				continue;
			digest = splitmix64(digest ^ (uint64_t)(YSB_BASE_MS + (int64_t)w *
								YSB_WINDOW_MS));
			digest = splitmix64(digest ^ c);
			digest = splitmix64(digest ^ n);
			sum += n;
		}
	}
	*total = sum;
	return splitmix64(digest ^ sum);
}

/* ---- the engine (in the bench's child process) ---- */

struct ysb_engine {
	struct ysb_layout layout; /* of the source's records */
	uint32_t out_campaign;	  /* offsets in the map's output */
	uint32_t out_time;
};

static void ysb_fill(void *ctx, uint64_t first, uint64_t step, uint64_t count, uint8_t *records,
		     uint32_t record_length)
{
	const struct ysb_engine *engine = ctx;
	for (uint64_t k = 0; k < count; k++)
		event_write(first + k * step, records + k * record_length, &engine->layout);
}

static void ysb_filter(void *ctx, const uint8_t *records, uint32_t count, uint32_t record_length,
		       uint8_t *keep)
{
	const struct ysb_engine *engine = ctx;
	const uint8_t *type = records + engine->layout.event_type;
	for (uint32_t k = 0; k < count; k++)
		keep[k] = is_view(type + (size_t)k * record_length);
}

static void ysb_map(void *ctx, const uint8_t *records, uint32_t count, uint32_t in_length,
		    uint8_t *out, uint32_t out_length)
{
	const struct ysb_engine *engine = ctx;
	for (uint32_t k = 0; k < count; k++) {
		const uint8_t *in = records + (size_t)k * in_length;
		uint8_t *row = out + (size_t)k * out_length;
		int64_t campaign = ad_campaign(&ysb_ads, in + engine->layout.ad_id);
		memcpy(row + engine->out_campaign, &campaign, sizeof(campaign));
		memcpy(row + engine->out_time, in + engine->layout.event_time, sizeof(int64_t));
	}
}

static int column(struct weir_job *job, const char *name, uint32_t *offset)
{
	int rc = weir_job_column_offset(job, name);
	if (rc >= 0)
		*offset = (uint32_t)rc;
	return rc < 0 ? rc : 0;
}

/* Source -> filter -> map -> key_by -> window -> sink to @rows_path. */
static int job_build(struct weir_job *job, struct ysb_engine *engine, uint64_t event_count,
		     const char *rows_path)
{
	struct ysb_layout *l = &engine->layout;
	int rc = weir_job_source_memory(job, YSB_SCHEMA, ysb_fill, engine, event_count);
	if (rc == 0)
		rc = column(job, "user_id", &l->user_id);
	if (rc == 0)
		rc = column(job, "page_id", &l->page_id);
	if (rc == 0)
		rc = column(job, "ad_id", &l->ad_id);
	if (rc == 0)
		rc = column(job, "event_type", &l->event_type);
	if (rc == 0)
		rc = column(job, "ad_type", &l->ad_type);
	if (rc == 0)
		rc = column(job, "event_time", &l->event_time);
	if (rc == 0)
		rc = column(job, "ip", &l->ip);
	if (rc == 0)
		rc = weir_job_filter(job, ysb_filter, engine);
	if (rc == 0)
		rc = weir_job_map(job, YSB_MAP_SCHEMA, ysb_map, engine);
	if (rc == 0)
		rc = column(job, "campaign_id", &engine->out_campaign);
	if (rc == 0)
		rc = column(job, "event_time", &engine->out_time);
	struct weir_window_spec window = {
		.time_column = "event_time",
		.kind = WEIR_WINDOW_TUMBLING,
		.size = YSB_WINDOW_MS,
		.slide = YSB_WINDOW_MS,
		.allowed_lateness = 0,
		.aggregates = "count",
		.combine = true, /* two-phase: a pull's views become <= 100 rows per window */
	};
	if (rc == 0)
		rc = weir_job_key_by(job, "campaign_id");
	if (rc == 0)
		rc = weir_job_window(job, &window);
	if (rc == 0)
		rc = weir_job_sink(job, rows_path, WEIR_FORMAT_JSONL);
	return rc;
}

/* Reads the window rows at @path into @counts (window-major, zeroed by the caller).  A row
 * outside the run's windows or campaigns, or a second row for one (window, campaign), is an
 * error: a correct run emits each cell once.  Returns: 0, -errno, or -EPROTO. */
static int rows_read(const char *path, uint32_t *counts, uint64_t window_count,
		     uint64_t *row_count)
{
	FILE *in = fopen(path, "r");
	if (in == NULL)
		return -errno;
	char line[YSB_ROW_LINE_MAX];
	int rc = 0;
	*row_count = 0;
	while (rc == 0 && fgets(line, sizeof(line), in) != NULL) {
		int64_t start = 0, campaign = 0, count = 0;
		rc = bench_json_integer(line, "window_start", &start);
		if (rc == 0)
			rc = bench_json_integer(line, "campaign_id", &campaign);
		if (rc == 0)
			rc = bench_json_integer(line, "count", &count);
		int64_t window = (start - YSB_BASE_MS) / YSB_WINDOW_MS;
		if (rc == 0 && (start < YSB_BASE_MS || start % YSB_WINDOW_MS != 0 ||
				(uint64_t)window >= window_count || campaign < 0 ||
				campaign >= YSB_CAMPAIGNS || count <= 0 || count > UINT32_MAX))
			rc = -EPROTO;
		uint32_t *cell = NULL;
		if (rc == 0)
			cell = &counts[(uint64_t)window * YSB_CAMPAIGNS + (uint64_t)campaign];
		if (rc == 0 && *cell != 0)
			rc = -EPROTO;
		if (rc == 0)
			*cell = (uint32_t)count;
		else
			fprintf(stderr, "weir bench: ysb: bad or repeated window row: %s", line);
		*row_count += rc == 0;
	}
	fclose(in);
	return rc;
}

/* The engine's rows at @rows_path as a digest.  Returns: 0, -ENOMEM, or rows_read's. */
static int engine_digest(const char *rows_path, uint64_t event_count, uint64_t rows_out,
			 uint64_t *digest, uint64_t *total)
{
	uint64_t window_count = window_count_of(event_count), row_count = 0;
	uint32_t *counts = calloc(window_count * YSB_CAMPAIGNS, sizeof(counts[0]));
	if (counts == NULL)
		return -ENOMEM;
	int rc = rows_read(rows_path, counts, window_count, &row_count);
	if (rc == 0 && row_count != rows_out) {
		fprintf(stderr, "weir bench: ysb: %" PRIu64 " rows in %s, the job emitted %" PRIu64
				"\n", row_count, rows_path, rows_out);
		rc = -EPROTO;
	}
	if (rc == 0)
		*digest = digest_of(counts, window_count, total);
	free(counts);
	return rc;
}

/* The events a run makes: --events, or the default. */
uint64_t bench_ysb_event_count(uint64_t requested)
{
	return requested != 0 ? requested : YSB_EVENTS_DEFAULT;
}

/* One engine run over @event_count events on @workers workers; the window rows go to
 * @rows_path.  Context: the bench's child process.  Returns: 0 or a negative errno (said on
 * stderr). */
int bench_ysb_engine_once(uint64_t event_count, uint32_t workers, const char *rows_path,
			  uint64_t *events, double *seconds, uint64_t *digest, uint64_t *total)
{
	static struct ysb_engine engine; /* read by the workers' callbacks during the run */
	int rc = ads_init(&ysb_ads);
	if (rc != 0 || event_count == 0 || event_count > YSB_EVENTS_MAX)
		return rc != 0 ? rc : -EINVAL;
	struct weir_job_options options;
	weir_job_options_init(&options);
	options.worker_count = workers;
	options.out_of_orderness = 0;
	struct weir_job *job = NULL;
	rc = bench_job_create(&job, &options, "ysb");
	if (rc != 0)
		return rc;
	rc = job_build(job, &engine, event_count, rows_path);
	if (rc == 0)
		rc = weir_job_run(job);
	struct weir_job_stats stats;
	weir_job_get_stats(job, &stats);
	if (rc != 0 || stats.events_in != event_count || stats.late_dropped != 0 ||
	    stats.late_updates != 0 || stats.state_full != 0) {
		fprintf(stderr, "weir bench: ysb: engine: %s (%" PRIu64 " of %" PRIu64
				" events in, %" PRIu64 " late)\n",
			rc != 0 ? weir_job_error(job) : "lost events", stats.events_in,
			event_count, stats.late_dropped + stats.late_updates);
		weir_job_report(job, stderr);
		rc = rc != 0 ? rc : -EPROTO;
	}
	weir_job_destroy(job);
	if (rc == 0)
		rc = engine_digest(rows_path, event_count, stats.rows_out, digest, total);
	*events = stats.events_in;
	*seconds = stats.seconds;
	return rc;
}

/* ---- the baseline and the memory ceiling (in the bench's process) ---- */

/* The packed buffer of every event and the baseline's counts, made once. */
struct bench_ysb {
	struct ysb_packed_event *events; /* mmap'ed, event_count of them */
	uint64_t event_count;
	size_t length;			 /* bytes mapped */
	uint64_t window_count;
	uint32_t *counts;		 /* window_count x YSB_CAMPAIGNS */
};

/* Sums one u64 per 78-byte record (the event_time): touches every cache line anyway. */
static uint64_t read_one_word_per_record(const struct ysb_packed_event *events, uint64_t count)
{
	uint64_t sum = 0;
	for (uint64_t i = 0; i < count; i++)
		sum += (uint64_t)events[i].event_time;
	return sum;
}

/* Sums every 8-byte word of @length bytes at @bytes (8-byte aligned). */
static uint64_t read_every_word(const uint8_t *bytes, size_t length)
{
	const uint64_t *words = (const uint64_t *)(const void *)bytes;
	size_t word_count = length / 8, k = 0;
	uint64_t a = 0, b = 0, c = 0, d = 0;
	for (; k + 4 <= word_count; k += 4) {
		a += words[k];
		b += words[k + 1];
		c += words[k + 2];
		d += words[k + 3];
	}
	for (; k < word_count; k++)
		a += words[k];
	return a + b + c + d;
}

#define YSB_CEILING_THREADS_MAX 64

/* One thread's share of the buffer for the all-cores read. */
struct ceiling_share {
	pthread_t thread;
	const uint8_t *bytes;
	size_t length;
	uint64_t sum;
};

static void *read_share(void *arg)
{
	struct ceiling_share *share = arg;
	share->sum = read_every_word(share->bytes, share->length);
	return NULL;
}

/* Every word of the buffer read by @threads threads at once, each a contiguous share: what
 * the memory gives several workers together.  Returns: bytes per second, 0 if no thread. */
static double read_all_cores(const struct bench_ysb *ysb, uint32_t threads)
{
	struct ceiling_share shares[YSB_CEILING_THREADS_MAX];
	size_t step = ysb->length / threads / 64 * 64;
	int64_t start = monotonic_ns();
	uint32_t started = 0;
	for (uint32_t t = 0; t < threads; t++) {
		shares[t].bytes = (const uint8_t *)ysb->events + (size_t)t * step;
		shares[t].length = t + 1 == threads ? ysb->length - (size_t)t * step : step;
		if (pthread_create(&shares[t].thread, NULL, read_share, &shares[t]) != 0)
			break;
		started++;
	}
	volatile uint64_t sink = 0;
	for (uint32_t t = 0; t < started; t++) {
		pthread_join(shares[t].thread, NULL);
		sink += shares[t].sum;
	}
	(void)sink;
	int64_t end = monotonic_ns();
	return started == threads ? (double)ysb->length * 1e9 / (double)(end - start) : 0;
}

/* Best of YSB_BANDWIDTH_TRIES of each read, in bytes per second, into @text and @json. */
static void measure_ceiling(const struct bench_ysb *ysb, char *text, size_t text_capacity,
			    char *json, size_t json_capacity)
{
	volatile uint64_t sink = 0;
	double every = 0, strided = 0, together = 0;
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	uint32_t cores = online < 1 ? 1
			 : online > YSB_CEILING_THREADS_MAX ? YSB_CEILING_THREADS_MAX
							    : (uint32_t)online;
	for (int t = 0; t < YSB_BANDWIDTH_TRIES; t++) {
		int64_t start = monotonic_ns();
		sink += read_every_word((const uint8_t *)ysb->events, ysb->length);
		int64_t middle = monotonic_ns();
		sink += read_one_word_per_record(ysb->events, ysb->event_count);
		int64_t end = monotonic_ns();
		double bytes = (double)ysb->event_count * YSB_PACKED_LENGTH;
		if (bytes * 1e9 / (double)(middle - start) > every)
			every = bytes * 1e9 / (double)(middle - start);
		if (bytes * 1e9 / (double)(end - middle) > strided)
			strided = bytes * 1e9 / (double)(end - middle);
		double all = read_all_cores(ysb, cores);
		together = all > together ? all : together;
	}
	(void)sink;
	snprintf(text, text_capacity,
		 "  memory:   one core streaming the 78 B records: every word %.2f GB/s "
		 "= %.1fM records/s; one u64 per record %.2f GB/s = %.1fM records/s\n"
		 "            all %u cores at once, every word: %.2f GB/s = %.1fM records/s "
		 "(%.2fx one core)\n",
		 every / 1e9, every / YSB_PACKED_LENGTH / 1e6, strided / 1e9,
		 strided / YSB_PACKED_LENGTH / 1e6, cores, together / 1e9,
		 together / YSB_PACKED_LENGTH / 1e6, every > 0 ? together / every : 0);
	snprintf(json, json_capacity,
		 ",\"record_bytes\":%u,\"weir_record_bytes\":80,\"read_gb_per_s\":%.3f,"
		 "\"read_ceiling_records_per_s\":%.6g,\"strided_read_gb_per_s\":%.3f,"
		 "\"strided_ceiling_records_per_s\":%.6g,\"all_cores\":%u,"
		 "\"all_cores_read_gb_per_s\":%.3f",
		 YSB_PACKED_LENGTH, every / 1e9, every / YSB_PACKED_LENGTH, strided / 1e9,
		 strided / YSB_PACKED_LENGTH, cores, together / 1e9);
}

void bench_ysb_destroy(struct bench_ysb *ysb)
{
	if (ysb == NULL)
		return;
	if (ysb->events != NULL)
		munmap(ysb->events, ysb->length);
	free(ysb->counts);
	free(ysb);
}

/* Makes the baseline's buffer of @event_count events and measures the memory ceiling over
 * it; describes the input in @note, the ceiling in @text (a header line) and @json (fields to
 * append to each JSON row).  Returns: 0, -EINVAL (bad count), -ENOMEM. */
int bench_ysb_create(struct bench_ysb **out, uint64_t event_count, char *note,
		     size_t note_capacity, char *text, size_t text_capacity, char *json,
		     size_t json_capacity)
{
	int rc = ads_init(&ysb_ads);
	if (rc != 0 || event_count == 0 || event_count > YSB_EVENTS_MAX)
		return rc != 0 ? rc : -EINVAL;
	struct bench_ysb *ysb = calloc(1, sizeof(*ysb));
	if (ysb == NULL)
		return -ENOMEM;
	ysb->event_count = event_count;
	ysb->window_count = window_count_of(event_count);
	ysb->length = (size_t)event_count * YSB_PACKED_LENGTH;
	ysb->counts = calloc(ysb->window_count * YSB_CAMPAIGNS, sizeof(ysb->counts[0]));
	void *memory = mmap(NULL, ysb->length, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ysb->events = memory == MAP_FAILED ? NULL : memory;
	if (ysb->counts == NULL || ysb->events == NULL) {
		bench_ysb_destroy(ysb);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < event_count; i++)
		event_write(i, (uint8_t *)&ysb->events[i], &packed_layout);
	snprintf(note, note_capacity,
		 "%" PRIu64 " events in memory (%u B packed for the baseline, %.2f GB; 80 B in "
		 "weir's layout), %u ads in %u campaigns, %u events/ms: %" PRIu64
		 " windows of 10 s, 1/3 views",
		 event_count, YSB_PACKED_LENGTH, (double)ysb->length / 1e9, YSB_ADS,
		 YSB_CAMPAIGNS, YSB_EVENTS_PER_MS, ysb->window_count);
	measure_ceiling(ysb, text, text_capacity, json, json_capacity);
	*out = ysb;
	return 0;
}

/* One pass of the fused loop; only the loop is timed.  Returns: 0, or -EPROTO when an event
 * names an unknown ad or falls outside the run's windows (the data is broken). */
int bench_ysb_baseline_once(struct bench_ysb *ysb, uint64_t *events, double *seconds,
			    uint64_t *digest, uint64_t *total)
{
	const struct ysb_packed_event *all = ysb->events;
	const int64_t first_window = YSB_BASE_MS / YSB_WINDOW_MS;
	const uint64_t window_count = ysb->window_count;
	uint32_t *counts = ysb->counts;
	uint64_t strays = 0;
	memset(counts, 0, window_count * YSB_CAMPAIGNS * sizeof(counts[0]));
	int64_t start = monotonic_ns();
	for (uint64_t i = 0; i < ysb->event_count; i++) {
		const struct ysb_packed_event *event = &all[i];
		if (!is_view(event->event_type))
			continue;
		int64_t campaign = ad_campaign(&ysb_ads, event->ad_id);
		uint64_t window = (uint64_t)(event->event_time / YSB_WINDOW_MS - first_window);
		if (campaign < 0 || window >= window_count) {
			strays++;
			continue;
		}
		counts[window * YSB_CAMPAIGNS + (uint64_t)campaign]++;
	}
	int64_t end = monotonic_ns();
	if (strays != 0) {
		fprintf(stderr, "weir bench: ysb: baseline: %" PRIu64 " events with an unknown "
				"ad or outside the windows\n", strays);
		return -EPROTO;
	}
	*events = ysb->event_count;
	*seconds = (double)(end - start) / 1e9;
	*digest = digest_of(counts, window_count, total);
	return 0;
}
