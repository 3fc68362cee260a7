/* Goal: the shuffle tax, as the `weir bench` workload shuffle-tax: what key_by's exchange over
 * the ring mesh costs a keyed job, measured as the same keyed count over the same events
 * arriving (a) already partitioned by the worker that owns their key, so no record crosses a
 * ring, and (b) spread over the workers with no regard to keys, so (n-1)/n of them cross.
 * The report's "baseline" column is (a), per worker, and its "engine" column (b); their ratio
 * is shuffled / pre-partitioned (the goal is >= 0.8).  With one worker nothing crosses either
 * way: both columns then measure the same job and the ratio shows the noise.
 *
 * Method:
 * - Job: weir_job_source_memory ("ts:ts,key:i64") -> key_by key -> tumbling window of
 *   SH_WINDOW "count" -> a discarding sink.  Options: the fixed seed SH_SEED and
 *   SH_KEY_GROUPS key groups, so the fill function knows where each key goes: owner(key) =
 *   weir_key_group_owner(weir_key_group_of_hash(weir_key_hash(the key's 8 stored bytes, as
 *   weir_key_encode writes them, SH_SEED), G), G, workers) (core/keygroup.h).
 * - Events: --events (default 16M) rounded down to a multiple of the worker count n; rows
 *   j = 0 .. N/n - 1 of n events each.  Event (p, j) has time j * n + p and a key drawn
 *   (splitmix64 of its time) from the keys of SH_KEYS (100,000) that worker p owns.
 *   Pre-partitioned: partition p holds events (p, 0), (p, 1), ...  Shuffled: partition q's
 *   j-th event is (p, j) with p = (q + r(j)) % n, r(j) a hash of j, so each partition holds
 *   a mix of every owner's keys, and for each j the n partitions hold the n events of row j:
 *   the same multiset of events.  Time rises strictly within every partition in both layouts
 *   (out-of-orderness 0, nothing is late); 16M events make 16 windows of about 100,000 keys.
 * - Checks (both sides, every run): events_in == N; rows_out == the (window, key) pairs a
 *   plain loop over the same events counts; nothing late or refused.  Then a small run over
 *   the first SH_VERIFY_EVENTS (at most) events writes JSON lines to a temporary file, which
 *   is read back: its row count and the sum of its counts must equal that loop's pairs and
 *   events.  The digest (rows of the big run, rows and count sum of the small one) must
 *   then be equal on both sides; bench.c compares them.
 * - Rates: engine (child process): events_in / stats.seconds, per worker; baseline (this
 *   process, a job like the engine's): events_in / (stats.seconds * n), i.e. per worker. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/workloads.h"
#include "core/keygroup.h"
#include "weir/weir.h"

#define SH_SCHEMA "ts:ts,key:i64"
#define SH_KEYS 100000u
#define SH_SEED UINT64_C(0x7765697273687566) /* "weirshuf" */
#define SH_KEY_GROUPS 4096u
#define SH_WINDOW INT64_C(1000000)
#define SH_EVENTS_DEFAULT UINT64_C(16000000)
#define SH_VERIFY_EVENTS UINT64_C(400000)
#define SH_WORKERS_MAX 256u
#define SH_LINE_MAX 512

/* The events of one run: which keys each worker owns, and the layout. */
struct sh_plan {
	uint32_t workers;
	bool shuffled;
	uint32_t first[SH_WORKERS_MAX + 1]; /* worker w's keys: keys[first[w] .. first[w+1]) */
	int64_t keys[SH_KEYS];
};

static uint64_t sh_mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* Groups the keys by the worker weir will send them to.  Returns: 0, or -EINVAL when a worker
 * owns no key (more workers than that makes sense for). */
static int sh_plan_init(struct sh_plan *plan, uint32_t workers, bool shuffled)
{
	if (workers == 0 || workers > SH_WORKERS_MAX)
		return -EINVAL;
	static uint32_t owner[SH_KEYS];
	uint32_t count[SH_WORKERS_MAX] = {0};
	for (uint32_t k = 0; k < SH_KEYS; k++) {
		int64_t key = k;
		uint64_t hash = weir_key_hash(&key, sizeof(key), SH_SEED);
		owner[k] = weir_key_group_owner(weir_key_group_of_hash(hash, SH_KEY_GROUPS),
						SH_KEY_GROUPS, workers);
		count[owner[k]]++;
	}
	plan->workers = workers;
	plan->shuffled = shuffled;
	plan->first[0] = 0;
	for (uint32_t w = 0; w < workers; w++) {
		if (count[w] == 0)
			return -EINVAL;
		plan->first[w + 1] = plan->first[w] + count[w];
		count[w] = plan->first[w]; /* now the next free slot */
	}
	for (uint32_t k = 0; k < SH_KEYS; k++)
		plan->keys[count[owner[k]]++] = k;
	return 0;
}

/* Event (p, j): its time and key. */
static void sh_event(const struct sh_plan *plan, uint32_t p, uint64_t j, int64_t *ts,
		     int64_t *key)
{
	*ts = (int64_t)(j * plan->workers + p);
	uint32_t owned = plan->first[p + 1] - plan->first[p];
	*key = plan->keys[plan->first[p] + sh_mix((uint64_t)*ts) % owned];
}

/* weir_fill_fn: partition @first of @step, @count events. */
static void sh_fill(void *ctx, uint64_t first, uint64_t step, uint64_t count, uint8_t *records,
		    uint32_t record_length)
{
	const struct sh_plan *plan = ctx;
	if (step != plan->workers || record_length != 16)
		abort(); /* our bug: one partition per worker, two 8-byte fields */
	for (uint64_t j = 0; j < count; j++) {
		uint32_t p = (uint32_t)first;
		if (plan->shuffled)
			p = (uint32_t)((first + sh_mix(~j) % step) % step);
		int64_t values[2];
		sh_event(plan, p, j, &values[0], &values[1]);
		memcpy(records + j * record_length, values, sizeof(values));
	}
}

/* The (window, key) pairs among the first @events events (a multiple of the workers). */
static uint64_t sh_expected_rows(const struct sh_plan *plan, uint64_t events)
{
	static int64_t stamp[SH_KEYS]; /* 1 + the last window each key was seen in */
	memset(stamp, 0, sizeof(stamp));
	uint64_t rows = 0;
	for (uint64_t j = 0; j < events / plan->workers; j++) {
		for (uint32_t p = 0; p < plan->workers; p++) { /* time order */
			int64_t ts, key;
			sh_event(plan, p, j, &ts, &key);
			int64_t window = ts / SH_WINDOW + 1;
			rows += stamp[key] != window;
			stamp[key] = window;
		}
	}
	return rows;
}

static int sh_run(struct sh_plan *plan, uint64_t events, const char *sink_path,
		  struct weir_job_stats *stats)
{
	struct weir_job_options options;
	weir_job_options_init(&options);
	options.worker_count = plan->workers;
	options.seed = SH_SEED;
	options.key_groups = SH_KEY_GROUPS;
	options.out_of_orderness = 0;
	struct weir_job *job = NULL;
	int rc = bench_job_create(&job, &options, "shuffle-tax");
	if (rc != 0)
		return rc;
	struct weir_window_spec window = {
		.time_column = "ts", .kind = WEIR_WINDOW_TUMBLING, .size = SH_WINDOW,
		.slide = SH_WINDOW, .allowed_lateness = 0, .aggregates = "count"};
	rc = weir_job_source_memory(job, SH_SCHEMA, sh_fill, plan, events);
	if (rc == 0)
		rc = weir_job_key_by(job, "key");
	if (rc == 0)
		rc = weir_job_window(job, &window);
	/* Measured runs discard the rows: formatting 1.6M of them would hide the shuffle. */
	return bench_sink_run(job, rc, sink_path, "shuffle-tax", stats);
}

/* Checks a run's counters against the plain loop's.  Returns: 0 or -EPROTO. */
static int sh_check(const struct sh_plan *plan, const struct weir_job_stats *stats,
		    uint64_t events, const char *what)
{
	uint64_t rows = sh_expected_rows(plan, events);
	if (stats->events_in == events && stats->rows_out == rows && stats->late_dropped == 0 &&
	    stats->late_updates == 0 && stats->state_full == 0)
		return 0;
	fprintf(stderr, "weir bench: shuffle-tax: %s run, %u workers, %s: %" PRIu64 " of %"
			PRIu64 " events in, %" PRIu64 " rows out (expected %" PRIu64 "), %"
			PRIu64 " late, %" PRIu64 " refused\n",
		what, plan->workers, plan->shuffled ? "shuffled" : "pre-partitioned",
		stats->events_in, events, stats->rows_out, rows,
		stats->late_dropped + stats->late_updates, stats->state_full);
	return -EPROTO;
}

/* Rows and the sum of "count" in a JSON-lines file. */
static int sh_read_counts(const char *path, uint64_t *rows, uint64_t *count_sum)
{
	FILE *in = fopen(path, "r");
	if (in == NULL)
		return -errno;
	char line[SH_LINE_MAX];
	int rc = 0;
	*rows = 0;
	*count_sum = 0;
	while (rc == 0 && fgets(line, sizeof(line), in) != NULL) {
		const char *count = strstr(line, "\"count\":");
		if (count == NULL) {
			fprintf(stderr, "weir bench: shuffle-tax: unexpected row: %s", line);
			rc = -EBADMSG;
			break;
		}
		*count_sum += strtoull(count + strlen("\"count\":"), NULL, 10);
		(*rows)++;
	}
	fclose(in);
	return rc;
}

/* The small run (at most SH_VERIFY_EVENTS of the @events) to a file, read back.  Adds its
 * rows and count sum to @digest. */
static int sh_verify(struct sh_plan *plan, uint64_t events, uint64_t *digest)
{
	const char *tmp = getenv("TMPDIR");
	char path[512];
	snprintf(path, sizeof(path), "%s/weir-shuffle-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0) {
		fprintf(stderr, "weir bench: shuffle-tax: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	close(fd);
	events = events < SH_VERIFY_EVENTS ? events : SH_VERIFY_EVENTS;
	events -= events % plan->workers;
	uint64_t rows = 0, sum = 0;
	struct weir_job_stats stats;
	int rc = sh_run(plan, events, path, &stats);
	if (rc == 0)
		rc = sh_check(plan, &stats, events, "checked");
	if (rc == 0)
		rc = sh_read_counts(path, &rows, &sum);
	unlink(path);
	if (rc == 0 && (rows != stats.rows_out || sum != events)) {
		fprintf(stderr, "weir bench: shuffle-tax: checked run: %" PRIu64 " rows in the "
				"file (%" PRIu64 " counted), counts add up to %" PRIu64
				" of %" PRIu64 " events\n", rows, stats.rows_out, sum, events);
		rc = -EPROTO;
	}
	*digest = sh_mix(*digest ^ sh_mix(rows) ^ sh_mix(sum + 1));
	return rc;
}

/* One measured run (rows discarded), checked, then the small checked run (to a file). */
static int sh_once(const struct bench_env *env, uint32_t workers, bool shuffled,
		   struct bench_sample *out)
{
	static struct sh_plan plan;
	int rc = sh_plan_init(&plan, workers, shuffled);
	if (rc != 0) {
		fprintf(stderr, "weir bench: shuffle-tax: %u workers: one owns no key\n", workers);
		return rc;
	}
	uint64_t events = env->options->events != 0 ? env->options->events : SH_EVENTS_DEFAULT;
	events -= events % workers;
	struct weir_job_stats stats;
	rc = sh_run(&plan, events, "/dev/null", &stats);
	if (rc == 0)
		rc = sh_check(&plan, &stats, events, "measured");
	uint64_t digest = sh_mix(stats.rows_out);
	if (rc == 0)
		rc = sh_verify(&plan, events, &digest);
	if (rc != 0)
		return rc;
	out->events = stats.events_in;
	out->seconds = stats.seconds * (shuffled ? 1 : workers); /* the baseline: per worker */
	out->digest = digest;
	out->digest_total = stats.rows_out;
	out->has_digest = true;
	return 0;
}

int bench_shuffle_prepare(struct bench_env *env)
{
	uint64_t events = env->options->events != 0 ? env->options->events : SH_EVENTS_DEFAULT;
	snprintf(env->note, sizeof(env->note),
		 "%" PRIu64 " events (ts, key: 16-byte records; %u keys; rounded down to a "
		 "multiple of the workers) made before the clock; tumbling windows of %" PRId64
		 " time units, count per key, rows discarded; seed %#" PRIx64
		 ", %u key groups", events, SH_KEYS, SH_WINDOW, SH_SEED, SH_KEY_GROUPS);
	env->has_baseline = true;
	return 0;
}

int bench_shuffle_engine_once(const struct bench_env *env, uint32_t workers,
			      struct bench_sample *out)
{
	return sh_once(env, workers, true, out);
}

int bench_shuffle_baseline_once(const struct bench_env *env, struct bench_sample *out)
{
	return sh_once(env, env->workers, false, out);
}
