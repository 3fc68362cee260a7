/* NetFlow-style flow records over packet events (WEIR_PACKET_SCHEMA): one record per 5-tuple
 * (src, dst, sport, dport, proto; each direction is its own flow) from its first packet to
 * its end, with packets, bytes and the OR of the TCP flags seen.  A record ends:
 *   "idle"   no packet for more than idle_timeout (seen when the next packet of the 5-tuple
 *            comes, or when the watermark passes last_seen + idle_timeout);
 *   "active" it has lasted active_timeout: the packet at first_seen + active_timeout or later
 *            starts the next record of a long flow;
 *   "fin"    a TCP packet with FIN (and no RST) was added; "rst": a TCP packet with RST;
 *   "end"    the input ended with the record still open.
 *
 * Each worker keeps its open records in a state/table.h table keyed by the encoded 5-tuple.
 * Event time is the ts column; events may come out of order within the job's
 * out_of_orderness: first_seen is the minimum and last_seen the maximum of the record's
 * packets.  An event later than that (older than the worker's watermark) is still added, to
 * its open record or to a new one, and counted as late (reported, and in the job's
 * late_updates); it is never dropped.  An event whose new record the state budget refuses is
 * counted (state_full) and reported.
 *
 * The watermark scan that expires idle records walks the whole table, so it runs at most once
 * per idle_timeout / 4 of event time; an idle record may therefore be emitted up to that much
 * later than the watermark allows, never with different contents: a packet of an expired
 * 5-tuple that comes before the scan still splits it (the expiry test runs per event too).
 * At the end of the input a record is "idle" when it was idle by the input's end time (the
 * largest watermark any source sent, plus the out-of-orderness: the latest event time of the
 * input), else "end"; so which reason it gets depends neither on when the scans ran nor on
 * the number of workers or the order the sources ended in.
 *
 * Checkpoints: a record changed since the last one is written again (FLOWREC_RECORD), a record
 * that ended is written as a tombstone (FLOWREC_DELETE, before the changed records, since a
 * 5-tuple can end and start again within one epoch), and the worker's latest event time as a
 * record of the shard (FLOWREC_META).  Records end on events, not on the clock alone, so
 * unlike window cells they need the tombstones. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/assert.h"
#include "core/batch.h"
#include "core/job.h"
#include "core/mem.h"
#include "state/log.h"
#include "state/table.h"

#define FLOWREC_KEY_COLUMNS "src,dst,sport,dport,proto"
#define FLOWREC_REASON_LENGTH_MAX 8u
#define TCP_FIN 0x01
#define TCP_RST 0x04
#define IPPROTO_TCP_NUMBER 6

enum flowrec_reason {
	REASON_IDLE,
	REASON_ACTIVE,
	REASON_FIN,
	REASON_RST,
	REASON_END,
	REASON_COUNT,
};

static const char *const reason_names[REASON_COUNT] = {"idle", "active", "fin", "rst", "end"};

/* The value of a 5-tuple's open record. */
struct flow_record {
	int64_t first_seen; /* ts units (ns for packet events) */
	int64_t last_seen;
	int64_t packets;
	int64_t bytes;
	int64_t tcp_flags; /* OR of every packet's flags */
	uint32_t dirty;	   /* changed since the last checkpoint; its id is in the dirty list */
	uint32_t unused;
};

#define FLOWREC_SAVED_LENGTH offsetof(struct flow_record, dirty) /* what a checkpoint keeps */
#define FLOWREC_RECORD 1u
#define FLOWREC_DELETE 2u
#define FLOWREC_META 3u
#define FLOWREC_META_KEY "ts_max"

struct flowrec_op {
	int64_t idle_timeout;	/* ts units, > 0 */
	int64_t active_timeout; /* ts units, >= idle_timeout */
	int64_t scan_period;	/* ts units between watermark scans: idle_timeout / 4, >= 1 */
	int64_t out_of_orderness; /* the job's: the end clock plus this is the input's end */
	struct weir_key_spec key;     /* the 5-tuple over the input records */
	struct weir_key_spec out_key; /* the same columns in the output row */
	uint32_t record_length;	      /* input records, bytes */
	uint32_t in_ts, in_proto, in_flags, in_bytes; /* input offsets */
	uint32_t out_first, out_last, out_packets, out_bytes, out_flags, out_reason;
	size_t state_budget_bytes;
	struct weir_schema out_schema;
	/* Totals folded in by close(), main thread only. */
	uint64_t state_full;
	uint64_t late_events;
	uint64_t records[REASON_COUNT];
	uint64_t state_bytes_peak;
};

struct flowrec_instance {
	const struct flowrec_op *op;
	struct weir_emitter *out;
	unsigned arena;
	struct weir_table *flows; /* encoded 5-tuple -> struct flow_record */
	int64_t watermark;	  /* last finite watermark, WEIR_WATERMARK_NONE before any */
	int64_t next_scan;	  /* scan for idle records once the watermark reaches this */
	int64_t ts_max;		  /* latest event time processed, WEIR_WATERMARK_NONE before any */
	uint8_t *key_buffer;	  /* encoded_length_max bytes */
	/* Checkpoints, from the first one (a full one) on: ids of changed records, and the keys
	 * of records that ended (each a u32 length, then the key).  A list that cannot grow
	 * fails the next checkpoint (never a silent loss). */
	bool tracking;
	bool lists_broken;
	uint32_t *dirty;
	uint32_t dirty_count, dirty_capacity;
	uint8_t *deleted;
	size_t deleted_length, deleted_capacity;
	uint64_t state_full;
	uint64_t late_events;
	uint64_t records[REASON_COUNT];
	uint64_t state_bytes_peak;
};

static int64_t saturating_add(int64_t a, int64_t b)
{
	int64_t sum;
	return __builtin_add_overflow(a, b, &sum) ? (b > 0 ? INT64_MAX : INT64_MIN) : sum;
}

/* Whether a record last seen at @last_seen has been idle too long by time @now. */
static bool record_idle_at(const struct flowrec_op *op, int64_t last_seen, int64_t now)
{
	return saturating_add(last_seen, op->idle_timeout) < now;
}

static void put_i64(uint8_t *row, uint32_t offset, int64_t value)
{
	memcpy(row + offset, &value, sizeof(value));
}

/* Writes entry @id's record as a row ending for @reason.  The entry stays in the table. */
static void emit_record(struct flowrec_instance *f, uint32_t id, enum flowrec_reason reason)
{
	const struct flowrec_op *op = f->op;
	const struct flow_record *record = weir_table_value(f->flows, id);
	WEIR_ASSERT(record->packets > 0);
	WEIR_ASSERT(record->first_seen <= record->last_seen);
	uint32_t key_length;
	const uint8_t *key = weir_table_key(f->flows, id, &key_length);
	uint8_t *row = weir_emit_begin(f->out);
	memset(row, 0, op->out_schema.record_length);
	put_i64(row, op->out_first, record->first_seen);
	put_i64(row, op->out_last, record->last_seen);
	weir_key_decode(&op->out_key, key, key_length, row);
	put_i64(row, op->out_packets, record->packets);
	put_i64(row, op->out_bytes, record->bytes);
	put_i64(row, op->out_flags, record->tcp_flags);
	size_t name_length = strlen(reason_names[reason]);
	WEIR_ASSERT(name_length <= FLOWREC_REASON_LENGTH_MAX);
	row[op->out_reason] = (uint8_t)name_length;
	memcpy(row + op->out_reason + 1, reason_names[reason], name_length);
	weir_emit_commit(f->out);
	f->records[reason]++;
}

static void record_start(struct flow_record *record, int64_t timestamp)
{
	uint32_t dirty = record->dirty; /* a new record in the same entry is still listed */
	*record = (struct flow_record){.first_seen = timestamp, .last_seen = timestamp,
				       .dirty = dirty};
}

static void mark_dirty(struct flowrec_instance *f, struct flow_record *record, uint32_t id)
{
	if (!f->tracking || record->dirty != 0)
		return;
	if (f->dirty_count == f->dirty_capacity) {
		uint32_t capacity = f->dirty_capacity == 0 ? 1024 : f->dirty_capacity * 2;
		uint32_t *bigger = weir_mem_realloc(f->dirty, sizeof(uint32_t) * capacity,
						    f->arena);
		if (bigger == NULL) {
			f->lists_broken = true;
			return;
		}
		f->dirty = bigger;
		f->dirty_capacity = capacity;
	}
	record->dirty = 1;
	f->dirty[f->dirty_count++] = id;
}

/* Adds @key to the keys of records that ended since the last checkpoint. */
static void remember_deleted(struct flowrec_instance *f, const uint8_t *key, uint32_t length)
{
	size_t need = f->deleted_length + sizeof(length) + length;
	if (need > f->deleted_capacity) {
		size_t capacity = f->deleted_capacity == 0 ? 16384 : f->deleted_capacity;
		while (capacity < need)
			capacity *= 2;
		uint8_t *bigger = weir_mem_realloc(f->deleted, capacity, f->arena);
		if (bigger == NULL) {
			f->lists_broken = true;
			return;
		}
		f->deleted = bigger;
		f->deleted_capacity = capacity;
	}
	memcpy(f->deleted + f->deleted_length, &length, sizeof(length));
	memcpy(f->deleted + f->deleted_length + sizeof(length), key, length);
	f->deleted_length = need;
	WEIR_ASSERT(f->deleted_length <= f->deleted_capacity);
}

/* Removes entry @id, remembering its key for the next checkpoint's tombstones. */
static void record_remove(struct flowrec_instance *f, uint32_t id)
{
	if (f->tracking && !f->lists_broken) {
		uint32_t length;
		const uint8_t *key = weir_table_key(f->flows, id, &length);
		remember_deleted(f, key, length);
	}
	weir_table_remove(f->flows, id);
}

static void record_add(struct flow_record *record, int64_t timestamp, int64_t flags,
		       int64_t bytes)
{
	WEIR_ASSERT(record->packets >= 0);
	if (timestamp < record->first_seen)
		record->first_seen = timestamp; /* out of order within the record */
	if (timestamp > record->last_seen)
		record->last_seen = timestamp;
	record->packets++;
	record->bytes = (int64_t)((uint64_t)record->bytes + (uint64_t)bytes); /* wraps, no UB */
	record->tcp_flags |= flags;
	WEIR_ASSERT(record->first_seen <= record->last_seen);
}

/* The open record of the event's 5-tuple (a new one when it had none, or when the open one
 * ended before this event), or NULL when the budget refuses a new entry.  *id_out: its id. */
static struct flow_record *record_for(struct flowrec_instance *f, const uint8_t *event,
				      int64_t timestamp, uint32_t *id_out)
{
	const struct flowrec_op *op = f->op;
	uint32_t key_length = weir_key_encode(&op->key, event, f->key_buffer);
	bool inserted;
	uint32_t id = weir_table_upsert(f->flows, f->key_buffer, key_length,
					weir_key_hash(f->key_buffer, key_length, 0), &inserted);
	if (id == WEIR_TABLE_NONE)
		return NULL;
	*id_out = id;
	struct flow_record *record = weir_table_value(f->flows, id);
	if (inserted) {
		size_t bytes = weir_table_bytes(f->flows);
		if (bytes > f->state_bytes_peak)
			f->state_bytes_peak = bytes;
		record_start(record, timestamp);
		return record;
	}
	/* Idle: no packet for longer than the timeout before this one, or the watermark already
	 * passed its expiry (the throttled scan has not come to it yet). */
	bool idle = timestamp > saturating_add(record->last_seen, op->idle_timeout) ||
		    (f->watermark != WEIR_WATERMARK_NONE &&
		     record_idle_at(op, record->last_seen, f->watermark));
	bool active = timestamp >= saturating_add(record->first_seen, op->active_timeout);
	if (idle || active) {
		emit_record(f, id, idle ? REASON_IDLE : REASON_ACTIVE);
		record_start(record, timestamp);
	}
	return record;
}

static void flowrec_process(void *instance, const uint8_t *records, uint32_t count)
{
	struct flowrec_instance *f = instance;
	const struct flowrec_op *op = f->op;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *event = records + (size_t)i * op->record_length;
		int64_t timestamp, proto, flags, bytes;
		memcpy(&timestamp, event + op->in_ts, 8);
		memcpy(&proto, event + op->in_proto, 8);
		memcpy(&flags, event + op->in_flags, 8);
		memcpy(&bytes, event + op->in_bytes, 8);
		if (f->watermark != WEIR_WATERMARK_NONE && timestamp < f->watermark)
			f->late_events++;
		f->ts_max = timestamp > f->ts_max ? timestamp : f->ts_max;
		uint32_t id;
		struct flow_record *record = record_for(f, event, timestamp, &id);
		if (record == NULL) {
			f->state_full++;
			continue;
		}
		record_add(record, timestamp, flags, bytes);
		if (proto == IPPROTO_TCP_NUMBER && (flags & (TCP_FIN | TCP_RST)) != 0) {
			emit_record(f, id, (flags & TCP_RST) != 0 ? REASON_RST : REASON_FIN);
			record_remove(f, id);
		} else {
			mark_dirty(f, record, id);
		}
	}
}

/* Emits and removes every record idle by @now; at the end of the input (@at_end) every other
 * record too, as "end". */
static void expire(struct flowrec_instance *f, int64_t now, bool at_end)
{
	uint32_t before = f->flows->count;
	uint32_t removed = 0;
	for (uint32_t id = 0; id < f->flows->high_water; id++) {
		if (!weir_table_live(f->flows, id))
			continue;
		const struct flow_record *record = weir_table_value(f->flows, id);
		bool idle = now != WEIR_WATERMARK_NONE &&
			    record_idle_at(f->op, record->last_seen, now);
		if (!idle && !at_end)
			continue;
		emit_record(f, id, idle ? REASON_IDLE : REASON_END);
		record_remove(f, id); /* ids stay valid: the walk goes on */
		removed++;
	}
	WEIR_ASSERT(f->flows->count == before - removed);
	if (at_end)
		WEIR_ASSERT(f->flows->count == 0);
}

static void flowrec_advance(void *instance, int64_t watermark)
{
	struct flowrec_instance *f = instance;
	WEIR_ASSERT(watermark >= f->watermark || f->watermark == WEIR_WATERMARK_NONE);
	if (watermark == INT64_MAX) {
		/* The input's end time: the end clock core advanced us to just before +infinity
		 * (the largest watermark any source sent) plus the out-of-orderness.  ts_max only
		 * matters when no source sent a watermark at all. */
		int64_t end = f->watermark != WEIR_WATERMARK_NONE
				      ? saturating_add(f->watermark, f->op->out_of_orderness)
				      : WEIR_WATERMARK_NONE;
		int64_t now = f->ts_max > end ? f->ts_max : end;
		expire(f, now, true);
	} else {
		f->watermark = watermark;
		if (watermark >= f->next_scan) {
			expire(f, watermark, false);
			f->next_scan = saturating_add(watermark, f->op->scan_period);
		}
	}
	weir_emitter_flush(f->out);
}

/* ---- checkpoints ---- */

static int put_record(struct flowrec_instance *f, struct weir_state_writer *writer, uint32_t id)
{
	struct flow_record *record = weir_table_value(f->flows, id);
	uint32_t length;
	const uint8_t *key = weir_table_key(f->flows, id, &length);
	record->dirty = 0;
	return weir_state_put(writer, FLOWREC_RECORD, key, length, length, record,
			      FLOWREC_SAVED_LENGTH);
}

static int flowrec_snapshot(void *instance, bool full, struct weir_state_writer *writer)
{
	struct flowrec_instance *f = instance;
	if (f->lists_broken)
		return -ENOMEM; /* changes were not all recorded: this checkpoint cannot be exact */
	int rc = weir_state_put_shard(writer, FLOWREC_META, FLOWREC_META_KEY,
				      sizeof(FLOWREC_META_KEY) - 1, &f->ts_max, sizeof(f->ts_max));
	/* Tombstones first: a 5-tuple that ended and started again is then alive after both. */
	for (size_t at = 0; rc == 0 && f->tracking && !full && at < f->deleted_length;) {
		uint32_t length;
		memcpy(&length, f->deleted + at, sizeof(length));
		const uint8_t *key = f->deleted + at + sizeof(length);
		rc = weir_state_put(writer, FLOWREC_DELETE, key, length, length, NULL, 0);
		at += sizeof(length) + length;
	}
	if (full || !f->tracking) {
		for (uint32_t id = 0; rc == 0 && id < f->flows->high_water; id++) {
			if (weir_table_live(f->flows, id))
				rc = put_record(f, writer, id);
		}
	} else {
		for (uint32_t i = 0; rc == 0 && i < f->dirty_count; i++) {
			uint32_t id = f->dirty[i];
			if (weir_table_live(f->flows, id) &&
			    ((struct flow_record *)weir_table_value(f->flows, id))->dirty != 0)
				rc = put_record(f, writer, id);
		}
	}
	f->dirty_count = 0;
	f->deleted_length = 0;
	f->tracking = true;
	return rc;
}

static int flowrec_restore(void *instance, const struct weir_state_record *record)
{
	struct flowrec_instance *f = instance;
	const struct flowrec_op *op = f->op;
	if (record->type == FLOWREC_META && record->value_length == sizeof(int64_t)) {
		int64_t ts_max;
		memcpy(&ts_max, record->value, sizeof(ts_max));
		f->ts_max = ts_max > f->ts_max ? ts_max : f->ts_max;
		return 0;
	}
	if (record->key_length == 0 || record->key_length > op->key.encoded_length_max ||
	    (record->type == FLOWREC_DELETE) != (record->value_length == 0) ||
	    (record->type == FLOWREC_RECORD) != (record->value_length == FLOWREC_SAVED_LENGTH))
		return -EBADMSG; /* written by another job: the state dir does not fit it */
	uint64_t hash = weir_key_hash(record->key, record->key_length, 0);
	if (record->type == FLOWREC_DELETE) {
		uint32_t id = weir_table_find(f->flows, record->key, record->key_length, hash);
		if (id != WEIR_TABLE_NONE)
			weir_table_remove(f->flows, id);
		return 0;
	}
	bool inserted;
	uint32_t id = weir_table_upsert(f->flows, record->key, record->key_length, hash,
					&inserted);
	if (id == WEIR_TABLE_NONE)
		return -ENOSPC; /* the state budget is smaller than the checkpoint */
	struct flow_record *open = weir_table_value(f->flows, id);
	memcpy(open, record->value, FLOWREC_SAVED_LENGTH);
	open->dirty = 0;
	return 0;
}

static int flowrec_restored(void *instance, int64_t watermark, bool in_log)
{
	struct flowrec_instance *f = instance;
	WEIR_ASSERT(f->watermark == WEIR_WATERMARK_NONE);
	f->tracking = in_log;
	f->watermark = watermark;
	f->next_scan = watermark; /* the first advance scans for idle records */
	for (uint32_t id = 0; id < f->flows->high_water; id++) {
		if (!weir_table_live(f->flows, id))
			continue;
		const struct flow_record *record = weir_table_value(f->flows, id);
		f->ts_max = record->last_seen > f->ts_max ? record->last_seen : f->ts_max;
	}
	return 0;
}

static uint64_t flowrec_state_bytes(const void *instance)
{
	const struct flowrec_instance *f = instance;
	/* What a full snapshot writes: a log header, an encoded 5-tuple and the record each. */
	return (uint64_t)f->flows->count *
	       (WEIR_LOG_HEADER_LENGTH + f->op->key.encoded_length_max + FLOWREC_SAVED_LENGTH);
}

static void flowrec_instance_free(struct flowrec_instance *f)
{
	unsigned arena = f->arena;
	weir_mem_free(f->dirty, arena);
	weir_mem_free(f->deleted, arena);
	weir_table_destroy(f->flows);
	weir_mem_free(f->key_buffer, arena);
	weir_mem_free(f, arena);
}

static int flowrec_open(void *ctx, uint32_t worker, unsigned arena, struct weir_emitter *out,
			struct weir_emitter *late, void **instance_out)
{
	(void)worker;
	(void)late; /* late events are added, not set aside (see the top of this file) */
	const struct flowrec_op *op = ctx;
	WEIR_VERIFY(out != NULL && instance_out != NULL);
	struct flowrec_instance *f = weir_mem_alloc(sizeof(*f), WEIR_CACHE_LINE, arena);
	if (f == NULL)
		return -ENOMEM;
	memset(f, 0, sizeof(*f));
	f->op = op;
	f->out = out;
	f->arena = arena;
	f->watermark = WEIR_WATERMARK_NONE;
	f->next_scan = WEIR_WATERMARK_NONE;
	f->ts_max = WEIR_WATERMARK_NONE;
	f->key_buffer = weir_mem_alloc(op->key.encoded_length_max, 8, arena);
	int rc = -ENOMEM;
	if (f->key_buffer != NULL)
		rc = weir_table_create(&f->flows, op->key.encoded_length_max,
				       sizeof(struct flow_record), op->state_budget_bytes, arena);
	if (rc != 0) {
		flowrec_instance_free(f);
		return rc;
	}
	*instance_out = f;
	return 0;
}

static void flowrec_close(void *ctx, void *instance)
{
	struct flowrec_op *op = ctx;
	struct flowrec_instance *f = instance;
	WEIR_VERIFY(op == f->op);
	op->state_full += f->state_full;
	op->late_events += f->late_events;
	for (uint32_t r = 0; r < REASON_COUNT; r++)
		op->records[r] += f->records[r];
	if (f->state_bytes_peak > op->state_bytes_peak)
		op->state_bytes_peak = f->state_bytes_peak;
	flowrec_instance_free(f);
}

static const struct weir_keyed_op_vtable flowrec_vtable = {
	.open = flowrec_open,
	.process = flowrec_process,
	.advance = flowrec_advance,
	.close = flowrec_close,
	.snapshot = flowrec_snapshot,
	.restore = flowrec_restore,
	.restored = flowrec_restored,
	.state_bytes = flowrec_state_bytes,
};

static void flowrec_add_stats(void *ctx, struct weir_job_stats *stats)
{
	const struct flowrec_op *op = ctx;
	stats->state_full += op->state_full;
	stats->late_updates += op->late_events;
}

static void flowrec_report(void *ctx, FILE *stream)
{
	const struct flowrec_op *op = ctx;
	uint64_t total = 0;
	for (uint32_t r = 0; r < REASON_COUNT; r++)
		total += op->records[r];
	fprintf(stream,
		"weir: flow records: %llu (idle %llu, active %llu, fin %llu, rst %llu, end %llu)\n",
		(unsigned long long)total, (unsigned long long)op->records[REASON_IDLE],
		(unsigned long long)op->records[REASON_ACTIVE],
		(unsigned long long)op->records[REASON_FIN],
		(unsigned long long)op->records[REASON_RST],
		(unsigned long long)op->records[REASON_END]);
	if (op->state_full > 0)
		fprintf(stream,
			"weir: flow records: state budget (%zu MiB per worker) reached: %llu "
			"packets were refused and are missing from the records; raise "
			"--state-budget\n",
			op->state_budget_bytes >> 20, (unsigned long long)op->state_full);
	if (op->late_events > 0)
		fprintf(stream,
			"weir: flow records: %llu packets came later than the out-of-orderness; "
			"they were still added, possibly as records of their own\n",
			(unsigned long long)op->late_events);
}

static void flowrec_destroy(void *ctx)
{
	weir_mem_free(ctx, WEIR_MEM_ARENA_DEFAULT);
}

/* The offset of column @name, which must be an i64 or ts column. */
static int input_column(struct weir_job *job, const struct weir_schema *schema,
			const char *name, uint32_t *offset)
{
	int index = weir_schema_find(schema, name);
	if (index < 0)
		return weir_job_fail(job, -EINVAL,
				     "flow records: no '%s' column; they need a packet source",
				     name);
	enum weir_type type = schema->fields[index].type;
	if (type != WEIR_TYPE_I64 && type != WEIR_TYPE_TS)
		return weir_job_fail(job, -EINVAL, "flow records: column '%s' is %s, not i64", name,
				     weir_type_name(type));
	*offset = schema->fields[index].offset;
	return 0;
}

static void add_output(struct flowrec_op *op, const char *name, enum weir_type type,
		       uint32_t max_length, uint32_t *offset)
{
	int rc = weir_schema_add(&op->out_schema, name, type, max_length);
	WEIR_VERIFY(rc == 0); /* fixed names, well under the limits */
	*offset = op->out_schema.fields[op->out_schema.field_count - 1].offset;
}

/* first_seen, last_seen, src, dst, sport, dport, proto, packets, bytes, tcp_flags,
 * end_reason. */
static void build_output(struct flowrec_op *op)
{
	uint32_t unused;
	weir_schema_init(&op->out_schema);
	add_output(op, "first_seen", WEIR_TYPE_I64, 0, &op->out_first);
	add_output(op, "last_seen", WEIR_TYPE_I64, 0, &op->out_last);
	add_output(op, "src", WEIR_TYPE_IP, 0, &unused);
	add_output(op, "dst", WEIR_TYPE_IP, 0, &unused);
	add_output(op, "sport", WEIR_TYPE_I64, 0, &unused);
	add_output(op, "dport", WEIR_TYPE_I64, 0, &unused);
	add_output(op, "proto", WEIR_TYPE_I64, 0, &unused);
	add_output(op, "packets", WEIR_TYPE_I64, 0, &op->out_packets);
	add_output(op, "bytes", WEIR_TYPE_I64, 0, &op->out_bytes);
	add_output(op, "tcp_flags", WEIR_TYPE_I64, 0, &op->out_flags);
	add_output(op, "end_reason", WEIR_TYPE_STR, FLOWREC_REASON_LENGTH_MAX, &op->out_reason);
	char message[256];
	int rc = weir_key_spec_init(&op->out_key, &op->out_schema, FLOWREC_KEY_COLUMNS, message,
				    sizeof(message));
	WEIR_VERIFY(rc == 0);
}

/* The key columns' types, as the output declares them. */
static int check_key_types(struct weir_job *job, const struct weir_schema *schema,
			   const struct weir_key_spec *key)
{
	static const enum weir_type expected[] = {WEIR_TYPE_IP, WEIR_TYPE_IP, WEIR_TYPE_I64,
						  WEIR_TYPE_I64, WEIR_TYPE_I64};
	WEIR_VERIFY(key->part_count == 5);
	for (uint32_t k = 0; k < key->part_count; k++) {
		const struct weir_field *field = &schema->fields[key->parts[k].field_index];
		if (field->type != expected[k])
			return weir_job_fail(job, -EINVAL,
					     "flow records: column '%s' is %s, not %s (a packet "
					     "source's)",
					     field->name, weir_type_name(field->type),
					     weir_type_name(expected[k]));
	}
	return 0;
}

static int flowrec_configure(struct flowrec_op *op, struct weir_job *job, int64_t idle_timeout,
			     int64_t active_timeout)
{
	const struct weir_schema *schema = weir_job_tail_schema(job);
	if (schema == NULL || weir_schema_find(schema, "tcp_flags") < 0)
		return weir_job_fail(job, -EINVAL, "flow records: needs a packet source first");
	int rc = input_column(job, schema, "ts", &op->in_ts);
	if (rc == 0)
		rc = input_column(job, schema, "proto", &op->in_proto);
	if (rc == 0)
		rc = input_column(job, schema, "tcp_flags", &op->in_flags);
	if (rc == 0)
		rc = input_column(job, schema, "bytes", &op->in_bytes);
	if (rc == 0)
		rc = weir_job_key_by(job, FLOWREC_KEY_COLUMNS);
	if (rc != 0)
		return rc;
	const struct weir_key_spec *key = weir_job_key(job);
	WEIR_VERIFY(key != NULL);
	rc = check_key_types(job, schema, key);
	if (rc != 0)
		return rc;
	op->key = *key;
	op->record_length = schema->record_length;
	op->idle_timeout = idle_timeout;
	op->active_timeout = active_timeout;
	op->scan_period = idle_timeout / 4 > 0 ? idle_timeout / 4 : 1;
	op->out_of_orderness = weir_job_get_options(job)->out_of_orderness;
	op->state_budget_bytes = (size_t)weir_job_get_options(job)->state_budget_mib << 20;
	build_output(op);
	return 0;
}

int weir_job_flow_records(struct weir_job *job, int64_t idle_timeout_ns,
			  int64_t active_timeout_ns)
{
	WEIR_VERIFY(job != NULL);
	if (idle_timeout_ns <= 0)
		return weir_job_fail(job, -EINVAL,
				     "flow records: the idle timeout must be positive (got %lld)",
				     (long long)idle_timeout_ns);
	if (active_timeout_ns < idle_timeout_ns)
		return weir_job_fail(job, -EINVAL,
				     "flow records: the active timeout (%lld) must be at least the "
				     "idle timeout (%lld)",
				     (long long)active_timeout_ns, (long long)idle_timeout_ns);
	struct flowrec_op *op = weir_mem_alloc(sizeof(*op), WEIR_CACHE_LINE,
					       WEIR_MEM_ARENA_DEFAULT);
	if (op == NULL)
		return weir_job_fail(job, -ENOMEM, "flow records: out of memory");
	memset(op, 0, sizeof(*op));
	int rc = flowrec_configure(op, job, idle_timeout_ns, active_timeout_ns);
	if (rc != 0) {
		flowrec_destroy(op);
		return rc;
	}
	struct weir_component component = {
		.ctx = op,
		.destroy = flowrec_destroy,
		.report = flowrec_report,
		.add_stats = flowrec_add_stats,
	};
	return weir_job_attach_keyed_op(job, &flowrec_vtable, op, op->in_ts, &op->out_schema,
					component);
}
