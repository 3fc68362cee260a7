/* Goal: the SPSC ring keeps its contract (core/ring.h): init accepts exactly the powers of two
 * >= 2; the ring holds exactly slot_count items; bursts are cut short, never over-filled or
 * over-drained; items come out in the order they went in; the free-running uint32 indices wrap
 * past UINT32_MAX without a glitch; weir_ring_count is exact when both sides are quiet; and
 * one producer thread and one consumer thread pass a long sequence through it intact.
 *
 * Method: single-threaded tests drive the ring by hand and check every return value.  The wrap
 * test sets head and tail near UINT32_MAX directly, since reaching the wrap through the API
 * would take 2^32 items.  The stress test runs a producer and a consumer thread with random
 * burst sizes from a printed seed (WEIR_SEED=n replays it); the threads only record what they
 * saw, and the cmocka assertions run on the main thread after the join. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Last: under UNIT_TESTING cmocka.h redefines malloc and friends. */
#include <cmocka.h>

#include "core/ring.h"

#define SLOTS_MAX 64

static void *item_of(uint64_t value)
{
	return (void *)(uintptr_t)value;
}

static uint64_t value_of(const void *item)
{
	return (uint64_t)(uintptr_t)item;
}

/* Touches the ring's internals on purpose: moves an empty ring's indices (and both cached
 * views) to @index.  Equal head and tail at any value are a valid empty ring; a fresh ring
 * starts at 0, and the API would need 2^32 items to get near the wrap. */
static void ring_set_empty_at(struct weir_ring *ring, uint32_t index)
{
	atomic_store_explicit(&ring->tail, index, memory_order_relaxed);
	ring->head_cached = index;
	atomic_store_explicit(&ring->head, index, memory_order_relaxed);
	ring->tail_cached = index;
	assert_int_equal(weir_ring_count(ring), 0);
}

static void test_init_rejects_bad_slot_counts(void **state)
{
	(void)state;
	static const uint32_t bad[] = {0, 1, 3, 6, 48, 1000, 0x80000001u, 0xFFFFFFFFu};
	void *slots[SLOTS_MAX];
	struct weir_ring ring;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(weir_ring_init(&ring, slots, bad[i]), -EINVAL);

	assert_int_equal(weir_ring_init(&ring, slots, 2), 0);
	assert_int_equal(weir_ring_capacity(&ring), 2);
	assert_int_equal(weir_ring_count(&ring), 0);
	/* The largest power of two; init does not touch the slots, so a small array will do. */
	assert_int_equal(weir_ring_init(&ring, slots, 0x80000000u), 0);
	assert_int_equal(weir_ring_capacity(&ring), 0x80000000u);

	expect_assert_failure(weir_ring_init(NULL, slots, 8));
	expect_assert_failure(weir_ring_init(&ring, NULL, 8));
}

static void test_fill_to_capacity(void **state)
{
	(void)state;
	void *slots[8];
	struct weir_ring ring;
	void *item = item_of(7);
	void *out[16];

	assert_int_equal(weir_ring_init(&ring, slots, 8), 0);
	for (uint64_t i = 0; i < 8; i++) {
		void *next = item_of(100 + i);
		assert_int_equal(weir_ring_enqueue_burst_spsc(&ring, &next, 1), 1);
		assert_int_equal(weir_ring_count(&ring), i + 1);
	}
	assert_int_equal(weir_ring_enqueue_burst_spsc(&ring, &item, 1), 0); /* full */
	void *const burst[4] = {item, item, item, item};
	assert_int_equal(weir_ring_enqueue_burst_spsc(&ring, burst, 4), 0);
	assert_int_equal(weir_ring_count(&ring), 8);

	assert_int_equal(weir_ring_dequeue_burst_spsc(&ring, out, 16), 8);
	for (uint64_t i = 0; i < 8; i++)
		assert_int_equal(value_of(out[i]), 100 + i);
	assert_int_equal(weir_ring_dequeue_burst_spsc(&ring, out, 16), 0); /* empty */
	assert_int_equal(weir_ring_count(&ring), 0);

	/* Empty bursts are no-ops, and need no array. */
	assert_int_equal(weir_ring_enqueue_burst_spsc(&ring, NULL, 0), 0);
	assert_int_equal(weir_ring_dequeue_burst_spsc(&ring, NULL, 0), 0);

	/* Init again resets a used ring. */
	assert_int_equal(weir_ring_enqueue_burst_spsc(&ring, &item, 1), 1);
	assert_int_equal(weir_ring_init(&ring, slots, 8), 0);
	assert_int_equal(weir_ring_count(&ring), 0);
	assert_int_equal(weir_ring_dequeue_burst_spsc(&ring, out, 1), 0);
}

static void test_partial_bursts(void **state)
{
	(void)state;
	void *slots[8];
	struct weir_ring ring;
	void *in[12];
	void *out[12];

	for (uint64_t i = 0; i < 12; i++)
		in[i] = item_of(i + 1);
	assert_int_equal(weir_ring_init(&ring, slots, 8), 0);

	assert_int_equal(weir_ring_enqueue_burst_spsc(&ring, in, 5), 5);
	assert_int_equal(weir_ring_enqueue_burst_spsc(&ring, in + 5, 5), 3); /* room for 3 */
	assert_int_equal(weir_ring_count(&ring), 8);
	/* items in[8..10) were not taken and stay the caller's: enqueue them after a drain. */
	assert_int_equal(weir_ring_dequeue_burst_spsc(&ring, out, 6), 6);
	assert_int_equal(weir_ring_count(&ring), 2);
	assert_int_equal(weir_ring_enqueue_burst_spsc(&ring, in + 8, 4), 4); /* wraps the slots */
	assert_int_equal(weir_ring_dequeue_burst_spsc(&ring, out + 6, 12), 6); /* only 6 there */
	for (uint64_t i = 0; i < 12; i++)
		assert_int_equal(value_of(out[i]), i + 1);
	assert_int_equal(weir_ring_count(&ring), 0);
}

/* Many rounds of mismatched burst sizes, so every slot offset and split point is hit. */
static void test_fifo_order(void **state)
{
	(void)state;
	void *slots[16];
	struct weir_ring ring;
	void *buffer[16];
	uint64_t next_in = 0;
	uint64_t next_out = 0;

	assert_int_equal(weir_ring_init(&ring, slots, 16), 0);
	for (uint32_t round = 0; round < 2000; round++) {
		uint32_t in_count = 1 + round % 13;
		uint32_t out_count = 1 + (round * 7) % 11;
		uint32_t before = weir_ring_count(&ring);

		for (uint32_t i = 0; i < in_count; i++)
			buffer[i] = item_of(next_in + i);
		uint32_t sent = weir_ring_enqueue_burst_spsc(&ring, buffer, in_count);
		uint32_t room = 16 - before;
		assert_int_equal(sent, in_count < room ? in_count : room);
		next_in += sent;

		uint32_t got = weir_ring_dequeue_burst_spsc(&ring, buffer, out_count);
		uint32_t held = before + sent;
		assert_int_equal(got, out_count < held ? out_count : held);
		for (uint32_t i = 0; i < got; i++)
			assert_int_equal(value_of(buffer[i]), next_out++);
		assert_int_equal(weir_ring_count(&ring), next_in - next_out);
	}
	assert_true(next_out > 10000);
}

static void test_index_wrap(void **state)
{
	(void)state;
	void *slots[8];
	struct weir_ring ring;
	void *buffer[8];
	uint64_t next_in = 0;
	uint64_t next_out = 0;

	/* Full ring straddling the wrap: tail = start + 8 wraps to 5. */
	assert_int_equal(weir_ring_init(&ring, slots, 8), 0);
	ring_set_empty_at(&ring, UINT32_MAX - 2);
	for (uint32_t i = 0; i < 8; i++)
		buffer[i] = item_of(next_in++);
	assert_int_equal(weir_ring_enqueue_burst_spsc(&ring, buffer, 8), 8);
	assert_int_equal(atomic_load(&ring.tail), 5);
	assert_int_equal(weir_ring_count(&ring), 8);
	assert_int_equal(weir_ring_enqueue_burst_spsc(&ring, buffer, 1), 0);
	assert_int_equal(weir_ring_dequeue_burst_spsc(&ring, buffer, 3), 3); /* head wraps too */
	assert_int_equal(weir_ring_count(&ring), 5);
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(value_of(buffer[i]), next_out++);
	assert_int_equal(weir_ring_dequeue_burst_spsc(&ring, buffer, 8), 5);
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(value_of(buffer[i]), next_out++);
	assert_int_equal(atomic_load(&ring.head), 5);

	/* Small bursts walking the indices across the wrap one step at a time. */
	ring_set_empty_at(&ring, UINT32_MAX - 20);
	for (uint32_t round = 0; round < 40; round++) {
		uint32_t in_count = 1 + round % 5;
		for (uint32_t i = 0; i < in_count; i++)
			buffer[i] = item_of(next_in + i);
		next_in += weir_ring_enqueue_burst_spsc(&ring, buffer, in_count);
		uint32_t got = weir_ring_dequeue_burst_spsc(&ring, buffer, 1 + round % 3);
		for (uint32_t i = 0; i < got; i++)
			assert_int_equal(value_of(buffer[i]), next_out++);
		assert_int_equal(weir_ring_count(&ring), next_in - next_out);
	}
	assert_true(atomic_load(&ring.tail) < 1000); /* it did wrap */
}

static void test_misuse_is_caught(void **state)
{
	(void)state;
#if WEIR_ASSERTS
	void *slots[8];
	struct weir_ring ring;
	void *buffer[4];

	assert_int_equal(weir_ring_init(&ring, slots, 8), 0);
	expect_assert_failure(weir_ring_enqueue_burst_spsc(&ring, NULL, 1));
	expect_assert_failure(weir_ring_dequeue_burst_spsc(&ring, NULL, 1));

	/* Touches internals: a producer view of head ahead of tail (a second producer, say). */
	ring.head_cached = 1;
	expect_assert_failure(weir_ring_enqueue_burst_spsc(&ring, buffer, 1));
	/* And a consumer view of tail behind head. */
	assert_int_equal(weir_ring_init(&ring, slots, 8), 0);
	ring.tail_cached = UINT32_MAX;
	expect_assert_failure(weir_ring_dequeue_burst_spsc(&ring, buffer, 1));
#else
	skip(); /* WEIR_ASSERT is compiled out with -Dasserts=false */
#endif
}

/* Two threads. */

#define STRESS_ITEMS 2000000u
#define STRESS_SLOTS 64u
#define STRESS_BURST_MAX 48u /* < slots, > slots / 2: bursts are cut short often */

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

struct stress_side {
	struct weir_ring *ring;
	uint64_t random_state;
	/* Recorded by the thread, checked by the main thread after the join. */
	uint64_t moved_count;
	uint64_t empty_call_count; /* calls that moved nothing: full or empty ring */
	uint64_t bad_index;	   /* first out-of-order item, or UINT64_MAX */
	uint64_t bad_value;
	uint64_t over_count; /* calls that returned more than asked */
};

static void *stress_producer(void *arg)
{
	struct stress_side *side = arg;
	void *burst[STRESS_BURST_MAX];
	uint64_t next = 0;

	while (next < STRESS_ITEMS) {
		uint32_t want = 1 + (uint32_t)(splitmix64(&side->random_state) % STRESS_BURST_MAX);
		if (want > STRESS_ITEMS - next)
			want = (uint32_t)(STRESS_ITEMS - next);
		for (uint32_t i = 0; i < want; i++)
			burst[i] = item_of(next + i);
		uint32_t sent = weir_ring_enqueue_burst_spsc(side->ring, burst, want);
		side->over_count += sent > want;
		side->empty_call_count += sent == 0;
		if (sent == 0)
			sched_yield(); /* 2 threads may share fewer CPUs (CI, TSan) */
		next += sent;	       /* the unsent rest is pushed again next time */
	}
	side->moved_count = next;
	return NULL;
}

static void *stress_consumer(void *arg)
{
	struct stress_side *side = arg;
	void *burst[STRESS_BURST_MAX];
	uint64_t next = 0;

	while (next < STRESS_ITEMS) {
		uint32_t want = 1 + (uint32_t)(splitmix64(&side->random_state) % STRESS_BURST_MAX);
		uint32_t got = weir_ring_dequeue_burst_spsc(side->ring, burst, want);
		side->over_count += got > want;
		side->empty_call_count += got == 0;
		if (got == 0)
			sched_yield();
		for (uint32_t i = 0; i < got; i++, next++) {
			if (value_of(burst[i]) != next && side->bad_index == UINT64_MAX) {
				side->bad_index = next;
				side->bad_value = value_of(burst[i]);
			}
		}
	}
	side->moved_count = next;
	return NULL;
}

static uint64_t stress_seed(void)
{
	const char *text = getenv("WEIR_SEED");
	uint64_t seed;
	if (text != NULL && *text != '\0') {
		seed = strtoull(text, NULL, 0);
	} else {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		seed = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 20) ^ (uint64_t)getpid();
	}
	printf("test_core_ring: seed %" PRIu64 " (replay with WEIR_SEED=%" PRIu64 ")\n", seed,
	       seed);
	fflush(stdout);
	return seed;
}

static void test_two_thread_stress(void **state)
{
	(void)state;
	static void *slots[STRESS_SLOTS];
	static struct weir_ring ring;
	uint64_t seed = stress_seed();
	struct stress_side producer = {
		.ring = &ring, .random_state = seed, .bad_index = UINT64_MAX};
	struct stress_side consumer = {
		.ring = &ring, .random_state = seed ^ 0xC0FFEEull, .bad_index = UINT64_MAX};
	pthread_t producer_thread;
	pthread_t consumer_thread;

	assert_int_equal(weir_ring_init(&ring, slots, STRESS_SLOTS), 0);
	assert_int_equal(pthread_create(&consumer_thread, NULL, stress_consumer, &consumer), 0);
	assert_int_equal(pthread_create(&producer_thread, NULL, stress_producer, &producer), 0);
	assert_int_equal(pthread_join(producer_thread, NULL), 0);
	assert_int_equal(pthread_join(consumer_thread, NULL), 0);

	printf("test_core_ring: producer found the ring full %" PRIu64 " times, consumer found it "
	       "empty %" PRIu64 " times\n",
	       producer.empty_call_count, consumer.empty_call_count);
	if (consumer.bad_index != UINT64_MAX)
		fail_msg("item %" PRIu64 " arrived as %" PRIu64 " (seed %" PRIu64 ")",
			 consumer.bad_index, consumer.bad_value, seed);
	assert_int_equal(producer.over_count, 0);
	assert_int_equal(consumer.over_count, 0);
	assert_int_equal(producer.moved_count, STRESS_ITEMS);
	assert_int_equal(consumer.moved_count, STRESS_ITEMS);
	assert_int_equal(weir_ring_count(&ring), 0);
	assert_int_equal(atomic_load(&ring.tail), STRESS_ITEMS);
	assert_int_equal(atomic_load(&ring.head), STRESS_ITEMS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_rejects_bad_slot_counts),
		cmocka_unit_test(test_fill_to_capacity),
		cmocka_unit_test(test_partial_bursts),
		cmocka_unit_test(test_fifo_order),
		cmocka_unit_test(test_index_wrap),
		cmocka_unit_test(test_misuse_is_caught),
		cmocka_unit_test(test_two_thread_stress),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
