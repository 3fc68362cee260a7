/* Schemas: fixed-width records.  A record is a byte array of schema->record_length bytes;
 * each field sits at its offset, numbers 8-byte aligned.  A string field stores one length
 * byte and then up to its declared maximum (<= 255) bytes, zero padded, so equal strings are
 * equal byte arrays. */
#ifndef WEIR_CORE_SCHEMA_H
#define WEIR_CORE_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/assert.h"

#define WEIR_SCHEMA_FIELDS_MAX 32
#define WEIR_FIELD_NAME_MAX 48 /* bytes including the terminating NUL */
#define WEIR_STR_LENGTH_MAX 255

enum weir_type {
	WEIR_TYPE_I64,	/* signed 64-bit integer */
	WEIR_TYPE_U64,	/* unsigned 64-bit integer */
	WEIR_TYPE_F64,	/* IEEE double */
	WEIR_TYPE_TS,	/* timestamp: signed 64-bit integer in the job's time unit */
	WEIR_TYPE_STR,	/* 1 length byte + up to max_length bytes */
	WEIR_TYPE_IPV4, /* 4 bytes, network order */
	WEIR_TYPE_IPV6, /* 16 bytes, network order */
	WEIR_TYPE_IP,	/* either family in 16 bytes: IPv4 as ::ffff:a.b.c.d (v4-mapped) */
};

struct weir_field {
	char name[WEIR_FIELD_NAME_MAX];
	enum weir_type type;
	uint32_t offset;     /* bytes from the record's start */
	uint32_t length;     /* bytes the field occupies in the record */
	uint32_t max_length; /* strings: the most content bytes; others: == length */
};

struct weir_schema {
	uint32_t field_count;
	uint32_t record_length; /* bytes, a multiple of 8 */
	struct weir_field fields[WEIR_SCHEMA_FIELDS_MAX];
};

/* Parses "name:type,name:type,..." where type is i64, u64, f64, ts, str (255 bytes at most),
 * strN (N in 1..255), ipv4, ipv6 or ip (either family).  On error writes a message naming the
 * offending entry into @error (of @error_length bytes).
 * Returns: 0, -EINVAL (empty, unknown type, duplicate or over-long name) or -E2BIG (more than
 * WEIR_SCHEMA_FIELDS_MAX fields). */
int weir_schema_parse(struct weir_schema *schema, const char *text, char *error,
		      size_t error_length);

/* Starts an empty schema, then appends fields one by one (layout computed as they come).
 * Returns: 0, or -EINVAL (duplicate/empty/long name, bad max_length) or -E2BIG (too many). */
void weir_schema_init(struct weir_schema *schema);
int weir_schema_add(struct weir_schema *schema, const char *name, enum weir_type type,
		    uint32_t max_length);

/* Returns: the field's index, or -ENOENT. */
int weir_schema_find(const struct weir_schema *schema, const char *name);

/* Whether @schema has a field @name at byte @offset (C structs that mirror a schema check
 * their layout with it). */
static inline bool weir_schema_has_field_at(const struct weir_schema *schema, const char *name,
					    size_t offset)
{
	int index = weir_schema_find(schema, name);
	return index >= 0 && schema->fields[index].offset == offset;
}

/* The type's name as weir_schema_parse spells it ("i64", "str"...). */
const char *weir_type_name(enum weir_type type);

/* Whether a 16-byte address holds IPv4 as ::ffff:a.b.c.d. */
static inline bool weir_ip_is_v4_mapped(const uint8_t *address)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	return memcmp(address, prefix, sizeof(prefix)) == 0;
}

static inline bool weir_type_is_integer(enum weir_type type)
{
	return type == WEIR_TYPE_I64 || type == WEIR_TYPE_U64 || type == WEIR_TYPE_TS;
}

static inline int64_t weir_field_get_i64(const struct weir_field *field, const uint8_t *record)
{
	int64_t value;
	memcpy(&value, record + field->offset, sizeof(value));
	return value;
}

static inline double weir_field_get_f64(const struct weir_field *field, const uint8_t *record)
{
	double value;
	memcpy(&value, record + field->offset, sizeof(value));
	return value;
}

static inline void weir_field_set_i64(const struct weir_field *field, uint8_t *record,
				      int64_t value)
{
	memcpy(record + field->offset, &value, sizeof(value));
}

static inline void weir_field_set_f64(const struct weir_field *field, uint8_t *record,
				      double value)
{
	memcpy(record + field->offset, &value, sizeof(value));
}

/* A string field's content: *length_out bytes at the returned pointer (not NUL-terminated). */
static inline const char *weir_field_get_str(const struct weir_field *field,
					     const uint8_t *record, uint32_t *length_out)
{
	*length_out = record[field->offset];
	return (const char *)record + field->offset + 1;
}

/* Copies one record: lengths are multiples of 8 (weir_schema_parse lays fields out so) and
 * records are small, so fixed-size moves beat a call to memcpy of a variable length. */
static inline void weir_record_copy(uint8_t *to, const uint8_t *from, uint32_t length)
{
	WEIR_ASSERT(length % 8 == 0);
	uint32_t k = 0;
	for (; k + 32 <= length; k += 32)
		memcpy(to + k, from + k, 32);
	if (length - k >= 16) {
		memcpy(to + k, from + k, 16);
		k += 16;
	}
	if (length - k >= 8)
		memcpy(to + k, from + k, 8);
}

#endif
