#include "operators/window.h"

#include <errno.h>
#include <float.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "core/batch.h"
#include "core/job.h"
#include "core/mem.h"
#include "operators/hll.h"
#include "state/log.h"
#include "state/table.h"

#define WINDOW_AGGS_MAX 16u
#define WINDOW_COLUMNS_MAX 8u
#define WINDOW_MAX_BYS_MAX 4u
#define WINDOW_DISTINCTS_MAX 4u
/* Records hashed, and their index slots prefetched, ahead of their lookup; their entries are
 * prefetched WINDOW_LOOKAHEAD / 2 records ahead, once the index slot is in (a power of two). */
#define WINDOW_LOOKAHEAD 32u
#define WINDOW_PANE_DIR_BUDGET (64u << 20)

enum agg_kind { AGG_COUNT, AGG_SUM, AGG_MIN, AGG_MAX, AGG_AVG, AGG_DISTINCT, AGG_MAX_BY };

union agg_value {
	int64_t i;
	uint64_t u;
	double f;
};

/* One aggregated input column: where it is and how to add it. */
struct agg_column {
	uint32_t offset;
	enum weir_type type;
};

/* A column counted distinct: its bytes are hashed into a HyperLogLog per cell. */
struct distinct_column {
	uint32_t offset;
	uint32_t length; /* bytes; strings: 1 + max, of which only 1 + their length count */
	bool is_string;
};

/* max_by: the payload column's value in the record with the largest order column (ties: the
 * largest payload, so the result does not depend on the order records arrive in). */
struct max_by_column {
	struct agg_column payload, order;
};

struct agg_output {
	enum agg_kind kind;
	uint32_t column;     /* index into columns[], distincts[] or max_bys[] (not for count) */
	uint32_t out_offset; /* in the output row */
};

/* Value of a (key, pane) entry: count, then sum/min/max per column, then order/payload/has
 * per max_by, then one HyperLogLog per distinct column. */
struct cell {
	uint32_t dirty; /* changed since the last checkpoint; its id is in the dirty list */
	uint32_t unused; /* keeps count 8-aligned */
	uint64_t count;
	union agg_value values[]; /* 3 per column: sum, min, max */
};

/* A pane's cells, as an array rather than a list through them: firing and evicting walk it
 * with the cells prefetched ahead, where a list is a cache miss per cell, one at a time. */
struct pane_head {
	uint32_t *ids;	   /* the cells' entry ids, oldest first */
	uint32_t count;
	uint32_t capacity;
};

#define WINDOW_PANE_IDS_MIN 64u

struct window_op {
	struct weir_window_spec spec;
	int64_t pane;		/* pane length: gcd(size, slide) */
	struct weir_key_spec key;	 /* over the input schema */
	bool key_word;			 /* the key is one 8-byte column */
	struct weir_key_spec out_key;	 /* the same columns in the output row */
	uint32_t time_offset;
	bool weighted;		/* records stand for weight_offset's count of events */
	uint32_t weight_offset;
	uint32_t record_length; /* input records, bytes */
	uint32_t start_offset, end_offset;
	struct agg_column columns[WINDOW_COLUMNS_MAX];
	uint32_t column_count;
	struct distinct_column distincts[WINDOW_DISTINCTS_MAX];
	uint32_t distinct_count;
	struct max_by_column max_bys[WINDOW_MAX_BYS_MAX];
	uint32_t max_by_count;
	struct agg_output outputs[WINDOW_AGGS_MAX];
	uint32_t output_count;
	uint32_t cell_length;
	size_t state_budget_bytes;
	struct weir_schema out_schema;
	/* Totals folded in by close(), main thread only. */
	uint64_t late_updates;
	uint64_t late_dropped;
	uint64_t state_full;
	uint64_t state_bytes_peak;
};

/* A record's (key, pane) worked out ahead of its turn (see lookahead_prepare). */
struct window_lookahead {
	uint64_t hash;
	int64_t pane;
	uint32_t key_length; /* of the key alone; the pane's 8 bytes follow it */
	uint8_t *key;
};

struct window_instance {
	const struct window_op *op;
	struct weir_emitter *out;
	struct weir_emitter *late;
	unsigned arena;
	struct weir_table *cells;  /* (key, pane) -> struct cell */
	struct weir_table *panes;  /* pane index -> struct pane_head */
	struct weir_table *merged; /* key -> struct cell: one sliding window being fired */
	int64_t *live;		   /* pane indexes with state, ascending */
	uint32_t live_count;
	uint32_t live_capacity;
	int64_t watermark;
	int64_t fired_end; /* every window ending at or before this has fired */
	uint8_t *key_buffer; /* key being looked up, with room for the pane index */
	uint8_t *key_saved;  /* the key whose windows are being re-emitted */
	struct window_lookahead lookahead[WINDOW_LOOKAHEAD];
	int64_t pane_cache; /* the pane of timestamps [pane_cache_first, pane_cache_end) */
	int64_t pane_cache_first;
	int64_t pane_cache_end;
	uint8_t *lookahead_keys; /* WINDOW_LOOKAHEAD keys with their panes */
	struct cell *scratch;
	/* Checkpoints: cells changed since the last one.  Tracked from the first checkpoint
	 * (a full one) on; a list that could not grow makes the next one full too. */
	bool tracking;
	bool dirty_overflow;
	uint32_t *dirty;
	uint32_t dirty_count;
	uint32_t dirty_capacity;
	uint64_t live_key_bytes; /* keys (with their panes) of the live cells */
	uint64_t pane_ids_bytes; /* the panes' id arrays */
	uint64_t restore_next;	 /* records restore() was given (see restore_apply) */
	uint64_t late_updates;
	uint64_t late_dropped;
	uint64_t state_full;
	uint64_t state_bytes_peak;
};

static int64_t saturating_add(int64_t a, int64_t b)
{
	int64_t sum;
	return __builtin_add_overflow(a, b, &sum) ? (b > 0 ? INT64_MAX : INT64_MIN) : sum;
}

/* End of the last window that contains pane @p. */
static int64_t pane_last_end(const struct window_op *op, int64_t p)
{
	return weir_floor_div(p * op->pane, op->spec.slide) * op->spec.slide + op->spec.size;
}

/* Index of the first window that contains pane @p. */
static int64_t pane_first_window(const struct window_op *op, int64_t p)
{
	int64_t numerator = p * op->pane + op->pane - op->spec.size;
	return -weir_floor_div(-numerator, op->spec.slide); /* ceil */
}

/* max_by @m's three values: the order column's best, its payload, and whether it has one. */
static union agg_value *cell_max_by(const struct window_op *op, const struct cell *cell,
				    uint32_t m)
{
	return (union agg_value *)&cell->values[3 * op->column_count + 3 * m];
}

static uint8_t *cell_sketch(const struct window_op *op, const struct cell *cell, uint32_t d)
{
	return (uint8_t *)&cell->values[3 * (op->column_count + op->max_by_count)] +
	       (size_t)d * WEIR_HLL_REGISTERS;
}

/* @a > @b as values of @type. */
static bool value_greater(enum weir_type type, union agg_value a, union agg_value b)
{
	if (type == WEIR_TYPE_F64)
		return a.f > b.f;
	if (type == WEIR_TYPE_U64)
		return a.u > b.u;
	return a.i > b.i;
}

/* Takes (@order, @payload) into max_by @column's values @v if it goes first: the larger
 * order, then the larger payload. */
static void max_by_offer(const struct max_by_column *column, union agg_value *v,
			 union agg_value order, union agg_value payload)
{
	bool first = v[2].u == 0 || value_greater(column->order.type, order, v[0]) ||
		     (!value_greater(column->order.type, v[0], order) &&
		      value_greater(column->payload.type, payload, v[1]));
	if (first) {
		v[0] = order;
		v[1] = payload;
		v[2].u = 1;
	}
}

static void cell_reset(const struct window_op *op, struct cell *cell)
{
	cell->count = 0;
	if (op->distinct_count > 0)
		memset(cell_sketch(op, cell, 0), 0,
		       (size_t)op->distinct_count * WEIR_HLL_REGISTERS);
	for (uint32_t c = 0; c < op->column_count; c++) {
		union agg_value *v = &cell->values[3 * c];
		if (op->columns[c].type == WEIR_TYPE_F64) {
			v[0].f = 0;
			v[1].f = DBL_MAX;
			v[2].f = -DBL_MAX;
		} else if (op->columns[c].type == WEIR_TYPE_U64) {
			v[0].u = 0;
			v[1].u = UINT64_MAX;
			v[2].u = 0;
		} else {
			v[0].i = 0;
			v[1].i = INT64_MAX;
			v[2].i = INT64_MIN;
		}
	}
	for (uint32_t m = 0; m < op->max_by_count; m++)
		cell_max_by(op, cell, m)[2].u = 0;
}

/* How many events @record stands for: 1, or its weight column's value (records merged
 * before the window: flows' conversation stage, a combiner), so that count, avg and the
 * late and refused counts are counts of events. */
static inline uint64_t record_weight(const struct window_op *op, const uint8_t *record)
{
	if (!op->weighted)
		return 1;
	int64_t weight;
	memcpy(&weight, record + op->weight_offset, sizeof(weight));
	WEIR_ASSERT(weight >= 0);
	return (uint64_t)weight;
}

static inline void cell_add_record(const struct window_op *op, struct cell *cell,
				   const uint8_t *record)
{
	cell->count += record_weight(op, record);
	for (uint32_t d = 0; d < op->distinct_count; d++) {
		const struct distinct_column *column = &op->distincts[d];
		const uint8_t *value = record + column->offset;
		uint32_t length = column->is_string ? 1u + value[0] : column->length;
		weir_hll_add(cell_sketch(op, cell, d), weir_key_hash(value, length, 0x5eed));
	}
	for (uint32_t c = 0; c < op->column_count; c++) {
		union agg_value *v = &cell->values[3 * c];
		union agg_value x;
		memcpy(&x, record + op->columns[c].offset, sizeof(x));
		if (op->columns[c].type == WEIR_TYPE_F64) {
			v[0].f += x.f;
			v[1].f = x.f < v[1].f ? x.f : v[1].f;
			v[2].f = x.f > v[2].f ? x.f : v[2].f;
		} else if (op->columns[c].type == WEIR_TYPE_U64) {
			v[0].u += x.u;
			v[1].u = x.u < v[1].u ? x.u : v[1].u;
			v[2].u = x.u > v[2].u ? x.u : v[2].u;
		} else {
			v[0].u += x.u; /* wraps like the C baseline would, without UB */
			v[1].i = x.i < v[1].i ? x.i : v[1].i;
			v[2].i = x.i > v[2].i ? x.i : v[2].i;
		}
	}
	for (uint32_t m = 0; m < op->max_by_count; m++) {
		const struct max_by_column *column = &op->max_bys[m];
		union agg_value order, payload;
		memcpy(&order, record + column->order.offset, sizeof(order));
		memcpy(&payload, record + column->payload.offset, sizeof(payload));
		max_by_offer(column, cell_max_by(op, cell, m), order, payload);
	}
}

static void cell_merge(const struct window_op *op, struct cell *into, const struct cell *from)
{
	into->count += from->count;
	for (uint32_t d = 0; d < op->distinct_count; d++)
		weir_hll_merge(cell_sketch(op, into, d), cell_sketch(op, from, d));
	for (uint32_t c = 0; c < op->column_count; c++) {
		union agg_value *a = &into->values[3 * c];
		const union agg_value *b = &from->values[3 * c];
		if (op->columns[c].type == WEIR_TYPE_F64) {
			a[0].f += b[0].f;
			a[1].f = b[1].f < a[1].f ? b[1].f : a[1].f;
			a[2].f = b[2].f > a[2].f ? b[2].f : a[2].f;
		} else if (op->columns[c].type == WEIR_TYPE_U64) {
			a[0].u += b[0].u;
			a[1].u = b[1].u < a[1].u ? b[1].u : a[1].u;
			a[2].u = b[2].u > a[2].u ? b[2].u : a[2].u;
		} else {
			a[0].u += b[0].u;
			a[1].i = b[1].i < a[1].i ? b[1].i : a[1].i;
			a[2].i = b[2].i > a[2].i ? b[2].i : a[2].i;
		}
	}
	for (uint32_t m = 0; m < op->max_by_count; m++) {
		const union agg_value *b = cell_max_by(op, from, m);
		if (b[2].u != 0)
			max_by_offer(&op->max_bys[m], cell_max_by(op, into, m), b[0], b[1]);
	}
}

static void emit_row(struct window_instance *w, int64_t start, const uint8_t *key,
		     uint32_t key_length, const struct cell *cell)
{
	const struct window_op *op = w->op;
	WEIR_ASSERT(cell->count > 0 || op->weighted); /* weights may be 0 */
	uint8_t *row = weir_emit_begin(w->out);
	memset(row, 0, op->out_schema.record_length);
	int64_t end = start + op->spec.size;
	memcpy(row + op->start_offset, &start, 8);
	memcpy(row + op->end_offset, &end, 8);
	weir_key_decode(&op->out_key, key, key_length, row);
	for (uint32_t a = 0; a < op->output_count; a++) {
		const struct agg_output *out = &op->outputs[a];
		if (out->kind == AGG_COUNT || out->kind == AGG_DISTINCT) {
			int64_t count = out->kind == AGG_COUNT
						? (int64_t)cell->count
						: (int64_t)weir_hll_estimate(
							  cell_sketch(op, cell, out->column));
			memcpy(row + out->out_offset, &count, 8);
			continue;
		}
		if (out->kind == AGG_MAX_BY) {
			const union agg_value *v = cell_max_by(op, cell, out->column);
			WEIR_ASSERT(v[2].u != 0); /* count > 0: some record offered its payload */
			memcpy(row + out->out_offset, &v[1], 8);
			continue;
		}
		const union agg_value *v = &cell->values[3 * out->column];
		union agg_value result;
		if (out->kind == AGG_AVG) {
			enum weir_type type = op->columns[out->column].type;
			double sum = type == WEIR_TYPE_F64   ? v[0].f
				     : type == WEIR_TYPE_U64 ? (double)v[0].u
							     : (double)v[0].i;
			result.f = sum / (double)cell->count;
		} else {
			result = v[out->kind == AGG_SUM ? 0 : out->kind == AGG_MIN ? 1 : 2];
		}
		memcpy(row + out->out_offset, &result, 8);
	}
	weir_emit_commit(w->out);
}

/* The cells table's hash of a key of two words (an 8-byte key and the pane index): a
 * multiply-xorshift mix, inlined, where xxh3 is a call.  The table lives in memory only, so
 * its hash need not match any other; it has no seed, like cell_hash's xxh3 had none. */
static inline uint64_t cell_hash_words(uint64_t key, int64_t pane)
{
	uint64_t x = key * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)pane;
	x ^= x >> 32;
	x *= UINT64_C(0xd6e8feb86659fd93);
	x ^= x >> 32;
	x *= UINT64_C(0xd6e8feb86659fd93);
	return x ^ (x >> 32);
}

/* The cells table's hash of @cell_key (a key followed by its pane index, @length bytes).
 * Every lookup of the table goes through here (or cell_hash_words, its 16-byte case). */
static inline uint64_t cell_hash(const uint8_t *cell_key, uint32_t length)
{
	if (length == 16) {
		uint64_t key;
		int64_t pane;
		memcpy(&key, cell_key, 8);
		memcpy(&pane, cell_key + 8, 8);
		return cell_hash_words(key, pane);
	}
	return weir_key_hash(cell_key, length, 0);
}

static uint32_t cell_key(struct window_instance *w, const uint8_t *key, uint32_t key_length,
			 int64_t pane, uint64_t *hash)
{
	if (key != w->key_buffer)
		memcpy(w->key_buffer, key, key_length);
	memcpy(w->key_buffer + key_length, &pane, 8);
	*hash = cell_hash(w->key_buffer, key_length + 8);
	return key_length + 8;
}

/* One key's row for window @window, from its panes. */
static void emit_key_window(struct window_instance *w, const uint8_t *key, uint32_t key_length,
			    int64_t window)
{
	const struct window_op *op = w->op;
	int64_t start = window * op->spec.slide;
	int64_t first = weir_floor_div(start, op->pane);
	int64_t last = first + op->spec.size / op->pane;
	uint8_t *saved_key = w->key_saved;
	if (key != saved_key)
		memcpy(saved_key, key, key_length);
	cell_reset(op, w->scratch);
	for (int64_t p = first; p < last; p++) {
		uint64_t hash;
		uint32_t length = cell_key(w, saved_key, key_length, p, &hash);
		uint32_t id = weir_table_find(w->cells, w->key_buffer, length, hash);
		if (id != WEIR_TABLE_NONE)
			cell_merge(op, w->scratch, weir_table_value(w->cells, id));
	}
	if (w->scratch->count > 0)
		emit_row(w, start, saved_key, key_length, w->scratch);
}

static bool live_insert(struct window_instance *w, int64_t pane)
{
	if (w->live_count == w->live_capacity) {
		uint32_t capacity = w->live_capacity * 2;
		int64_t *bigger = weir_mem_realloc(w->live, sizeof(int64_t) * capacity, w->arena);
		if (bigger == NULL)
			return false;
		w->live = bigger;
		w->live_capacity = capacity;
	}
	uint32_t at = w->live_count;
	while (at > 0 && w->live[at - 1] > pane)
		at--;
	memmove(&w->live[at + 1], &w->live[at], sizeof(int64_t) * (w->live_count - at));
	w->live[at] = pane;
	w->live_count++;
	return true;
}

static uint64_t pane_hash(int64_t pane)
{
	return weir_key_hash(&pane, sizeof(pane), 1);
}

/* Room for one more id in @head.  Returns: false when memory is short. */
static bool pane_reserve(struct window_instance *w, struct pane_head *head)
{
	if (head->count < head->capacity)
		return true;
	uint32_t capacity = head->capacity == 0 ? WINDOW_PANE_IDS_MIN : head->capacity * 2;
	if (capacity <= head->capacity)
		return false;
	uint32_t *bigger = weir_mem_realloc(head->ids, sizeof(uint32_t) * capacity, w->arena);
	if (bigger == NULL)
		return false;
	w->pane_ids_bytes += sizeof(uint32_t) * (uint64_t)(capacity - head->capacity);
	head->ids = bigger;
	head->capacity = capacity;
	return true;
}

static void pane_free(struct window_instance *w, struct pane_head *head)
{
	WEIR_ASSERT(w->pane_ids_bytes >= sizeof(uint32_t) * (uint64_t)head->capacity);
	w->pane_ids_bytes -= sizeof(uint32_t) * (uint64_t)head->capacity;
	weir_mem_free(head->ids, w->arena);
	head->ids = NULL;
	head->count = head->capacity = 0;
}

/* Finds or makes the cell of (key, pane) and lists new cells in their pane. */
/* @cell_key: the key followed by the pane index, @length bytes, hashed into @hash. */
static inline struct cell *cell_for(struct window_instance *w, const uint8_t *cell_key,
			     uint32_t length, uint64_t hash, int64_t pane, uint32_t *id_out)
{
	/* Most records find their cell: that lookup is inlined, and only a new cell takes the
	 * call (whose lookup repeats this one's, once per cell). */
	uint32_t id = weir_table_lookup(w->cells, cell_key, length, hash);
	if (id != WEIR_TABLE_NONE) {
		*id_out = id;
		return weir_table_value(w->cells, id);
	}
	bool inserted;
	id = weir_table_upsert(w->cells, cell_key, length, hash, &inserted);
	if (id == WEIR_TABLE_NONE)
		return NULL;
	WEIR_ASSERT(inserted);
	*id_out = id;
	struct cell *cell = weir_table_value(w->cells, id);
	bool pane_new;
	uint32_t pane_id = weir_table_upsert(w->panes, &pane, sizeof(pane), pane_hash(pane),
					     &pane_new);
	struct pane_head *head =
		pane_id == WEIR_TABLE_NONE ? NULL : weir_table_value(w->panes, pane_id);
	if (head == NULL || !pane_reserve(w, head) || (pane_new && !live_insert(w, pane))) {
		if (head != NULL && head->count == 0) {
			pane_free(w, head);
			weir_table_remove(w->panes, pane_id);
		}
		weir_table_remove(w->cells, id);
		return NULL;
	}
	WEIR_ASSERT(head->count < head->capacity);
	head->ids[head->count++] = id;
	cell_reset(w->op, cell);
	w->live_key_bytes += length;
	size_t bytes = weir_table_bytes(w->cells) + weir_table_bytes(w->panes) +
		       (size_t)w->pane_ids_bytes;
	if (bytes > w->state_bytes_peak)
		w->state_bytes_peak = bytes;
	return cell;
}

static void late_output(struct window_instance *w, const uint8_t *record, uint32_t length)
{
	w->late_dropped += record_weight(w->op, record);
	uint8_t *row = weir_emit_begin(w->late);
	memcpy(row, record, length);
	weir_emit_commit(w->late);
}

/* A late event within the lateness: re-emit every already-fired window of its pane. */
static void reemit_fired(struct window_instance *w, uint32_t key_length, int64_t pane,
			 uint64_t weight)
{
	const struct window_op *op = w->op;
	int64_t first = pane_first_window(op, pane);
	int64_t last = weir_floor_div(pane * op->pane, op->spec.slide);
	uint8_t *key = w->key_saved;
	memcpy(key, w->key_buffer, key_length);
	for (int64_t k = first; k <= last; k++) {
		int64_t end = k * op->spec.slide + op->spec.size;
		if (end > w->fired_end)
			break;
		if (saturating_add(end, op->spec.allowed_lateness) > w->watermark)
			emit_key_window(w, key, key_length, k);
	}
	w->late_updates += weight;
}

static void mark_dirty(struct window_instance *w, struct cell *cell, uint32_t id)
{
	if (w->dirty_count == w->dirty_capacity) {
		uint32_t capacity = w->dirty_capacity == 0 ? 1024 : w->dirty_capacity * 2;
		uint32_t *bigger = weir_mem_realloc(w->dirty, sizeof(uint32_t) * capacity,
						    w->arena);
		if (bigger == NULL) {
			w->dirty_overflow = true; /* the next checkpoint writes everything */
			return;
		}
		w->dirty = bigger;
		w->dirty_capacity = capacity;
	}
	cell->dirty = 1;
	w->dirty[w->dirty_count++] = id;
}

/* The pane of @timestamp: the last record's pane again in the common case (records come in
 * time order), without a division. */
static int64_t pane_of(struct window_instance *w, int64_t timestamp)
{
	if (timestamp >= w->pane_cache_first && timestamp < w->pane_cache_end)
		return w->pane_cache;
	const struct window_op *op = w->op;
	int64_t pane = weir_floor_div(timestamp, op->pane);
	int64_t first, end;
	if (!__builtin_mul_overflow(pane, op->pane, &first) &&
	    !__builtin_add_overflow(first, op->pane, &end)) {
		w->pane_cache = pane;
		w->pane_cache_first = first;
		w->pane_cache_end = end;
	}
	return pane;
}

/* Encodes @record's (key, pane) into @slot, hashes it, and prefetches its index slot, so a
 * lookup WINDOW_LOOKAHEAD records later finds it cached. */
static inline void lookahead_prepare(struct window_instance *w, const uint8_t *record,
				     struct window_lookahead *slot)
{
	const struct window_op *op = w->op;
	int64_t timestamp;
	memcpy(&timestamp, record + op->time_offset, 8);
	slot->pane = pane_of(w, timestamp);
	if (op->key_word) {
		/* One 8-byte column: its encoding is its bytes (core/keygroup.h). */
		uint64_t key;
		memcpy(&key, record + op->key.parts[0].offset, 8);
		memcpy(slot->key, &key, 8);
		memcpy(slot->key + 8, &slot->pane, 8);
		slot->key_length = 8;
		slot->hash = cell_hash_words(key, slot->pane);
	} else {
		slot->key_length = weir_key_encode(&op->key, record, slot->key);
		memcpy(slot->key + slot->key_length, &slot->pane, 8);
		slot->hash = cell_hash(slot->key, slot->key_length + 8);
	}
	WEIR_ASSERT(slot->hash == cell_hash(slot->key, slot->key_length + 8));
	weir_table_prefetch(w->cells, slot->hash);
}

/* What happens to an event of pane @pane at the instance's clock now.  Both depend on the
 * pane and the clock alone, and the clock does not move during process(). */
struct pane_fate {
	int64_t pane;
	bool late;   /* beyond the allowed lateness: to the late output */
	bool reemit; /* a window of it already fired: re-emit the fired ones */
};

static struct pane_fate pane_fate_of(const struct window_instance *w, int64_t pane)
{
	const struct window_op *op = w->op;
	struct pane_fate fate = {.pane = pane, .late = false, .reemit = false};
	if (w->watermark != WEIR_WATERMARK_NONE &&
	    saturating_add(pane_last_end(op, pane), op->spec.allowed_lateness) <= w->watermark)
		fate.late = true;
	else if (w->fired_end != WEIR_WATERMARK_NONE &&
		 pane_first_window(op, pane) * op->spec.slide + op->spec.size <= w->fired_end)
		fate.reemit = true;
	return fate;
}

/* Adds the record of lookahead slot @slot (not late) to its cell. */
static inline void add_to_cell(struct window_instance *w, const struct window_lookahead *slot,
			       const uint8_t *record, bool reemit)
{
	const struct window_op *op = w->op;
	uint32_t key_length = slot->key_length;
	uint32_t id = WEIR_TABLE_NONE;
	struct cell *cell = cell_for(w, slot->key, key_length + 8, slot->hash, slot->pane, &id);
	if (cell == NULL) {
		w->state_full += record_weight(op, record);
		return;
	}
	cell_add_record(op, cell, record);
	if (w->tracking && cell->dirty == 0)
		mark_dirty(w, cell, id);
	if (reemit) {
		memcpy(w->key_buffer, slot->key, key_length);
		reemit_fired(w, key_length, slot->pane, record_weight(op, record));
	}
}

/* One record whose (key, pane) @slot holds: to the late output, or into its cell.  @fate is
 * the verdict of the last pane seen, renewed when the pane changes. */
static inline void process_record(struct window_instance *w, const struct window_lookahead *slot,
				  const uint8_t *record, struct pane_fate *fate)
{
	if (slot->pane != fate->pane)
		*fate = pane_fate_of(w, slot->pane);
	if (fate->late)
		late_output(w, record, w->op->record_length);
	else
		add_to_cell(w, slot, record, fate->reemit);
}

/* A cells table this small stays cached: its records are looked up one by one, without the
 * lookahead's ring and its second prefetch, which would only cost here. */
#define WINDOW_DIRECT_BYTES_MAX (256u << 10)

static void process_direct(struct window_instance *w, const uint8_t *records, uint32_t count)
{
	const struct window_op *op = w->op;
	struct window_lookahead *slot = &w->lookahead[0];
	lookahead_prepare(w, records, slot);
	struct pane_fate fate = pane_fate_of(w, slot->pane);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *record = records + (size_t)i * op->record_length;
		if (i > 0)
			lookahead_prepare(w, record, slot);
		process_record(w, slot, record, &fate);
	}
}

static void window_process(void *instance, const uint8_t *records, uint32_t count)
{
	struct window_instance *w = instance;
	const struct window_op *op = w->op;
	const uint32_t half = WINDOW_LOOKAHEAD / 2;
	if (count == 0)
		return;
	if (weir_table_bytes(w->cells) <= WINDOW_DIRECT_BYTES_MAX) {
		process_direct(w, records, count);
		return;
	}
	for (uint32_t i = 0; i < count && i < WINDOW_LOOKAHEAD; i++)
		lookahead_prepare(w, records + (size_t)i * op->record_length, &w->lookahead[i]);
	for (uint32_t i = 0; i < count && i < half; i++)
		weir_table_prefetch_entry(w->cells, w->lookahead[i].hash);
	struct pane_fate fate = pane_fate_of(w, w->lookahead[0].pane);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *record = records + (size_t)i * op->record_length;
		const struct window_lookahead *slot = &w->lookahead[i % WINDOW_LOOKAHEAD];
		if (i + half < count)
			weir_table_prefetch_entry(w->cells,
						  w->lookahead[(i + half) % WINDOW_LOOKAHEAD].hash);
		process_record(w, slot, record, &fate);
		if (i + WINDOW_LOOKAHEAD < count)
			lookahead_prepare(w, record + (size_t)WINDOW_LOOKAHEAD * op->record_length,
					  &w->lookahead[i % WINDOW_LOOKAHEAD]);
	}
}

/* Emits window @window (all keys) from its panes. */
static void fire_window(struct window_instance *w, int64_t window)
{
	const struct window_op *op = w->op;
	int64_t start = window * op->spec.slide;
	int64_t first = weir_floor_div(start, op->pane);
	int64_t last = first + op->spec.size / op->pane;
	bool single_pane = last == first + 1;
	if (!single_pane)
		weir_table_clear(w->merged);
	for (int64_t p = first; p < last; p++) {
		uint32_t pane_id = weir_table_find(w->panes, &p, sizeof(p), pane_hash(p));
		if (pane_id == WEIR_TABLE_NONE)
			continue;
		const struct pane_head *head = weir_table_value(w->panes, pane_id);
		/* Newest first, as the list through the cells went before. */
		for (uint32_t k = head->count; k-- > 0;) {
			if (k >= WINDOW_LOOKAHEAD)
				weir_table_prefetch_id(w->cells, head->ids[k - WINDOW_LOOKAHEAD]);
			uint32_t id = head->ids[k];
			const struct cell *cell = weir_table_value(w->cells, id);
			uint32_t length;
			const uint8_t *key = weir_table_key(w->cells, id, &length);
			length -= 8; /* the pane index */
			if (single_pane) {
				emit_row(w, start, key, length, cell);
			} else {
				bool inserted;
				uint32_t merged = weir_table_upsert(
					w->merged, key, length, weir_key_hash(key, length, 0),
					&inserted);
				/* merged holds at most the keys of one window: the cells
				 * table's budget already admitted them. */
				WEIR_VERIFY(merged != WEIR_TABLE_NONE);
				struct cell *into = weir_table_value(w->merged, merged);
				if (inserted)
					cell_reset(op, into);
				cell_merge(op, into, cell);
			}
		}
	}
	for (uint32_t id = 0; !single_pane && id < w->merged->high_water; id++) {
		uint32_t length;
		const uint8_t *key = weir_table_key(w->merged, id, &length);
		emit_row(w, start, key, length, weir_table_value(w->merged, id));
	}
}

static void evict_pane(struct window_instance *w, int64_t pane)
{
	uint32_t pane_id = weir_table_find(w->panes, &pane, sizeof(pane), pane_hash(pane));
	WEIR_VERIFY(pane_id != WEIR_TABLE_NONE);
	struct pane_head *head = weir_table_value(w->panes, pane_id);
	const uint32_t half = WINDOW_LOOKAHEAD / 2;
	/* Newest first, as before (the free list, so later ids, come out the same).  Each
	 * cell's entry is prefetched WINDOW_LOOKAHEAD ahead, then the index slot its removal
	 * starts from, half as far. */
	for (uint32_t k = head->count; k-- > 0;) {
		if (k >= WINDOW_LOOKAHEAD)
			weir_table_prefetch_id(w->cells, head->ids[k - WINDOW_LOOKAHEAD]);
		if (k >= half)
			weir_table_prefetch_removal(w->cells, head->ids[k - half]);
		uint32_t id = head->ids[k];
		uint32_t length;
		weir_table_key(w->cells, id, &length);
		WEIR_ASSERT(w->live_key_bytes >= length);
		w->live_key_bytes -= length;
		weir_table_remove(w->cells, id);
	}
	pane_free(w, head);
	weir_table_remove(w->panes, pane_id);
}

/* End of the last window that ends at or before @watermark, or WEIR_WATERMARK_NONE. */
static int64_t settled_end(const struct window_op *op, int64_t watermark)
{
	if (watermark == WEIR_WATERMARK_NONE || watermark < INT64_MIN + op->spec.size)
		return WEIR_WATERMARK_NONE;
	return weir_floor_div(watermark - op->spec.size, op->spec.slide) * op->spec.slide +
	       op->spec.size;
}

static void window_advance(void *instance, int64_t watermark)
{
	struct window_instance *w = instance;
	const struct window_op *op = w->op;
	WEIR_ASSERT(watermark >= w->watermark || w->watermark == WEIR_WATERMARK_NONE);
	w->watermark = watermark;
	for (;;) {
		/* The first pane that still has an unfired window decides the next window. */
		uint32_t i = 0;
		while (i < w->live_count && pane_last_end(op, w->live[i]) <= w->fired_end)
			i++;
		if (i == w->live_count)
			break;
		int64_t window = pane_first_window(op, w->live[i]);
		if (w->fired_end != WEIR_WATERMARK_NONE) {
			int64_t after = weir_floor_div(w->fired_end - op->spec.size,
						       op->spec.slide) + 1;
			window = after > window ? after : window;
		}
		int64_t end = window * op->spec.slide + op->spec.size;
		if (end > watermark)
			break;
		fire_window(w, window);
		w->fired_end = end;
	}
	/* Windows ending by the watermark are settled whether they had rows or not, so the
	 * state after a barrier is a function of the watermark alone (a restart at a
	 * checkpoint needs only the clock back), and a late event into an empty settled
	 * window emits its row right away, as into a fired one. */
	int64_t settled = settled_end(op, watermark);
	if (settled != WEIR_WATERMARK_NONE &&
	    (w->fired_end == WEIR_WATERMARK_NONE || settled > w->fired_end))
		w->fired_end = settled;
	uint32_t evicted = 0;
	while (evicted < w->live_count) {
		int64_t last_end = pane_last_end(op, w->live[evicted]);
		if (last_end > w->fired_end ||
		    saturating_add(last_end, op->spec.allowed_lateness) > watermark)
			break;
		evict_pane(w, w->live[evicted]);
		evicted++;
	}
	memmove(w->live, w->live + evicted, sizeof(int64_t) * (w->live_count - evicted));
	w->live_count -= evicted;
	/* A window past its end and its allowed lateness emits nothing more: a sink that
	 * ranks rows per window (top-k) may write it now. */
	if (watermark != WEIR_WATERMARK_NONE)
		weir_emitter_progress(w->out, saturating_add(watermark,
							     -op->spec.allowed_lateness));
	else
		weir_emitter_flush(w->out);
	weir_emitter_flush(w->late);
}

/* ---- checkpoints ---- */

#define WINDOW_RECORD_CELL 1u

/* A cell's saved value: everything after its pane link and dirty flag. */
static uint32_t cell_saved_length(const struct window_op *op)
{
	return op->cell_length - (uint32_t)offsetof(struct cell, count);
}

static int put_cell(struct window_instance *w, struct weir_state_writer *writer, uint32_t id)
{
	struct cell *cell = weir_table_value(w->cells, id);
	uint32_t length;
	const uint8_t *key = weir_table_key(w->cells, id, &length);
	cell->dirty = 0;
	return weir_state_put(writer, WINDOW_RECORD_CELL, key, length, length - 8, &cell->count,
			      cell_saved_length(w->op));
}

static int window_snapshot(void *instance, bool full, struct weir_state_writer *writer)
{
	struct window_instance *w = instance;
	int rc = 0;
	if (full || w->dirty_overflow || !w->tracking) {
		for (uint32_t id = 0; id < w->cells->high_water && rc == 0; id++) {
			if (weir_table_live(w->cells, id))
				rc = put_cell(w, writer, id);
		}
	} else {
		for (uint32_t i = 0; i < w->dirty_count && rc == 0; i++) {
			uint32_t id = w->dirty[i];
			/* Evicted since (then the restore drops it by the clock) or listed twice
			 * after its id was reused: the flag says whether it is still owed. */
			if (weir_table_live(w->cells, id) &&
			    ((struct cell *)weir_table_value(w->cells, id))->dirty != 0)
				rc = put_cell(w, writer, id);
		}
	}
	w->dirty_count = 0;
	w->dirty_overflow = false;
	w->tracking = true;
	return rc;
}

/* Sizes the cells table for what is coming, so the replay does not grow it step by step
 * (each step places every entry again).  Keys are at least one byte: an upper bound. */
static void window_restore_begin(void *instance, uint64_t state_bytes)
{
	struct window_instance *w = instance;
	uint64_t cells = state_bytes / (WEIR_LOG_HEADER_LENGTH + cell_saved_length(w->op) + 9);
	if (cells > UINT32_MAX / 4)
		cells = UINT32_MAX / 4;
	int rc = weir_table_reserve(w->cells, (uint32_t)cells);
	WEIR_MAYBE(rc != 0); /* the budget: restore() then says so for the cell it refuses */
}

/* Restore works WINDOW_LOOKAHEAD records behind the log: each record is copied into a
 * lookahead slot, hashed and its index slot prefetched, and applied when the slot comes round
 * again, so the table's cache misses overlap (as in window_process). */
static uint8_t *restore_value(const struct window_instance *w, uint32_t slot)
{
	return w->lookahead[slot].key + w->op->key.encoded_length_max + 8;
}

/* Applies the record waiting in lookahead slot @slot.  Returns: 0 or -ENOSPC. */
static int restore_apply(struct window_instance *w, uint32_t slot)
{
	const struct window_lookahead *waiting = &w->lookahead[slot];
	uint32_t id;
	struct cell *cell = cell_for(w, waiting->key, waiting->key_length + 8, waiting->hash,
				     waiting->pane, &id);
	if (cell == NULL)
		return -ENOSPC; /* the state budget is smaller than the checkpoint */
	memcpy(&cell->count, restore_value(w, slot), cell_saved_length(w->op));
	return 0;
}

static int window_restore(void *instance, const struct weir_state_record *record)
{
	struct window_instance *w = instance;
	const struct window_op *op = w->op;
	if (record->type != WINDOW_RECORD_CELL || record->key_length < 8 ||
	    record->key_length > op->key.encoded_length_max + 8 ||
	    record->value_length != cell_saved_length(op))
		return -EBADMSG; /* written by another job: the state dir does not fit it */
	uint32_t slot = w->restore_next % WINDOW_LOOKAHEAD;
	int rc = 0;
	if (w->restore_next >= WINDOW_LOOKAHEAD)
		rc = restore_apply(w, slot); /* the record that waited in this slot */
	struct window_lookahead *waiting = &w->lookahead[slot];
	memcpy(waiting->key, record->key, record->key_length);
	memcpy(restore_value(w, slot), record->value, record->value_length);
	waiting->key_length = record->key_length - 8;
	memcpy(&waiting->pane, record->key + waiting->key_length, 8);
	waiting->hash = cell_hash(record->key, record->key_length);
	weir_table_prefetch(w->cells, waiting->hash);
	w->restore_next++;
	return rc;
}

static int window_restored(void *instance, int64_t watermark, bool in_log)
{
	struct window_instance *w = instance;
	/* The last records still wait in the lookahead, oldest first. */
	uint64_t first = w->restore_next > WINDOW_LOOKAHEAD ? w->restore_next - WINDOW_LOOKAHEAD
							   : 0;
	for (uint64_t r = first; r < w->restore_next; r++) {
		int rc = restore_apply(w, (uint32_t)(r % WINDOW_LOOKAHEAD));
		if (rc != 0)
			return rc;
	}
	w->restore_next = 0;
	w->tracking = in_log; /* what the log holds is the state: only changes from now */
	WEIR_ASSERT(w->watermark == WEIR_WATERMARK_NONE);
	w->fired_end = settled_end(w->op, watermark);
	/* Cells evicted after their last checkpoint come back from the log: the clock says
	 * which, exactly as advance() decided before the crash. */
	if (watermark != WEIR_WATERMARK_NONE)
		window_advance(w, watermark);
	return 0;
}

/* What a full snapshot of the live cells writes (log record headers included): the log is
 * compacted when it outgrows this, and manifests report it as the state's size. */
static uint64_t window_state_bytes(const void *instance)
{
	const struct window_instance *w = instance;
	return (uint64_t)w->cells->count * (WEIR_LOG_HEADER_LENGTH + cell_saved_length(w->op)) +
	       w->live_key_bytes;
}

static void window_instance_free(struct window_instance *w)
{
	unsigned arena = w->arena;
	weir_mem_free(w->dirty, arena);
	for (uint32_t id = 0; w->panes != NULL && id < w->panes->high_water; id++) {
		if (weir_table_live(w->panes, id))
			pane_free(w, weir_table_value(w->panes, id));
	}
	weir_table_destroy(w->cells);
	weir_table_destroy(w->panes);
	weir_table_destroy(w->merged);
	weir_mem_free(w->live, arena);
	weir_mem_free(w->key_buffer, arena);
	weir_mem_free(w->key_saved, arena);
	weir_mem_free(w->lookahead_keys, arena);
	weir_mem_free(w->scratch, arena);
	weir_mem_free(w, arena);
}

static int window_open(void *ctx, uint32_t worker, unsigned arena, struct weir_emitter *out,
		       struct weir_emitter *late, void **instance_out)
{
	(void)worker;
	const struct window_op *op = ctx;
	struct window_instance *w = weir_mem_alloc(sizeof(*w), WEIR_CACHE_LINE, arena);
	if (w == NULL)
		return -ENOMEM;
	w->op = op;
	w->out = out;
	w->late = late;
	w->arena = arena;
	w->watermark = WEIR_WATERMARK_NONE;
	w->fired_end = WEIR_WATERMARK_NONE;
	w->pane_cache_first = w->pane_cache_end = 0; /* empty: no timestamp is cached */
	w->live_capacity = 64;
	w->live = weir_mem_alloc(sizeof(int64_t) * w->live_capacity, 8, arena);
	w->key_buffer = weir_mem_alloc(op->key.encoded_length_max + 8, 8, arena);
	w->key_saved = weir_mem_alloc(op->key.encoded_length_max + 8, 8, arena);
	/* A slot holds a key with its pane, and at restore also the cell's saved value. */
	size_t key_room = (op->key.encoded_length_max + 8 + cell_saved_length(op) + 7) & ~(size_t)7;
	w->lookahead_keys = weir_mem_alloc(key_room * WINDOW_LOOKAHEAD, 64, arena);
	for (uint32_t s = 0; w->lookahead_keys != NULL && s < WINDOW_LOOKAHEAD; s++)
		w->lookahead[s].key = w->lookahead_keys + key_room * s;
	w->scratch = weir_mem_alloc(op->cell_length, 8, arena);
	int rc = -ENOMEM;
	if (w->live != NULL && w->key_buffer != NULL && w->key_saved != NULL &&
	    w->scratch != NULL && w->lookahead_keys != NULL)
		rc = weir_table_create(&w->cells, op->key.encoded_length_max + 8,
				       op->cell_length, op->state_budget_bytes, arena);
	if (rc == 0)
		rc = weir_table_create(&w->panes, sizeof(int64_t), sizeof(struct pane_head),
				       WINDOW_PANE_DIR_BUDGET, arena);
	if (rc == 0)
		rc = weir_table_create(&w->merged, op->key.encoded_length_max, op->cell_length,
				       SIZE_MAX, arena);
	if (rc != 0) {
		window_instance_free(w);
		return rc;
	}
	*instance_out = w;
	return 0;
}

static void window_close(void *ctx, void *instance)
{
	struct window_op *op = ctx;
	struct window_instance *w = instance;
	op->late_updates += w->late_updates;
	op->late_dropped += w->late_dropped;
	op->state_full += w->state_full;
	if (w->state_bytes_peak > op->state_bytes_peak)
		op->state_bytes_peak = w->state_bytes_peak;
	window_instance_free(w);
}

static const struct weir_keyed_op_vtable window_vtable = {
	.open = window_open,
	.process = window_process,
	.advance = window_advance,
	.close = window_close,
	.snapshot = window_snapshot,
	.restore_begin = window_restore_begin,
	.restore = window_restore,
	.restored = window_restored,
	.state_bytes = window_state_bytes,
};

static void window_add_stats(void *ctx, struct weir_job_stats *stats)
{
	const struct window_op *op = ctx;
	stats->late_updates += op->late_updates;
	stats->late_dropped += op->late_dropped;
	stats->state_full += op->state_full;
}

static void window_report(void *ctx, FILE *stream)
{
	const struct window_op *op = ctx;
	if (op->state_full > 0)
		fprintf(stream,
			"weir: window state budget (%zu MiB per worker) reached: %llu events were "
			"refused and are missing from the results; raise --state-budget\n",
			op->state_budget_bytes >> 20, (unsigned long long)op->state_full);
	if (op->late_dropped > 0)
		fprintf(stream,
			"weir: %llu events arrived after their windows closed (later than the "
			"allowed lateness) and went to the late output\n",
			(unsigned long long)op->late_dropped);
}

static void window_destroy(void *ctx)
{
	weir_mem_free(ctx, WEIR_MEM_ARENA_DEFAULT);
}

static int64_t gcd64(int64_t a, int64_t b)
{
	while (b != 0) {
		int64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

int weir_window_spec_parse(struct weir_window_spec *spec, const char *text)
{
	WEIR_VERIFY(spec != NULL && text != NULL);
	char *end = NULL;
	if (strncmp(text, "tumbling:", 9) == 0) {
		errno = 0;
		long long size = strtoll(text + 9, &end, 10);
		if (errno != 0 || end == text + 9 || *end != '\0' || size <= 0)
			return -EINVAL;
		spec->kind = WEIR_WINDOW_TUMBLING;
		spec->size = spec->slide = size;
		return 0;
	}
	if (strncmp(text, "sliding:", 8) == 0) {
		errno = 0;
		long long size = strtoll(text + 8, &end, 10);
		if (errno != 0 || end == text + 8 || *end != ',' || size <= 0)
			return -EINVAL;
		const char *slide_text = end + 1;
		long long slide = strtoll(slide_text, &end, 10);
		if (errno != 0 || end == slide_text || *end != '\0' || slide <= 0)
			return -EINVAL;
		spec->kind = WEIR_WINDOW_SLIDING;
		spec->size = size;
		spec->slide = slide;
		return 0;
	}
	return -EINVAL;
}

static int add_output_field(struct window_op *op, struct weir_job *job, const char *name,
			    enum weir_type type, uint32_t max_length, uint32_t *offset)
{
	int rc = weir_schema_add(&op->out_schema, name, type, max_length);
	if (rc != 0)
		return weir_job_fail(job, -EINVAL, "window: output column '%s' twice or too many",
				     name);
	*offset = op->out_schema.fields[op->out_schema.field_count - 1].offset;
	return 0;
}

static int column_slot(struct window_op *op, struct weir_job *job,
		       const struct weir_schema *schema, const char *name, uint32_t *slot)
{
	int index = weir_schema_find(schema, name);
	if (index < 0)
		return weir_job_fail(job, -ENOENT, "aggregate column '%s' is not in the schema",
				     name);
	const struct weir_field *field = &schema->fields[index];
	if (field->type == WEIR_TYPE_STR || field->type == WEIR_TYPE_IPV4 ||
	    field->type == WEIR_TYPE_IPV6 || field->type == WEIR_TYPE_IP)
		return weir_job_fail(job, -EINVAL, "aggregate column '%s' is %s, not a number",
				     name, weir_type_name(field->type));
	for (uint32_t c = 0; c < op->column_count; c++) {
		if (op->columns[c].offset == field->offset) {
			*slot = c;
			return 0;
		}
	}
	if (op->column_count == WINDOW_COLUMNS_MAX)
		return weir_job_fail(job, -E2BIG, "window: more than %u aggregated columns",
				     WINDOW_COLUMNS_MAX);
	op->columns[op->column_count].offset = field->offset;
	op->columns[op->column_count].type = field->type;
	*slot = op->column_count++;
	return 0;
}

static int distinct_slot(struct window_op *op, struct weir_job *job,
			 const struct weir_schema *schema, const char *name, uint32_t *slot)
{
	int index = weir_schema_find(schema, name);
	if (index < 0)
		return weir_job_fail(job, -ENOENT, "aggregate column '%s' is not in the schema",
				     name);
	if (op->distinct_count == WINDOW_DISTINCTS_MAX)
		return weir_job_fail(job, -E2BIG, "window: more than %u distinct counts",
				     WINDOW_DISTINCTS_MAX);
	const struct weir_field *field = &schema->fields[index];
	struct distinct_column *column = &op->distincts[op->distinct_count];
	column->offset = field->offset;
	column->length = field->length;
	column->is_string = field->type == WEIR_TYPE_STR;
	*slot = op->distinct_count++;
	return 0;
}

/* max_by:PAYLOAD:ORDER (@spec is "PAYLOAD:ORDER"): both numeric columns. */
static int max_by_slot(struct window_op *op, struct weir_job *job,
		       const struct weir_schema *schema, const char *spec, uint32_t *slot)
{
	char payload[WEIR_FIELD_NAME_MAX];
	const char *colon = strchr(spec, ':');
	if (colon == NULL || colon == spec || (size_t)(colon - spec) >= sizeof(payload))
		return weir_job_fail(job, -EINVAL, "aggregate 'max_by:%s': expected "
				     "max_by:PAYLOAD:ORDER (PAYLOAD of the record with the largest "
				     "ORDER)", spec);
	memcpy(payload, spec, (size_t)(colon - spec));
	payload[colon - spec] = '\0';
	if (op->max_by_count == WINDOW_MAX_BYS_MAX)
		return weir_job_fail(job, -E2BIG, "window: more than %u max_by aggregates",
				     WINDOW_MAX_BYS_MAX);
	struct max_by_column *column = &op->max_bys[op->max_by_count];
	const char *names[2] = {payload, colon + 1};
	struct agg_column *parts[2] = {&column->payload, &column->order};
	for (int k = 0; k < 2; k++) {
		int index = weir_schema_find(schema, names[k]);
		if (index < 0)
			return weir_job_fail(job, -ENOENT, "aggregate column '%s' is not in "
					     "the schema", names[k]);
		const struct weir_field *field = &schema->fields[index];
		if (field->type != WEIR_TYPE_I64 && field->type != WEIR_TYPE_U64 &&
		    field->type != WEIR_TYPE_F64 && field->type != WEIR_TYPE_TS)
			return weir_job_fail(job, -EINVAL,
					     "max_by column '%s' is %s, not a number", names[k],
					     weir_type_name(field->type));
		parts[k]->offset = field->offset;
		parts[k]->type = field->type;
	}
	*slot = op->max_by_count++;
	return 0;
}

static int parse_one_aggregate(struct window_op *op, struct weir_job *job,
			       const struct weir_schema *schema, char *item)
{
	static const char *const names[] = {"count", "sum", "min", "max", "avg", "distinct",
					    "max_by"};
	char *alias = strchr(item, '=');
	if (alias != NULL)
		*alias++ = '\0';
	char *colon = strchr(item, ':');
	if (colon != NULL)
		*colon = '\0';
	int kind = -1;
	for (int k = 0; k < 7; k++) {
		if (strcmp(item, names[k]) == 0)
			kind = k;
	}
	if (kind < 0 || (kind == AGG_COUNT) != (colon == NULL) ||
	    (alias != NULL && alias[0] == '\0'))
		return weir_job_fail(job, -EINVAL,
				     "aggregate '%s': expected count, sum:COL, min:COL, max:COL, "
				     "avg:COL, distinct:COL or max_by:COL:ORDER_COL, each "
				     "optionally followed by =NAME",
				     item);
	if (op->output_count == WINDOW_AGGS_MAX)
		return weir_job_fail(job, -E2BIG, "window: more than %u aggregates",
				     WINDOW_AGGS_MAX);
	struct agg_output *out = &op->outputs[op->output_count];
	out->kind = (enum agg_kind)kind;
	enum weir_type type = WEIR_TYPE_I64;
	if (kind == AGG_DISTINCT) {
		int rc = distinct_slot(op, job, schema, colon + 1, &out->column);
		if (rc != 0)
			return rc;
	} else if (kind == AGG_MAX_BY) {
		int rc = max_by_slot(op, job, schema, colon + 1, &out->column);
		if (rc != 0)
			return rc;
		type = op->max_bys[out->column].payload.type;
		type = type == WEIR_TYPE_TS ? WEIR_TYPE_I64 : type;
	} else if (kind != AGG_COUNT) {
		int rc = column_slot(op, job, schema, colon + 1, &out->column);
		if (rc != 0)
			return rc;
		type = kind == AGG_AVG ? WEIR_TYPE_F64 : op->columns[out->column].type;
		type = type == WEIR_TYPE_TS ? WEIR_TYPE_I64 : type;
	}
	char name[WEIR_FIELD_NAME_MAX + 8];
	if (alias != NULL)
		snprintf(name, sizeof(name), "%s", alias);
	else if (kind == AGG_COUNT)
		snprintf(name, sizeof(name), "count");
	else if (kind == AGG_MAX_BY) /* max_by_bidder_price: "bidder" at the max "price" */
		snprintf(name, sizeof(name), "max_by_%.*s", WEIR_FIELD_NAME_MAX, colon + 1);
	else
		snprintf(name, sizeof(name), "%s_%s", names[kind], colon + 1);
	for (char *c = name; *c != '\0'; c++)
		*c = *c == ':' ? '_' : *c;
	if (strlen(name) >= WEIR_FIELD_NAME_MAX)
		return weir_job_fail(job, -EINVAL, "aggregate name '%s' is too long", name);
	int rc = add_output_field(op, job, name, type, 0, &out->out_offset);
	if (rc == 0)
		op->output_count++;
	return rc;
}

/* Output row: window_start, window_end, the key columns; the aggregates follow in the order
 * they are given (parse_aggregates). */
static int build_output(struct window_op *op, struct weir_job *job,
			const struct weir_schema *schema)
{
	weir_schema_init(&op->out_schema);
	int rc = add_output_field(op, job, "window_start", WEIR_TYPE_I64, 0, &op->start_offset);
	if (rc == 0)
		rc = add_output_field(op, job, "window_end", WEIR_TYPE_I64, 0, &op->end_offset);
	char columns[1024] = "";
	for (uint32_t k = 0; rc == 0 && k < op->key.part_count; k++) {
		const struct weir_field *field = &schema->fields[op->key.parts[k].field_index];
		uint32_t unused;
		rc = add_output_field(op, job, field->name, field->type, field->max_length,
				      &unused);
		if (k > 0)
			strcat(columns, ",");
		strcat(columns, field->name);
	}
	if (rc != 0)
		return rc;
	char message[256];
	rc = weir_key_spec_init(&op->out_key, &op->out_schema, columns, message, sizeof(message));
	WEIR_VERIFY(rc == 0);
	return 0;
}

static int parse_aggregates(struct window_op *op, struct weir_job *job,
			    const struct weir_schema *schema, const char *text)
{
	char copy[2048];
	if (text == NULL || text[0] == '\0' || strlen(text) >= sizeof(copy))
		return weir_job_fail(job, -EINVAL, "window: no aggregates (e.g. count,sum:amount)");
	strcpy(copy, text);
	char *save = NULL;
	for (char *item = strtok_r(copy, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		int rc = parse_one_aggregate(op, job, schema, item);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int check_spec(struct weir_job *job, const struct weir_window_spec *spec)
{
	if (spec->size <= 0 || spec->slide <= 0)
		return weir_job_fail(job, -EINVAL, "window: size and slide must be positive");
	if (spec->kind == WEIR_WINDOW_TUMBLING && spec->slide != spec->size)
		return weir_job_fail(job, -EINVAL, "window: a tumbling window slides by its size");
	if (spec->slide > spec->size)
		return weir_job_fail(job, -EINVAL,
				     "window: slide %lld is larger than size %lld (events would "
				     "fall between windows)",
				     (long long)spec->slide, (long long)spec->size);
	if (spec->size / gcd64(spec->size, spec->slide) > WEIR_WINDOW_PANES_MAX)
		return weir_job_fail(job, -EINVAL,
				     "window: size/gcd(size, slide) = %lld panes, more than %d",
				     (long long)(spec->size / gcd64(spec->size, spec->slide)),
				     WEIR_WINDOW_PANES_MAX);
	if (spec->allowed_lateness < 0)
		return weir_job_fail(job, -EINVAL, "window: lateness must be >= 0");
	return 0;
}

static int window_configure(struct window_op *op, struct weir_job *job,
			    const struct weir_window_spec *spec)
{
	const struct weir_schema *schema = weir_job_tail_schema(job);
	const struct weir_key_spec *key = weir_job_key(job);
	if (schema == NULL || key == NULL)
		return weir_job_fail(job, -EINVAL, "window: call key_by first");
	int rc = check_spec(job, spec);
	if (rc != 0)
		return rc;
	op->spec = *spec;
	op->spec.time_column = NULL;
	op->spec.aggregates = NULL;
	op->spec.weight_column = NULL;
	op->pane = gcd64(spec->size, spec->slide);
	op->key = *key;
	op->key_word = key->part_count == 1 && !key->parts[0].is_string &&
		       key->parts[0].length == 8;
	int time_index = spec->time_column != NULL ? weir_schema_find(schema, spec->time_column)
						   : -ENOENT;
	if (time_index < 0)
		return weir_job_fail(job, -ENOENT, "time column '%s' is not in the schema",
				     spec->time_column != NULL ? spec->time_column : "(none)");
	enum weir_type time_type = schema->fields[time_index].type;
	if (time_type != WEIR_TYPE_I64 && time_type != WEIR_TYPE_TS)
		return weir_job_fail(job, -EINVAL, "time column '%s' is %s; it must be i64 or ts",
				     spec->time_column, weir_type_name(time_type));
	op->time_offset = schema->fields[time_index].offset;
	if (spec->weight_column != NULL) {
		int weight_index = weir_schema_find(schema, spec->weight_column);
		if (weight_index < 0 || !weir_type_is_integer(schema->fields[weight_index].type))
			return weir_job_fail(job, -EINVAL,
					     "window: weight column '%s' is no integer column",
					     spec->weight_column);
		op->weighted = true;
		op->weight_offset = schema->fields[weight_index].offset;
	}
	op->record_length = schema->record_length;
	op->state_budget_bytes = (size_t)weir_job_get_options(job)->state_budget_mib << 20;
	rc = build_output(op, job, schema);
	if (rc == 0)
		rc = parse_aggregates(op, job, schema, spec->aggregates);
	op->cell_length = (uint32_t)(sizeof(struct cell) +
				     3 * sizeof(union agg_value) *
					     (op->column_count + op->max_by_count) +
				     (size_t)op->distinct_count * WEIR_HLL_REGISTERS);
	return rc;
}

/* ---- combine: the first phase of a two-phase aggregate (spec->combine) ----
 *
 * A stage after key_by, on the worker that pulled the records: the records of one pull that
 * share a key and a pane become one partial row (the key, a time, weir_count events, and per
 * aggregated column its sum, min or max as the window needs it), so one row per key and pane
 * crosses the rings and reaches the window's table.  The window then aggregates the partials
 * (sums of sums, the min of mins, count and avg weighted by weir_count).
 *
 * A row travels where its first record was and carries that record's time: route observes
 * the watermark row by row, and a batch's watermark must never count a record that travels
 * after it.  Had the row carried its latest record's time, that time would move the
 * watermark ahead of rows routed after it, which were not late at their own records' places
 * (a window fired before them: late rows the run without combine did not have).  The later
 * records' times reach the watermark through the rows of later pulls; each record merged into
 * a row travels earlier than it came, so it is never later than without combine. */

#define COMBINE_SLOTS 2048u /* the merge table's most slots (a power of two): 1024 rows */
#define COMBINE_PROBES 8u

enum combine_fold { FOLD_SUM, FOLD_MIN, FOLD_MAX };

struct combine_column {
	uint32_t in_offset, out_offset;
	enum weir_type type;
	enum combine_fold fold;
};

struct combine_max_by {
	struct max_by_column in; /* the payload and order columns of the keyed records */
	uint32_t payload_out, order_out;
};

struct combiner {
	struct weir_key_spec key;		 /* over the keyed records */
	uint32_t key_out[WEIR_KEY_COLUMNS_MAX]; /* the key parts' offsets in a partial row */
	bool key_word;				 /* the key is one 8-byte column */
	uint32_t time_in, time_out, count_out;
	int64_t pane;
	uint32_t column_count;
	uint32_t max_by_count;
	struct combine_column columns[3 * WINDOW_COLUMNS_MAX];
	struct combine_max_by max_bys[WINDOW_MAX_BYS_MAX];
};

static int64_t load_i64(const uint8_t *at)
{
	int64_t value;
	memcpy(&value, at, sizeof(value));
	return value;
}

static bool combine_key_equal(const struct combiner *c, const uint8_t *record,
			      const uint8_t *row)
{
	if (c->key_word)
		return load_i64(record + c->key.parts[0].offset) == load_i64(row + c->key_out[0]);
	for (uint32_t k = 0; k < c->key.part_count; k++) {
		const struct weir_key_part *part = &c->key.parts[k];
		if (memcmp(record + part->offset, row + c->key_out[k], part->length) != 0)
			return false; /* strings are zero padded: equal strings, equal bytes */
	}
	return true;
}

static uint32_t combine_slot(const struct combiner *c, const uint8_t *record, int64_t pane,
			     uint8_t *key_buffer, uint32_t mask)
{
	uint64_t hash;
	if (c->key_word) {
		hash = (uint64_t)load_i64(record + c->key.parts[0].offset);
	} else {
		uint32_t length = weir_key_encode(&c->key, record, key_buffer);
		hash = weir_key_hash(key_buffer, length, 0);
	}
	hash = (hash ^ (uint64_t)pane * 0xc2b2ae3d27d4eb4fu) * 0x9e3779b97f4a7c15u;
	return (uint32_t)(hash >> 40) & mask;
}

/* A new partial row: @record's key, time and values, standing for one event. */
static void combine_start(const struct combiner *c, uint8_t *row, uint32_t row_length,
			  const uint8_t *record)
{
	memset(row, 0, row_length);
	for (uint32_t k = 0; k < c->key.part_count; k++)
		memcpy(row + c->key_out[k], record + c->key.parts[k].offset,
		       c->key.parts[k].length);
	memcpy(row + c->time_out, record + c->time_in, 8);
	int64_t one = 1;
	memcpy(row + c->count_out, &one, 8);
	for (uint32_t i = 0; i < c->column_count; i++)
		memcpy(row + c->columns[i].out_offset, record + c->columns[i].in_offset, 8);
	for (uint32_t m = 0; m < c->max_by_count; m++) {
		const struct combine_max_by *mb = &c->max_bys[m];
		memcpy(row + mb->payload_out, record + mb->in.payload.offset, 8);
		memcpy(row + mb->order_out, record + mb->in.order.offset, 8);
	}
}

static void combine_fold(const struct combine_column *column, uint8_t *row,
			 const uint8_t *record)
{
	union agg_value a, b;
	memcpy(&a, row + column->out_offset, 8);
	memcpy(&b, record + column->in_offset, 8);
	if (column->fold == FOLD_SUM) {
		if (column->type == WEIR_TYPE_F64)
			a.f += b.f;
		else
			a.u += b.u; /* wraps as the window's sum does */
	} else if (value_greater(column->type, b, a) == (column->fold == FOLD_MAX)) {
		a = b;
	}
	memcpy(row + column->out_offset, &a, 8);
}

/* Adds @record to the partial row @row of its key and pane (whose time stays its first
 * record's). */
static void combine_add(const struct combiner *c, uint8_t *row, const uint8_t *record)
{
	int64_t count = load_i64(row + c->count_out) + 1;
	memcpy(row + c->count_out, &count, 8);
	for (uint32_t i = 0; i < c->column_count; i++)
		combine_fold(&c->columns[i], row, record);
	for (uint32_t m = 0; m < c->max_by_count; m++) {
		const struct combine_max_by *mb = &c->max_bys[m];
		union agg_value v[3], order, payload;
		memcpy(&v[0], row + mb->order_out, 8);
		memcpy(&v[1], row + mb->payload_out, 8);
		v[2].u = 1;
		memcpy(&order, record + mb->in.order.offset, 8);
		memcpy(&payload, record + mb->in.payload.offset, 8);
		max_by_offer(&mb->in, v, order, payload);
		memcpy(row + mb->order_out, &v[0], 8);
		memcpy(row + mb->payload_out, &v[1], 8);
	}
}

/* The stage: @count keyed records in, one partial row per key and pane out (a record that
 * finds neither its row nor a free slot within COMBINE_PROBES, or a new key once the table
 * is half full, gets a row of its own: still right, only less merged).  Rows keep the order
 * of their first records. */
static uint32_t combine_stage(void *ctx, const uint8_t *in, uint32_t count, uint32_t in_length,
			      uint8_t *out, uint32_t out_length)
{
	const struct combiner *c = ctx;
	uint32_t size = 64; /* the smallest table at most half full: clearing costs no more */
	while (size < 2 * count && size < COMBINE_SLOTS)
		size *= 2;
	uint16_t slots[COMBINE_SLOTS]; /* 0: empty, else the row's index + 1 */
	memset(slots, 0, sizeof(slots[0]) * size);
	uint8_t key_buffer[WEIR_KEY_COLUMNS_MAX * (WEIR_STR_LENGTH_MAX + 1)];
	WEIR_ASSERT(c->key.encoded_length_max <= sizeof(key_buffer));
	int64_t pane = 0, pane_first = 0, pane_end = 0; /* the last record's pane */
	uint32_t rows = 0;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *record = in + (size_t)i * in_length;
		int64_t time = load_i64(record + c->time_in);
		if (i == 0 || time < pane_first || time >= pane_end) {
			pane = weir_floor_div(time, c->pane);
			pane_first = pane * c->pane;
			pane_end = saturating_add(pane_first, c->pane);
		}
		uint8_t *row = NULL;
		uint32_t slot = combine_slot(c, record, pane, key_buffer, size - 1);
		for (uint32_t probe = 0; probe < COMBINE_PROBES; probe++) {
			if (slots[slot] == 0) {
				if (rows < size / 2) /* at most half full: probes end */
					slots[slot] = (uint16_t)(rows + 1);
				break;
			}
			uint8_t *candidate = out + (size_t)(slots[slot] - 1) * out_length;
			int64_t candidate_time = load_i64(candidate + c->time_out);
			if (candidate_time >= pane_first && candidate_time < pane_end &&
			    combine_key_equal(c, record, candidate)) {
				row = candidate;
				break;
			}
			slot = (slot + 1) & (size - 1);
		}
		if (row != NULL) {
			combine_add(c, row, record);
			continue;
		}
		combine_start(c, out + (size_t)rows++ * out_length, out_length, record);
	}
	WEIR_ASSERT(rows <= count);
	return rows;
}

/* Adds @name (@type, @max_length) to the partial rows' schema unless it is there (the time
 * column may be a key column too: then rows merge only at equal times, which is right). */
static int partial_field(struct weir_job *job, struct weir_schema *partial, const char *name,
			 enum weir_type type, uint32_t max_length, uint32_t *offset)
{
	int index = weir_schema_find(partial, name);
	if (index < 0 && weir_schema_add(partial, name, type, max_length) != 0)
		return weir_job_fail(job, -E2BIG, "window: combine: the partial rows would have "
				     "more than %d columns (at '%s')",
				     WEIR_SCHEMA_FIELDS_MAX, name);
	index = weir_schema_find(partial, name);
	WEIR_VERIFY(index >= 0);
	*offset = partial->fields[index].offset;
	return 0;
}

/* The partial column @fold of aggregated column @column of @probe, made on first use. */
static int partial_column(struct combiner *c, struct weir_job *job, struct weir_schema *partial,
			  const struct window_op *probe, uint32_t column, enum combine_fold fold,
			  char *name, size_t capacity)
{
	static const char *const folds[] = {"sum", "min", "max"};
	snprintf(name, capacity, "weir_%s%u", folds[fold], column);
	bool known = weir_schema_find(partial, name) >= 0;
	uint32_t offset = 0;
	int rc = partial_field(job, partial, name, probe->columns[column].type, 0, &offset);
	if (rc != 0 || known)
		return rc;
	WEIR_VERIFY(c->column_count < sizeof(c->columns) / sizeof(c->columns[0]));
	c->columns[c->column_count++] = (struct combine_column){
		.in_offset = probe->columns[column].offset,
		.out_offset = offset,
		.type = probe->columns[column].type,
		.fold = fold,
	};
	return 0;
}

/* Plans the combiner from @probe, the window parsed over the keyed records: the partial rows'
 * schema (key columns, the time column, weir_count, the partials), the stage, appended to
 * @job, and in @aggregates the window's aggregates over the partial rows, with the outputs
 * named as @probe names them. */
static int combine_plan(const struct window_op *probe, struct weir_job *job,
			const struct weir_window_spec *spec, char *aggregates, size_t capacity)
{
	if (spec->weight_column != NULL)
		return weir_job_fail(job, -EINVAL, "window: combine weighs its partial rows "
				     "itself: give no weight_column with it");
	if (probe->distinct_count > 0)
		return weir_job_fail(job, -EINVAL, "window: combine cannot merge distinct counts "
				     "(HyperLogLog sketches); drop combine or the distinct");
	const struct weir_schema *in = weir_job_tail_schema(job);
	struct combiner *c = weir_mem_alloc(sizeof(*c), 8, WEIR_MEM_ARENA_DEFAULT);
	if (c == NULL)
		return weir_job_fail(job, -ENOMEM, "window: out of memory");
	memset(c, 0, sizeof(*c));
	c->key = probe->key;
	c->key_word = probe->key_word;
	c->time_in = probe->time_offset;
	c->pane = probe->pane;
	struct weir_schema partial;
	weir_schema_init(&partial);
	int rc = 0;
	for (uint32_t k = 0; rc == 0 && k < probe->key.part_count; k++) {
		const struct weir_field *field = &in->fields[probe->key.parts[k].field_index];
		rc = partial_field(job, &partial, field->name, field->type, field->max_length,
				   &c->key_out[k]);
	}
	int time_index = weir_schema_find(in, spec->time_column);
	WEIR_VERIFY(time_index >= 0); /* window_configure found it */
	if (rc == 0)
		rc = partial_field(job, &partial, spec->time_column, in->fields[time_index].type,
				   0, &c->time_out);
	if (rc == 0)
		rc = partial_field(job, &partial, "weir_count", WEIR_TYPE_I64, 0, &c->count_out);
	size_t used = 0;
	aggregates[0] = '\0';
	for (uint32_t a = 0; rc == 0 && a < probe->output_count; a++) {
		const struct agg_output *out = &probe->outputs[a];
		const char *output = probe->out_schema.fields[2 + probe->key.part_count + a].name;
		char first[WEIR_FIELD_NAME_MAX], second[WEIR_FIELD_NAME_MAX];
		static const char *const kinds[] = {"count", "sum", "min", "max", "avg"};
		if (out->kind == AGG_MAX_BY) {
			const struct max_by_column *column = &probe->max_bys[out->column];
			struct combine_max_by *mb = &c->max_bys[c->max_by_count++];
			mb->in = *column;
			snprintf(first, sizeof(first), "weir_by%u", out->column);
			snprintf(second, sizeof(second), "weir_at%u", out->column);
			rc = partial_field(job, &partial, first, column->payload.type, 0,
					   &mb->payload_out);
			if (rc == 0)
				rc = partial_field(job, &partial, second, column->order.type, 0,
						   &mb->order_out);
			used += (size_t)snprintf(aggregates + used, capacity - used,
						 "%smax_by:%s:%s=%s", a > 0 ? "," : "", first,
						 second, output);
		} else if (out->kind == AGG_COUNT) {
			used += (size_t)snprintf(aggregates + used, capacity - used, "%scount=%s",
						 a > 0 ? "," : "", output);
		} else {
			enum combine_fold fold = out->kind == AGG_MIN	? FOLD_MIN
						 : out->kind == AGG_MAX ? FOLD_MAX
									: FOLD_SUM;
			rc = partial_column(c, job, &partial, probe, out->column, fold, first,
					    sizeof(first));
			used += (size_t)snprintf(aggregates + used, capacity - used, "%s%s:%s=%s",
						 a > 0 ? "," : "", kinds[out->kind], first,
						 output);
		}
		WEIR_VERIFY(used < capacity);
	}
	struct weir_component component = {.ctx = c, .destroy = window_destroy};
	if (rc != 0) {
		window_destroy(c);
		return rc;
	}
	return weir_job_append_combiner(job, combine_stage, c, &partial, component);
}

int weir_job_window(struct weir_job *job, const struct weir_window_spec *spec)
{
	WEIR_VERIFY(job != NULL && spec != NULL);
	struct window_op *op = weir_mem_alloc(sizeof(*op), WEIR_CACHE_LINE,
					      WEIR_MEM_ARENA_DEFAULT);
	if (op == NULL)
		return weir_job_fail(job, -ENOMEM, "window: out of memory");
	int rc = window_configure(op, job, spec);
	if (rc == 0 && spec->combine) {
		/* Parsed over the keyed records first, to plan the partials; then over them. */
		char aggregates[2048];
		rc = combine_plan(op, job, spec, aggregates, sizeof(aggregates));
		struct weir_window_spec second = *spec;
		second.aggregates = aggregates;
		second.weight_column = "weir_count";
		second.combine = false;
		memset(op, 0, sizeof(*op));
		if (rc == 0)
			rc = window_configure(op, job, &second);
	}
	if (rc != 0) {
		window_destroy(op);
		return rc;
	}
	struct weir_component component = {
		.ctx = op,
		.destroy = window_destroy,
		.report = window_report,
		.add_stats = window_add_stats,
	};
	return weir_job_attach_keyed_op(job, &window_vtable, op, op->time_offset, &op->out_schema,
					component);
}
