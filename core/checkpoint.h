/* Checkpoints as core sees them.  The coordinator (core/job.c, main thread) asks for barrier n
 * every checkpoint interval; each worker's source side records where its splits are and sends
 * barrier n on every outgoing ring; each worker's keyed side aligns n over its inputs, hands
 * the state that changed to its shard of the store, tells its sinks that epoch n's rows are
 * complete, seals its log and acknowledges once the log is durable.  The coordinator then has
 * the sinks stage epoch n durably, writes manifest n through the store, and lets the sinks
 * publish.  What is durable where is the store's business (state/store.c); this header is the
 * contract between the pieces, so core depends on no other module.
 *
 * Exactly-once rests on three facts: barriers travel in band, after every record routed before
 * them; a source sends its current watermark to every peer right before its barrier, so every
 * shard's clock at barrier n is the same (the minimum over the sources); and a manifest names
 * only log bytes that were durable and output that was staged durably. */
#ifndef WEIR_CORE_CHECKPOINT_H
#define WEIR_CORE_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/topo.h"

struct weir_source;

#define WEIR_CHECKPOINT_SPLITS_MAX 256u
#define WEIR_SPLIT_LIVE UINT64_MAX /* split.end of live input: begin is an ingest position */

/* A replayable piece of a source's input.  CSV: bytes [begin, end) of the file, begin at a
 * line start.  Generator: events begin, begin + step, ... below end.  A fresh run has one
 * split per worker; a checkpoint records each split's remainder; a restart hands split i to
 * worker i % workers, so any worker count can continue any checkpoint. */
struct weir_split {
	uint64_t begin;
	uint64_t end;
	uint64_t step;
	int64_t max_seen; /* largest event time its reader had seen, WEIR_WATERMARK_NONE */
};

/* One shard's log at a checkpoint: replay segments first_segment .. end_segment of shard
 * `shard`, the last one only up to end_offset.  Bytes past that are a torn tail. */
struct weir_log_position {
	uint64_t first_segment; /* the snapshot segment this shard's replay starts at */
	uint64_t end_segment;
	uint64_t end_offset; /* bytes */
};

struct weir_checkpoint_shard {
	struct weir_log_position log;
	int64_t watermark;	/* the shard's event-time clock at the barrier */
	uint64_t state_bytes;	/* live keyed state when the barrier passed */
	uint64_t appended_bytes; /* log bytes this checkpoint added (delta or snapshot) */
	bool snapshot;		/* this checkpoint started a new snapshot segment */
};

/* What manifest n holds. */
struct weir_checkpoint_info {
	uint64_t epoch;		  /* n, from 1 */
	uint64_t created_unix_ms; /* wall clock when the manifest was written */
	uint64_t duration_ns;	  /* from trigger to the manifest being durable */
	uint64_t seed;		  /* the job's key-group hash seed */
	uint32_t key_groups;
	uint32_t worker_count; /* shards, each with a log */
	bool finished;	       /* the input ended: the output is complete, nothing to replay */
	uint64_t events_in;    /* events the sources had produced at the barrier */
	uint32_t split_count;
	struct weir_split splits[WEIR_CHECKPOINT_SPLITS_MAX];
	struct weir_checkpoint_shard shards[WEIR_WORKERS_MAX];
	uint64_t sink_bytes[2]; /* length of each sink's output once epoch n is published */
};

/* ---- the store: logs and manifests (state/store.c) ---- */

/* One replayed record of keyed state.  Pointers are valid during the callback only. */
struct weir_state_record {
	uint16_t type;	    /* the operator's own record type */
	uint32_t key_group;
	const uint8_t *key; /* as the operator gave it */
	uint32_t key_length;
	const uint8_t *value;
	uint32_t value_length;
};

typedef int weir_state_replay_fn(void *ctx, const struct weir_state_record *record);

struct weir_store_vtable {
	/* Main thread, before the workers start: loads the newest complete manifest, skipping
	 * (and saying so on stderr) damaged newer ones, trims torn log tails, and removes
	 * segments nothing references.  Returns: 1 (found), 0 (a fresh state dir), -errno
	 * (message in @error: a state dir that has manifests but none readable is an error,
	 * never a silent start from empty state). */
	int (*recover)(void *ctx, struct weir_checkpoint_info *info, char *error,
		       size_t error_length);
	/* Worker thread: opens its shard's log; appends go to a new segment after any that
	 * exist.  @continue_from: the recovered checkpoint's log of this same shard, which the
	 * new segments extend (so no new snapshot is needed), or NULL.
	 * Returns: 0 or -errno. */
	int (*shard_open)(void *ctx, uint32_t shard, unsigned arena,
			  const struct weir_log_position *continue_from, void **shard_out,
			  char *error, size_t error_length);
	/* Worker: the next appends start a new snapshot segment (the operator then writes all
	 * its live state).  True when the log has outgrown the live state enough to compact,
	 * or @force. */
	bool (*snapshot_begin)(void *shard, uint64_t live_bytes, bool force);
	/* Worker: appends a state record.  May wait for a log buffer (a bounded queue; the
	 * waits are counted).  Returns: 0, or -errno (the job stops). */
	int (*append)(void *shard, uint64_t epoch, const struct weir_state_record *record);
	/* Worker: ends epoch @epoch's records with a marker and submits the writes and an
	 * fdatasync after them.  Returns: 0 or -errno. */
	int (*seal)(void *shard, uint64_t epoch);
	/* Worker: reaps completions, never blocking.  *durable_epoch: newest sealed epoch that
	 * is durable, *position: the log up to its marker.  Returns: 0, or -errno when a write
	 * or an fdatasync failed (never retried as if the data were safe). */
	int (*poll)(void *shard, uint64_t *durable_epoch, struct weir_log_position *position,
		    uint64_t *appended_bytes);
	/* The shard's worker, after its loop (io_uring work belongs to the thread that
	 * submitted it): waits for what is in flight, frees. */
	void (*shard_close)(void *ctx, void *shard);
	/* Worker, before its loop: replays every state record of checkpoint @info whose key
	 * group is in [group_begin, group_end), each shard's log in order.  Every checksum is
	 * checked; a bad one is an error naming the file and offset.  Returns: 0 or -errno. */
	int (*replay)(void *ctx, const struct weir_checkpoint_info *info, uint32_t group_begin,
		      uint32_t group_end, weir_state_replay_fn *fn, void *fn_ctx, char *error,
		      size_t error_length);
	/* Main, before the workers start: wraps a live source (one without splits) so that what
	 * it takes goes through an ingest log and can be replayed.  Returns: 0 or -errno. */
	int (*wrap_live)(void *ctx, struct weir_source *source, uint32_t worker_count,
			 uint32_t pull_records, const struct weir_checkpoint_info *recovered,
			 char *error, size_t error_length);
	/* Main: writes manifest @info durably (write, fsync, rename, fsync the directory),
	 * keeps the newest `checkpoints_kept`, deletes segments no kept manifest needs.
	 * Returns: 0 or -errno. */
	int (*commit)(void *ctx, const struct weir_checkpoint_info *info, char *error,
		      size_t error_length);
};

/* ---- what keyed operators and sinks add ---- */

/* Where a keyed operator writes its state at a barrier.  Context: its worker. */
struct weir_state_writer {
	const struct weir_store_vtable *store;
	void *shard;
	uint64_t epoch;	 /* the checkpoint being written */
	uint64_t seed;	 /* the job's key-group hash seed */
	uint32_t key_groups;
	uint32_t group_first; /* the first key group this shard owns */
	int error;	 /* first -errno an append returned; later puts do nothing */
	uint64_t records; /* appended this checkpoint */
};

/* Appends one state record.  The key group is that of the first @group_key_length bytes of
 * @key (the shuffle's key encoding; an operator may append more to its own key).
 * Returns: 0, or -errno (also kept in writer->error). */
int weir_state_put(struct weir_state_writer *writer, uint16_t type, const void *key,
		   uint32_t key_length, uint32_t group_key_length, const void *value,
		   uint32_t value_length);

/* Like weir_state_put, for a record of the shard itself rather than of a key (an operator's
 * clock, say): it goes under the shard's first key group, so a restart with the same shards
 * hands it back to the same shard, and one with other shards to the owner of that group. */
int weir_state_put_shard(struct weir_state_writer *writer, uint16_t type, const void *key,
			 uint32_t key_length, const void *value, uint32_t value_length);

#endif
