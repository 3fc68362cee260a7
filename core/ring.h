/* A bounded single-producer single-consumer ring of pointers: the only memory that weir's
 * workers share.  Head and tail live on their own cache lines; each side keeps a cached copy
 * of the other's index so it touches the shared line only when its cached view runs out.
 * Acquire/release ordering only, no read-modify-write. */
#ifndef WEIR_CORE_RING_H
#define WEIR_CORE_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/assert.h"

struct weir_ring {
	alignas(WEIR_CACHE_LINE) _Atomic uint32_t tail; /* written by the producer only */
	uint32_t head_cached;				/* producer's last view of head */
	alignas(WEIR_CACHE_LINE) _Atomic uint32_t head; /* written by the consumer only */
	uint32_t tail_cached;				/* consumer's last view of tail */
	alignas(WEIR_CACHE_LINE) uint32_t mask;		/* slot_count - 1; immutable after init */
	void **slots;					/* borrowed: slot_count entries */
};

WEIR_STATIC_ASSERT(sizeof(struct weir_ring) == 3 * WEIR_CACHE_LINE, "one line per side");

/* Prepares @ring over caller-owned @slots (@slot_count entries, a power of two >= 2).
 * The ring holds up to @slot_count items.
 * Returns: 0, or -EINVAL when slot_count is not a power of two >= 2. */
int weir_ring_init(struct weir_ring *ring, void **slots, uint32_t slot_count);

/* Copies up to @count pointers from @items into the ring.
 * Ownership: enqueued objects pass to the consumer; items[ret..count) stay ours.
 * Context: producer thread only; never blocks or allocates.  Returns: number enqueued. */
uint32_t weir_ring_enqueue_burst_spsc(struct weir_ring *ring, void *const *items, uint32_t count);

/* Moves up to @count pointers out of the ring into @items, oldest first.
 * Context: consumer thread only; never blocks.  Returns: number dequeued (0 when empty). */
uint32_t weir_ring_dequeue_burst_spsc(struct weir_ring *ring, void **items, uint32_t count);

/* Items in the ring as seen now (exact only when both sides are quiet).  Context: any thread. */
uint32_t weir_ring_count(const struct weir_ring *ring);

/* The number of items the ring holds when full. */
static inline uint32_t weir_ring_capacity(const struct weir_ring *ring)
{
	return ring->mask + 1;
}

#endif
