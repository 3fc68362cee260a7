/* Randomness for tests: one seeded splitmix64 stream per test binary.  The seed comes from
 * WEIR_SEED, or from the clock, and is always printed, so a failing run replays exactly with
 * WEIR_SEED=n (STYLE.md §7).  Include after <cmocka.h> (it prints through print_message). */
#ifndef WEIR_TESTS_TEST_RNG_H
#define WEIR_TESTS_TEST_RNG_H

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static uint64_t test_rng_state;

/* Seeds the stream and prints the seed.  Returns: the seed. */
static inline uint64_t test_rng_seed(void)
{
	const char *text = getenv("WEIR_SEED");
	uint64_t seed = text != NULL && *text != '\0' ? strtoull(text, NULL, 0)
						       : (uint64_t)time(NULL);
	print_message("WEIR_SEED=%llu\n", (unsigned long long)seed);
	test_rng_state = seed;
	return seed;
}

static inline uint64_t test_rng_next(void)
{
	uint64_t z = (test_rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#endif
