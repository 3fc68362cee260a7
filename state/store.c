/* The checkpoint store: core's struct weir_store_vtable over the shard logs (state/log.c) and
 * the manifests (state/manifest.c) of one state dir.  weir_job_use_state_dir() attaches it.
 *
 * Compaction: a shard's log is replayed from its snapshot segment on.  When what a replay
 * would read passes STORE_COMPACT_FACTOR times the live state (what a full snapshot of it
 * writes, as the operator estimates it) and a floor, the next
 * checkpoint starts a new snapshot segment holding the whole live state; once no kept
 * manifest names the older segments, commit() deletes them. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/fault.h"
#include "core/job.h"
#include "core/mem.h"
#include "state/ingest.h"
#include "state/log.h"
#include "state/manifest.h"

#define STORE_COMPACT_FACTOR 2u
#define STORE_COMPACT_FLOOR_BYTES (8u << 20)

struct store {
	char dir[512];
	uint32_t kept; /* manifests kept */
	bool marked;   /* DIR/checkpointed exists */
	/* Folded in by each shard as it closes (on its worker): the logs' bounded queue. */
	_Atomic uint64_t log_waits; /* appends that waited for a free log buffer */
	int lock_fd;   /* DIR/lock, flock()ed: one process per state dir */
	struct weir_ingest *ingest; /* a live source's ingest log, or NULL */
};

struct store_shard {
	struct weir_log_writer *log;
	unsigned arena;
	uint64_t written_at_seal; /* log bytes written when the last epoch was sealed */
	uint64_t sealed_bytes;	  /* ... of which that epoch's */
};

/* Ingest logs: per partition, segments below the oldest position a kept manifest has. */
static int remove_unreferenced_ingest(const char *dir, const uint64_t *keep_from,
				      char *error, size_t error_length)
{
	char ingest_dir[600];
	snprintf(ingest_dir, sizeof(ingest_dir), "%s/ingest", dir);
	uint32_t shards[WEIR_WORKERS_MAX];
	int count = weir_log_shards(ingest_dir, shards, WEIR_WORKERS_MAX);
	for (int i = 0; i < count; i++) {
		if (keep_from[shards[i]] == UINT64_MAX)
			continue; /* not named by a kept manifest: maybe this run's own, new one */
		int rc = weir_log_remove_before(ingest_dir, shards[i], keep_from[shards[i]]);
		if (rc < 0) {
			snprintf(error, error_length, "removing old ingest segments of %u: %s",
				 shards[i], strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* Deletes what no kept manifest names: per shard, segments below the smallest
 * first_segment of the kept manifests; shards none of them has, entirely. */
static int remove_unreferenced(const char *dir, char *error, size_t error_length)
{
	uint64_t epochs[WEIR_MANIFESTS_MAX];
	int count = weir_manifest_list(dir, epochs, WEIR_MANIFESTS_MAX);
	if (count <= 0)
		return count;
	static uint64_t keep_from[WEIR_WORKERS_MAX]; /* main thread only */
	static uint64_t ingest_from[WEIR_WORKERS_MAX];
	for (uint32_t s = 0; s < WEIR_WORKERS_MAX; s++)
		keep_from[s] = ingest_from[s] = UINT64_MAX;
	static struct weir_checkpoint_info info; /* too big for the stack; main thread only */
	for (int m = 0; m < count; m++) {
		char path[600];
		weir_manifest_path(dir, epochs[m], path, sizeof(path));
		if (weir_manifest_read(path, &info, error, error_length) != 0)
			return 0; /* a damaged manifest: delete nothing it might have named */
		for (uint32_t s = 0; s < info.worker_count && !info.finished; s++) {
			if (info.shards[s].log.first_segment < keep_from[s])
				keep_from[s] = info.shards[s].log.first_segment;
		}
		for (uint32_t i = 0; i < info.split_count && !info.finished; i++) {
			const struct weir_split *split = &info.splits[i];
			uint64_t segment, offset;
			weir_ingest_position_decode(split->begin, &segment, &offset);
			if (split->end == WEIR_SPLIT_LIVE && split->step < WEIR_WORKERS_MAX &&
			    segment != 0 && segment < ingest_from[split->step])
				ingest_from[split->step] = segment;
		}
	}
	int ingest_rc = remove_unreferenced_ingest(dir, ingest_from, error, error_length);
	if (ingest_rc < 0)
		return ingest_rc;
	uint32_t shards[WEIR_WORKERS_MAX];
	int shard_count = weir_log_shards(dir, shards, WEIR_WORKERS_MAX);
	for (int i = 0; i < shard_count; i++) {
		int rc = weir_log_remove_before(dir, shards[i], keep_from[shards[i]]);
		if (rc < 0) {
			snprintf(error, error_length, "removing old segments of shard %u: %s",
				 shards[i], strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* DIR/checkpointed exists once a manifest was written: a state dir that has it and no
 * manifest lost its manifests, and must not silently start over. */
static void marker_path(const struct store *store, char *path, size_t length)
{
	snprintf(path, length, "%s/checkpointed", store->dir);
}

static int store_recover(void *ctx, struct weir_checkpoint_info *info, char *error,
			 size_t error_length)
{
	struct store *store = ctx;
	int found = weir_manifest_newest(store->dir, info, error, error_length);
	char marker[600];
	marker_path(store, marker, sizeof(marker));
	if (found == 0 && access(marker, F_OK) == 0) {
		snprintf(error, error_length,
			 "it has held checkpoints (%s) but no manifest is left: refusing to start "
			 "from empty state (remove the state dir and the output to start over)",
			 marker);
		return -EBADMSG;
	}
	if (found <= 0)
		return found;
	weir_fault_point("recovery.manifest");
	for (uint32_t s = 0; s < info->worker_count && !info->finished; s++) {
		int rc = weir_log_trim(store->dir, s, &info->shards[s].log, error, error_length);
		if (rc != 0)
			return rc;
	}
	int rc = remove_unreferenced(store->dir, error, error_length);
	return rc < 0 ? rc : 1;
}

static int store_shard_open(void *ctx, uint32_t shard, unsigned arena,
			    const struct weir_log_position *continue_from, void **shard_out,
			    char *error, size_t error_length)
{
	struct store *store = ctx;
	struct store_shard *s = weir_mem_alloc(sizeof(*s), 64, arena);
	if (s == NULL)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	s->arena = arena;
	struct weir_log_writer_options options = {
		.dir = store->dir,
		.shard = shard,
		.arena = arena,
	};
	int rc = weir_log_writer_open(&s->log, &options, error, error_length);
	if (rc == 0 && continue_from != NULL && continue_from->end_segment != 0) {
		rc = weir_log_writer_continue(s->log, continue_from);
		if (rc != 0) {
			snprintf(error, error_length, "shard %u: cannot continue its log: %s",
				 shard, strerror(-rc));
			weir_log_writer_close(s->log);
		}
	}
	if (rc != 0) {
		weir_mem_free(s, arena);
		return rc;
	}
	*shard_out = s;
	return 0;
}

static bool store_snapshot_begin(void *shard, uint64_t live_bytes, bool force)
{
	struct store_shard *s = shard;
	uint64_t replay = weir_log_replay_length(s->log);
	bool compact = replay > STORE_COMPACT_FLOOR_BYTES &&
		       replay > STORE_COMPACT_FACTOR * live_bytes;
	if (!force && !compact)
		return false;
	if (compact)
		weir_fault_point("compaction.start");
	int rc = weir_log_start_snapshot(s->log);
	/* A failure is sticky in the log: the seal after reports it. */
	WEIR_MAYBE(rc != 0);
	return true;
}

static int store_append(void *shard, uint64_t epoch, const struct weir_state_record *record)
{
	struct store_shard *s = shard;
	return weir_log_append(s->log, epoch, record);
}

static int store_seal(void *shard, uint64_t epoch)
{
	struct store_shard *s = shard;
	int rc = weir_log_seal(s->log, epoch);
	struct weir_log_writer_stats stats;
	weir_log_writer_stats(s->log, &stats);
	s->sealed_bytes = stats.bytes_written - s->written_at_seal;
	s->written_at_seal = stats.bytes_written;
	return rc;
}

static int store_poll(void *shard, uint64_t *durable_epoch, struct weir_log_position *position,
		      uint64_t *appended_bytes)
{
	struct store_shard *s = shard;
	int rc = weir_log_poll(s->log, durable_epoch, position);
	*appended_bytes = s->sealed_bytes;
	return rc;
}

static void store_shard_close(void *ctx, void *shard)
{
	struct store *store = ctx;
	struct store_shard *s = shard;
	struct weir_log_writer_stats stats;
	weir_log_writer_stats(s->log, &stats);
	atomic_fetch_add(&store->log_waits, stats.waits);
	weir_log_writer_close(s->log);
	weir_mem_free(s, s->arena);
}

struct replay_filter {
	uint32_t group_begin, group_end;
	weir_state_replay_fn *fn;
	void *fn_ctx;
};

static int replay_visit(void *ctx, const struct weir_log_record *record)
{
	const struct replay_filter *filter = ctx;
	if (record->type != WEIR_LOG_STATE || record->state.key_group < filter->group_begin ||
	    record->state.key_group >= filter->group_end)
		return 0;
	return filter->fn(filter->fn_ctx, &record->state);
}

static int store_replay(void *ctx, const struct weir_checkpoint_info *info, uint32_t group_begin,
			uint32_t group_end, weir_state_replay_fn *fn, void *fn_ctx, char *error,
			size_t error_length)
{
	struct store *store = ctx;
	struct replay_filter filter = {group_begin, group_end, fn, fn_ctx};
	weir_fault_point("recovery.replay");
	for (uint32_t s = 0; s < info->worker_count; s++) {
		int rc = weir_log_replay(store->dir, s, &info->shards[s].log, replay_visit, &filter,
					 error, error_length);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int store_commit(void *ctx, const struct weir_checkpoint_info *info, char *error,
			size_t error_length)
{
	struct store *store = ctx;
	int rc = weir_manifest_write(store->dir, info, store->kept, error, error_length);
	if (rc != 0)
		return rc;
	if (!store->marked) {
		char marker[600];
		marker_path(store, marker, sizeof(marker));
		int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd >= 0) {
			close(fd); /* durable with the next manifest's directory fsync */
			store->marked = true;
		}
	}
	rc = remove_unreferenced(store->dir, error, error_length);
	if (rc < 0) /* the checkpoint stands; the space comes back next time */
		fprintf(stderr, "weir: %s\n", error);
	return 0;
}

static int store_wrap_live(void *ctx, struct weir_source *source, uint32_t worker_count,
			   uint32_t pull_records, const struct weir_checkpoint_info *recovered,
			   char *error, size_t error_length)
{
	struct store *store = ctx;
	WEIR_VERIFY(store->ingest == NULL);
	return weir_ingest_create(&store->ingest, store->dir, source, worker_count, pull_records,
				  recovered, error, error_length);
}

static const struct weir_store_vtable store_vtable = {
	.recover = store_recover,
	.shard_open = store_shard_open,
	.snapshot_begin = store_snapshot_begin,
	.append = store_append,
	.seal = store_seal,
	.poll = store_poll,
	.shard_close = store_shard_close,
	.replay = store_replay,
	.commit = store_commit,
	.wrap_live = store_wrap_live,
};

static void store_report(void *ctx, FILE *stream)
{
	struct store *store = ctx;
	uint64_t waits = atomic_load(&store->log_waits);
	fprintf(stream, "weir: shard logs in %s: appends waited %llu times for a free buffer of "
			"their bounded write queue%s\n",
		store->dir, (unsigned long long)waits,
		waits > 0 ? " (the disk was slower than the state changed)" : "");
}

static void store_destroy(void *ctx)
{
	struct store *store = ctx;
	if (store->lock_fd >= 0)
		close(store->lock_fd); /* releases the lock */
	weir_ingest_destroy(store->ingest);
	weir_mem_free(store, WEIR_MEM_ARENA_DEFAULT);
}

int weir_job_use_state_dir(struct weir_job *job, const char *dir)
{
	WEIR_VERIFY(job != NULL);
	if (dir == NULL || dir[0] == '\0')
		return weir_job_fail(job, -EINVAL, "state dir: no path given");
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return weir_job_fail(job, -errno, "state dir %s: cannot create it: %s", dir,
				     strerror(errno));
	struct stat status;
	if (stat(dir, &status) != 0 || !S_ISDIR(status.st_mode))
		return weir_job_fail(job, -ENOTDIR, "state dir %s: not a directory", dir);
	struct store *store = weir_mem_alloc(sizeof(*store), 64, WEIR_MEM_ARENA_DEFAULT);
	if (store == NULL)
		return weir_job_fail(job, -ENOMEM, "state dir: out of memory");
	snprintf(store->dir, sizeof(store->dir), "%s", dir);
	store->kept = weir_job_get_options(job)->checkpoints_kept;
	/* Two processes on one state dir would write over each other's logs and output. */
	char lock_path[600];
	snprintf(lock_path, sizeof(lock_path), "%s/lock", dir);
	store->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (store->lock_fd < 0 || flock(store->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		if (store->lock_fd >= 0)
			close(store->lock_fd);
		weir_mem_free(store, WEIR_MEM_ARENA_DEFAULT);
		return weir_job_fail(job, rc, "state dir %s: %s", dir,
				     rc == -EBUSY ? "in use by another weir process"
						  : strerror(-rc));
	}
	struct weir_component component = {
		.ctx = store, .destroy = store_destroy, .report = store_report};
	return weir_job_attach_store(job, &store_vtable, store, dir, component);
}
