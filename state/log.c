/* A shard's append-only log (see state/log.h for the contract).
 *
 * On disk, a segment is a stream of records, each a 32-byte header and its payload, in host
 * byte order (little-endian: the only order weir builds for):
 *
 *   byte  0  u32 length      payload bytes after the header
 *   byte  4  u8  type        enum weir_log_record_type (PAD, STATE, MARKER)
 *   byte  5  u8  format      LOG_FORMAT: "a weir log record, format 1"; never 0
 *   byte  6  u16 state_type  STATE: the operator's own record type; else 0
 *   byte  8  u32 key_group   STATE: its key group; else 0
 *   byte 12  u32 key_length  STATE: the payload is key_length key bytes, then the value
 *                            (length - key_length bytes); else 0
 *   byte 16  u64 epoch       STATE: the epoch being written; MARKER: the epoch it ends
 *   byte 24  u64 checksum    XXH3_64bits of the header (this field zero) and the payload
 *
 * A MARKER has no payload; a PAD's payload is zeros.  Zeroed or stale bytes never parse: the
 * format byte is checked before anything else, then the type, the lengths and the checksum.
 * Every seal ends on a 4 KiB boundary, so a segment written by O_DIRECT has no gaps, and the
 * bytes of an epoch are written before its fdatasync is issued (IOSQE_IO_DRAIN).
 *
 * The writer keeps buffer_count buffers of buffer_length bytes.  One is filled at a time;
 * a full one (or the partial one a seal ends) is written at its file offset and the next
 * free one is filled; when none is free, the writer waits for a write to complete. */
#include "state/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/assert.h"
#include "core/fault.h"
#include "core/mem.h"
#include "core/message.h"

#define LOG_FORMAT 0xB1u		     /* header byte 5; change it when the layout changes */
#define LOG_HEADER_LENGTH WEIR_LOG_HEADER_LENGTH /* bytes */
#define LOG_BLOCK WEIR_LOG_BLOCK_LENGTH	     /* O_DIRECT unit: offsets and lengths */
#define LOG_BUFFER_LENGTH_DEFAULT (1u << 20) /* bytes */
#define LOG_BUFFER_COUNT_DEFAULT 4u
#define LOG_BUFFER_COUNT_MAX 4096u		     /* keeps the ring under io_uring's limit */
#define LOG_SEGMENT_LENGTH_DEFAULT (64ull << 20) /* bytes */
#define LOG_SYNCS_MAX 16u	     /* fdatasyncs in flight at most (seals not yet durable) */
#define LOG_RETIRED_MAX 8u	     /* rotated-away segments whose fd is still needed */
#define LOG_RETRY_MAX 8u	     /* -EINTR/-EAGAIN resubmits of one request */
#define LOG_SUBMIT_RETRY_MAX 1000u   /* calls in a row whose io_uring_submit was refused */
#define LOG_WAIT_ROUNDS_MAX 100000u  /* completions one wait for a free slot may reap */
#define LOG_DRAIN_ROUNDS 30u	     /* close: waits of LOG_DRAIN_WAIT_S at most */
#define LOG_DRAIN_WAIT_S 1
#define LOG_READ_LENGTH (1u << 20)   /* bytes per replay read at least */
#define LOG_TAG_WRITE 1ull	     /* user_data: tag << 32 | buffer or sync index */
#define LOG_TAG_SYNC 2ull

WEIR_STATIC_ASSERT(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the log is written as-is");
WEIR_STATIC_ASSERT(LOG_BLOCK == 4096, "O_DIRECT blocks of 4 KiB");

struct log_header {
	uint32_t length;     /* payload bytes */
	uint8_t type;	     /* enum weir_log_record_type */
	uint8_t format;	     /* LOG_FORMAT */
	uint16_t state_type; /* STATE: struct weir_state_record.type */
	uint32_t key_group;
	uint32_t key_length; /* bytes, at the start of the payload */
	uint64_t epoch;
	uint64_t checksum; /* XXH3_64bits(header with checksum 0, payload) */
};

WEIR_STATIC_ASSERT(sizeof(struct log_header) == LOG_HEADER_LENGTH, "no padding in the header");
WEIR_STATIC_ASSERT(offsetof(struct log_header, checksum) == 24, "checksum is the last field");
WEIR_STATIC_ASSERT(LOG_BLOCK % LOG_HEADER_LENGTH == 0, "headers tile a block");

enum buffer_state {
	BUFFER_FREE,
	BUFFER_FILLING,	 /* writer->current: bytes [0, length) are records */
	BUFFER_IN_FLIGHT, /* a write SQE is prepared or submitted; the kernel reads it */
};

struct log_buffer {
	uint8_t *memory;      /* buffer_length bytes, 4 KiB aligned */
	int fd;		      /* the segment its bytes belong to */
	uint64_t file_offset; /* of memory[0] in that segment, 4 KiB aligned */
	uint32_t length;      /* bytes filled; written out once no longer FILLING */
	uint32_t written;     /* bytes the kernel has written so far, a multiple of 4 KiB */
	uint32_t retry_count; /* -EINTR/-EAGAIN resubmits */
	enum buffer_state state;
};

/* An fdatasync issued by a seal. */
struct log_sync {
	bool pending;	/* the slot is in use */
	bool stale;	/* a write issued before it was resubmitted after it: sync again */
	int fd;		/* the segment it syncs */
	uint32_t retry_count;
	uint64_t epoch;
	struct weir_log_position position; /* the log just past the epoch's padding */
};

struct weir_log_writer {
	struct io_uring ring;
	unsigned arena;
	uint32_t shard;
	uint32_t buffer_length; /* bytes */
	uint32_t buffer_count;
	uint64_t segment_length; /* bytes; rotate after a seal past it */
	int fd;			 /* the current segment, O_WRONLY (O_DIRECT where supported) */
	uint64_t segment;	 /* its number */
	uint64_t segment_offset; /* bytes of the stream in it so far (filled, not all written) */
	uint64_t first_segment;	 /* the snapshot segment positions name */
	uint64_t replay_length;	 /* bytes in segments first_segment..segment */
	bool rotate_pending;	 /* the next record starts a new segment */
	bool snapshot_pending;	 /* ... which also becomes first_segment */
	bool closing;		 /* close(): reap only, resubmit nothing */
	bool unsealed;		 /* records were appended since the last seal */
	bool sqes_pending;	 /* prepared SQEs io_uring_submit has not accepted yet */
	uint32_t submit_retry_count;
	int error;		       /* sticky: the first failure, or 0 */
	struct log_buffer *current;    /* FILLING, or NULL */
	uint32_t next_buffer;	       /* where the search for a free buffer starts */
	uint32_t in_flight_count;      /* writes and syncs with a CQE to come */
	uint64_t durable_epoch;	       /* newest epoch whose fdatasync completed, or 0 */
	struct weir_log_position durable_position;
	struct weir_log_writer_stats stats;
	uint8_t *memory;	       /* buffer_count * buffer_length bytes */
	struct log_buffer *buffers;    /* buffer_count */
	struct log_sync syncs[LOG_SYNCS_MAX];
	uint32_t retired_count;
	int retired[LOG_RETIRED_MAX]; /* fds of earlier segments, closed once nothing uses them */
	char shard_path[PATH_MAX];     /* DIR/shard-SSSS */
};

/* PAD payloads: at most LOG_BLOCK - 1 bytes (see seal_pad). */
static const uint8_t log_zeros[LOG_BLOCK];

/* ---- names and directories ---- */

static int shard_path_make(char *path, size_t length, const char *dir, uint32_t shard)
{
	int n = snprintf(path, length, "%s/shard-%04u", dir, shard);
	return n < 0 || (size_t)n >= length ? -ENAMETOOLONG : 0;
}

static int segment_path_make(char *path, size_t length, const char *shard_path, uint64_t number)
{
	int n = snprintf(path, length, "%s/%016llu.seg", shard_path, (unsigned long long)number);
	return n < 0 || (size_t)n >= length ? -ENAMETOOLONG : 0;
}

/* Whether @name is a segment's ("NNNNNNNNNNNNNNNN.seg", 16 digits); sets *number. */
static bool segment_name_parse(const char *name, uint64_t *number)
{
	uint64_t value = 0;
	for (int i = 0; i < 16; i++) {
		if (name[i] < '0' || name[i] > '9')
			return false;
		value = value * 10 + (uint64_t)(name[i] - '0');
	}
	if (strcmp(name + 16, ".seg") != 0 || value == 0)
		return false;
	*number = value;
	return true;
}

/* Makes a directory entry durable.  Returns: 0 or -errno. */
static int dir_sync(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return rc;
}

/* The highest segment number in @shard_path (0 if none).  Returns: 0 or -errno. */
static int segments_highest(const char *shard_path, uint64_t *highest)
{
	DIR *dir = opendir(shard_path);
	if (dir == NULL)
		return -errno;
	*highest = 0;
	struct dirent *entry;
	uint64_t number = 0;
	while ((entry = readdir(dir)) != NULL) {
		if (segment_name_parse(entry->d_name, &number) && number > *highest)
			*highest = number;
	}
	closedir(dir);
	return 0;
}

/* Unlinks the segments of @shard_path numbered in [begin, end).
 * Returns: how many, or -errno (-ENOENT: no such folder). */
static int segments_remove(const char *shard_path, uint64_t begin, uint64_t end)
{
	WEIR_ASSERT(begin <= end);
	DIR *dir = opendir(shard_path);
	if (dir == NULL)
		return -errno;
	int removed = 0;
	int rc = 0;
	struct dirent *entry;
	uint64_t number = 0;
	while ((entry = readdir(dir)) != NULL) {
		if (!segment_name_parse(entry->d_name, &number) || number < begin || number >= end)
			continue;
		if (unlinkat(dirfd(dir), entry->d_name, 0) != 0 && errno != ENOENT) {
			rc = -errno;
			break;
		}
		removed++;
	}
	closedir(dir);
	WEIR_ASSERT(removed >= 0);
	return rc < 0 ? rc : removed;
}

/* ---- the writer: submitting and reaping ---- */

static int writer_fail(struct weir_log_writer *writer, int rc)
{
	WEIR_ASSERT(rc < 0);
	if (writer->error == 0)
		writer->error = rc;
	return writer->error;
}

static struct io_uring_sqe *writer_sqe(struct weir_log_writer *writer, uint64_t tag,
				       uint32_t index)
{
	/* The ring has a slot for every buffer and every sync, each holding one SQE at most. */
	struct io_uring_sqe *sqe = io_uring_get_sqe(&writer->ring);
	WEIR_VERIFY(sqe != NULL);
	io_uring_sqe_set_data64(sqe, tag << 32 | index);
	writer->in_flight_count++;
	writer->sqes_pending = true;
	return sqe;
}

/* Prepares the write of what is left of @buffer, unless a fault rule says otherwise. */
static void buffer_submit(struct weir_log_writer *writer, struct log_buffer *buffer)
{
	WEIR_ASSERT(buffer->written < buffer->length);
	WEIR_ASSERT(buffer->written % LOG_BLOCK == 0 && buffer->length % LOG_BLOCK == 0);
	uint32_t length = buffer->length - buffer->written;
	int fault = weir_fault_io(WEIR_FAULT_IO_WRITE);
	if (fault == 1 && length == LOG_BLOCK)
		fault = -EIO; /* a short write of one block cannot be split: it failed */
	if (fault < 0) {
		/* As if the write had completed with that error. */
		buffer->state = BUFFER_FREE;
		writer_fail(writer, fault);
		return;
	}
	if (fault == 1)
		length = length / 2 / LOG_BLOCK * LOG_BLOCK; /* >= one block: length >= two */
	uint32_t index = (uint32_t)(buffer - writer->buffers);
	struct io_uring_sqe *sqe = writer_sqe(writer, LOG_TAG_WRITE, index);
	io_uring_prep_write(sqe, buffer->fd, buffer->memory + buffer->written, length,
			    buffer->file_offset + buffer->written);
	buffer->state = BUFFER_IN_FLIGHT;
	writer->stats.writes++;
}

/* Writes out the current buffer: its bytes are complete (full, or a seal padded them). */
static void buffer_finish(struct weir_log_writer *writer)
{
	struct log_buffer *buffer = writer->current;
	WEIR_ASSERT(buffer != NULL && buffer->state == BUFFER_FILLING);
	WEIR_ASSERT(buffer->length > 0 && buffer->length % LOG_BLOCK == 0);
	writer->current = NULL;
	writer->stats.bytes_written += buffer->length;
	buffer_submit(writer, buffer);
}

/* Prepares the fdatasync of sync slot @index; it starts after every earlier SQE completed. */
static void sync_submit(struct weir_log_writer *writer, uint32_t index)
{
	struct log_sync *sync = &writer->syncs[index];
	WEIR_ASSERT(sync->pending);
	sync->stale = false;
	int fault = weir_fault_io(WEIR_FAULT_IO_FSYNC);
	if (fault < 0) {
		writer_fail(writer, fault); /* as if the fdatasync had failed */
		sync->pending = false;
		return;
	}
	struct io_uring_sqe *sqe = writer_sqe(writer, LOG_TAG_SYNC, index);
	io_uring_prep_fsync(sqe, sync->fd, IORING_FSYNC_DATASYNC);
	io_uring_sqe_set_flags(sqe, IOSQE_IO_DRAIN);
	writer->stats.syncs++;
}

/* Whether a request in flight (or a sync a fault left pending) still names @fd.  A retired
 * segment's fd stays open until then: an SQE resolves its fd only when it is issued, and a
 * closed number may be reused by the next open. */
static bool fd_in_use(const struct weir_log_writer *writer, int fd)
{
	for (uint32_t i = 0; i < writer->buffer_count; i++) {
		const struct log_buffer *buffer = &writer->buffers[i];
		if (buffer->state != BUFFER_FREE && buffer->fd == fd)
			return true;
	}
	for (uint32_t i = 0; i < LOG_SYNCS_MAX; i++) {
		if (writer->syncs[i].pending && writer->syncs[i].fd == fd)
			return true;
	}
	return false;
}

/* Closes the retired fds nothing uses any more. */
static void retired_collect(struct weir_log_writer *writer)
{
	for (uint32_t i = 0; i < writer->retired_count;) {
		if (fd_in_use(writer, writer->retired[i])) {
			i++;
			continue;
		}
		close(writer->retired[i]);
		writer->retired[i] = writer->retired[--writer->retired_count];
	}
	WEIR_ASSERT(writer->retired_count <= LOG_RETIRED_MAX);
}

/* Every pending sync must be issued again: a write it was meant to cover is not done. */
static void syncs_mark_stale(struct weir_log_writer *writer)
{
	for (uint32_t i = 0; i < LOG_SYNCS_MAX; i++)
		writer->syncs[i].stale |= writer->syncs[i].pending;
}

/* Classifies a write's CQE: done, the rest of a short write, a bounded retry, or a failure. */
static void write_complete(struct weir_log_writer *writer, struct log_buffer *buffer, int res)
{
	WEIR_ASSERT(buffer->state == BUFFER_IN_FLIGHT);
	uint32_t left = buffer->length - buffer->written;
	WEIR_VERIFY(res <= (int64_t)left);
	buffer->state = BUFFER_FREE;
	if (res == (int64_t)left)
		return;
	bool resubmit = !writer->closing && writer->error == 0;
	if (resubmit && (res == -EINTR || res == -EAGAIN) && buffer->retry_count < LOG_RETRY_MAX) {
		buffer->retry_count++;
		buffer_submit(writer, buffer);
		return;
	}
	if (resubmit && res > 0 && res % LOG_BLOCK == 0) {
		/* A short write that stopped on a block boundary: write the rest.  Syncs already
		 * issued ran (or run) before the rest is written, so they do not cover it. */
		buffer->written += (uint32_t)res;
		syncs_mark_stale(writer);
		buffer_submit(writer, buffer);
		return;
	}
	WEIR_VERIFY(res != -EFAULT); /* a bad buffer is our bug */
	writer_fail(writer, res < 0 ? res : -EIO);
}

static void sync_complete(struct weir_log_writer *writer, struct log_sync *sync, int res)
{
	WEIR_ASSERT(sync->pending);
	bool again = !writer->closing && writer->error == 0;
	if (again && (res == -EINTR || res == -EAGAIN) && sync->retry_count < LOG_RETRY_MAX) {
		sync->retry_count++;
		sync_submit(writer, (uint32_t)(sync - writer->syncs));
		return;
	}
	if (res < 0) {
		writer_fail(writer, res); /* never retried as if the data were safe */
		sync->pending = false;
		return;
	}
	if (again && sync->stale) {
		sync_submit(writer, (uint32_t)(sync - writer->syncs));
		return;
	}
	/* Syncs complete in order (each drains the ring), but a stale one issued again may
	 * complete after a newer one, which covered it: never go back. */
	if (res == 0 && writer->error == 0 && sync->epoch > writer->durable_epoch) {
		writer->durable_epoch = sync->epoch;
		writer->durable_position = sync->position;
	}
	sync->pending = false;
}

/* Reaps every completion there is; never waits. */
static void writer_reap(struct weir_log_writer *writer)
{
	struct io_uring_cqe *cqe = NULL;
	uint32_t budget = writer->in_flight_count;
	while (budget-- > 0 && io_uring_peek_cqe(&writer->ring, &cqe) == 0) {
		uint64_t data = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&writer->ring, cqe);
		WEIR_VERIFY(writer->in_flight_count > 0);
		writer->in_flight_count--;
		uint32_t index = (uint32_t)data;
		if (data >> 32 == LOG_TAG_WRITE) {
			WEIR_VERIFY(index < writer->buffer_count);
			write_complete(writer, &writer->buffers[index], res);
		} else {
			WEIR_VERIFY(data >> 32 == LOG_TAG_SYNC && index < LOG_SYNCS_MAX);
			sync_complete(writer, &writer->syncs[index], res);
		}
	}
	if (writer->retired_count > 0)
		retired_collect(writer);
}

/* The one io_uring_submit of a call.  A refused submit keeps its SQEs for the next call. */
static void writer_flush(struct weir_log_writer *writer)
{
	if (!writer->sqes_pending)
		return;
	int rc = io_uring_submit(&writer->ring);
	if (rc >= 0) {
		writer->sqes_pending = io_uring_sq_ready(&writer->ring) > 0;
		writer->submit_retry_count = 0;
		return;
	}
	if ((rc == -EAGAIN || rc == -EBUSY || rc == -EINTR) &&
	    writer->submit_retry_count < LOG_SUBMIT_RETRY_MAX) {
		writer->submit_retry_count++;
		return;
	}
	writer_fail(writer, rc);
}

/* Blocks until at least one completion arrives and reaps it.  Prepared SQEs go in first
 * (the one submit of this call: only a wait submits twice).  Returns: 0 or the sticky error. */
static int writer_wait(struct weir_log_writer *writer)
{
	if (writer->error != 0)
		return writer->error;
	/* Nothing in flight would mean nothing can ever free a slot: our bug. */
	WEIR_VERIFY(writer->in_flight_count > 0);
	struct io_uring_cqe *cqe = NULL;
	int rc;
	if (writer->sqes_pending) {
		rc = io_uring_submit_and_wait(&writer->ring, 1);
		if (rc >= 0)
			writer->sqes_pending = io_uring_sq_ready(&writer->ring) > 0;
	} else {
		rc = io_uring_wait_cqe(&writer->ring, &cqe);
	}
	if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
		return writer_fail(writer, rc);
	writer_reap(writer);
	return writer->error;
}

/* Makes a free buffer the current one, waiting for a write to complete if none is. */
static int buffer_acquire(struct weir_log_writer *writer)
{
	WEIR_ASSERT(writer->current == NULL);
	WEIR_ASSERT(writer->segment_offset % LOG_BLOCK == 0);
	for (uint32_t round = 0; round < LOG_WAIT_ROUNDS_MAX; round++) {
		for (uint32_t i = 0; i < writer->buffer_count; i++) {
			uint32_t index = (writer->next_buffer + i) % writer->buffer_count;
			struct log_buffer *buffer = &writer->buffers[index];
			if (buffer->state != BUFFER_FREE)
				continue;
			*buffer = (struct log_buffer){
				.memory = buffer->memory,
				.fd = writer->fd,
				.file_offset = writer->segment_offset,
				.state = BUFFER_FILLING,
			};
			writer->current = buffer;
			writer->next_buffer = (index + 1) % writer->buffer_count;
			return 0;
		}
		writer->stats.waits += round == 0;
		int rc = writer_wait(writer);
		if (rc < 0)
			return rc;
	}
	return writer_fail(writer, -EIO); /* the kernel stopped completing our writes */
}

/* A free sync slot's index, waiting for a seal's fdatasync to complete if none is.
 * Returns: the index, or the sticky error. */
static int sync_acquire(struct weir_log_writer *writer)
{
	for (uint32_t round = 0; round < LOG_WAIT_ROUNDS_MAX; round++) {
		for (uint32_t i = 0; i < LOG_SYNCS_MAX; i++) {
			if (!writer->syncs[i].pending)
				return (int)i;
		}
		writer->stats.waits += round == 0;
		int rc = writer_wait(writer);
		if (rc < 0)
			return rc;
	}
	return writer_fail(writer, -EIO);
}

/* ---- the writer: segments and records ---- */

/* Creates segment @number, empty, and makes its directory entry durable.
 * Returns: the fd, or -errno with a message in @error. */
static int segment_create(const char *shard_path, uint64_t number, char *error,
			  size_t error_length)
{
	char path[PATH_MAX];
	int rc = segment_path_make(path, sizeof(path), shard_path, number);
	if (rc < 0) {
		weir_message_set(error, error_length, "%s: path too long", shard_path);
		return rc;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_DIRECT | O_CLOEXEC, 0644);
	if (fd < 0 && errno == EINVAL) {
		/* A file system without O_DIRECT (tmpfs before Linux 6.6) may have created the
		 * file before refusing the flag.  The buffers stay aligned and the fdatasyncs
		 * still make the bytes durable; only the page cache is no longer bypassed. */
		fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		struct stat st;
		if (fd >= 0 && (fstat(fd, &st) != 0 || st.st_size != 0)) {
			close(fd);
			fd = -1;
			errno = EEXIST;
		}
	}
	if (fd < 0) {
		rc = -errno;
		weir_message_set(error, error_length, "cannot create %s: %s", path, strerror(-rc));
		return rc;
	}
	rc = dir_sync(shard_path);
	if (rc < 0) {
		weir_message_set(error, error_length, "cannot fsync %s: %s", shard_path,
				 strerror(-rc));
		close(fd);
		unlink(path);
		return rc;
	}
	WEIR_ASSERT(fd >= 0);
	return fd;
}

/* Moves the current segment's fd to the retired ones (closed once nothing in flight names
 * it), waiting for a slot if all are taken.  Returns: 0 or the sticky error. */
static int segment_retire(struct weir_log_writer *writer)
{
	for (uint32_t round = 0; writer->retired_count == LOG_RETIRED_MAX; round++) {
		int rc = round < LOG_WAIT_ROUNDS_MAX ? writer_wait(writer) : -EIO;
		if (rc < 0)
			return writer_fail(writer, rc);
	}
	writer->retired[writer->retired_count++] = writer->fd;
	writer->fd = -1;
	retired_collect(writer);
	return 0;
}

/* Before a record: starts the new segment a seal past segment_length or start_snapshot asked
 * for.  An empty current segment is already new.  Returns: 0 or -errno (sticky). */
static int segment_prepare(struct weir_log_writer *writer)
{
	if (!writer->rotate_pending && !writer->snapshot_pending)
		return 0;
	WEIR_ASSERT(writer->current == NULL);
	if (writer->segment_offset > 0) {
		int rc = segment_retire(writer);
		if (rc < 0)
			return rc;
		int fd = segment_create(writer->shard_path, writer->segment + 1, NULL, 0);
		if (fd < 0)
			return writer_fail(writer, fd);
		writer->fd = fd;
		writer->segment++;
		writer->segment_offset = 0;
		writer->stats.segments++;
	}
	if (writer->snapshot_pending) {
		writer->first_segment = writer->segment;
		writer->replay_length = 0;
	}
	writer->rotate_pending = false;
	writer->snapshot_pending = false;
	WEIR_ASSERT(writer->fd >= 0);
	return 0;
}

/* Copies @length bytes (zeros when @bytes is NULL) into the stream, writing out each buffer
 * it fills.  Returns: 0 or the sticky error. */
static int stream_put(struct weir_log_writer *writer, const void *bytes, size_t length)
{
	const uint8_t *from = bytes;
	while (length > 0) {
		if (writer->current == NULL) {
			int rc = buffer_acquire(writer);
			if (rc < 0)
				return rc;
		}
		struct log_buffer *buffer = writer->current;
		size_t room = writer->buffer_length - buffer->length;
		size_t n = length < room ? length : room;
		if (from != NULL) {
			memcpy(buffer->memory + buffer->length, from, n);
			from += n;
		} else {
			memset(buffer->memory + buffer->length, 0, n);
		}
		buffer->length += (uint32_t)n;
		writer->segment_offset += n;
		writer->replay_length += n;
		length -= n;
		if (buffer->length == writer->buffer_length)
			buffer_finish(writer);
	}
	return writer->error;
}

/* Appends one record: @header (checksum not yet set) and the payload @a then @b. */
static int record_put(struct weir_log_writer *writer, struct log_header *header,
		      const void *a, uint32_t a_length, const void *b, uint32_t b_length)
{
	WEIR_ASSERT(header->length == a_length + b_length);
	WEIR_ASSERT(header->checksum == 0 && header->format == LOG_FORMAT);
	uint32_t total = LOG_HEADER_LENGTH + header->length;
	if (writer->current == NULL) {
		int rc = buffer_acquire(writer);
		if (rc < 0)
			return rc;
	}
	struct log_buffer *buffer = writer->current;
	if (writer->buffer_length - buffer->length >= total) {
		/* Most records fit the current buffer: build them there and hash them once. */
		uint8_t *to = buffer->memory + buffer->length;
		memcpy(to, header, LOG_HEADER_LENGTH);
		if (a_length > 0)
			memcpy(to + LOG_HEADER_LENGTH, a, a_length);
		if (b_length > 0)
			memcpy(to + LOG_HEADER_LENGTH + a_length, b, b_length);
		uint64_t checksum = XXH3_64bits(to, total);
		memcpy(to + offsetof(struct log_header, checksum), &checksum, sizeof(checksum));
		buffer->length += total;
		writer->segment_offset += total;
		writer->replay_length += total;
		if (buffer->length == writer->buffer_length)
			buffer_finish(writer);
		return writer->error;
	}
	XXH3_state_t state;
	XXH3_64bits_reset(&state);
	XXH3_64bits_update(&state, header, LOG_HEADER_LENGTH);
	XXH3_64bits_update(&state, a, a_length);
	XXH3_64bits_update(&state, b, b_length);
	header->checksum = XXH3_64bits_digest(&state);
	int rc = stream_put(writer, header, LOG_HEADER_LENGTH);
	if (rc == 0 && a_length > 0)
		rc = stream_put(writer, a, a_length);
	if (rc == 0 && b_length > 0)
		rc = stream_put(writer, b, b_length);
	return rc;
}

/* ---- the writer: API ---- */

/* Makes DIR and DIR/shard-SSSS; a new shard folder's entry is made durable in DIR. */
static int shard_dir_make(const char *dir, const char *shard_path, char *error,
			  size_t error_length)
{
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		int rc = -errno;
		weir_message_set(error, error_length, "cannot create state dir %s: %s", dir,
				 strerror(-rc));
		return rc;
	}
	if (mkdir(shard_path, 0755) != 0) {
		int rc = -errno;
		if (rc == -EEXIST)
			return 0;
		weir_message_set(error, error_length, "cannot create %s: %s", shard_path,
				 strerror(-rc));
		return rc;
	}
	int rc = dir_sync(dir);
	if (rc < 0)
		weir_message_set(error, error_length, "cannot fsync %s: %s", dir, strerror(-rc));
	return rc;
}

/* Checks and defaults the options into @writer.  Returns: 0 or -EINVAL. */
static int writer_configure(struct weir_log_writer *writer,
			    const struct weir_log_writer_options *options, char *error,
			    size_t error_length)
{
	writer->arena = options->arena;
	writer->shard = options->shard;
	writer->buffer_length = options->buffer_length != 0 ? options->buffer_length
							    : LOG_BUFFER_LENGTH_DEFAULT;
	writer->buffer_count = options->buffer_count != 0 ? options->buffer_count
							  : LOG_BUFFER_COUNT_DEFAULT;
	writer->segment_length = options->segment_length != 0 ? options->segment_length
							      : LOG_SEGMENT_LENGTH_DEFAULT;
	writer->fd = -1;
	if (writer->buffer_length % LOG_BLOCK != 0 || writer->buffer_length > INT32_MAX) {
		weir_message_set(error, error_length,
				 "log buffer length %u is not a multiple of %u bytes",
				 writer->buffer_length, LOG_BLOCK);
		return -EINVAL;
	}
	if (writer->buffer_count > LOG_BUFFER_COUNT_MAX) {
		weir_message_set(error, error_length, "%u log buffers: at most %u",
				 writer->buffer_count, LOG_BUFFER_COUNT_MAX);
		return -EINVAL;
	}
	if (shard_path_make(writer->shard_path, sizeof(writer->shard_path), options->dir,
			    options->shard) < 0) {
		weir_message_set(error, error_length, "state dir path too long: %s", options->dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Allocates the buffers and the ring.  Returns: 0 or -errno. */
static int writer_resources(struct weir_log_writer *writer, char *error, size_t error_length)
{
	size_t length = (size_t)writer->buffer_length * writer->buffer_count;
	writer->memory = weir_mem_alloc(length, LOG_BLOCK, writer->arena);
	writer->buffers = weir_mem_alloc(sizeof(struct log_buffer) * writer->buffer_count,
					 WEIR_CACHE_LINE, writer->arena);
	if (writer->memory == NULL || writer->buffers == NULL) {
		weir_message_set(error, error_length, "no memory for %zu bytes of log buffers",
				 length);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < writer->buffer_count; i++)
		writer->buffers[i].memory = writer->memory + (size_t)i * writer->buffer_length;
	/* One SQE per buffer and per sync at most, twice over for the resubmits of a reap. */
	int rc = io_uring_queue_init(2 * (writer->buffer_count + LOG_SYNCS_MAX) + 4,
				     &writer->ring, 0);
	if (rc < 0) {
		weir_message_set(error, error_length, "io_uring_queue_init: %s", strerror(-rc));
		return rc;
	}
	return 0;
}

static void writer_free(struct weir_log_writer *writer, bool ring_ready)
{
	if (ring_ready)
		io_uring_queue_exit(&writer->ring);
	if (writer->fd >= 0)
		close(writer->fd);
	for (uint32_t i = 0; i < writer->retired_count; i++)
		close(writer->retired[i]);
	weir_mem_free(writer->buffers, writer->arena);
	weir_mem_free(writer->memory, writer->arena);
	weir_mem_free(writer, writer->arena);
}

int weir_log_writer_open(struct weir_log_writer **writer_out,
			 const struct weir_log_writer_options *options, char *error,
			 size_t error_length)
{
	WEIR_VERIFY(writer_out != NULL);
	WEIR_VERIFY(options != NULL && options->dir != NULL);
	*writer_out = NULL;
	struct weir_log_writer *writer = weir_mem_alloc(sizeof(*writer), WEIR_CACHE_LINE,
							options->arena);
	if (writer == NULL) {
		weir_message_set(error, error_length, "no memory for a log writer");
		return -ENOMEM;
	}
	bool ring_ready = false;
	uint64_t highest = 0;
	int rc = writer_configure(writer, options, error, error_length);
	if (rc == 0)
		rc = shard_dir_make(options->dir, writer->shard_path, error, error_length);
	if (rc == 0 && (rc = segments_highest(writer->shard_path, &highest)) < 0)
		weir_message_set(error, error_length, "cannot list %s: %s", writer->shard_path,
				 strerror(-rc));
	if (rc == 0) {
		rc = writer_resources(writer, error, error_length);
		ring_ready = rc == 0;
	}
	if (rc == 0) {
		rc = segment_create(writer->shard_path, highest + 1, error, error_length);
		writer->fd = rc >= 0 ? rc : -1;
		rc = rc >= 0 ? 0 : rc;
	}
	if (rc < 0) {
		writer_free(writer, ring_ready);
		return rc;
	}
	writer->segment = highest + 1;
	writer->first_segment = writer->segment;
	writer->durable_position = (struct weir_log_position){
		.first_segment = writer->segment,
		.end_segment = writer->segment,
		.end_offset = 0,
	};
	writer->stats.segments = 1;
	*writer_out = writer;
	return 0;
}

int weir_log_append(struct weir_log_writer *writer, uint64_t epoch,
		    const struct weir_state_record *record)
{
	WEIR_VERIFY(writer != NULL && record != NULL);
	WEIR_ASSERT(record->key != NULL || record->key_length == 0);
	WEIR_ASSERT(record->value != NULL || record->value_length == 0);
	if (writer->error != 0)
		return writer->error;
	uint64_t total = (uint64_t)LOG_HEADER_LENGTH + record->key_length + record->value_length;
	if (total > writer->buffer_length)
		return -EINVAL;
	int rc = segment_prepare(writer);
	if (rc < 0)
		return rc;
	struct log_header header = {
		.length = record->key_length + record->value_length,
		.type = WEIR_LOG_STATE,
		.format = LOG_FORMAT,
		.state_type = record->type,
		.key_group = record->key_group,
		.key_length = record->key_length,
		.epoch = epoch,
	};
	writer->unsealed = true;
	record_put(writer, &header, record->key, record->key_length, record->value,
		   record->value_length);
	writer_flush(writer);
	return writer->error;
}

/* Appends the PAD record that brings the stream to the next block boundary. */
static int seal_pad(struct weir_log_writer *writer)
{
	uint32_t used = (uint32_t)(writer->segment_offset % LOG_BLOCK);
	if (used == 0)
		return 0;
	uint32_t total = LOG_BLOCK - used;
	if (total < LOG_HEADER_LENGTH)
		total += LOG_BLOCK; /* no room for a header: pad through the next block too */
	struct log_header header = {
		.length = total - LOG_HEADER_LENGTH,
		.type = WEIR_LOG_PAD,
		.format = LOG_FORMAT,
	};
	WEIR_ASSERT(header.length < sizeof(log_zeros));
	int rc = record_put(writer, &header, log_zeros, header.length, NULL, 0);
	WEIR_ASSERT(rc < 0 || writer->segment_offset % LOG_BLOCK == 0);
	return rc;
}

int weir_log_seal(struct weir_log_writer *writer, uint64_t epoch)
{
	WEIR_VERIFY(writer != NULL);
	if (writer->error != 0)
		return writer->error;
	int rc = segment_prepare(writer);
	int index = rc < 0 ? rc : sync_acquire(writer);
	if (index < 0)
		return index;
	struct log_header marker = {.type = WEIR_LOG_MARKER, .format = LOG_FORMAT, .epoch = epoch};
	rc = record_put(writer, &marker, NULL, 0, NULL, 0);
	if (rc == 0)
		rc = seal_pad(writer);
	if (rc < 0)
		return rc;
	if (writer->current != NULL)
		buffer_finish(writer); /* the partial buffer; the next record starts a new one */
	if (writer->error != 0)
		return writer->error; /* no fdatasync for bytes that were not written */
	writer->syncs[index] = (struct log_sync){
		.pending = true,
		.fd = writer->fd,
		.epoch = epoch,
		.position = {.first_segment = writer->first_segment,
			     .end_segment = writer->segment,
			     .end_offset = writer->segment_offset},
	};
	sync_submit(writer, (uint32_t)index);
	writer->rotate_pending = writer->segment_offset >= writer->segment_length;
	writer->unsealed = false;
	writer_flush(writer);
	WEIR_ASSERT(writer->current == NULL);
	return writer->error;
}

int weir_log_poll(struct weir_log_writer *writer, uint64_t *durable_epoch,
		  struct weir_log_position *position)
{
	WEIR_VERIFY(writer != NULL);
	WEIR_VERIFY(durable_epoch != NULL && position != NULL);
	writer_reap(writer);
	writer_flush(writer);
	*durable_epoch = writer->durable_epoch;
	*position = writer->durable_position;
	return writer->error;
}

int weir_log_start_snapshot(struct weir_log_writer *writer)
{
	WEIR_VERIFY(writer != NULL);
	/* Only between a seal and the next append: the stream is then on a block boundary
	 * with no buffer being filled. */
	WEIR_VERIFY(!writer->unsealed);
	WEIR_ASSERT(writer->current == NULL);
	if (writer->error != 0)
		return writer->error;
	writer->snapshot_pending = true;
	return 0;
}

int weir_log_writer_continue(struct weir_log_writer *writer,
			     const struct weir_log_position *from)
{
	WEIR_VERIFY(writer != NULL && from != NULL);
	/* Only on a fresh writer, whose first segment follows the last one @from names. */
	WEIR_VERIFY(!writer->unsealed && writer->segment_offset == 0);
	WEIR_VERIFY(from->first_segment >= 1 && from->first_segment <= from->end_segment);
	if (from->end_segment + 1 != writer->segment)
		return -ESPIPE; /* a segment between them: the chain would not be contiguous */
	uint64_t bytes = from->end_offset;
	for (uint64_t s = from->first_segment; s < from->end_segment; s++) {
		char path[PATH_MAX + 32];
		struct stat status;
		if (segment_path_make(path, sizeof(path), writer->shard_path, s) != 0 ||
		    stat(path, &status) != 0)
			return -ENOENT;
		bytes += (uint64_t)status.st_size;
	}
	writer->first_segment = from->first_segment;
	writer->replay_length = bytes;
	writer->durable_position.first_segment = from->first_segment;
	return 0;
}

uint64_t weir_log_replay_length(const struct weir_log_writer *writer)
{
	WEIR_VERIFY(writer != NULL);
	return writer->replay_length;
}

void weir_log_writer_position(const struct weir_log_writer *writer, uint64_t *segment,
			      uint64_t *offset)
{
	WEIR_VERIFY(writer != NULL);
	WEIR_VERIFY(segment != NULL && offset != NULL);
	/* Between appends and a seal the stream ends inside a buffer, on no boundary a reader
	 * could start from. */
	WEIR_VERIFY(!writer->unsealed);
	/* The rotation segment_prepare() will do before the next record, as it will do it. */
	bool rotates = (writer->rotate_pending || writer->snapshot_pending) &&
		       writer->segment_offset > 0;
	*segment = writer->segment + (rotates ? 1 : 0);
	*offset = rotates ? 0 : writer->segment_offset;
	if (writer->error == 0)
		WEIR_ASSERT(*offset % LOG_BLOCK == 0);
	if (writer->error == 0)
		WEIR_ASSERT(writer->current == NULL);
}

void weir_log_writer_stats(const struct weir_log_writer *writer,
			   struct weir_log_writer_stats *stats)
{
	WEIR_VERIFY(writer != NULL && stats != NULL);
	*stats = writer->stats;
}

void weir_log_writer_close(struct weir_log_writer *writer)
{
	if (writer == NULL)
		return;
	/* Unsealed bytes in the current buffer are dropped: nothing names them. */
	writer->closing = true;
	writer->current = NULL;
	for (uint32_t round = 0; writer->in_flight_count > 0 && round < LOG_DRAIN_ROUNDS;
	     round++) {
		struct __kernel_timespec timeout = {.tv_sec = LOG_DRAIN_WAIT_S};
		struct io_uring_cqe *cqe = NULL;
		if (writer->sqes_pending && io_uring_submit(&writer->ring) >= 0)
			writer->sqes_pending = io_uring_sq_ready(&writer->ring) > 0;
		io_uring_wait_cqe_timeout(&writer->ring, &cqe, &timeout);
		writer_reap(writer);
	}
	bool drained = writer->in_flight_count == 0;
	if (!drained) {
		/* The kernel may still read the buffers: leak them rather than have it write
		 * whatever reuses the memory (only into bytes no position names). */
		fprintf(stderr, "weir: %s: %u log writes still in flight at close\n",
			writer->shard_path, writer->in_flight_count);
		writer->memory = NULL;
	}
	writer_free(writer, true);
}

/* ---- reading ---- */

/* A window onto one segment file. */
struct log_reader {
	int fd;
	uint64_t file_length; /* bytes */
	uint8_t *memory;      /* capacity bytes */
	size_t capacity;
	uint64_t begin;	      /* file offset of memory[0] */
	size_t length;	      /* valid bytes in memory */
};

/* Makes file bytes [offset, offset + length) readable at *out; the caller checked that they
 * are in the file.  Returns: 0 or -errno. */
static int reader_load(struct log_reader *reader, uint64_t offset, size_t length,
		       uint8_t **out)
{
	WEIR_ASSERT(offset + length <= reader->file_length);
	if (offset >= reader->begin && offset + length <= reader->begin + reader->length) {
		*out = reader->memory + (offset - reader->begin);
		return 0;
	}
	if (length > reader->capacity) {
		size_t capacity = (length + LOG_READ_LENGTH - 1) / LOG_READ_LENGTH;
		capacity *= LOG_READ_LENGTH;
		uint8_t *memory = weir_mem_alloc(capacity, LOG_BLOCK, WEIR_MEM_ARENA_DEFAULT);
		if (memory == NULL)
			return -ENOMEM;
		weir_mem_free(reader->memory, WEIR_MEM_ARENA_DEFAULT);
		reader->memory = memory;
		reader->capacity = capacity;
		reader->length = 0;
	}
	uint64_t left = reader->file_length - offset;
	size_t want = left < reader->capacity ? (size_t)left : reader->capacity;
	size_t have = 0;
	int rc = 0;
	while (have < want) {
		ssize_t n = pread(reader->fd, reader->memory + have, want - have,
				  (off_t)(offset + have));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO; /* a read error, or the file shrank */
			break;
		}
		have += (size_t)n;
	}
	reader->begin = offset;
	reader->length = have;
	if (have < length)
		return rc < 0 ? rc : -EIO;
	*out = reader->memory;
	return 0;
}

/* One segment being replayed. */
struct log_replay {
	char path[PATH_MAX];  /* the segment, for messages */
	uint64_t segment;
	uint64_t limit;	      /* walk up to this byte: the checkpoint's end, or the file's */
	bool is_end;	      /* limit is the checkpoint's end_offset */
	weir_log_visit_fn *fn;
	void *ctx;
	char *error;
	size_t error_length;
};

/* Starts a walk over shard @shard's segments under @dir: @replay calls @fn with @ctx and
 * reports into @error; @shard_path gets the shard's folder.  Returns: 0, or -ENAMETOOLONG
 * (said in @error). */
static int replay_init(struct log_replay *replay, char *shard_path, size_t capacity,
		       const char *dir, uint32_t shard, weir_log_visit_fn *fn, void *ctx,
		       char *error, size_t error_length)
{
	*replay = (struct log_replay){.fn = fn, .ctx = ctx, .error = error,
				      .error_length = error_length};
	if (shard_path_make(shard_path, capacity, dir, shard) < 0) {
		weir_message_set(error, error_length, "state dir path too long: %s", dir);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Says what is wrong with the record at @offset.  Returns: -EBADMSG. */
__attribute__((format(printf, 3, 4))) static int corrupt(const struct log_replay *replay,
							 uint64_t offset, const char *format,
							 ...)
{
	char reason[160];
	va_list args;
	va_start(args, format);
	vsnprintf(reason, sizeof(reason), format, args);
	va_end(args);
	weir_message_set(
		replay->error, replay->error_length,
		"%s: %s in record at byte %llu (corrupt state; not starting from empty state)",
		replay->path, reason, (unsigned long long)offset);
	return -EBADMSG;
}

/* What is wrong with the fields of a header whose checksum matched (a writer's bug), or
 * NULL. */
static const char *header_fields_problem(const struct log_header *header)
{
	if (header->type == WEIR_LOG_STATE)
		return header->key_length <= header->length ? NULL : "a key longer than its record";
	if (header->key_length != 0 || header->key_group != 0 || header->state_type != 0)
		return "key fields in a pad or marker";
	if (header->type == WEIR_LOG_MARKER && header->length != 0)
		return "a marker with a payload";
	return NULL;
}

/* Hands the record at @data (header and payload, checked) to the visitor, unless a PAD. */
static int replay_visit(const struct log_replay *replay, const struct log_header *header,
			const uint8_t *data, uint64_t offset)
{
	if (header->type == WEIR_LOG_PAD)
		return 0;
	struct weir_log_record record = {
		.type = (enum weir_log_record_type)header->type,
		.epoch = header->epoch,
		.segment = replay->segment,
		.offset = offset,
	};
	if (header->type == WEIR_LOG_STATE) {
		const uint8_t *payload = data + LOG_HEADER_LENGTH;
		record.state = (struct weir_state_record){
			.type = header->state_type,
			.key_group = header->key_group,
			.key = payload,
			.key_length = header->key_length,
			.value = payload + header->key_length,
			.value_length = header->length - header->key_length,
		};
	}
	return replay->fn(replay->ctx, &record);
}

/* Checks the record at @offset of the segment @reader holds: format byte, type, lengths within
 * the file, checksum, then the fields.  Returns: 0 with *header and *data (header and payload,
 * valid until the next load) set; -EBADMSG with why in @reason; or -errno from reading. */
static int record_check(struct log_reader *reader, uint64_t offset, struct log_header *header,
			uint8_t **data, char *reason, size_t reason_length)
{
	WEIR_ASSERT(offset < reader->file_length);
	WEIR_ASSERT(reason != NULL && reason_length > 0);
	uint64_t file_left = reader->file_length - offset;
	if (file_left < LOG_HEADER_LENGTH) {
		snprintf(reason, reason_length, "a header past the end of the file");
		return -EBADMSG;
	}
	int rc = reader_load(reader, offset, LOG_HEADER_LENGTH, data);
	if (rc < 0)
		return rc;
	memcpy(header, *data, sizeof(*header));
	if (header->format != LOG_FORMAT) {
		snprintf(reason, reason_length, "bad format byte 0x%02x (not a record header)",
			 header->format);
		return -EBADMSG;
	}
	if (header->type > WEIR_LOG_MARKER) {
		snprintf(reason, reason_length, "unknown record type %u", header->type);
		return -EBADMSG;
	}
	uint64_t total = (uint64_t)LOG_HEADER_LENGTH + header->length;
	if (total > file_left) {
		snprintf(reason, reason_length, "a length of %u bytes past the end of the file",
			 header->length);
		return -EBADMSG;
	}
	rc = reader_load(reader, offset, (size_t)total, data);
	if (rc < 0)
		return rc;
	/* Hashed in place with the checksum field zeroed, as it was written. */
	memset(*data + offsetof(struct log_header, checksum), 0, sizeof(header->checksum));
	uint64_t checksum = XXH3_64bits(*data, (size_t)total);
	memcpy(*data + offsetof(struct log_header, checksum), &header->checksum,
	       sizeof(header->checksum));
	if (checksum != header->checksum) {
		snprintf(reason, reason_length, "bad checksum");
		return -EBADMSG;
	}
	const char *problem = header_fields_problem(header);
	if (problem != NULL) {
		snprintf(reason, reason_length, "%s", problem);
		return -EBADMSG;
	}
	return 0;
}

/* Checks the record at @offset and visits it; *next: the offset after it.
 * Returns: 0, -EBADMSG, -errno from reading, or what the visitor returned. */
static int replay_record(const struct log_replay *replay, struct log_reader *reader,
			 uint64_t offset, uint64_t *next)
{
	WEIR_ASSERT(offset < replay->limit && replay->limit <= reader->file_length);
	uint8_t *data = NULL;
	struct log_header header;
	char reason[160];
	int rc = record_check(reader, offset, &header, &data, reason, sizeof(reason));
	if (rc == -EBADMSG)
		return corrupt(replay, offset, "%s", reason);
	if (rc < 0) {
		weir_message_set(replay->error, replay->error_length,
				 "%s: cannot read at byte %llu: %s", replay->path,
				 (unsigned long long)offset, strerror(-rc));
		return rc;
	}
	uint64_t total = (uint64_t)LOG_HEADER_LENGTH + header.length;
	if (offset + total > replay->limit)
		return corrupt(replay, offset,
			       "the checkpoint's end at byte %llu (not a record boundary)",
			       (unsigned long long)replay->limit);
	*next = offset + total;
	return replay_visit(replay, &header, data, offset);
}

/* Opens segment @replay->path for reading into @reader.  Returns: 0; -ENOENT without a
 * message (what a missing segment means is the caller's to say); or -errno with one. */
static int segment_open_read(const struct log_replay *replay, struct log_reader *reader)
{
	WEIR_ASSERT(reader->fd < 0);
	int fd = open(replay->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		if (rc != -ENOENT)
			weir_message_set(replay->error, replay->error_length, "cannot open %s: %s",
					 replay->path, strerror(-rc));
		return rc;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int rc = -errno;
		weir_message_set(replay->error, replay->error_length, "cannot stat %s: %s",
				 replay->path, strerror(-rc));
		close(fd);
		return rc;
	}
	reader->fd = fd;
	reader->file_length = (uint64_t)st.st_size;
	reader->begin = 0;
	reader->length = 0;
	WEIR_ASSERT(reader->fd >= 0);
	return 0;
}

static void segment_close_read(struct log_reader *reader)
{
	WEIR_ASSERT(reader->fd >= 0);
	close(reader->fd);
	reader->fd = -1;
}

/* Replays one segment: all of it, or up to end_offset when @replay->is_end. */
static int replay_segment(struct log_replay *replay, struct log_reader *reader,
			  uint64_t end_offset)
{
	int rc = segment_open_read(replay, reader);
	if (rc == -ENOENT)
		weir_message_set(
			replay->error, replay->error_length,
			"%s: missing, but the checkpoint needs it (not starting from empty state)",
			replay->path);
	if (rc < 0)
		return rc;
	replay->limit = replay->is_end ? end_offset : reader->file_length;
	if (replay->limit > reader->file_length) {
		weir_message_set(replay->error, replay->error_length,
				 "%s: %llu bytes, short of the checkpoint's end at byte %llu "
				 "(corrupt state; "
				 "not starting from empty state)",
				 replay->path, (unsigned long long)reader->file_length,
				 (unsigned long long)end_offset);
		rc = -EBADMSG;
	}
	for (uint64_t offset = 0; offset < replay->limit && rc == 0;)
		rc = replay_record(replay, reader, offset, &offset);
	segment_close_read(reader);
	return rc;
}

int weir_log_replay(const char *dir, uint32_t shard, const struct weir_log_position *position,
		    weir_log_visit_fn *fn, void *ctx, char *error, size_t error_length)
{
	WEIR_VERIFY(dir != NULL && position != NULL);
	WEIR_VERIFY(fn != NULL);
	if (position->end_segment == 0)
		return 0; /* names no segment: nothing was durable */
	if (position->first_segment == 0 || position->first_segment > position->end_segment) {
		weir_message_set(error, error_length,
				 "log position of shard %u: segments %llu..%llu", shard,
				 (unsigned long long)position->first_segment,
				 (unsigned long long)position->end_segment);
		return -EINVAL;
	}
	char shard_path[PATH_MAX];
	struct log_replay replay;
	if (replay_init(&replay, shard_path, sizeof(shard_path), dir, shard, fn, ctx, error,
			error_length) != 0)
		return -ENAMETOOLONG;
	struct log_reader reader = {.fd = -1};
	int rc = 0;
	for (uint64_t s = position->first_segment; s <= position->end_segment && rc == 0; s++) {
		replay.segment = s;
		replay.is_end = s == position->end_segment;
		rc = segment_path_make(replay.path, sizeof(replay.path), shard_path, s);
		if (rc < 0)
			weir_message_set(error, error_length, "state dir path too long: %s", dir);
		else
			rc = replay_segment(&replay, &reader, position->end_offset);
	}
	weir_mem_free(reader.memory, WEIR_MEM_ARENA_DEFAULT);
	return rc;
}

/* ---- reading a tail ---- */

/* Points @replay at segment @segment of @shard_path.  Returns: 0 or -ENAMETOOLONG. */
static int tail_name(struct log_replay *replay, const char *shard_path, uint64_t segment)
{
	replay->segment = segment;
	int rc = segment_path_make(replay->path, sizeof(replay->path), shard_path, segment);
	if (rc < 0)
		weir_message_set(replay->error, replay->error_length, "%s: path too long",
				 shard_path);
	return rc;
}

/* Opens the segment a tail starts in, at @offset.  Returns: 0 (open); 1 (missing, with
 * @offset 0 and no segment numbered at or above it: an empty log); -ENOENT (missing);
 * -EBADMSG (@offset past its end); or -errno.  A message says why when it is negative. */
static int tail_open_first(struct log_replay *replay, struct log_reader *reader,
			   const char *shard_path, uint64_t offset)
{
	int rc = segment_open_read(replay, reader);
	if (rc == -ENOENT) {
		uint64_t highest = 0;
		int listed = segments_highest(shard_path, &highest);
		if (listed < 0 && listed != -ENOENT) {
			weir_message_set(replay->error, replay->error_length, "cannot list %s: %s",
					 shard_path, strerror(-listed));
			return listed;
		}
		if (offset == 0 && highest < replay->segment)
			return 1; /* also when there is no shard folder: no segment at all */
		weir_message_set(replay->error, replay->error_length,
				 "%s: missing, but the log's tail starts in it at byte %llu",
				 replay->path, (unsigned long long)offset);
		return -ENOENT;
	}
	if (rc == 0 && offset > reader->file_length) {
		weir_message_set(replay->error, replay->error_length,
				 "%s: %llu bytes, short of the tail's start at byte %llu",
				 replay->path, (unsigned long long)reader->file_length,
				 (unsigned long long)offset);
		segment_close_read(reader);
		rc = -EBADMSG;
	}
	return rc;
}

/* Visits the records of the open segment from @offset up to its end or up to the first one
 * that does not validate.  *end: where the valid records end (the file's length when all
 * did).  Returns: 0, -errno from reading, or what the visitor returned. */
static int tail_walk(const struct log_replay *replay, struct log_reader *reader,
		     uint64_t offset, uint64_t *end)
{
	WEIR_ASSERT(offset <= reader->file_length);
	int rc = 0;
	while (offset < reader->file_length && rc == 0) {
		struct log_header header;
		uint8_t *data = NULL;
		char reason[160];
		rc = record_check(reader, offset, &header, &data, reason, sizeof(reason));
		if (rc == -EBADMSG) {
			rc = 0; /* the torn tail: the log ends here */
			break;
		}
		if (rc < 0) {
			weir_message_set(replay->error, replay->error_length,
					 "%s: cannot read at byte %llu: %s", replay->path,
					 (unsigned long long)offset, strerror(-rc));
			break;
		}
		rc = replay_visit(replay, &header, data, offset);
		offset += (uint64_t)LOG_HEADER_LENGTH + header.length;
	}
	WEIR_ASSERT(offset <= reader->file_length);
	*end = offset;
	return rc;
}

/* Adds the bytes of segments @from, @from + 1, ... (up to the first one missing) to
 * *dropped_bytes.  Returns: 0 or -errno. */
static int tail_count_rest(struct log_replay *replay, const char *shard_path, uint64_t from,
			   uint64_t *dropped_bytes)
{
	for (uint64_t s = from; s != 0; s++) {
		int rc = tail_name(replay, shard_path, s);
		if (rc < 0)
			return rc;
		struct stat st;
		if (stat(replay->path, &st) != 0) {
			rc = -errno;
			if (rc == -ENOENT)
				return 0;
			weir_message_set(replay->error, replay->error_length, "cannot stat %s: %s",
					 replay->path, strerror(-rc));
			return rc;
		}
		*dropped_bytes += (uint64_t)st.st_size;
	}
	return 0;
}

/* Walks segments from replay->segment (open in @reader, from @offset) through each next one
 * until one is missing or a record does not validate.  Returns: 0 or -errno, with *end_segment,
 * *end_offset and *dropped_bytes set on 0. */
static int tail_read(struct log_replay *replay, struct log_reader *reader,
		     const char *shard_path, uint64_t offset, uint64_t *end_segment,
		     uint64_t *end_offset, uint64_t *dropped_bytes)
{
	for (;;) {
		uint64_t end = 0;
		int rc = tail_walk(replay, reader, offset, &end);
		uint64_t file_length = reader->file_length;
		segment_close_read(reader);
		if (rc != 0)
			return rc;
		uint64_t segment = replay->segment;
		*end_segment = segment;
		*end_offset = end;
		*dropped_bytes = file_length - end;
		if (end < file_length) /* a torn tail ends the log: later segments are dropped */
			return tail_count_rest(replay, shard_path, segment + 1, dropped_bytes);
		if (segment == UINT64_MAX)
			return 0;
		rc = tail_name(replay, shard_path, segment + 1);
		if (rc == 0)
			rc = segment_open_read(replay, reader);
		if (rc == -ENOENT)
			return 0; /* the last segment, or a gap in the numbering: the end */
		if (rc < 0)
			return rc;
		offset = 0;
	}
}

int weir_log_read_tail(const char *dir, uint32_t shard, uint64_t segment, uint64_t offset,
		       weir_log_visit_fn *fn, void *ctx, uint64_t *end_segment,
		       uint64_t *end_offset, uint64_t *dropped_bytes, char *error,
		       size_t error_length)
{
	WEIR_VERIFY(dir != NULL && fn != NULL);
	WEIR_VERIFY(end_segment != NULL && end_offset != NULL && dropped_bytes != NULL);
	if (segment == 0) {
		weir_message_set(error, error_length,
				 "log tail of shard %u: segment 0 (numbers start at 1)", shard);
		return -EINVAL;
	}
	char shard_path[PATH_MAX];
	struct log_replay replay;
	if (replay_init(&replay, shard_path, sizeof(shard_path), dir, shard, fn, ctx, error,
			error_length) != 0)
		return -ENAMETOOLONG;
	struct log_reader reader = {.fd = -1};
	int rc = tail_name(&replay, shard_path, segment);
	if (rc == 0)
		rc = tail_open_first(&replay, &reader, shard_path, offset);
	uint64_t end_s = segment;
	uint64_t end_o = 0;
	uint64_t dropped = 0;
	if (rc == 0)
		rc = tail_read(&replay, &reader, shard_path, offset, &end_s, &end_o, &dropped);
	else if (rc == 1)
		rc = 0; /* an empty log: it ends where it would start */
	WEIR_ASSERT(reader.fd < 0);
	weir_mem_free(reader.memory, WEIR_MEM_ARENA_DEFAULT);
	if (rc == 0) {
		WEIR_ASSERT(end_s > segment || end_o >= offset);
		*end_segment = end_s;
		*end_offset = end_o;
		*dropped_bytes = dropped;
	}
	return rc;
}

/* Cuts segment @path to @length bytes, durably.  Returns: 0 or -errno. */
static int segment_cut(const char *path, uint64_t length, char *error, size_t error_length)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		weir_message_set(error, error_length, "cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	struct stat st;
	int rc = fstat(fd, &st) == 0 ? 0 : -errno;
	if (rc == 0 && (uint64_t)st.st_size < length) {
		weir_message_set(error, error_length,
				 "%s: %llu bytes, short of the checkpoint's end at byte %llu "
				 "(corrupt state; "
				 "not starting from empty state)",
				 path, (unsigned long long)st.st_size, (unsigned long long)length);
		rc = -EBADMSG;
	} else if (rc == 0 && (uint64_t)st.st_size > length) {
		rc = ftruncate(fd, (off_t)length) == 0 && fsync(fd) == 0 ? 0 : -errno;
		if (rc < 0)
			weir_message_set(error, error_length, "cannot cut %s to %llu bytes: %s",
					 path, (unsigned long long)length, strerror(-rc));
	} else if (rc < 0) {
		weir_message_set(error, error_length, "cannot stat %s: %s", path, strerror(-rc));
	}
	close(fd);
	return rc;
}

int weir_log_trim(const char *dir, uint32_t shard, const struct weir_log_position *position,
		  char *error, size_t error_length)
{
	WEIR_VERIFY(dir != NULL && position != NULL);
	char shard_path[PATH_MAX];
	char path[PATH_MAX];
	if (shard_path_make(shard_path, sizeof(shard_path), dir, shard) < 0 ||
	    segment_path_make(path, sizeof(path), shard_path, position->end_segment) < 0) {
		weir_message_set(error, error_length, "state dir path too long: %s", dir);
		return -ENAMETOOLONG;
	}
	if (position->end_segment > 0) {
		int rc = segment_cut(path, position->end_offset, error, error_length);
		if (rc < 0)
			return rc;
	}
	int removed = segments_remove(shard_path, position->end_segment + 1, UINT64_MAX);
	if (removed == -ENOENT && position->end_segment == 0)
		return 0; /* no folder and nothing named: nothing to cut */
	int rc = removed < 0 ? removed : removed > 0 ? dir_sync(shard_path) : 0;
	if (rc < 0)
		weir_message_set(error, error_length, "cannot remove segments after %llu in %s: %s",
				 (unsigned long long)position->end_segment, shard_path,
				 strerror(-rc));
	return rc;
}

int weir_log_remove_before(const char *dir, uint32_t shard, uint64_t keep_from)
{
	WEIR_VERIFY(dir != NULL);
	char shard_path[PATH_MAX];
	if (shard_path_make(shard_path, sizeof(shard_path), dir, shard) < 0)
		return -ENAMETOOLONG;
	int removed = segments_remove(shard_path, 0, keep_from);
	if (removed == -ENOENT)
		return 0; /* no folder: nothing to remove */
	if (removed < 0)
		return removed;
	int rc;
	if (keep_from == UINT64_MAX)
		rc = rmdir(shard_path) == 0 ? dir_sync(dir) : -errno;
	else
		rc = removed > 0 ? dir_sync(shard_path) : 0;
	return rc < 0 ? rc : removed;
}

/* Whether @name is a shard folder's, exactly as shard_path_make spells it; sets *shard. */
static bool shard_name_parse(const char *name, uint32_t *shard)
{
	if (strncmp(name, "shard-", 6) != 0 || name[6] < '0' || name[6] > '9')
		return false;
	char *end = NULL;
	errno = 0;
	unsigned long long value = strtoull(name + 6, &end, 10);
	if (errno != 0 || *end != '\0' || value > UINT32_MAX)
		return false;
	char canonical[32];
	snprintf(canonical, sizeof(canonical), "shard-%04u", (uint32_t)value);
	if (strcmp(canonical, name) != 0)
		return false;
	*shard = (uint32_t)value;
	return true;
}

int weir_log_shards(const char *dir, uint32_t *shards, uint32_t max)
{
	WEIR_VERIFY(dir != NULL);
	WEIR_VERIFY(shards != NULL || max == 0);
	DIR *folder = opendir(dir);
	if (folder == NULL)
		return -errno;
	uint32_t count = 0;
	struct dirent *entry;
	uint32_t shard = 0;
	while ((entry = readdir(folder)) != NULL) {
		struct stat st;
		if (!shard_name_parse(entry->d_name, &shard))
			continue;
		if (entry->d_type != DT_DIR &&
		    (entry->d_type != DT_UNKNOWN ||
		     fstatat(dirfd(folder), entry->d_name, &st, 0) != 0 || !S_ISDIR(st.st_mode)))
			continue;
		/* Insertion into the sorted prefix, keeping the @max smallest. */
		uint32_t at = count;
		while (at > 0 && shards[at - 1] > shard)
			at--;
		if (at == max)
			continue;
		uint32_t last = count < max ? count : max - 1;
		memmove(&shards[at + 1], &shards[at], (last - at) * sizeof(*shards));
		shards[at] = shard;
		count += count < max;
	}
	closedir(folder);
	WEIR_ASSERT(count <= max);
	return (int)count;
}
