#include "io/csv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

/* Bytes of the stack buffer a number or address is copied into for strtod / inet_pton, NUL
 * included.  No valid f64 this parser accepts needs more (17 significant digits, sign, point,
 * exponent), and an IPv6 address is at most 45 characters; longer text is rejected. */
#define CSV_SCRATCH_LENGTH 64

static const char *const reason_texts[] = {
	[WEIR_CSV_FIELD_COUNT] = "wrong number of fields",
	[WEIR_CSV_BAD_NUMBER] = "not a number",
	[WEIR_CSV_STR_TOO_LONG] = "string too long",
	[WEIR_CSV_BAD_ADDRESS] = "not an IP address",
	[WEIR_CSV_BAD_QUOTE] = "bad quoting",
	[WEIR_CSV_LINE_TOO_LONG] = "line too long",
	[WEIR_CSV_BAD_BYTE] = "NUL byte in line",
};
WEIR_STATIC_ASSERT(sizeof(reason_texts) / sizeof(reason_texts[0]) == WEIR_CSV_REASON_COUNT,
		   "a text for every reason");

const char *weir_csv_reason_text(enum weir_csv_reason reason)
{
	if ((unsigned)reason >= WEIR_CSV_REASON_COUNT)
		return "unknown reason";
	WEIR_ASSERT(reason_texts[reason] != NULL);
	return reason_texts[reason];
}

enum scan_result {
	SCAN_OK,
	SCAN_BAD_QUOTE, /* no closing quote, or a byte other than ',' after it */
	SCAN_TOO_LONG,	/* well quoted, but the content did not fit in the buffer */
};

/* Unquotes the quoted field that starts at line[*at] (a '"') into @out (@capacity bytes),
 * turning "" into ".  Scans to the field's end even when the content does not fit, so bad
 * quoting is always reported as such.  On SCAN_OK and SCAN_TOO_LONG, *at is left at the ','
 * after the field or at @length, and *out_length holds the bytes written (<= @capacity). */
static enum scan_result scan_quoted(const char *line, size_t length, size_t *at, char *out,
				    size_t capacity, size_t *out_length)
{
	WEIR_ASSERT(*at < length);
	WEIR_ASSERT(line[*at] == '"');
	size_t position = *at + 1;
	size_t written = 0;
	bool fits = true;
	for (;;) {
		const char *quote = memchr(line + position, '"', length - position);
		if (quote == NULL)
			return SCAN_BAD_QUOTE;
		size_t piece = (size_t)(quote - (line + position));
		bool escaped = (size_t)(quote - line) + 1 < length && quote[1] == '"';
		size_t wanted = piece + (escaped ? 1 : 0);
		if (fits && wanted <= capacity - written) {
			memcpy(out + written, line + position, piece);
			written += piece;
			if (escaped)
				out[written++] = '"';
		} else {
			fits = false;
		}
		position = (size_t)(quote - line) + 1 + (escaped ? 1 : 0);
		if (escaped)
			continue;
		if (position < length && line[position] != ',')
			return SCAN_BAD_QUOTE;
		*at = position;
		*out_length = written;
		return fits ? SCAN_OK : SCAN_TOO_LONG;
	}
}

/* Decimal digits only, at least one, no overflow of uint64. */
static bool parse_digits(const char *text, size_t length, uint64_t *value_out)
{
	if (length == 0)
		return false;
	uint64_t value = 0;
	for (size_t i = 0; i < length; i++) {
		unsigned digit = (unsigned)(unsigned char)text[i] - '0';
		if (digit > 9)
			return false;
		if (__builtin_mul_overflow(value, 10u, &value) ||
		    __builtin_add_overflow(value, digit, &value))
			return false;
	}
	*value_out = value;
	return true;
}

static bool parse_i64(const char *text, size_t length, int64_t *value_out)
{
	bool negative = false;
	size_t start = 0;
	if (length > 0 && (text[0] == '-' || text[0] == '+')) {
		negative = text[0] == '-';
		start = 1;
	}
	uint64_t magnitude = 0;
	if (!parse_digits(text + start, length - start, &magnitude))
		return false;
	if (negative) {
		if (magnitude > (uint64_t)INT64_MAX + 1)
			return false;
		/* -(INT64_MAX + 1) is not representable as a positive int64, hence the split. */
		*value_out = magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude;
	} else {
		if (magnitude > (uint64_t)INT64_MAX)
			return false;
		*value_out = (int64_t)magnitude;
	}
	return true;
}

static bool parse_u64(const char *text, size_t length, uint64_t *value_out)
{
	size_t start = length > 0 && text[0] == '+' ? 1 : 0;
	return parse_digits(text + start, length - start, value_out);
}

/* The common case "[-]digits[.digits]" with at most 15 significant digits, exactly: the
 * digits form an integer below 2^53 and 10^k (k <= 22) is exact too, so one IEEE division
 * rounds correctly and gives what strtod would (Clinger's fast path), at a fraction of the
 * cost.  Returns: false when the text is not of that shape; the caller then uses strtod. */
static bool parse_f64_simple(const char *text, size_t length, double *value_out)
{
	static const double powers_of_ten[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
					       1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
	size_t at = 0;
	bool negative = text[0] == '-';
	at += negative || text[0] == '+';
	uint64_t mantissa = 0;
	uint32_t digit_count = 0;
	uint32_t fraction_digits = 0;
	bool dot = false;
	for (; at < length; at++) {
		char c = text[at];
		if (c == '.' && !dot) {
			dot = true;
			continue;
		}
		if (c < '0' || c > '9' || ++digit_count > 15)
			return false;
		mantissa = mantissa * 10 + (uint64_t)(c - '0');
		fraction_digits += dot;
	}
	if (digit_count == 0)
		return false;
	double value = (double)mantissa / powers_of_ten[fraction_digits];
	*value_out = negative ? -value : value;
	return true;
}

/* strtod, but only on a decimal float: the byte set check rejects spaces, nan, inf and hex
 * before strtod sees them, and the full-consumption and isfinite checks reject the rest
 * ("1e", "1e999", "."). */
static bool parse_f64(const char *text, size_t length, double *value_out)
{
	if (length == 0 || length >= CSV_SCRATCH_LENGTH)
		return false;
	if (parse_f64_simple(text, length, value_out))
		return true;
	for (size_t i = 0; i < length; i++) {
		char c = text[i];
		if (!((c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' ||
		      c == 'E'))
			return false;
	}
	char buffer[CSV_SCRATCH_LENGTH];
	memcpy(buffer, text, length);
	buffer[length] = '\0';
	char *end = NULL;
	double value = strtod(buffer, &end);
	if (end != buffer + length || !isfinite(value))
		return false;
	*value_out = value;
	return true;
}

/* Dotted quad, each part 0..255 in decimal without leading zeros (like inet_pton). */
static bool parse_ipv4(const char *text, size_t length, uint8_t bytes[4])
{
	size_t at = 0;
	for (unsigned part = 0; part < 4; part++) {
		if (part > 0) {
			if (at >= length || text[at] != '.')
				return false;
			at++;
		}
		size_t start = at;
		unsigned value = 0;
		while (at < length && at - start < 3 && text[at] >= '0' && text[at] <= '9') {
			value = value * 10 + (unsigned)(text[at] - '0');
			at++;
		}
		if (at == start || value > 255 || (at - start > 1 && text[start] == '0'))
			return false;
		bytes[part] = (uint8_t)value;
	}
	return at == length;
}

static bool parse_ipv6(const char *text, size_t length, uint8_t *bytes)
{
	if (length == 0 || length >= CSV_SCRATCH_LENGTH)
		return false;
	char buffer[CSV_SCRATCH_LENGTH];
	memcpy(buffer, text, length);
	buffer[length] = '\0';
	return inet_pton(AF_INET6, buffer, bytes) == 1;
}

/* Parses one unquoted (or already unquoted) value into its field.  Returns: true, or false
 * with *reason_out set. */
static bool parse_value(const struct weir_field *field, const char *text, size_t length,
			uint8_t *record, enum weir_csv_reason *reason_out)
{
	uint8_t *slot = record + field->offset;
	switch (field->type) {
	case WEIR_TYPE_I64:
	case WEIR_TYPE_TS: {
		int64_t value = 0;
		*reason_out = WEIR_CSV_BAD_NUMBER;
		if (!parse_i64(text, length, &value))
			return false;
		memcpy(slot, &value, sizeof(value));
		return true;
	}
	case WEIR_TYPE_U64: {
		uint64_t value = 0;
		*reason_out = WEIR_CSV_BAD_NUMBER;
		if (!parse_u64(text, length, &value))
			return false;
		memcpy(slot, &value, sizeof(value));
		return true;
	}
	case WEIR_TYPE_F64: {
		double value = 0;
		*reason_out = WEIR_CSV_BAD_NUMBER;
		if (!parse_f64(text, length, &value))
			return false;
		memcpy(slot, &value, sizeof(value));
		return true;
	}
	case WEIR_TYPE_STR:
		*reason_out = WEIR_CSV_STR_TOO_LONG;
		if (length > field->max_length)
			return false;
		slot[0] = (uint8_t)length;
		memcpy(slot + 1, text, length);
		return true;
	case WEIR_TYPE_IPV4:
		*reason_out = WEIR_CSV_BAD_ADDRESS;
		return parse_ipv4(text, length, slot);
	case WEIR_TYPE_IPV6:
		*reason_out = WEIR_CSV_BAD_ADDRESS;
		return parse_ipv6(text, length, slot);
	case WEIR_TYPE_IP:
		*reason_out = WEIR_CSV_BAD_ADDRESS;
		if (memchr(text, ':', length) != NULL)
			return parse_ipv6(text, length, slot);
		memset(slot, 0, 10);
		slot[10] = slot[11] = 0xff;
		return parse_ipv4(text, length, slot + 12);
	}
	WEIR_VERIFY(!"unknown field type");
	return false;
}

/* A quoted field: strings unquote straight into the record; other types into a bounded stack
 * buffer and then parse as if unquoted (so "12" is the number 12). */
static bool parse_quoted(const struct weir_field *field, const char *line, size_t length,
			 size_t *at, uint8_t *record, enum weir_csv_reason *reason_out)
{
	size_t content_length = 0;
	if (field->type == WEIR_TYPE_STR) {
		uint8_t *slot = record + field->offset;
		enum scan_result result = scan_quoted(line, length, at, (char *)slot + 1,
						      field->max_length, &content_length);
		*reason_out = result == SCAN_BAD_QUOTE ? WEIR_CSV_BAD_QUOTE : WEIR_CSV_STR_TOO_LONG;
		if (result != SCAN_OK)
			return false;
		WEIR_ASSERT(content_length <= field->max_length);
		slot[0] = (uint8_t)content_length;
		return true;
	}
	char buffer[CSV_SCRATCH_LENGTH];
	enum scan_result result = scan_quoted(line, length, at, buffer, sizeof(buffer) - 1,
					      &content_length);
	if (result == SCAN_BAD_QUOTE) {
		*reason_out = WEIR_CSV_BAD_QUOTE;
		return false;
	}
	if (result == SCAN_TOO_LONG) {
		*reason_out = field->type == WEIR_TYPE_IPV4 || field->type == WEIR_TYPE_IPV6 ||
					      field->type == WEIR_TYPE_IP
				      ? WEIR_CSV_BAD_ADDRESS
				      : WEIR_CSV_BAD_NUMBER;
		return false;
	}
	return parse_value(field, buffer, content_length, record, reason_out);
}

static int csv_fail(struct weir_csv_fault *fault, enum weir_csv_reason reason,
		    uint32_t field_index)
{
	fault->reason = reason;
	fault->field_index = field_index;
	return -EINVAL;
}

int weir_csv_parse_line(const struct weir_schema *schema, const char *line, size_t length,
			uint8_t *record, struct weir_csv_fault *fault)
{
	WEIR_ASSERT(schema != NULL);
	WEIR_ASSERT(record != NULL && fault != NULL);
	WEIR_ASSERT(line != NULL || length == 0);
	memset(record, 0, schema->record_length);
	if (length > 0 && line[length - 1] == '\r')
		length--;
	if (length == 0)
		return csv_fail(fault, WEIR_CSV_FIELD_COUNT, 0);
	if (WEIR_UNLIKELY(memchr(line, '\0', length) != NULL))
		return csv_fail(fault, WEIR_CSV_BAD_BYTE, UINT32_MAX);

	size_t at = 0; /* the next field's first byte, or the ',' before it */
	for (uint32_t i = 0; i < schema->field_count; i++) {
		const struct weir_field *field = &schema->fields[i];
		if (i > 0) {
			if (at == length)
				return csv_fail(fault, WEIR_CSV_FIELD_COUNT, i);
			WEIR_ASSERT(line[at] == ',');
			at++;
		}
		enum weir_csv_reason reason = WEIR_CSV_FIELD_COUNT;
		bool ok;
		if (at < length && line[at] == '"') {
			ok = parse_quoted(field, line, length, &at, record, &reason);
		} else {
			const char *comma = memchr(line + at, ',', length - at);
			size_t end = comma != NULL ? (size_t)(comma - line) : length;
			ok = parse_value(field, line + at, end - at, record, &reason);
			at = end;
		}
		if (!ok)
			return csv_fail(fault, reason, i);
	}
	if (at != length)
		return csv_fail(fault, WEIR_CSV_FIELD_COUNT, schema->field_count);
	return 0;
}

/* ---- the header ---- */

/* Trims spaces (and tabs) on both sides of [*text, *text + *length). */
static void trim_spaces(const char **text, size_t *length)
{
	while (*length > 0 && (**text == ' ' || **text == '\t')) {
		(*text)++;
		(*length)--;
	}
	while (*length > 0 && ((*text)[*length - 1] == ' ' || (*text)[*length - 1] == '\t'))
		(*length)--;
}

/* Compares the header's columns with the schema's names, noting the first mismatch.
 * Returns: the column count, or -EINVAL on bad quoting. */
static int64_t header_columns(const struct weir_schema *schema, const char *line, size_t length,
			      uint32_t *mismatch_count, uint32_t *first_mismatch,
			      char *first_name, size_t first_name_capacity)
{
	char unquoted[WEIR_FIELD_NAME_MAX];
	size_t at = 0;
	int64_t column = 0;
	for (;; column++) {
		if (column > 0)
			at++; /* the ',' */
		const char *name = line + at;
		size_t name_length = 0;
		if (at < length && line[at] == '"') {
			enum scan_result result = scan_quoted(line, length, &at, unquoted,
							      sizeof(unquoted), &name_length);
			if (result == SCAN_BAD_QUOTE)
				return -EINVAL;
			name = unquoted; /* a too-long name is cut and will simply not match */
		} else {
			const char *comma = memchr(line + at, ',', length - at);
			size_t end = comma != NULL ? (size_t)(comma - line) : length;
			name_length = end - at;
			at = end;
		}
		trim_spaces(&name, &name_length);
		if ((uint64_t)column < schema->field_count) {
			const char *expected = schema->fields[column].name;
			if (strlen(expected) != name_length ||
			    memcmp(expected, name, name_length) != 0) {
				if (*mismatch_count == 0) {
					*first_mismatch = (uint32_t)column;
					snprintf(first_name, first_name_capacity, "%.*s",
						 (int)(name_length < 48 ? name_length : 48), name);
				}
				(*mismatch_count)++;
			}
		}
		if (at == length)
			return column + 1;
	}
}

int weir_csv_check_header(const struct weir_schema *schema, const char *line, size_t length,
			  char *message, size_t message_length)
{
	WEIR_VERIFY(schema != NULL && message != NULL);
	WEIR_VERIFY(message_length > 0);
	WEIR_VERIFY(line != NULL || length == 0);
	message[0] = '\0';
	if (length > 0 && line[length - 1] == '\r')
		length--;
	if (length == 0) {
		snprintf(message, message_length, "header line is empty, schema has %u columns",
			 schema->field_count);
		return -EINVAL;
	}
	if (memchr(line, '\0', length) != NULL) {
		snprintf(message, message_length, "header line contains a NUL byte");
		return -EINVAL;
	}
	uint32_t mismatch_count = 0;
	uint32_t first_mismatch = 0;
	char first_name[64] = "";
	int64_t column_count = header_columns(schema, line, length, &mismatch_count,
					      &first_mismatch, first_name, sizeof(first_name));
	if (column_count < 0) {
		snprintf(message, message_length, "header line has bad quoting");
		return -EINVAL;
	}
	if ((uint64_t)column_count != schema->field_count) {
		snprintf(message, message_length, "header has %lld columns, schema has %u",
			 (long long)column_count, schema->field_count);
		return -EINVAL;
	}
	if (mismatch_count > 0) {
		WEIR_ASSERT(first_mismatch < schema->field_count);
		snprintf(message, message_length,
			 "header column %u is '%s' but schema field %u is '%s'%s (columns are "
			 "matched by position)",
			 first_mismatch + 1, first_name, first_mismatch + 1,
			 schema->fields[first_mismatch].name,
			 mismatch_count > 1 ? ", and more names differ" : "");
	}
	return 0;
}
