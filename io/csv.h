/* CSV lines into fixed-width records (core/schema.h).
 *
 * One line is one record; the line's fields map to the schema's fields by position.  Quoting
 * follows RFC 4180: a field may be enclosed in double quotes, inside which commas are data and
 * "" is one literal quote.  Everything else is strict, because this runs for every input line
 * and a lenient parser hides bad data: numbers allow no surrounding spaces, integers are
 * decimal with an optional sign, floats are finite decimals, addresses are textual IPv4
 * (dotted quad) or IPv6.  Parsing never allocates and never blocks. */
#ifndef WEIR_IO_CSV_H
#define WEIR_IO_CSV_H

#include <stddef.h>
#include <stdint.h>

#include "core/schema.h"

/* Why a line was rejected.  The values are stable (tests and reports name them). */
enum weir_csv_reason {
	WEIR_CSV_FIELD_COUNT,	 /* fewer or more fields than the schema has (or an empty line) */
	WEIR_CSV_BAD_NUMBER,	 /* i64/u64/ts/f64 field that is not a number of its type */
	WEIR_CSV_STR_TOO_LONG,	 /* string content longer than the field's max_length */
	WEIR_CSV_BAD_ADDRESS,	 /* ipv4/ipv6 field that is not an address of its family */
	WEIR_CSV_BAD_QUOTE,	 /* unterminated quote, or bytes after a closing quote */
	WEIR_CSV_LINE_TOO_LONG, /* line longer than the reader's limit (set by the reader) */
	WEIR_CSV_BAD_BYTE,	 /* a NUL byte in the line */
	WEIR_CSV_REASON_COUNT,
};

/* Where a line went wrong.  field_index is 0-based, or UINT32_MAX when no field is to blame
 * (LINE_TOO_LONG, BAD_BYTE).  For FIELD_COUNT it is the first field that does not fit: the
 * first missing one (== the number of fields found) when there are too few, and
 * schema->field_count when there are too many. */
struct weir_csv_fault {
	enum weir_csv_reason reason;
	uint32_t field_index;
};

/* Parses @line (@length bytes, without its '\n'; one trailing '\r' is ignored) into @record
 * (schema->record_length bytes).  The record is zero-filled first, so string padding is zero
 * and equal strings are equal bytes.  An empty line has no fields (FIELD_COUNT), even for a
 * schema with one string field.
 * Accepted per type: i64/ts: [+-]?[0-9]+ within int64; u64: [+]?[0-9]+ within uint64; f64: a
 * finite decimal that strtod consumes whole, at most 63 bytes (no nan, inf, hex or spaces);
 * str: any bytes, at most max_length after unquoting; ipv4: dotted quad, no leading zeros;
 * ipv6: whatever inet_pton(AF_INET6) accepts.  Any field may be quoted.
 * Context: any thread; no allocation, no locale other than "C" is expected (strtod).
 * Returns: 0, or -EINVAL with @fault filled (the record's content is then unspecified). */
int weir_csv_parse_line(const struct weir_schema *schema, const char *line, size_t length,
			uint8_t *record, struct weir_csv_fault *fault);

/* Checks a header line against @schema.  The column count must match; column names are only
 * compared (after unquoting and trimming spaces), because fields are matched by position.
 * Writes into @message (@message_length bytes, > 0): the error on -EINVAL ("header has 3
 * columns, schema has 4"), a warning on 0 when the names differ, or "" when all is well
 * (so message[0] != 0 after a 0 means "print this warning").
 * Returns: 0, or -EINVAL (wrong column count, bad quoting, NUL byte). */
int weir_csv_check_header(const struct weir_schema *schema, const char *line, size_t length,
			  char *message, size_t message_length);

/* A short phrase for @reason ("not a number"), for reports. */
const char *weir_csv_reason_text(enum weir_csv_reason reason);

#endif
