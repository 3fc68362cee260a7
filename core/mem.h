/* Memory for shards: one jemalloc arena per worker, so each worker's state and batches come
 * from pages that worker touched first (and therefore from its NUMA node once the worker's
 * thread is bound there).  Sanitizer builds define WEIR_MEM_PASSTHROUGH and use libc, so
 * ASan/LSan see every object.
 *
 * The only file in weir that calls the raw allocator is core/mem.c. */
#ifndef WEIR_CORE_MEM_H
#define WEIR_CORE_MEM_H

#include <stddef.h>
#include <stdint.h>

/* The arena every thread that has not asked for its own uses. */
#define WEIR_MEM_ARENA_DEFAULT 0u

/* Creates a new arena for one worker.  Returns: 0, or -ENOMEM. */
int weir_mem_arena_create(unsigned *arena_out);

/* Allocates @length bytes aligned to @alignment (a power of two) from @arena, zeroed.
 * Returns: the memory, or NULL when out of memory (callers return -ENOMEM).
 * Context: any thread.  Workers allocate at startup; afterwards only keyed state grows
 * (by doubling, within its budget), never per event. */
void *weir_mem_alloc(size_t length, size_t alignment, unsigned arena);

/* Frees memory from weir_mem_alloc with the same arena; NULL is ignored. */
void weir_mem_free(void *memory, unsigned arena);

/* Grows or shrinks an allocation (alignment 16); the contents up to the smaller length stay.
 * Returns: the new memory, or NULL with the old memory untouched. */
void *weir_mem_realloc(void *memory, size_t length, unsigned arena);

#endif
