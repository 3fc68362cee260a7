#include "operators/hll.h"

#include <math.h>

#include "core/assert.h"

void weir_hll_merge(uint8_t *into, const uint8_t *from)
{
	WEIR_ASSERT(into != NULL && from != NULL);
	for (uint32_t i = 0; i < WEIR_HLL_REGISTERS; i++)
		into[i] = from[i] > into[i] ? from[i] : into[i];
}

uint64_t weir_hll_estimate(const uint8_t *registers)
{
	WEIR_ASSERT(registers != NULL);
	const double m = WEIR_HLL_REGISTERS;
	double sum = 0;
	uint32_t zeros = 0;
	for (uint32_t i = 0; i < WEIR_HLL_REGISTERS; i++) {
		sum += ldexp(1.0, -(int)registers[i]);
		zeros += registers[i] == 0;
	}
	double alpha = 0.7213 / (1.0 + 1.079 / m);
	double estimate = alpha * m * m / sum;
	if (estimate <= 2.5 * m && zeros > 0)
		estimate = m * log(m / zeros); /* linear counting: exact-ish for small sets */
	WEIR_ASSERT(estimate >= 0);
	return (uint64_t)llround(estimate);
}
