#include "state/table.h"

#include <errno.h>
#include <string.h>

#include "core/assert.h"
#include "core/mem.h"

#define TABLE_INITIAL_ENTRIES 256u
#define TABLE_SPARSE_SLOTS 4096u /* 32 KiB of index */

static struct weir_table_entry_header *entry_header(const struct weir_table *table, uint32_t id)
{
	return (struct weir_table_entry_header *)weir_table_entry_(table, id);
}

static uint8_t *entry_key(const struct weir_table *table, uint32_t id)
{
	return weir_table_entry_(table, id) + sizeof(struct weir_table_entry_header);
}

size_t weir_table_bytes(const struct weir_table *table)
{
	return (size_t)table->slab_capacity * table->entry_stride +
	       ((size_t)table->index_mask + 1) * sizeof(*table->index);
}

int weir_table_create(struct weir_table **table_out, uint32_t key_length_max,
		      uint32_t value_length, size_t budget_bytes, unsigned arena)
{
	WEIR_VERIFY(table_out != NULL);
	if (key_length_max == 0)
		return -EINVAL;
	size_t value_offset =
		sizeof(struct weir_table_entry_header) + (((size_t)key_length_max + 7u) & ~7ul);
	size_t entry_stride = (value_offset + value_length + 7u) & ~7ul;
	if (entry_stride > UINT32_MAX / 2)
		return -EINVAL; /* entries this large are a caller's mistake, not a table */
	struct weir_table *table = weir_mem_alloc(sizeof(*table), WEIR_CACHE_LINE, arena);
	if (table == NULL)
		return -ENOMEM;
	table->key_length_max = key_length_max;
	table->value_length = value_length;
	table->value_offset = (uint32_t)value_offset;
	table->entry_stride = (uint32_t)entry_stride;
	table->slab_capacity = TABLE_INITIAL_ENTRIES;
	table->index_mask = TABLE_INITIAL_ENTRIES * 2 - 1;
	table->free_head = WEIR_TABLE_NONE;
	table->budget_bytes = budget_bytes;
	table->arena = arena;
	if (weir_table_bytes(table) > budget_bytes) {
		weir_mem_free(table, arena);
		return -EINVAL;
	}
	table->slab = weir_mem_alloc((size_t)table->slab_capacity * table->entry_stride,
				     WEIR_CACHE_LINE, arena);
	table->index = weir_mem_alloc(((size_t)table->index_mask + 1) * sizeof(*table->index),
				      WEIR_CACHE_LINE, arena);
	if (table->slab == NULL || table->index == NULL) {
		weir_table_destroy(table);
		return -ENOMEM;
	}
	*table_out = table;
	return 0;
}

void weir_table_destroy(struct weir_table *table)
{
	if (table == NULL)
		return;
	unsigned arena = table->arena;
	weir_mem_free(table->slab, arena);
	weir_mem_free(table->index, arena);
	weir_mem_free(table, arena);
}

uint32_t weir_table_find(const struct weir_table *table, const void *key, uint32_t key_length,
			 uint64_t hash)
{
	WEIR_ASSERT(key_length <= table->key_length_max);
	return weir_table_lookup(table, key, key_length, hash);
}

/* Puts index value @stored (tag and id, see weir_table.index) at the first free slot of its
 * probe run. */
static void index_put(struct weir_table *table, uint64_t stored)
{
	uint32_t slot = (uint32_t)(stored >> 32) & table->index_mask;
	while (table->index[slot] != 0)
		slot = (slot + 1) & table->index_mask;
	table->index[slot] = stored;
}

static void index_place(struct weir_table *table, uint32_t id)
{
	index_put(table, weir_table_index_value_(entry_header(table, id)->hash, id));
}

/* Gives the index @slots slots (a power of two, more than now) and places every entry again.
 * Returns: false if the budget or the allocator forbids it (nothing changed). */
static bool index_resize(struct weir_table *table, size_t slots)
{
	size_t now = (size_t)table->index_mask + 1;
	WEIR_ASSERT(slots > now && (slots & (slots - 1)) == 0);
	if (slots - 1 > UINT32_MAX ||
	    weir_table_bytes(table) + (slots - now) * sizeof(*table->index) > table->budget_bytes)
		return false;
	uint64_t *bigger = weir_mem_alloc(slots * sizeof(*table->index), WEIR_CACHE_LINE,
					  table->arena);
	if (bigger == NULL)
		return false;
	/* Written before it is read: a fresh page's first access is then a plain fault; a read
	 * first maps the shared zero page, and the write after it costs a copy-on-write fault
	 * with a TLB shootdown to every CPU running this process (the other workers). */
	memset(bigger, 0, slots * sizeof(*table->index));
	/* The tags hold every hash bit a slot needs: the entries are placed again from the old
	 * index alone, without reading them (a cache miss each in a large table). */
	uint64_t *old = table->index;
	table->index = bigger;
	table->index_mask = (uint32_t)(slots - 1);
	for (size_t slot = 0; slot < now; slot++) {
		if (old[slot] != 0)
			index_put(table, old[slot]);
	}
	weir_mem_free(old, table->arena);
	return true;
}

/* Doubles the index when it is half full; returns false if the budget forbids it.  A small
 * index (under TABLE_SPARSE_SLOTS) doubles already at a quarter full if the budget allows:
 * shorter probe runs spare mispredicted probe loops in the tables that stay in the cache, for
 * a few KiB, and an insert is never refused for it. */
static bool index_make_room(struct weir_table *table)
{
	size_t slots = (size_t)table->index_mask + 1;
	if ((size_t)(table->count + 1) * 2 > slots)
		return index_resize(table, slots * 2);
	if (slots < TABLE_SPARSE_SLOTS && (size_t)(table->count + 1) * 4 > slots)
		(void)index_resize(table, slots * 2); /* refused: the index stays as it is */
	return true;
}

/* Grows the slab to @capacity entries (a power of two, more than now).  Returns: false if
 * the budget or the allocator forbids it (nothing changed). */
static bool slab_resize(struct weir_table *table, size_t capacity)
{
	WEIR_ASSERT(capacity > table->slab_capacity);
	size_t grown = (capacity - table->slab_capacity) * table->entry_stride;
	if (weir_table_bytes(table) + grown > table->budget_bytes || capacity >= UINT32_MAX / 2)
		return false;
	uint8_t *bigger = weir_mem_realloc(table->slab, capacity * table->entry_stride,
					   table->arena);
	if (bigger == NULL)
		return false;
	table->slab = bigger;
	table->slab_capacity = (uint32_t)capacity;
	return true;
}

int weir_table_reserve(struct weir_table *table, uint32_t entries)
{
	WEIR_VERIFY(table != NULL);
	size_t capacity = table->slab_capacity;
	while (capacity < entries)
		capacity *= 2;
	size_t slots = (size_t)table->index_mask + 1;
	while (slots < (size_t)entries * 2)
		slots *= 2;
	bool fits = true;
	if (slots > (size_t)table->index_mask + 1)
		fits &= index_resize(table, slots);
	if (capacity > table->slab_capacity)
		fits &= slab_resize(table, capacity);
	return fits ? 0 : -ENOSPC;
}

/* Hands out a free entry id, growing the slab within the budget.  WEIR_TABLE_NONE if full. */
static uint32_t slab_take(struct weir_table *table)
{
	if (table->free_head != WEIR_TABLE_NONE) {
		uint32_t id = table->free_head;
		table->free_head = entry_header(table, id)->next_free;
		return id;
	}
	if (table->high_water == table->slab_capacity &&
	    !slab_resize(table, (size_t)table->slab_capacity * 2))
		return WEIR_TABLE_NONE;
	return table->high_water++;
}

uint32_t weir_table_upsert(struct weir_table *table, const void *key, uint32_t key_length,
			   uint64_t hash, bool *inserted)
{
	WEIR_ASSERT(key_length <= table->key_length_max);
	uint32_t found = weir_table_find(table, key, key_length, hash);
	*inserted = false;
	if (found != WEIR_TABLE_NONE)
		return found;
	uint32_t id = WEIR_TABLE_NONE;
	if (index_make_room(table))
		id = slab_take(table);
	if (id == WEIR_TABLE_NONE) {
		table->refused_count++;
		return WEIR_TABLE_NONE;
	}
	struct weir_table_entry_header *header = entry_header(table, id);
	header->hash = hash;
	header->key_length = key_length;
	header->next_free = WEIR_TABLE_NONE;
	memcpy(entry_key(table, id), key, key_length);
	memset(weir_table_value(table, id), 0, table->value_length);
	index_place(table, id);
	table->count++;
	*inserted = true;
	WEIR_ASSERT(weir_table_find(table, key, key_length, hash) == id);
	return id;
}

void weir_table_remove(struct weir_table *table, uint32_t id)
{
	WEIR_VERIFY(weir_table_live(table, id));
	struct weir_table_entry_header *header = entry_header(table, id);
	uint32_t slot = (uint32_t)header->hash & table->index_mask;
	while ((uint32_t)table->index[slot] != id + 1) {
		WEIR_ASSERT(table->index[slot] != 0);
		slot = (slot + 1) & table->index_mask;
	}
	/* Backward shift: pull later entries of the probe run into the hole. */
	uint32_t hole = slot;
	for (uint32_t next = (hole + 1) & table->index_mask; table->index[next] != 0;
	     next = (next + 1) & table->index_mask) {
		uint32_t home = (uint32_t)(table->index[next] >> 32) & table->index_mask;
		WEIR_ASSERT(home == ((uint32_t)entry_header(table, (uint32_t)table->index[next] - 1)
					     ->hash & table->index_mask));
		/* The entry at `next` may fill `hole` only if its home is not in (hole, next]. */
		bool home_between = hole <= next ? (home > hole && home <= next)
						 : (home > hole || home <= next);
		if (!home_between) {
			table->index[hole] = table->index[next];
			hole = next;
		}
	}
	table->index[hole] = 0;
	header->key_length = WEIR_TABLE_DEAD_LENGTH;
	header->next_free = table->free_head;
	table->free_head = id;
	table->count--;
}

void weir_table_clear(struct weir_table *table)
{
	memset(table->index, 0, ((size_t)table->index_mask + 1) * sizeof(*table->index));
	table->count = 0;
	table->high_water = 0;
	table->free_head = WEIR_TABLE_NONE;
}

const uint8_t *weir_table_key(const struct weir_table *table, uint32_t id,
			      uint32_t *length_out)
{
	WEIR_ASSERT(weir_table_live(table, id));
	*length_out = entry_header(table, id)->key_length;
	return entry_key(table, id);
}

bool weir_table_live(const struct weir_table *table, uint32_t id)
{
	return id < table->high_water &&
	       entry_header(table, id)->key_length != WEIR_TABLE_DEAD_LENGTH;
}
