#include "core/batch.h"

#include <errno.h>
#include <stddef.h>

#include "core/mem.h"

int weir_batch_pool_create(struct weir_batch_pool **pool_out, uint32_t batch_count,
			   uint32_t capacity, uint32_t record_length, uint16_t home,
			   unsigned arena)
{
	WEIR_VERIFY(pool_out != NULL);
	if (batch_count == 0 || capacity == 0 || record_length == 0)
		return -EINVAL;
	size_t bytes = sizeof(struct weir_batch) + (size_t)capacity * record_length;
	size_t stride = (bytes + WEIR_CACHE_LINE - 1) & ~(size_t)(WEIR_CACHE_LINE - 1);
	if (stride > UINT32_MAX)
		return -EINVAL; /* a batch of over 4 GiB is a configuration mistake */
	struct weir_batch_pool *pool = weir_mem_alloc(sizeof(*pool), WEIR_CACHE_LINE, arena);
	if (pool == NULL)
		return -ENOMEM;
	pool->stride = (uint32_t)stride;
	pool->batch_count = batch_count;
	pool->capacity = capacity;
	pool->record_length = record_length;
	pool->home = home;
	pool->arena = arena;
	pool->slab = weir_mem_alloc((size_t)pool->stride * batch_count, 4096, arena);
	if (pool->slab == NULL)
		goto err_free_pool;
	pool->free = weir_mem_alloc(sizeof(*pool->free) * batch_count, WEIR_CACHE_LINE, arena);
	if (pool->free == NULL)
		goto err_free_slab;
	for (uint32_t i = 0; i < batch_count; i++) {
		struct weir_batch *batch =
			(struct weir_batch *)(pool->slab + (size_t)pool->stride * i);
		batch->home = home;
		pool->free[i] = batch;
	}
	pool->free_count = batch_count;
	WEIR_VERIFY(weir_batch_pool_owns(pool, pool->free[batch_count - 1]));
	*pool_out = pool;
	return 0;
err_free_slab:
	weir_mem_free(pool->slab, arena);
err_free_pool:
	weir_mem_free(pool, arena);
	return -ENOMEM;
}

void weir_batch_pool_destroy(struct weir_batch_pool *pool)
{
	if (pool == NULL)
		return;
	unsigned arena = pool->arena;
	weir_mem_free(pool->free, arena);
	weir_mem_free(pool->slab, arena);
	weir_mem_free(pool, arena);
}
