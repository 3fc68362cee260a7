/* weir checkpoints: lists the checkpoint manifests of a state directory, oldest first, with
 * what each one says about every shard's log and every source split; with --verify it also
 * replays each shard's log up to where the manifest points, checking every record checksum.
 * It only reads: nothing in the directory is changed, so it is safe next to a running job
 * (a manifest deleted under it reads as damaged). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/commands.h"
#include "core/batch.h"
#include "core/checkpoint.h"
#include "state/log.h"
#include "state/manifest.h"

static void checkpoints_usage(FILE *stream)
{
	fprintf(stream,
		"usage: weir checkpoints --state-dir DIR [--verify]\n"
		"  lists the checkpoints in DIR (the --state-dir of a job), oldest first: when\n"
		"  each was taken, its workers' logs and watermarks, and its source splits\n"
		"  --state-dir DIR  the job's state directory\n"
		"  --verify         also read every shard's log up to where each checkpoint\n"
		"                   points, checking every record (exit status 1 if one is bad)\n");
}

/* "512 B", "120 KiB", "3.2 MiB": one decimal below 10 units. */
static const char *format_bytes(uint64_t bytes, char *text, size_t text_length)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double value = (double)bytes;
	size_t unit = 0;
	while (value >= 1024.0 && unit + 1 < sizeof(units) / sizeof(units[0])) {
		value /= 1024.0;
		unit++;
	}
	if (unit == 0)
		snprintf(text, text_length, "%" PRIu64 " B", bytes);
	else
		snprintf(text, text_length, value < 10.0 ? "%.1f %s" : "%.0f %s", value,
			 units[unit]);
	return text;
}

/* "850 ns", "4.1 ms", "12 s". */
static const char *format_duration(uint64_t ns, char *text, size_t text_length)
{
	static const char *const units[] = {"ns", "us", "ms", "s"};
	double value = (double)ns;
	size_t unit = 0;
	while (value >= 1000.0 && unit + 1 < sizeof(units) / sizeof(units[0])) {
		value /= 1000.0;
		unit++;
	}
	if (unit == 0)
		snprintf(text, text_length, "%" PRIu64 " ns", ns);
	else
		snprintf(text, text_length, value < 10.0 ? "%.1f %s" : "%.0f %s", value,
			 units[unit]);
	return text;
}

/* "2026-11-23 15:04:05 UTC" */
static const char *format_time(uint64_t unix_ms, char *text, size_t text_length)
{
	time_t seconds = (time_t)(unix_ms / 1000);
	struct tm tm;
	if (unix_ms / 1000 > (uint64_t)INT64_MAX || gmtime_r(&seconds, &tm) == NULL ||
	    strftime(text, text_length, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(text, text_length, "at %" PRIu64 " ms after 1970", unix_ms);
	return text;
}

/* An event time, or "none" before the first event. */
static const char *format_time_value(int64_t value, char *text, size_t text_length)
{
	if (value == WEIR_WATERMARK_NONE)
		snprintf(text, text_length, "none");
	else
		snprintf(text, text_length, "%" PRId64, value);
	return text;
}

static void print_checkpoint(const struct weir_checkpoint_info *info)
{
	char when[64], state[32], appended[32], took[32];
	uint64_t state_bytes = 0, appended_bytes = 0;
	for (uint32_t i = 0; i < info->worker_count; i++) {
		state_bytes += info->shards[i].state_bytes;
		appended_bytes += info->shards[i].appended_bytes;
	}
	printf("checkpoint %" PRIu64 "  %s  finished=%s  workers %" PRIu32 "  events %" PRIu64
	       "  state %s  appended %s  took %s\n",
	       info->epoch, format_time(info->created_unix_ms, when, sizeof(when)),
	       info->finished ? "yes" : "no", info->worker_count, info->events_in,
	       format_bytes(state_bytes, state, sizeof(state)),
	       format_bytes(appended_bytes, appended, sizeof(appended)),
	       format_duration(info->duration_ns, took, sizeof(took)));
	printf("  key groups %" PRIu32 ", seed 0x%016" PRIx64 ", output: sink 0 at %" PRIu64
	       " bytes, sink 1 at %" PRIu64 " bytes\n",
	       info->key_groups, info->seed, info->sink_bytes[0], info->sink_bytes[1]);
}

static void print_shard(const struct weir_checkpoint_info *info, uint32_t i)
{
	const struct weir_checkpoint_shard *shard = &info->shards[i];
	char watermark[32], state[32], appended[32];
	printf("  shard %" PRIu32 ": segments %" PRIu64 "..%" PRIu64 ", end %" PRIu64 "@%" PRIu64
	       ", watermark %s, state %s, appended %s%s\n",
	       i, shard->log.first_segment, shard->log.end_segment, shard->log.end_segment,
	       shard->log.end_offset, format_time_value(shard->watermark, watermark,
							 sizeof(watermark)),
	       format_bytes(shard->state_bytes, state, sizeof(state)),
	       format_bytes(shard->appended_bytes, appended, sizeof(appended)),
	       shard->snapshot ? ", new snapshot" : "");
}

static void print_splits(const struct weir_checkpoint_info *info)
{
	char max_seen[32];
	if (info->split_count == 0)
		printf("  no splits left\n");
	for (uint32_t i = 0; i < info->split_count; i++) {
		const struct weir_split *split = &info->splits[i];
		printf("  split %" PRIu32 ": [%" PRIu64 ", %" PRIu64 ") step %" PRIu64
		       ", max seen %s\n", i, split->begin, split->end, split->step,
		       format_time_value(split->max_seen, max_seen, sizeof(max_seen)));
	}
}

struct replay_count {
	uint64_t records; /* markers and state records; padding is not handed out */
	uint64_t bytes;	  /* keys and values of the state records */
};

static int count_record(void *ctx, const struct weir_log_record *record)
{
	struct replay_count *count = ctx;
	count->records++;
	if (record->type == WEIR_LOG_STATE)
		count->bytes += (uint64_t)record->state.key_length + record->state.value_length;
	return 0;
}

/* Replays shard @i's log as checkpoint @info names it.  Returns: true when it read whole. */
static bool verify_shard(const char *dir, const struct weir_checkpoint_info *info, uint32_t i)
{
	struct replay_count count = {0, 0};
	char error[512] = "";
	int rc = weir_log_replay(dir, i, &info->shards[i].log, count_record, &count, error,
				 sizeof(error));
	if (rc != 0) {
		printf("    NOT VERIFIED: %s\n", error[0] != '\0' ? error : strerror(-rc));
		return false;
	}
	printf("    verified: %" PRIu64 " records, %" PRIu64 " bytes of keys and values\n",
	       count.records, count.bytes);
	return true;
}

/* Prints manifest @epoch of @dir.  Returns: true when it read back whole (and verified). */
static bool show_manifest(const char *dir, uint64_t epoch, bool verify)
{
	static struct weir_checkpoint_info info; /* 23 KiB; the main thread's only */
	char path[PATH_MAX], error[512] = "";
	weir_manifest_path(dir, epoch, path, sizeof(path));
	int rc = weir_manifest_read(path, &info, error, sizeof(error));
	if (rc != 0) {
		printf("checkpoint %" PRIu64 "  DAMAGED: %s\n", epoch, error);
		return false;
	}
	bool good = true;
	print_checkpoint(&info);
	for (uint32_t i = 0; i < info.worker_count; i++) {
		print_shard(&info, i);
		if (verify && !verify_shard(dir, &info, i))
			good = false;
	}
	print_splits(&info);
	return good;
}

/* Returns: the exit status (0 all good, 1 something damaged, 2 no such directory). */
static int list_checkpoints(const char *dir, bool verify)
{
	static uint64_t epochs[WEIR_MANIFESTS_MAX];
	struct stat st;
	int rc = stat(dir, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
	if (rc != 0) {
		fprintf(stderr, "weir checkpoints: --state-dir %s: %s\n", dir, strerror(rc));
		return 2;
	}
	if (strlen(dir) + 32 >= PATH_MAX) {
		fprintf(stderr, "weir checkpoints: --state-dir %s: %s\n", dir,
			strerror(ENAMETOOLONG));
		return 2;
	}
	int count = weir_manifest_list(dir, epochs, WEIR_MANIFESTS_MAX);
	if (count < 0) {
		fprintf(stderr, "weir checkpoints: cannot list %s: %s\n", dir, strerror(-count));
		return 1;
	}
	if (count == 0) {
		printf("no checkpoints in %s\n", dir);
		return 0;
	}
	if (count == (int)WEIR_MANIFESTS_MAX)
		printf("(the newest %u checkpoints; there may be older ones)\n",
		       WEIR_MANIFESTS_MAX);
	int damaged = 0;
	for (int i = 0; i < count; i++)
		damaged += !show_manifest(dir, epochs[i], verify);
	if (damaged > 0)
		printf("%d of %d checkpoints %s\n", damaged, count,
		       verify ? "are damaged or do not verify" : "are damaged");
	return damaged > 0 ? 1 : 0;
}

enum checkpoints_option {
	OPT_STATE_DIR = 'd',
	OPT_VERIFY = 'v',
	OPT_HELP = 'h',
};

int weir_cmd_checkpoints(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"verify", no_argument, NULL, OPT_VERIFY},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *dir = NULL;
	bool verify = false;
	int option;
	optind = 1;
	while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (option) {
		case OPT_STATE_DIR: dir = optarg; break;
		case OPT_VERIFY: verify = true; break;
		case OPT_HELP: checkpoints_usage(stdout); return 0;
		default: checkpoints_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "weir checkpoints: unexpected argument '%s'\n", argv[optind]);
		checkpoints_usage(stderr);
		return 2;
	}
	if (dir == NULL || dir[0] == '\0') {
		fprintf(stderr, "weir checkpoints: --state-dir DIR is required\n");
		checkpoints_usage(stderr);
		return 2;
	}
	int status = list_checkpoints(dir, verify);
	if (fflush(stdout) != 0) {
		perror("weir checkpoints: writing the output");
		return 1;
	}
	return status;
}
