#include "core/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

#ifndef WEIR_MEM_PASSTHROUGH
#include <jemalloc/jemalloc.h>
#endif

#ifdef WEIR_MEM_PASSTHROUGH

int weir_mem_arena_create(unsigned *arena_out)
{
	WEIR_VERIFY(arena_out != NULL);
	*arena_out = WEIR_MEM_ARENA_DEFAULT;
	return 0;
}

void *weir_mem_alloc(size_t length, size_t alignment, unsigned arena)
{
	(void)arena;
	WEIR_VERIFY(alignment != 0 && (alignment & (alignment - 1)) == 0);
	if (alignment < sizeof(void *))
		alignment = sizeof(void *);
	size_t rounded = (length + alignment - 1) & ~(alignment - 1);
	void *memory = aligned_alloc(alignment, rounded == 0 ? alignment : rounded);
	if (memory != NULL)
		memset(memory, 0, rounded);
	return memory;
}

void *weir_mem_realloc(void *memory, size_t length, unsigned arena)
{
	(void)arena;
	return realloc(memory, length == 0 ? 1 : length);
}

void weir_mem_free(void *memory, unsigned arena)
{
	(void)arena;
	free(memory);
}

#else

int weir_mem_arena_create(unsigned *arena_out)
{
	WEIR_VERIFY(arena_out != NULL);
	unsigned arena = 0;
	size_t length = sizeof(arena);
	int rc = mallctl("arenas.create", &arena, &length, NULL, 0);
	if (rc != 0)
		return -rc;
	*arena_out = arena;
	return 0;
}

static int mem_flags(size_t alignment, unsigned arena)
{
	/* No thread cache: memory of a worker's arena must not sit in another thread's cache. */
	return MALLOCX_ALIGN(alignment) | MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE;
}

void *weir_mem_alloc(size_t length, size_t alignment, unsigned arena)
{
	WEIR_VERIFY(alignment != 0 && (alignment & (alignment - 1)) == 0);
	if (arena == WEIR_MEM_ARENA_DEFAULT)
		return mallocx(length == 0 ? 1 : length, MALLOCX_ALIGN(alignment) | MALLOCX_ZERO);
	return mallocx(length == 0 ? 1 : length, mem_flags(alignment, arena) | MALLOCX_ZERO);
}

void *weir_mem_realloc(void *memory, size_t length, unsigned arena)
{
	if (memory == NULL)
		return weir_mem_alloc(length, 16, arena);
	if (arena == WEIR_MEM_ARENA_DEFAULT)
		return rallocx(memory, length == 0 ? 1 : length, 0);
	return rallocx(memory, length == 0 ? 1 : length, mem_flags(16, arena));
}

void weir_mem_free(void *memory, unsigned arena)
{
	if (memory == NULL)
		return;
	if (arena == WEIR_MEM_ARENA_DEFAULT)
		dallocx(memory, 0);
	else
		dallocx(memory, MALLOCX_ARENA(arena) | MALLOCX_TCACHE_NONE);
}

#endif
