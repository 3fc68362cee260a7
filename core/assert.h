/* Assertion tiers (STYLE.md §5).
 *
 * WEIR_VERIFY is always on: cold paths and batch boundaries.  WEIR_ASSERT is on in debug and
 * CI builds (hot paths) and compiled out, though still type-checked, with -Dasserts=false.
 * Under UNIT_TESTING a failed check calls cmocka's mock_assert so tests can expect it.
 * Assertions are for programmer errors only; bad input returns an error instead. */
#ifndef WEIR_CORE_ASSERT_H
#define WEIR_CORE_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#ifndef WEIR_ASSERTS
#define WEIR_ASSERTS 1
#endif

#define WEIR_CACHE_LINE 64

#define WEIR_STATIC_ASSERT(cond, why) _Static_assert(cond, why)
#define WEIR_LIKELY(x) __builtin_expect(!!(x), 1)
#define WEIR_UNLIKELY(x) __builtin_expect(!!(x), 0)

#ifdef UNIT_TESTING
void mock_assert(const int result, const char *const expression, const char *const file,
		 const int line);
#define WEIR_VERIFY(cond) mock_assert(!!(cond), #cond, __FILE__, __LINE__)
#else
#define WEIR_VERIFY(cond)                                                                      \
	do {                                                                                   \
		if (WEIR_UNLIKELY(!(cond)))                                                    \
			weir_assert_fail(#cond, __FILE__, __LINE__);                           \
	} while (0)
#endif

#if WEIR_ASSERTS
#define WEIR_ASSERT(cond) WEIR_VERIFY(cond)
#else
#define WEIR_ASSERT(cond)                                                                      \
	do {                                                                                   \
		(void)sizeof((cond) ? 1 : 0);                                                  \
	} while (0)
#endif

/* "Both outcomes are expected": documents a branch that tests must see go either way. */
#define WEIR_MAYBE(cond) ((void)sizeof((cond) ? 1 : 0))

/* Prints the failed condition and where, then aborts.  Context: any thread. */
__attribute__((noreturn, cold)) void weir_assert_fail(const char *expression, const char *file,
						      int line);

#endif
