/* Two-phase commit of one output file: each epoch's bytes wait in a stage file in the state
 * dir (STATE/output-I/EPOCH.stage); prepare() makes them durable before the coordinator
 * writes manifest n; publish() appends them to the output, fdatasyncs it and deletes the
 * stage files.  Manifest n records the output's length once n is published, so recovery can
 * always bring the output to exactly that length: cut what a later, unrecorded publish added,
 * or finish a publish the crash interrupted from the stage files, which are deleted only
 * after the output is durable.
 *
 * Context: the main thread only. */
#ifndef WEIR_IO_STAGE_H
#define WEIR_IO_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/checkpoint.h"

struct weir_stage;

/* @output_fd stays the caller's; the stage writes it at its own offsets (pwrite).
 * Returns: 0, or -errno with a message in @error. */
int weir_stage_create(struct weir_stage **stage_out, const char *state_dir, uint32_t index,
		      int output_fd, const char *output_path, char *error, size_t error_length);
void weir_stage_destroy(struct weir_stage *stage);

/* Brings the output to what checkpoint @info published (its sink_bytes[index]), finishing
 * an interrupted publish, and deletes stage files of later epochs.  @info NULL: a fresh run;
 * the output becomes @header (may be empty).  Returns: 0 or -errno (see error()). */
int weir_stage_recover(struct weir_stage *stage, const struct weir_checkpoint_info *info,
		       const char *header, size_t header_length);

/* Adds @length bytes to epoch @epoch (> the last published).  Returns: 0 or -errno. */
int weir_stage_append(struct weir_stage *stage, uint64_t epoch, const void *data,
		      size_t length);

/* Makes every epoch <= @epoch durable in its stage file.  *bytes_after: the output's length
 * once they are published.  Returns: 0 or -errno. */
int weir_stage_prepare(struct weir_stage *stage, uint64_t epoch, uint64_t *bytes_after);

/* Appends epochs <= @epoch to the output in order, fdatasyncs it, deletes their stage files.
 * Returns: 0 or -errno. */
int weir_stage_publish(struct weir_stage *stage, uint64_t epoch);

/* The output's published length. */
uint64_t weir_stage_published_length(const struct weir_stage *stage);

/* The first error, in words, or "". */
const char *weir_stage_error(const struct weir_stage *stage);

#endif
