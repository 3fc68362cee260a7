/* The durable writes of the checkpoint files written with plain syscalls (staged output,
 * manifests): every write and fsync asks core/fault first, so tests can make any of them fail
 * or come up short.  (The shard logs go through io_uring: state/log.c.)
 *
 * Context: any thread; they block (callers are on the main thread). */
#ifndef WEIR_IO_DURABLE_H
#define WEIR_IO_DURABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes all @length bytes of @data at @offset (pwrite, short writes continued).
 * Returns: 0 or -errno (-EIO for a write that takes nothing). */
int weir_durable_write(int fd, const void *data, size_t length, uint64_t offset);

/* fdatasync (@data_only) or fsync of @fd.  Returns: 0 or -errno; never retried: after a
 * failed fsync the page cache may say anything. */
int weir_durable_fsync(int fd, bool data_only);

/* Makes the names in directory @path durable.  Returns: 0 or -errno. */
int weir_durable_sync_dir(const char *path);

#endif
