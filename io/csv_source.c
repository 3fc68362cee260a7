#include "io/csv_source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <liburing.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/batch.h"
#include "core/mem.h"

#define CSV_CHUNK WEIR_CSV_CHUNK_LENGTH
#define CSV_RING_DEPTH 4	       /* two reads in flight at most, with room to spare */
#define CSV_RETRY_MAX 8		       /* -EINTR/-EAGAIN resubmits of one chunk's read */
#define CSV_SUBMIT_RETRY_MAX 1000      /* pulls in a row whose io_uring_submit was refused */
#define CSV_SCAN_WINDOW (64u * 1024)   /* bytes per pread while looking for a line start */
#define CSV_LINES_PER_PULL_EXTRA 4096  /* malformed lines one pull may skip beyond capacity */
#define CSV_BUFFER_ALIGNMENT 4096

WEIR_STATIC_ASSERT(WEIR_CSV_LINE_LENGTH_MAX <= CSV_CHUNK, "a carried line fits the carry area");
WEIR_STATIC_ASSERT(CSV_SCAN_WINDOW <= 2 * CSV_CHUNK, "the scan window fits a chunk buffer");

/* One remembered malformed line. */
struct csv_fault_entry {
	uint64_t line_number; /* 1-based within its partition */
	uint64_t offset;      /* of the line's first byte in the file */
	enum weir_csv_reason reason;
	uint32_t field_index; /* 0-based, or UINT32_MAX */
};

/* What a partition leaves in the source when closed. */
struct csv_result {
	uint64_t line_count;	   /* data lines seen, good and skipped */
	uint64_t skipped_count;	   /* malformed lines */
	uint64_t read_error_count; /* failed reads (each ends the partition) */
	uint32_t fault_count;	   /* entries used in faults */
	bool resumed;		   /* began where a checkpoint left it: line numbers are not
				      the file's */
	struct csv_fault_entry faults[WEIR_CSV_SOURCE_FAULTS_MAX];
};

struct weir_csv_source {
	struct weir_schema schema;
	int fd;			    /* read-only; shared by the partitions' rings */
	uint64_t file_length;	    /* bytes, at create */
	uint64_t data_begin;	    /* first byte after the header line */
	char *path;		    /* NUL-terminated copy, for messages */
	struct csv_result *results; /* result_count entries; allocated by the first close() */
	uint32_t result_count;
};

enum chunk_state {
	CHUNK_FREE,
	CHUNK_IN_FLIGHT, /* an SQE is prepared or submitted; the kernel may write the data area */
	CHUNK_READY,
	CHUNK_FAILED,
};

/* One of a partition's two buffers: a carry area of CSV_CHUNK bytes, where the start of a line
 * from the previous chunk is copied, then the data area of CSV_CHUNK bytes the read fills. */
struct csv_chunk {
	char *memory;	      /* 2 * CSV_CHUNK bytes */
	uint64_t offset;      /* file offset of the data area's first byte */
	uint32_t length;      /* bytes this chunk holds once read */
	uint32_t filled;      /* bytes read so far */
	uint32_t retry_count; /* -EINTR/-EAGAIN resubmits so far */
	enum chunk_state state;
};

struct csv_partition {
	struct io_uring ring; /* valid when ring_ready */
	const struct weir_csv_source *source;
	uint32_t index;
	uint32_t count; /* partitions in this run */
	unsigned arena;
	bool ring_ready;
	bool skipping;	     /* inside a too-long line: drop bytes up to its '\n' */
	bool submit_pending; /* SQEs prepared but not yet accepted by io_uring_submit */
	bool ended;
	uint32_t submit_retry_count;
	uint32_t in_flight_count; /* chunks in CHUNK_IN_FLIGHT */
	int current;		  /* chunk being parsed, or -1 before the first */
	uint64_t begin;		  /* file offset of the partition's first byte */
	uint64_t end;		  /* file offset just past its last byte */
	uint64_t next_offset;	  /* where the next chunk to read starts */
	const char *cursor;	  /* unparsed bytes of the current chunk: [cursor, limit) */
	const char *limit;
	struct csv_chunk chunks[2];
	struct csv_result result;
};

/* ---- reads ---- */

static char *chunk_data(const struct csv_chunk *chunk)
{
	return chunk->memory + CSV_CHUNK;
}

/* Prepares the read of the rest of @chunk.  The SQ has a slot: each chunk holds at most one
 * SQE and the ring has more than two. */
static void chunk_submit(struct csv_partition *part, struct csv_chunk *chunk)
{
	WEIR_ASSERT(chunk->filled < chunk->length);
	WEIR_ASSERT(chunk->state != CHUNK_IN_FLIGHT);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&part->ring);
	WEIR_VERIFY(sqe != NULL);
	io_uring_prep_read(sqe, part->source->fd, chunk_data(chunk) + chunk->filled,
			   chunk->length - chunk->filled, chunk->offset + chunk->filled);
	io_uring_sqe_set_data(sqe, chunk);
	chunk->state = CHUNK_IN_FLIGHT;
	part->in_flight_count++;
	part->submit_pending = true;
}

/* Gives @chunk the next stretch of the partition and prepares its read. */
static void chunk_start(struct csv_partition *part, struct csv_chunk *chunk)
{
	WEIR_ASSERT(part->next_offset < part->end);
	uint64_t left = part->end - part->next_offset;
	chunk->offset = part->next_offset;
	chunk->length = left < CSV_CHUNK ? (uint32_t)left : CSV_CHUNK;
	chunk->filled = 0;
	chunk->retry_count = 0;
	chunk->state = CHUNK_FREE;
	part->next_offset += chunk->length;
	chunk_submit(part, chunk);
}

static void read_failed(struct csv_partition *part, struct csv_chunk *chunk, int res)
{
	/* Logged once per partition, here where the partition is ended (STYLE §3). */
	if (part->result.read_error_count == 0)
		fprintf(stderr, "weir: %s: read at offset %llu failed: %s\n", part->source->path,
			(unsigned long long)(chunk->offset + chunk->filled),
			res == 0 ? "unexpected end of file (did it shrink?)" : strerror(-res));
	part->result.read_error_count++;
	chunk->state = CHUNK_FAILED;
}

/* Classifies one CQE: done, the rest of a short read, a bounded retry, or a failure. */
static void chunk_complete(struct csv_partition *part, struct csv_chunk *chunk, int res)
{
	WEIR_ASSERT(chunk->state == CHUNK_IN_FLIGHT);
	chunk->state = CHUNK_FREE;
	if (res > 0) {
		WEIR_VERIFY((uint32_t)res <= chunk->length - chunk->filled);
		chunk->filled += (uint32_t)res;
		if (chunk->filled == chunk->length)
			chunk->state = CHUNK_READY;
		else
			chunk_submit(part, chunk); /* a short read: ask for the rest */
		return;
	}
	if ((res == -EINTR || res == -EAGAIN) && chunk->retry_count < CSV_RETRY_MAX) {
		chunk->retry_count++;
		chunk_submit(part, chunk);
		return;
	}
	WEIR_VERIFY(res != -EFAULT); /* a bad buffer is our bug */
	read_failed(part, chunk, res);
}

/* Reaps every completion there is; never waits. */
static void partition_reap(struct csv_partition *part)
{
	struct io_uring_cqe *cqe = NULL;
	uint32_t budget = part->in_flight_count;
	while (budget-- > 0 && io_uring_peek_cqe(&part->ring, &cqe) == 0) {
		struct csv_chunk *chunk = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&part->ring, cqe);
		WEIR_ASSERT(chunk == &part->chunks[0] || chunk == &part->chunks[1]);
		WEIR_ASSERT(part->in_flight_count > 0);
		part->in_flight_count--;
		chunk_complete(part, chunk, res);
	}
}

/* The one io_uring_submit of a pull.  A refused submit keeps its SQEs for the next pull. */
static void partition_flush(struct csv_partition *part)
{
	if (!part->submit_pending)
		return;
	int rc = io_uring_submit(&part->ring);
	if (rc >= 0) {
		part->submit_pending = io_uring_sq_ready(&part->ring) > 0;
		part->submit_retry_count = 0;
		return;
	}
	if ((rc == -EAGAIN || rc == -EBUSY || rc == -EINTR) &&
	    part->submit_retry_count < CSV_SUBMIT_RETRY_MAX) {
		part->submit_retry_count++;
		return;
	}
	fprintf(stderr, "weir: %s: io_uring_submit failed: %s\n", part->source->path,
		strerror(-rc));
	part->result.read_error_count++;
	part->ended = true;
}

/* Waits for every read the kernel may still write into our buffers.  Context: close(). */
static void partition_drain(struct csv_partition *part)
{
	for (uint32_t round = 0; part->in_flight_count > 0 && round < CSV_SUBMIT_RETRY_MAX;
	     round++) {
		/* Prepared SQEs go in too, so every in-flight chunk will see a CQE. */
		int rc = io_uring_submit_and_wait(&part->ring, 1);
		if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY)
			break; /* the ring is unusable; its teardown cancels what is left */
		struct io_uring_cqe *cqe = NULL;
		while (part->in_flight_count > 0 && io_uring_peek_cqe(&part->ring, &cqe) == 0) {
			io_uring_cqe_seen(&part->ring, cqe);
			part->in_flight_count--;
		}
	}
	WEIR_MAYBE(part->in_flight_count > 0);
}

/* ---- lines ---- */

/* The file offset of @at, a byte of the current chunk (its carry area included). */
static uint64_t file_offset(const struct csv_partition *part, const char *at)
{
	WEIR_ASSERT(part->current >= 0);
	const struct csv_chunk *chunk = &part->chunks[part->current];
	/* The carry area sits right before the data area and holds the bytes right before
	 * chunk->offset, so one subtraction covers both. */
	return (uint64_t)((int64_t)chunk->offset + (at - chunk_data(chunk)));
}

static void note_fault(struct csv_partition *part, const char *line,
		       enum weir_csv_reason reason, uint32_t field_index)
{
	struct csv_result *result = &part->result;
	WEIR_ASSERT(result->line_count > 0);
	result->skipped_count++;
	if (result->fault_count < WEIR_CSV_SOURCE_FAULTS_MAX) {
		result->faults[result->fault_count] = (struct csv_fault_entry){
			.line_number = result->line_count,
			.offset = file_offset(part, line),
			.reason = reason,
			.field_index = field_index,
		};
		result->fault_count++;
	}
	WEIR_ASSERT(result->skipped_count <= result->line_count);
}

/* One line without its '\n'.  @last_in_file: nothing follows it in the file, so an empty one
 * is the artefact of a final newline (or of "\r\n") and not a line.
 * Returns: 1 if a record was written at @record, else 0. */
static uint32_t take_line(struct csv_partition *part, const char *line, size_t length,
			  bool last_in_file, uint8_t *record)
{
	if (last_in_file && (length == 0 || (length == 1 && line[0] == '\r')))
		return 0;
	part->result.line_count++;
	if (length > WEIR_CSV_LINE_LENGTH_MAX) {
		note_fault(part, line, WEIR_CSV_LINE_TOO_LONG, UINT32_MAX);
		return 0;
	}
	struct weir_csv_fault fault;
	if (weir_csv_parse_line(&part->source->schema, line, length, record, &fault) != 0) {
		note_fault(part, line, fault.reason, fault.field_index);
		return 0;
	}
	return 1;
}

static bool current_is_last(const struct csv_partition *part)
{
	WEIR_ASSERT(part->current >= 0);
	const struct csv_chunk *chunk = &part->chunks[part->current];
	return chunk->offset + chunk->length == part->end;
}

/* Moves parsing to the next chunk once its read is done, carrying the unfinished line over
 * into the new chunk's carry area, and reuses the old chunk for the read after.
 * Returns: true if parsing can go on; false if the read is not done yet or it failed (then
 * the partition has ended). */
static bool partition_switch(struct csv_partition *part)
{
	int next = part->current < 0 ? 0 : part->current ^ 1;
	struct csv_chunk *chunk = &part->chunks[next];
	if (chunk->state == CHUNK_IN_FLIGHT)
		return false;
	if (chunk->state == CHUNK_FAILED) {
		part->ended = true;
		return false;
	}
	WEIR_VERIFY(chunk->state == CHUNK_READY);
	size_t carry = (size_t)(part->limit - part->cursor);
	if (part->skipping) {
		carry = 0;
	} else if (carry > WEIR_CSV_LINE_LENGTH_MAX) {
		/* Counted now, with its number; the rest of it is dropped as it comes. */
		part->result.line_count++;
		note_fault(part, part->cursor, WEIR_CSV_LINE_TOO_LONG, UINT32_MAX);
		part->skipping = true;
		carry = 0;
	}
	char *data = chunk_data(chunk);
	if (carry > 0)
		memcpy(data - carry, part->cursor, carry);
	if (part->current >= 0) {
		struct csv_chunk *old = &part->chunks[part->current];
		old->state = CHUNK_FREE; /* its bytes were carried over just above */
		if (part->next_offset < part->end)
			chunk_start(part, old);
	}
	part->current = next;
	part->cursor = data - carry;
	part->limit = data + chunk->length;
	WEIR_ASSERT(part->cursor >= chunk->memory);
	return true;
}

static uint32_t csv_pull(void *partition, uint8_t *records, uint32_t capacity,
			 struct weir_pull_status *status)
{
	struct csv_partition *part = partition;
	WEIR_ASSERT(part != NULL && status != NULL);
	WEIR_ASSERT(records != NULL || capacity == 0);
	if (part->ended) {
		status->ended = true;
		return 0;
	}
	if (part->in_flight_count > 0)
		partition_reap(part);
	const uint32_t record_length = part->source->schema.record_length;
	const bool partition_ends_file = part->end == part->source->file_length;
	uint32_t count = 0;
	uint32_t line_budget = capacity + CSV_LINES_PER_PULL_EXTRA;
	while (count < capacity && line_budget > 0) {
		const char *newline = part->cursor < part->limit
					      ? memchr(part->cursor, '\n',
						       (size_t)(part->limit - part->cursor))
					      : NULL;
		if (newline != NULL) {
			const char *line = part->cursor;
			part->cursor = newline + 1;
			if (part->skipping) {
				part->skipping = false; /* the end of a too-long line */
				continue;
			}
			line_budget--;
			bool last = partition_ends_file && part->cursor == part->limit &&
				    current_is_last(part);
			count += take_line(part, line, (size_t)(newline - line), last,
					   records + (size_t)count * record_length);
			continue;
		}
		if (part->current >= 0 && current_is_last(part)) {
			/* The remainder is the file's last line, without a '\n'. */
			if (part->cursor < part->limit && !part->skipping)
				count += take_line(part, part->cursor,
						   (size_t)(part->limit - part->cursor), true,
						   records + (size_t)count * record_length);
			part->cursor = part->limit;
			part->ended = true;
			break;
		}
		if (!partition_switch(part))
			break;
	}
	if (!part->ended)
		partition_flush(part);
	status->ended = part->ended;
	/* Lines taken, good or skipped (at least the records made, for the last line). */
	uint32_t lines = capacity + CSV_LINES_PER_PULL_EXTRA - line_budget;
	status->consumed = lines > count ? lines : count;
	WEIR_ASSERT(count <= capacity);
	return count;
}

/* ---- partitions ---- */

/* Finds the first byte after the first '\n' at or after @from, or the file's end. */
static int find_line_start(const struct weir_csv_source *source, uint64_t from, char *scratch,
			   uint64_t *offset_out)
{
	uint64_t at = from;
	while (at < source->file_length) {
		uint64_t left = source->file_length - at;
		size_t want = left < CSV_SCAN_WINDOW ? (size_t)left : CSV_SCAN_WINDOW;
		ssize_t got = pread(source->fd, scratch, want, (off_t)at);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			break; /* the file shrank; its end is where it ends now */
		const char *newline = memchr(scratch, '\n', (size_t)got);
		if (newline != NULL) {
			*offset_out = at + (uint64_t)(newline - scratch) + 1;
			return 0;
		}
		at += (uint64_t)got;
	}
	*offset_out = source->file_length;
	return 0;
}

/* begin_i as the header describes: where partition @index of @count starts. */
static int partition_begin(const struct weir_csv_source *source, uint32_t index,
			   uint32_t count, char *scratch, uint64_t *offset_out)
{
	WEIR_ASSERT(index <= count);
	if (index == 0) {
		*offset_out = source->data_begin;
		return 0;
	}
	if (index == count) {
		*offset_out = source->file_length;
		return 0;
	}
	/* floor(length * index / count) without overflowing 64 bits. */
	uint64_t length = source->file_length;
	uint64_t target = length / count * index + length % count * index / count;
	if (target <= source->data_begin) {
		/* The header's '\n' (at data_begin - 1) is the first at or after target - 1. */
		*offset_out = source->data_begin;
		return 0;
	}
	int rc = find_line_start(source, target - 1, scratch, offset_out);
	WEIR_ASSERT(rc != 0 || *offset_out >= source->data_begin);
	return rc;
}

static void partition_free(struct csv_partition *part)
{
	weir_mem_free(part->chunks[0].memory, part->arena);
	weir_mem_free(part->chunks[1].memory, part->arena);
	weir_mem_free(part, part->arena);
}

static int partition_start_reads(struct csv_partition *part)
{
	int rc = io_uring_queue_init(CSV_RING_DEPTH, &part->ring, 0);
	if (rc < 0)
		return rc;
	part->ring_ready = true;
	chunk_start(part, &part->chunks[0]);
	if (part->next_offset < part->end)
		chunk_start(part, &part->chunks[1]);
	rc = io_uring_submit(&part->ring);
	if (rc < 0)
		return rc; /* nothing was submitted, so nothing is in flight */
	part->submit_pending = io_uring_sq_ready(&part->ring) > 0;
	return 0;
}

/* Opens a reader of bytes [begin, end) of the file, number @index of @count. */
static int open_range(const struct weir_csv_source *source, uint64_t begin, uint64_t end,
		      uint32_t index, uint32_t count, unsigned arena, void **partition_out)
{
	WEIR_VERIFY(begin <= end && end <= source->file_length);
	WEIR_VERIFY(begin >= source->data_begin || begin == end);
	struct csv_partition *part = weir_mem_alloc(sizeof(*part), WEIR_CACHE_LINE, arena);
	if (part == NULL)
		return -ENOMEM;
	part->source = source;
	part->index = index;
	part->count = count;
	part->arena = arena;
	part->current = -1;
	part->begin = begin;
	part->end = end;
	part->next_offset = begin;
	int rc = -ENOMEM;
	for (int i = 0; i < 2; i++) {
		part->chunks[i].memory = weir_mem_alloc(2 * (size_t)CSV_CHUNK,
							CSV_BUFFER_ALIGNMENT, arena);
		if (part->chunks[i].memory == NULL)
			goto err_free_partition;
	}
	if (part->begin == part->end) {
		part->ended = true; /* an empty partition needs no ring */
	} else {
		rc = partition_start_reads(part);
		if (rc != 0)
			goto err_exit_ring;
	}
	*partition_out = part;
	return 0;

err_exit_ring:
	if (part->ring_ready)
		io_uring_queue_exit(&part->ring);
err_free_partition:
	partition_free(part);
	return rc;
}

/* Split i of a fresh run: [begin_i, begin_i+1), as the header of csv_source.h defines. */
static int plan_range(const struct weir_csv_source *source, uint32_t index, uint32_t count,
		      char *scratch, uint64_t *begin, uint64_t *end)
{
	int rc = partition_begin(source, index, count, scratch, begin);
	if (rc == 0)
		rc = partition_begin(source, index + 1, count, scratch, end);
	WEIR_ASSERT(rc != 0 || *begin <= *end);
	return rc;
}

/* plan_range with a scan buffer of its own from @arena.  Returns: 0, -ENOMEM or plan_range's. */
static int planned_range(const struct weir_csv_source *source, uint32_t index, uint32_t count,
			 unsigned arena, uint64_t *begin, uint64_t *end)
{
	char *scratch = weir_mem_alloc(CSV_SCAN_WINDOW, 64, arena);
	if (scratch == NULL)
		return -ENOMEM;
	int rc = plan_range(source, index, count, scratch, begin, end);
	weir_mem_free(scratch, arena);
	return rc;
}

static int csv_open(void *ctx, uint32_t partition, uint32_t partition_count, unsigned arena,
		    void **partition_out)
{
	const struct weir_csv_source *source = ctx;
	WEIR_VERIFY(source != NULL && partition_out != NULL);
	WEIR_VERIFY(partition < partition_count);
	uint64_t begin, end;
	int rc = planned_range(source, partition, partition_count, arena, &begin, &end);
	if (rc != 0)
		return rc;
	return open_range(source, begin, end, partition, partition_count, arena, partition_out);
}

static int csv_plan(void *ctx, uint32_t worker_count, struct weir_split *splits, uint32_t max)
{
	const struct weir_csv_source *source = ctx;
	WEIR_VERIFY(worker_count >= 1);
	uint32_t count = worker_count < max ? worker_count : max;
	char *scratch = weir_mem_alloc(CSV_SCAN_WINDOW, 64, WEIR_MEM_ARENA_DEFAULT);
	if (scratch == NULL)
		return -ENOMEM;
	int rc = 0;
	for (uint32_t i = 0; i < count && rc == 0; i++) {
		splits[i] = (struct weir_split){.step = 1, .max_seen = WEIR_WATERMARK_NONE};
		rc = plan_range(source, i, count, scratch, &splits[i].begin, &splits[i].end);
	}
	weir_mem_free(scratch, WEIR_MEM_ARENA_DEFAULT);
	return rc != 0 ? rc : (int)count;
}

static int csv_open_split(void *ctx, const struct weir_split *split, uint32_t index,
			  uint32_t count, unsigned arena, void **partition_out)
{
	const struct weir_csv_source *source = ctx;
	WEIR_VERIFY(index < count);
	if (split->begin > split->end || split->end > source->file_length ||
	    (split->begin < source->data_begin && split->begin != split->end)) {
		fprintf(stderr, "weir: %s: a checkpoint's position [%llu, %llu) is not in this "
				"file of %llu bytes (was it changed?)\n",
			source->path, (unsigned long long)split->begin,
			(unsigned long long)split->end, (unsigned long long)source->file_length);
		return -ESPIPE;
	}
	/* Where the plan began this split: elsewhere, the lines before were read by a run before
	 * a checkpoint, and this run's line numbers would not be the file's. */
	uint64_t planned_begin, planned_end;
	int rc = planned_range(source, index, count, arena, &planned_begin, &planned_end);
	if (rc == 0)
		rc = open_range(source, split->begin, split->end, index, count, arena,
				partition_out);
	if (rc == 0)
		((struct csv_partition *)*partition_out)->result.resumed =
			split->begin != planned_begin;
	return rc;
}

/* The file offset of the first byte not yet parsed: the next line to take. */
static void csv_position(const void *partition, struct weir_split *split)
{
	const struct csv_partition *part = partition;
	split->end = part->end;
	split->step = 1;
	if (part->ended || part->current < 0) {
		split->begin = part->ended ? part->end : part->begin;
		return;
	}
	split->begin = file_offset(part, part->cursor);
	WEIR_ASSERT(split->begin >= part->begin && split->begin <= part->end);
}

/* Copies @part's counters into the source's slot for it.  The slots are allocated here, on the
 * main thread, because open() runs on many workers at once and must not share a write. */
static void keep_result(struct weir_csv_source *source, const struct csv_partition *part)
{
	if (source->results == NULL || source->result_count != part->count) {
		weir_mem_free(source->results, WEIR_MEM_ARENA_DEFAULT);
		source->result_count = 0;
		size_t length = sizeof(struct csv_result) * part->count;
		source->results = weir_mem_alloc(length, _Alignof(struct csv_result),
						 WEIR_MEM_ARENA_DEFAULT);
		if (source->results == NULL) {
			fprintf(stderr, "weir: %s: out of memory, line counts are lost\n",
				source->path);
			return;
		}
		source->result_count = part->count;
	}
	WEIR_VERIFY(part->index < source->result_count);
	source->results[part->index] = part->result;
}

static void csv_close(void *ctx, void *partition)
{
	struct weir_csv_source *source = ctx;
	struct csv_partition *part = partition;
	WEIR_VERIFY(source != NULL && part != NULL);
	WEIR_VERIFY(part->source == source);
	if (part->ring_ready) {
		partition_drain(part);
		io_uring_queue_exit(&part->ring);
	}
	keep_result(source, part);
	partition_free(part);
}

/* On the worker that submitted the reads: wait for them while it still exists. */
static void csv_finish(void *partition)
{
	struct csv_partition *part = partition;
	if (part->ring_ready)
		partition_drain(part);
}

static const struct weir_source_vtable csv_vtable = {
	.open = csv_open,
	.pull = csv_pull,
	.close = csv_close,
	.plan = csv_plan,
	.open_split = csv_open_split,
	.position = csv_position,
	.finish = csv_finish,
};

/* ---- the source ---- */

/* Reads the header line into @scratch (WEIR_CSV_LINE_LENGTH_MAX + 1 bytes) and checks it. */
static int read_header(struct weir_csv_source *source, char *scratch, char *error,
		       size_t error_length)
{
	uint64_t want = source->file_length < WEIR_CSV_LINE_LENGTH_MAX + 1
				? source->file_length
				: WEIR_CSV_LINE_LENGTH_MAX + 1;
	uint64_t got = 0;
	while (got < want) {
		ssize_t rc = pread(source->fd, scratch + got, want - got, (off_t)got);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0) {
			int err = -errno;
			snprintf(error, error_length, "%s: %s", source->path, strerror(-err));
			return err;
		}
		if (rc == 0)
			break;
		got += (uint64_t)rc;
	}
	const char *newline = memchr(scratch, '\n', got);
	if (newline == NULL && got > WEIR_CSV_LINE_LENGTH_MAX) {
		snprintf(error, error_length, "%s: header line longer than %u bytes", source->path,
			 WEIR_CSV_LINE_LENGTH_MAX);
		return -EINVAL;
	}
	size_t header_length = newline != NULL ? (size_t)(newline - scratch) : got;
	source->data_begin = newline != NULL ? header_length + 1 : source->file_length;
	char message[256];
	int rc = weir_csv_check_header(&source->schema, scratch, header_length, message,
				       sizeof(message));
	if (rc != 0) {
		snprintf(error, error_length, "%s: %s", source->path, message);
		return rc;
	}
	if (message[0] != '\0')
		fprintf(stderr, "weir: %s: warning: %s\n", source->path, message);
	return 0;
}

/* Opens @path without blocking on a FIFO, and keeps it only if it is a non-empty regular
 * file.  Returns: the descriptor (blocking mode, for io_uring), or -errno with @error set. */
static int open_file(const char *path, uint64_t *length_out, char *error, size_t error_length)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int err = -errno;
		snprintf(error, error_length, "%s: %s", path, strerror(-err));
		return err;
	}
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		snprintf(error, error_length, "%s: %s", path, strerror(-rc));
	} else if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		snprintf(error, error_length, "%s: is a directory", path);
	} else if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		snprintf(error, error_length, "%s: not a regular file", path);
	} else if (st.st_size == 0) {
		rc = -EINVAL;
		snprintf(error, error_length, "%s: file is empty (expected a header line)", path);
	} else if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
		/* With O_NONBLOCK io_uring would hand us -EAGAIN for uncached pages. */
		rc = -errno;
		snprintf(error, error_length, "%s: %s", path, strerror(-rc));
	}
	if (rc != 0) {
		close(fd);
		return rc;
	}
	*length_out = (uint64_t)st.st_size;
	return fd;
}

int weir_csv_source_create(struct weir_csv_source **out, const char *path,
			   const struct weir_schema *schema, char *error, size_t error_length)
{
	WEIR_VERIFY(out != NULL && path != NULL && schema != NULL);
	WEIR_VERIFY(error != NULL && error_length > 0);
	error[0] = '\0';
	uint64_t file_length = 0;
	int fd = open_file(path, &file_length, error, error_length);
	if (fd < 0)
		return fd;
	int rc = -ENOMEM;
	struct weir_csv_source *source = weir_mem_alloc(sizeof(*source), WEIR_CACHE_LINE,
							WEIR_MEM_ARENA_DEFAULT);
	if (source == NULL)
		goto err_close;
	source->fd = fd;
	source->file_length = file_length;
	source->schema = *schema;
	size_t path_length = strlen(path);
	source->path = weir_mem_alloc(path_length + 1, 1, WEIR_MEM_ARENA_DEFAULT);
	if (source->path == NULL)
		goto err_free_source;
	memcpy(source->path, path, path_length + 1);
	char *scratch = weir_mem_alloc(WEIR_CSV_LINE_LENGTH_MAX + 1, 64, WEIR_MEM_ARENA_DEFAULT);
	if (scratch == NULL)
		goto err_free_path;
	rc = read_header(source, scratch, error, error_length);
	weir_mem_free(scratch, WEIR_MEM_ARENA_DEFAULT);
	if (rc != 0)
		goto err_free_path;
	WEIR_ASSERT(source->data_begin <= source->file_length);
	*out = source;
	return 0;

err_free_path:
	weir_mem_free(source->path, WEIR_MEM_ARENA_DEFAULT);
err_free_source:
	weir_mem_free(source, WEIR_MEM_ARENA_DEFAULT);
err_close:
	close(fd);
	if (rc == -ENOMEM && error[0] == '\0')
		snprintf(error, error_length, "%s: out of memory", path);
	return rc;
}

void weir_csv_source_destroy(struct weir_csv_source *source)
{
	if (source == NULL)
		return;
	WEIR_VERIFY(source->fd >= 0);
	close(source->fd);
	weir_mem_free(source->results, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(source->path, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(source, WEIR_MEM_ARENA_DEFAULT);
}

struct weir_source weir_csv_source_as_source(struct weir_csv_source *source)
{
	WEIR_VERIFY(source != NULL);
	return (struct weir_source){
		.vtable = &csv_vtable, .ctx = source, .schema = &source->schema};
}

/* ---- reports ---- */

uint64_t weir_csv_source_skipped_count(const struct weir_csv_source *source)
{
	WEIR_VERIFY(source != NULL);
	uint64_t total = 0;
	for (uint32_t i = 0; i < source->result_count; i++)
		total += source->results[i].skipped_count;
	return total;
}

uint64_t weir_csv_source_line_count(const struct weir_csv_source *source)
{
	WEIR_VERIFY(source != NULL);
	uint64_t total = 0;
	for (uint32_t i = 0; i < source->result_count; i++)
		total += source->results[i].line_count;
	return total;
}

/* @line_number 0: unknown (the run resumed from a checkpoint), say the byte offset. */
static void print_fault(const struct weir_csv_source *source, const struct csv_fault_entry *fault,
			uint64_t line_number, FILE *out)
{
	const struct weir_schema *schema = &source->schema;
	if (line_number > 0)
		fprintf(out, "  line %llu: ", (unsigned long long)line_number);
	else
		fprintf(out, "  the line at byte %llu: ", (unsigned long long)fault->offset);
	if (fault->reason == WEIR_CSV_FIELD_COUNT) {
		if (fault->field_index < schema->field_count)
			fprintf(out, "too few fields (%u of %u)\n", fault->field_index,
				schema->field_count);
		else
			fprintf(out, "too many fields (schema has %u)\n", schema->field_count);
	} else if (fault->field_index < schema->field_count) {
		fprintf(out, "field %u (%s): %s\n", fault->field_index + 1,
			schema->fields[fault->field_index].name,
			weir_csv_reason_text(fault->reason));
	} else {
		fprintf(out, "%s\n", weir_csv_reason_text(fault->reason));
	}
}

void weir_csv_source_report(const struct weir_csv_source *source, FILE *out)
{
	WEIR_VERIFY(source != NULL && out != NULL);
	uint64_t skipped = weir_csv_source_skipped_count(source);
	uint64_t read_errors = 0;
	for (uint32_t i = 0; i < source->result_count; i++)
		read_errors += source->results[i].read_error_count;
	if (skipped > 0) {
		fprintf(out, "weir: %s: skipped %llu malformed line%s of %llu\n", source->path,
			(unsigned long long)skipped, skipped == 1 ? "" : "s",
			(unsigned long long)weir_csv_source_line_count(source));
		uint64_t lines_before = 1; /* the header */
		uint32_t printed = 0;
		/* Resumed from a checkpoint: the lines before the resume points were not counted
		 * in this run, so only byte offsets name the lines. */
		bool resumed = false;
		for (uint32_t i = 0; i < source->result_count; i++)
			resumed |= source->results[i].resumed;
		for (uint32_t i = 0; i < source->result_count; i++) {
			const struct csv_result *result = &source->results[i];
			for (uint32_t j = 0; j < result->fault_count; j++) {
				if (printed == WEIR_CSV_SOURCE_FAULTS_MAX)
					break;
				const struct csv_fault_entry *fault = &result->faults[j];
				print_fault(source, fault,
					    resumed ? 0 : lines_before + fault->line_number, out);
				printed++;
			}
			lines_before += result->line_count;
		}
		if (skipped > printed)
			fprintf(out, "  (%llu more not shown)\n",
				(unsigned long long)(skipped - printed));
	}
	if (read_errors > 0)
		fprintf(out, "weir: %s: %llu read error%s, the input was not read to its end\n",
			source->path, (unsigned long long)read_errors, read_errors == 1 ? "" : "s");
}
