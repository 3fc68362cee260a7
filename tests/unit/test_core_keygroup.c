/* Goal: core/keygroup's contract, exactly: which key column lists weir_key_spec_init refuses
 * and with which code, the canonical key encoding (a string is its length byte and content,
 * never its padding; numbers their 8 bytes), decode into a differently laid out schema, the
 * split of key groups among workers, and the key hash itself.
 *
 * Method: fixed schemas and records built by hand.  Encodings are compared byte for byte
 * with what the header promises; decode is checked by re-encoding from the output record.
 * The group split is checked exhaustively for 1..17 workers over 4096, 7 and 1 groups
 * against the owner formula.  weir_key_hash is pinned by known answers: the hash decides key
 * groups, and so which worker holds (and persists) which state, so it must never change
 * between versions. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h> /* before cmocka.h, which redefines malloc under UNIT_TESTING */
#include <string.h>

#include <cmocka.h>

#include "core/keygroup.h"
#include "core/schema.h"

#define ERROR_LENGTH 256

static char error[ERROR_LENGTH];

static void parse_or_fail(struct weir_schema *schema, const char *text)
{
	char message[ERROR_LENGTH];
	int rc = weir_schema_parse(schema, text, message, sizeof(message));
	if (rc != 0)
		print_error("schema '%s': %s\n", text, message);
	assert_int_equal(rc, 0);
}

static void expect_spec_error(const struct weir_schema *schema, const char *columns, int rc,
			      const char *needle)
{
	struct weir_key_spec spec;
	memset(error, 0, sizeof(error));
	int got = weir_key_spec_init(&spec, schema, columns, error, sizeof(error));
	if (got != rc || strstr(error, needle) == NULL)
		print_error("columns '%s': rc %d (want %d), message '%s' (want '%s' in it)\n",
			    columns, got, rc, error, needle);
	assert_int_equal(got, rc);
	assert_non_null(strstr(error, needle));
}

static void spec_errors(void **state)
{
	(void)state;
	struct weir_schema schema;
	parse_or_fail(&schema, "a:i64,b:i64,c:i64,d:i64,e:i64,f:i64,g:i64,h:i64,i:i64,s:str");
	expect_spec_error(&schema, "nope", -ENOENT, "'nope'");
	expect_spec_error(&schema, "a,nope", -ENOENT, "'nope'");
	expect_spec_error(&schema, "A", -ENOENT, "'A'");
	expect_spec_error(&schema, "a,a", -EINVAL, "'a'");
	expect_spec_error(&schema, "a,b,s,b", -EINVAL, "'b'");
	expect_spec_error(&schema, "", -EINVAL, "empty");
	expect_spec_error(&schema, ",", -EINVAL, "no columns");
	expect_spec_error(&schema, ",,,", -EINVAL, "no columns");
	expect_spec_error(&schema, "a,b,c,d,e,f,g,h,i", -EINVAL, "more than 8");
	/* An unknown column is reported as such even past the column limit. */
	expect_spec_error(&schema, "a,b,c,d,e,f,g,h,zz", -ENOENT, "'zz'");

	char *long_list = test_malloc(2048);
	memset(long_list, 'a', 2047);
	long_list[2047] = '\0';
	expect_spec_error(&schema, long_list, -EINVAL, "too long");
	test_free(long_list);

	struct weir_key_spec spec;
	assert_int_equal(weir_key_spec_init(&spec, &schema, "a,b,c,d,e,f,g,s", error,
					    sizeof(error)),
			 0);
	assert_int_equal(spec.part_count, 8);
	assert_int_equal(spec.encoded_length_max, 7 * 8 + 256);
	expect_assert_failure(weir_key_spec_init(NULL, &schema, "a", error, sizeof(error)));
	expect_assert_failure(weir_key_spec_init(&spec, NULL, "a", error, sizeof(error)));
	expect_assert_failure(weir_key_spec_init(&spec, &schema, NULL, error, sizeof(error)));
}

static void spec_parts(void **state)
{
	(void)state;
	struct weir_schema schema;
	struct weir_key_spec spec;
	parse_or_fail(&schema, "ts:i64,card:str32,amount:f64,src:ipv4,dst:ipv6,m:str8");
	assert_int_equal(weir_key_spec_init(&spec, &schema, "m,ts,dst,src", error, sizeof(error)),
			 0);
	assert_int_equal(spec.part_count, 4);
	const uint32_t field_index[] = {5, 0, 4, 3};
	const bool is_string[] = {true, false, false, false};
	for (uint32_t i = 0; i < 4; i++) {
		const struct weir_field *field = &schema.fields[field_index[i]];
		assert_int_equal(spec.parts[i].field_index, field_index[i]);
		assert_int_equal(spec.parts[i].offset, field->offset);
		assert_int_equal(spec.parts[i].length, field->length);
		assert_int_equal(spec.parts[i].is_string, is_string[i]);
	}
	assert_int_equal(spec.encoded_length_max, 9 + 8 + 16 + 4);
}

static void set_str(const struct weir_field *field, uint8_t *record, const char *text)
{
	size_t length = strlen(text);
	assert_true(length <= field->max_length);
	record[field->offset] = (uint8_t)length;
	memcpy(record + field->offset + 1, text, length);
}

static void encode_lengths_and_padding(void **state)
{
	(void)state;
	struct weir_schema schema;
	struct weir_key_spec by_card;
	struct weir_key_spec by_ts;
	parse_or_fail(&schema, "ts:i64,card:str32");
	assert_int_equal(weir_key_spec_init(&by_card, &schema, "card", error, sizeof(error)), 0);
	assert_int_equal(weir_key_spec_init(&by_ts, &schema, "ts", error, sizeof(error)), 0);
	assert_int_equal(by_card.encoded_length_max, 33);
	assert_int_equal(by_ts.encoded_length_max, 8);

	/* Same string, different bytes after it in the padding (a record is zero padded in
	 * practice; the encoding must not look there anyway). */
	uint8_t first[48];
	uint8_t second[48];
	assert_int_equal(schema.record_length, sizeof(first));
	memset(first, 0, sizeof(first));
	memset(second, 0xA5, sizeof(second));
	const struct weir_field *card = &schema.fields[1];
	set_str(card, first, "card-42");
	set_str(card, second, "card-42");
	weir_field_set_i64(&schema.fields[0], first, 123456789);
	weir_field_set_i64(&schema.fields[0], second, -5);

	uint8_t key_first[33];
	uint8_t key_second[33];
	uint32_t length_first = weir_key_encode(&by_card, first, key_first);
	uint32_t length_second = weir_key_encode(&by_card, second, key_second);
	assert_int_equal(length_first, 1 + strlen("card-42"));
	assert_int_equal(length_second, length_first);
	assert_memory_equal(key_first, key_second, length_first);
	assert_int_equal(key_first[0], 7);
	assert_memory_equal(key_first + 1, "card-42", 7);
	assert_true(weir_key_hash(key_first, length_first, 0) ==
		    weir_key_hash(key_second, length_second, 0));

	/* The empty string is one byte; the longest 1 + max_length. */
	set_str(card, first, "");
	assert_int_equal(weir_key_encode(&by_card, first, key_first), 1);
	assert_int_equal(key_first[0], 0);
	set_str(card, first, "0123456789abcdef0123456789abcdef");
	assert_int_equal(weir_key_encode(&by_card, first, key_first), 33);

	/* Different strings sharing a prefix differ (the length byte is part of the key). */
	set_str(card, first, "ab");
	set_str(card, second, "abc");
	length_first = weir_key_encode(&by_card, first, key_first);
	length_second = weir_key_encode(&by_card, second, key_second);
	assert_int_not_equal(length_first, length_second);

	uint8_t key_ts[8];
	assert_int_equal(weir_key_encode(&by_ts, second, key_ts), 8);
	int64_t ts = 0;
	memcpy(&ts, key_ts, sizeof(ts));
	assert_int_equal(ts, -5);
}

static void encode_decode_round_trip(void **state)
{
	(void)state;
	struct weir_schema in_schema;
	struct weir_schema out_schema;
	struct weir_key_spec in_spec;
	struct weir_key_spec out_spec;
	parse_or_fail(&in_schema, "ts:i64,card:str32,amount:f64,src:ipv4,dst:ipv6,m:str8");
	/* The same key columns, at other offsets, between other fields. */
	parse_or_fail(&out_schema, "x:f64,dst:ipv6,card:str32,pad:str7,m:str8,ts:i64,src:ipv4");
	const char *columns = "card,src,ts,dst,m";
	assert_int_equal(weir_key_spec_init(&in_spec, &in_schema, columns, error, sizeof(error)),
			 0);
	assert_int_equal(weir_key_spec_init(&out_spec, &out_schema, columns, error,
					    sizeof(error)),
			 0);
	assert_int_equal(in_spec.encoded_length_max, out_spec.encoded_length_max);
	assert_true(in_spec.parts[0].offset != out_spec.parts[0].offset);

	uint8_t in[128];
	memset(in, 0, sizeof(in));
	assert_true(in_schema.record_length <= sizeof(in));
	assert_true(out_schema.record_length <= sizeof(in));
	weir_field_set_i64(&in_schema.fields[0], in, INT64_MIN + 7);
	set_str(&in_schema.fields[1], in, "4000-1234");
	weir_field_set_f64(&in_schema.fields[2], in, 99.5);
	const uint8_t src[4] = {10, 0, 0, 1};
	memcpy(in + in_schema.fields[3].offset, src, 4);
	uint8_t dst[16];
	for (int i = 0; i < 16; i++)
		dst[i] = (uint8_t)(0xF0 + i);
	memcpy(in + in_schema.fields[4].offset, dst, 16);
	set_str(&in_schema.fields[5], in, "shop");

	uint8_t key[256];
	uint32_t length = weir_key_encode(&in_spec, in, key);
	assert_int_equal(length, (1 + 9) + 4 + 8 + 16 + (1 + 4));

	/* Decode over garbage: key columns (padding included) are rewritten, the rest stays. */
	uint8_t out[128];
	memset(out, 0xEE, sizeof(out));
	weir_key_decode(&out_spec, key, length, out);
	const struct weir_field *card = &out_schema.fields[2];
	uint32_t text_length = 0;
	const char *text = weir_field_get_str(card, out, &text_length);
	assert_int_equal(text_length, 9);
	assert_memory_equal(text, "4000-1234", 9);
	for (uint32_t i = card->offset + 1 + 9; i < card->offset + card->length; i++)
		assert_int_equal(out[i], 0);
	text = weir_field_get_str(&out_schema.fields[4], out, &text_length);
	assert_int_equal(text_length, 4);
	assert_memory_equal(text, "shop", 4);
	assert_int_equal(weir_field_get_i64(&out_schema.fields[5], out), INT64_MIN + 7);
	assert_memory_equal(out + out_schema.fields[6].offset, src, 4);
	assert_memory_equal(out + out_schema.fields[1].offset, dst, 16);
	/* Fields that are not key columns are untouched. */
	for (uint32_t i = 0; i < 8; i++)
		assert_int_equal(out[out_schema.fields[0].offset + i], 0xEE);
	for (uint32_t i = 0; i < out_schema.fields[3].length; i++)
		assert_int_equal(out[out_schema.fields[3].offset + i], 0xEE);

	uint8_t again[256];
	assert_int_equal(weir_key_encode(&out_spec, out, again), length);
	assert_memory_equal(again, key, length);
}

/* Separate from the round trip: setjmp in expect_assert_failure and the inlined encoder in
 * one function trip -Wclobbered. */
static void decode_misuse_asserts(void **state)
{
	(void)state;
#if WEIR_ASSERTS
	struct weir_schema schema;
	struct weir_key_spec spec;
	parse_or_fail(&schema, "ts:i64,card:str32");
	assert_int_equal(weir_key_spec_init(&spec, &schema, "card,ts", error, sizeof(error)), 0);
	uint8_t key[48] = {3, 'a', 'b', 'c', 1, 2, 3, 4, 5, 6, 7, 8};
	uint8_t out[48];
	/* A length that disagrees with the encoding is a programmer error. */
	expect_assert_failure(weir_key_decode(&spec, key, 11, out));
	expect_assert_failure(weir_key_decode(&spec, key, spec.encoded_length_max + 1, out));
	/* A string length byte past the column's max_length (the total length is in range). */
	key[0] = 33;
	expect_assert_failure(weir_key_decode(&spec, key, spec.encoded_length_max, out));
	key[0] = 3;
	weir_key_decode(&spec, key, 12, out);
	assert_int_equal(weir_field_get_i64(&schema.fields[0], out), 0x0807060504030201);
#else
	skip();
#endif
}

static void group_split(void **state)
{
	(void)state;
	const uint32_t group_counts[] = {4096, 7, 1};
	for (size_t c = 0; c < sizeof(group_counts) / sizeof(group_counts[0]); c++) {
		uint32_t groups = group_counts[c];
		for (uint32_t workers = 1; workers <= 17 && workers <= groups; workers++) {
			uint32_t expected_first = 0;
			uint32_t min_size = UINT32_MAX;
			uint32_t max_size = 0;
			for (uint32_t w = 0; w < workers; w++) {
				uint32_t first = UINT32_MAX;
				uint32_t end = UINT32_MAX;
				weir_key_group_range(w, groups, workers, &first, &end);
				/* Contiguous: each range starts where the last ended. */
				assert_int_equal(first, expected_first);
				assert_true(first < end); /* nobody is left without a group */
				expected_first = end;
				if (end - first < min_size)
					min_size = end - first;
				if (end - first > max_size)
					max_size = end - first;
				for (uint32_t g = first; g < end; g++) {
					uint32_t owner = weir_key_group_owner(g, groups, workers);
					assert_int_equal(owner, w);
				}
			}
			assert_int_equal(expected_first, groups); /* covers [0, G) */
			assert_true(max_size - min_size <= 1);	  /* balanced */
		}
	}
	/* Spot values: 7 groups over 3 workers are [0,3) [3,5) [5,7). */
	uint32_t first = 0;
	uint32_t end = 0;
	weir_key_group_range(1, 7, 3, &first, &end);
	assert_int_equal(first, 3);
	assert_int_equal(end, 5);
	assert_int_equal(weir_key_group_owner(2, 7, 3), 0);
	assert_int_equal(weir_key_group_owner(6, 7, 3), 2);

	expect_assert_failure(weir_key_group_range(3, 7, 3, &first, &end));
	expect_assert_failure(weir_key_group_range(0, 7, 8, &first, &end));
}

static void group_of_hash(void **state)
{
	(void)state;
	assert_int_equal(weir_key_group_of_hash(0, 4096), 0);
	assert_int_equal(weir_key_group_of_hash(4095, 4096), 4095);
	assert_int_equal(weir_key_group_of_hash(4096, 4096), 0);
	assert_int_equal(weir_key_group_of_hash(UINT64_MAX, 7), UINT64_MAX % 7);
	assert_int_equal(weir_key_group_of_hash(0xade060235358d5aaull, WEIR_KEY_GROUPS_DEFAULT),
			 0xade060235358d5aaull % 4096);
	assert_int_equal(weir_key_group_of_hash(12345, 1), 0);
}

/* Known answers for XXH3_64bits_withSeed, obtained once with a throwaway program against
 * libxxhash 0.8.1 (Debian 12, `gcc kat.c -lxxhash`) that printed XXH3_64bits_withSeed(input,
 * length, seed) for each input below; the "" / seed 0 value matches xxHash's published
 * XXH3 test vector.  Do not "update" these: a change here moves keys between key groups, so
 * state persisted by one version would be looked for on the wrong worker by the next. */
struct hash_answer {
	const char *name;
	uint64_t seed;
	uint64_t hash;
};

static void hash_known_answers(void **state)
{
	(void)state;
	uint8_t bytes[100];
	for (int i = 0; i < 100; i++)
		bytes[i] = (uint8_t)i;
	static const struct hash_answer answers[] = {
		{"", 0, 0x2d06800538d394c2ull},
		{"a", 0, 0xe6c632b61e964e1full},
		{"card-42", 0, 0xade060235358d5aaull},
		{NULL, 0, 0x004e4f921a64bd1cull}, /* NULL: bytes 0..99 */
		{"", 0x1234, 0xda71bc4aec3fbef0ull},
		{"a", 0x1234, 0x8f192fe05a408f82ull},
		{"card-42", 0x1234, 0x09735e5e4892100full},
		{NULL, 0x1234, 0xeddf45013a5bfe1eull},
	};
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		const struct hash_answer *answer = &answers[i];
		const void *input = answer->name != NULL ? (const void *)answer->name : bytes;
		uint32_t length =
			answer->name != NULL ? (uint32_t)strlen(answer->name) : sizeof(bytes);
		uint64_t got = weir_key_hash(input, length, answer->seed);
		if (got != answer->hash)
			print_error("input %zu seed %#llx: %#018llx, pinned %#018llx\n", i,
				    (unsigned long long)answer->seed, (unsigned long long)got,
				    (unsigned long long)answer->hash);
		assert_true(got == answer->hash);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spec_errors),
		cmocka_unit_test(spec_parts),
		cmocka_unit_test(encode_lengths_and_padding),
		cmocka_unit_test(encode_decode_round_trip),
		cmocka_unit_test(decode_misuse_asserts),
		cmocka_unit_test(group_split),
		cmocka_unit_test(group_of_hash),
		cmocka_unit_test(hash_known_answers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
