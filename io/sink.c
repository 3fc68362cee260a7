#include "io/sink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/job.h"
#include "core/mem.h"
#include "core/ring.h"
#include "core/topo.h"
#include "io/stage.h"

#define SINK_MIN_COLUMNS_MAX 4u /* columns named by weir_sink_options.min_column */
#define SINK_CHUNK_BYTES (64u * 1024u)
#define SINK_CHUNKS_PER_WORKER 8u
/* Top-k: a worker tells the main thread how far its windows are complete at most this
 * often (a chunk each time, rows or not): windows are written within about this much time
 * of their last worker's clock passing them, and the workers' clock steps, thousands a
 * second, do not each cost a chunk. */
#define SINK_PROGRESS_INTERVAL_NS (20u * 1000u * 1000u)

struct sink_chunk {
	uint32_t length;
	uint64_t epoch; /* staged mode: the checkpoint epoch its rows belong to */
	int64_t final_end; /* top-k: its worker's windows ending by this are complete */
	char data[SINK_CHUNK_BYTES];
};

struct sink_worker {
	struct weir_ring to_main;	/* full chunks, worker -> main */
	struct weir_ring back;		/* written chunks, main -> worker */
	void *to_main_slots[SINK_CHUNKS_PER_WORKER];
	void *back_slots[SINK_CHUNKS_PER_WORKER];
	struct sink_chunk *current;
	struct sink_chunk *chunks;	/* SINK_CHUNKS_PER_WORKER of them */
	const struct text_sink *sink;
	uint64_t waits;			/* times this worker waited for a chunk */
	uint64_t epoch;			/* staged mode: epoch of the rows being written */
	unsigned arena;
	/* Top-K mode: this worker's own top rows of the window it last emitted rows of.  A row
	 * that is not among them cannot be among the window's top rows over every worker (the
	 * order is total), so only rows entering them go to the main thread. */
	uint8_t *local_rows; /* top_k rows */
	uint32_t local_count;
	int64_t local_window; /* window_start of local_rows */
	int64_t final_end;	     /* the latest weir_sink_vtable.progress */
	int64_t final_end_sent;	     /* what the last chunk sent said */
	uint64_t final_end_sent_ns; /* when */
};

struct text_sink {
	struct weir_schema schema;
	struct weir_row_format row_format; /* over schema, above */
	enum weir_format format;
	size_t row_length_max;
	int fd;
	bool owns_fd;
	char path[256];
	char error[512];
	uint64_t bytes_written;
	uint64_t waits; /* times a worker found every chunk with the writer (folded at close) */
	_Atomic(struct sink_worker *) workers[WEIR_WORKERS_MAX];
	/* Top-K mode (top_k > 0): workers pass raw rows; the main thread keeps, per window, the
	 * top_k rows with the largest rank column and writes them once every worker completed
	 * the window (weir_sink_vtable.progress), or when the run ends. */
	uint32_t top_k;
	uint32_t rank_offset;   /* i64 column ranked on */
	/* Rows with any of the min columns below min_value are not written (a HAVING clause). */
	uint32_t min_offsets[SINK_MIN_COLUMNS_MAX];
	uint32_t min_column_count;
	int64_t min_value;
	uint32_t window_offset; /* i64 column naming the window */
	/* Windows are written while the job runs once every worker's windows ending by theirs
	 * are complete (weir_sink_vtable.progress); the rest at the end. */
	uint32_t window_end_offset;
	int64_t worker_final_end[WEIR_WORKERS_MAX]; /* main: from each worker's last chunk */
	int64_t written_end; /* main: windows ending by this are written (and gone) */
	struct topk_window *windows;
	uint32_t window_count;
	uint32_t window_capacity;
	/* Staged mode (the job has a state dir): rows reach the file only through the stage,
	 * epoch by epoch, once each epoch's checkpoint is durable. */
	struct weir_stage *stage;
	uint64_t first_epoch; /* of this run: one past the checkpoint it continues from */
	char header[WEIR_SCHEMA_FIELDS_MAX * WEIR_FIELD_NAME_MAX + 2];
	size_t header_length;
};

struct topk_window {
	int64_t start, end;
	uint32_t count;
	uint8_t *rows; /* top_k rows */
};

/* ---- formatting ---- */

/* Two digits per division: timestamps have 13 to 19 of them. */
static size_t format_u64(uint64_t value, char *out)
{
	static const char pairs[201] = "00010203040506070809101112131415161718192021222324"
				       "25262728293031323334353637383940414243444546474849"
				       "50515253545556575859606162636465666768697071727374"
				       "75767778798081828384858687888990919293949596979899";
	char digits[24];
	size_t at = sizeof(digits);
	while (value >= 100) {
		uint32_t pair = (uint32_t)(value % 100) * 2;
		value /= 100;
		digits[--at] = pairs[pair + 1];
		digits[--at] = pairs[pair];
	}
	if (value >= 10) {
		digits[--at] = pairs[value * 2 + 1];
		digits[--at] = pairs[value * 2];
	} else {
		digits[--at] = (char)('0' + value);
	}
	size_t count = sizeof(digits) - at;
	memcpy(out, digits + at, count);
	return count;
}

static size_t format_i64(int64_t value, char *out)
{
	if (value >= 0)
		return format_u64((uint64_t)value, out);
	out[0] = '-';
	return 1 + format_u64(0 - (uint64_t)value, out + 1);
}

size_t weir_format_f64(double value, char *out)
{
	if (!isfinite(value)) {
		memcpy(out, "null", 4);
		return 4;
	}
	for (int precision = 15; precision <= 17; precision++) {
		int length = snprintf(out, 32, "%.*g", precision, value);
		if (precision == 17 || strtod(out, NULL) == value)
			return (size_t)length;
	}
	WEIR_VERIFY(false);
	return 0;
}

static size_t format_string(const char *text, uint32_t length, char *out, bool json)
{
	size_t at = 0;
	if (json) {
		out[at++] = '"';
		/* Most strings need no escape: copy them whole. */
		uint32_t plain = 0;
		while (plain < length && (unsigned char)text[plain] >= 0x20 && text[plain] != '"' &&
		       text[plain] != '\\')
			plain++;
		memcpy(out + at, text, plain);
		at += plain;
		for (uint32_t i = plain; i < length; i++) {
			unsigned char c = (unsigned char)text[i];
			if (c == '"' || c == '\\') {
				out[at++] = '\\';
				out[at++] = (char)c;
			} else if (c < 0x20) {
				at += (size_t)sprintf(out + at, "\\u%04x", c);
			} else {
				out[at++] = (char)c;
			}
		}
		out[at++] = '"';
		return at;
	}
	bool quote = memchr(text, ',', length) != NULL || memchr(text, '"', length) != NULL ||
		     memchr(text, '\n', length) != NULL || memchr(text, '\r', length) != NULL;
	if (quote)
		out[at++] = '"';
	for (uint32_t i = 0; i < length; i++) {
		if (text[i] == '"')
			out[at++] = '"';
		out[at++] = text[i];
	}
	if (quote)
		out[at++] = '"';
	return at;
}

static size_t format_value(const struct weir_field *field, const uint8_t *record, char *out,
			   bool json)
{
	uint64_t u;
	switch (field->type) {
	case WEIR_TYPE_I64:
	case WEIR_TYPE_TS:
		return format_i64(weir_field_get_i64(field, record), out);
	case WEIR_TYPE_U64:
		memcpy(&u, record + field->offset, sizeof(u));
		return format_u64(u, out);
	case WEIR_TYPE_F64:
		return weir_format_f64(weir_field_get_f64(field, record), out);
	case WEIR_TYPE_STR: {
		uint32_t length;
		const char *text = weir_field_get_str(field, record, &length);
		return format_string(text, length, out, json);
	}
	case WEIR_TYPE_IPV4:
	case WEIR_TYPE_IPV6:
	case WEIR_TYPE_IP: {
		char text[INET6_ADDRSTRLEN];
		const uint8_t *address = record + field->offset;
		int family = field->type == WEIR_TYPE_IPV4 ? AF_INET : AF_INET6;
		if (field->type == WEIR_TYPE_IP && weir_ip_is_v4_mapped(address)) {
			family = AF_INET; /* dotted quad, as people write IPv4 */
			address += 12;
		}
		inet_ntop(family, address, text, sizeof(text));
		size_t length = strlen(text);
		size_t at = 0;
		if (json)
			out[at++] = '"';
		memcpy(out + at, text, length);
		at += length;
		if (json)
			out[at++] = '"';
		return at;
	}
	}
	WEIR_VERIFY(false);
	return 0;
}

void weir_row_format_init(struct weir_row_format *format, const struct weir_schema *schema)
{
	WEIR_VERIFY(format != NULL && schema != NULL);
	format->schema = schema;
	format->length_max = weir_format_row_length_max(schema);
	for (uint32_t i = 0; i < schema->field_count; i++) {
		/* {"a":1,"b":2}: the first key follows '{', the others ','. */
		int length = snprintf(format->key_prefix[i], sizeof(format->key_prefix[i]),
				      "%c\"%s\":", i == 0 ? '{' : ',', schema->fields[i].name);
		WEIR_VERIFY(length > 0 && (size_t)length < sizeof(format->key_prefix[i]));
		format->key_prefix_length[i] = (uint8_t)length;
	}
}

size_t weir_format_jsonl(const struct weir_row_format *format, const uint8_t *record, char *out)
{
	const struct weir_schema *schema = format->schema;
	size_t at = 0;
	for (uint32_t i = 0; i < schema->field_count; i++) {
		memcpy(out + at, format->key_prefix[i], format->key_prefix_length[i]);
		at += format->key_prefix_length[i];
		at += format_value(&schema->fields[i], record, out + at, true);
	}
	out[at++] = '}';
	out[at++] = '\n';
	WEIR_ASSERT(at <= format->length_max);
	return at;
}

size_t weir_format_csv(const struct weir_row_format *format, const uint8_t *record, char *out)
{
	const struct weir_schema *schema = format->schema;
	size_t at = 0;
	for (uint32_t i = 0; i < schema->field_count; i++) {
		if (i > 0)
			out[at++] = ',';
		at += format_value(&schema->fields[i], record, out + at, false);
	}
	out[at++] = '\n';
	WEIR_ASSERT(at <= format->length_max);
	return at;
}

size_t weir_format_row_length_max(const struct weir_schema *schema)
{
	size_t length = 4;
	for (uint32_t i = 0; i < schema->field_count; i++) {
		const struct weir_field *field = &schema->fields[i];
		length += strlen(field->name) + 4;
		if (field->type == WEIR_TYPE_STR)
			length += 6u * field->max_length + 2; /* every byte escaped as \u00XX */
		else
			length += 48; /* numbers, addresses, null */
	}
	return length;
}

/* ---- the sink ---- */

static int64_t row_i64(const uint8_t *row, uint32_t offset)
{
	int64_t value;
	memcpy(&value, row + offset, sizeof(value));
	return value;
}


static int sink_open(void *ctx, uint32_t worker_id, unsigned arena, void **instance_out)
{
	struct text_sink *sink = ctx;
	WEIR_VERIFY(worker_id < WEIR_WORKERS_MAX);
	struct sink_worker *worker = weir_mem_alloc(sizeof(*worker), WEIR_CACHE_LINE, arena);
	if (worker == NULL)
		return -ENOMEM;
	worker->chunks = weir_mem_alloc(sizeof(struct sink_chunk) * SINK_CHUNKS_PER_WORKER,
					WEIR_CACHE_LINE, arena);
	if (worker->chunks == NULL) {
		weir_mem_free(worker, arena);
		return -ENOMEM;
	}
	if (sink->top_k > 0) {
		worker->local_rows = weir_mem_alloc((size_t)sink->top_k *
							    sink->schema.record_length,
						    8, arena);
		if (worker->local_rows == NULL) {
			weir_mem_free(worker->chunks, arena);
			weir_mem_free(worker, arena);
			return -ENOMEM;
		}
		worker->local_window = INT64_MIN;
	}
	worker->final_end = INT64_MIN;
	worker->final_end_sent = INT64_MIN;
	worker->final_end_sent_ns = 0;
	worker->sink = sink;
	worker->arena = arena;
	worker->epoch = sink->first_epoch;
	int rc = weir_ring_init(&worker->to_main, worker->to_main_slots, SINK_CHUNKS_PER_WORKER);
	rc |= weir_ring_init(&worker->back, worker->back_slots, SINK_CHUNKS_PER_WORKER);
	WEIR_VERIFY(rc == 0);
	/* The worker's own side of `back` is the consumer: seed it with the spare chunks by
	 * acting as main once, before anyone else can see the rings. */
	for (uint32_t i = 1; i < SINK_CHUNKS_PER_WORKER; i++) {
		void *chunk = &worker->chunks[i];
		WEIR_VERIFY(weir_ring_enqueue_burst_spsc(&worker->back, &chunk, 1) == 1);
	}
	worker->current = &worker->chunks[0];
	worker->current->length = 0;
	atomic_store_explicit(&sink->workers[worker_id], worker, memory_order_release);
	*instance_out = worker;
	return 0;
}

static void chunk_send(struct sink_worker *worker)
{
	worker->current->epoch = worker->epoch;
	/* Every row of a window ending by final_end was written before now: in this chunk
	 * or an earlier one. */
	worker->current->final_end = worker->final_end;
	worker->final_end_sent = worker->final_end;
	worker->final_end_sent_ns = weir_clock_ns();
	uint32_t sent = weir_ring_enqueue_burst_spsc(&worker->to_main,
						     (void *const *)&worker->current, 1);
	/* to_main has a slot for every chunk this worker owns. */
	WEIR_VERIFY(sent == 1);
	void *next = NULL;
	while (weir_ring_dequeue_burst_spsc(&worker->back, &next, 1) == 0) {
		worker->waits++;
		sched_yield(); /* the main thread is writing; it never waits on us */
	}
	worker->current = next;
	worker->current->length = 0;
}

/* The order of a window's top rows: the larger rank first, and between equal ranks the row
 * whose bytes compare lower, so that which of several tied rows make the top k does not
 * depend on the order rows arrived in (that is, on the worker count).  Returns: < 0 when @a
 * goes before @b, 0 for identical rows, > 0 after. */
static int topk_order(uint32_t rank_offset, uint32_t length, const uint8_t *a, const uint8_t *b)
{
	int64_t x = row_i64(a, rank_offset), y = row_i64(b, rank_offset);
	if (x != y)
		return x > y ? -1 : 1;
	return memcmp(a, b, length);
}

/* Puts @row among @rows (@count of at most @top_k rows of @length bytes) if it goes before the
 * last of them in topk_order, replacing that one when they are @top_k.  Returns: whether it
 * went in. */
static bool topk_insert(uint8_t *rows, uint32_t *count, uint32_t top_k, uint32_t rank_offset,
			uint32_t length, const uint8_t *row)
{
	WEIR_ASSERT(*count <= top_k && top_k > 0);
	uint32_t slot = *count;
	if (*count == top_k) {
		slot = 0; /* the last of the order, which @row may replace */
		for (uint32_t i = 1; i < *count; i++) {
			if (topk_order(rank_offset, length, rows + (size_t)i * length,
				       rows + (size_t)slot * length) > 0)
				slot = i;
		}
		if (topk_order(rank_offset, length, row, rows + (size_t)slot * length) >= 0)
			return false;
	} else {
		(*count)++;
	}
	memcpy(rows + (size_t)slot * length, row, length);
	return true;
}

/* Whether @row enters this worker's own top rows of its window (and so may enter the
 * window's top rows over every worker).  Windows fire in order, so keeping only the latest
 * window's rows loses nothing but the filtering of a late re-emitted row, which is then sent
 * on.  Context: the worker's thread. */
static bool local_topk_admits(struct sink_worker *worker, const uint8_t *row)
{
	const struct text_sink *sink = worker->sink;
	const uint32_t length = sink->schema.record_length;
	int64_t window = row_i64(row, sink->window_offset);
	WEIR_ASSERT(worker->local_rows != NULL);
	if (window != worker->local_window) {
		worker->local_window = window;
		worker->local_count = 0;
	}
	return topk_insert(worker->local_rows, &worker->local_count, sink->top_k, sink->rank_offset,
			   length, row);
}

/* The row has every min column at min_value or above (true when there are none). */
static bool row_passes(const struct text_sink *sink, const uint8_t *row)
{
	for (uint32_t c = 0; c < sink->min_column_count; c++) {
		if (row_i64(row, sink->min_offsets[c]) < sink->min_value)
			return false;
	}
	return true;
}

static void sink_write(void *instance, const uint8_t *records, uint32_t count)
{
	struct sink_worker *worker = instance;
	const struct text_sink *sink = worker->sink;
	const uint32_t record_length = sink->schema.record_length;
	if (sink->format == WEIR_FORMAT_DISCARD)
		return; /* the emitter counted them */
	if (sink->top_k > 0) { /* raw rows; the main thread ranks them */
		for (uint32_t i = 0; i < count; i++) {
			if (!row_passes(sink, records + (size_t)i * record_length) ||
			    !local_topk_admits(worker, records + (size_t)i * record_length))
				continue;
			if (SINK_CHUNK_BYTES - worker->current->length < record_length)
				chunk_send(worker);
			memcpy(worker->current->data + worker->current->length,
			       records + (size_t)i * record_length, record_length);
			worker->current->length += record_length;
		}
		return;
	}
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *record = records + (size_t)i * sink->schema.record_length;
		if (!row_passes(sink, record))
			continue;
		if (SINK_CHUNK_BYTES - worker->current->length < sink->row_length_max)
			chunk_send(worker);
		char *out = worker->current->data + worker->current->length;
		size_t length = sink->format == WEIR_FORMAT_CSV
					? weir_format_csv(&sink->row_format, record, out)
					: weir_format_jsonl(&sink->row_format, record, out);
		worker->current->length += (uint32_t)length;
		WEIR_ASSERT(worker->current->length <= SINK_CHUNK_BYTES);
	}
}

static void sink_finish(void *instance)
{
	struct sink_worker *worker = instance;
	if (worker->current->length > 0)
		chunk_send(worker);
}

static void sink_progress(void *instance, int64_t final_end)
{
	struct sink_worker *worker = instance;
	const struct text_sink *sink = worker->sink;
	WEIR_ASSERT(final_end >= worker->final_end);
	worker->final_end = final_end;
	if (sink->top_k == 0 || final_end == worker->final_end_sent)
		return;
	if (weir_clock_ns() - worker->final_end_sent_ns < SINK_PROGRESS_INTERVAL_NS)
		return;
	chunk_send(worker);
}

static void sink_write_all(struct text_sink *sink, const char *data, size_t length)
{
	if (sink->error[0] != '\0')
		return; /* output already failed: drop the rest, the job reports the error */
	while (length > 0) {
		ssize_t written = write(sink->fd, data, length);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0) {
			snprintf(sink->error, sizeof(sink->error), "writing %s at byte %llu: %s",
				 sink->path, (unsigned long long)sink->bytes_written,
				 written < 0 ? strerror(errno) : "wrote nothing");
			return;
		}
		data += written;
		length -= (size_t)written;
		sink->bytes_written += (uint64_t)written;
	}
}

static struct topk_window *topk_window_for(struct text_sink *sink, int64_t start, int64_t end)
{
	for (uint32_t w = sink->window_count; w-- > 0;) {
		if (sink->windows[w].start == start)
			return &sink->windows[w];
	}
	if (sink->window_count == sink->window_capacity) {
		uint32_t capacity = sink->window_capacity == 0 ? 64 : sink->window_capacity * 2;
		struct topk_window *bigger = weir_mem_realloc(
			sink->windows, sizeof(*bigger) * capacity, WEIR_MEM_ARENA_DEFAULT);
		if (bigger == NULL)
			return NULL;
		sink->windows = bigger;
		sink->window_capacity = capacity;
	}
	struct topk_window *window = &sink->windows[sink->window_count];
	window->rows = weir_mem_alloc((size_t)sink->top_k * sink->schema.record_length, 8,
				      WEIR_MEM_ARENA_DEFAULT);
	if (window->rows == NULL)
		return NULL;
	window->start = start;
	window->end = sink->window_end_offset != UINT32_MAX ? end : INT64_MAX;
	window->count = 0;
	sink->window_count++;
	return window;
}

/* Keeps @row if it ranks among its window's top_k so far.  Context: main thread. */
static void topk_offer(struct text_sink *sink, const uint8_t *row)
{
	const uint32_t length = sink->schema.record_length;
	int64_t end = sink->window_end_offset != UINT32_MAX
			      ? row_i64(row, sink->window_end_offset)
			      : INT64_MAX;
	if (end <= sink->written_end) {
		/* The operator said this window was complete (progress): a broken promise,
		 * reported rather than written twice or dropped unseen. */
		snprintf(sink->error, sizeof(sink->error),
			 "top-k of %s: a row of the window ending at %lld came after that window "
			 "was written", sink->path, (long long)end);
		return;
	}
	struct topk_window *window =
		topk_window_for(sink, row_i64(row, sink->window_offset), end);
	if (window == NULL) {
		snprintf(sink->error, sizeof(sink->error), "top-k of %s: out of memory",
			 sink->path);
		return;
	}
	topk_insert(window->rows, &window->count, sink->top_k, sink->rank_offset, length, row);
}

/* For the qsort comparators below: one sort at a time. */
static uint32_t sink_rank_offset;
static uint32_t sink_row_length;

static int compare_windows(const void *a, const void *b)
{
	const struct topk_window *x = a, *y = b;
	return (x->start > y->start) - (x->start < y->start);
}

static int compare_rows_ranked(const void *a, const void *b)
{
	return topk_order(sink_rank_offset, sink_row_length, a, b);
}

/* Main thread: writes the top rows of every window ending at or before @limit, in window
 * order (ranked within each), and lets them go. */
static void topk_write_windows(struct text_sink *sink, int64_t limit)
{
	uint32_t ready = 0;
	for (uint32_t w = 0; w < sink->window_count; w++)
		ready += sink->windows[w].end <= limit;
	if (ready == 0)
		return;
	const uint32_t length = sink->schema.record_length;
	char *line = weir_mem_alloc(sink->row_length_max, 8, WEIR_MEM_ARENA_DEFAULT);
	if (line == NULL) {
		snprintf(sink->error, sizeof(sink->error), "top-k of %s: out of memory",
			 sink->path);
		return;
	}
	/* Windows of one size end in the order they start: the ready ones sort first. */
	qsort(sink->windows, sink->window_count, sizeof(*sink->windows), compare_windows);
	sink_rank_offset = sink->rank_offset;
	sink_row_length = length;
	uint32_t written = 0;
	while (written < sink->window_count && sink->windows[written].end <= limit) {
		struct topk_window *window = &sink->windows[written];
		qsort(window->rows, window->count, length, compare_rows_ranked);
		for (uint32_t r = 0; r < window->count; r++) {
			const uint8_t *row = window->rows + (size_t)r * length;
			size_t bytes = sink->format == WEIR_FORMAT_CSV
					       ? weir_format_csv(&sink->row_format, row, line)
					       : weir_format_jsonl(&sink->row_format, row, line);
			sink_write_all(sink, line, bytes);
		}
		if (window->end > sink->written_end)
			sink->written_end = window->end;
		weir_mem_free(window->rows, WEIR_MEM_ARENA_DEFAULT);
		written++;
	}
	WEIR_ASSERT(written == ready);
	memmove(sink->windows, sink->windows + written,
		sizeof(*sink->windows) * (sink->window_count - written));
	sink->window_count -= written;
	weir_mem_free(line, WEIR_MEM_ARENA_DEFAULT);
}

/* Main thread, while the workers run: the windows every worker has completed. */
static void topk_write_completed(struct text_sink *sink)
{
	int64_t limit = INT64_MAX;
	bool any = false;
	for (uint32_t w = 0; w < WEIR_WORKERS_MAX; w++) {
		/* Every worker registered before any of them ran (the job's start barrier), so
		 * once a chunk came, none is missing here. */
		if (atomic_load_explicit(&sink->workers[w], memory_order_acquire) == NULL)
			continue;
		any = true;
		if (sink->worker_final_end[w] < limit)
			limit = sink->worker_final_end[w];
	}
	if (any && limit != INT64_MIN)
		topk_write_windows(sink, limit);
}

/* Main thread, after the last rows arrived: the top rows of every window not yet written. */
static void sink_end(void *ctx)
{
	struct text_sink *sink = ctx;
	if (sink->top_k > 0)
		topk_write_windows(sink, INT64_MAX);
}

static void stage_chunk(struct text_sink *sink, const struct sink_chunk *chunk)
{
	if (sink->error[0] != '\0' || chunk->length == 0)
		return;
	if (weir_stage_append(sink->stage, chunk->epoch, chunk->data, chunk->length) != 0)
		snprintf(sink->error, sizeof(sink->error), "%s", weir_stage_error(sink->stage));
}

static uint32_t sink_poll_main(void *ctx)
{
	struct text_sink *sink = ctx;
	uint32_t work = 0;
	bool progressed = false;
	for (uint32_t w = 0; w < WEIR_WORKERS_MAX; w++) {
		struct sink_worker *worker =
			atomic_load_explicit(&sink->workers[w], memory_order_acquire);
		if (worker == NULL)
			continue;
		void *chunk_pointer;
		while (weir_ring_dequeue_burst_spsc(&worker->to_main, &chunk_pointer, 1) == 1) {
			struct sink_chunk *chunk = chunk_pointer;
			if (sink->top_k > 0) {
				for (uint32_t at = 0; at < chunk->length;
				     at += sink->schema.record_length)
					topk_offer(sink, (const uint8_t *)chunk->data + at);
				WEIR_ASSERT(chunk->final_end >= sink->worker_final_end[w]);
				sink->worker_final_end[w] = chunk->final_end;
				progressed = true;
			} else if (sink->stage != NULL) {
				stage_chunk(sink, chunk);
			} else {
				sink_write_all(sink, chunk->data, chunk->length);
			}
			chunk->length = 0;
			WEIR_VERIFY(weir_ring_enqueue_burst_spsc(&worker->back, &chunk_pointer,
								 1) == 1);
			work++;
		}
	}
	if (progressed)
		topk_write_completed(sink);
	return work;
}

static void sink_close(void *ctx, void *instance)
{
	struct text_sink *sink = ctx;
	struct sink_worker *worker = instance;
	for (uint32_t w = 0; w < WEIR_WORKERS_MAX; w++) {
		if (atomic_load(&sink->workers[w]) == worker)
			atomic_store(&sink->workers[w], NULL);
	}
	sink->waits += worker->waits;
	unsigned arena = worker->arena;
	weir_mem_free(worker->local_rows, arena);
	weir_mem_free(worker->chunks, arena);
	weir_mem_free(worker, arena);
}

static const char *sink_error(void *ctx)
{
	const struct text_sink *sink = ctx;
	return sink->error[0] != '\0' ? sink->error : NULL;
}

static const struct weir_sink_vtable text_sink_vtable = {
	.open = sink_open,
	.write = sink_write,
	.finish = sink_finish,
	.poll_main = sink_poll_main,
	.close = sink_close,
	.error = sink_error,
	.end = sink_end,
	.progress = sink_progress,
};

/* ---- staged mode: the sink's part of a checkpoint ---- */

static void staged_barrier(void *instance, uint64_t epoch)
{
	struct sink_worker *worker = instance;
	WEIR_ASSERT(epoch >= worker->epoch);
	if (worker->current->length > 0)
		chunk_send(worker); /* tagged with the epoch ending here */
	worker->epoch = epoch + 1;
}

/* The stage's error, as the sink's (the job reports it through error()). */
static int staged_result(struct text_sink *sink, int rc)
{
	if (rc != 0 && sink->error[0] == '\0')
		snprintf(sink->error, sizeof(sink->error), "%s", weir_stage_error(sink->stage));
	return rc;
}

static int staged_recover(void *ctx, const struct weir_checkpoint_info *info, uint32_t index)
{
	struct text_sink *sink = ctx;
	(void)index;
	sink->first_epoch = info != NULL ? info->epoch + 1 : 1;
	if (sink->stage == NULL)
		return 0; /* discarded rows: nothing to keep */
	int rc = weir_stage_recover(sink->stage, info, sink->header, sink->header_length);
	sink->bytes_written = weir_stage_published_length(sink->stage);
	return staged_result(sink, rc);
}

static int staged_prepare(void *ctx, uint64_t epoch, uint64_t *bytes_after)
{
	struct text_sink *sink = ctx;
	*bytes_after = 0;
	if (sink->error[0] != '\0')
		return -EIO;
	if (sink->stage == NULL)
		return 0;
	return staged_result(sink, weir_stage_prepare(sink->stage, epoch, bytes_after));
}

static int staged_publish(void *ctx, uint64_t epoch)
{
	struct text_sink *sink = ctx;
	if (sink->stage == NULL)
		return 0;
	int rc = weir_stage_publish(sink->stage, epoch);
	sink->bytes_written = weir_stage_published_length(sink->stage);
	return staged_result(sink, rc);
}

static const struct weir_sink_vtable staged_sink_vtable = {
	.open = sink_open,
	.write = sink_write,
	.finish = sink_finish,
	.poll_main = sink_poll_main,
	.close = sink_close,
	.error = sink_error,
	.end = sink_end,
	.barrier = staged_barrier,
	.recover = staged_recover,
	.prepare = staged_prepare,
	.publish = staged_publish,
};

static void sink_destroy(void *ctx)
{
	struct text_sink *sink = ctx;
	weir_stage_destroy(sink->stage);
	if (sink->owns_fd)
		close(sink->fd);
	for (uint32_t w = 0; w < sink->window_count; w++)
		weir_mem_free(sink->windows[w].rows, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(sink->windows, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(sink, WEIR_MEM_ARENA_DEFAULT);
}

/* The output's bound is its chunks: a worker that finds them all with the writer waits. */
static void sink_report(void *ctx, FILE *stream)
{
	const struct text_sink *sink = ctx;
	if (sink->format == WEIR_FORMAT_DISCARD)
		return;
	fprintf(stream, "weir: output %s: %llu bytes written", sink->path,
		(unsigned long long)sink->bytes_written);
	if (sink->waits > 0)
		fprintf(stream, "; workers waited %llu times for the writer (output-bound)",
			(unsigned long long)sink->waits);
	fprintf(stream, "\n");
}

static void csv_header(struct text_sink *sink)
{
	char *line = sink->header;
	size_t at = 0;
	for (uint32_t i = 0; i < sink->schema.field_count; i++) {
		size_t length = strlen(sink->schema.fields[i].name);
		if (i > 0)
			line[at++] = ',';
		memcpy(line + at, sink->schema.fields[i].name, length);
		at += length;
	}
	line[at++] = '\n';
	sink->header_length = at;
}

/* An integer output column's offset, or a job error naming it. */
static int integer_column(struct weir_job *job, const struct weir_schema *schema,
			  const char *name, uint32_t *offset)
{
	int index = name != NULL ? weir_schema_find(schema, name) : -ENOENT;
	if (index < 0 || !weir_type_is_integer(schema->fields[index].type))
		return weir_job_fail(job, -EINVAL, "sink: no integer output column '%s'",
				     name != NULL ? name : "(none)");
	*offset = schema->fields[index].offset;
	return 0;
}

/* Parses @list ("persons,auctions"): the integer columns that must reach min_value. */
static int min_columns(struct weir_job *job, const struct weir_schema *schema, const char *list,
		       struct text_sink *sink)
{
	const char *at = list;
	while (true) {
		size_t length = strcspn(at, ",");
		char name[WEIR_FIELD_NAME_MAX + 1];
		if (length == 0 || length >= sizeof(name))
			return weir_job_fail(job, -EINVAL, "sink: bad minimum column list '%s'",
					     list);
		if (sink->min_column_count == SINK_MIN_COLUMNS_MAX)
			return weir_job_fail(job, -EINVAL,
					     "sink: more than %u minimum columns in '%s'",
					     SINK_MIN_COLUMNS_MAX, list);
		memcpy(name, at, length);
		name[length] = '\0';
		int rc = integer_column(job, schema, name,
					&sink->min_offsets[sink->min_column_count]);
		if (rc != 0)
			return rc;
		sink->min_column_count++;
		if (at[length] == '\0')
			break;
		at += length + 1;
	}
	WEIR_ASSERT(sink->min_column_count > 0);
	return 0;
}

static int attach_text_sink(struct weir_job *job, bool late,
			    const struct weir_sink_options *options)
{
	const char *path = options->path;
	enum weir_format format = options->format;
	const struct weir_schema *schema = weir_job_sink_schema(job, late);
	if (schema == NULL)
		return weir_job_fail(job, -EINVAL, "sink: add key_by and a window first");
	struct text_sink *sink = weir_mem_alloc(sizeof(*sink), WEIR_CACHE_LINE,
						WEIR_MEM_ARENA_DEFAULT);
	if (sink == NULL)
		return weir_job_fail(job, -ENOMEM, "sink: out of memory");
	sink->schema = *schema;
	sink->format = format;
	int rc = 0;
	if (options->top_k > 0) {
		rc = integer_column(job, schema, options->rank_column, &sink->rank_offset);
		if (rc == 0)
			rc = integer_column(job, schema, "window_start", &sink->window_offset);
		int end_index = weir_schema_find(schema, "window_end");
		sink->window_end_offset =
			end_index >= 0 ? schema->fields[end_index].offset : UINT32_MAX;
		sink->written_end = INT64_MIN;
		for (uint32_t w = 0; w < WEIR_WORKERS_MAX; w++)
			sink->worker_final_end[w] = INT64_MIN;
		sink->top_k = options->top_k;
		WEIR_VERIFY(schema->record_length <= SINK_CHUNK_BYTES);
	}
	if (rc == 0 && options->min_column != NULL) {
		rc = min_columns(job, schema, options->min_column, sink);
		sink->min_value = options->min_value;
	}
	if (rc != 0) {
		weir_mem_free(sink, WEIR_MEM_ARENA_DEFAULT);
		return rc;
	}
	weir_row_format_init(&sink->row_format, &sink->schema);
	sink->row_length_max = sink->row_format.length_max;
	WEIR_VERIFY(sink->row_length_max <= SINK_CHUNK_BYTES);
	bool to_stdout = format != WEIR_FORMAT_DISCARD && (path == NULL || strcmp(path, "-") == 0);
	const char *state_dir = weir_job_state_dir(job);
	if (state_dir != NULL && (to_stdout || options->top_k > 0)) {
		weir_mem_free(sink, WEIR_MEM_ARENA_DEFAULT);
		return weir_job_fail(job, -EINVAL,
				     "sink: with a state dir, output goes to a file (--out), and "
				     "without --top, so that it can be committed with checkpoints");
	}
	if (format == WEIR_FORMAT_DISCARD)
		path = "(discarded)";
	snprintf(sink->path, sizeof(sink->path), "%s", to_stdout ? "standard output" : path);
	sink->fd = STDOUT_FILENO;
	if (!to_stdout && format != WEIR_FORMAT_DISCARD) {
		/* Staged: the file is cut back to its last checkpoint at recovery, not now. */
		int flags = state_dir != NULL ? O_RDWR | O_CREAT | O_CLOEXEC
					      : O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
		sink->fd = open(path, flags, 0644);
		if (sink->fd < 0) {
			rc = -errno;
			weir_mem_free(sink, WEIR_MEM_ARENA_DEFAULT);
			return weir_job_fail(job, rc, "cannot open output %s: %s", path,
					     strerror(-rc));
		}
		sink->owns_fd = true;
	}
	if (format == WEIR_FORMAT_CSV)
		csv_header(sink);
	struct weir_component component = {
		.ctx = sink, .destroy = sink_destroy, .report = sink_report};
	if (state_dir == NULL) {
		sink_write_all(sink, sink->header, sink->header_length);
		return weir_job_attach_sink(job, late, &text_sink_vtable, sink, component);
	}
	if (format != WEIR_FORMAT_DISCARD) {
		char message[400] = "";
		rc = weir_stage_create(&sink->stage, state_dir, late ? 1 : 0, sink->fd, sink->path,
				       message, sizeof(message));
		if (rc != 0) {
			sink_destroy(sink);
			return weir_job_fail(job, rc, "sink: %s", message);
		}
	}
	return weir_job_attach_sink(job, late, &staged_sink_vtable, sink, component);
}

int weir_job_sink(struct weir_job *job, const char *path, enum weir_format format)
{
	struct weir_sink_options options = {.path = path, .format = format};
	return attach_text_sink(job, false, &options);
}

int weir_job_sink_with(struct weir_job *job, const struct weir_sink_options *options)
{
	WEIR_VERIFY(options != NULL);
	return attach_text_sink(job, false, options);
}

int weir_job_late_sink(struct weir_job *job, const char *path, enum weir_format format)
{
	struct weir_sink_options options = {.path = path, .format = format};
	return attach_text_sink(job, true, &options);
}
