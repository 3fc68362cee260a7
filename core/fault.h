/* Fault injection, for the crash and I/O-error tests.  Off unless the environment variable
 * WEIR_FAULT is set when the process starts; then it holds comma-separated rules:
 *
 *   kill:POINT[@N]    SIGKILL this process the N-th time (default 1st) POINT is passed
 *   write-eio[@N]     the N-th durable write (log block, staged output) fails with EIO
 *   fsync-eio[@N]     the N-th fsync/fdatasync fails with EIO
 *   enospc[@N]        the N-th durable write fails with ENOSPC
 *   short-write[@N]   the N-th durable write writes only part of its bytes
 *
 * e.g. WEIR_FAULT=kill:checkpoint.after-manifest@3,fsync-eio@10.  Each rule fires once.
 * Points are named where they are passed (weir_fault_point); the names are listed in README.
 * Context: any thread; counters are atomic.  Cost when off: one relaxed load. */
#ifndef WEIR_CORE_FAULT_H
#define WEIR_CORE_FAULT_H

#include <stdbool.h>
#include <stdint.h>

enum weir_fault_io {
	WEIR_FAULT_IO_WRITE, /* a durable write is about to be issued */
	WEIR_FAULT_IO_FSYNC, /* an fsync/fdatasync is about to be issued */
};

/* Whether WEIR_FAULT holds any rule (parsed once, on first use). */
bool weir_fault_enabled(void);

/* Passes kill point @name: kills the process (SIGKILL, no cleanup, like a power cut as far as
 * the page cache allows) if a rule says so. */
void weir_fault_point(const char *name);

/* Asks whether the I/O about to be issued must fail.  Returns: 0 (go on), -EIO, -ENOSPC, or,
 * for WEIR_FAULT_IO_WRITE with short-write, 1 (write only part of the bytes). */
int weir_fault_io(enum weir_fault_io kind);

/* A rule in WEIR_FAULT that could not be parsed, or NULL: the CLI refuses to run with one. */
const char *weir_fault_config_error(void);

#endif
