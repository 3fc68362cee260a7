/* A source as the worker loop sees it: a factory of partitions, one per worker.  A worker
 * opens its partition on its own thread (so the partition's memory is on that worker's node)
 * and pulls records from it in bursts; the main thread closes every partition after the
 * workers have stopped.  One indirect call per burst, never per record. */
#ifndef WEIR_CORE_SOURCE_H
#define WEIR_CORE_SOURCE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/checkpoint.h"
#include "core/schema.h"

/* What one pull did besides writing records. */
struct weir_pull_status {
	bool ended;	   /* the partition has nothing more (and stays so) */
	uint32_t consumed; /* input units taken (lines, frames), records or not: progress */
	/* NULL: the records were written at @records.  Else the source lends its own memory
	 * instead (no copy): the records are here, valid until the next pull. */
	const uint8_t *lent;
};

struct weir_source_vtable {
	/* Opens partition @partition of @partition_count for the calling worker; memory comes
	 * from @arena.  Returns: 0, or -errno (the job stops with that error). */
	int (*open)(void *ctx, uint32_t partition, uint32_t partition_count, unsigned arena,
		    void **partition_out);
	/* Writes up to @capacity records of the source's schema, @record_length bytes apart,
	 * at @records, and fills @status: ended once the partition has nothing more, consumed
	 * with the input it took (a malformed line or a frame without hosts is progress too,
	 * though it makes no record).  Never blocks: nothing consumed and not ended means
	 * "nothing ready yet, ask again later".
	 * Context: the worker that opened the partition.  Returns: records written. */
	uint32_t (*pull)(void *partition, uint8_t *records, uint32_t capacity,
			 struct weir_pull_status *status);
	/* Frees a partition.  Context: main thread, after the worker stopped. */
	void (*close)(void *ctx, void *partition);

	/* A replayable source splits its input (see struct weir_split) and implements the three
	 * below; the job then opens one partition per split with open_split instead of open.
	 * Sources without them (live ports) cannot be checkpointed. */
	/* Main thread: the splits of a fresh run with @worker_count workers, split i read by
	 * worker i.  Returns: how many (<= @max), or -errno. */
	int (*plan)(void *ctx, uint32_t worker_count, struct weir_split *splits, uint32_t max);
	/* Opens a reader of @split, number @index of the run's @count (in input order), on the
	 * calling worker.  Returns: 0 or -errno. */
	int (*open_split)(void *ctx, const struct weir_split *split, uint32_t index,
			  uint32_t count, unsigned arena, void **partition_out);
	/* What of @partition's split is left: begin moves past everything pull() returned.
	 * Context: the worker that opened it, between pulls. */
	void (*position)(const void *partition, struct weir_split *split);

	/* A live source made replayable by an ingest log (state/ingest.c) makes what it has
	 * taken durable: seal() right before position() at each barrier (and when its input
	 * ends), tagged @tag (increasing); a worker acknowledges a checkpoint only once
	 * durable() reached its last tag.  NULL for sources that are replayable as they are.
	 * Returns: 0 or -errno (the job stops: taken input could not be made durable). */
	int (*seal)(void *partition, uint64_t tag);
	int (*durable)(void *partition, uint64_t *tag);
	/* The worker that opened @partition, after its loop, before it exits: waits for the
	 * I/O the partition has in flight (io_uring work belongs to the thread that submitted
	 * it, and fails once that thread is gone).  May be NULL. */
	void (*finish)(void *partition);
};

struct weir_source {
	const struct weir_source_vtable *vtable;
	void *ctx;			   /* the source's own object, owned by the job's builder */
	const struct weir_schema *schema;  /* records the source produces; lives as long as ctx */
};

#endif
