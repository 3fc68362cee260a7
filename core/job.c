/* Building a job (the chain source -> stages -> key_by -> keyed operator -> sinks), running
 * it on pinned workers, and reporting what happened. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/job_priv.h"
#include "core/mem.h"

#define JOB_BATCH_BYTES_TARGET (64u * 1024u)
#define JOB_BATCH_RECORDS_MIN 16u
#define JOB_BATCH_RECORDS_MAX 512u
#define JOB_BATCH_RECORDS_LIMIT 4096u /* operators/stateless.c keeps this many flags */
#define JOB_PULL_BATCHES 4u /* a pull fills up to this many batches */
#define JOB_STAGE_EXPANSION_MAX 16u

static atomic_bool stop_requested;

void weir_stop(void)
{
	atomic_store_explicit(&stop_requested, true, memory_order_relaxed);
}

bool weir_stop_requested(void)
{
	return atomic_load_explicit(&stop_requested, memory_order_relaxed);
}

uint64_t weir_clock_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

void weir_emitter_flush(struct weir_emitter *emitter)
{
	WEIR_ASSERT(emitter->count <= emitter->capacity);
	if (emitter->count > 0 && emitter->sink != NULL)
		emitter->sink->write(emitter->sink_instance, emitter->records, emitter->count);
	emitter->count = 0;
}

void weir_job_options_init(struct weir_job_options *options)
{
	WEIR_VERIFY(options != NULL);
	memset(options, 0, sizeof(*options));
	options->pin_workers = true;
	options->ring_slots = 64;
	options->key_groups = WEIR_KEY_GROUPS_DEFAULT;
	options->state_budget_mib = 1024;
	options->checkpoint_interval_ms = 1000;
	options->checkpoint_timeout_ms = 60000;
	options->checkpoints_kept = 3;
}

int weir_job_fail(struct weir_job *job, int rc, const char *format, ...)
{
	WEIR_VERIFY(rc < 0);
	va_list args;
	va_start(args, format);
	vsnprintf(job->error, sizeof(job->error), format, args);
	va_end(args);
	return rc;
}

const char *weir_job_error(const struct weir_job *job)
{
	return job->error;
}

int weir_job_create(struct weir_job **job_out, const struct weir_job_options *options)
{
	WEIR_VERIFY(job_out != NULL);
	struct weir_job *job = weir_mem_alloc(sizeof(*job), WEIR_CACHE_LINE,
					      WEIR_MEM_ARENA_DEFAULT);
	if (job == NULL)
		return -ENOMEM;
	if (options != NULL)
		job->options = *options;
	else
		weir_job_options_init(&job->options);
	const struct weir_job_options *o = &job->options;
	if (o->ring_slots < 2 || (o->ring_slots & (o->ring_slots - 1)) != 0 ||
	    o->key_groups == 0 || o->out_of_orderness < 0 || o->state_budget_mib == 0 ||
	    o->worker_count > WEIR_WORKERS_MAX || o->worker_count > o->key_groups ||
	    o->batch_records > JOB_BATCH_RECORDS_LIMIT) {
		weir_mem_free(job, WEIR_MEM_ARENA_DEFAULT);
		return -EINVAL;
	}
	*job_out = job;
	return 0;
}

const struct weir_schema *weir_job_tail_schema(const struct weir_job *job)
{
	if (job->source.vtable == NULL)
		return NULL;
	if (job->stage_count > 0)
		return &job->stages[job->stage_count - 1].out_schema;
	return job->source.schema;
}

const struct weir_job_options *weir_job_get_options(const struct weir_job *job)
{
	return &job->options;
}

int weir_job_column_offset(const struct weir_job *job, const char *column)
{
	const struct weir_schema *schema = weir_job_tail_schema(job);
	if (schema == NULL)
		return -EINVAL;
	int index = weir_schema_find(schema, column);
	return index < 0 ? index : (int)schema->fields[index].offset;
}

/* Takes ownership of @component: the job keeps it (and destroys it with the job), or, when
 * @rc (an earlier check's verdict) is an error or the job is full, destroys it now.
 * Returns: 0, or the error. */
int job_adopt_component(struct weir_job *job, int rc, struct weir_component component)
{
	if (rc == 0 && job->component_count == JOB_COMPONENTS_MAX)
		rc = weir_job_fail(job, -E2BIG, "job: more than %u parts", JOB_COMPONENTS_MAX);
	if (rc != 0) {
		if (component.destroy != NULL)
			component.destroy(component.ctx);
		return rc;
	}
	job->components[job->component_count++] = component;
	return 0;
}

static void widen_stage_buffer(struct weir_job *job, const struct weir_schema *schema)
{
	if (schema->record_length > job->stage_buffer_length)
		job->stage_buffer_length = schema->record_length;
}

int weir_job_attach_source(struct weir_job *job, struct weir_source source,
			   struct weir_component component)
{
	WEIR_VERIFY(source.vtable != NULL && source.schema != NULL);
	int rc = 0;
	if (job->source.vtable != NULL)
		rc = weir_job_fail(job, -EEXIST, "job: a job has exactly one source");
	rc = job_adopt_component(job, rc, component);
	if (rc != 0)
		return rc;
	job->source = source;
	widen_stage_buffer(job, source.schema);
	return 0;
}

/* Appends a stage once the checks before it passed (@rc == 0); adopts @component either way. */
static int stage_push(struct weir_job *job, int rc, weir_stage_fn *fn, void *ctx,
		      const struct weir_schema *out_schema, uint32_t expansion,
		      struct weir_component component)
{
	if (job->stage_expansion == 0)
		job->stage_expansion = 1;
	if (rc == 0 && job->stage_expansion * expansion > JOB_STAGE_EXPANSION_MAX)
		rc = weir_job_fail(job, -EINVAL, "job: operators multiply records by more than %u",
				   JOB_STAGE_EXPANSION_MAX);
	if (rc == 0 && job->stage_count == JOB_STAGES_MAX)
		rc = weir_job_fail(job, -E2BIG, "job: more than %u operators", JOB_STAGES_MAX);
	rc = job_adopt_component(job, rc, component);
	if (rc != 0)
		return rc;
	struct job_stage *stage = &job->stages[job->stage_count++];
	stage->fn = fn;
	stage->ctx = ctx;
	stage->out_schema = *out_schema;
	job->stage_expansion *= expansion;
	widen_stage_buffer(job, out_schema);
	return 0;
}

int weir_job_append_stage(struct weir_job *job, weir_stage_fn *fn, void *ctx,
			  const struct weir_schema *out_schema, uint32_t expansion,
			  struct weir_component component)
{
	WEIR_VERIFY(fn != NULL && out_schema != NULL);
	WEIR_VERIFY(expansion >= 1);
	int rc = 0;
	if (job->source.vtable == NULL)
		rc = weir_job_fail(job, -EINVAL, "job: add a source before operators");
	else if (job->keyed)
		rc = weir_job_fail(job, -EINVAL,
				   "job: stateless operators go before key_by");
	return stage_push(job, rc, fn, ctx, out_schema, expansion, component);
}

int weir_job_append_combiner(struct weir_job *job, weir_stage_fn *fn, void *ctx,
			     const struct weir_schema *out_schema, struct weir_component component)
{
	WEIR_VERIFY(fn != NULL && out_schema != NULL);
	int rc = 0;
	if (!job->keyed || job->keyed_vtable != NULL)
		rc = weir_job_fail(job, -EINVAL, "combine: goes between key_by and its window");
	/* The key is the same columns, found by name in the combined records. */
	char columns[WEIR_KEY_COLUMNS_MAX * WEIR_FIELD_NAME_MAX] = "";
	for (uint32_t k = 0; rc == 0 && k < job->key.part_count; k++) {
		const struct weir_field *field =
			&job->exchange_schema.fields[job->key.parts[k].field_index];
		strcat(columns, k > 0 ? "," : "");
		strcat(columns, field->name);
	}
	struct weir_key_spec key;
	char message[256];
	if (rc == 0 && weir_key_spec_init(&key, out_schema, columns, message, sizeof(message)))
		rc = weir_job_fail(job, -EINVAL, "combine: %s", message);
	rc = stage_push(job, rc, fn, ctx, out_schema, 1, component);
	if (rc != 0)
		return rc;
	job->key = key;
	job->exchange_schema = *out_schema;
	return 0;
}

int weir_job_key_by(struct weir_job *job, const char *columns)
{
	const struct weir_schema *schema = weir_job_tail_schema(job);
	if (schema == NULL)
		return weir_job_fail(job, -EINVAL, "key_by: add a source first");
	if (job->keyed)
		return weir_job_fail(job, -EINVAL, "key_by: a job has one key_by");
	char message[256];
	int rc = weir_key_spec_init(&job->key, schema, columns, message, sizeof(message));
	if (rc != 0)
		return weir_job_fail(job, rc, "%s", message);
	job->exchange_schema = *schema;
	job->keyed = true;
	return 0;
}

const struct weir_key_spec *weir_job_key(const struct weir_job *job)
{
	return job->keyed ? &job->key : NULL;
}

int weir_job_attach_keyed_op(struct weir_job *job, const struct weir_keyed_op_vtable *vtable,
			     void *ctx, uint32_t time_offset, const struct weir_schema *out_schema,
			     struct weir_component component)
{
	WEIR_VERIFY(vtable != NULL && out_schema != NULL);
	int rc = 0;
	if (!job->keyed)
		rc = weir_job_fail(job, -EINVAL, "window: call key_by first");
	else if (job->keyed_vtable != NULL)
		rc = weir_job_fail(job, -EEXIST, "window: a job has one window operator");
	rc = job_adopt_component(job, rc, component);
	if (rc != 0)
		return rc;
	WEIR_VERIFY(time_offset + 8 <= job->exchange_schema.record_length);
	job->keyed_vtable = vtable;
	job->keyed_ctx = ctx;
	job->time_offset = time_offset;
	job->out_schema = *out_schema;
	return 0;
}

const struct weir_schema *weir_job_sink_schema(const struct weir_job *job, bool late)
{
	if (late)
		return job->keyed ? &job->exchange_schema : NULL;
	if (!job->keyed)
		return weir_job_tail_schema(job); /* stateless: records go out as they are */
	return job->keyed_vtable != NULL ? &job->out_schema : NULL;
}

int weir_job_attach_sink(struct weir_job *job, bool late, const struct weir_sink_vtable *vtable,
			 void *ctx, struct weir_component component)
{
	WEIR_VERIFY(vtable != NULL);
	struct job_sink *sink = &job->sinks[late ? 1 : 0];
	int rc = 0;
	if (sink->vtable != NULL)
		rc = weir_job_fail(job, -EEXIST, "job: that output has a sink already");
	rc = job_adopt_component(job, rc, component);
	if (rc != 0)
		return rc;
	sink->vtable = vtable;
	sink->ctx = ctx;
	return 0;
}

static int job_plan(struct weir_job *job)
{
	char message[256] = "";
	int rc = weir_topo_create(&job->topo, NULL, message, sizeof(message));
	if (rc != 0)
		return weir_job_fail(job, rc, "topology: %s", message);
	rc = weir_topo_plan(job->topo, job->options.worker_count, job->options.cpu_list,
			    &job->plan, message, sizeof(message));
	if (rc != 0)
		return weir_job_fail(job, rc, "placement: %s", message);
	job->worker_count = job->plan.worker_count;
	if (job->worker_count > job->options.key_groups)
		return weir_job_fail(job, -EINVAL, "placement: %u workers but only %u key groups",
				     job->worker_count, job->options.key_groups);
	uint32_t records = job->options.batch_records;
	if (records == 0) {
		records = JOB_BATCH_BYTES_TARGET / job->exchange_schema.record_length;
		if (records < JOB_BATCH_RECORDS_MIN)
			records = JOB_BATCH_RECORDS_MIN;
		if (records > JOB_BATCH_RECORDS_MAX)
			records = JOB_BATCH_RECORDS_MAX;
	}
	job->batch_records = records;
	/* A pull of this many records fills at most one batch after every expansion; a pull
	 * fills up to JOB_PULL_BATCHES of them (route takes as many as it needs; a job without
	 * key_by hands them to its sink in one write): each pull and turn has its fixed costs,
	 * and the stage-0 operators run longer over memory they stream (YSB, 80-byte source
	 * records: 92M -> 101M events/s from 512 to 2048 records a pull; NEXMark q0-q2, 112-byte
	 * bids, without key_by: +3-10%). */
	uint32_t expansion = job->stage_expansion > 0 ? job->stage_expansion : 1;
	job->pull_records = records / expansion > 0 ? records / expansion : 1;
	if (records < expansion)
		return weir_job_fail(job, -EINVAL, "job: --batch %u is smaller than the %u records "
				     "the operators can make of one", records, expansion);
	job->pull_batches = 1;
	while (job->pull_batches < JOB_PULL_BATCHES &&
	       (uint64_t)(job->pull_batches * 2) * records <= JOB_BATCH_RECORDS_LIMIT)
		job->pull_batches *= 2;
	job->pull_records *= job->pull_batches;
	job->stage_records = records * job->pull_batches;
	WEIR_VERIFY((uint64_t)job->pull_records * expansion <= job->stage_records);
	/* Enough batches to fill every outgoing ring and still fill one more per peer, and
	 * what one pull can fill beyond that. */
	job->pool_batches = job->worker_count * (job->options.ring_slots + 3) + job->pull_batches;
	job->group_shift = 0;
	uint32_t groups = job->options.key_groups;
	if (groups > 1 && (groups & (groups - 1)) == 0)
		job->group_shift = (uint32_t)__builtin_ctz(groups);
	job->seed = job->options.seed;
	while (job->seed == 0) {
		if (getrandom(&job->seed, sizeof(job->seed), 0) != sizeof(job->seed))
			job->seed = weir_clock_ns();
	}
	return 0;
}

static int job_check_complete(struct weir_job *job)
{
	if (job->source.vtable == NULL)
		return weir_job_fail(job, -EINVAL, "job: no source");
	if (job->keyed && job->keyed_vtable == NULL)
		return weir_job_fail(job, -EINVAL, "job: key_by needs a window after it");
	if (job->sinks[0].vtable == NULL)
		return weir_job_fail(job, -EINVAL, "job: no sink");
	if (!job->keyed) {
		/* Stateless: no exchange; each worker's records go from its stages to the sink. */
		job->exchange_schema = *weir_job_tail_schema(job);
		job->out_schema = job->exchange_schema;
	}
	if (job->ran)
		return weir_job_fail(job, -EALREADY, "job: a job runs once");
	return 0;
}

uint32_t job_poll_sinks(struct weir_job *job)
{
	uint32_t work = 0;
	for (uint32_t s = 0; s < 2; s++) {
		if (job->sinks[s].vtable != NULL)
			work += job->sinks[s].vtable->poll_main(job->sinks[s].ctx);
	}
	return work;
}

/* Main thread while the workers run: it writes their output and waits for them.  Its pause
 * between polls starts at JOB_PAUSE_MIN_NS and doubles, up to JOB_PAUSE_MAX_NS, while there is
 * nothing to write and no checkpoint to finish: when the workers have every CPU (2 workers on
 * 2 vCPUs), each wakeup preempts one, and 10,000 wakeups a second cost shuffle-tax a third of
 * its rate (2 workers: 23M -> 38M events/s per worker at 2 ms).  Output or a checkpoint in
 * flight brings it back to JOB_PAUSE_MIN_NS, so rows and checkpoint acks wait no longer. */
#define JOB_PAUSE_MIN_NS 100000u
#define JOB_PAUSE_MAX_NS 2000000u

static void job_supervise(struct weir_job *job)
{
	uint32_t pause_ns = JOB_PAUSE_MIN_NS;
	for (;;) {
		uint32_t done = 0;
		for (uint32_t w = 0; w < job->worker_count; w++)
			done += atomic_load_explicit(&job->workers[w].done, memory_order_acquire);
		if (job_poll_sinks(job) == 0) {
			if (done == job->worker_count)
				break;
			if (job->checkpoints.in_flight)
				pause_ns = JOB_PAUSE_MIN_NS;
			struct timespec pause = {.tv_sec = 0, .tv_nsec = pause_ns};
			nanosleep(&pause, NULL);
			pause_ns = pause_ns < JOB_PAUSE_MAX_NS / 2 ? 2 * pause_ns
								   : JOB_PAUSE_MAX_NS;
			WEIR_ASSERT(pause_ns >= JOB_PAUSE_MIN_NS);
			WEIR_ASSERT(pause_ns <= JOB_PAUSE_MAX_NS);
		} else {
			pause_ns = JOB_PAUSE_MIN_NS;
		}
		if (done < job->worker_count)
			job_checkpoint_tick(job);
	}
}

static void worker_free(struct weir_job *job, struct worker *worker)
{
	unsigned arena = worker->arena;
	uint32_t n = job->worker_count;
	for (uint32_t peer = 0; peer < n; peer++) {
		struct weir_ring *rings[2] = {job->rings[peer * n + worker->id],
					      job->returns[peer * n + worker->id]};
		for (uint32_t r = 0; r < 2; r++) {
			if (rings[r] == NULL)
				continue;
			weir_mem_free(rings[r]->slots, arena);
			weir_mem_free(rings[r], arena);
		}
	}
	weir_batch_pool_destroy(worker->pool);
	weir_mem_free(worker->filling, arena);
	weir_mem_free(worker->pending_head, arena);
	weir_mem_free(worker->pending_tail, arena);
	weir_mem_free(worker->stage_buffers[0], arena);
	weir_mem_free(worker->stage_buffers[1], arena);
	weir_mem_free(worker->key_scratch, arena);
	weir_mem_free(worker->out.records, arena);
	weir_mem_free(worker->late.records, arena);
	if (worker->partitions != &worker->source_partition)
		weir_mem_free(worker->partitions, arena);
	weir_mem_free(worker->partition_splits, arena);
	weir_mem_free(worker->channel_blocked, arena);
	weir_mem_free(worker->held, arena);
	weir_mem_free(worker->held_at, arena);
	weir_mem_free(worker->held_count, arena);
}

/* After every worker stopped: close what they opened, collect errors. */
static int job_close_workers(struct weir_job *job, int rc)
{
	for (uint32_t w = 0; w < job->worker_count; w++) {
		struct worker *worker = &job->workers[w];
		if (worker->error != 0 && rc == 0)
			rc = weir_job_fail(job, worker->error, "%s", worker->error_message);
		for (uint32_t p = 0; p < worker->partition_count; p++) {
			if (worker->partitions[p] != NULL)
				job->source.vtable->close(job->source.ctx, worker->partitions[p]);
		}
		if (worker->store_shard != NULL)
			job->store->shard_close(job->store_ctx, worker->store_shard);
		if (worker->keyed_instance != NULL)
			job->keyed_vtable->close(job->keyed_ctx, worker->keyed_instance);
		for (uint32_t s = 0; s < 2; s++) {
			if (worker->sink_instances[s] != NULL)
				job->sinks[s].vtable->close(job->sinks[s].ctx,
							    worker->sink_instances[s]);
		}
		worker_free(job, worker);
	}
	for (uint32_t s = 0; s < 2 && rc == 0; s++) {
		const char *error = job->sinks[s].vtable != NULL
					    ? job->sinks[s].vtable->error(job->sinks[s].ctx)
					    : NULL;
		if (error != NULL)
			rc = weir_job_fail(job, -EIO, "%s", error);
	}
	return rc;
}

static int job_allocate_runtime(struct weir_job *job)
{
	uint32_t n = job->worker_count;
	job->workers = weir_mem_alloc(sizeof(*job->workers) * n, WEIR_CACHE_LINE,
				      WEIR_MEM_ARENA_DEFAULT);
	job->rings = weir_mem_alloc(sizeof(*job->rings) * n * n, WEIR_CACHE_LINE,
				    WEIR_MEM_ARENA_DEFAULT);
	job->returns = weir_mem_alloc(sizeof(*job->returns) * n * n, WEIR_CACHE_LINE,
				      WEIR_MEM_ARENA_DEFAULT);
	if (job->workers == NULL || job->rings == NULL || job->returns == NULL)
		return weir_job_fail(job, -ENOMEM, "job: out of memory for %u workers", n);
	for (uint32_t w = 0; w < n; w++) {
		job->workers[w].id = w;
		job->workers[w].job = job;
	}
	return 0;
}

int weir_job_run(struct weir_job *job)
{
	int rc = job_check_complete(job);
	if (rc == 0)
		rc = job_plan(job);
	if (rc == 0)
		rc = job_checkpoint_prepare(job);
	if (rc == 0)
		rc = job_allocate_runtime(job);
	if (rc != 0)
		return rc;
	job->ran = true;
	if (job->recovered != NULL && job->recovered->finished)
		return 0; /* the output was complete already (recovery finished publishing it) */
	uint32_t n = job->worker_count;
	uint64_t started_ns = weir_clock_ns();
	rc = pthread_barrier_init(&job->start_barrier, NULL, n);
	if (rc != 0)
		return weir_job_fail(job, -rc, "job: barrier: %s", strerror(rc));
	uint32_t started = 0;
	for (; started < n; started++) {
		rc = pthread_create(&job->workers[started].thread, NULL, weir_worker_main,
				    &job->workers[started]);
		if (rc != 0)
			break;
	}
	/* A barrier counts every worker: if one could not start, none may run. */
	WEIR_VERIFY(started == n);
	job_supervise(job);
	for (uint32_t w = 0; w < n; w++)
		pthread_join(job->workers[w].thread, NULL);
	job_poll_sinks(job);
	for (uint32_t s = 0; s < 2; s++) {
		if (job->sinks[s].vtable != NULL && job->sinks[s].vtable->end != NULL)
			job->sinks[s].vtable->end(job->sinks[s].ctx);
	}
	pthread_barrier_destroy(&job->start_barrier);
	/* Setup (allocation, source partitions made up front) is not the job's time. */
	uint64_t run_started_ns = atomic_load(&job->run_started_ns);
	uint64_t finished_ns = run_started_ns;
	for (uint32_t w = 0; w < n; w++) {
		if (job->workers[w].finished_ns > finished_ns)
			finished_ns = job->workers[w].finished_ns;
	}
	job->seconds = run_started_ns != 0 ? (double)(finished_ns - run_started_ns) / 1e9
					   : (double)(weir_clock_ns() - started_ns) / 1e9;
	bool clean = true;
	for (uint32_t w = 0; w < n; w++)
		clean &= job->workers[w].error == 0;
	clean &= !atomic_load(&job->abort_requested) && job->error[0] == '\0';
	rc = job_checkpoint_finish(job, clean);
	return job_close_workers(job, rc);
}

void weir_job_get_stats(const struct weir_job *job, struct weir_job_stats *stats)
{
	memset(stats, 0, sizeof(*stats));
	stats->worker_count = job->worker_count;
	stats->seconds = job->seconds;
	for (uint32_t w = 0; job->workers != NULL && w < job->worker_count; w++) {
		const struct worker_counters *c = &job->workers[w].counters;
		stats->events_in += c->events_in;
		stats->events_shuffled += c->events_shuffled;
		stats->batches_shuffled += c->batches_sent;
		stats->backpressure_turns += c->backpressure_turns;
		stats->rows_out += job->workers[w].out.emitted_count;
	}
	job_checkpoint_stats(job, stats);
	stats->already_finished = job->recovered != NULL && job->recovered->finished;
	for (uint32_t i = 0; i < job->component_count; i++) {
		if (job->components[i].add_stats != NULL)
			job->components[i].add_stats(job->components[i].ctx, stats);
	}
}

void weir_job_report(const struct weir_job *job, void *stream_arg)
{
	FILE *stream = stream_arg;
	for (uint32_t i = 0; i < job->component_count; i++) {
		if (job->components[i].report != NULL)
			job->components[i].report(job->components[i].ctx, stream);
	}
	struct weir_job_stats stats;
	weir_job_get_stats(job, &stats);
	double rate = stats.seconds > 0 ? (double)stats.events_in / stats.seconds : 0;
	fprintf(stream,
		"weir: %llu events in %.3f s (%.0f events/s) on %u workers; %llu rows out; "
		"late: %llu updated, %llu dropped; %llu refused (state budget)\n",
		(unsigned long long)stats.events_in, stats.seconds, rate, stats.worker_count,
		(unsigned long long)stats.rows_out, (unsigned long long)stats.late_updates,
		(unsigned long long)stats.late_dropped, (unsigned long long)stats.state_full);
	if (job->store != NULL)
		fprintf(stream,
			"weir: checkpoints in %s: %llu completed, %llu abandoned; took p50 "
			"%.1f ms, p99 %.1f ms, max %.1f ms; %llu log bytes; continued from "
			"checkpoint %llu (recovery %.3f s)\n",
			job->state_dir, (unsigned long long)stats.checkpoints_completed,
			(unsigned long long)stats.checkpoints_abandoned,
			(double)stats.checkpoint_ns_p50 / 1e6,
			(double)stats.checkpoint_ns_p99 / 1e6,
			(double)stats.checkpoint_ns_max / 1e6,
			(unsigned long long)stats.checkpoint_bytes,
			(unsigned long long)stats.recovered_epoch, stats.recovery_seconds);
	for (uint32_t w = 0; job->workers != NULL && w < job->worker_count; w++) {
		const struct worker *worker = &job->workers[w];
		const struct worker_counters *c = &worker->counters;
		const struct weir_worker_place *place = &job->plan.workers[w];
		double busy = c->turns > 0 ? 1.0 - (double)c->idle_turns / (double)c->turns : 0;
		fprintf(stream,
			"weir:   worker %u (cpu %d, node %d): %llu events read, %llu shuffled in "
			"%llu batches, %.0f%% busy turns, %llu backpressured turns\n",
			w, place->pu_os_index, place->numa_node_os_index,
			(unsigned long long)c->events_in, (unsigned long long)c->events_shuffled,
			(unsigned long long)c->batches_sent, busy * 100.0,
			(unsigned long long)c->backpressure_turns);
	}
}

void weir_job_destroy(struct weir_job *job)
{
	if (job == NULL)
		return;
	for (uint32_t i = job->component_count; i-- > 0;) {
		if (job->components[i].destroy != NULL)
			job->components[i].destroy(job->components[i].ctx);
	}
	if (job->topo != NULL)
		weir_topo_destroy(job->topo);
	job_checkpoint_free(job);
	weir_mem_free(job->workers, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(job->rings, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(job->returns, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(job, WEIR_MEM_ARENA_DEFAULT);
}
