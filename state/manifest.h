/* Checkpoint manifests: DIR/manifest-NNNNNNNNNNNNNNNNNNNN (the epoch, 20 digits), one small
 * binary file per completed checkpoint holding a struct weir_checkpoint_info, versioned, with
 * an xxh3-64 checksum over everything before it.  A manifest exists only once complete:
 * it is written to DIR/manifest.tmp, fsynced, renamed into place, and the directory fsynced.
 *
 * Context: the main thread (the coordinator, recovery, `weir checkpoints`). */
#ifndef WEIR_STATE_MANIFEST_H
#define WEIR_STATE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/checkpoint.h"

#define WEIR_MANIFESTS_MAX 1024u

/* Writes manifest @info->epoch durably, then deletes the oldest manifests so that @keep
 * (>= 1) remain.  Returns: 0, or -errno with a message naming the file in @error. */
int weir_manifest_write(const char *dir, const struct weir_checkpoint_info *info, uint32_t keep,
			char *error, size_t error_length);

/* Reads and checks manifest file @path.  Returns: 0, -EBADMSG (wrong magic, version, length
 * or checksum: @error says which), or -errno from reading. */
int weir_manifest_read(const char *path, struct weir_checkpoint_info *info, char *error,
		       size_t error_length);

/* The epochs of the manifests in @dir, ascending (by file name; not read).
 * Returns: how many (at most @max), or -errno. */
int weir_manifest_list(const char *dir, uint64_t *epochs, uint32_t max);

/* The path of manifest @epoch in @dir. */
void weir_manifest_path(const char *dir, uint64_t epoch, char *path, size_t path_length);

/* Loads the newest manifest that reads back whole.  A newer one that does not is reported on
 * stderr (file and reason) and skipped.  Returns: 1 (found), 0 (no manifest at all), or
 * -EBADMSG when manifests exist but none is readable (never a silent start from empty). */
int weir_manifest_newest(const char *dir, struct weir_checkpoint_info *info, char *error,
			 size_t error_length);

#endif
