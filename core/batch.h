/* Batches: the unit that moves through the shuffle rings.  A batch belongs to the pool of the
 * worker that made it (its home); it travels to a consumer through ring[home][consumer] and
 * comes back through the consumer's return ring, so memory always goes home to be reused on
 * the node it came from.  Control travels in the same rings, in order with data: every batch
 * carries its sender's watermark, and END / BARRIER batches carry no records. */
#ifndef WEIR_CORE_BATCH_H
#define WEIR_CORE_BATCH_H

#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/assert.h"

enum weir_batch_kind {
	WEIR_BATCH_DATA,    /* records, then the sender's watermark after them */
	WEIR_BATCH_END,	    /* the sender will send nothing more on this channel */
	WEIR_BATCH_BARRIER, /* checkpoint barrier_id: what came before belongs to that epoch */
};

#define WEIR_WATERMARK_NONE INT64_MIN

struct weir_batch {
	struct weir_batch *next; /* link in the sender's pending list; unused in flight */
	uint16_t home;		 /* worker whose pool owns this batch */
	uint8_t kind;		 /* enum weir_batch_kind */
	bool source_idle;	 /* sender's source is idle: don't let it hold time back */
	uint32_t count;		 /* records in records[] */
	int64_t watermark;	 /* sender's event-time clock after these records */
	uint64_t barrier_id;	 /* WEIR_BATCH_BARRIER only */
	alignas(WEIR_CACHE_LINE) uint8_t records[];
};

struct weir_batch_pool {
	uint32_t free_count;
	uint32_t batch_count;
	uint32_t capacity;	/* records a batch holds */
	uint32_t record_length; /* bytes */
	uint32_t stride;	/* bytes between batches in the slab */
	uint16_t home;
	unsigned arena;
	uint8_t *slab;
	struct weir_batch **free;
};

/* Creates @batch_count batches of @capacity records of @record_length bytes in @arena.
 * Returns: 0, -EINVAL (zero sizes, or a batch over 4 GiB), -ENOMEM. */
int weir_batch_pool_create(struct weir_batch_pool **pool_out, uint32_t batch_count,
			   uint32_t capacity, uint32_t record_length, uint16_t home,
			   unsigned arena);
void weir_batch_pool_destroy(struct weir_batch_pool *pool);

static inline bool weir_batch_pool_owns(const struct weir_batch_pool *pool,
					const struct weir_batch *batch)
{
	const uint8_t *at = (const uint8_t *)batch;
	return at >= pool->slab && at < pool->slab + (size_t)pool->stride * pool->batch_count &&
	       (size_t)(at - pool->slab) % pool->stride == 0;
}

/* Takes an empty DATA batch.  Returns: the batch, or NULL when the pool is empty (that is
 * backpressure, not an error).  Context: the home worker only. */
static inline struct weir_batch *weir_batch_get(struct weir_batch_pool *pool)
{
	if (pool->free_count == 0)
		return NULL;
	struct weir_batch *batch = pool->free[--pool->free_count];
	WEIR_ASSERT(batch->home == pool->home);
	batch->next = NULL;
	batch->kind = WEIR_BATCH_DATA;
	batch->source_idle = false;
	batch->count = 0;
	batch->watermark = WEIR_WATERMARK_NONE;
	batch->barrier_id = 0;
	return batch;
}

/* Gives a batch back to its home pool.  Context: the home worker only. */
static inline void weir_batch_put(struct weir_batch_pool *pool, struct weir_batch *batch)
{
	WEIR_ASSERT(weir_batch_pool_owns(pool, batch));
	WEIR_ASSERT(pool->free_count < pool->batch_count);
	pool->free[pool->free_count++] = batch;
}

static inline uint8_t *weir_batch_record(const struct weir_batch_pool *pool,
					 struct weir_batch *batch, uint32_t index)
{
	WEIR_ASSERT(index < pool->capacity);
	return batch->records + (size_t)index * pool->record_length;
}

#endif
