/* The SPSC ring (core/ring.h).
 *
 * Indices are free-running uint32 counters: tail counts every item ever enqueued, head every
 * item ever dequeued.  They wrap past UINT32_MAX naturally; the unsigned difference tail - head
 * is always the number of items in the ring (0..slot_count, and slot_count <= 2^31 keeps that
 * unambiguous), and an index maps to its slot by idx & mask.  Using the full counter instead of
 * a slot position lets the ring hold all slot_count items, without a wasted slot.
 *
 * Ordering: the producer writes slots with plain stores, then publishes tail with a release
 * store; the consumer reads tail with an acquire load before it reads those slots.  The consumer
 * publishes head with a release store after it has read the slots it frees, and the producer
 * reads head with an acquire load before it overwrites them.  Each side loads its own index
 * relaxed (it is the only writer).  No read-modify-write anywhere.
 *
 * Cached views: the producer refreshes head_cached (an acquire load of head, which pulls the
 * consumer's cache line) only when its cached view has too little room for the burst; the
 * consumer does the same with tail_cached.  A refresh when the cached view merely says "not
 * enough room" (rather than only "full") keeps bursts whole: the reload costs the same, and
 * it is taken only on the slow path, so a side that keeps up touches the other's line rarely. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/ring.h"

/* Bursts up to this many pointers are copied one by one, masking each index; longer ones are
 * copied in (at most) two memcpy calls, which move them with wide vector moves.  Measured with
 * bench/ring_bench: the call costs more than it saves for a few pointers, and wins from a few
 * dozen on. */
#define RING_COPY_INLINE_MAX 16u

/* Copies @count pointers from @items into the slots from index @first on. */
static inline void ring_copy_in(const struct weir_ring *ring, uint32_t first,
				void *const *restrict items, uint32_t count)
{
	void **restrict slots = ring->slots;
	if (count <= RING_COPY_INLINE_MAX) {
		for (uint32_t i = 0; i < count; i++)
			slots[(first + i) & ring->mask] = items[i];
		return;
	}
	const uint32_t offset = first & ring->mask;
	const uint32_t until_end = ring->mask + 1 - offset;
	const uint32_t part1 = count < until_end ? count : until_end;
	memcpy(slots + offset, items, (size_t)part1 * sizeof(*items));
	memcpy(slots, items + part1, (size_t)(count - part1) * sizeof(*items)); /* wrapped */
}

/* Copies @count pointers out of the slots from index @first on into @items. */
static inline void ring_copy_out(const struct weir_ring *ring, uint32_t first,
				 void **restrict items, uint32_t count)
{
	void *const *restrict slots = ring->slots;
	if (count <= RING_COPY_INLINE_MAX) {
		for (uint32_t i = 0; i < count; i++)
			items[i] = slots[(first + i) & ring->mask];
		return;
	}
	const uint32_t offset = first & ring->mask;
	const uint32_t until_end = ring->mask + 1 - offset;
	const uint32_t part1 = count < until_end ? count : until_end;
	memcpy(items, slots + offset, (size_t)part1 * sizeof(*items));
	memcpy(items + part1, slots, (size_t)(count - part1) * sizeof(*items));
}

int weir_ring_init(struct weir_ring *ring, void **slots, uint32_t slot_count)
{
	WEIR_VERIFY(ring != NULL);
	WEIR_VERIFY(slots != NULL);
	if (slot_count < 2 || (slot_count & (slot_count - 1)) != 0)
		return -EINVAL; /* also rejects 0; the largest power of two is 2^31 */

	atomic_store_explicit(&ring->tail, 0, memory_order_relaxed);
	ring->head_cached = 0;
	atomic_store_explicit(&ring->head, 0, memory_order_relaxed);
	ring->tail_cached = 0;
	ring->mask = slot_count - 1;
	ring->slots = slots;

	WEIR_VERIFY(weir_ring_capacity(ring) == slot_count);
	WEIR_VERIFY(weir_ring_count(ring) == 0);
	return 0;
}

uint32_t weir_ring_enqueue_burst_spsc(struct weir_ring *ring, void *const *items, uint32_t count)
{
	WEIR_ASSERT(ring != NULL);
	if (count > 0)
		WEIR_ASSERT(items != NULL);

	const uint32_t slot_count = ring->mask + 1;
	const uint32_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
	uint32_t free_count = slot_count - (tail - ring->head_cached);
	if (free_count < count) {
		/* Slow path: see how far the consumer has got.  Acquire pairs with the consumer's
		 * release of head: its reads of the slots we are about to reuse are done. */
		ring->head_cached = atomic_load_explicit(&ring->head, memory_order_acquire);
		free_count = slot_count - (tail - ring->head_cached);
	}
	/* A view of head ahead of tail, or more than slot_count behind, is a corrupt ring (or a
	 * second producer); either makes free_count wrap above slot_count. */
	WEIR_ASSERT(free_count <= slot_count);

	const uint32_t done = count < free_count ? count : free_count;
	ring_copy_in(ring, tail, items, done);

	/* Release: the slot stores above become visible before the new tail does.  Nothing
	 * moved, nothing to publish: skipping the store keeps a full ring's polling from
	 * dirtying the line the consumer reads. */
	if (done > 0)
		atomic_store_explicit(&ring->tail, tail + done, memory_order_release);
	WEIR_ASSERT(done <= count);
	return done;
}

uint32_t weir_ring_dequeue_burst_spsc(struct weir_ring *ring, void **items, uint32_t count)
{
	WEIR_ASSERT(ring != NULL);
	if (count > 0)
		WEIR_ASSERT(items != NULL);

	const uint32_t slot_count = ring->mask + 1;
	const uint32_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
	uint32_t ready_count = ring->tail_cached - head;
	if (ready_count < count) {
		/* Slow path: acquire pairs with the producer's release of tail, so the slots up
		 * to the new tail hold what the producer wrote. */
		ring->tail_cached = atomic_load_explicit(&ring->tail, memory_order_acquire);
		ready_count = ring->tail_cached - head;
	}
	WEIR_ASSERT(ready_count <= slot_count); /* else tail_cached is behind head: corrupt */

	const uint32_t done = count < ready_count ? count : ready_count;
	ring_copy_out(ring, head, items, done);

	/* Release: our slot reads are done before the producer may see the slots as free.
	 * An empty ring's polling stores nothing, as in enqueue. */
	if (done > 0)
		atomic_store_explicit(&ring->head, head + done, memory_order_release);
	WEIR_ASSERT(done <= count);
	return done;
}

uint32_t weir_ring_count(const struct weir_ring *ring)
{
	WEIR_ASSERT(ring != NULL);
	WEIR_ASSERT(((ring->mask + 1) & ring->mask) == 0); /* slot_count is a power of two */

	/* Head first: head never passes tail, and the acquire keeps the tail load after it, so
	 * the tail we read is at least the head we read and the difference cannot wrap below 0.
	 * It can exceed the capacity when both sides move between the two loads (a stale head);
	 * clamp, since the answer is only "as seen now" anyway. */
	const uint32_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
	const uint32_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
	const uint32_t used = tail - head;
	return used < ring->mask + 1 ? used : ring->mask + 1;
}
