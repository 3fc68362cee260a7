/* A per-shard keyed table: open addressing (linear probing, backward-shift deletion) over an
 * index of entry ids, with entries in a slab so an entry's id stays valid until it is removed
 * even when the table grows.  Keys are byte strings up to key_length_max; values are
 * value_length bytes, zeroed on insert.  Growth doubles the slab or the index; a growth that
 * would pass the memory budget is refused, and the insert that needed it fails (counted) while
 * everything already in the table stays.
 *
 * Context: one thread (the owning worker); no locks. */
#ifndef WEIR_STATE_TABLE_H
#define WEIR_STATE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define WEIR_TABLE_NONE UINT32_MAX
#define WEIR_TABLE_DEAD_LENGTH UINT32_MAX /* key_length of a free entry */

/* An entry: this header, the key bytes (key_length_max, 8-aligned), the value bytes.  Here
 * only for weir_table_lookup, inlined; table.c owns it. */
struct weir_table_entry_header {
	uint64_t hash;
	uint32_t key_length; /* WEIR_TABLE_DEAD_LENGTH when free */
	uint32_t next_free;
};

struct weir_table {
	uint32_t key_length_max;
	uint32_t value_length;
	uint32_t entry_stride;	 /* bytes per slab entry */
	uint32_t value_offset;	 /* of the value inside an entry */
	uint32_t count;		 /* live entries */
	uint32_t slab_capacity;	 /* entries the slab holds */
	uint32_t high_water;	 /* ids below this have been handed out */
	uint32_t free_head;	 /* first id of the free list, or WEIR_TABLE_NONE */
	uint32_t index_mask;	 /* index slots - 1 */
	uint64_t *index;	 /* slot: the hash's low 32 bits (its tag) << 32 | entry id + 1;
				  * 0 when empty */
	uint8_t *slab;
	size_t budget_bytes;
	uint64_t refused_count;	 /* inserts refused by the budget */
	unsigned arena;
};

/* Returns: 0, -EINVAL (zero key length, entries over 2 GiB, budget smaller than the first
 * allocation), -ENOMEM. */
int weir_table_create(struct weir_table **table_out, uint32_t key_length_max,
		      uint32_t value_length, size_t budget_bytes, unsigned arena);
void weir_table_destroy(struct weir_table *table);

/* Finds @key (@hash must be the same function of the key on every call) or inserts it with a
 * zeroed value; *inserted says which.  Returns: the entry id, or WEIR_TABLE_NONE when the key
 * is new and the budget allows no more entries.  Ids stay valid until removed; value pointers
 * only until the next insert. */
uint32_t weir_table_upsert(struct weir_table *table, const void *key, uint32_t key_length,
			   uint64_t hash, bool *inserted);

/* Returns: the entry id, or WEIR_TABLE_NONE. */
uint32_t weir_table_find(const struct weir_table *table, const void *key, uint32_t key_length,
			 uint64_t hash);

static inline uint8_t *weir_table_entry_(const struct weir_table *table, uint32_t id)
{
	return table->slab + (size_t)id * table->entry_stride;
}

/* Keys of 8 and 16 bytes (an i64 key, with or without a window pane after it) are the common
 * case: a fixed-size compare is inlined, where memcmp of a variable length is a call. */
static inline bool weir_table_key_equal_(const uint8_t *a, const void *b, uint32_t length)
{
	if (length == 16)
		return memcmp(a, b, 16) == 0;
	if (length == 8)
		return memcmp(a, b, 8) == 0;
	return memcmp(a, b, length) == 0;
}

/* An index slot's value for entry @id of @hash.  The tag is the hash's low 32 bits, the ones
 * the slot comes from: an entry's home slot is its tag & index_mask, so removing and growing
 * never read entries to find homes; the tag's bits above the mask still tell the keys of one
 * probe run apart (12 of them in an index of a million slots). */
static inline uint64_t weir_table_index_value_(uint64_t hash, uint32_t id)
{
	return (uint64_t)(uint32_t)hash << 32 | (uint64_t)(id + 1);
}

/* weir_table_find, inlined into a caller's per-record loop.  Returns: as weir_table_find. */
static inline uint32_t weir_table_lookup(const struct weir_table *table, const void *key,
					 uint32_t key_length, uint64_t hash)
{
	const uint32_t tag = (uint32_t)hash;
	for (uint32_t slot = (uint32_t)hash & table->index_mask;;
	     slot = (slot + 1) & table->index_mask) {
		uint64_t stored = table->index[slot];
		uint32_t id_plus_one = (uint32_t)stored;
		if (id_plus_one == 0)
			return WEIR_TABLE_NONE;
		/* The tag spares a cache miss on the entry for almost every other key. */
		if ((uint32_t)(stored >> 32) != tag)
			continue;
		const uint8_t *entry = weir_table_entry_(table, id_plus_one - 1);
		const struct weir_table_entry_header *header =
			(const struct weir_table_entry_header *)(const void *)entry;
		if (header->hash == hash && header->key_length == key_length &&
		    weir_table_key_equal_(entry + sizeof(*header), key, key_length))
			return id_plus_one - 1;
	}
}

/* Starts loading the index slot where a lookup of @hash begins (a hint; no effect on state). */
static inline void weir_table_prefetch(const struct weir_table *table, uint64_t hash)
{
	__builtin_prefetch(&table->index[(uint32_t)hash & table->index_mask]);
}

/* The second step of a lookup started ahead: once weir_table_prefetch(@hash) has brought the
 * index slot in, starts loading the entry a lookup of @hash will compare (the first one whose
 * tag matches, among the first few slots), both ends of it, since an entry may straddle two
 * cache lines.  In a table larger than the cache the entry is the lookup's second miss, and
 * the one that stalls it most.  A hint only: reads the index, changes nothing.  Always
 * inlined: gcc judges a function that only loads and prefetches to be pure, and drops a call
 * to it whose result is unused, prefetches and all. */
__attribute__((always_inline)) static inline void
weir_table_prefetch_entry(const struct weir_table *table, uint64_t hash)
{
	const uint32_t tag = (uint32_t)hash;
	uint32_t slot = (uint32_t)hash & table->index_mask;
	for (uint32_t probe = 0; probe < 4; probe++, slot = (slot + 1) & table->index_mask) {
		uint64_t stored = table->index[slot];
		if ((uint32_t)stored == 0)
			return; /* a new key: nothing to load */
		if ((uint32_t)(stored >> 32) != tag)
			continue;
		const uint8_t *entry = table->slab + (size_t)((uint32_t)stored - 1) *
							     table->entry_stride;
		__builtin_prefetch(entry);
		__builtin_prefetch(entry + table->entry_stride - 1);
		return;
	}
}

/* Ahead of weir_table_remove(@id), once the entry is cached (weir_table_prefetch_id):
 * starts loading the index slot where its removal begins.  A hint only. */
__attribute__((always_inline)) static inline void
weir_table_prefetch_removal(const struct weir_table *table, uint32_t id)
{
	const struct weir_table_entry_header *header =
		(const struct weir_table_entry_header *)(const void *)weir_table_entry_(table, id);
	__builtin_prefetch(&table->index[(uint32_t)header->hash & table->index_mask]);
}

/* Starts loading entry @id, both ends (a hint only). */
__attribute__((always_inline)) static inline void
weir_table_prefetch_id(const struct weir_table *table, uint32_t id)
{
	const uint8_t *entry = weir_table_entry_(table, id);
	__builtin_prefetch(entry);
	__builtin_prefetch(entry + table->entry_stride - 1);
}

/* Makes room for @entries entries without growing again (the index stays at most half
 * full), as far as the budget allows: for a table about to be filled with a known amount.
 * Returns: 0, or -ENOSPC when the budget (or memory) allowed only part of it. */
int weir_table_reserve(struct weir_table *table, uint32_t entries);

/* Removes entry @id (its id may be reused by a later insert). */
void weir_table_remove(struct weir_table *table, uint32_t id);

/* Removes every entry; keeps the memory. */
void weir_table_clear(struct weir_table *table);

static inline void *weir_table_value(const struct weir_table *table, uint32_t id)
{
	return weir_table_entry_(table, id) + table->value_offset;
}

/* The key of entry @id: *length_out bytes. */
const uint8_t *weir_table_key(const struct weir_table *table, uint32_t id,
			      uint32_t *length_out);

/* Whether @id is a live entry (for iterating ids 0 .. high_water-1). */
bool weir_table_live(const struct weir_table *table, uint32_t id);

/* Bytes the table holds now (slab + index). */
size_t weir_table_bytes(const struct weir_table *table);

#endif
