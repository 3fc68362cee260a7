/* A shard's append-only log: segment files of checksummed records, written through io_uring
 * with O_DIRECT in 4 KiB-aligned blocks.
 *
 * Files: DIR/shard-SSSS/NNNNNNNNNNNNNNNN.seg (shard and segment number in decimal, zero padded).
 * A segment is a byte stream of records; each record is a fixed header (length, type, key
 * group, epoch, xxh3-64 checksum over header and payload) followed by its payload.  A record
 * may cross a block boundary.  seal() ends an epoch with a MARKER record, pads the stream to
 * the next 4 KiB boundary with a PAD record, and submits the writes and an fdatasync that
 * waits for them (IOSQE_IO_DRAIN).  Writes never wait for the disk, except when every buffer
 * of the bounded queue is in flight: then append() waits for one (counted in waits).
 *
 * Reading validates every checksum up to the position a manifest names; anything wrong before
 * it is an error naming the file and byte offset.  Bytes after it are a torn tail (the crash
 * case) and are cut off by weir_log_trim().
 *
 * Context: a writer belongs to one worker thread.  Readers and trim run on any one thread. */
#ifndef WEIR_STATE_LOG_H
#define WEIR_STATE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/checkpoint.h"

#define WEIR_LOG_BLOCK_LENGTH 4096u
#define WEIR_LOG_HEADER_LENGTH 32u /* bytes before each record's payload */

enum weir_log_record_type {
	WEIR_LOG_PAD = 0,    /* filler up to a block boundary; skipped */
	WEIR_LOG_STATE = 1,  /* keyed state (see struct weir_state_record) */
	WEIR_LOG_MARKER = 2, /* end of an epoch's records */
};

/* A record as the reader hands it out.  Pointers valid during the callback only. */
struct weir_log_record {
	enum weir_log_record_type type;
	uint64_t epoch;	   /* the epoch being written when it was appended */
	uint64_t segment;  /* where it is, for messages */
	uint64_t offset;   /* of its header, bytes into the segment */
	struct weir_state_record state; /* WEIR_LOG_STATE only */
};

struct weir_log_writer_options {
	const char *dir;	  /* the state dir; the shard's folder is made inside it */
	uint32_t shard;
	unsigned arena;		  /* where the buffers come from (core/mem.h) */
	uint32_t buffer_length;	  /* bytes per buffer, a multiple of 4 KiB (0: 1 MiB) */
	uint32_t buffer_count;	  /* the bounded queue: buffers in flight at most (0: 4) */
	uint64_t segment_length;  /* a new segment starts after a seal past this (0: 64 MiB) */
};

struct weir_log_writer_stats {
	uint64_t bytes_written;	  /* payload + headers + padding submitted */
	uint64_t writes;	  /* write SQEs */
	uint64_t syncs;		  /* fdatasync SQEs */
	uint64_t waits;		  /* appends that waited for a free buffer */
	uint64_t segments;	  /* segments this writer started */
};

struct weir_log_writer;

/* Creates DIR/shard-SSSS/ if needed and a new segment numbered one past the highest one
 * there (so a restarted shard never writes over bytes a manifest may name).
 * Returns: 0, or -errno with a message in @error. */
int weir_log_writer_open(struct weir_log_writer **writer_out,
			 const struct weir_log_writer_options *options, char *error,
			 size_t error_length);

/* Appends a STATE record for epoch @epoch.  The key and value are copied.
 * Returns: 0, -EINVAL (a record larger than a buffer), or the -errno of an earlier failed
 * write (sticky). */
int weir_log_append(struct weir_log_writer *writer, uint64_t epoch,
		    const struct weir_state_record *record);

/* Ends epoch @epoch: MARKER, PAD to the block boundary, submit writes + fdatasync.
 * Returns: 0 or -errno (sticky). */
int weir_log_seal(struct weir_log_writer *writer, uint64_t epoch);

/* Reaps completions without blocking.  *durable_epoch: the newest sealed epoch whose
 * fdatasync completed (0 if none), *position: the log just past that epoch's padding, with
 * first_segment the current snapshot segment.  Returns: 0, or -errno when a write or fsync
 * failed (sticky; the data must not be trusted). */
int weir_log_poll(struct weir_log_writer *writer, uint64_t *durable_epoch,
		  struct weir_log_position *position);

/* Starts a new segment at the next append and makes it the replay start (first_segment) of
 * the positions that follow: the caller then writes a full snapshot of its state.  Only
 * between seal and the next append. */
int weir_log_start_snapshot(struct weir_log_writer *writer);

/* On a writer just opened: makes its log continue the chain @from names (a recovered
 * checkpoint's log of the same shard, whose torn tail weir_log_trim cut), so positions keep
 * @from's first_segment and no new snapshot is needed.  Returns: 0, -ESPIPE (the writer's
 * segment does not follow @from's last), -ENOENT (a segment of @from is missing). */
int weir_log_writer_continue(struct weir_log_writer *writer,
			     const struct weir_log_position *from);

/* Bytes written since the current snapshot segment began (what a replay would read). */
uint64_t weir_log_replay_length(const struct weir_log_writer *writer);

/* Where the next appended record's header will be written: *segment and *offset (bytes into
 * it).  Only right after open (the fresh segment, offset 0) or between a seal and the next
 * append (asserted): then the offset is on a 4 KiB boundary, past the seal's padding.  When
 * the next append starts a new segment (the seal passed segment_length, or start_snapshot()
 * was called), that is the new segment's number and offset 0, though its file does not exist
 * yet.  A position to give weir_log_read_tail(): the records appended after it. */
void weir_log_writer_position(const struct weir_log_writer *writer, uint64_t *segment,
			      uint64_t *offset);

void weir_log_writer_stats(const struct weir_log_writer *writer,
			   struct weir_log_writer_stats *stats);

/* Waits for every write in flight (bounded), closes the files, frees. */
void weir_log_writer_close(struct weir_log_writer *writer);

/* Calls @fn for every record of shard @shard from position->first_segment up to
 * position->end_offset of position->end_segment, in order (PAD records are skipped).
 * Returns: 0, -EBADMSG (a bad checksum, a header that does not parse, or the named end not
 * on a record boundary: @error names the file and offset), -ENOENT (a segment missing),
 * another -errno from reading, or what @fn returned if not 0. */
typedef int weir_log_visit_fn(void *ctx, const struct weir_log_record *record);
int weir_log_replay(const char *dir, uint32_t shard, const struct weir_log_position *position,
		    weir_log_visit_fn *fn, void *ctx, char *error, size_t error_length);

/* Calls @fn for every STATE and MARKER record of shard @shard from byte @offset of segment
 * @segment (a record boundary, as weir_log_writer_position() reports one) through each next
 * segment in number order, up to the end of the last one, or up to the first record that does
 * not validate (a bad format byte, type or checksum, a header or a length past the file's
 * end, zeros): the torn tail of a writer that crashed, which ends the log and is not an error.
 * A missing segment number also ends the log (numbers have no gaps; the segments after a gap
 * are not part of it).  Nothing is changed on disk (see weir_log_trim()).
 * On 0: *end_segment and *end_offset say where the valid records end (the start of the first
 * invalid one, or the end of the last segment); *dropped_bytes counts the bytes after that in
 * its segment plus every byte of the segments after it (up to a gap), not read.  When segment
 * @segment is missing, @offset is 0 and no segment numbered at or above it exists, the log is
 * empty: 0 with the end at (@segment, 0) and nothing dropped.
 * Returns: 0, -ENOENT (segment @segment missing otherwise), -EBADMSG (@offset past the end of
 * its file), -EINVAL (@segment 0), another -errno from reading (@error names the file), or what
 * @fn returned if not 0 (the records before it were visited).  The out-parameters are set on 0
 * only. */
int weir_log_read_tail(const char *dir, uint32_t shard, uint64_t segment, uint64_t offset,
		       weir_log_visit_fn *fn, void *ctx, uint64_t *end_segment,
		       uint64_t *end_offset, uint64_t *dropped_bytes, char *error,
		       size_t error_length);

/* Cuts shard @shard's torn tail: truncates end_segment to end_offset and deletes segments
 * numbered above it.  Returns: 0 or -errno. */
int weir_log_trim(const char *dir, uint32_t shard, const struct weir_log_position *position,
		  char *error, size_t error_length);

/* Deletes shard @shard's segments numbered below @keep_from (all of them when @keep_from is
 * UINT64_MAX, and the shard folder too).  Returns: segments deleted, or -errno. */
int weir_log_remove_before(const char *dir, uint32_t shard, uint64_t keep_from);

/* The shard numbers that have a folder in @dir, ascending.  Returns: how many (at most @max),
 * or -errno. */
int weir_log_shards(const char *dir, uint32_t *shards, uint32_t max);

#endif
