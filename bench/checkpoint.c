/* Goal: what exactly-once costs, as the `weir bench` workload checkpoint: the same keyed job
 * with a checkpoint every second (engine column) and without checkpoints (baseline column),
 * interleaved in one run, plus what a checkpoint takes and how long recovery of a large state
 * takes.  The goal is a ratio >= 0.9.
 *
 * Method:
 * - Job: weir_job_source_generator ("ts:ts,key:i64,value:i64") -> key_by key -> tumbling
 *   window of CK_WINDOW, count and sum:value -> a discarding sink.  Event i has time
 *   i / CK_EVENTS_PER_TICK and a key drawn (splitmix64 of i) from CK_KEYS keys, so every key
 *   changes between two checkpoints: each incremental checkpoint writes about every live
 *   cell, the worst case for incremental checkpoints.
 * - Engine (child process): that job with a fresh state dir under the workload's directory
 *   and --checkpoint-interval CK_INTERVAL_MS; its output goes through the staged (two-phase)
 *   sink path.  Baseline (this process): the same job without a state dir, its rate per
 *   worker like the engine's.  Both must see every event and emit the same number of rows
 *   (the digest: rows out).
 * - Checkpoint figures (prepare, once, this process): one engine-like run's checkpoint count,
 *   p50/p99 duration (barrier requested to manifest durable) and log bytes per checkpoint.
 * - Recovery (prepare, once): a job over CK_RECOVERY_KEYS keys in one window (so every cell
 *   stays live; about 1 GiB of state as a snapshot writes it), checkpointed
 *   every CK_RECOVERY_INTERVAL_MS; then its final manifest is deleted (as if the process
 *   died just before it) and the job run again from the state dir: the report gives the
 *   state that checkpoint held and the time to rebuild it (manifest, logs replayed, output
 *   cut back) before the rest of the input runs.  --events scales the throughput runs only.
 * - For smoke tests: WEIR_BENCH_CHECKPOINT_MS overrides both intervals, and
 *   WEIR_BENCH_RECOVERY_KEYS the recovery job's size (one event per key). */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/workloads.h"
#include "weir/weir.h"

#define CK_SCHEMA "ts:ts,key:i64,value:i64"
#define CK_KEYS 100000u
#define CK_EVENTS_DEFAULT UINT64_C(250000000) /* about 5 s at 1 worker: several checkpoints */
#define CK_EVENTS_PER_TICK 1000u
#define CK_WINDOW INT64_C(10000) /* ticks: 10M events per window */
#define CK_INTERVAL_MS 1000u
#define CK_RECOVERY_KEYS UINT64_C(20000000)
#define CK_RECOVERY_EVENTS UINT64_C(20000000)
#define CK_RECOVERY_WINDOW (INT64_C(1) << 40) /* one window: every cell stays live */
#define CK_RECOVERY_INTERVAL_MS 500u
#define CK_RECOVERY_BUDGET_MIB 8192u

struct ck_shape {
	uint64_t keys;
	int64_t window; /* ticks */
};

/* @fallback, or the environment variable @name when it holds a positive number. */
static uint64_t ck_setting(const char *name, uint64_t fallback)
{
	const char *text = getenv(name);
	char *end = NULL;
	unsigned long long value = text != NULL ? strtoull(text, &end, 10) : 0;
	return text != NULL && end != text && *end == '\0' && value > 0 ? value : fallback;
}

static uint64_t ck_mix(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* weir_generate_fn: events first, first + step, ... */
static void ck_generate(void *ctx, uint64_t first, uint64_t step, uint32_t count,
			uint8_t *records, uint32_t record_length)
{
	const struct ck_shape *shape = ctx;
	for (uint32_t i = 0; i < count; i++) {
		uint64_t event = first + (uint64_t)i * step;
		int64_t fields[3] = {(int64_t)(event / CK_EVENTS_PER_TICK),
				     (int64_t)(ck_mix(event) % shape->keys),
				     (int64_t)(event & 0xff)};
		memcpy(records + (size_t)i * record_length, fields, sizeof(fields));
	}
}

static uint64_t ck_event_count(uint64_t requested)
{
	return requested != 0 ? requested : CK_EVENTS_DEFAULT;
}

/* Builds and runs the job; @state_dir NULL runs it without checkpoints. */
static int ck_run(const struct ck_shape *shape, uint64_t events, uint32_t workers,
		  const char *state_dir, uint32_t interval_ms, uint64_t budget_mib,
		  struct weir_job_stats *stats)
{
	struct weir_job_options options;
	weir_job_options_init(&options);
	options.worker_count = workers;
	options.checkpoint_interval_ms = interval_ms;
	options.state_budget_mib = budget_mib;
	options.seed = UINT64_C(0x636b7074); /* fixed: the same key groups every run */
	struct weir_job *job = NULL;
	int rc = bench_job_create(&job, &options, "checkpoint");
	if (rc != 0)
		return rc;
	if (state_dir != NULL)
		rc = weir_job_use_state_dir(job, state_dir);
	if (rc == 0)
		rc = weir_job_source_generator(job, CK_SCHEMA, ck_generate, (void *)shape, events);
	if (rc == 0)
		rc = weir_job_key_by(job, "key");
	struct weir_window_spec spec = {.time_column = "ts", .kind = WEIR_WINDOW_TUMBLING,
					.size = shape->window, .slide = shape->window,
					.aggregates = "count,sum:value"};
	if (rc == 0)
		rc = weir_job_window(job, &spec);
	rc = bench_sink_run(job, rc, "/dev/null", "checkpoint", stats);
	if (rc == 0 && stats->state_full > 0) {
		fprintf(stderr, "weir bench: checkpoint: the state budget refused %" PRIu64
				" events\n", stats->state_full);
		rc = -ENOSPC;
	}
	return rc;
}

static int ck_remove_entry(const char *path, const struct stat *status, int flag,
			   struct FTW *ftw)
{
	(void)status;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void ck_remove_tree(const char *path)
{
	nftw(path, ck_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under the workload's one.  Returns: 0 or -errno. */
static int ck_fresh_dir(const char *parent, const char *name, char *path, size_t capacity)
{
	int length = snprintf(path, capacity, "%s/%s.XXXXXX", parent, name);
	if (length < 0 || (size_t)length >= capacity)
		return -ENAMETOOLONG;
	return mkdtemp(path) != NULL ? 0 : -errno;
}

/* Deletes the newest manifest in @dir (the finished one).  Returns: 0 or -errno. */
static int ck_drop_newest_manifest(const char *dir)
{
	DIR *listing = opendir(dir);
	if (listing == NULL)
		return -errno;
	char newest[64] = "";
	for (struct dirent *item = readdir(listing); item != NULL; item = readdir(listing)) {
		if (strncmp(item->d_name, "manifest-", 9) == 0 && strlen(item->d_name) < 64 &&
		    strcmp(item->d_name, newest) > 0)
			snprintf(newest, sizeof(newest), "%s", item->d_name);
	}
	closedir(listing);
	if (newest[0] == '\0')
		return -ENOENT;
	char path[PATH_MAX];
	int length = snprintf(path, sizeof(path), "%s/%s", dir, newest);
	if (length < 0 || (size_t)length >= sizeof(path))
		return -ENAMETOOLONG;
	return unlink(path) == 0 ? 0 : -errno;
}

/* The recovery figure: state held by the checkpoint before the last, and its rebuild. */
static int ck_measure_recovery(struct bench_env *env, char *text, size_t capacity)
{
	const struct ck_shape shape = {.keys = ck_setting("WEIR_BENCH_RECOVERY_KEYS",
							  CK_RECOVERY_KEYS),
				       .window = CK_RECOVERY_WINDOW};
	uint64_t events = shape.keys * CK_RECOVERY_EVENTS / CK_RECOVERY_KEYS;
	uint32_t interval_ms = (uint32_t)ck_setting("WEIR_BENCH_CHECKPOINT_MS",
						    CK_RECOVERY_INTERVAL_MS);
	char dir[PATH_MAX];
	int rc = ck_fresh_dir(env->input, "recovery", dir, sizeof(dir));
	if (rc != 0)
		return rc;
	fprintf(stderr, "weir bench: checkpoint: building a large state for the recovery run\n");
	struct weir_job_stats first, second;
	rc = ck_run(&shape, events, 1, dir, interval_ms, CK_RECOVERY_BUDGET_MIB, &first);
	if (rc == 0)
		rc = ck_drop_newest_manifest(dir);
	if (rc == 0)
		rc = ck_run(&shape, events, 1, dir, interval_ms, CK_RECOVERY_BUDGET_MIB, &second);
	ck_remove_tree(dir);
	if (rc != 0)
		return rc;
	if (second.recovered_epoch == 0) {
		fprintf(stderr, "weir bench: checkpoint: the recovery run found no checkpoint\n");
		return -ENOENT;
	}
	snprintf(text, capacity,
		 "recovery: %.1f MiB of state (checkpoint %" PRIu64 " of a %" PRIu64 "-key job) "
		 "rebuilt in %.2f s, 1 worker\n",
		 (double)second.recovered_state_bytes / (1 << 20), second.recovered_epoch,
		 shape.keys, second.recovery_seconds);
	size_t used = strlen(env->json_extra);
	snprintf(env->json_extra + used, sizeof(env->json_extra) - used,
		 ",\"recovered_state_bytes\":%" PRIu64 ",\"recovery_seconds\":%.3f",
		 second.recovered_state_bytes, second.recovery_seconds);
	return 0;
}

int bench_checkpoint_prepare(struct bench_env *env)
{
	static const struct ck_shape shape = {.keys = CK_KEYS, .window = CK_WINDOW};
	const char *tmp = getenv("TMPDIR");
	snprintf(env->input, sizeof(env->input), "%s/weirbench-checkpoint.XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(env->input) == NULL) {
		fprintf(stderr, "weir bench: checkpoint: %s: %s\n", env->input, strerror(errno));
		return -errno;
	}
	char dir[PATH_MAX];
	int rc = ck_fresh_dir(env->input, "figures", dir, sizeof(dir));
	if (rc != 0)
		return rc;
	uint64_t events = ck_event_count(env->options->events);
	struct weir_job_stats stats;
	uint32_t interval_ms = (uint32_t)ck_setting("WEIR_BENCH_CHECKPOINT_MS", CK_INTERVAL_MS);
	rc = ck_run(&shape, events, env->options->workers[0], dir, interval_ms, 1024, &stats);
	ck_remove_tree(dir);
	if (rc != 0)
		return rc;
	/* The final checkpoint (after the input ended) has no state to write: not counted. */
	uint64_t regular = stats.checkpoints_completed > 0 ? stats.checkpoints_completed - 1 : 0;
	snprintf(env->header, sizeof(env->header),
		 "checkpoints: every %u ms, %" PRIu64 " in a %.1f s run; took p50 %.1f ms, "
		 "p99 %.1f ms; %.1f MiB of log per checkpoint (%u keys, all changing)\n",
		 interval_ms, regular, stats.seconds, (double)stats.checkpoint_ns_p50 / 1e6,
		 (double)stats.checkpoint_ns_p99 / 1e6,
		 regular > 0 ? (double)stats.checkpoint_bytes / regular / (1 << 20) : 0.0, CK_KEYS);
	snprintf(env->json_extra, sizeof(env->json_extra),
		 ",\"checkpoints\":%" PRIu64 ",\"checkpoint_ms_p50\":%.3f,"
		 "\"checkpoint_ms_p99\":%.3f,\"checkpoint_bytes_mean\":%.0f",
		 regular, (double)stats.checkpoint_ns_p50 / 1e6,
		 (double)stats.checkpoint_ns_p99 / 1e6,
		 regular > 0 ? (double)stats.checkpoint_bytes / (double)regular : 0.0);
	if (getenv("WEIR_BENCH_NO_RECOVERY") == NULL) {
		size_t used = strlen(env->header);
		rc = ck_measure_recovery(env, env->header + used, sizeof(env->header) - used);
	}
	env->has_baseline = true;
	snprintf(env->note, sizeof(env->note),
		 "%" PRIu64 " generated events, %u keys, tumbling window of %" PRId64
		 " ticks; engine: checkpoints every %u ms into %s",
		 events, CK_KEYS, CK_WINDOW, interval_ms, env->input);
	return rc;
}

int bench_checkpoint_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out)
{
	static const struct ck_shape shape = {.keys = CK_KEYS, .window = CK_WINDOW};
	char dir[PATH_MAX];
	int rc = ck_fresh_dir(env->input, "engine", dir, sizeof(dir));
	if (rc != 0)
		return rc;
	struct weir_job_stats stats;
	rc = ck_run(&shape, ck_event_count(env->options->events), workers, dir,
		    (uint32_t)ck_setting("WEIR_BENCH_CHECKPOINT_MS", CK_INTERVAL_MS), 1024, &stats);
	ck_remove_tree(dir);
	if (rc != 0)
		return rc;
	out->events = stats.events_in;
	out->seconds = stats.seconds;
	out->has_digest = true;
	out->digest = stats.rows_out;
	out->digest_total = stats.rows_out;
	return 0;
}

int bench_checkpoint_baseline_once(const struct bench_env *env, struct bench_sample *out)
{
	static const struct ck_shape shape = {.keys = CK_KEYS, .window = CK_WINDOW};
	struct weir_job_stats stats;
	int rc = ck_run(&shape, ck_event_count(env->options->events), env->workers, NULL,
			CK_INTERVAL_MS, 1024, &stats);
	if (rc != 0)
		return rc;
	out->events = stats.events_in;
	/* Per worker, like the engine column: the ratio is then with / without checkpoints. */
	out->seconds = stats.seconds * env->workers;
	out->has_digest = true;
	out->digest = stats.rows_out;
	out->digest_total = stats.rows_out;
	return 0;
}

void bench_checkpoint_release(struct bench_env *env)
{
	if (env->input[0] != '\0')
		ck_remove_tree(env->input);
}
