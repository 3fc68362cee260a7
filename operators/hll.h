/* HyperLogLog: an approximate distinct count in a fixed 2^WEIR_HLL_PRECISION bytes, which
 * merges by taking the larger register, so panes combine into windows and workers' partial
 * sketches combine exactly as the values would.  Relative error about 1.04/sqrt(registers):
 * 3.3% at precision 10; small counts use linear counting and are nearly exact.
 * (Flajolet et al. 2007, with the small-range correction of the original paper.) */
#ifndef WEIR_OPERATORS_HLL_H
#define WEIR_OPERATORS_HLL_H

#include <stdint.h>

#define WEIR_HLL_PRECISION 10u
#define WEIR_HLL_REGISTERS (1u << WEIR_HLL_PRECISION)

/* Adds one item, given a 64-bit hash of it (xxh3: well mixed in every bit). */
static inline void weir_hll_add(uint8_t *registers, uint64_t hash)
{
	uint32_t index = (uint32_t)(hash >> (64 - WEIR_HLL_PRECISION));
	/* The guard bit bounds the rank at 64 - precision + 1 when the rest is all zero. */
	uint64_t rest = (hash << WEIR_HLL_PRECISION) | (UINT64_C(1) << (WEIR_HLL_PRECISION - 1));
	uint8_t rank = (uint8_t)(__builtin_clzll(rest) + 1);
	if (rank > registers[index])
		registers[index] = rank;
}

/* @into becomes the sketch of the union of both. */
void weir_hll_merge(uint8_t *into, const uint8_t *from);

/* The estimated number of distinct items added. */
uint64_t weir_hll_estimate(const uint8_t *registers);

#endif
