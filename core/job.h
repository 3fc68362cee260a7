/* The job graph and its runtime, as the other modules see it.  io/ attaches sources and
 * sinks, operators/ attaches stage operators and the keyed operator; core/ runs them: one
 * pinned worker per placement slot, every worker running every stage, an N x N mesh of SPSC
 * rings at the key_by.  The public face of all this is include/weir/weir.h. */
#ifndef WEIR_CORE_JOB_H
#define WEIR_CORE_JOB_H

#include <stdint.h>
#include <stdio.h>

#include "core/checkpoint.h"
#include "core/keygroup.h"
#include "core/schema.h"
#include "core/source.h"
#include "weir/weir.h"

/* Where a keyed operator writes its rows: a worker-local buffer handed to a sink per batch.
 * Context: the owning worker only. */
struct weir_sink_vtable;
struct weir_emitter {
	uint8_t *records;	/* room for capacity records */
	uint32_t count;
	uint32_t capacity;
	uint32_t record_length;
	uint64_t emitted_count; /* rows ever committed */
	const struct weir_sink_vtable *sink; /* NULL: rows are counted, then dropped */
	void *sink_instance;
};

void weir_emitter_flush(struct weir_emitter *emitter);

/* Room for one row; fill it, then weir_emit_commit().  The row is not zeroed. */
static inline uint8_t *weir_emit_begin(struct weir_emitter *emitter)
{
	if (emitter->count == emitter->capacity)
		weir_emitter_flush(emitter);
	WEIR_ASSERT(emitter->count < emitter->capacity);
	return emitter->records + (size_t)emitter->count * emitter->record_length;
}

static inline void weir_emit_commit(struct weir_emitter *emitter)
{
	WEIR_ASSERT(emitter->count < emitter->capacity);
	emitter->count++;
	emitter->emitted_count++;
}

struct weir_sink_vtable {
	/* Per worker, on the worker's thread.  Returns: 0 or -errno. */
	int (*open)(void *ctx, uint32_t worker, unsigned arena, void **instance_out);
	/* Takes @count rows of the sink's schema.  May wait for the main thread to catch up,
	 * never for another worker.  Context: the worker that opened @instance. */
	void (*write)(void *instance, const uint8_t *records, uint32_t count);
	/* The worker's last rows are written; hand everything to the main thread. */
	void (*finish)(void *instance);
	/* Main thread, while workers run: moves finished output to its destination.
	 * Returns: units of work done (0: nothing was waiting). */
	uint32_t (*poll_main)(void *ctx);
	/* Main thread, after every worker stopped: frees @instance. */
	void (*close)(void *ctx, void *instance);
	/* Main thread, after the run: the first error writing the output, or NULL. */
	const char *(*error)(void *ctx);
	/* Main thread, once, after the workers stopped and their output was polled: a sink
	 * that holds rows back (top-k) writes them now.  May be NULL. */
	void (*end)(void *ctx);
	/* Worker: every row of a window ending at or before @final_end has been written, and
	 * the keyed operator will emit no more of them (its clock passed their end and their
	 * allowed lateness), so a sink that holds rows back per window may let those go while
	 * the job runs.  Called often (every clock step); may be NULL. */
	void (*progress)(void *instance, int64_t final_end);

	/* Exactly-once (a job with a state dir).  NULL in a sink that cannot take part; such
	 * a job is refused.  Output of epoch n is what a worker wrote between barriers n-1
	 * and n (the last epoch: after the last barrier). */
	/* Worker, at barrier @epoch, after its epoch-@epoch rows were written. */
	void (*barrier)(void *instance, uint64_t epoch);
	/* Main, before the workers start: brings the output to what checkpoint @info made
	 * visible, finishing a publish a crash interrupted (NULL: a fresh run, empty output).
	 * Returns: 0 or -errno (message through error()). */
	int (*recover)(void *ctx, const struct weir_checkpoint_info *info, uint32_t sink_index);
	/* Main, once every worker passed barrier @epoch and their output was polled: makes the
	 * output of every epoch <= @epoch durable where it waits.  *bytes_after: the output's
	 * length once they are published.  Returns: 0 or -errno. */
	int (*prepare)(void *ctx, uint64_t epoch, uint64_t *bytes_after);
	/* Main, after manifest @epoch is durable: makes epochs <= @epoch visible.
	 * Returns: 0 or -errno. */
	int (*publish)(void *ctx, uint64_t epoch);
};

/* Hands @emitter's rows to its sink, then says that windows ending at or before @final_end
 * are complete (see weir_sink_vtable.progress).  Context: the emitter's worker. */
static inline void weir_emitter_progress(struct weir_emitter *emitter, int64_t final_end)
{
	weir_emitter_flush(emitter);
	if (emitter->sink != NULL && emitter->sink->progress != NULL)
		emitter->sink->progress(emitter->sink_instance, final_end);
}

/* A stateless step fused into the source's stage: transforms @count records of @in_length
 * bytes into records of the step's output schema.  @out may not alias @in.
 * Returns: records written to @out (at most count * the step's expansion), or
 * WEIR_STAGE_UNCHANGED: the output is @in itself, all @count records (a filter that kept
 * every record need not copy them; only for a step whose output schema is its input's). */
#define WEIR_STAGE_UNCHANGED UINT32_MAX
typedef uint32_t weir_stage_fn(void *ctx, const uint8_t *in, uint32_t count, uint32_t in_length,
			       uint8_t *out, uint32_t out_length);

struct weir_keyed_op_vtable {
	/* Per worker, on its thread.  Rows go to @out; events beyond lateness to @late. */
	int (*open)(void *ctx, uint32_t worker, unsigned arena, struct weir_emitter *out,
		    struct weir_emitter *late, void **instance_out);
	/* Adds @count records (the key_by's input schema) that hash to this worker. */
	void (*process)(void *instance, const uint8_t *records, uint32_t count);
	/* The worker's event-time clock moved to @watermark (INT64_MAX at end of stream). */
	void (*advance)(void *instance, int64_t watermark);
	/* Main thread, after every worker stopped: folds the instance's counters into @ctx
	 * (reported through the operator's weir_component) and frees @instance. */
	void (*close)(void *ctx, void *instance);

	/* Checkpointing: all NULL in an operator whose state cannot be saved (such a job is
	 * refused a state dir).  Context: the instance's worker. */
	/* At barrier writer->epoch: appends what changed since the last call, or every live
	 * entry when @full.  Returns: 0 or -errno. */
	int (*snapshot)(void *instance, bool full, struct weir_state_writer *writer);
	/* Recovery, before the first record: about @state_bytes of state (as state_bytes()
	 * counts it) are coming; a hint for sizing tables.  May be NULL. */
	void (*restore_begin)(void *instance, uint64_t state_bytes);
	/* Recovery, before the loop: one replayed record; a later one of the same key wins. */
	int (*restore)(void *instance, const struct weir_state_record *record);
	/* After the last record: the event-time clock the checkpoint was taken at.  @in_log:
	 * the restored state is what this shard's log holds (it goes on writing changes only);
	 * false: the next snapshot is full.  Returns: 0, or an error a record restore() took
	 * but had not applied yet (-ENOSPC). */
	int (*restored)(void *instance, int64_t watermark, bool in_log);
	/* Bytes of live keyed state. */
	uint64_t (*state_bytes)(const void *instance);
};

/* Lets the job free and report what a module attached.  Either callback may be NULL. */
struct weir_component {
	void *ctx;
	void (*destroy)(void *ctx);
	void (*report)(void *ctx, FILE *stream);
	void (*add_stats)(void *ctx, struct weir_job_stats *stats);
};

/* Records an error message for weir_job_error().  Returns: @rc, for `return set_error(...)`. */
__attribute__((format(printf, 3, 4))) int weir_job_fail(struct weir_job *job, int rc,
							  const char *format, ...);

/* The schema at the tail of the chain built so far; NULL before the source. */
const struct weir_schema *weir_job_tail_schema(const struct weir_job *job);
const struct weir_job_options *weir_job_get_options(const struct weir_job *job);

int weir_job_attach_source(struct weir_job *job, struct weir_source source,
			   struct weir_component component);
/* @expansion: the most records the step makes of one input record (1 for filter and map). */
int weir_job_append_stage(struct weir_job *job, weir_stage_fn *fn, void *ctx,
			  const struct weir_schema *out_schema, uint32_t expansion,
			  struct weir_component component);
const struct weir_key_spec *weir_job_key(const struct weir_job *job);
/* A combiner: a stage after key_by that rewrites the keyed records into @out_schema (which
 * holds the key columns under their names), merging records before they cross the rings.
 * The exchange and the keyed operator then see @out_schema.  A keyed operator's setup calls
 * it before it attaches.  Returns: 0, -EINVAL (no key_by, or a keyed operator already), -E2BIG. */
int weir_job_append_combiner(struct weir_job *job, weir_stage_fn *fn, void *ctx,
			     const struct weir_schema *out_schema, struct weir_component component);

/* @time_offset: where the i64 event time sits in the key_by's input records. */
int weir_job_attach_keyed_op(struct weir_job *job, const struct weir_keyed_op_vtable *vtable,
			     void *ctx, uint32_t time_offset, const struct weir_schema *out_schema,
			     struct weir_component component);
/* @late: false for window rows, true for late events (records of the key_by's input). */
int weir_job_attach_sink(struct weir_job *job, bool late, const struct weir_sink_vtable *vtable,
			 void *ctx, struct weir_component component);
/* The schema a sink attached now will receive. */
const struct weir_schema *weir_job_sink_schema(const struct weir_job *job, bool late);

/* Makes the job checkpoint into @dir through @store (state/store.c attaches itself here).
 * Returns: 0, -EINVAL (a store already attached). */
int weir_job_attach_store(struct weir_job *job, const struct weir_store_vtable *store,
			  void *ctx, const char *dir, struct weir_component component);
/* The state dir, or NULL when the job does not checkpoint. */
const char *weir_job_state_dir(const struct weir_job *job);

uint64_t weir_clock_ns(void);

/* Whether weir_stop() was called: live sources then end their input. */
bool weir_stop_requested(void);

#endif
