/* Goal: what one pointer costs through our SPSC ring (core/ring.h) next to DPDK's rte_ring in
 * single-producer/single-consumer burst mode, so the ring's design (cached views of the other
 * side's index, free-running uint32 indices) is judged by numbers.
 *
 * Method: for burst sizes 1, 8, 32 and 128, a ring of 1024 slots moves --count pointers
 * (default 20 million) in two modes:
 *   two_thread  a producer and a consumer thread, pinned to the first two CPUs we may run on
 *               (normally 0 and 1), each moving bursts of that size; a cut-short burst is
 *               retried with the rest.  This is the cross-core cost, cache-line transfers
 *               included.
 *   one_thread  one thread enqueues a burst and dequeues it again: the pure instruction cost.
 * Each (mode, burst) runs --reps times (default 5), alternating the two rings in every
 * repetition so drift hits both alike; we report ns per element, median and minimum.
 * The consumer sums what it receives and the sum is checked, so neither ring can cheat.
 *
 * rte_ring runs without the EAL: the ring lives in our own aligned_alloc'd memory and
 * rte_ring_init only fills in the header (no memzone, no hugepages).  Only if that fails do we
 * start a minimal EAL (--no-huge, --no-pci, ...) and try again.
 *
 * Caveats: our ring is called through libweir_core.a (one real call per burst, no LTO) while
 * rte_ring's functions are inline; rte_ring of count 1024 holds 1023 items, ours 1024.
 *
 * Usage: ring_bench [--json] [--count N] [--reps N].  --json prints one JSON object per
 * (impl, mode, burst) line instead of the table.  Exit: 0, or 1 on a bad result or setup. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* DPDK 22.11's headers compile clean under our warning set (checked with -Wpedantic and
 * -Wcast-qual as well), so they need no diagnostic pragmas. */
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ring.h>

#include "core/ring.h"

#define BENCH_SLOTS 1024u
#define BENCH_BURST_MAX 128u
#define BENCH_REPS_MAX 64u

static const uint32_t burst_sizes[] = {1, 8, 32, 128};

enum bench_impl { BENCH_WEIR, BENCH_RTE, BENCH_IMPL_COUNT };
enum bench_mode { BENCH_TWO_THREAD, BENCH_ONE_THREAD, BENCH_MODE_COUNT };

static const char *const impl_names[BENCH_IMPL_COUNT] = {"weir", "rte_ring"};
static const char *const mode_names[BENCH_MODE_COUNT] = {"two_thread", "one_thread"};

typedef uint32_t bench_enqueue_fn(void *ring, void *const *items, uint32_t count);
typedef uint32_t bench_dequeue_fn(void *ring, void **items, uint32_t count);

static uint32_t weir_enqueue(void *ring, void *const *items, uint32_t count)
{
	return weir_ring_enqueue_burst_spsc(ring, items, count);
}

static uint32_t weir_dequeue(void *ring, void **items, uint32_t count)
{
	return weir_ring_dequeue_burst_spsc(ring, items, count);
}

static uint32_t rte_enqueue(void *ring, void *const *items, uint32_t count)
{
	return rte_ring_sp_enqueue_burst(ring, items, count, NULL);
}

static uint32_t rte_dequeue(void *ring, void **items, uint32_t count)
{
	return rte_ring_sc_dequeue_burst(ring, items, count, NULL);
}

/* One timed run, shared by its two threads. */
struct bench_run {
	void *ring;
	uint32_t burst;
	uint64_t element_count;
	int cpus[2]; /* producer's and consumer's CPU, or -1: not pinned */
	bool spin;   /* false with < 2 CPUs: the waiting side yields instead */
	alignas(64) _Atomic uint32_t ready_count;
	_Atomic bool go;
	alignas(64) uint64_t start_ns; /* written by the producer */
	alignas(64) uint64_t end_ns;   /* written by the consumer */
	uint64_t sum;		       /* of the values received */
};

static uint64_t now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ volatile("yield");
#endif
}

static void wait_turn(const struct bench_run *run)
{
	if (run->spin)
		cpu_relax();
	else
		sched_yield();
}

static void pin_self(int cpu)
{
	if (cpu < 0)
		return;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (rc != 0)
		fprintf(stderr, "ring_bench: pinning to CPU %d: %s\n", cpu, strerror(rc));
}

/* Both threads start together: neither is timed while the other is still being created. */
static void start_line(struct bench_run *run)
{
	atomic_fetch_add(&run->ready_count, 1); /* setup only, not timed */
	while (!atomic_load_explicit(&run->go, memory_order_acquire))
		cpu_relax();
}

static inline __attribute__((always_inline)) void producer_loop(struct bench_run *run,
								 bench_enqueue_fn *enqueue)
{
	void *items[BENCH_BURST_MAX];
	uint64_t next = 1; /* values 1..element_count */
	const uint64_t last = run->element_count;

	pin_self(run->cpus[0]);
	start_line(run);
	run->start_ns = now_ns();
	while (next <= last) {
		uint32_t want = run->burst;
		if (want > last - next + 1)
			want = (uint32_t)(last - next + 1);
		for (uint32_t i = 0; i < want; i++)
			items[i] = (void *)(uintptr_t)(next + i);
		uint32_t sent = enqueue(run->ring, items, want);
		/* A cut-short burst: push the rest (which stays ours) before new items. */
		while (sent < want) {
			uint32_t more = enqueue(run->ring, items + sent, want - sent);
			if (more == 0)
				wait_turn(run);
			sent += more;
		}
		next += want;
	}
}

static inline __attribute__((always_inline)) void consumer_loop(struct bench_run *run,
								 bench_dequeue_fn *dequeue)
{
	void *items[BENCH_BURST_MAX];
	uint64_t received = 0;
	uint64_t sum = 0;

	pin_self(run->cpus[1]);
	start_line(run);
	while (received < run->element_count) {
		uint32_t got = dequeue(run->ring, items, run->burst);
		if (got == 0)
			wait_turn(run);
		for (uint32_t i = 0; i < got; i++)
			sum += (uintptr_t)items[i];
		received += got;
	}
	run->end_ns = now_ns();
	run->sum = sum;
}

static void *weir_producer(void *arg)
{
	producer_loop(arg, weir_enqueue);
	return NULL;
}

static void *weir_consumer(void *arg)
{
	consumer_loop(arg, weir_dequeue);
	return NULL;
}

static void *rte_producer(void *arg)
{
	producer_loop(arg, rte_enqueue);
	return NULL;
}

static void *rte_consumer(void *arg)
{
	consumer_loop(arg, rte_dequeue);
	return NULL;
}

/* Enqueue a burst, dequeue it again, in one thread: no cache line ever moves. */
static inline __attribute__((always_inline)) void one_thread_loop(struct bench_run *run,
								   bench_enqueue_fn *enqueue,
								   bench_dequeue_fn *dequeue)
{
	void *items[BENCH_BURST_MAX];
	void *out[BENCH_BURST_MAX];
	uint64_t next = 1;
	uint64_t sum = 0;
	const uint32_t burst = run->burst;
	const uint64_t round_count = run->element_count / burst;

	run->start_ns = now_ns();
	for (uint64_t round = 0; round < round_count; round++) {
		for (uint32_t i = 0; i < burst; i++)
			items[i] = (void *)(uintptr_t)(next + i);
		uint32_t sent = enqueue(run->ring, items, burst);
		uint32_t got = dequeue(run->ring, out, burst);
		for (uint32_t i = 0; i < got; i++)
			sum += (uintptr_t)out[i];
		next += sent;
	}
	run->end_ns = now_ns();
	run->sum = sum;
}

static void weir_one_thread(struct bench_run *run)
{
	one_thread_loop(run, weir_enqueue, weir_dequeue);
}

static void rte_one_thread(struct bench_run *run)
{
	one_thread_loop(run, rte_enqueue, rte_dequeue);
}

struct bench_rings {
	struct weir_ring *weir;
	void **weir_slots;
	struct rte_ring *rte;
	bool eal_started;
};

/* Fresh, empty rings for each run, so no run starts with the other's leftovers. */
static int rings_reset(struct bench_rings *rings)
{
	int rc = weir_ring_init(rings->weir, rings->weir_slots, BENCH_SLOTS);
	if (rc != 0)
		return rc;
	return rte_ring_init(rings->rte, "ring_bench", BENCH_SLOTS,
			     RING_F_SP_ENQ | RING_F_SC_DEQ);
}

static int rings_create(struct bench_rings *rings)
{
	ssize_t rte_length = rte_ring_get_memsize(BENCH_SLOTS);
	if (rte_length < 0)
		return (int)rte_length;
	rings->weir = aligned_alloc(64, sizeof(*rings->weir));
	rings->weir_slots = aligned_alloc(64, BENCH_SLOTS * sizeof(void *));
	/* Round up: aligned_alloc wants a multiple of the alignment. */
	rings->rte = aligned_alloc(64, ((size_t)rte_length + 63) & ~(size_t)63);
	if (rings->weir == NULL || rings->weir_slots == NULL || rings->rte == NULL)
		return -ENOMEM;

	int rc = rings_reset(rings);
	if (rc == 0)
		return 0;
	fprintf(stderr, "ring_bench: rte_ring_init without EAL: %d; starting the EAL\n", rc);
	char prefix[64];
	snprintf(prefix, sizeof(prefix), "--file-prefix=ringbench%ld", (long)getpid());
	char *eal_args[] = {"ring_bench", "--no-huge", "--no-shconf",	"-m",
			    "64",	  "--no-pci",  "--log-level=error", prefix};
	if (rte_eal_init((int)(sizeof(eal_args) / sizeof(eal_args[0])), eal_args) < 0)
		return -rte_errno;
	rings->eal_started = true;
	return rings_reset(rings);
}

static void rings_destroy(struct bench_rings *rings)
{
	free(rings->weir);
	free(rings->weir_slots);
	free(rings->rte);
	if (rings->eal_started)
		rte_eal_cleanup();
}

/* Returns: ns per element, or a negative number when the run failed. */
static double run_once(struct bench_rings *rings, enum bench_impl impl, enum bench_mode mode,
		       uint32_t burst, uint64_t element_count, const int cpus[2])
{
	struct bench_run run = {.burst = burst, .element_count = element_count};
	run.ring = impl == BENCH_WEIR ? (void *)rings->weir : (void *)rings->rte;
	run.cpus[0] = cpus[0];
	run.cpus[1] = cpus[1];
	run.spin = cpus[1] >= 0;

	if (rings_reset(rings) != 0)
		return -1;
	if (mode == BENCH_ONE_THREAD) {
		run.element_count = element_count / burst * burst;
		pin_self(cpus[0]);
		if (impl == BENCH_WEIR)
			weir_one_thread(&run);
		else
			rte_one_thread(&run);
	} else {
		pthread_t producer;
		pthread_t consumer;
		void *(*produce)(void *) = impl == BENCH_WEIR ? weir_producer : rte_producer;
		void *(*consume)(void *) = impl == BENCH_WEIR ? weir_consumer : rte_consumer;
		if (pthread_create(&consumer, NULL, consume, &run) != 0)
			return -1;
		if (pthread_create(&producer, NULL, produce, &run) != 0) {
			atomic_store(&run.go, true); /* let the consumer out; it stays on its own */
			return -1;
		}
		while (atomic_load(&run.ready_count) < 2)
			sched_yield();
		atomic_store_explicit(&run.go, true, memory_order_release);
		pthread_join(producer, NULL);
		pthread_join(consumer, NULL);
	}

	uint64_t n = run.element_count;
	if (run.sum != n * (n + 1) / 2) {
		fprintf(stderr, "ring_bench: %s %s burst %" PRIu32 ": wrong sum %" PRIu64 "\n",
			impl_names[impl], mode_names[mode], burst, run.sum);
		return -1;
	}
	return (double)(run.end_ns - run.start_ns) / (double)n;
}

static int compare_double(const void *a, const void *b)
{
	double x = *(const double *)a;
	double y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The first two CPUs this process may run on; -1 where there are fewer. */
static void pick_cpus(int cpus[2])
{
	cpu_set_t allowed;
	cpus[0] = -1;
	cpus[1] = -1;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
		return;
	int found = 0;
	for (int cpu = 0; cpu < CPU_SETSIZE && found < 2; cpu++) {
		if (CPU_ISSET(cpu, &allowed))
			cpus[found++] = cpu;
	}
	if (found < 2)
		cpus[0] = -1; /* one CPU: do not pin, let the scheduler share it */
}

struct bench_options {
	bool json;
	uint64_t element_count;
	uint32_t rep_count;
};

static int parse_options(int argc, char **argv, struct bench_options *options)
{
	options->json = false;
	options->element_count = 20000000;
	options->rep_count = 5;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			options->json = true;
		} else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
			options->element_count = strtoull(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
			options->rep_count = (uint32_t)strtoul(argv[++i], NULL, 0);
		} else {
			fprintf(stderr, "usage: ring_bench [--json] [--count N] [--reps N]\n");
			return -EINVAL;
		}
	}
	if (options->element_count < BENCH_BURST_MAX || options->rep_count == 0 ||
	    options->rep_count > BENCH_REPS_MAX) {
		fprintf(stderr, "ring_bench: --count >= %u, 1 <= --reps <= %u\n", BENCH_BURST_MAX,
			BENCH_REPS_MAX);
		return -EINVAL;
	}
	return 0;
}

struct bench_result {
	double median_ns;
	double min_ns;
};

static void print_table(const struct bench_options *options, const int cpus[2],
			struct bench_result results[BENCH_MODE_COUNT][4][BENCH_IMPL_COUNT])
{
	printf("ring_bench: %u slots, %" PRIu64 " pointers per run, %u runs each; ns per element "
	       "(lower is better)\n",
	       BENCH_SLOTS, options->element_count, options->rep_count);
	if (cpus[0] >= 0)
		printf("two_thread: producer on CPU %d, consumer on CPU %d\n", cpus[0], cpus[1]);
	else
		printf("two_thread: fewer than 2 CPUs, threads not pinned (yielding)\n");
	printf("\n%-10s %5s | %10s %8s | %10s %8s | %s\n", "mode", "burst", "weir med", "min",
	       "rte med", "min", "rte/weir (median)");
	for (int mode = 0; mode < BENCH_MODE_COUNT; mode++) {
		for (int b = 0; b < 4; b++) {
			const struct bench_result *weir = &results[mode][b][BENCH_WEIR];
			const struct bench_result *rte = &results[mode][b][BENCH_RTE];
			printf("%-10s %5" PRIu32 " | %10.3f %8.3f | %10.3f %8.3f | %.2fx\n",
			       mode_names[mode], burst_sizes[b], weir->median_ns, weir->min_ns,
			       rte->median_ns, rte->min_ns, rte->median_ns / weir->median_ns);
		}
	}
}

static void print_json(const struct bench_options *options,
		       struct bench_result results[BENCH_MODE_COUNT][4][BENCH_IMPL_COUNT])
{
	for (int mode = 0; mode < BENCH_MODE_COUNT; mode++) {
		for (int b = 0; b < 4; b++) {
			for (int impl = 0; impl < BENCH_IMPL_COUNT; impl++) {
				const struct bench_result *r = &results[mode][b][impl];
				printf("{\"impl\":\"%s\",\"mode\":\"%s\",\"burst\":%" PRIu32
				       ",\"ring_slots\":%u,\"elements\":%" PRIu64
				       ",\"reps\":%u,\"ns_per_element_median\":%.4f"
				       ",\"ns_per_element_min\":%.4f}\n",
				       impl_names[impl], mode_names[mode], burst_sizes[b],
				       BENCH_SLOTS, options->element_count, options->rep_count,
				       r->median_ns, r->min_ns);
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct bench_options options;
	struct bench_rings rings = {0};
	static struct bench_result results[BENCH_MODE_COUNT][4][BENCH_IMPL_COUNT];
	double samples[BENCH_IMPL_COUNT][BENCH_REPS_MAX];
	int cpus[2];
	int status = 1;

	if (parse_options(argc, argv, &options) != 0)
		return 1;
	pick_cpus(cpus);
	int rc = rings_create(&rings);
	if (rc != 0) {
		fprintf(stderr, "ring_bench: ring setup failed: %d\n", rc);
		goto out_destroy;
	}
	for (int mode = 0; mode < BENCH_MODE_COUNT; mode++) {
		for (int b = 0; b < 4; b++) {
			for (uint32_t rep = 0; rep < options.rep_count; rep++) {
				for (int impl = 0; impl < BENCH_IMPL_COUNT; impl++) {
					double ns = run_once(&rings, impl, mode, burst_sizes[b],
							     options.element_count, cpus);
					if (ns < 0)
						goto out_destroy;
					samples[impl][rep] = ns;
				}
			}
			for (int impl = 0; impl < BENCH_IMPL_COUNT; impl++) {
				qsort(samples[impl], options.rep_count, sizeof(double),
				      compare_double);
				results[mode][b][impl] = (struct bench_result){
					.median_ns = samples[impl][options.rep_count / 2],
					.min_ns = samples[impl][0],
				};
			}
		}
	}
	if (options.json)
		print_json(&options, results);
	else
		print_table(&options, cpus, results);
	status = 0;
out_destroy:
	rings_destroy(&rings);
	return status;
}
