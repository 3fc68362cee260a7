/* Goal: the flow-record operator's semantics, exactly: which packets a record holds (counts,
 * bytes, first/last seen, OR-ed TCP flags), where records split (idle gap, active timeout,
 * FIN, RST), what the watermark expires and what it must leave alone (including the scan
 * throttle), what the end of the input emits and with which reason, out-of-order and late
 * events, the state budget refusing and counting, and the argument checks.
 *
 * Method: build a real job (generator source with WEIR_PACKET_SCHEMA, flow records) only to
 * configure the operator, then drive its keyed vtable by hand on this thread: process()
 * packet events we write, advance() watermarks we choose, capture rows through a fake sink. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/job_priv.h"
#include "core/mem.h"
#include "io/sink.h"
#include "tests/support/capture_sink.h"


#define TCP 6
#define UDP 17
#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define PSH 0x08
#define ACK 0x10

static struct captured out_rows;
static struct captured late_rows;

struct fixture {
	struct weir_job *job;
	struct weir_emitter out;
	struct weir_emitter late;
	uint8_t out_buffer[8 * CAPTURE_ROW_LENGTH_MAX];
	uint8_t late_buffer[8 * CAPTURE_ROW_LENGTH_MAX];
	void *instance;
};

static struct fixture fx;

static void fixture_open(int64_t idle_timeout, int64_t active_timeout, uint64_t budget_mib)
{
	memset(&fx, 0, sizeof(fx));
	memset(&out_rows, 0, sizeof(out_rows));
	memset(&late_rows, 0, sizeof(late_rows));
	struct weir_job_options options;
	weir_job_options_init(&options);
	options.state_budget_mib = budget_mib;
	assert_int_equal(weir_job_create(&fx.job, &options), 0);
	assert_int_equal(weir_job_source_generator(fx.job, WEIR_PACKET_SCHEMA, unused_generate,
						   NULL, 0),
			 0);
	assert_int_equal(weir_job_flow_records(fx.job, idle_timeout, active_timeout), 0);
	capture_open_keyed(fx.job, &out_rows, &late_rows, &fx.out, fx.out_buffer, &fx.late,
			   fx.late_buffer, &fx.instance);
}

static void fixture_close(void)
{
	fx.job->keyed_vtable->close(fx.job->keyed_ctx, fx.instance);
	weir_job_destroy(fx.job);
}

static const struct weir_field *in_field(const char *name)
{
	int index = weir_schema_find(&fx.job->exchange_schema, name);
	assert_true(index >= 0);
	return &fx.job->exchange_schema.fields[index];
}

static void ip4(uint8_t *out, uint8_t host)
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	memcpy(out, prefix, sizeof(prefix));
	out[12] = 10, out[13] = 0, out[14] = 0, out[15] = host;
}

/* One packet event from 10.0.0.@src:@sport to 10.0.0.@dst:@dport. */
static void packet(int64_t ts, uint8_t src, uint8_t dst, int64_t sport, int64_t dport,
		   int64_t proto, int64_t flags, int64_t bytes)
{
	uint8_t record[CAPTURE_ROW_LENGTH_MAX];
	memset(record, 0, sizeof(record));
	assert_true(fx.job->exchange_schema.record_length <= sizeof(record));
	weir_field_set_i64(in_field("ts"), record, ts);
	ip4(record + in_field("src")->offset, src);
	ip4(record + in_field("dst")->offset, dst);
	weir_field_set_i64(in_field("sport"), record, sport);
	weir_field_set_i64(in_field("dport"), record, dport);
	weir_field_set_i64(in_field("proto"), record, proto);
	weir_field_set_i64(in_field("tcp_flags"), record, flags);
	weir_field_set_i64(in_field("bytes"), record, bytes);
	fx.job->keyed_vtable->process(fx.instance, record, 1);
	weir_emitter_flush(&fx.out);
	weir_emitter_flush(&fx.late);
}

/* A UDP packet of flow @flow (its source port; 10.0.0.1 -> 10.0.0.2:53). */
static void udp(int64_t ts, int64_t flow, int64_t bytes)
{
	packet(ts, 1, 2, flow, 53, UDP, 0, bytes);
}

/* A TCP segment of flow @flow (10.0.0.1:@flow -> 10.0.0.2:80). */
static void tcp(int64_t ts, int64_t flow, int64_t flags, int64_t bytes)
{
	packet(ts, 1, 2, flow, 80, TCP, flags, bytes);
}

static void advance(int64_t watermark)
{
	fx.job->keyed_vtable->advance(fx.instance, watermark);
}

static const struct weir_field *out_field(const char *name)
{
	int index = weir_schema_find(&fx.job->out_schema, name);
	assert_true(index >= 0);
	return &fx.job->out_schema.fields[index];
}

static int64_t row_i64(uint32_t row, const char *name)
{
	assert_true(row < out_rows.count && row < CAPTURE_ROWS_MAX);
	return weir_field_get_i64(out_field(name), out_rows.rows[row]);
}

static bool row_reason_is(uint32_t row, const char *reason)
{
	uint32_t length;
	const char *text = weir_field_get_str(out_field("end_reason"), out_rows.rows[row],
					      &length);
	return length == strlen(reason) && memcmp(text, reason, length) == 0;
}

/* Checks row @row: the record of source port @sport from @first to @last. */
static void expect_row(uint32_t row, int64_t sport, int64_t first, int64_t last,
		       int64_t packets, int64_t bytes, const char *reason)
{
	assert_int_equal(row_i64(row, "sport"), sport);
	assert_int_equal(row_i64(row, "first_seen"), first);
	assert_int_equal(row_i64(row, "last_seen"), last);
	assert_int_equal(row_i64(row, "packets"), packets);
	assert_int_equal(row_i64(row, "bytes"), bytes);
	if (!row_reason_is(row, reason)) {
		uint32_t length;
		const char *text = weir_field_get_str(out_field("end_reason"),
						      out_rows.rows[row], &length);
		fail_msg("row %u: reason '%.*s', expected '%s'", row, (int)length, text, reason);
	}
}

/* The row of source port @sport whose record started at @first, or -1. */
static int find_row(int64_t sport, int64_t first)
{
	for (uint32_t r = 0; r < out_rows.count && r < CAPTURE_ROWS_MAX; r++) {
		if (row_i64(r, "sport") == sport && row_i64(r, "first_seen") == first)
			return (int)r;
	}
	return -1;
}

static void close_and_get_stats(struct weir_job_stats *stats)
{
	fx.job->keyed_vtable->close(fx.job->keyed_ctx, fx.instance);
	fx.instance = NULL;
	weir_job_get_stats(fx.job, stats);
}

static void output_schema_is_the_documented_one(void **state)
{
	(void)state;
	fixture_open(100, 1000, 64);
	static const char *const names[] = {"first_seen", "last_seen", "src",	    "dst",
					    "sport",	  "dport",     "proto",	    "packets",
					    "bytes",	  "tcp_flags", "end_reason"};
	const struct weir_schema *schema = &fx.job->out_schema;
	assert_int_equal(schema->field_count, 11);
	for (uint32_t i = 0; i < 11; i++)
		assert_string_equal(schema->fields[i].name, names[i]);
	assert_int_equal(schema->fields[2].type, WEIR_TYPE_IP);
	assert_int_equal(schema->fields[10].type, WEIR_TYPE_STR);
	assert_int_equal(schema->fields[10].max_length, 8);
	/* The key_by is the 5-tuple, and the addresses come back as they went in. */
	assert_int_equal(fx.job->key.part_count, 5);
	packet(7, 3, 4, 1234, 443, TCP, SYN, 60);
	advance(INT64_MAX);
	assert_int_equal(out_rows.count, 1);
	uint8_t src[16], dst[16];
	ip4(src, 3);
	ip4(dst, 4);
	assert_memory_equal(out_rows.rows[0] + out_field("src")->offset, src, 16);
	assert_memory_equal(out_rows.rows[0] + out_field("dst")->offset, dst, 16);
	assert_int_equal(row_i64(0, "dport"), 443);
	assert_int_equal(row_i64(0, "proto"), TCP);
	assert_int_equal(row_i64(0, "tcp_flags"), SYN);
	expect_row(0, 1234, 7, 7, 1, 60, "end");
	fixture_close();
}

static void idle_gap_splits_a_flow(void **state)
{
	(void)state;
	fixture_open(100, 10000, 64);
	udp(0, 1, 10);
	udp(50, 1, 20);
	assert_int_equal(out_rows.count, 0);
	udp(151, 1, 40); /* 151 - 50 > 100: the first record ended idle */
	assert_int_equal(out_rows.count, 1);
	expect_row(0, 1, 0, 50, 2, 30, "idle");
	udp(251, 1, 80); /* a gap of exactly the timeout is not idle */
	assert_int_equal(out_rows.count, 1);
	udp(40, 2, 5); /* another 5-tuple is another flow */
	advance(INT64_MAX);
	assert_int_equal(out_rows.count, 3);
	/* At the end: flow 1 was seen at 251 (the latest time), flow 2 idle since 40. */
	expect_row((uint32_t)find_row(1, 151), 1, 151, 251, 2, 120, "end");
	expect_row((uint32_t)find_row(2, 40), 2, 40, 40, 1, 5, "idle");
	fixture_close();
}

static void active_timeout_splits_a_long_flow(void **state)
{
	(void)state;
	fixture_open(100, 250, 64);
	for (int64_t ts = 0; ts <= 600; ts += 50)
		udp(ts, 7, 100);
	/* 250 - 0 >= 250 and 500 - 250 >= 250 start new records. */
	assert_int_equal(out_rows.count, 2);
	expect_row(0, 7, 0, 200, 5, 500, "active");
	expect_row(1, 7, 250, 450, 5, 500, "active");
	advance(INT64_MAX);
	assert_int_equal(out_rows.count, 3);
	expect_row(2, 7, 500, 600, 3, 300, "end");
	fixture_close();
}

static void fin_and_rst_close_with_or_ed_flags(void **state)
{
	(void)state;
	fixture_open(1000, 100000, 64);
	tcp(0, 10, SYN, 60);
	tcp(10, 10, ACK, 52);
	tcp(20, 10, PSH | ACK, 1500);
	assert_int_equal(out_rows.count, 0);
	tcp(30, 10, FIN | ACK, 52); /* added, then the record closes */
	assert_int_equal(out_rows.count, 1);
	expect_row(0, 10, 0, 30, 4, 1664, "fin");
	assert_int_equal(row_i64(0, "tcp_flags"), SYN | ACK | PSH | FIN);
	tcp(40, 10, ACK, 52); /* the last ACK after our FIN: a record of its own */
	tcp(5, 11, SYN, 60);
	tcp(15, 11, RST | ACK, 40);
	assert_int_equal(out_rows.count, 2);
	expect_row(1, 11, 5, 15, 2, 100, "rst");
	assert_int_equal(row_i64(1, "tcp_flags"), SYN | RST | ACK);
	tcp(50, 12, FIN | RST, 40); /* both: RST wins */
	assert_int_equal(out_rows.count, 3);
	expect_row(2, 12, 50, 50, 1, 40, "rst");
	packet(60, 1, 2, 13, 80, UDP, FIN, 40); /* flags mean nothing outside TCP */
	assert_int_equal(out_rows.count, 3);
	advance(INT64_MAX);
	assert_int_equal(out_rows.count, 5);
	expect_row((uint32_t)find_row(10, 40), 10, 40, 40, 1, 52, "end");
	expect_row((uint32_t)find_row(13, 60), 13, 60, 60, 1, 40, "end");
	assert_int_equal(row_i64((uint32_t)find_row(13, 60), "tcp_flags"), FIN);
	fixture_close();
}

static void watermark_expires_idle_records_only(void **state)
{
	(void)state;
	fixture_open(100, 100000, 64); /* scans at most every 25 of event time */
	udp(0, 1, 10);
	udp(50, 1, 10);	 /* flow 1 expires once the watermark passes 150 */
	udp(60, 2, 10);	 /* flow 2: 160 */
	udp(180, 3, 10); /* flow 3: 280 */
	advance(150);	 /* the first scan: last_seen + idle < watermark is the rule */
	assert_int_equal(out_rows.count, 0);
	advance(151);	 /* within 25 of the last scan: no scan */
	assert_int_equal(out_rows.count, 0);
	advance(175); /* scans: flows 1 and 2, not 3 */
	assert_int_equal(out_rows.count, 2);
	expect_row((uint32_t)find_row(1, 0), 1, 0, 50, 2, 20, "idle");
	expect_row((uint32_t)find_row(2, 60), 2, 60, 60, 1, 10, "idle");
	advance(280); /* scans: flow 3 has until 280 */
	assert_int_equal(out_rows.count, 2);
	/* The end: flow 3 was not idle by 280, the last time known, so it ends "end". */
	advance(INT64_MAX);
	assert_int_equal(out_rows.count, 3);
	expect_row(2, 3, 180, 180, 1, 10, "end");
	fixture_close();
}

static void scans_are_throttled_but_expiry_is_not(void **state)
{
	(void)state;
	fixture_open(100, 100000, 64);
	udp(0, 1, 10);
	udp(0, 3, 10);
	advance(90);  /* scans: nothing idle; the next scan waits until 115 */
	advance(110); /* no scan, though flows 1 and 3 expired at 100 */
	assert_int_equal(out_rows.count, 0);
	/* A late packet of flow 1 (95 < 110) is within the idle gap, but the watermark already
	 * expired its record: it starts a new one, as if the scan had run. */
	udp(95, 1, 20);
	assert_int_equal(out_rows.count, 1);
	expect_row(0, 1, 0, 0, 1, 10, "idle");
	udp(5, 2, 30); /* late, and a new flow: still added */
	advance(114);  /* no scan */
	assert_int_equal(out_rows.count, 1);
	advance(INT64_MAX);
	assert_int_equal(out_rows.count, 4);
	/* At the end the latest time known is 110 (the watermark): flow 1 (last 95) is open,
	 * flows 2 (last 5) and 3 (last 0) were idle by then, whether scanned or not. */
	expect_row((uint32_t)find_row(1, 95), 1, 95, 95, 1, 20, "end");
	expect_row((uint32_t)find_row(2, 5), 2, 5, 5, 1, 30, "idle");
	expect_row((uint32_t)find_row(3, 0), 3, 0, 0, 1, 10, "idle");
	struct weir_job_stats stats;
	close_and_get_stats(&stats);
	assert_int_equal(stats.late_updates, 2); /* the packets at 95 and 5 */
	assert_int_equal(stats.state_full, 0);
	assert_int_equal(late_rows.count, 0); /* added, not set aside */
	weir_job_destroy(fx.job);
}

static void out_of_order_widens_the_record(void **state)
{
	(void)state;
	fixture_open(100, 150, 64);
	udp(100, 1, 10);
	udp(90, 1, 20);	 /* older than first_seen: first_seen becomes 90 */
	udp(120, 1, 30);
	udp(110, 1, 40); /* between: last_seen stays 120 */
	udp(200, 1, 50);
	assert_int_equal(out_rows.count, 0);
	/* The active timeout counts from the earliest packet: 240 - 90 >= 150 (240 - 100 is
	 * not). */
	udp(240, 1, 1);
	assert_int_equal(out_rows.count, 1);
	expect_row(0, 1, 90, 200, 5, 150, "active");
	advance(INT64_MAX);
	assert_int_equal(out_rows.count, 2);
	expect_row(1, 1, 240, 240, 1, 1, "end");
	struct weir_job_stats stats;
	close_and_get_stats(&stats);
	assert_int_equal(stats.late_updates, 0); /* no watermark yet: nothing was late */
	weir_job_destroy(fx.job);
}

static void end_of_stream_emits_the_rest_exactly(void **state)
{
	(void)state;
	fixture_open(1000, 5000, 64);
	int64_t packets[20] = {0}, bytes[20] = {0};
	for (int64_t i = 0; i < 400; i++) {
		int64_t flow = i % 20;
		int64_t length = 40 + (i * 37) % 1460;
		udp(i, flow, length);
		packets[flow]++;
		bytes[flow] += length;
	}
	advance(300); /* scans: nothing idle (the last packets are at 380..399) */
	assert_int_equal(out_rows.count, 0);
	advance(INT64_MAX);
	assert_int_equal(out_rows.count, 20);
	for (int64_t flow = 0; flow < 20; flow++) {
		int row = find_row(flow, flow);
		assert_true(row >= 0);
		expect_row((uint32_t)row, flow, flow, 380 + flow, packets[flow], bytes[flow],
			   "end");
	}
	struct weir_job_stats stats;
	close_and_get_stats(&stats);
	assert_int_equal(stats.state_full, 0);
	assert_int_equal(stats.late_updates, 0);
	weir_job_destroy(fx.job);
}

static void state_budget_refuses_and_counts(void **state)
{
	(void)state;
	fixture_open(1000000, 1000000, 1);
	const int64_t flows = 40000;
	for (int64_t i = 0; i < flows; i++)
		udp(i, i, 100);
	for (int64_t i = 0; i < 10; i++) /* admitted flows keep taking packets */
		udp(flows + i, i, 100);
	advance(INT64_MAX);
	uint32_t rows = out_rows.count;
	struct weir_job_stats stats;
	close_and_get_stats(&stats);
	print_message("budget 1 MiB: %u records, %llu refused\n", rows,
		      (unsigned long long)stats.state_full);
	assert_true(stats.state_full > 0);
	assert_true(stats.state_full < (uint64_t)flows);
	/* Every packet is in a record or counted as refused. */
	assert_int_equal(rows + stats.state_full, flows);
	for (int64_t flow = 0; flow < 10; flow++)
		assert_int_equal(row_i64((uint32_t)find_row(flow, flow), "packets"), 2);
	/* The report says so, with the budget. */
	FILE *stream = tmpfile();
	assert_non_null(stream);
	weir_job_report(fx.job, stream);
	rewind(stream);
	char text[4096];
	size_t length = fread(text, 1, sizeof(text) - 1, stream);
	text[length] = '\0';
	fclose(stream);
	assert_non_null(strstr(text, "flow records: state budget (1 MiB per worker) reached"));
	weir_job_destroy(fx.job);
}

static int build_flow_records(const char *schema, int64_t idle, int64_t active)
{
	struct weir_job *job;
	assert_int_equal(weir_job_create(&job, NULL), 0);
	assert_int_equal(weir_job_source_generator(job, schema, unused_generate, NULL, 0), 0);
	int rc = weir_job_flow_records(job, idle, active);
	if (rc != 0)
		assert_true(strlen(weir_job_error(job)) > 0);
	weir_job_destroy(job);
	return rc;
}

static void bad_arguments_are_errors(void **state)
{
	(void)state;
	assert_int_equal(build_flow_records(WEIR_PACKET_SCHEMA, 100, 1000), 0);
	assert_int_equal(build_flow_records(WEIR_PACKET_SCHEMA, 100, 100), 0);
	assert_int_equal(build_flow_records(WEIR_PACKET_SCHEMA, 1, 1), 0);
	assert_int_equal(build_flow_records(WEIR_PACKET_SCHEMA, 0, 1000), -EINVAL);
	assert_int_equal(build_flow_records(WEIR_PACKET_SCHEMA, -5, 1000), -EINVAL);
	assert_int_equal(build_flow_records(WEIR_PACKET_SCHEMA, 100, 99), -EINVAL);
	assert_int_equal(build_flow_records(WEIR_PACKET_SCHEMA, 100, -1), -EINVAL);
	/* Not packet events. */
	assert_int_equal(build_flow_records("ts:i64,card:str16,amount:f64", 100, 1000), -EINVAL);
	assert_int_equal(build_flow_records("ts:ts,src:ip,dst:ip,sport:i64,dport:i64,proto:i64,"
					    "tcp_flags:i64",
					    100, 1000),
			 -EINVAL); /* no bytes */
	assert_int_equal(build_flow_records("ts:ts,src:ipv4,dst:ipv4,sport:i64,dport:i64,"
					    "proto:i64,tcp_flags:i64,bytes:i64",
					    100, 1000),
			 -EINVAL); /* addresses not ip */
	/* Before any source, and twice in one job. */
	struct weir_job *job;
	assert_int_equal(weir_job_create(&job, NULL), 0);
	assert_int_equal(weir_job_flow_records(job, 100, 1000), -EINVAL);
	assert_int_equal(weir_job_source_generator(job, WEIR_PACKET_SCHEMA, unused_generate, NULL,
						   0),
			 0);
	assert_int_equal(weir_job_flow_records(job, 100, 1000), 0);
	assert_int_equal(weir_job_flow_records(job, 100, 1000), -EINVAL);
	assert_non_null(strstr(weir_job_error(job), "key_by"));
	weir_job_destroy(job);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(output_schema_is_the_documented_one),
		cmocka_unit_test(idle_gap_splits_a_flow),
		cmocka_unit_test(active_timeout_splits_a_long_flow),
		cmocka_unit_test(fin_and_rst_close_with_or_ed_flags),
		cmocka_unit_test(watermark_expires_idle_records_only),
		cmocka_unit_test(scans_are_throttled_but_expiry_is_not),
		cmocka_unit_test(out_of_order_widens_the_record),
		cmocka_unit_test(end_of_stream_emits_the_rest_exactly),
		cmocka_unit_test(state_budget_refuses_and_counts),
		cmocka_unit_test(bad_arguments_are_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
