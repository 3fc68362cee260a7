/* The checkpoint coordinator: main thread, between the workers and the store.
 *
 * Every checkpoint_interval it asks for barrier n (one atomic store the workers read each
 * turn).  When every worker has acknowledged n (its log durable up to n's marker) it polls
 * the sinks one more time, so every row of epochs <= n is with them, has them stage those
 * epochs durably, writes manifest n through the store, and only then lets the sinks publish.
 * A checkpoint that does not finish within checkpoint_timeout, or whose manifest cannot be
 * written, is abandoned and counted; the next one covers its epoch too.  At the end of the
 * input a last manifest marks the job finished, after the last rows were staged. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fault.h"
#include "core/job_priv.h"
#include "core/mem.h"

int weir_job_attach_store(struct weir_job *job, const struct weir_store_vtable *store,
			  void *ctx, const char *dir, struct weir_component component)
{
	WEIR_VERIFY(store != NULL && dir != NULL);
	int rc = 0;
	if (job->store != NULL)
		rc = weir_job_fail(job, -EINVAL, "job: a job has one state dir");
	else if (strlen(dir) >= sizeof(job->state_dir))
		rc = weir_job_fail(job, -ENAMETOOLONG, "state dir %s: name too long", dir);
	rc = job_adopt_component(job, rc, component);
	if (rc != 0)
		return rc;
	job->store = store;
	job->store_ctx = ctx;
	snprintf(job->state_dir, sizeof(job->state_dir), "%s", dir);
	return 0;
}

const char *weir_job_state_dir(const struct weir_job *job)
{
	return job->store != NULL ? job->state_dir : NULL;
}

static int state_append(struct weir_state_writer *writer, uint16_t type, uint32_t key_group,
			const void *key, uint32_t key_length, const void *value,
			uint32_t value_length)
{
	WEIR_ASSERT(writer->epoch > 0);
	WEIR_ASSERT(key_group < writer->key_groups);
	if (writer->error != 0)
		return writer->error;
	struct weir_state_record record = {
		.type = type,
		.key_group = key_group,
		.key = key,
		.key_length = key_length,
		.value = value,
		.value_length = value_length,
	};
	int rc = writer->store->append(writer->shard, writer->epoch, &record);
	if (rc != 0)
		writer->error = rc;
	else
		writer->records++;
	return rc;
}

int weir_state_put(struct weir_state_writer *writer, uint16_t type, const void *key,
		   uint32_t key_length, uint32_t group_key_length, const void *value,
		   uint32_t value_length)
{
	WEIR_ASSERT(group_key_length <= key_length);
	uint64_t hash = weir_key_hash(key, group_key_length, writer->seed);
	return state_append(writer, type, weir_key_group_of_hash(hash, writer->key_groups), key,
			    key_length, value, value_length);
}

int weir_state_put_shard(struct weir_state_writer *writer, uint16_t type, const void *key,
			 uint32_t key_length, const void *value, uint32_t value_length)
{
	return state_append(writer, type, writer->group_first, key, key_length, value,
			    value_length);
}

/* Refuses a job whose parts cannot all be checkpointed, naming the part (the source is
 * checked after recovery, which may wrap a live one in an ingest log). */
static int check_checkpointable(struct weir_job *job)
{
	if (!job->keyed)
		return weir_job_fail(job, -EINVAL,
				     "state dir: only jobs with key_by and a window keep state");
	if (job->keyed_vtable->snapshot == NULL)
		return weir_job_fail(job, -EINVAL,
				     "state dir: this operator cannot save its state yet");
	for (uint32_t s = 0; s < 2; s++) {
		const struct weir_sink_vtable *sink = job->sinks[s].vtable;
		if (sink != NULL && (sink->barrier == NULL || sink->prepare == NULL ||
				     sink->publish == NULL || sink->recover == NULL))
			return weir_job_fail(job, -EINVAL,
					     "state dir: the %s output cannot commit with "
					     "checkpoints (it must be a file, without --top)",
					     s == 0 ? "rows" : "late");
	}
	if (job->options.checkpoint_interval_ms == 0 || job->options.checkpoints_kept == 0)
		return weir_job_fail(job, -EINVAL,
				     "state dir: the checkpoint interval and the number of "
				     "checkpoints kept must be positive");
	return 0;
}

static int splits_allocate(struct weir_job *job, uint32_t count)
{
	size_t length = sizeof(struct weir_split) * (count > 0 ? count : 1);
	job->splits = weir_mem_alloc(length, 8, WEIR_MEM_ARENA_DEFAULT);
	job->split_positions = weir_mem_alloc(length, 8, WEIR_MEM_ARENA_DEFAULT);
	job->split_final = weir_mem_alloc(length, 8, WEIR_MEM_ARENA_DEFAULT);
	if (job->splits == NULL || job->split_positions == NULL || job->split_final == NULL)
		return weir_job_fail(job, -ENOMEM, "job: out of memory for source splits");
	job->split_count = count;
	return 0;
}

/* The splits this run reads: a recovered checkpoint's remainders, or the source's plan. */
static int plan_splits(struct weir_job *job)
{
	const struct weir_checkpoint_info *info = job->recovered;
	if (info != NULL) {
		int rc = splits_allocate(job, info->split_count);
		if (rc != 0)
			return rc;
		memcpy(job->splits, info->splits, sizeof(struct weir_split) * info->split_count);
	} else {
		struct weir_split planned[WEIR_CHECKPOINT_SPLITS_MAX];
		int count = job->source.vtable->plan(job->source.ctx, job->worker_count, planned,
						     WEIR_CHECKPOINT_SPLITS_MAX);
		if (count < 0)
			return weir_job_fail(job, count, "source: cannot split the input: %s",
					     strerror(-count));
		int rc = splits_allocate(job, (uint32_t)count);
		if (rc != 0)
			return rc;
		memcpy(job->splits, planned, sizeof(struct weir_split) * (uint32_t)count);
	}
	memcpy(job->split_positions, job->splits, sizeof(struct weir_split) * job->split_count);
	memcpy(job->split_final, job->splits, sizeof(struct weir_split) * job->split_count);
	return 0;
}

/* Whether every shard had the same clock at the checkpoint: then key groups can move to
 * other shards, since each shard fired exactly the windows the others did. */
static bool clocks_agree(const struct weir_checkpoint_info *info)
{
	for (uint32_t s = 1; s < info->worker_count; s++) {
		if (info->shards[s].watermark != info->shards[0].watermark)
			return false;
	}
	return true;
}

static int recover(struct weir_job *job)
{
	uint64_t started_ns = weir_clock_ns();
	job->recovered = weir_mem_alloc(sizeof(*job->recovered), 8, WEIR_MEM_ARENA_DEFAULT);
	if (job->recovered == NULL)
		return weir_job_fail(job, -ENOMEM, "state dir: out of memory");
	char message[400] = "";
	int found = job->store->recover(job->store_ctx, job->recovered, message, sizeof(message));
	if (found < 0)
		return weir_job_fail(job, found, "state dir %s: %s", job->state_dir, message);
	if (found == 0) {
		weir_mem_free(job->recovered, WEIR_MEM_ARENA_DEFAULT);
		job->recovered = NULL;
	} else if (job->recovered->key_groups != job->options.key_groups) {
		return weir_job_fail(job, -EINVAL,
				     "state dir %s: its checkpoints use %u key groups, this job %u",
				     job->state_dir, job->recovered->key_groups,
				     job->options.key_groups);
	} else if (!clocks_agree(job->recovered) && !job->recovered->finished &&
		   job->recovered->worker_count != job->worker_count) {
		return weir_job_fail(job, -EINVAL,
				     "state dir %s: its shards' event-time clocks differed at "
				     "checkpoint %llu (an idle source), so windows fired in one "
				     "shard and not in another; continue it with --workers %u",
				     job->state_dir, (unsigned long long)job->recovered->epoch,
				     job->recovered->worker_count);
	} else {
		job->seed = job->recovered->seed; /* key groups must mean what they meant */
		job->checkpoints.epoch = job->recovered->epoch;
		memcpy(job->checkpoints.sink_bytes, job->recovered->sink_bytes,
		       sizeof(job->checkpoints.sink_bytes));
	}
	for (uint32_t s = 0; s < 2; s++) {
		const struct job_sink *sink = &job->sinks[s];
		if (sink->vtable == NULL)
			continue;
		int rc = sink->vtable->recover(sink->ctx, job->recovered, s);
		if (rc != 0)
			return weir_job_fail(job, rc, "state dir %s: %s", job->state_dir,
					     sink->vtable->error(sink->ctx));
	}
	job->recovery_seconds = (double)(weir_clock_ns() - started_ns) / 1e9;
	return 0;
}

/* A live source goes through the store's ingest log, which makes it replayable. */
static int wrap_live_source(struct weir_job *job)
{
	const struct weir_source_vtable *source = job->source.vtable;
	if (source->plan != NULL && source->open_split != NULL && source->position != NULL)
		return 0;
	char message[400] = "";
	int rc = job->store->wrap_live(job->store_ctx, &job->source, job->worker_count,
				       job->pull_records, job->recovered, message,
				       sizeof(message));
	if (rc != 0)
		return weir_job_fail(job, rc, "state dir %s: %s", job->state_dir, message);
	WEIR_VERIFY(job->source.vtable->plan != NULL);
	return 0;
}

int job_checkpoint_prepare(struct weir_job *job)
{
	int rc = 0;
	if (job->store != NULL) {
		rc = check_checkpointable(job);
		if (rc == 0)
			rc = recover(job);
		if (rc == 0)
			rc = wrap_live_source(job);
	}
	if (rc == 0 && job->source.vtable->open_split != NULL)
		rc = plan_splits(job);
	job->checkpoints.next_trigger_ns =
		weir_clock_ns() + job->options.checkpoint_interval_ms * 1000000u;
	return rc;
}

static void record_duration(struct job_checkpoints *c, uint64_t duration_ns)
{
	if (c->duration_count == c->duration_capacity) {
		uint32_t capacity = c->duration_capacity == 0 ? 64 : c->duration_capacity * 2;
		uint64_t *bigger = weir_mem_realloc(c->durations_ns, sizeof(uint64_t) * capacity,
						    WEIR_MEM_ARENA_DEFAULT);
		if (bigger == NULL)
			return; /* the percentiles then miss one; the count does not */
		c->durations_ns = bigger;
		c->duration_capacity = capacity;
	}
	c->durations_ns[c->duration_count++] = duration_ns;
}

/* Where split @i was at barrier @epoch: its owner sent the barrier, or had ended before. */
static const struct weir_split *split_at(const struct weir_job *job, uint32_t i, uint64_t epoch)
{
	const struct worker *owner = &job->workers[i % job->worker_count];
	uint64_t ended_after =
		atomic_load_explicit(&owner->source_ended_after, memory_order_acquire);
	return ended_after < epoch ? &job->split_final[i] : &job->split_positions[i];
}

/* Fills the manifest's job-wide fields and sources for @epoch.  Context: all acked. */
static void assemble(struct weir_job *job, uint64_t epoch, bool finished)
{
	struct weir_checkpoint_info *info = &job->checkpoints.info;
	memset(info, 0, sizeof(*info));
	info->epoch = epoch;
	info->seed = job->seed;
	info->key_groups = job->options.key_groups;
	info->worker_count = job->worker_count;
	info->finished = finished;
	info->split_count = job->split_count;
	for (uint32_t i = 0; i < job->split_count; i++)
		info->splits[i] = finished ? job->split_final[i] : *split_at(job, i, epoch);
	info->events_in = job->recovered != NULL ? job->recovered->events_in : 0;
	for (uint32_t w = 0; w < job->worker_count; w++) {
		const struct worker *worker = &job->workers[w];
		uint64_t ended_after =
			atomic_load_explicit(&worker->source_ended_after, memory_order_acquire);
		info->events_in += finished || ended_after < epoch ? worker->events_at_end
								   : worker->events_at_barrier;
		if (!finished)
			info->shards[w] = worker->acked;
	}
}

/* Stages, writes manifest @epoch, publishes.  Returns: 0; -errno when the manifest could
 * not be written (the checkpoint is abandoned; the output stays staged); a failed publish
 * is a job error (the manifest already promises that output). */
static int commit(struct weir_job *job, uint64_t epoch, bool finished)
{
	struct job_checkpoints *c = &job->checkpoints;
	assemble(job, epoch, finished);
	while (job_poll_sinks(job) > 0) {
	}
	for (uint32_t s = 0; s < 2; s++) {
		const struct job_sink *sink = &job->sinks[s];
		if (sink->vtable == NULL)
			continue;
		int rc = sink->vtable->prepare(sink->ctx, epoch, &c->info.sink_bytes[s]);
		if (rc != 0) {
			weir_job_fail(job, rc, "checkpoint %llu: staging output: %s",
				      (unsigned long long)epoch, sink->vtable->error(sink->ctx));
			return rc;
		}
	}
	weir_fault_point("checkpoint.before-manifest");
	c->info.created_unix_ms = (uint64_t)time(NULL) * 1000u;
	c->info.duration_ns = weir_clock_ns() - c->triggered_ns;
	char message[400] = "";
	int rc = job->store->commit(job->store_ctx, &c->info, message, sizeof(message));
	if (rc != 0) {
		fprintf(stderr, "weir: checkpoint %llu abandoned: %s\n", (unsigned long long)epoch,
			message);
		c->abandoned++;
		return rc;
	}
	weir_fault_point("checkpoint.after-manifest");
	for (uint32_t s = 0; s < 2; s++) {
		const struct job_sink *sink = &job->sinks[s];
		if (sink->vtable == NULL)
			continue;
		rc = sink->vtable->publish(sink->ctx, epoch);
		if (rc != 0)
			return weir_job_fail(job, rc, "checkpoint %llu: publishing output: %s",
					     (unsigned long long)epoch,
					     sink->vtable->error(sink->ctx));
	}
	weir_fault_point("checkpoint.published");
	c->completed++;
	for (uint32_t w = 0; w < job->worker_count && !finished; w++)
		c->bytes += c->info.shards[w].appended_bytes;
	record_duration(c, weir_clock_ns() - c->triggered_ns);
	return 0;
}

void job_checkpoint_tick(struct weir_job *job)
{
	struct job_checkpoints *c = &job->checkpoints;
	if (job->store == NULL || atomic_load(&job->abort_requested))
		return;
	uint64_t now = weir_clock_ns();
	if (!c->in_flight) {
		if (now < c->next_trigger_ns)
			return;
		c->epoch++;
		c->in_flight = true;
		c->triggered_ns = now;
		atomic_store_explicit(&job->barrier_requested, c->epoch, memory_order_release);
		return;
	}
	uint32_t acked = 0;
	for (uint32_t w = 0; w < job->worker_count; w++)
		acked += atomic_load_explicit(&job->workers[w].acked_epoch,
					      memory_order_acquire) >= c->epoch;
	if (acked < job->worker_count) {
		if (now - c->triggered_ns > job->options.checkpoint_timeout_ms * 1000000u) {
			fprintf(stderr, "weir: checkpoint %llu abandoned: not done in %llu ms\n",
				(unsigned long long)c->epoch,
				(unsigned long long)job->options.checkpoint_timeout_ms);
			c->abandoned++;
			c->in_flight = false;
			c->next_trigger_ns = now;
		}
		return;
	}
	int rc = commit(job, c->epoch, false);
	c->in_flight = false;
	c->next_trigger_ns = c->triggered_ns + job->options.checkpoint_interval_ms * 1000000u;
	/* A manifest that could not be written is abandoned (counted, and the next one
	 * covers its epoch); output that could not be staged or published stops the job. */
	if (rc != 0 && job->error[0] != '\0')
		atomic_store(&job->abort_requested, true);
}

int job_checkpoint_finish(struct weir_job *job, bool clean)
{
	if (job->store == NULL || !clean)
		return 0;
	/* The input ended: one more epoch holds the rows after the last barrier. */
	struct job_checkpoints *c = &job->checkpoints;
	c->triggered_ns = weir_clock_ns();
	int rc = commit(job, c->epoch + 1, true);
	if (rc != 0 && job->error[0] == '\0')
		rc = weir_job_fail(job, rc, "the last checkpoint could not be written, so the "
				   "output of its epoch is not published; run again to finish");
	return rc;
}

void job_checkpoint_free(struct weir_job *job)
{
	weir_mem_free(job->recovered, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(job->splits, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(job->split_positions, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(job->split_final, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(job->checkpoints.durations_ns, WEIR_MEM_ARENA_DEFAULT);
	job->recovered = NULL;
	job->splits = job->split_positions = job->split_final = NULL;
	job->checkpoints.durations_ns = NULL;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

void job_checkpoint_stats(const struct weir_job *job, struct weir_job_stats *stats)
{
	const struct job_checkpoints *c = &job->checkpoints;
	stats->recovered_epoch = job->recovered != NULL ? job->recovered->epoch : 0;
	stats->checkpoints_completed = c->completed;
	stats->checkpoints_abandoned = c->abandoned;
	stats->checkpoint_bytes = c->bytes;
	/* The main thread's part, then the slowest shard's replay (they replay in parallel). */
	uint64_t replay_ns = 0;
	for (uint32_t w = 0; job->workers != NULL && w < job->worker_count; w++) {
		if (job->workers[w].replay_ns > replay_ns)
			replay_ns = job->workers[w].replay_ns;
	}
	stats->recovery_seconds = job->recovery_seconds + (double)replay_ns / 1e9;
	for (uint32_t s = 0; job->recovered != NULL && s < job->recovered->worker_count; s++)
		stats->recovered_state_bytes += job->recovered->shards[s].state_bytes;
	if (c->duration_count == 0)
		return;
	qsort(c->durations_ns, c->duration_count, sizeof(uint64_t), compare_u64);
	stats->checkpoint_ns_p50 = c->durations_ns[(c->duration_count - 1) / 2];
	stats->checkpoint_ns_p99 = c->durations_ns[(c->duration_count * 99 - 1) / 100];
	stats->checkpoint_ns_max = c->durations_ns[c->duration_count - 1];
}
