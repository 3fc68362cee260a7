#include "core/schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/assert.h"

static const char *const type_names[] = {
	[WEIR_TYPE_I64] = "i64", [WEIR_TYPE_U64] = "u64",   [WEIR_TYPE_F64] = "f64",
	[WEIR_TYPE_TS] = "ts",	 [WEIR_TYPE_STR] = "str",   [WEIR_TYPE_IPV4] = "ipv4",
	[WEIR_TYPE_IPV6] = "ipv6", [WEIR_TYPE_IP] = "ip",
};

const char *weir_type_name(enum weir_type type)
{
	WEIR_VERIFY((unsigned)type < sizeof(type_names) / sizeof(type_names[0]));
	return type_names[type];
}

void weir_schema_init(struct weir_schema *schema)
{
	WEIR_VERIFY(schema != NULL);
	memset(schema, 0, sizeof(*schema));
}

static uint32_t align_up(uint32_t value, uint32_t alignment)
{
	return (value + alignment - 1) & ~(alignment - 1);
}

int weir_schema_add(struct weir_schema *schema, const char *name, enum weir_type type,
		    uint32_t max_length)
{
	WEIR_VERIFY(schema != NULL);
	WEIR_VERIFY(name != NULL);
	size_t name_length = strlen(name);
	if (name_length == 0 || name_length >= WEIR_FIELD_NAME_MAX)
		return -EINVAL;
	if (weir_schema_find(schema, name) >= 0)
		return -EINVAL;
	if (schema->field_count == WEIR_SCHEMA_FIELDS_MAX)
		return -E2BIG;

	uint32_t length = 8;
	uint32_t alignment = 8;
	switch (type) {
	case WEIR_TYPE_STR:
		if (max_length == 0 || max_length > WEIR_STR_LENGTH_MAX)
			return -EINVAL;
		length = 1 + max_length;
		alignment = 1;
		break;
	case WEIR_TYPE_IPV4:
		length = max_length = 4;
		alignment = 4;
		break;
	case WEIR_TYPE_IPV6:
	case WEIR_TYPE_IP:
		length = max_length = 16;
		alignment = 1;
		break;
	default:
		max_length = 8;
		break;
	}
	struct weir_field *field = &schema->fields[schema->field_count];
	memcpy(field->name, name, name_length + 1);
	field->type = type;
	field->offset = align_up(schema->record_length, alignment);
	field->length = length;
	field->max_length = max_length;
	schema->field_count++;
	/* record_length stays a multiple of 8 so records in a batch keep numbers aligned. */
	schema->record_length = align_up(field->offset + length, 8);
	WEIR_ASSERT(schema->record_length >= field->offset + field->length);
	return 0;
}

int weir_schema_find(const struct weir_schema *schema, const char *name)
{
	WEIR_VERIFY(schema != NULL);
	for (uint32_t i = 0; i < schema->field_count; i++) {
		if (strcmp(schema->fields[i].name, name) == 0)
			return (int)i;
	}
	return -ENOENT;
}

static int parse_type(const char *text, enum weir_type *type, uint32_t *max_length)
{
	for (unsigned t = 0; t < sizeof(type_names) / sizeof(type_names[0]); t++) {
		if (strcmp(text, type_names[t]) == 0) {
			*type = (enum weir_type)t;
			*max_length = t == WEIR_TYPE_STR ? WEIR_STR_LENGTH_MAX : 0;
			return 0;
		}
	}
	if (strncmp(text, "str", 3) == 0 && text[3] >= '1' && text[3] <= '9') {
		char *end = NULL;
		unsigned long n = strtoul(text + 3, &end, 10);
		if (*end == '\0' && n >= 1 && n <= WEIR_STR_LENGTH_MAX) {
			*type = WEIR_TYPE_STR;
			*max_length = (uint32_t)n;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_entry(struct weir_schema *schema, char *entry, char *error, size_t error_length)
{
	char *colon = strchr(entry, ':');
	if (colon == NULL) {
		snprintf(error, error_length, "schema entry '%s': expected name:type", entry);
		return -EINVAL;
	}
	*colon = '\0';
	enum weir_type type;
	uint32_t max_length;
	if (parse_type(colon + 1, &type, &max_length) != 0) {
		snprintf(error, error_length,
			 "schema entry '%s': unknown type '%s' (i64, u64, f64, ts, str, strN, "
			 "ipv4, ipv6, ip)",
			 entry, colon + 1);
		return -EINVAL;
	}
	int rc = weir_schema_add(schema, entry, type, max_length);
	if (rc == -E2BIG)
		snprintf(error, error_length, "schema entry '%s': more than %d fields", entry,
			 WEIR_SCHEMA_FIELDS_MAX);
	else if (rc != 0)
		snprintf(error, error_length,
			 "schema entry '%s': empty, duplicate or longer than %d bytes name", entry,
			 WEIR_FIELD_NAME_MAX - 1);
	return rc;
}

int weir_schema_parse(struct weir_schema *schema, const char *text, char *error,
		      size_t error_length)
{
	WEIR_VERIFY(schema != NULL && text != NULL);
	WEIR_VERIFY(error != NULL && error_length > 0);
	weir_schema_init(schema);
	char copy[4096];
	if (strlen(text) >= sizeof(copy) || text[0] == '\0') {
		snprintf(error, error_length, "schema: empty or longer than %zu bytes",
			 sizeof(copy) - 1);
		return -EINVAL;
	}
	strcpy(copy, text);
	char *save = NULL;
	for (char *entry = strtok_r(copy, ",", &save); entry != NULL;
	     entry = strtok_r(NULL, ",", &save)) {
		int rc = parse_entry(schema, entry, error, error_length);
		if (rc != 0)
			return rc;
	}
	if (schema->field_count == 0) {
		snprintf(error, error_length, "schema: no fields");
		return -EINVAL;
	}
	return 0;
}
