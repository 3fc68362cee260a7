/* Goal: rows are formatted exactly: integers at every digit-count edge, shortest round-trip
 * doubles, JSON escapes, CSV quoting, addresses (v4-mapped `ip` printed dotted, IPv6 per
 * RFC 5952 via inet_ntop), and never past the declared longest row.
 *
 * Method: one record per case through weir_format_jsonl / weir_format_csv, compared with the
 * expected text. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "core/schema.h"
#include "io/sink.h"

static struct weir_schema schema;
static struct weir_row_format format;
static uint8_t record[1024];
static char text[4096];

static void use_schema(const char *description)
{
	char error[128];
	assert_int_equal(weir_schema_parse(&schema, description, error, sizeof(error)), 0);
	weir_row_format_init(&format, &schema);
	memset(record, 0, sizeof(record));
}

static const char *jsonl(void)
{
	size_t length = weir_format_jsonl(&format, record, text);
	assert_true(length <= format.length_max);
	text[length] = '\0';
	return text;
}

static const char *csv(void)
{
	size_t length = weir_format_csv(&format, record, text);
	assert_true(length <= format.length_max);
	text[length] = '\0';
	return text;
}

static void integers_at_every_edge(void **state)
{
	(void)state;
	use_schema("i:i64,u:u64");
	const struct {
		int64_t i;
		uint64_t u;
		const char *expected;
	} cases[] = {
		{0, 0, "{\"i\":0,\"u\":0}\n"},
		{9, 10, "{\"i\":9,\"u\":10}\n"},
		{-99, 100, "{\"i\":-99,\"u\":100}\n"},
		{1234567, 1700000000123456789ull, "{\"i\":1234567,\"u\":1700000000123456789}\n"},
		{INT64_MIN, UINT64_MAX,
		 "{\"i\":-9223372036854775808,\"u\":18446744073709551615}\n"},
		{INT64_MAX, 1000, "{\"i\":9223372036854775807,\"u\":1000}\n"},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		weir_field_set_i64(&schema.fields[0], record, cases[c].i);
		memcpy(record + schema.fields[1].offset, &cases[c].u, 8);
		assert_string_equal(jsonl(), cases[c].expected);
	}
}

static void doubles_are_shortest(void **state)
{
	(void)state;
	use_schema("x:f64");
	const struct {
		double value;
		const char *expected;
	} cases[] = {{0.1, "0.1"}, {288.8863636363636, "288.8863636363636"}, {-2.5, "-2.5"},
		     {1e300, "1e+300"}, {0.30000000000000004, "0.30000000000000004"}};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		weir_field_set_f64(&schema.fields[0], record, cases[c].value);
		char expected[64];
		snprintf(expected, sizeof(expected), "%s\n", cases[c].expected);
		assert_string_equal(csv(), expected);
		assert_true(strtod(text, NULL) == cases[c].value);
	}
}

static void strings_escape_and_quote(void **state)
{
	(void)state;
	use_schema("s:str32");
	const char *value = "a\"b\\c,d\n";
	record[schema.fields[0].offset] = (uint8_t)strlen(value);
	memcpy(record + schema.fields[0].offset + 1, value, strlen(value));
	assert_string_equal(jsonl(), "{\"s\":\"a\\\"b\\\\c,d\\u000a\"}\n");
	assert_string_equal(csv(), "\"a\"\"b\\c,d\n\"\n");
	record[schema.fields[0].offset] = 5;
	memcpy(record + schema.fields[0].offset + 1, "plain", 5);
	assert_string_equal(jsonl(), "{\"s\":\"plain\"}\n");
	assert_string_equal(csv(), "plain\n");
}

static void addresses(void **state)
{
	(void)state;
	use_schema("a:ip,b:ip,c:ipv4");
	uint8_t *a = record + schema.fields[0].offset;
	a[10] = a[11] = 0xff;
	inet_pton(AF_INET, "10.0.66.6", a + 12);
	inet_pton(AF_INET6, "2001:db8:0:0:1:0:0:1", record + schema.fields[1].offset);
	inet_pton(AF_INET, "192.168.1.2", record + schema.fields[2].offset);
	assert_string_equal(jsonl(), "{\"a\":\"10.0.66.6\",\"b\":\"2001:db8::1:0:0:1\","
				     "\"c\":\"192.168.1.2\"}\n");
}

static void longest_row_fits(void **state)
{
	(void)state;
	use_schema("s:str,t:str,n:i64,x:f64,a:ip");
	memset(record, 0, sizeof(record));
	for (uint32_t f = 0; f < 2; f++) {
		record[schema.fields[f].offset] = 255;
		memset(record + schema.fields[f].offset + 1, 0x01, 255); /* every byte escaped */
	}
	weir_field_set_i64(&schema.fields[2], record, INT64_MIN);
	weir_field_set_f64(&schema.fields[3], record, -1.2345678901234567e-300);
	memset(record + schema.fields[4].offset, 0xab, 16);
	size_t length = weir_format_jsonl(&format, record, text);
	assert_true(length <= format.length_max);
	assert_true(length > 2 * 6 * 255);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(integers_at_every_edge),
		cmocka_unit_test(doubles_are_shortest),
		cmocka_unit_test(strings_escape_and_quote),
		cmocka_unit_test(addresses),
		cmocka_unit_test(longest_row_fits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
