/* Goal: state/table's contract, exactly: upsert/find/remove agree with a plain reference
 * model under a long random workload of variable-length keys; entry ids (and the values in
 * them) survive growth; weir_table_live and clear; the memory budget refuses new keys (and
 * counts them) while existing keys stay found and updatable; create's error codes; and the
 * probe logic under hash collisions: long runs, runs that wrap around the end of the index,
 * and backward-shift deletion from the middle of a run.
 *
 * Method: a reference array of 5000 distinct keys (1..40 bytes) with present/id per key;
 * 200000 seeded random operations (WEIR_SEED=n replays; the seed is printed) check every
 * result, and a full sweep every 10000 operations checks every key and weir_table_key.
 * Collisions are forced by passing hash values of our choosing: one value for all keys, and
 * values whose low bits are all ones so every key's home is the last index slots at every
 * index size (runs wrap to slot 0). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h> /* before cmocka.h, which redefines malloc under UNIT_TESTING */
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tests/support/test_rng.h"

#include "core/keygroup.h"
#include "state/table.h"

#define KEY_LENGTH_MAX 40 /* bytes */
#define KEYS 5000
#define OPERATIONS 200000
#define SWEEP_EVERY 10000

struct value {
	uint64_t key_index;
	uint64_t version;
};

struct reference_key {
	uint8_t bytes[KEY_LENGTH_MAX];
	uint32_t length;
	uint64_t hash;
	bool present;
	uint32_t id;
	uint64_t version;
};

static struct reference_key keys[KEYS];
typedef uint64_t (*hash_fn)(const uint8_t *bytes, uint32_t length, uint32_t index);

static uint64_t real_hash(const uint8_t *bytes, uint32_t length, uint32_t index)
{
	(void)index;
	return weir_key_hash(bytes, length, 0);
}

/* Eight hash values, each with its low 32 bits all ones but for the last three: at every
 * index size a key's home is one of the last 8 slots, so runs wrap past the end. */
static uint64_t wrapping_hash(const uint8_t *bytes, uint32_t length, uint32_t index)
{
	(void)bytes, (void)length;
	return ((uint64_t)(index % 3) << 40) | (0xFFFFFFF8u | (index % 8));
}

/* Fills keys[0..count) with distinct random keys of 1..KEY_LENGTH_MAX bytes. */
static void make_keys(uint32_t count, hash_fn hash)
{
	memset(keys, 0, sizeof(keys));
	for (uint32_t i = 0; i < count; i++) {
		struct reference_key *key = &keys[i];
		bool duplicate;
		do {
			key->length = 1 + (uint32_t)(test_rng_next() % KEY_LENGTH_MAX);
			for (uint32_t b = 0; b < key->length; b++)
				key->bytes[b] = (uint8_t)test_rng_next();
			duplicate = false;
			for (uint32_t j = 0; j < i && !duplicate; j++)
				duplicate = keys[j].length == key->length &&
					    memcmp(keys[j].bytes, key->bytes, key->length) == 0;
		} while (duplicate);
		key->hash = hash(key->bytes, key->length, i);
		key->id = WEIR_TABLE_NONE;
	}
}

static struct value *value_of(const struct weir_table *table, uint32_t id)
{
	return weir_table_value(table, id);
}

/* Checks key @i against the table: found with its id and value, or not found. */
static void check_key(const struct weir_table *table, uint32_t i)
{
	const struct reference_key *key = &keys[i];
	uint32_t id = weir_table_find(table, key->bytes, key->length, key->hash);
	if (!key->present) {
		if (id != WEIR_TABLE_NONE)
			print_error("key %u: absent but found as id %u\n", i, id);
		assert_int_equal(id, WEIR_TABLE_NONE);
		return;
	}
	if (id != key->id)
		print_error("key %u: id %u, expected %u\n", i, id, key->id);
	assert_int_equal(id, key->id);
	assert_true(weir_table_live(table, id));
	const struct value *value = value_of(table, id);
	assert_int_equal(value->key_index, i);
	assert_int_equal(value->version, key->version);
	uint32_t length = 0;
	const uint8_t *stored = weir_table_key(table, id, &length);
	assert_int_equal(length, key->length);
	assert_memory_equal(stored, key->bytes, length);
}

static void check_all(const struct weir_table *table, uint32_t count)
{
	uint32_t present = 0;
	for (uint32_t i = 0; i < count; i++) {
		check_key(table, i);
		present += keys[i].present;
	}
	assert_int_equal(table->count, present);
	/* Live ids are exactly the present keys' ids. */
	uint32_t live = 0;
	for (uint32_t id = 0; id < table->high_water; id++)
		live += weir_table_live(table, id);
	assert_int_equal(live, present);
	assert_false(weir_table_live(table, table->high_water));
	assert_true(weir_table_bytes(table) <= table->budget_bytes);
}

/* Runs @operations random upserts / finds / removes over keys[0..count). */
static void random_workload(struct weir_table *table, uint32_t count, uint32_t operations)
{
	for (uint32_t op = 0; op < operations; op++) {
		uint32_t i = (uint32_t)(test_rng_next() % count);
		struct reference_key *key = &keys[i];
		uint64_t dice = test_rng_next() % 100;
		if (dice < 45) {
			bool inserted = !key->present;
			uint32_t id = weir_table_upsert(table, key->bytes, key->length, key->hash,
							&inserted);
			assert_int_not_equal(id, WEIR_TABLE_NONE);
			assert_int_equal(inserted, !key->present);
			if (key->present) {
				assert_int_equal(id, key->id);
			} else {
				/* A new entry's value starts zeroed. */
				assert_int_equal(value_of(table, id)->key_index, 0);
				assert_int_equal(value_of(table, id)->version, 0);
				key->present = true;
				key->id = id;
				value_of(table, id)->key_index = i;
			}
			key->version = op + 1;
			value_of(table, id)->version = key->version;
		} else if (dice < 75) {
			check_key(table, i);
		} else if (key->present) {
			weir_table_remove(table, key->id);
			assert_false(weir_table_live(table, key->id));
			key->present = false;
			key->id = WEIR_TABLE_NONE;
			check_key(table, i);
		}
		if ((op + 1) % SWEEP_EVERY == 0)
			check_all(table, count);
	}
	check_all(table, count);
}

static void random_against_reference(void **state)
{
	(void)state;
	test_rng_seed();
	make_keys(KEYS, real_hash);
	struct weir_table *table = NULL;
	assert_int_equal(weir_table_create(&table, KEY_LENGTH_MAX, sizeof(struct value), 64u << 20,
					   0),
			 0);
	random_workload(table, KEYS, OPERATIONS);
	/* Remove everything that is left; the table ends empty. */
	for (uint32_t i = 0; i < KEYS; i++) {
		if (keys[i].present) {
			weir_table_remove(table, keys[i].id);
			keys[i].present = false;
		}
	}
	check_all(table, KEYS);
	assert_int_equal(table->count, 0);
	assert_int_equal(table->refused_count, 0);
	weir_table_destroy(table);
}

/* The same against keys whose homes crowd the last slots of the index: long runs that wrap
 * around, removals from their middle (backward shift across the wrap). */
static void random_wrapping_collisions(void **state)
{
	(void)state;
	test_rng_seed();
	const uint32_t count = 600; /* runs up to 600 long: quadratic, keep it small */
	make_keys(count, wrapping_hash);
	struct weir_table *table = NULL;
	assert_int_equal(weir_table_create(&table, KEY_LENGTH_MAX, sizeof(struct value), 64u << 20,
					   0),
			 0);
	random_workload(table, count, 40000);
	weir_table_destroy(table);
}

static uint32_t upsert_new(struct weir_table *table, const void *key, uint32_t length,
			   uint64_t hash)
{
	bool inserted = false;
	uint32_t id = weir_table_upsert(table, key, length, hash, &inserted);
	assert_int_not_equal(id, WEIR_TABLE_NONE);
	assert_true(inserted);
	return id;
}

static void ids_survive_growth(void **state)
{
	(void)state;
	struct weir_table *table = NULL;
	assert_int_equal(weir_table_create(&table, 8, sizeof(uint64_t), 64u << 20, 0), 0);
	uint32_t initial_capacity = table->slab_capacity;
	uint32_t initial_slots = table->index_mask + 1;
	const uint64_t first_key = 0xF00D;
	uint32_t first = upsert_new(table, &first_key, 8, weir_key_hash(&first_key, 8, 0));
	*(uint64_t *)weir_table_value(table, first) = 0xDEADBEEFCAFEull;
	/* Grow the slab and the index many times over. */
	uint32_t ids[20000];
	for (uint64_t k = 0; k < 20000; k++) {
		ids[k] = upsert_new(table, &k, 8, weir_key_hash(&k, 8, 0));
		*(uint64_t *)weir_table_value(table, ids[k]) = k * 3;
	}
	assert_true(table->slab_capacity > initial_capacity);
	assert_true(table->index_mask + 1 > initial_slots);
	assert_true((uint64_t)table->count * 2 <= (uint64_t)table->index_mask + 1); /* load */
	assert_int_equal(*(uint64_t *)weir_table_value(table, first), 0xDEADBEEFCAFEull);
	assert_int_equal(weir_table_find(table, &first_key, 8, weir_key_hash(&first_key, 8, 0)),
			 first);
	for (uint64_t k = 0; k < 20000; k++) {
		assert_int_equal(*(uint64_t *)weir_table_value(table, ids[k]), k * 3);
		assert_int_equal(weir_table_find(table, &k, 8, weir_key_hash(&k, 8, 0)), ids[k]);
	}
	/* An upsert of a present key returns its id and keeps its value. */
	bool inserted = true;
	assert_int_equal(weir_table_upsert(table, &first_key, 8, weir_key_hash(&first_key, 8, 0),
					   &inserted),
			 first);
	assert_false(inserted);
	assert_int_equal(*(uint64_t *)weir_table_value(table, first), 0xDEADBEEFCAFEull);
	weir_table_destroy(table);
}

/* reserve() sizes the table once: the inserts after it grow nothing, the entries already in
 * it are placed again and still found, and past the budget it says so and the table works. */
static void reserve_then_fill(void **state)
{
	(void)state;
	struct weir_table *table = NULL;
	assert_int_equal(weir_table_create(&table, 8, sizeof(uint64_t), 64u << 20, 0), 0);
	uint64_t before[100];
	for (uint64_t k = 0; k < 100; k++)
		before[k] = upsert_new(table, &k, 8, weir_key_hash(&k, 8, 0));
	assert_int_equal(weir_table_reserve(table, 50000), 0);
	uint32_t capacity = table->slab_capacity, slots = table->index_mask + 1;
	assert_true(capacity >= 50000);
	assert_true(slots >= 100000);
	for (uint64_t k = 0; k < 100; k++)
		assert_int_equal(weir_table_find(table, &k, 8, weir_key_hash(&k, 8, 0)), before[k]);
	for (uint64_t k = 100; k < 50000; k++)
		upsert_new(table, &k, 8, weir_key_hash(&k, 8, 0));
	assert_int_equal(table->slab_capacity, capacity); /* no growth after the reserve */
	assert_int_equal(table->index_mask + 1, slots);
	assert_int_equal(weir_table_reserve(table, 10), 0); /* smaller: nothing to do */
	assert_int_equal(table->slab_capacity, capacity);
	weir_table_destroy(table);
	/* Past the budget: refused, and the table still takes what fits. */
	assert_int_equal(weir_table_create(&table, 8, sizeof(uint64_t), 1u << 20, 0), 0);
	assert_int_equal(weir_table_reserve(table, 1u << 20), -ENOSPC);
	assert_true(weir_table_bytes(table) <= (1u << 20));
	for (uint64_t k = 0; k < 1000; k++)
		upsert_new(table, &k, 8, weir_key_hash(&k, 8, 0));
	assert_int_equal(table->count, 1000);
	weir_table_destroy(table);
}

static void live_and_id_reuse(void **state)
{
	(void)state;
	struct weir_table *table = NULL;
	assert_int_equal(weir_table_create(&table, 4, 8, 1u << 20, 0), 0);
	assert_false(weir_table_live(table, 0));
	assert_false(weir_table_live(table, WEIR_TABLE_NONE));
	uint32_t a = upsert_new(table, "aaaa", 4, 1);
	uint32_t b = upsert_new(table, "bbb", 3, 2);
	assert_true(weir_table_live(table, a));
	assert_true(weir_table_live(table, b));
	assert_false(weir_table_live(table, b + 1));
	weir_table_remove(table, a);
	assert_false(weir_table_live(table, a));
	assert_true(weir_table_live(table, b));
	assert_int_equal(weir_table_find(table, "aaaa", 4, 1), WEIR_TABLE_NONE);
	/* A removed id is reused, and the reused entry's value is zeroed again. */
	*(uint64_t *)weir_table_value(table, b) = 77;
	uint32_t c = upsert_new(table, "cc", 2, 3);
	assert_int_equal(c, a);
	assert_int_equal(*(uint64_t *)weir_table_value(table, c), 0);
	assert_int_equal(*(uint64_t *)weir_table_value(table, b), 77);
	/* Same bytes, different length: different keys.  Same key, other hash: not found
	 * (the caller must hash consistently). */
	assert_int_equal(weir_table_find(table, "bb", 2, 2), WEIR_TABLE_NONE);
	assert_int_equal(weir_table_find(table, "bbb", 3, 3), WEIR_TABLE_NONE);
	/* Keys of exactly key_length_max bytes, and of 0 bytes. */
	uint32_t full = upsert_new(table, "wxyz", 4, 9);
	uint32_t empty = upsert_new(table, "", 0, 9);
	assert_int_not_equal(full, empty);
	assert_int_equal(weir_table_find(table, "", 0, 9), empty);
	assert_int_equal(weir_table_find(table, "wxyz", 4, 9), full);
	weir_table_destroy(table);
}

static void clear(void **state)
{
	(void)state;
	struct weir_table *table = NULL;
	assert_int_equal(weir_table_create(&table, 8, 8, 8u << 20, 0), 0);
	for (uint64_t k = 0; k < 1000; k++)
		upsert_new(table, &k, 8, weir_key_hash(&k, 8, 0));
	size_t bytes = weir_table_bytes(table);
	weir_table_clear(table);
	assert_int_equal(table->count, 0);
	assert_int_equal(weir_table_bytes(table), bytes); /* keeps the memory */
	for (uint32_t id = 0; id < 1000; id++)
		assert_false(weir_table_live(table, id));
	for (uint64_t k = 0; k < 1000; k++)
		assert_int_equal(weir_table_find(table, &k, 8, weir_key_hash(&k, 8, 0)),
				 WEIR_TABLE_NONE);
	/* Usable again, ids from 0, values zeroed. */
	for (uint64_t k = 500; k < 1500; k++) {
		uint32_t id = upsert_new(table, &k, 8, weir_key_hash(&k, 8, 0));
		assert_int_equal(id, k - 500);
		assert_int_equal(*(uint64_t *)weir_table_value(table, id), 0);
		*(uint64_t *)weir_table_value(table, id) = k;
	}
	for (uint64_t k = 0; k < 1500; k++) {
		uint32_t id = weir_table_find(table, &k, 8, weir_key_hash(&k, 8, 0));
		if (k < 500) {
			assert_int_equal(id, WEIR_TABLE_NONE);
		} else {
			assert_int_equal(id, k - 500);
			assert_int_equal(*(uint64_t *)weir_table_value(table, id), k);
		}
	}
	/* Clearing an empty table, and twice. */
	weir_table_clear(table);
	weir_table_clear(table);
	assert_int_equal(table->count, 0);
	upsert_new(table, "k", 1, 5);
	assert_int_equal(table->count, 1);
	weir_table_destroy(table);
}

static void budget_refuses(void **state)
{
	(void)state;
	const size_t budget = 64u << 10;
	struct weir_table *table = NULL;
	assert_int_equal(weir_table_create(&table, KEY_LENGTH_MAX, 8, budget, 0), 0);
	assert_true(weir_table_bytes(table) <= budget);
	uint64_t k = 0;
	uint32_t accepted = 0;
	for (;; k++) {
		bool inserted = false;
		uint32_t id = weir_table_upsert(table, &k, 8, weir_key_hash(&k, 8, 0), &inserted);
		if (id == WEIR_TABLE_NONE) {
			assert_false(inserted);
			break;
		}
		assert_true(inserted);
		*(uint64_t *)weir_table_value(table, id) = k + 1;
		accepted++;
		assert_true(weir_table_bytes(table) <= budget);
		assert_true(k < 100000); /* it must refuse at some point */
	}
	assert_true(accepted > 0);
	assert_int_equal(table->count, accepted);
	assert_int_equal(table->refused_count, 1);
	/* More new keys: all refused, each counted. */
	for (uint64_t extra = 0; extra < 10; extra++) {
		uint64_t key = 1000000 + extra;
		bool inserted = true;
		assert_int_equal(weir_table_upsert(table, &key, 8, weir_key_hash(&key, 8, 0),
						   &inserted),
				 WEIR_TABLE_NONE);
		assert_false(inserted);
		assert_int_equal(weir_table_find(table, &key, 8, weir_key_hash(&key, 8, 0)),
				 WEIR_TABLE_NONE);
	}
	assert_int_equal(table->refused_count, 11);
	assert_true(weir_table_bytes(table) <= budget);
	/* Everything already there is still found, upsertable and updatable. */
	for (uint64_t key = 0; key < accepted; key++) {
		bool inserted = true;
		uint32_t id = weir_table_upsert(table, &key, 8, weir_key_hash(&key, 8, 0),
						&inserted);
		assert_int_not_equal(id, WEIR_TABLE_NONE);
		assert_false(inserted);
		uint64_t *value = weir_table_value(table, id);
		assert_int_equal(*value, key + 1);
		*value = key + 2;
	}
	assert_int_equal(table->refused_count, 11); /* upserts of present keys never count */
	for (uint64_t key = 0; key < accepted; key++) {
		uint32_t id = weir_table_find(table, &key, 8, weir_key_hash(&key, 8, 0));
		assert_int_equal(*(uint64_t *)weir_table_value(table, id), key + 2);
	}
	/* Removing one makes room for exactly one new key. */
	uint64_t gone = 3;
	weir_table_remove(table, weir_table_find(table, &gone, 8, weir_key_hash(&gone, 8, 0)));
	uint64_t fresh = 2000000;
	upsert_new(table, &fresh, 8, weir_key_hash(&fresh, 8, 0));
	uint64_t another = 2000001;
	bool inserted = true;
	assert_int_equal(weir_table_upsert(table, &another, 8, weir_key_hash(&another, 8, 0),
					   &inserted),
			 WEIR_TABLE_NONE);
	assert_int_equal(table->refused_count, 12);
	weir_table_destroy(table);
}

static void create_errors(void **state)
{
	(void)state;
	struct weir_table *table = NULL;
	assert_int_equal(weir_table_create(&table, 0, 8, 1u << 20, 0), -EINVAL);
	assert_null(table);
	/* The first allocation: 256 entries of 16 + 8 + 8 bytes, and 512 index slots of 8 (an
	 * entry id and a 32-bit hash tag). */
	const size_t first = 256 * 32 + 512 * 8;
	assert_int_equal(weir_table_create(&table, 8, 8, first - 1, 0), -EINVAL);
	assert_int_equal(weir_table_create(&table, 8, 8, 0, 0), -EINVAL);
	assert_null(table);
	assert_int_equal(weir_table_create(&table, 8, 8, first, 0), 0);
	assert_non_null(table);
	assert_int_equal(weir_table_bytes(table), first);
	/* Exactly at the budget: the first 256 keys fit, the 257th needs growth. */
	for (uint64_t k = 0; k < 256; k++)
		upsert_new(table, &k, 8, k);
	uint64_t k = 256;
	bool inserted = true;
	assert_int_equal(weir_table_upsert(table, &k, 8, k, &inserted), WEIR_TABLE_NONE);
	assert_int_equal(table->refused_count, 1);
	weir_table_destroy(table);
	expect_assert_failure(weir_table_create(NULL, 8, 8, 1u << 20, 0));
	weir_table_destroy(NULL); /* allowed */
}

/* Sizes near UINT32_MAX must not wrap the 32-bit entry layout.  Create may refuse them
 * (-EINVAL or -ENOMEM); if it accepts, an entry must have room for key_length_max key bytes
 * before the value and value_length bytes after it.  Only the layout is checked: inserting
 * into a wrapped layout would corrupt memory. */
static void create_huge_sizes(void **state)
{
	(void)state;
	const struct {
		uint32_t key_length_max;
		uint32_t value_length;
	} cases[] = {{UINT32_MAX - 3, 8}, {8, UINT32_MAX - 8}};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct weir_table *table = NULL;
		int rc = weir_table_create(&table, cases[c].key_length_max, cases[c].value_length,
					   SIZE_MAX, 0);
		/* Regression: value_offset and entry_stride used to wrap at 32 bits (16 bytes
		 * here) and create returned 0. */
		assert_int_equal(rc, -EINVAL);
		assert_null(table);
	}
}

/* Every key gets the same hash: one run holding everything. */
static void same_hash_cluster(void **state)
{
	(void)state;
	struct weir_table *table = NULL;
	assert_int_equal(weir_table_create(&table, 8, 8, 8u << 20, 0), 0);
	const uint64_t hash = 0x123456789ull;
	enum { N = 300 };
	uint32_t ids[N];
	for (uint64_t k = 0; k < N; k++) {
		ids[k] = upsert_new(table, &k, 8, hash);
		*(uint64_t *)weir_table_value(table, ids[k]) = k;
	}
	/* Remove from the middle, the start and the end of the run, checking everyone else
	 * after each removal. */
	bool present[N];
	for (int k = 0; k < N; k++)
		present[k] = true;
	const uint64_t order[] = {150, 0, 299, 151, 149, 1, 298, 75, 225, 76};
	for (size_t r = 0; r < sizeof(order) / sizeof(order[0]); r++) {
		weir_table_remove(table, ids[order[r]]);
		present[order[r]] = false;
		for (uint64_t k = 0; k < N; k++) {
			uint32_t id = weir_table_find(table, &k, 8, hash);
			if (present[k]) {
				assert_int_equal(id, ids[k]);
				assert_int_equal(*(uint64_t *)weir_table_value(table, id), k);
			} else {
				assert_int_equal(id, WEIR_TABLE_NONE);
			}
		}
	}
	/* Every other key, then the rest. */
	for (uint64_t k = 0; k < N; k += 2) {
		if (present[k]) {
			weir_table_remove(table, ids[k]);
			present[k] = false;
		}
	}
	for (uint64_t k = 0; k < N; k++)
		assert_int_equal(weir_table_find(table, &k, 8, hash),
				 present[k] ? ids[k] : WEIR_TABLE_NONE);
	/* Reinsert the removed ones (ids get reused) and check all. */
	for (uint64_t k = 0; k < N; k++) {
		if (!present[k]) {
			ids[k] = upsert_new(table, &k, 8, hash);
			present[k] = true;
		}
	}
	for (uint64_t k = 0; k < N; k++)
		assert_int_equal(weir_table_find(table, &k, 8, hash), ids[k]);
	assert_int_equal(table->count, N);
	weir_table_destroy(table);
}

/* Two interleaved runs whose homes are adjacent, in the last slots of the index, so the run
 * wraps to slot 0; removing an entry must only pull back entries allowed to move. */
static void wrapping_cluster_removal(void **state)
{
	(void)state;
	struct weir_table *table = NULL;
	assert_int_equal(weir_table_create(&table, 8, 8, 8u << 20, 0), 0);
	const uint32_t slots = table->index_mask + 1;
	enum { N = 40 };
	uint64_t hashes[N];
	uint32_t ids[N];
	bool present[N];
	for (uint64_t k = 0; k < N; k++) {
		/* Homes: slots-3, slots-2, slots-1, 0, 1 (and a high part that differs). */
		uint32_t home = (uint32_t)((slots - 3 + k % 5) & (slots - 1));
		hashes[k] = ((k + 1) << 32) | home;
		ids[k] = upsert_new(table, &k, 8, hashes[k]);
		present[k] = true;
	}
	assert_int_equal(table->index_mask + 1, slots); /* no growth: homes stay put */
	for (uint64_t victim = 0; victim < N; victim += 3) {
		weir_table_remove(table, ids[victim]);
		present[victim] = false;
		for (uint64_t k = 0; k < N; k++)
			assert_int_equal(weir_table_find(table, &k, 8, hashes[k]),
					 present[k] ? ids[k] : WEIR_TABLE_NONE);
	}
	/* Every index slot holds a live id or 0, and each live id appears exactly once. */
	uint32_t seen = 0;
	for (uint32_t s = 0; s < slots; s++) {
		if (table->index[s] == 0)
			continue;
		assert_true(weir_table_live(table, table->index[s] - 1));
		seen++;
	}
	assert_int_equal(seen, table->count);
	weir_table_destroy(table);
}

static void misuse_asserts(void **state)
{
	(void)state;
	struct weir_table *table = NULL;
	assert_int_equal(weir_table_create(&table, 4, 8, 1u << 20, 0), 0);
	uint32_t id = upsert_new(table, "abcd", 4, 7);
	weir_table_remove(table, id);
	/* Removing a dead id, or one never handed out (WEIR_VERIFY). */
	expect_assert_failure(weir_table_remove(table, id));
	expect_assert_failure(weir_table_remove(table, 100));
	assert_int_equal(table->count, 0);
#if WEIR_ASSERTS
	bool inserted = false;
	/* A key longer than key_length_max. */
	expect_assert_failure(weir_table_upsert(table, "abcde", 5, 7, &inserted));
	expect_assert_failure(weir_table_find(table, "abcde", 5, 7));
#endif
	weir_table_destroy(table);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(random_against_reference),
		cmocka_unit_test(random_wrapping_collisions),
		cmocka_unit_test(ids_survive_growth),
		cmocka_unit_test(reserve_then_fill),
		cmocka_unit_test(live_and_id_reuse),
		cmocka_unit_test(clear),
		cmocka_unit_test(budget_refuses),
		cmocka_unit_test(create_errors),
		cmocka_unit_test(create_huge_sizes),
		cmocka_unit_test(same_hash_cluster),
		cmocka_unit_test(wrapping_cluster_removal),
		cmocka_unit_test(misuse_asserts),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
