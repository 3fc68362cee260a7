/* The job's insides, shared by core/job.c (building, running, reporting) and core/worker.c
 * (the loop each worker thread runs).  Not for other modules. */
#ifndef WEIR_CORE_JOB_PRIV_H
#define WEIR_CORE_JOB_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/batch.h"
#include "core/job.h"
#include "core/ring.h"
#include "core/topo.h"
#include "core/watermark.h"

#define JOB_STAGES_MAX 16u
#define JOB_COMPONENTS_MAX 32u

struct job_stage {
	weir_stage_fn *fn;
	void *ctx;
	struct weir_schema out_schema;
};

struct job_sink {
	const struct weir_sink_vtable *vtable;
	void *ctx;
};

/* Per-worker counters: written by the worker only, read after it stopped. */
struct worker_counters {
	uint64_t events_in;
	uint64_t events_shuffled;
	uint64_t batches_sent;
	uint64_t backpressure_turns;
	uint64_t idle_turns;
	uint64_t turns;
	uint64_t busy_ns;
};

struct worker {
	uint32_t id;
	unsigned arena;
	struct weir_job *job;
	pthread_t thread;
	int error; /* 0, or -errno that stopped this worker */
	char error_message[256];

	void *source_partition;
	bool source_ended;
	bool end_queued;
	struct weir_wm_source wm_source;
	struct weir_wm_tracker tracker;

	struct weir_batch_pool *pool;
	struct weir_batch **filling;	    /* [worker_count]: the batch being filled per peer */
	struct weir_batch **pending_head;   /* [worker_count]: batches waiting for ring room */
	struct weir_batch **pending_tail;
	uint32_t pending_count;
	uint8_t *stage_buffers[2];	    /* stage-0 scratch, batch_records records each */
	uint8_t *key_scratch;

	void *keyed_instance;
	struct weir_emitter out;
	struct weir_emitter late;
	void *sink_instances[2];

	struct worker_counters counters;
	uint64_t finished_ns;
	_Atomic bool done;
};

struct weir_job {
	struct weir_job_options options;
	char error[512];

	struct weir_source source;
	struct job_stage stages[JOB_STAGES_MAX];
	uint32_t stage_count;
	uint32_t stage_buffer_length; /* bytes per record of the widest stage schema */
	uint32_t stage_expansion;     /* records the stages make of one source record, at most */

	bool keyed;
	struct weir_schema exchange_schema; /* what crosses the rings */
	struct weir_key_spec key;

	const struct weir_keyed_op_vtable *keyed_vtable;
	void *keyed_ctx;
	uint32_t time_offset;
	struct weir_schema out_schema;

	struct job_sink sinks[2]; /* [0] rows, [1] late events */

	struct weir_component components[JOB_COMPONENTS_MAX];
	uint32_t component_count;

	/* Runtime. */
	struct weir_topo *topo;
	struct weir_placement plan;
	uint32_t worker_count;
	uint32_t batch_records;
	uint32_t pull_records; /* asked of the source per pull: batch_records / expansion */
	uint32_t pool_batches;
	uint64_t seed;
	struct worker *workers;
	/* rings[from * n + to] carries batches from worker `from` to worker `to`; returns[to * n +
	 * from] brings them home.  Each ring is allocated by the worker that reads it. */
	struct weir_ring **rings;
	struct weir_ring **returns;
	pthread_barrier_t start_barrier;
	_Atomic bool abort_requested;
	bool ran;
	_Atomic uint64_t run_started_ns; /* when the start barrier opened */
	double seconds;
};

void *weir_worker_main(void *worker);

#endif
