#include "core/keygroup.h"

#include <errno.h>
#include <stdio.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/assert.h"

int weir_key_spec_init(struct weir_key_spec *spec, const struct weir_schema *schema,
		       const char *columns, char *error, size_t error_length)
{
	WEIR_VERIFY(spec != NULL && schema != NULL && columns != NULL);
	memset(spec, 0, sizeof(*spec));
	char copy[1024];
	if (columns[0] == '\0' || strlen(columns) >= sizeof(copy)) {
		snprintf(error, error_length, "key: empty or too long column list");
		return -EINVAL;
	}
	strcpy(copy, columns);
	char *save = NULL;
	for (char *name = strtok_r(copy, ",", &save); name != NULL;
	     name = strtok_r(NULL, ",", &save)) {
		int index = weir_schema_find(schema, name);
		if (index < 0) {
			snprintf(error, error_length, "key column '%s' is not in the schema", name);
			return -ENOENT;
		}
		for (uint32_t i = 0; i < spec->part_count; i++) {
			if (spec->parts[i].field_index == (uint32_t)index) {
				snprintf(error, error_length, "key column '%s' given twice", name);
				return -EINVAL;
			}
		}
		if (spec->part_count == WEIR_KEY_COLUMNS_MAX) {
			snprintf(error, error_length, "key: more than %u columns",
				 WEIR_KEY_COLUMNS_MAX);
			return -EINVAL;
		}
		const struct weir_field *field = &schema->fields[index];
		struct weir_key_part *part = &spec->parts[spec->part_count++];
		part->field_index = (uint32_t)index;
		part->offset = field->offset;
		part->length = field->length;
		part->is_string = field->type == WEIR_TYPE_STR;
		spec->encoded_length_max += field->length;
	}
	if (spec->part_count == 0) {
		snprintf(error, error_length, "key: no columns");
		return -EINVAL;
	}
	return 0;
}

void weir_key_decode(const struct weir_key_spec *layout, const uint8_t *key, uint32_t length,
		     uint8_t *record)
{
	WEIR_ASSERT(length <= layout->encoded_length_max);
	uint32_t at = 0;
	for (uint32_t i = 0; i < layout->part_count; i++) {
		const struct weir_key_part *part = &layout->parts[i];
		uint32_t part_length = part->is_string ? 1u + key[at] : part->length;
		WEIR_ASSERT(part_length <= part->length);
		memcpy(record + part->offset, key + at, part_length);
		if (part_length < part->length)
			memset(record + part->offset + part_length, 0, part->length - part_length);
		at += part_length;
	}
	WEIR_ASSERT(at == length);
}

uint64_t weir_key_hash(const void *key, uint32_t length, uint64_t seed)
{
	return XXH3_64bits_withSeed(key, length, seed);
}

void weir_key_group_range(uint32_t worker, uint32_t group_count, uint32_t worker_count,
			  uint32_t *first, uint32_t *end)
{
	WEIR_VERIFY(worker < worker_count);
	WEIR_VERIFY(worker_count <= group_count);
	*first = (uint32_t)(((uint64_t)worker * group_count + worker_count - 1) / worker_count);
	*end = (uint32_t)(((uint64_t)(worker + 1) * group_count + worker_count - 1) /
			  worker_count);
}
