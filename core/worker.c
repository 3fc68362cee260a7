/* The worker loop.  Each turn a worker (1) drains every input ring, feeding records to its
 * keyed operator and moving its event-time clock, (2) takes home the batches its peers are
 * done with, (3) pushes its pending output batches into the rings, and (4) only if nothing is
 * pending, pulls one burst from its source partition through the fused stage-0 operators and
 * routes the records to their owners.  A full ring therefore stops the source, never the
 * draining of inputs, so the mesh cannot deadlock.  Nothing here blocks, locks or allocates. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/fault.h"
#include "core/job_priv.h"
#include "core/mem.h"

#define WORKER_DEQUEUE_BURST 32u
#define WORKER_FLUSH_EVERY_PULLS 8u /* partial batches wait at most this many pulls */
#define WORKER_YIELD_AFTER_IDLE 64u
#define WORKER_SLEEP_AFTER_IDLE 4096u

static int worker_fail(struct worker *worker, int rc, const char *what);

struct worker_turn_state {
	int64_t *wm_sent;   /* [n]: watermark last sent to each peer */
	bool *idle_sent;    /* [n]: idleness last told to each peer */
	uint32_t pulls_since_flush;
	uint32_t consecutive_idle;
};

static inline uint32_t peer_count(const struct worker *worker)
{
	return worker->job->worker_count;
}

static void pending_append(struct worker *worker, uint32_t peer, struct weir_batch *batch)
{
	WEIR_ASSERT(batch->next == NULL);
	if (worker->pending_head[peer] == NULL)
		worker->pending_head[peer] = batch;
	else
		worker->pending_tail[peer]->next = batch;
	worker->pending_tail[peer] = batch;
	worker->pending_count++;
}

/* Moves pending batches into the rings, in order per peer; what does not fit stays. */
static void pending_flush(struct worker *worker)
{
	struct weir_job *job = worker->job;
	uint32_t n = peer_count(worker);
	for (uint32_t peer = 0; peer < n && worker->pending_count > 0; peer++) {
		struct weir_ring *ring = job->rings[worker->id * n + peer];
		struct weir_batch *batch = worker->pending_head[peer];
		while (batch != NULL) {
			struct weir_batch *next = batch->next;
			batch->next = NULL;
			if (weir_ring_enqueue_burst_spsc(ring, (void *const *)&batch, 1) == 0) {
				batch->next = next;
				break;
			}
			worker->pending_count--;
			worker->counters.batches_sent++;
			batch = next;
		}
		worker->pending_head[peer] = batch;
		if (batch == NULL)
			worker->pending_tail[peer] = NULL;
	}
}

static void batch_return(struct worker *worker, struct weir_batch *batch)
{
	if (batch->home == worker->id) {
		weir_batch_put(worker->pool, batch);
		return;
	}
	uint32_t n = peer_count(worker);
	struct weir_ring *ring = worker->job->returns[worker->id * n + batch->home];
	/* Return rings hold a whole pool, so a return always fits. */
	uint32_t sent = weir_ring_enqueue_burst_spsc(ring, (void *const *)&batch, 1);
	WEIR_VERIFY(sent == 1);
}

/* Takes the next batches of channel @peer: first what was kept from behind a barrier, then
 * up to @budget from the ring.  Returns: how many are at *items. */
static uint32_t channel_take(struct worker *worker, uint32_t peer, struct weir_batch ***items,
			     struct weir_batch **burst, uint32_t budget)
{
	WEIR_ASSERT(budget >= 1);
	WEIR_ASSERT(budget <= WORKER_DEQUEUE_BURST);
	uint32_t n = peer_count(worker);
	if (worker->held != NULL && worker->held_at[peer] < worker->held_count[peer]) {
		*items = &worker->held[peer * WORKER_HELD_MAX + worker->held_at[peer]];
		uint32_t got = worker->held_count[peer] - worker->held_at[peer];
		worker->held_at[peer] = worker->held_count[peer] = 0;
		return got;
	}
	*items = burst;
	return weir_ring_dequeue_burst_spsc(worker->job->rings[peer * n + worker->id],
					    (void **)burst, budget);
}

/* Barrier @batch arrived on channel @peer: stop reading it until every channel delivered
 * the same barrier, keeping the @rest_count batches that followed it in the burst. */
static void channel_block(struct worker *worker, uint32_t peer, const struct weir_batch *batch,
			  struct weir_batch **rest, uint32_t rest_count)
{
	WEIR_ASSERT(worker->aligning == 0 || worker->aligning == batch->barrier_id);
	WEIR_ASSERT(batch->barrier_id > worker->sealed_epoch);
	WEIR_ASSERT(!worker->channel_blocked[peer]);
	WEIR_ASSERT(rest_count <= WORKER_HELD_MAX);
	worker->aligning = batch->barrier_id;
	worker->channel_blocked[peer] = true;
	/* rest may already point into held[]: move it down, never copy onto itself. */
	memmove(&worker->held[peer * WORKER_HELD_MAX], rest, sizeof(*rest) * rest_count);
	worker->held_at[peer] = 0;
	worker->held_count[peer] = rest_count;
}

/* Whether this worker's source is behind a peer's in event time: a peer's last watermark
 * (ended and idle channels aside) is past our own source's.  Never true of the worker
 * whose source is furthest ahead (its peers' watermarks trail their sources), so at most all
 * but one worker are behind at a time.  A source that is dry (nothing came in the last
 * pull) or ended has nothing to catch up with. */
static bool source_behind(const struct worker *worker)
{
	if (worker->source_ended || worker->source_dry)
		return false;
	int64_t own = weir_wm_source_current(&worker->wm_source);
	if (own == WEIR_WATERMARK_NONE)
		return false;
	const struct weir_wm_tracker *tracker = &worker->tracker;
	for (uint32_t peer = 0; peer < peer_count(worker); peer++) {
		if (peer == worker->id || tracker->channel_ended[peer] ||
		    tracker->channel_idle[peer])
			continue;
		if (tracker->channel_watermark[peer] != WEIR_WATERMARK_NONE &&
		    tracker->channel_watermark[peer] > own)
			return true;
	}
	return false;
}

/* Feeds the input rings to the keyed operator.  A worker whose source is behind a peer's
 * in event time takes one batch per channel this turn, not a burst, and so pulls its own
 * source as often as its peers feed it: a full burst would let a slower worker spend its
 * turns on its peers' records while its own source falls behind, windows ahead of it
 * (shuffle-tax, 2 workers: 2-4 windows, the peer's records making nearly every cell of the
 * newer ones while the older ones stay live: its window took ~100 cycles a record, not the
 * ~65 of pre-partitioned input).  The peers' rings into it then fill and stop their
 * sources until it caught up.  With many workers one batch per channel still exceeds what
 * one pull sends each peer, so this only slows the drift there. */
static uint32_t drain_inputs(struct worker *worker)
{
	struct weir_job *job = worker->job;
	uint32_t n = peer_count(worker);
	uint32_t work = 0;
	bool advanced = false;
	struct weir_batch *burst[WORKER_DEQUEUE_BURST];
	uint32_t budget = n > 1 && source_behind(worker) ? 1 : WORKER_DEQUEUE_BURST;
	for (uint32_t peer = 0; peer < n; peer++) {
		if (worker->channel_blocked != NULL && worker->channel_blocked[peer])
			continue;
		struct weir_batch **items;
		uint32_t got = channel_take(worker, peer, &items, burst, budget);
		for (uint32_t i = 0; i < got; i++) {
			struct weir_batch *batch = items[i];
			if (batch->kind == WEIR_BATCH_BARRIER) {
				channel_block(worker, peer, batch, items + i + 1, got - i - 1);
				batch_return(worker, batch);
				break;
			}
			if (batch->kind == WEIR_BATCH_END) {
				advanced |= weir_wm_tracker_end(&worker->tracker, peer);
			} else {
				WEIR_ASSERT(batch->kind == WEIR_BATCH_DATA);
				if (batch->count > 0)
					job->keyed_vtable->process(worker->keyed_instance,
								   batch->records, batch->count);
				advanced |= weir_wm_tracker_update(&worker->tracker, peer,
								   batch->watermark,
								   batch->source_idle);
			}
			batch_return(worker, batch);
		}
		work += got;
	}
	if (advanced && weir_wm_tracker_all_ended(&worker->tracker)) {
		/* Before +infinity, the clock the input ended at: the largest of the channels'
		 * last watermarks, which does not depend on which channel ended last (an operator
		 * that judges records at the end, like flow records' idleness, then decides the
		 * same way in every run). */
		int64_t end_clock = WEIR_WATERMARK_NONE;
		for (uint32_t peer = 0; peer < n; peer++) {
			if (worker->tracker.channel_watermark[peer] > end_clock)
				end_clock = worker->tracker.channel_watermark[peer];
		}
		if (end_clock != WEIR_WATERMARK_NONE && end_clock > worker->advanced_to)
			job->keyed_vtable->advance(worker->keyed_instance, end_clock);
	}
	if (advanced) {
		job->keyed_vtable->advance(worker->keyed_instance, worker->tracker.current);
		worker->advanced_to = worker->tracker.current;
	}
	return work;
}

static uint32_t drain_returns(struct worker *worker)
{
	uint32_t n = peer_count(worker);
	uint32_t work = 0;
	struct weir_batch *items[WORKER_DEQUEUE_BURST];
	for (uint32_t peer = 0; peer < n; peer++) {
		struct weir_ring *ring = worker->job->returns[peer * n + worker->id];
		uint32_t got;
		do {
			got = weir_ring_dequeue_burst_spsc(ring, (void **)items,
							   WORKER_DEQUEUE_BURST);
			for (uint32_t i = 0; i < got; i++)
				weir_batch_put(worker->pool, items[i]);
			work += got;
		} while (got == WORKER_DEQUEUE_BURST);
	}
	return work;
}

static void stamp_and_queue(struct worker *worker, struct worker_turn_state *turn,
			    uint32_t peer, struct weir_batch *batch)
{
	batch->watermark = weir_wm_source_current(&worker->wm_source);
	batch->source_idle = worker->wm_source.idle;
	turn->wm_sent[peer] = batch->watermark;
	turn->idle_sent[peer] = batch->source_idle;
	pending_append(worker, peer, batch);
}

/* Sends every partly filled batch, and an empty one to peers that have not heard the current
 * watermark or idleness yet.  Returns: false when the pool ran dry (try again later). */
static bool flush_filling(struct worker *worker, struct worker_turn_state *turn)
{
	uint32_t n = peer_count(worker);
	int64_t watermark = weir_wm_source_current(&worker->wm_source);
	bool complete = true;
	for (uint32_t peer = 0; peer < n; peer++) {
		struct weir_batch *batch = worker->filling[peer];
		if (batch != NULL) {
			worker->filling[peer] = NULL;
			stamp_and_queue(worker, turn, peer, batch);
			continue;
		}
		if (turn->wm_sent[peer] == watermark &&
		    turn->idle_sent[peer] == worker->wm_source.idle)
			continue;
		batch = weir_batch_get(worker->pool);
		if (batch == NULL) {
			complete = false;
			continue;
		}
		stamp_and_queue(worker, turn, peer, batch);
	}
	turn->pulls_since_flush = 0;
	return complete;
}

/* The bytes of @record's key encoding: in place when the key is one column (its encoding is
 * then a slice of the record: core/keygroup.h), else encoded into the worker's scratch.
 * *length_out gets its length. */
static inline const uint8_t *route_key(struct worker *worker, const uint8_t *record,
				       uint32_t *length_out)
{
	const struct weir_key_spec *key = &worker->job->key;
	if (key->part_count == 1) {
		const struct weir_key_part *part = &key->parts[0];
		*length_out = part->is_string ? 1u + record[part->offset] : part->length;
		return record + part->offset;
	}
	*length_out = weir_key_encode(key, record, worker->key_scratch);
	return worker->key_scratch;
}

/* The worker that owns the key hashed to @hash: weir_key_group_owner of
 * weir_key_group_of_hash, with a mask and a shift for a power-of-two group count (the
 * default) instead of two divisions. */
static inline uint32_t route_owner(const struct weir_job *job, uint64_t hash, uint32_t n)
{
	uint32_t groups = job->options.key_groups;
	if (job->group_shift == 0)
		return weir_key_group_owner(weir_key_group_of_hash(hash, groups), groups, n);
	uint32_t group = (uint32_t)hash & (groups - 1);
	uint32_t owner = (uint32_t)(((uint64_t)group * n) >> job->group_shift);
	WEIR_ASSERT(owner == weir_key_group_owner(weir_key_group_of_hash(hash, groups), groups,
						  n));
	return owner;
}

/* Appends @record to the batch being filled for @peer; a full batch is queued. */
static inline void route_append(struct worker *worker, struct worker_turn_state *turn,
				uint32_t peer, const uint8_t *record, uint32_t length)
{
	struct weir_batch *batch = worker->filling[peer];
	if (batch == NULL) {
		batch = weir_batch_get(worker->pool);
		/* pull_source made sure the pool has a batch for every peer. */
		WEIR_VERIFY(batch != NULL);
		worker->filling[peer] = batch;
	}
	weir_record_copy(batch->records + (size_t)batch->count * length, record, length);
	if (++batch->count == worker->pool->capacity) {
		worker->filling[peer] = NULL;
		stamp_and_queue(worker, turn, peer, batch);
	}
}

/* The largest event time of @count records at @records, or @max_seen if larger. */
static int64_t records_max_time(const struct weir_job *job, const uint8_t *records,
				uint32_t count, int64_t max_seen)
{
	const uint32_t length = job->exchange_schema.record_length;
	for (uint32_t i = 0; i < count; i++) {
		int64_t timestamp;
		memcpy(&timestamp, records + (size_t)i * length + job->time_offset, 8);
		max_seen = timestamp > max_seen ? timestamp : max_seen;
	}
	return max_seen;
}

/* One worker owns every key: no hashing; the records go to it in runs as long as its batch
 * has room.  Each run is observed before its batch can be stamped, so a batch's watermark
 * never counts a record that travels after it. */
static void route_single(struct worker *worker, struct worker_turn_state *turn,
			 const uint8_t *records, uint32_t count)
{
	struct weir_job *job = worker->job;
	const uint32_t length = job->exchange_schema.record_length;
	const uint32_t capacity = worker->pool->capacity;
	for (uint32_t done = 0; done < count;) {
		struct weir_batch *batch = worker->filling[0];
		if (batch == NULL) {
			batch = weir_batch_get(worker->pool);
			WEIR_VERIFY(batch != NULL); /* as in route_append */
			worker->filling[0] = batch;
		}
		uint32_t run = capacity - batch->count;
		run = run < count - done ? run : count - done;
		const uint8_t *from = records + (size_t)done * length;
		weir_wm_source_observe(&worker->wm_source,
				       records_max_time(job, from, run,
							worker->wm_source.max_seen));
		memcpy(batch->records + (size_t)batch->count * length, from, (size_t)run * length);
		batch->count += run;
		done += run;
		if (batch->count == capacity) {
			worker->filling[0] = NULL;
			stamp_and_queue(worker, turn, 0, batch);
		}
	}
	WEIR_ASSERT(worker->filling[0] == NULL || worker->filling[0]->count < capacity);
}

static void route(struct worker *worker, struct worker_turn_state *turn, const uint8_t *records,
		  uint32_t count)
{
	struct weir_job *job = worker->job;
	const uint32_t n = peer_count(worker);
	const uint32_t length = job->exchange_schema.record_length;
	worker->counters.events_shuffled += count;
	if (n == 1) {
		route_single(worker, turn, records, count);
		return;
	}
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *record = records + (size_t)i * length;
		int64_t timestamp;
		memcpy(&timestamp, record + job->time_offset, sizeof(timestamp));
		weir_wm_source_observe(&worker->wm_source, timestamp);
		uint32_t key_length;
		const uint8_t *key = route_key(worker, record, &key_length);
		uint32_t peer = route_owner(job, weir_key_hash(key, key_length, job->seed), n);
		route_append(worker, turn, peer, record, length);
	}
}

/* Pulls from the partition being read; when it ends, moves on to the worker's next split.
 * status->ended only once the last one ended. */
static uint32_t source_pull(struct worker *worker, uint8_t *records, uint32_t capacity,
			    struct weir_pull_status *status)
{
	const struct weir_source_vtable *vtable = worker->job->source.vtable;
	for (;;) {
		if (worker->partition_count == 0) {
			status->ended = true;
			return 0;
		}
		uint32_t count = vtable->pull(worker->source_partition, records, capacity, status);
		if (!status->ended || worker->partition_current + 1 >= worker->partition_count)
			return count;
		worker->partition_current++;
		worker->source_partition = worker->partitions[worker->partition_current];
		status->ended = false;
		if (count > 0 || status->consumed > 0)
			return count;
	}
}

/* Where this worker's splits are now, into @out (indexed like job->splits); a live source's
 * ingest log is sealed there first, tagged @tag.  Returns: 0 or -errno. */
static int record_positions(struct worker *worker, struct weir_split *out, uint64_t tag)
{
	const struct weir_source_vtable *vtable = worker->job->source.vtable;
	for (uint32_t k = 0; k < worker->partition_count && vtable->seal != NULL; k++) {
		int rc = vtable->seal(worker->partitions[k], tag);
		if (rc != 0)
			return worker_fail(worker, rc, "making its input durable (ingest log)");
	}
	worker->source_sealed = tag;
	for (uint32_t k = 0; k < worker->partition_count; k++) {
		struct weir_split *split = &out[worker->partition_splits[k]];
		vtable->position(worker->partitions[k], split);
		split->max_seen = worker->wm_source.max_seen;
	}
	return 0;
}

/* Source side of barrier n: positions, then the current watermark to every peer (so every
 * shard's clock at n is the same), then barrier n on every channel, in order after the
 * records routed before it.  Returns: 0, -EAGAIN when the pool is short (try next turn), or
 * -errno when a live source's input could not be made durable. */
static int send_barrier(struct worker *worker, struct worker_turn_state *turn, uint64_t epoch)
{
	struct weir_job *job = worker->job;
	uint32_t n = peer_count(worker);
	WEIR_ASSERT(epoch > worker->barrier_sent);
	if (worker->pool->free_count < 2 * n) {
		worker->counters.backpressure_turns++;
		return -EAGAIN;
	}
	int rc = record_positions(worker, job->split_positions, epoch);
	if (rc != 0)
		return rc;
	worker->events_at_barrier = worker->counters.events_in;
	for (uint32_t peer = 0; peer < n; peer++)
		turn->wm_sent[peer] = WEIR_WATERMARK_NONE; /* make flush_filling tell everyone */
	bool complete = flush_filling(worker, turn);
	WEIR_VERIFY(complete); /* 2n free batches cover n flushed and n barriers */
	for (uint32_t peer = 0; peer < n; peer++) {
		struct weir_batch *batch = weir_batch_get(worker->pool);
		WEIR_VERIFY(batch != NULL);
		batch->kind = WEIR_BATCH_BARRIER;
		batch->barrier_id = epoch;
		pending_append(worker, peer, batch);
	}
	worker->barrier_sent = epoch;
	return 0;
}

/* Runs the stateless stages over the @count records at @in (the source's output).
 * Returns: where their output is; *count becomes its record count. */
static const uint8_t *run_stages(struct worker *worker, const uint8_t *in, uint32_t *count)
{
	struct weir_job *job = worker->job;
	uint32_t in_length = job->source.schema->record_length;
	for (uint32_t s = 0; s < job->stage_count && *count > 0; s++) {
		const struct job_stage *stage = &job->stages[s];
		/* Alternate the two buffers; never write where the input is. */
		uint8_t *out = worker->stage_buffers[(s + 1) & 1];
		if (out == in)
			out = worker->stage_buffers[s & 1];
		uint32_t written = stage->fn(stage->ctx, in, *count, in_length, out,
					     stage->out_schema.record_length);
		if (written == WEIR_STAGE_UNCHANGED) {
			WEIR_ASSERT(stage->out_schema.record_length == in_length);
			continue; /* the records stay where they are */
		}
		*count = written;
		WEIR_ASSERT(*count <= job->stage_records);
		in = out;
		in_length = stage->out_schema.record_length;
	}
	WEIR_ASSERT(*count == 0 || in_length == job->exchange_schema.record_length);
	return in;
}

static uint32_t pull_source(struct worker *worker, struct worker_turn_state *turn)
{
	struct weir_job *job = worker->job;
	uint32_t n = peer_count(worker);
	/* Route may complete every peer's filling batch and fill pull_batches more. */
	if (worker->pool->free_count < n + job->pull_batches) {
		worker->counters.backpressure_turns++;
		return 0;
	}
	struct weir_pull_status status = {.ended = false, .consumed = 0, .lent = NULL};
	uint32_t count = source_pull(worker, worker->stage_buffers[0], job->pull_records, &status);
	const uint8_t *pulled = status.lent != NULL ? status.lent : worker->stage_buffers[0];
	bool ended = status.ended;
	worker->source_dry = status.consumed == 0;
	WEIR_ASSERT(count <= job->pull_records);
	WEIR_ASSERT(count <= status.consumed);
	worker->counters.events_in += count;
	bool idle_changed = false;
	if (job->options.idle_timeout_ms > 0)
		idle_changed = weir_wm_source_poll(&worker->wm_source, status.consumed > 0,
						   weir_clock_ns());
	uint32_t routed = count;
	const uint8_t *records = run_stages(worker, pulled, &routed);
	route(worker, turn, records, routed);
	worker->source_ended = ended;
	/* Partial batches go out when the source pauses, or every few pulls: a port's bursts
	 * of 32 would otherwise make batches of a few records. */
	if (ended || idle_changed || status.consumed == 0 ||
	    ++turn->pulls_since_flush >= WORKER_FLUSH_EVERY_PULLS)
		flush_filling(worker, turn);
	return status.consumed; /* frames without hosts are work too: no idle backoff */
}

/* After the source ended: the last partial batches, then END on every channel. */
static void queue_end(struct worker *worker, struct worker_turn_state *turn)
{
	uint32_t n = peer_count(worker);
	if (!flush_filling(worker, turn) || worker->pool->free_count < n)
		return;
	if (worker->job->store != NULL) {
		/* Tagged past the last barrier: a later checkpoint waits for it. */
		int rc = record_positions(worker, worker->job->split_final,
					  worker->barrier_sent + 1);
		if (rc != 0) {
			worker->error = rc;
			atomic_store(&worker->job->abort_requested, true);
		}
		worker->events_at_end = worker->counters.events_in;
		atomic_store_explicit(&worker->source_ended_after, worker->barrier_sent,
				      memory_order_release);
	}
	for (uint32_t peer = 0; peer < n; peer++) {
		struct weir_batch *batch = weir_batch_get(worker->pool);
		WEIR_VERIFY(batch != NULL);
		batch->kind = WEIR_BATCH_END;
		pending_append(worker, peer, batch);
	}
	worker->end_queued = true;
}

/* Every channel delivered barrier `aligning` or has ended. */
static bool aligned(const struct worker *worker)
{
	for (uint32_t peer = 0; peer < peer_count(worker); peer++) {
		if (!worker->channel_blocked[peer] && !worker->tracker.channel_ended[peer])
			return false;
	}
	return true;
}

/* Shard side of barrier n, once aligned: the state that changed (all of it after recovery or
 * when the log asks to compact), the epoch's rows to the sinks, the log sealed.  The ack
 * follows when the log is durable (poll_durable).  Returns: 0 or -errno. */
static int complete_barrier(struct worker *worker)
{
	struct weir_job *job = worker->job;
	const struct weir_keyed_op_vtable *op = job->keyed_vtable;
	uint64_t epoch = worker->aligning;
	WEIR_ASSERT(epoch > worker->sealed_epoch);
	uint64_t live = op->state_bytes(worker->keyed_instance);
	bool full = job->store->snapshot_begin(worker->store_shard, live, worker->snapshot_due);
	worker->state_writer.epoch = epoch;
	worker->state_writer.records = 0;
	int rc = op->snapshot(worker->keyed_instance, full, &worker->state_writer);
	if (rc == 0)
		rc = worker->state_writer.error;
	if (rc != 0)
		return worker_fail(worker, rc, "writing its state to the log");
	weir_emitter_flush(&worker->out);
	weir_emitter_flush(&worker->late);
	for (uint32_t s = 0; s < 2; s++) {
		if (job->sinks[s].vtable != NULL)
			job->sinks[s].vtable->barrier(worker->sink_instances[s], epoch);
	}
	rc = job->store->seal(worker->store_shard, epoch);
	if (rc != 0)
		return worker_fail(worker, rc, "sealing its log");
	worker->snapshot_due = false;
	worker->sealed = (struct weir_checkpoint_shard){
		.watermark = worker->tracker.current,
		.state_bytes = live,
		.snapshot = full,
	};
	worker->sealed_epoch = epoch;
	weir_fault_point("checkpoint.sealed");
	for (uint32_t peer = 0; peer < peer_count(worker); peer++)
		worker->channel_blocked[peer] = false;
	worker->aligning = 0;
	return 0;
}

/* Acknowledges the sealed epoch once its log is durable.  Returns: 0 or -errno. */
static int poll_durable(struct worker *worker)
{
	uint64_t durable = 0;
	struct weir_log_position position;
	uint64_t appended = 0;
	int rc = worker->job->store->poll(worker->store_shard, &durable, &position, &appended);
	if (rc != 0)
		return worker_fail(worker, rc, "writing its log (the checkpoint is not durable)");
	if (durable < worker->sealed_epoch || durable <= atomic_load(&worker->acked_epoch))
		return 0;
	const struct weir_source_vtable *source = worker->job->source.vtable;
	for (uint32_t k = 0; k < worker->partition_count && source->durable != NULL; k++) {
		uint64_t tag = 0;
		rc = source->durable(worker->partitions[k], &tag);
		if (rc != 0)
			return worker_fail(worker, rc, "making its input durable (ingest log)");
		if (tag < worker->source_sealed)
			return 0; /* its input up to the barrier is not durable yet */
	}
	worker->acked = worker->sealed;
	worker->acked.log = position;
	worker->acked.appended_bytes = appended;
	atomic_store_explicit(&worker->acked_epoch, durable, memory_order_release);
	return 0;
}

/* One turn's checkpoint work.  Returns: 0 or -errno (the worker stops). */
static int checkpoint_turn(struct worker *worker, struct worker_turn_state *turn)
{
	struct weir_job *job = worker->job;
	uint64_t requested = atomic_load_explicit(&job->barrier_requested, memory_order_acquire);
	if (requested > worker->barrier_sent && !worker->source_ended && !worker->end_queued) {
		int rc = send_barrier(worker, turn, requested);
		if (rc != 0 && rc != -EAGAIN)
			return rc;
	}
	if (worker->aligning != 0 && aligned(worker)) {
		int rc = complete_barrier(worker);
		if (rc != 0)
			return rc;
	}
	if (worker->sealed_epoch > atomic_load_explicit(&worker->acked_epoch,
							memory_order_relaxed))
		return poll_durable(worker);
	return 0;
}

static void idle_backoff(struct worker_turn_state *turn)
{
	turn->consecutive_idle++;
	if (turn->consecutive_idle >= WORKER_SLEEP_AFTER_IDLE) {
		/* Long idle (waiting on slow peers or the disk): give the core away for a
		 * moment; oversubscribed workers would otherwise starve each other. */
		struct timespec pause = {.tv_sec = 0, .tv_nsec = 20000};
		nanosleep(&pause, NULL);
	} else if (turn->consecutive_idle >= WORKER_YIELD_AFTER_IDLE) {
		sched_yield();
	}
}

/* A job without key_by: source -> stages -> this worker's sink, no exchange, no clock. */
static void stateless_loop(struct worker *worker)
{
	struct weir_job *job = worker->job;
	struct worker_turn_state turn = {.consecutive_idle = 0};
	while (!atomic_load_explicit(&job->abort_requested, memory_order_relaxed)) {
		worker->counters.turns++;
		struct weir_pull_status status = {.ended = false, .consumed = 0, .lent = NULL};
		uint32_t count = source_pull(worker, worker->stage_buffers[0], job->pull_records,
					     &status);
		WEIR_ASSERT(count <= job->pull_records);
		worker->counters.events_in += count;
		uint32_t produced = count;
		const uint8_t *pulled =
			status.lent != NULL ? status.lent : worker->stage_buffers[0];
		const uint8_t *records = run_stages(worker, pulled, &produced);
		if (produced > 0) {
			worker->out.emitted_count += produced;
			job->sinks[0].vtable->write(worker->sink_instances[0], records, produced);
		}
		if (status.ended)
			return;
		if (status.consumed == 0) {
			worker->counters.idle_turns++;
			idle_backoff(&turn);
		} else {
			turn.consecutive_idle = 0;
		}
	}
}

static void worker_loop(struct worker *worker, struct worker_turn_state *turn)
{
	struct weir_job *job = worker->job;
	for (;;) {
		if (atomic_load_explicit(&job->abort_requested, memory_order_relaxed))
			return;
		worker->counters.turns++;
		uint32_t work = drain_inputs(worker);
		work += drain_returns(worker);
		if (job->store != NULL) {
			int rc = checkpoint_turn(worker, turn);
			if (rc != 0) {
				worker->error = rc;
				atomic_store(&job->abort_requested, true);
				return;
			}
		}
		pending_flush(worker);
		if (!worker->source_ended) {
			if (worker->pending_count == 0)
				work += pull_source(worker, turn);
			else
				worker->counters.backpressure_turns++;
		}
		if (worker->source_ended && !worker->end_queued)
			queue_end(worker, turn);
		pending_flush(worker);
		if (worker->end_queued && worker->pending_count == 0 &&
		    weir_wm_tracker_all_ended(&worker->tracker))
			return;
		if (work == 0) {
			worker->counters.idle_turns++;
			idle_backoff(turn);
		} else {
			turn->consecutive_idle = 0;
		}
	}
}

static int ring_create(struct weir_ring **ring_out, uint32_t slot_count, unsigned arena)
{
	struct weir_ring *ring = weir_mem_alloc(sizeof(*ring), WEIR_CACHE_LINE, arena);
	if (ring == NULL)
		return -ENOMEM;
	void **slots = weir_mem_alloc(sizeof(void *) * slot_count, WEIR_CACHE_LINE, arena);
	if (slots == NULL) {
		weir_mem_free(ring, arena);
		return -ENOMEM;
	}
	int rc = weir_ring_init(ring, slots, slot_count);
	WEIR_VERIFY(rc == 0);
	*ring_out = ring;
	return 0;
}

static uint32_t power_of_two_at_least(uint32_t value)
{
	uint32_t result = 2;
	while (result < value)
		result <<= 1;
	return result;
}

static int worker_fail(struct worker *worker, int rc, const char *what)
{
	snprintf(worker->error_message, sizeof(worker->error_message), "worker %u: %s: %s",
		 worker->id, what, strerror(-rc));
	return rc;
}

/* Like worker_fail, with a message that already says what and where. */
static int worker_fail_message(struct worker *worker, int rc, const char *message)
{
	snprintf(worker->error_message, sizeof(worker->error_message), "worker %u: %s",
		 worker->id, message[0] != '\0' ? message : strerror(-rc));
	return rc;
}

static int open_source(struct worker *worker);
static int checkpoint_setup(struct worker *worker);

/* Everything a worker owns is made on its own thread, after it is bound to its CPU and node,
 * so its memory comes from its node: its pool, the rings it reads, its operator state. */
static int worker_setup(struct worker *worker)
{
	struct weir_job *job = worker->job;
	uint32_t n = job->worker_count;
	int rc;
	if (job->options.pin_workers) {
		rc = weir_topo_bind_thread(job->topo, &job->plan.workers[worker->id]);
		if (rc != 0)
			return worker_fail(worker, rc, "binding to its CPU");
	}
	rc = weir_mem_arena_create(&worker->arena);
	if (rc != 0)
		return worker_fail(worker, rc, "creating its memory arena");
	unsigned arena = worker->arena;
	uint32_t return_slots = power_of_two_at_least(job->pool_batches);
	for (uint32_t peer = 0; peer < n; peer++) {
		rc = ring_create(&job->rings[peer * n + worker->id], job->options.ring_slots,
				 arena);
		if (rc == 0)
			rc = ring_create(&job->returns[peer * n + worker->id], return_slots, arena);
		if (rc != 0)
			return worker_fail(worker, rc, "allocating its rings");
	}
	rc = weir_batch_pool_create(&worker->pool, job->pool_batches, job->batch_records,
				    job->exchange_schema.record_length, (uint16_t)worker->id,
				    arena);
	if (rc != 0)
		return worker_fail(worker, rc, "allocating its batches");
	worker->filling = weir_mem_alloc(sizeof(void *) * n, WEIR_CACHE_LINE, arena);
	worker->pending_head = weir_mem_alloc(sizeof(void *) * n, WEIR_CACHE_LINE, arena);
	worker->pending_tail = weir_mem_alloc(sizeof(void *) * n, WEIR_CACHE_LINE, arena);
	for (uint32_t b = 0; b < 2; b++)
		worker->stage_buffers[b] = weir_mem_alloc(
			(size_t)job->stage_buffer_length * job->stage_records, WEIR_CACHE_LINE,
			arena);
	worker->key_scratch = weir_mem_alloc(job->key.encoded_length_max + 8, 8, arena);
	worker->out.capacity = worker->late.capacity = job->batch_records;
	worker->out.record_length = job->out_schema.record_length;
	worker->late.record_length = job->exchange_schema.record_length;
	worker->out.records = weir_mem_alloc(
		(size_t)worker->out.capacity * worker->out.record_length, WEIR_CACHE_LINE, arena);
	worker->late.records = weir_mem_alloc(
		(size_t)worker->late.capacity * worker->late.record_length, WEIR_CACHE_LINE, arena);
	if (worker->filling == NULL || worker->pending_head == NULL ||
	    worker->pending_tail == NULL || worker->stage_buffers[0] == NULL ||
	    worker->stage_buffers[1] == NULL || worker->key_scratch == NULL ||
	    worker->out.records == NULL || worker->late.records == NULL)
		return worker_fail(worker, -ENOMEM, "allocating its buffers");
	weir_wm_source_init(&worker->wm_source, job->options.out_of_orderness,
			    job->options.idle_timeout_ms * 1000000u, weir_clock_ns());
	weir_wm_tracker_init(&worker->tracker, n);
	worker->advanced_to = WEIR_WATERMARK_NONE;
	for (uint32_t s = 0; s < 2; s++) {
		struct job_sink *sink = &job->sinks[s];
		if (sink->vtable == NULL)
			continue;
		rc = sink->vtable->open(sink->ctx, worker->id, arena, &worker->sink_instances[s]);
		if (rc != 0)
			return worker_fail(worker, rc, "opening its sink");
	}
	worker->out.sink = job->sinks[0].vtable;
	worker->out.sink_instance = worker->sink_instances[0];
	worker->late.sink = job->sinks[1].vtable;
	worker->late.sink_instance = worker->sink_instances[1];
	if (job->keyed_vtable != NULL) {
		rc = job->keyed_vtable->open(job->keyed_ctx, worker->id, arena, &worker->out,
					     &worker->late, &worker->keyed_instance);
		if (rc != 0)
			return worker_fail(worker, rc, "opening its window operator");
	}
	if (job->store != NULL) {
		rc = checkpoint_setup(worker);
		if (rc != 0)
			return rc;
	}
	return open_source(worker);
}

/* Opens this worker's splits (i % n == id), or its partition of a source without splits. */
static int open_source(struct worker *worker)
{
	struct weir_job *job = worker->job;
	uint32_t n = job->worker_count;
	unsigned arena = worker->arena;
	int rc;
	if (job->source.vtable->open_split == NULL) {
		rc = job->source.vtable->open(job->source.ctx, worker->id, n, arena,
					      &worker->source_partition);
		if (rc != 0)
			return worker_fail(worker, rc, "opening its source partition");
		worker->partitions = &worker->source_partition;
		worker->partition_count = 1;
		return 0;
	}
	uint32_t mine = job->split_count / n + (worker->id < job->split_count % n ? 1 : 0);
	worker->partitions = weir_mem_alloc(sizeof(void *) * (mine + 1), 8, arena);
	worker->partition_splits = weir_mem_alloc(sizeof(uint32_t) * (mine + 1), 8, arena);
	if (worker->partitions == NULL || worker->partition_splits == NULL)
		return worker_fail(worker, -ENOMEM, "allocating its source partitions");
	int64_t max_seen = WEIR_WATERMARK_NONE;
	for (uint32_t i = worker->id; i < job->split_count; i += n) {
		const struct weir_split *split = &job->splits[i];
		rc = job->source.vtable->open_split(job->source.ctx, split, i, job->split_count,
						    arena,
						    &worker->partitions[worker->partition_count]);
		if (rc != 0)
			return worker_fail(worker, rc, "opening its source partition");
		worker->partition_splits[worker->partition_count++] = i;
		/* Several splits: the slowest one's clock, so none of them turns late. */
		if (split->max_seen != WEIR_WATERMARK_NONE &&
		    (max_seen == WEIR_WATERMARK_NONE || split->max_seen < max_seen))
			max_seen = split->max_seen;
	}
	WEIR_ASSERT(worker->partition_count == mine);
	worker->wm_source.max_seen = max_seen;
	worker->source_partition = mine > 0 ? worker->partitions[0] : NULL;
	return 0;
}

static int replay_record(void *ctx, const struct weir_state_record *record)
{
	struct worker *worker = ctx;
	return worker->job->keyed_vtable->restore(worker->keyed_instance, record);
}

/* The shard's log, and its state from the checkpoint the run continues from. */
static int checkpoint_setup(struct worker *worker)
{
	struct weir_job *job = worker->job;
	uint32_t n = job->worker_count;
	char message[256] = "";
	atomic_store(&worker->source_ended_after, UINT64_MAX);
	worker->channel_blocked = weir_mem_alloc(sizeof(bool) * n, 8, worker->arena);
	worker->held = weir_mem_alloc(sizeof(void *) * n * WORKER_HELD_MAX, 64, worker->arena);
	worker->held_at = weir_mem_alloc(sizeof(uint32_t) * n, 8, worker->arena);
	worker->held_count = weir_mem_alloc(sizeof(uint32_t) * n, 8, worker->arena);
	if (worker->channel_blocked == NULL || worker->held == NULL || worker->held_at == NULL ||
	    worker->held_count == NULL)
		return worker_fail(worker, -ENOMEM, "allocating its barrier state");
	memset(worker->channel_blocked, 0, sizeof(bool) * n);
	memset(worker->held_at, 0, sizeof(uint32_t) * n);
	memset(worker->held_count, 0, sizeof(uint32_t) * n);
	/* With the same shards as the checkpoint, each log goes on from where it was, and the
	 * state replayed from it needs no new snapshot; otherwise (a fresh run, other shards)
	 * the first checkpoint writes all of the shard's state into a new snapshot segment. */
	const struct weir_checkpoint_info *info = job->recovered;
	bool same_shards = info != NULL && !info->finished && info->worker_count == n;
	int rc = job->store->shard_open(job->store_ctx, worker->id, worker->arena,
					same_shards ? &info->shards[worker->id].log : NULL,
					&worker->store_shard, message, sizeof(message));
	if (rc != 0)
		return worker_fail_message(worker, rc, message);
	uint32_t first, end;
	weir_key_group_range(worker->id, job->options.key_groups, n, &first, &end);
	worker->state_writer = (struct weir_state_writer){
		.store = job->store,
		.shard = worker->store_shard,
		.seed = job->seed,
		.key_groups = job->options.key_groups,
		.group_first = first,
	};
	worker->snapshot_due = !same_shards;
	if (info == NULL)
		return 0;
	if (job->keyed_vtable->restore_begin != NULL) {
		/* This shard's part of the checkpoint's state: its own, or its groups' share. */
		uint64_t total = 0;
		for (uint32_t s = 0; s < info->worker_count; s++)
			total += info->shards[s].state_bytes;
		uint64_t mine = same_shards ? info->shards[worker->id].state_bytes
					    : total / job->options.key_groups * (end - first);
		job->keyed_vtable->restore_begin(worker->keyed_instance, mine);
	}
	uint64_t replay_started_ns = weir_clock_ns();
	rc = job->store->replay(job->store_ctx, info, first, end, replay_record, worker, message,
				sizeof(message));
	worker->replay_ns = weir_clock_ns() - replay_started_ns;
	if (rc != 0)
		return worker_fail_message(worker, rc, message);
	/* With as many shards as before, each takes its own clock back; otherwise the
	 * smallest, so nothing turns late that was not (they are equal without idleness). */
	int64_t watermark = INT64_MAX;
	for (uint32_t s = 0; s < info->worker_count; s++) {
		if (info->shards[s].watermark < watermark)
			watermark = info->shards[s].watermark;
	}
	if (info->worker_count == n)
		watermark = info->shards[worker->id].watermark;
	rc = job->keyed_vtable->restored(worker->keyed_instance, watermark, same_shards);
	if (rc != 0)
		return worker_fail(worker, rc, "rebuilding its state (raise --state-budget)");
	worker->tracker.current = watermark;
	worker->advanced_to = watermark;
	return 0;
}

/* Waits, on this thread, for the I/O it submitted: a thread's io_uring work fails once the
 * thread has exited. */
static void worker_finish_io(struct worker *worker)
{
	struct weir_job *job = worker->job;
	for (uint32_t p = 0; p < worker->partition_count; p++) {
		if (worker->partitions[p] != NULL && job->source.vtable->finish != NULL)
			job->source.vtable->finish(worker->partitions[p]);
	}
	if (worker->store_shard != NULL) {
		job->store->shard_close(job->store_ctx, worker->store_shard);
		worker->store_shard = NULL;
	}
}

void *weir_worker_main(void *arg)
{
	struct worker *worker = arg;
	struct weir_job *job = worker->job;
	uint32_t n = job->worker_count;
	int64_t wm_sent[WEIR_CHANNELS_MAX];
	bool idle_sent[WEIR_CHANNELS_MAX];
	struct worker_turn_state turn = {.wm_sent = wm_sent, .idle_sent = idle_sent};
	for (uint32_t i = 0; i < n; i++) {
		wm_sent[i] = WEIR_WATERMARK_NONE;
		idle_sent[i] = false;
	}
	worker->error = worker_setup(worker);
	if (worker->error != 0)
		atomic_store(&job->abort_requested, true);
	/* Everyone waits here, failed or not, so no peer uses a ring that was never made. */
	int rc = pthread_barrier_wait(&job->start_barrier);
	WEIR_VERIFY(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
	if (rc == PTHREAD_BARRIER_SERIAL_THREAD)
		atomic_store(&job->run_started_ns, weir_clock_ns());
	if (!atomic_load(&job->abort_requested)) {
		uint64_t started_ns = weir_clock_ns();
		if (job->keyed)
			worker_loop(worker, &turn);
		else
			stateless_loop(worker);
		weir_emitter_flush(&worker->out);
		weir_emitter_flush(&worker->late);
		for (uint32_t s = 0; s < 2; s++) {
			if (job->sinks[s].vtable != NULL)
				job->sinks[s].vtable->finish(worker->sink_instances[s]);
		}
		worker->finished_ns = weir_clock_ns();
		worker->counters.busy_ns = worker->finished_ns - started_ns;
	}
	worker_finish_io(worker);
	atomic_store_explicit(&worker->done, true, memory_order_release);
	return NULL;
}
