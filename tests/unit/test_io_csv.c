/* Goal: weir_csv_parse_line accepts exactly the CSV this project promises and rejects the
 * rest with the right reason and field: every reason, RFC 4180 quoting, CRLF, integer edges
 * (INT64_MIN/MAX, UINT64_MAX and one past), f64 strictness (no nan/inf/spaces/hex), strings of
 * exactly max_length and one more, IPv4/IPv6 good and bad, zero padding; and that
 * weir_csv_check_header tells a wrong column count (error) from different names (warning).
 *
 * Method: parse literal lines against small schemas built with weir_schema_parse and compare
 * the record's bytes through the schema's accessors; failures compare the fault's reason and
 * field index.  Records start filled with 0xA5 so missing zero-fill shows. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* cmocka last: under UNIT_TESTING it turns malloc and free into its checked versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/schema.h"
#include "io/csv.h"

#define RECORD_MAX 1024

static uint8_t record[RECORD_MAX];

static void make_schema(struct weir_schema *schema, const char *text)
{
	char error[256];
	int rc = weir_schema_parse(schema, text, error, sizeof(error));
	if (rc != 0)
		fail_msg("schema '%s': %s", text, error);
	assert_true(schema->record_length <= RECORD_MAX);
}

/* Parses @line (a C string) after poisoning the record.  Returns: the parser's result. */
static int parse(const struct weir_schema *schema, const char *line, struct weir_csv_fault *fault)
{
	memset(record, 0xA5, sizeof(record));
	fault->reason = WEIR_CSV_REASON_COUNT;
	fault->field_index = 12345;
	return weir_csv_parse_line(schema, line, strlen(line), record, fault);
}

static void expect_ok(const struct weir_schema *schema, const char *line)
{
	struct weir_csv_fault fault;
	int rc = parse(schema, line, &fault);
	if (rc != 0)
		fail_msg("'%s': expected success, got reason %d field %u", line, fault.reason,
			 fault.field_index);
}

static void expect_fault(const struct weir_schema *schema, const char *line,
			 enum weir_csv_reason reason, uint32_t field_index)
{
	struct weir_csv_fault fault;
	int rc = parse(schema, line, &fault);
	if (rc != -EINVAL || fault.reason != reason || fault.field_index != field_index)
		fail_msg("'%s': expected reason %d field %u, got rc %d reason %d field %u", line,
			 reason, field_index, rc, fault.reason, fault.field_index);
}

static int64_t get_i64(const struct weir_schema *schema, uint32_t index)
{
	return weir_field_get_i64(&schema->fields[index], record);
}

static uint64_t get_u64(const struct weir_schema *schema, uint32_t index)
{
	uint64_t value;
	memcpy(&value, record + schema->fields[index].offset, sizeof(value));
	return value;
}

static void assert_str(const struct weir_schema *schema, uint32_t index, const char *expected)
{
	uint32_t length = 0;
	const char *text = weir_field_get_str(&schema->fields[index], record, &length);
	assert_int_equal(length, strlen(expected));
	assert_memory_equal(text, expected, length);
	/* Padding after the content is zero, so equal strings are equal bytes. */
	for (uint32_t i = length; i < schema->fields[index].max_length; i++)
		assert_int_equal((unsigned char)text[i], 0);
}

static void test_all_types(void **state)
{
	(void)state;
	struct weir_schema schema;
	make_schema(&schema, "i:i64,u:u64,f:f64,t:ts,s:str8,a:ipv4,b:ipv6");
	expect_ok(&schema, "-5,7,1.5,123,hello,10.0.0.1,2001:db8::1");
	assert_int_equal(get_i64(&schema, 0), -5);
	assert_int_equal(get_u64(&schema, 1), 7);
	assert_true(weir_field_get_f64(&schema.fields[2], record) == 1.5);
	assert_int_equal(get_i64(&schema, 3), 123);
	assert_str(&schema, 4, "hello");
	const uint8_t v4[4] = {10, 0, 0, 1};
	assert_memory_equal(record + schema.fields[5].offset, v4, 4);
	uint8_t v6[16];
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", v6), 1);
	assert_memory_equal(record + schema.fields[6].offset, v6, 16);
	/* The whole record was zero-filled: bytes between fields are zero too. */
	for (uint32_t i = schema.fields[4].offset + 1 + 5; i < schema.fields[5].offset; i++)
		assert_int_equal(record[i], 0);
}

static void test_integer_edges(void **state)
{
	(void)state;
	struct weir_schema schema;
	make_schema(&schema, "i:i64,u:u64,t:ts");
	expect_ok(&schema, "-9223372036854775808,18446744073709551615,9223372036854775807");
	assert_true(get_i64(&schema, 0) == INT64_MIN);
	assert_true(get_u64(&schema, 1) == UINT64_MAX);
	assert_true(get_i64(&schema, 2) == INT64_MAX);
	expect_ok(&schema, "9223372036854775807,0,-9223372036854775808");
	assert_true(get_i64(&schema, 0) == INT64_MAX);
	assert_true(get_u64(&schema, 1) == 0);
	assert_true(get_i64(&schema, 2) == INT64_MIN);
	expect_ok(&schema, "+5,+6,-0");
	assert_int_equal(get_i64(&schema, 0), 5);
	assert_int_equal(get_u64(&schema, 1), 6);
	assert_int_equal(get_i64(&schema, 2), 0);
	expect_ok(&schema, "007,000000000000000000000000001,1");
	assert_int_equal(get_i64(&schema, 0), 7);
	assert_int_equal(get_u64(&schema, 1), 1);

	expect_fault(&schema, "-9223372036854775809,1,1", WEIR_CSV_BAD_NUMBER, 0);
	expect_fault(&schema, "9223372036854775808,1,1", WEIR_CSV_BAD_NUMBER, 0);
	expect_fault(&schema, "1,18446744073709551616,1", WEIR_CSV_BAD_NUMBER, 1);
	expect_fault(&schema, "1,99999999999999999999999,1", WEIR_CSV_BAD_NUMBER, 1);
	expect_fault(&schema, "1,-1,1", WEIR_CSV_BAD_NUMBER, 1);
	expect_fault(&schema, "1,-0,1", WEIR_CSV_BAD_NUMBER, 1);
	expect_fault(&schema, "1,1,9223372036854775808", WEIR_CSV_BAD_NUMBER, 2);
	const char *bad[] = {"", "-", "+", " 5", "5 ", "1a", "0x10", "1.0", "1e3", "--1", "+-1",
			     "\"\"", "5\t"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line[64];
		snprintf(line, sizeof(line), "%s,1,1", bad[i]);
		expect_fault(&schema, line, WEIR_CSV_BAD_NUMBER, 0);
		snprintf(line, sizeof(line), "1,1,%s", bad[i]);
		expect_fault(&schema, line, WEIR_CSV_BAD_NUMBER, 2);
	}
}

static void test_f64(void **state)
{
	(void)state;
	struct weir_schema schema;
	make_schema(&schema, "f:f64");
	const struct {
		const char *text;
		double value;
	} good[] = {
		{"1e3", 1000.0},     {"-0.25", -0.25}, {".5", 0.5},	   {"+1.5e-3", 1.5e-3},
		{"5.", 5.0},	     {"0", 0.0},       {"1E2", 100.0},	   {"-1e-400", -0.0},
		{"123456789012345678901234567890", 123456789012345678901234567890.0},
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		expect_ok(&schema, good[i].text);
		assert_true(weir_field_get_f64(&schema.fields[0], record) == good[i].value);
	}
	const char *bad[] = {"nan", "NaN",   "inf",  "-inf",  "infinity", " 1.0", "1.0 ",
			     "1e999", "-1e999", "0x1p3", "1e", ".",  "-",	 "1.2.3",    "1,5",
			     "1e+",  "e5"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* "1,5" has two fields: the second one is the fault. */
		bool two = strchr(bad[i], ',') != NULL;
		expect_fault(&schema, bad[i], two ? WEIR_CSV_FIELD_COUNT : WEIR_CSV_BAD_NUMBER,
			     two ? 1 : 0);
	}
	/* 63 bytes fit the stack buffer; 64 are rejected rather than cut. */
	char text[80];
	memset(text, '0', sizeof(text));
	text[0] = '1';
	text[1] = '.';
	text[63] = '\0';
	expect_ok(&schema, text);
	assert_true(weir_field_get_f64(&schema.fields[0], record) == 1.0);
	text[63] = '0';
	text[64] = '\0';
	expect_fault(&schema, text, WEIR_CSV_BAD_NUMBER, 0);
	/* Quoted numbers are numbers; an empty one is not (a one-field empty line is no field). */
	expect_ok(&schema, "\"2.5\"");
	assert_true(weir_field_get_f64(&schema.fields[0], record) == 2.5);
	expect_fault(&schema, "\"\"", WEIR_CSV_BAD_NUMBER, 0);
	expect_fault(&schema, "", WEIR_CSV_FIELD_COUNT, 0);
	struct weir_schema two;
	make_schema(&two, "f:f64,g:f64");
	expect_fault(&two, "1,", WEIR_CSV_BAD_NUMBER, 1);
	expect_fault(&two, ",1", WEIR_CSV_BAD_NUMBER, 0);
	expect_ok(&schema, "\"2.5\"");
	assert_true(weir_field_get_f64(&schema.fields[0], record) == 2.5);
}

static void test_strings(void **state)
{
	(void)state;
	struct weir_schema schema;
	make_schema(&schema, "s:str5,n:i64");
	expect_ok(&schema, "abcde,1");
	assert_str(&schema, 0, "abcde");
	expect_fault(&schema, "abcdef,1", WEIR_CSV_STR_TOO_LONG, 0);
	expect_ok(&schema, ",2");
	assert_str(&schema, 0, "");
	assert_int_equal(get_i64(&schema, 1), 2);
	expect_ok(&schema, "ab,3");
	assert_str(&schema, 0, "ab");
	/* Equal strings give equal records whatever the buffer held before. */
	uint8_t first[RECORD_MAX];
	memcpy(first, record, schema.record_length);
	memset(record, 0x5A, sizeof(record));
	struct weir_csv_fault fault;
	assert_int_equal(weir_csv_parse_line(&schema, "ab,3", 4, record, &fault), 0);
	assert_memory_equal(first, record, schema.record_length);
	/* Quoted: exactly max after unquoting, and one more. */
	expect_ok(&schema, "\"a\"\"b,c\",4");
	assert_str(&schema, 0, "a\"b,c");
	expect_fault(&schema, "\"a\"\"b,cd\",4", WEIR_CSV_STR_TOO_LONG, 0);
	expect_ok(&schema, "\"\"\"\"\"\"\"\"\"\"\"\",5"); /* five escaped quotes */
	assert_str(&schema, 0, "\"\"\"\"\"");
	expect_fault(&schema, "\"\"\"\"\"\"\"\"\"\"\"\"\"\",5", WEIR_CSV_STR_TOO_LONG, 0);
	/* A quote inside an unquoted field is data. */
	expect_ok(&schema, "a\"b,6");
	assert_str(&schema, 0, "a\"b");

	struct weir_schema wide;
	make_schema(&wide, "s:str");
	char line[300];
	memset(line, 'x', sizeof(line));
	line[255] = '\0';
	expect_ok(&wide, line);
	assert_int_equal(record[wide.fields[0].offset], 255);
	line[255] = 'x';
	line[256] = '\0';
	expect_fault(&wide, line, WEIR_CSV_STR_TOO_LONG, 0);
}

static void test_quoting(void **state)
{
	(void)state;
	struct weir_schema schema;
	make_schema(&schema, "a:str16,b:i64,c:str16");
	expect_ok(&schema, "\"x,y\",\"12\",\"say \"\"hi\"\"\"");
	assert_str(&schema, 0, "x,y");
	assert_int_equal(get_i64(&schema, 1), 12);
	assert_str(&schema, 2, "say \"hi\"");
	expect_ok(&schema, "\"\",1,\"\"");
	assert_str(&schema, 0, "");
	assert_str(&schema, 2, "");
	expect_ok(&schema, "\",,,\",-1,\"\r\n\"");
	assert_str(&schema, 0, ",,,");
	assert_str(&schema, 2, "\r\n");

	expect_fault(&schema, "\"abc,1,x", WEIR_CSV_BAD_QUOTE, 0);
	expect_fault(&schema, "\"abc\"x,1,x", WEIR_CSV_BAD_QUOTE, 0);
	expect_fault(&schema, "\"abc\" ,1,x", WEIR_CSV_BAD_QUOTE, 0);
	expect_fault(&schema, "a,1,\"x", WEIR_CSV_BAD_QUOTE, 2);
	expect_fault(&schema, "a,1,\"x\"\"", WEIR_CSV_BAD_QUOTE, 2);
	expect_fault(&schema, "a,\"1,x", WEIR_CSV_BAD_QUOTE, 1);
	expect_fault(&schema, "a,\"1\"2,x", WEIR_CSV_BAD_QUOTE, 1);
	/* Bad quoting wins over length: the field's end is unknown. */
	expect_fault(&schema, "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,1,x", WEIR_CSV_BAD_QUOTE, 0);
	/* A quote in a quoted number is not a digit. */
	expect_fault(&schema, "a,\"1\"\"2\",x", WEIR_CSV_BAD_NUMBER, 1);
	expect_fault(&schema, "a,\" 1\",x", WEIR_CSV_BAD_NUMBER, 1);
	/* Quoted numbers longer than the stack buffer are not numbers. */
	char line[200];
	snprintf(line, sizeof(line), "a,\"%0100d\",x", 1);
	expect_fault(&schema, line, WEIR_CSV_BAD_NUMBER, 1);
}

static void test_field_count_crlf_nul(void **state)
{
	(void)state;
	struct weir_schema schema;
	make_schema(&schema, "a:i64,b:i64,c:str4");
	expect_fault(&schema, "1,2", WEIR_CSV_FIELD_COUNT, 2);
	expect_fault(&schema, "1", WEIR_CSV_FIELD_COUNT, 1);
	expect_fault(&schema, "1,2,x,", WEIR_CSV_FIELD_COUNT, 3);
	expect_fault(&schema, "1,2,x,y,z", WEIR_CSV_FIELD_COUNT, 3);
	expect_fault(&schema, "", WEIR_CSV_FIELD_COUNT, 0);
	expect_fault(&schema, "\r", WEIR_CSV_FIELD_COUNT, 0);
	expect_ok(&schema, "1,2,");
	assert_str(&schema, 2, "");

	expect_ok(&schema, "1,2,abc\r");
	assert_str(&schema, 2, "abc");
	expect_ok(&schema, "1,2,\"a\"\r");
	assert_str(&schema, 2, "a");
	expect_ok(&schema, "1,2,abcd\r"); /* the '\r' does not count against max_length */
	assert_str(&schema, 2, "abcd");
	/* Only one trailing '\r' goes; another is data. */
	expect_ok(&schema, "1,2,ab\r\r");
	assert_str(&schema, 2, "ab\r");
	expect_fault(&schema, "1\r,2,ab", WEIR_CSV_BAD_NUMBER, 0);

	struct weir_csv_fault fault;
	const char with_nul[] = "1,2,a\0b";
	assert_int_equal(weir_csv_parse_line(&schema, with_nul, sizeof(with_nul) - 1, record,
					     &fault),
			 -EINVAL);
	assert_int_equal(fault.reason, WEIR_CSV_BAD_BYTE);
	assert_int_equal(fault.field_index, UINT32_MAX);
	/* @length, not a NUL, ends the line: the bytes after it are never looked at. */
	assert_int_equal(weir_csv_parse_line(&schema, "1,2,xyz,9", 7, record, &fault), 0);
	assert_str(&schema, 2, "xyz");
}

static void test_addresses(void **state)
{
	(void)state;
	struct weir_schema schema;
	make_schema(&schema, "a:ipv4,b:ipv6");
	const char *v4_good[] = {"0.0.0.0", "255.255.255.255", "192.168.1.20", "1.2.3.4"};
	for (size_t i = 0; i < sizeof(v4_good) / sizeof(v4_good[0]); i++) {
		char line[80];
		snprintf(line, sizeof(line), "%s,::", v4_good[i]);
		expect_ok(&schema, line);
		uint8_t expected[4];
		assert_int_equal(inet_pton(AF_INET, v4_good[i], expected), 1);
		assert_memory_equal(record + schema.fields[0].offset, expected, 4);
	}
	const char *v4_bad[] = {"256.0.0.1", "1.2.3",     "1.2.3.4.5", "01.2.3.4", "1.2.3.4 ",
				"",	     "a.b.c.d",   "1..2.3",    "1234.1.1.1", "1.2.3.",
				".1.2.3",    "-1.2.3.4", "::1",	      "1.2.3.04"};
	for (size_t i = 0; i < sizeof(v4_bad) / sizeof(v4_bad[0]); i++) {
		char line[80];
		snprintf(line, sizeof(line), "%s,::", v4_bad[i]);
		expect_fault(&schema, line, WEIR_CSV_BAD_ADDRESS, 0);
	}
	const char *v6_good[] = {"::", "::1", "2001:db8::1", "::ffff:1.2.3.4",
				 "fe80:0:0:0:202:b3ff:fe1e:8329"};
	for (size_t i = 0; i < sizeof(v6_good) / sizeof(v6_good[0]); i++) {
		char line[80];
		snprintf(line, sizeof(line), "1.1.1.1,\"%s\"", v6_good[i]);
		expect_ok(&schema, line);
		uint8_t expected[16];
		assert_int_equal(inet_pton(AF_INET6, v6_good[i], expected), 1);
		assert_memory_equal(record + schema.fields[1].offset, expected, 16);
	}
	const char *v6_bad[] = {"2001:db8:::1", "1.2.3.4", "", "fe80::1%eth0", "gggg::", ":: ",
				"1:2:3:4:5:6:7:8:9"};
	for (size_t i = 0; i < sizeof(v6_bad) / sizeof(v6_bad[0]); i++) {
		char line[80];
		snprintf(line, sizeof(line), "1.1.1.1,%s", v6_bad[i]);
		expect_fault(&schema, line, WEIR_CSV_BAD_ADDRESS, 1);
	}
	char line[200];
	snprintf(line, sizeof(line), "1.1.1.1,%070d", 0);
	expect_fault(&schema, line, WEIR_CSV_BAD_ADDRESS, 1);
	snprintf(line, sizeof(line), "1.1.1.1,\"%070d\"", 0);
	expect_fault(&schema, line, WEIR_CSV_BAD_ADDRESS, 1);
}

static void test_header(void **state)
{
	(void)state;
	struct weir_schema schema;
	make_schema(&schema, "ts:i64,card:str,merchant:str,amount:f64");
	char message[256];
	const char *same = "ts,card,merchant,amount";
	memset(message, 'x', sizeof(message));
	assert_int_equal(weir_csv_check_header(&schema, same, strlen(same), message,
					       sizeof(message)),
			 0);
	assert_string_equal(message, "");
	const char *quoted = "\"ts\", card ,\"merchant\",amount\r";
	assert_int_equal(weir_csv_check_header(&schema, quoted, strlen(quoted), message,
					       sizeof(message)),
			 0);
	assert_string_equal(message, "");

	const char *three = "ts,card,amount";
	assert_int_equal(weir_csv_check_header(&schema, three, strlen(three), message,
					       sizeof(message)),
			 -EINVAL);
	assert_string_equal(message, "header has 3 columns, schema has 4");
	const char *five = "ts,card,merchant,amount,\"x,y\"";
	assert_int_equal(weir_csv_check_header(&schema, five, strlen(five), message,
					       sizeof(message)),
			 -EINVAL);
	assert_string_equal(message, "header has 5 columns, schema has 4");
	const char *four_quoted = "ts,\"card,merchant\",amount";
	assert_int_equal(weir_csv_check_header(&schema, four_quoted, strlen(four_quoted), message,
					       sizeof(message)),
			 -EINVAL);
	assert_string_equal(message, "header has 3 columns, schema has 4");

	const char *renamed = "time,card,shop,amount";
	assert_int_equal(weir_csv_check_header(&schema, renamed, strlen(renamed), message,
					       sizeof(message)),
			 0);
	assert_true(message[0] != '\0');
	assert_non_null(strstr(message, "'time'"));
	assert_non_null(strstr(message, "'ts'"));

	assert_int_equal(weir_csv_check_header(&schema, "", 0, message, sizeof(message)),
			 -EINVAL);
	assert_true(message[0] != '\0');
	assert_int_equal(weir_csv_check_header(&schema, "\r", 1, message, sizeof(message)),
			 -EINVAL);
	const char *bad_quote = "ts,\"card,merchant,amount";
	assert_int_equal(weir_csv_check_header(&schema, bad_quote, strlen(bad_quote), message,
					       sizeof(message)),
			 -EINVAL);
	assert_non_null(strstr(message, "quot"));
	const char nul[] = "ts,card\0,merchant,amount";
	assert_int_equal(weir_csv_check_header(&schema, nul, sizeof(nul) - 1, message,
					       sizeof(message)),
			 -EINVAL);
	/* A message buffer of one byte still gets a terminated (empty) message. */
	char tiny[1] = {'x'};
	assert_int_equal(weir_csv_check_header(&schema, three, strlen(three), tiny, 1), -EINVAL);
	assert_int_equal(tiny[0], '\0');
	/* No message buffer at all is a programmer error. */
	expect_assert_failure(weir_csv_check_header(&schema, three, strlen(three), message, 0));
}

/* The parser's fast path for plain decimals must give exactly strtod's double, bit for bit,
 * on the shapes it takes (up to 15 digits) and on those it hands to strtod (16+ digits). */
static void test_f64_matches_strtod(void **state)
{
	(void)state;
	struct weir_schema schema;
	make_schema(&schema, "x:f64");
	const char *seed_text = getenv("WEIR_SEED");
	uint64_t seed = seed_text != NULL ? strtoull(seed_text, NULL, 10) : (uint64_t)time(NULL);
	print_message("test_f64_matches_strtod: WEIR_SEED=%llu\n", (unsigned long long)seed);
	uint64_t x = seed | 1;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		char text[64];
		int digits = 1 + (int)(x % 18);
		int point = (int)((x >> 8) % (uint64_t)(digits + 1));
		int at = 0;
		if ((x >> 16) & 1)
			text[at++] = '-';
		uint64_t y = x;
		for (int d = 0; d < digits; d++) {
			if (d == point && d > 0)
				text[at++] = '.';
			y = y * 6364136223846793005ull + 1442695040888963407ull;
			text[at++] = (char)('0' + (y >> 60) % 10);
		}
		text[at] = '\0';
		uint8_t row[16];
		struct weir_csv_fault fault;
		assert_int_equal(weir_csv_parse_line(&schema, text, (size_t)at, row, &fault), 0);
		double parsed = weir_field_get_f64(&schema.fields[0], row);
		double expected = strtod(text, NULL);
		if (memcmp(&parsed, &expected, sizeof(parsed)) != 0)
			fail_msg("'%s' parsed as %.17g, strtod says %.17g", text, parsed, expected);
	}
}

static void test_reason_texts(void **state)
{
	(void)state;
	for (int i = 0; i < WEIR_CSV_REASON_COUNT; i++) {
		const char *text = weir_csv_reason_text((enum weir_csv_reason)i);
		assert_non_null(text);
		assert_true(strlen(text) > 0);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(text,
						weir_csv_reason_text((enum weir_csv_reason)j));
	}
	assert_string_equal(weir_csv_reason_text(WEIR_CSV_BAD_NUMBER), "not a number");
	assert_string_equal(weir_csv_reason_text(WEIR_CSV_REASON_COUNT), "unknown reason");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_types),
		cmocka_unit_test(test_integer_edges),
		cmocka_unit_test(test_f64),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_field_count_crlf_nul),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_reason_texts),
		cmocka_unit_test(test_f64_matches_strtod),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
