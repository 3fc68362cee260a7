/* The ingest log: a live source (one that cannot seek, such as a DPDK port) made replayable
 * by appending what it takes to a per-partition log before the job sees it (state/ingest.c
 * explains the guarantee).  The checkpoint store (state/store.c) wraps a job's live source
 * with it when the job has a state dir.
 *
 * Context: create/destroy on the main thread; the wrapped source's partitions on workers. */
#ifndef WEIR_STATE_INGEST_H
#define WEIR_STATE_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/checkpoint.h"
#include "core/source.h"

#define WEIR_INGEST_BUFFER_LENGTH (1u << 20) /* bytes per log buffer: the loss window */

struct weir_ingest;

/* Replaces *@source (a live source: open, pull and close only) by one that logs every burst
 * into STATE_DIR/ingest and, when @recovered names a checkpoint, first hands out again what
 * was taken after it.  @burst_events_max: the most events a pull asks for.  The inner
 * source stays owned by whoever owned it.  Returns: 0, -EINVAL (@recovered was taken with
 * another worker count: message in @error), -ENOMEM, or -errno making the directory. */
int weir_ingest_create(struct weir_ingest **ingest_out, const char *state_dir,
		       struct weir_source *source, uint32_t worker_count, uint32_t burst_events_max,
		       const struct weir_checkpoint_info *recovered, char *error,
		       size_t error_length);
void weir_ingest_destroy(struct weir_ingest *ingest);

/* A log position as it is kept in a split's begin. */
uint64_t weir_ingest_position_encode(uint64_t segment, uint64_t offset);
void weir_ingest_position_decode(uint64_t position, uint64_t *segment, uint64_t *offset);

#endif
