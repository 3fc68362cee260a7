/* Text sinks: JSON lines or CSV, to a file or standard output (weir_job_sink and
 * weir_job_late_sink in include/weir/weir.h).
 *
 * Workers format rows into 64 KiB chunks of whole lines and pass full chunks to the main
 * thread through an SPSC ring; the main thread write()s them and passes the chunk back.  So
 * lines from different workers never interleave, even on a pipe, and no worker makes a
 * syscall.  A worker with no free chunk waits for the main thread (which never waits on a
 * worker); those waits are counted. */
#ifndef WEIR_IO_SINK_H
#define WEIR_IO_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "core/schema.h"

/* What formatting a row of one schema needs, worked out once: each JSON key with its quotes
 * and separator, and the longest row.  @schema must outlive the format. */
struct weir_row_format {
	const struct weir_schema *schema;
	size_t length_max; /* bytes */
	uint8_t key_prefix_length[WEIR_SCHEMA_FIELDS_MAX];
	char key_prefix[WEIR_SCHEMA_FIELDS_MAX][WEIR_FIELD_NAME_MAX + 4]; /* ,"name": */
};

void weir_row_format_init(struct weir_row_format *format, const struct weir_schema *schema);

/* Formats one record as a JSON object or a CSV line, with its newline, into @out (room for
 * format->length_max bytes).  Returns: bytes written. */
size_t weir_format_jsonl(const struct weir_row_format *format, const uint8_t *record, char *out);
size_t weir_format_csv(const struct weir_row_format *format, const uint8_t *record, char *out);
size_t weir_format_row_length_max(const struct weir_schema *schema);

/* Shortest text that reads back as exactly @value ("0.1", not "0.10000000000000001"). */
size_t weir_format_f64(double value, char *out);

#endif
