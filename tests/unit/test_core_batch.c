/* Goal: core/batch's pool contract, exactly: which sizes create refuses, that get hands out
 * every batch once and then NULL (backpressure, not an error), that a batch comes back reset
 * (DATA, no records, no watermark), that a pool recognises only its own batch starts, and
 * that putting a batch twice (into a full pool) or into a pool that is not its home is a
 * programmer error caught by an assertion.
 *
 * Method: small pools created on this thread; batches are drained, dirtied, returned and
 * taken again; misuse goes through expect_assert_failure (WEIR_ASSERT, so only when built
 * with asserts). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h> /* before cmocka.h, which redefines malloc under UNIT_TESTING */
#include <string.h>

#include <cmocka.h>

#include "core/batch.h"
#include "core/mem.h"

#define BATCHES 5
#define CAPACITY 16
#define RECORD_LENGTH 24 /* bytes */

/* weir_batch_get, kept out of line: its locals inlined next to the setjmp of
 * expect_assert_failure trip -Wclobbered. */
__attribute__((noinline)) static struct weir_batch *take(struct weir_batch_pool *pool)
{
	return weir_batch_get(pool);
}

static void create_errors(void **state)
{
	(void)state;
	struct weir_batch_pool *pool = NULL;
	assert_int_equal(weir_batch_pool_create(&pool, 0, CAPACITY, RECORD_LENGTH, 0, 0), -EINVAL);
	assert_int_equal(weir_batch_pool_create(&pool, BATCHES, 0, RECORD_LENGTH, 0, 0), -EINVAL);
	assert_int_equal(weir_batch_pool_create(&pool, BATCHES, CAPACITY, 0, 0, 0), -EINVAL);
	assert_null(pool); /* untouched on error */
	expect_assert_failure(weir_batch_pool_create(NULL, BATCHES, CAPACITY, RECORD_LENGTH, 0, 0));
	weir_batch_pool_destroy(NULL); /* allowed */
}

static void create_layout(void **state)
{
	(void)state;
	struct weir_batch_pool *pool = NULL;
	assert_int_equal(weir_batch_pool_create(&pool, BATCHES, CAPACITY, RECORD_LENGTH, 3,
						WEIR_MEM_ARENA_DEFAULT),
			 0);
	assert_non_null(pool);
	assert_int_equal(pool->batch_count, BATCHES);
	assert_int_equal(pool->free_count, BATCHES);
	assert_int_equal(pool->capacity, CAPACITY);
	assert_int_equal(pool->record_length, RECORD_LENGTH);
	assert_int_equal(pool->home, 3);
	assert_int_equal(pool->stride % WEIR_CACHE_LINE, 0);
	assert_true(pool->stride >= sizeof(struct weir_batch) + CAPACITY * RECORD_LENGTH);
	/* Records start cache-line aligned; record i sits at i * record_length. */
	struct weir_batch *batch = take(pool);
	assert_int_equal((uintptr_t)batch->records % WEIR_CACHE_LINE, 0);
	assert_int_equal((uintptr_t)batch % WEIR_CACHE_LINE, 0);
	assert_ptr_equal(weir_batch_record(pool, batch, 0), batch->records);
	assert_ptr_equal(weir_batch_record(pool, batch, CAPACITY - 1),
			 batch->records + (CAPACITY - 1) * RECORD_LENGTH);
	/* The last record ends inside the batch's stride. */
	uint8_t *last = weir_batch_record(pool, batch, CAPACITY - 1);
	assert_true(last + RECORD_LENGTH <= (uint8_t *)batch + pool->stride);
#if WEIR_ASSERTS
	expect_assert_failure(weir_batch_record(pool, batch, CAPACITY));
#endif
	weir_batch_put(pool, batch);
	weir_batch_pool_destroy(pool);
}

static void get_until_empty_and_put_back(void **state)
{
	(void)state;
	struct weir_batch_pool *pool = NULL;
	assert_int_equal(weir_batch_pool_create(&pool, BATCHES, CAPACITY, RECORD_LENGTH, 7, 0), 0);
	struct weir_batch *taken[BATCHES];
	for (int i = 0; i < BATCHES; i++) {
		taken[i] = weir_batch_get(pool);
		assert_non_null(taken[i]);
		assert_true(weir_batch_pool_owns(pool, taken[i]));
		assert_int_equal(taken[i]->home, 7);
		for (int j = 0; j < i; j++)
			assert_ptr_not_equal(taken[i], taken[j]); /* each batch once */
		/* Writing a full batch of records does not touch the others. */
		memset(taken[i]->records, 0x10 + i, (size_t)CAPACITY * RECORD_LENGTH);
	}
	assert_int_equal(pool->free_count, 0);
	assert_null(weir_batch_get(pool)); /* backpressure */
	assert_null(weir_batch_get(pool));
	for (int i = 0; i < BATCHES; i++) {
		for (size_t b = 0; b < (size_t)CAPACITY * RECORD_LENGTH; b++)
			assert_int_equal(taken[i]->records[b], 0x10 + i);
	}

	weir_batch_put(pool, taken[2]);
	assert_int_equal(pool->free_count, 1);
	assert_ptr_equal(weir_batch_get(pool), taken[2]);
	assert_null(weir_batch_get(pool));
	for (int i = 0; i < BATCHES; i++)
		weir_batch_put(pool, taken[i]);
	assert_int_equal(pool->free_count, BATCHES);
	weir_batch_pool_destroy(pool);
}

static void get_resets_fields(void **state)
{
	(void)state;
	struct weir_batch_pool *pool = NULL;
	assert_int_equal(weir_batch_pool_create(&pool, 1, CAPACITY, RECORD_LENGTH, 1, 0), 0);
	struct weir_batch *batch = weir_batch_get(pool);
	assert_int_equal(batch->kind, WEIR_BATCH_DATA);
	assert_int_equal(batch->count, 0);
	assert_true(batch->watermark == WEIR_WATERMARK_NONE);
	assert_null(batch->next);
	assert_false(batch->source_idle);
	assert_int_equal(batch->barrier_id, 0);
	/* Dirty every field a consumer may set, then send it home. */
	batch->kind = WEIR_BATCH_BARRIER;
	batch->count = CAPACITY;
	batch->watermark = 12345;
	batch->next = batch;
	batch->source_idle = true;
	batch->barrier_id = 99;
	weir_batch_put(pool, batch);
	struct weir_batch *again = weir_batch_get(pool);
	assert_ptr_equal(again, batch);
	assert_int_equal(again->kind, WEIR_BATCH_DATA);
	assert_int_equal(again->count, 0);
	assert_true(again->watermark == WEIR_WATERMARK_NONE);
	assert_null(again->next);
	assert_false(again->source_idle);
	assert_int_equal(again->barrier_id, 0);
	assert_int_equal(again->home, 1);
	weir_batch_put(pool, again);
	weir_batch_pool_destroy(pool);
}

static void owns(void **state)
{
	(void)state;
	struct weir_batch_pool *pool = NULL;
	struct weir_batch_pool *other = NULL;
	assert_int_equal(weir_batch_pool_create(&pool, BATCHES, CAPACITY, RECORD_LENGTH, 0, 0), 0);
	assert_int_equal(weir_batch_pool_create(&other, BATCHES, CAPACITY, RECORD_LENGTH, 1, 0),
			 0);
	struct weir_batch *mine = weir_batch_get(pool);
	struct weir_batch *theirs = weir_batch_get(other);
	assert_true(weir_batch_pool_owns(pool, mine));
	assert_true(weir_batch_pool_owns(other, theirs));
	assert_false(weir_batch_pool_owns(pool, theirs));
	assert_false(weir_batch_pool_owns(other, mine));
	/* Pointers into a batch, or just past the slab, are not batches. */
	const uint8_t *at = (const uint8_t *)mine;
	assert_false(weir_batch_pool_owns(pool, (const struct weir_batch *)(at + 8)));
	const uint8_t *middle = at + pool->stride / 2;
	assert_false(weir_batch_pool_owns(pool, (const struct weir_batch *)middle));
	assert_false(weir_batch_pool_owns(pool, (const struct weir_batch *)mine->records));
	const uint8_t *end = pool->slab + (size_t)pool->stride * pool->batch_count;
	assert_false(weir_batch_pool_owns(pool, (const struct weir_batch *)end));
	assert_true(weir_batch_pool_owns(
		pool, (const struct weir_batch *)(end - pool->stride))); /* the last one */
	weir_batch_put(pool, mine);
	weir_batch_put(other, theirs);
	weir_batch_pool_destroy(other);
	weir_batch_pool_destroy(pool);
}

static void put_misuse_asserts(void **state)
{
	(void)state;
#if WEIR_ASSERTS
	struct weir_batch_pool *pool = NULL;
	struct weir_batch_pool *other = NULL;
	assert_int_equal(weir_batch_pool_create(&pool, 2, CAPACITY, RECORD_LENGTH, 0, 0), 0);
	assert_int_equal(weir_batch_pool_create(&other, 2, CAPACITY, RECORD_LENGTH, 1, 0), 0);
	struct weir_batch *mine = take(pool);
	struct weir_batch *theirs = take(other);
	/* Into a pool that is not its home. */
	expect_assert_failure(weir_batch_put(pool, theirs));
	assert_int_equal(pool->free_count, 1);
	/* A pointer into the middle of a batch. */
	expect_assert_failure(weir_batch_put(pool, (struct weir_batch *)((uint8_t *)mine + 64)));
	weir_batch_put(pool, mine);
	/* Twice (the pool is full again): a double free. */
	expect_assert_failure(weir_batch_put(pool, mine));
	assert_int_equal(pool->free_count, 2);
	weir_batch_put(other, theirs);
	weir_batch_pool_destroy(other);
	weir_batch_pool_destroy(pool);
#else
	skip();
#endif
}

/* The batch size in bytes must not wrap the 32-bit stride: a pool whose batches hold 2^20
 * records of 4096 bytes needs 4 GiB + a header per batch.  Create may refuse it (-EINVAL or
 * -ENOMEM), but if it succeeds each batch must have room for all its records. */
static void create_huge_batch(void **state)
{
	(void)state;
	struct weir_batch_pool *pool = NULL;
	const uint32_t capacity = 1u << 20;
	const uint32_t record_length = 4096;
	/* Regression: the stride used to be truncated to 32 bits (64 bytes here) and create
	 * returned 0 with no room for a single record. */
	int rc = weir_batch_pool_create(&pool, 1, capacity, record_length, 0, 0);
	assert_int_equal(rc, -EINVAL);
	assert_null(pool);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_errors),
		cmocka_unit_test(create_layout),
		cmocka_unit_test(get_until_empty_and_put_back),
		cmocka_unit_test(get_resets_fields),
		cmocka_unit_test(owns),
		cmocka_unit_test(put_misuse_asserts),
		cmocka_unit_test(create_huge_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
