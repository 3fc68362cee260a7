/* Keys and key groups.  A key is the canonical encoding of a record's key columns, in order:
 * numbers as their 8 stored bytes, ipv4 4 bytes, ipv6 16 bytes, a string as its length byte
 * followed by exactly that many content bytes (never the padding).  Equal keys have equal
 * encodings, so the encoding is both the hash input and the state-table key.
 *
 * key group = xxh3_64(encoding, seed) % group_count; worker s of n owns the contiguous groups
 * [ceil(s*G/n), ceil((s+1)*G/n)), i.e. group g belongs to worker floor(g*n/G). */
#ifndef WEIR_CORE_KEYGROUP_H
#define WEIR_CORE_KEYGROUP_H

#include <stdint.h>

#include "core/schema.h"

#define WEIR_KEY_GROUPS_DEFAULT 4096u
#define WEIR_KEY_COLUMNS_MAX 8u

struct weir_key_part {
	uint32_t field_index; /* in the schema the key was built over */
	uint32_t offset;      /* bytes from the record's start */
	uint32_t length;      /* stored bytes (strings: 1 + max_length) */
	bool is_string;
};

struct weir_key_spec {
	uint32_t part_count;
	uint32_t encoded_length_max; /* bytes an encoding can take at most */
	struct weir_key_part parts[WEIR_KEY_COLUMNS_MAX];
};

/* Builds a key over @columns ("card,merchant") of @schema.  On error writes a message naming
 * the column.  Returns: 0, -ENOENT (unknown column), -EINVAL (empty/duplicate/too many). */
int weir_key_spec_init(struct weir_key_spec *spec, const struct weir_schema *schema,
		       const char *columns, char *error, size_t error_length);

/* Writes the key of @record to @out (encoded_length_max bytes of room).  Returns: its length. */
static inline uint32_t weir_key_encode(const struct weir_key_spec *spec, const uint8_t *record,
				       uint8_t *out)
{
	uint32_t length = 0;
	for (uint32_t i = 0; i < spec->part_count; i++) {
		const struct weir_key_part *part = &spec->parts[i];
		uint32_t part_length = part->is_string ? 1u + record[part->offset] : part->length;
		memcpy(out + length, record + part->offset, part_length);
		length += part_length;
	}
	return length;
}

/* Writes the key columns of an encoding back into a record laid out by @layout (a spec over
 * the output schema with the same column types, in the same order). */
void weir_key_decode(const struct weir_key_spec *layout, const uint8_t *key, uint32_t length,
		     uint8_t *record);

uint64_t weir_key_hash(const void *key, uint32_t length, uint64_t seed);

static inline uint32_t weir_key_group_of_hash(uint64_t hash, uint32_t group_count)
{
	return (uint32_t)(hash % group_count);
}

/* The worker that owns @group. */
static inline uint32_t weir_key_group_owner(uint32_t group, uint32_t group_count,
					    uint32_t worker_count)
{
	return (uint32_t)(((uint64_t)group * worker_count) / group_count);
}

/* Worker @worker's groups: [*first, *end). */
void weir_key_group_range(uint32_t worker, uint32_t group_count, uint32_t worker_count,
			  uint32_t *first, uint32_t *end);

#endif
