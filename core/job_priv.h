/* The job's insides, shared by core/job.c (building, running, reporting) and core/worker.c
 * (the loop each worker thread runs).  Not for other modules. */
#ifndef WEIR_CORE_JOB_PRIV_H
#define WEIR_CORE_JOB_PRIV_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/batch.h"
#include "core/checkpoint.h"
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

	void *source_partition;	 /* the one being read: partitions[partition_current] */
	void **partitions;	 /* [partition_count]: one per split this worker reads */
	uint32_t *partition_splits; /* [partition_count]: their indexes in job->splits */
	uint32_t partition_count;
	uint32_t partition_current;
	bool source_ended;
	bool end_queued;
	bool source_dry; /* its last pull found nothing (a live source between packets) */
	struct weir_wm_source wm_source;
	struct weir_wm_tracker tracker;
	int64_t advanced_to; /* the clock the keyed operator was last advanced to */

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

	/* Checkpoints (job->store != NULL). */
	void *store_shard;
	struct weir_state_writer state_writer;
	uint64_t barrier_sent;	      /* newest barrier the source side sent */
	/* Positions of this worker's splits are written to job->split_positions when barrier
	 * n is sent, and to job->split_final when the source ends; the coordinator reads them
	 * after the acks of n, which order after the barrier (or END) that carried them. */
	_Atomic uint64_t source_ended_after; /* barrier_sent when the source ended, or MAX */
	uint64_t events_at_barrier;
	uint64_t source_sealed;	      /* last tag its partitions' ingest logs were sealed with */
	uint64_t events_at_end;
	uint64_t aligning;	      /* barrier being aligned, 0: none */
	bool *channel_blocked;	      /* [n]: delivered `aligning`, not read until aligned */
	struct weir_batch **held;     /* [n * WORKER_HELD_MAX]: read past a barrier, kept */
	uint32_t *held_at, *held_count; /* [n] */
	uint64_t sealed_epoch;	      /* newest epoch sealed in the log */
	bool snapshot_due;	      /* the next checkpoint writes all state (after recovery) */
	struct weir_checkpoint_shard sealed; /* what sealed_epoch will report once durable */
	struct weir_checkpoint_shard acked;  /* read by the coordinator after acked_epoch */
	_Atomic uint64_t acked_epoch; /* newest epoch whose log is durable */
	uint64_t replay_ns;	      /* rebuilding its state at recovery */

	struct worker_counters counters;
	uint64_t finished_ns;
	_Atomic bool done;
};

/* The coordinator's record of the checkpoints of one run (main thread only). */
struct job_checkpoints {
	uint64_t epoch;		/* newest barrier requested */
	bool in_flight;
	uint64_t triggered_ns;
	uint64_t next_trigger_ns;
	uint64_t completed;
	uint64_t abandoned;
	uint64_t bytes;
	uint64_t *durations_ns; /* completed ones, for p50/p99 */
	uint32_t duration_count;
	uint32_t duration_capacity;
	uint64_t sink_bytes[2];
	struct weir_checkpoint_info info; /* being assembled */
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

	/* Checkpoints: the store (state/store.c) and what recovery found. */
	const struct weir_store_vtable *store;
	void *store_ctx;
	char state_dir[512];
	struct weir_checkpoint_info *recovered; /* NULL: a fresh run */
	double recovery_seconds;
	struct weir_split *splits;	   /* [split_count]: what this run reads */
	struct weir_split *split_positions; /* [split_count]: at the last barrier, per owner */
	struct weir_split *split_final;	    /* [split_count]: where its source ended */
	uint32_t split_count;
	_Atomic uint64_t barrier_requested;
	struct job_checkpoints checkpoints;

	struct weir_component components[JOB_COMPONENTS_MAX];
	uint32_t component_count;

	/* Runtime. */
	struct weir_topo *topo;
	struct weir_placement plan;
	uint32_t worker_count;
	uint32_t batch_records;
	uint32_t pull_records; /* asked of the source per pull: pull_batches * batch_records /
				* expansion */
	uint32_t pull_batches; /* batches a pull's records may fill */
	uint32_t stage_records; /* records the stage buffers hold: pull_batches * batch_records */
	uint32_t pool_batches;
	uint64_t seed;
	uint32_t group_shift; /* log2(key_groups) when a power of two above 1, else 0 */
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

#define WORKER_HELD_MAX 32u /* the dequeue burst: what may follow a barrier in one */

void *weir_worker_main(void *worker);

/* Takes ownership of @component: keeps it, or destroys it when @rc is an error or the job is
 * full.  Returns: 0, or the error. */
int job_adopt_component(struct weir_job *job, int rc, struct weir_component component);

/* Main thread: moves the workers' finished output to the sinks.  Returns: units of work. */
uint32_t job_poll_sinks(struct weir_job *job);

/* core/coordinator.c: checkpoints from the main thread. */
int job_checkpoint_prepare(struct weir_job *job);  /* before the workers start */
void job_checkpoint_tick(struct weir_job *job);	    /* each supervise turn */
int job_checkpoint_finish(struct weir_job *job, bool clean); /* after they stopped */
void job_checkpoint_free(struct weir_job *job);
void job_checkpoint_stats(const struct weir_job *job, struct weir_job_stats *stats);

#endif
