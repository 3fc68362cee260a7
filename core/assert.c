#include "core/assert.h"

void weir_assert_fail(const char *expression, const char *file, int line)
{
	fprintf(stderr, "weir: assertion failed: %s (%s:%d)\n", expression, file, line);
	fflush(stderr);
	abort();
}
