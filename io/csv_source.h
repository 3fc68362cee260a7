/* A weir source (core/source.h) over one CSV file with a header line, read through io_uring.
 *
 * Partition i of n covers the bytes [begin_i, begin_{i+1}): begin_0 is the first byte after
 * the header line, begin_n is the file's length, and in between begin_i is the first byte
 * after the first '\n' at or after floor(length * i / n) - 1.  So the file is cut at line
 * boundaries near equal byte offsets, every line belongs to exactly one partition, partitions
 * are in file order, and a partition can be empty.  A partition works its boundaries out
 * itself in open() (a pread of a small window on the worker's thread), so opening one never
 * depends on another.
 *
 * Each open partition has its own io_uring and reads its range in 1 MiB chunks, two buffers
 * deep: while the worker parses one chunk, the read of the next is in flight.  pull() never
 * blocks.  Lines are parsed with weir_csv_parse_line; malformed lines are skipped and counted
 * and the first WEIR_CSV_SOURCE_FAULTS_MAX of each partition are remembered, so that
 * weir_csv_source_report() can name them with their line numbers in the file.  A line longer
 * than WEIR_CSV_LINE_LENGTH_MAX bytes is skipped as WEIR_CSV_LINE_TOO_LONG.  An empty line is
 * malformed (FIELD_COUNT), except as the very last line of the file. */
#ifndef WEIR_IO_CSV_SOURCE_H
#define WEIR_IO_CSV_SOURCE_H

#include <stdint.h>
#include <stdio.h>

#include "core/schema.h"
#include "core/source.h"
#include "io/csv.h"

#define WEIR_CSV_CHUNK_LENGTH (1u << 20)	     /* bytes per read */
#define WEIR_CSV_LINE_LENGTH_MAX WEIR_CSV_CHUNK_LENGTH /* bytes, without the '\n' */
#define WEIR_CSV_SOURCE_FAULTS_MAX 20		     /* remembered per partition */

struct weir_csv_source;

/* Opens @path, checks it is a regular, non-empty file, and reads and checks its header line
 * against @schema (a copy is kept; column names that differ only warn, on stderr).
 * On error writes a message naming @path into @error (@error_length bytes).
 * Ownership: *out is the caller's, freed with weir_csv_source_destroy().
 * Context: cold path, main thread; blocks on the header read.
 * Returns: 0, or -ENOENT (no such file), -EISDIR (a directory), -EINVAL (not a regular file,
 * empty, no or bad header line), -ENOMEM, or another -errno from open/fstat/pread. */
int weir_csv_source_create(struct weir_csv_source **out, const char *path,
			   const struct weir_schema *schema, char *error, size_t error_length);

/* Closes the file and frees the source.  Every partition must be closed before.  NULL is
 * ignored. */
void weir_csv_source_destroy(struct weir_csv_source *source);

/* The source as the worker loop sees it: {vtable, ctx = @source, schema = its copy}.  Valid as
 * long as @source lives. */
struct weir_source weir_csv_source_as_source(struct weir_csv_source *source);

/* Counters over the partitions closed so far (so: the whole file once a run has ended).
 * skipped: malformed lines; line: data lines seen, good and skipped (not the header). */
uint64_t weir_csv_source_skipped_count(const struct weir_csv_source *source);
uint64_t weir_csv_source_line_count(const struct weir_csv_source *source);

/* When lines were skipped (or reads failed), prints to @out:
 *   weir: FILE: skipped 3 malformed lines of 1000000
 *     line 17: field 4 (amount): not a number
 * with up to WEIR_CSV_SOURCE_FAULTS_MAX lines in file order, numbered from 1 in the file (the
 * header is line 1) and fields numbered from 1.  Prints nothing when all lines were good.
 * Context: main thread, after every partition was closed. */
void weir_csv_source_report(const struct weir_csv_source *source, FILE *out);

#endif
