/* Flow analytics over packet events (WEIR_PACKET_SCHEMA): per window, keyed by source host,
 * destination host, host (either end), conversation (the unordered address pair) or 5-tuple,
 * the packets, bytes and first/last time seen.  Each grouping is a fused stage that shapes
 * the events, then the usual key_by and window aggregate.  The conversation stage also merges
 * the events of one pull that share a conversation and a window into one row, which the
 * window sums like the events themselves: fewer rows cross the exchange and the table.
 *
 * Two groupings detect attacks from connection attempts (TCP SYN without ACK): "syn" counts
 * them per destination, with the number of distinct sources (a SYN flood: many, often
 * spoofed); "scan" counts per source the distinct destination ports and hosts it tried (a
 * port scan).  Distinct counts are HyperLogLog estimates (operators/hll.h). */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/assert.h"
#include "core/job.h"
#include "core/mem.h"
#include "io/packet_event.h"
#include "operators/window.h"

/* In: packet events (struct weir_packet_event).  Out: the grouping's rows; host rows at the
 * offsets below, conversation rows as struct conversation_row. */
struct flow_stage {
	struct weir_schema out; /* what the grouping keys and sums */
	uint32_t out_ts, out_bytes, out_a; /* host only */
	uint32_t out_packets_ab, out_bytes_ab, out_packets_ba, out_bytes_ba;
	int64_t window_ns; /* conversation rows merge only within one window */
};

static uint32_t offset_of(const struct weir_schema *schema, const char *name)
{
	int index = weir_schema_find(schema, name);
	WEIR_VERIFY(index >= 0);
	return schema->fields[index].offset;
}

static void put_i64(uint8_t *record, uint32_t offset, int64_t value)
{
	memcpy(record + offset, &value, sizeof(value));
}

/* The 8 bytes at @bytes as a big-endian number: compared as numbers, they order like memcmp. */
static uint64_t load_be64(const uint8_t *bytes)
{
	uint64_t value;
	memcpy(&value, bytes, sizeof(value));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	value = __builtin_bswap64(value);
#endif
	return value;
}

/* memcmp(a, b, 16) as a sign, inline: two 8-byte big-endian compares instead of a libc
 * call per event. */
static int address_compare(const uint8_t *a, const uint8_t *b)
{
	uint64_t a_high = load_be64(a), b_high = load_be64(b);
	if (a_high != b_high)
		return a_high < b_high ? -1 : 1;
	uint64_t a_low = load_be64(a + 8), b_low = load_be64(b + 8);
	return (a_low > b_low) - (a_low < b_low);
}

#define MERGE_SLOTS 2048u /* the merge table's most slots (a power of 2): 1024 rows merged */

/* The merge table's slot for conversation (@a, @b) in @window, of a table of @mask + 1 slots.
 * One multiply: IPv4 addresses (v4-mapped) differ only in their last 8 bytes, which the
 * rotation keeps apart before the product mixes them into the top bits. */
static uint32_t merge_slot(const uint8_t *a, const uint8_t *b, int64_t window, uint32_t mask)
{
	uint64_t words[4];
	memcpy(words, a, 16);
	memcpy(words + 2, b, 16);
	uint64_t mixed = words[0] ^ words[1] ^ (words[2] << 16 | words[2] >> 48) ^
			 (words[3] << 32 | words[3] >> 32) ^ (uint64_t)window;
	return (uint32_t)((mixed * 0x9e3779b97f4a7c15u) >> 40) & mask;
}

/* Whether the 16-byte addresses at @x and @y are equal: two loads each, no libc call. */
static bool address_equal(const uint8_t *x, const uint8_t *y)
{
	uint64_t a[2], b[2];
	memcpy(a, x, 16);
	memcpy(b, y, 16);
	return ((a[0] ^ b[0]) | (a[1] ^ b[1])) == 0;
}

/* Whether @ts falls in the window [@start, @start + @size): no sum that could overflow. */
static bool in_window(int64_t ts, int64_t start, int64_t size)
{
	return ts >= start && (uint64_t)ts - (uint64_t)start < (uint64_t)size;
}

/* A conversation row: conversation_schema as weir_schema_parse lays it out (shape_stage
 * checks every offset).  The stage runs once per packet, so its field offsets are constants
 * (as the packet events' are: struct weir_packet_event) rather than loads from the stage. */
struct conversation_row {
	int64_t ts, first_ts, last_ts;
	uint8_t a[16];
	uint8_t b[16];
	int64_t packets, bytes;
	int64_t directions[2][2]; /* [a to b, b to a][packets, bytes] */
};

/* conversation: addr_a is the lower address; each direction counted on its own.  The events
 * of one call (one pull of the source) that share a conversation and a window become one
 * row: packets, bytes and both directions summed, first_ts and last_ts the earliest and
 * latest time, and ts the time of its first event, where the row travels: route observes the
 * watermark row by row, and the latest time would move it past rows routed after this one
 * (as in the window's combine, operators/window.c).  The window sums these columns,
 * so its rows are those of one row per event, while the exchange and the window's table see
 * a row per conversation and pull (in the DPDK source's 512-frame pulls of data/sample.pcap,
 * 26 rows per 100 events).  Rows keep the order of each conversation's first event in the
 * call.  A row and the events it merges share their window, hence their late verdict (the
 * window judges a batch against one watermark).  The window weighs each row by its packets,
 * so the late and refused (state budget) counts are still counts of events; a late sink gets
 * the merged rows, each with its packets. */
static uint32_t conversation_stage(void *ctx, const uint8_t *in, uint32_t count,
				   uint32_t in_length, uint8_t *out, uint32_t out_length)
{
	const struct flow_stage *stage = ctx;
	WEIR_ASSERT(in_length == sizeof(struct weir_packet_event));
	WEIR_ASSERT(out_length == sizeof(struct conversation_row));
	const struct weir_packet_event *events = (const struct weir_packet_event *)(const void *)in;
	struct conversation_row *rows_at = (struct conversation_row *)(void *)out;
	const int64_t window_ns = stage->window_ns;
	/* The smallest table at most half full: no clearing cost beyond the call's need. */
	uint32_t size = 64;
	while (size < 2 * count && size < MERGE_SLOTS)
		size *= 2;
	uint16_t slots[MERGE_SLOTS]; /* 0: empty, else the row's index + 1 */
	memset(slots, 0, sizeof(slots[0]) * size);
	uint32_t rows = 0;
	int64_t window = 0, window_start = 0; /* the window of the last event */
	for (uint32_t i = 0; i < count; i++) {
		const struct weir_packet_event *event = &events[i];
		uint32_t backward = address_compare(event->src, event->dst) > 0;
		const uint8_t *a = backward ? event->dst : event->src;
		const uint8_t *b = backward ? event->src : event->dst;
		int64_t bytes = event->bytes, ts = event->ts;
		if (i == 0 || !in_window(ts, window_start, window_ns)) {
			window = weir_floor_div(ts, window_ns);
			window_start = window * window_ns;
		}
		struct conversation_row *row = NULL;
		/* A long probe, or a new conversation once the table is half full (a call larger
		 * than MERGE_SLOTS / 2): own row. */
		uint32_t slot = merge_slot(a, b, window, size - 1);
		for (uint32_t probe = 0; probe < 8; probe++) {
			if (slots[slot] == 0) {
				if (rows < size / 2)
					slots[slot] = (uint16_t)(rows + 1);
				break;
			}
			struct conversation_row *candidate = &rows_at[slots[slot] - 1];
			if (in_window(candidate->ts, window_start, window_ns) &&
			    address_equal(candidate->a, a) && address_equal(candidate->b, b)) {
				row = candidate;
				break;
			}
			slot = (slot + 1) & (size - 1);
		}
		if (row == NULL) {
			row = &rows_at[rows++];
			memset(row, 0, sizeof(*row));
			row->ts = ts;
			row->first_ts = ts;
			row->last_ts = ts;
			memcpy(row->a, a, 16);
			memcpy(row->b, b, 16);
		}
		row->first_ts = ts < row->first_ts ? ts : row->first_ts;
		row->last_ts = ts > row->last_ts ? ts : row->last_ts;
		row->packets++;
		row->bytes += bytes;
		row->directions[backward][0]++;
		row->directions[backward][1] += bytes;
	}
	WEIR_ASSERT(rows <= count);
	WEIR_ASSERT(count == 0 || rows > 0);
	return rows;
}

/* host: every packet counts once for its sender and once for its receiver. */
static uint32_t host_stage(void *ctx, const uint8_t *in, uint32_t count, uint32_t in_length,
			   uint8_t *out, uint32_t out_length)
{
	const struct flow_stage *stage = ctx;
	WEIR_ASSERT(in_length == sizeof(struct weir_packet_event));
	const struct weir_packet_event *events = (const struct weir_packet_event *)(const void *)in;
	for (uint32_t i = 0; i < count; i++) {
		const struct weir_packet_event *event = &events[i];
		int64_t bytes = event->bytes;
		for (uint32_t side = 0; side < 2; side++) {
			uint8_t *row = out + (size_t)(2 * i + side) * out_length;
			put_i64(row, stage->out_ts, event->ts);
			memcpy(row + stage->out_a, side == 0 ? event->src : event->dst, 16);
			put_i64(row, stage->out_bytes, bytes);
			put_i64(row, stage->out_packets_ab, side == 0); /* sent */
			put_i64(row, stage->out_bytes_ab, side == 0 ? bytes : 0);
			put_i64(row, stage->out_packets_ba, side == 1); /* received */
			put_i64(row, stage->out_bytes_ba, side == 1 ? bytes : 0);
		}
	}
	return 2 * count;
}

#define TCP_SYN 0x02
#define TCP_ACK 0x10

struct syn_filter {
	uint32_t proto, tcp_flags; /* offsets */
};

/* Keeps connection attempts: TCP segments with SYN set and ACK clear. */
static uint32_t syn_stage(void *ctx, const uint8_t *in, uint32_t count, uint32_t in_length,
			  uint8_t *out, uint32_t out_length)
{
	const struct syn_filter *filter = ctx;
	WEIR_ASSERT(in_length == out_length);
	uint32_t kept = 0;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *event = in + (size_t)i * in_length;
		int64_t proto, flags;
		memcpy(&proto, event + filter->proto, 8);
		memcpy(&flags, event + filter->tcp_flags, 8);
		if (proto != 6 || (flags & (TCP_SYN | TCP_ACK)) != TCP_SYN)
			continue;
		memcpy(out + (size_t)kept++ * out_length, event, in_length);
	}
	return kept;
}

static const char *const conversation_schema =
	"ts:ts,first_ts:ts,last_ts:ts,addr_a:ip,addr_b:ip,packets:i64,bytes:i64,packets_a_to_b:i64,"
	"bytes_a_to_b:i64,packets_b_to_a:i64,bytes_b_to_a:i64";
static const char *const host_schema =
	"ts:ts,host:ip,bytes:i64,packets_sent:i64,bytes_sent:i64,packets_received:i64,"
	"bytes_received:i64";

static void stage_free(void *ctx)
{
	weir_mem_free(ctx, WEIR_MEM_ARENA_DEFAULT);
}

static int syn_filter_stage(struct weir_job *job)
{
	const struct weir_schema *tail = weir_job_tail_schema(job);
	if (tail == NULL || weir_schema_find(tail, "tcp_flags") < 0)
		return weir_job_fail(job, -EINVAL, "flows: needs a packet source first");
	struct syn_filter *filter = weir_mem_alloc(sizeof(*filter), 8, WEIR_MEM_ARENA_DEFAULT);
	if (filter == NULL)
		return weir_job_fail(job, -ENOMEM, "flows: out of memory");
	filter->proto = offset_of(tail, "proto");
	filter->tcp_flags = offset_of(tail, "tcp_flags");
	struct weir_component component = {.ctx = filter, .destroy = stage_free};
	return weir_job_append_stage(job, syn_stage, filter, tail, 1, component);
}

/* Whether @out (conversation_schema parsed) is laid out as struct conversation_row. */
static bool conversation_row_matches(const struct weir_schema *out)
{
	static const struct {
		const char *name;
		size_t offset;
	} fields[] = {
		{"ts", offsetof(struct conversation_row, ts)},
		{"first_ts", offsetof(struct conversation_row, first_ts)},
		{"last_ts", offsetof(struct conversation_row, last_ts)},
		{"addr_a", offsetof(struct conversation_row, a)},
		{"addr_b", offsetof(struct conversation_row, b)},
		{"packets", offsetof(struct conversation_row, packets)},
		{"bytes", offsetof(struct conversation_row, bytes)},
		{"packets_a_to_b", offsetof(struct conversation_row, directions[0][0])},
		{"bytes_a_to_b", offsetof(struct conversation_row, directions[0][1])},
		{"packets_b_to_a", offsetof(struct conversation_row, directions[1][0])},
		{"bytes_b_to_a", offsetof(struct conversation_row, directions[1][1])},
	};
	bool match = out->record_length == sizeof(struct conversation_row);
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
		match = match && weir_schema_has_field_at(out, fields[f].name, fields[f].offset);
	return match;
}

static int shape_stage(struct weir_job *job, enum weir_flow_group group, int64_t window_ns)
{
	const struct weir_schema *tail = weir_job_tail_schema(job);
	if (tail == NULL || !weir_packet_schema_is_native(tail))
		return weir_job_fail(job, -EINVAL, "flows: needs packet events as a packet source "
				     "makes them (%s) first", WEIR_PACKET_SCHEMA);
	struct flow_stage *stage = weir_mem_alloc(sizeof(*stage), 8, WEIR_MEM_ARENA_DEFAULT);
	if (stage == NULL)
		return weir_job_fail(job, -ENOMEM, "flows: out of memory");
	bool host = group == WEIR_FLOWS_HOST;
	char message[128];
	int rc = weir_schema_parse(&stage->out, host ? host_schema : conversation_schema, message,
				   sizeof(message));
	WEIR_VERIFY(rc == 0);
	WEIR_VERIFY(host || conversation_row_matches(&stage->out));
	if (host) {
		stage->out_ts = offset_of(&stage->out, "ts");
		stage->out_bytes = offset_of(&stage->out, "bytes");
		stage->out_a = offset_of(&stage->out, "host");
		stage->out_packets_ab = offset_of(&stage->out, "packets_sent");
		stage->out_bytes_ab = offset_of(&stage->out, "bytes_sent");
		stage->out_packets_ba = offset_of(&stage->out, "packets_received");
		stage->out_bytes_ba = offset_of(&stage->out, "bytes_received");
	}
	stage->window_ns = window_ns;
	struct weir_component component = {.ctx = stage, .destroy = stage_free};
	return weir_job_append_stage(job, host ? host_stage : conversation_stage, stage,
				     &stage->out, host ? 2 : 1, component);
}

int weir_job_flows(struct weir_job *job, enum weir_flow_group group, int64_t window_ns)
{
	WEIR_VERIFY(job != NULL);
	if (window_ns <= 0)
		return weir_job_fail(job, -EINVAL, "flows: the window must be positive");
	static const char *const totals = "count=packets,sum:bytes=bytes";
	static const char *const seen = "min:ts=first_seen,max:ts=last_seen";
	char aggregates[512];
	const char *key;
	int rc = 0;
	switch (group) {
	case WEIR_FLOWS_HOST:
		rc = shape_stage(job, group, window_ns);
		key = "host";
		snprintf(aggregates, sizeof(aggregates),
			 "%s,sum:packets_sent=packets_sent,sum:bytes_sent=bytes_sent,"
			 "sum:packets_received=packets_received,"
			 "sum:bytes_received=bytes_received,%s",
			 totals, seen);
		break;
	case WEIR_FLOWS_CONVERSATION:
		rc = shape_stage(job, group, window_ns);
		key = "addr_a,addr_b";
		snprintf(aggregates, sizeof(aggregates),
			 "sum:packets=packets,sum:bytes=bytes,"
			 "sum:packets_a_to_b=packets_a_to_b,sum:bytes_a_to_b=bytes_a_to_b,"
			 "sum:packets_b_to_a=packets_b_to_a,sum:bytes_b_to_a=bytes_b_to_a,"
			 "min:first_ts=first_seen,max:last_ts=last_seen");
		break;
	case WEIR_FLOWS_SYN:
		rc = syn_filter_stage(job);
		key = "dst";
		snprintf(aggregates, sizeof(aggregates), "count=syns,distinct:src=sources,%s",
			 seen);
		break;
	case WEIR_FLOWS_SCAN:
		rc = syn_filter_stage(job);
		key = "src";
		snprintf(aggregates, sizeof(aggregates),
			 "count=syns,distinct:dport=distinct_ports,distinct:dst=targets,%s", seen);
		break;
	case WEIR_FLOWS_SRC:
	case WEIR_FLOWS_DST:
	case WEIR_FLOWS_5TUPLE:
		key = group == WEIR_FLOWS_SRC	? "src"
		      : group == WEIR_FLOWS_DST ? "dst"
						: "src,dst,sport,dport,proto";
		snprintf(aggregates, sizeof(aggregates), "%s,%s", totals, seen);
		break;
	default:
		return weir_job_fail(job, -EINVAL, "flows: unknown grouping %d", (int)group);
	}
	if (rc == 0)
		rc = weir_job_key_by(job, key);
	struct weir_window_spec spec = {
		.time_column = "ts",
		.kind = WEIR_WINDOW_TUMBLING,
		.size = window_ns,
		.slide = window_ns,
		.aggregates = aggregates,
		/* Conversation rows merge a pull's events (conversation_stage). */
		.weight_column = group == WEIR_FLOWS_CONVERSATION ? "packets" : NULL,
	};
	if (rc == 0)
		rc = weir_job_window(job, &spec);
	return rc;
}
