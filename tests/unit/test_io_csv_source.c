/* Goal: the CSV file source reads every data line of a file exactly once, in file order within
 * each partition and across partitions, for any partition count; carries lines across 1 MiB
 * chunk boundaries intact; skips lines longer than 1 MiB (also ones spanning several chunks,
 * and a last one without '\n'); treats a missing final newline, CRLF and a final empty line
 * right; and reports malformed lines with their line numbers in the file, identically whatever
 * the partition count.  create() refuses a missing file, a directory, an empty file and a bad
 * header with the right -errno and a message naming the file.
 *
 * Method: write files into a mkdtemp directory.  Data line k (k >= 1) is the record
 * (id = k, value = 3k - 7, name = a letter repeated k % 23 times) so every record can be
 * checked on its own, and the sums and a seen-bitmap prove "exactly once".  Files over 2 MiB
 * cross chunk boundaries.  Open 1, 2, 3, 4 and 7 partitions on this thread, pull them round
 * robin until all have ended (a pull may return 0 while a read is in flight), close them in
 * reverse order, and compare weir_csv_source_report's output (captured with fmemopen)
 * with the text expected from the lines we made malformed.  Exits 77 without io_uring. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka last: under UNIT_TESTING it turns malloc and free into its checked versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/mem.h"
#include "core/schema.h"
#include "io/csv_source.h"

#define SCHEMA_TEXT "id:u64,value:i64,name:str32"
#define HEADER "id,value,name\n"
#define PARTITIONS_MAX 7
#define BURST 64
#define MALFORMED_MAX 64

static char directory[64];
static struct weir_schema schema;
static unsigned arena;

/* What a drive over all partitions saw. */
struct totals {
	uint64_t record_count;
	uint64_t id_sum;
	int64_t value_sum;
	uint64_t wrong_count;	      /* records whose value or name does not match their id */
	uint64_t order_violation_count; /* ids not increasing in partition-then-file order */
	uint64_t duplicate_count;
	uint8_t *seen;		      /* one byte per id, up to id_limit */
	uint64_t id_limit;
};

static const uint32_t partition_counts[] = {1, 2, 3, 4, 7};

static int64_t value_of(uint64_t id)
{
	return (int64_t)id * 3 - 7;
}

static uint32_t name_length_of(uint64_t id)
{
	return (uint32_t)(id % 23);
}

/* The good line for @id, with its '\n'.  Returns: its length. */
static int format_line(char *out, size_t capacity, uint64_t id)
{
	char name[32];
	memset(name, 'a' + (int)(id % 26), sizeof(name));
	return snprintf(out, capacity, "%llu,%lld,%.*s\n", (unsigned long long)id,
			(long long)value_of(id), (int)name_length_of(id), name);
}

static void path_of(char *path, size_t capacity, const char *name)
{
	snprintf(path, capacity, "%s/%s", directory, name);
}

static FILE *file_create(const char *name, char *path, size_t capacity)
{
	path_of(path, capacity, name);
	FILE *file = fopen(path, "w");
	assert_non_null(file);
	return file;
}

static void file_write_text(const char *name, const char *text, size_t length, char *path,
			    size_t capacity)
{
	FILE *file = file_create(name, path, capacity);
	assert_int_equal(fwrite(text, 1, length, file), length);
	assert_int_equal(fclose(file), 0);
}

static void write_good_line(FILE *file, uint64_t id)
{
	char line[128];
	int length = format_line(line, sizeof(line), id);
	assert_int_equal(fwrite(line, 1, (size_t)length, file), (size_t)length);
}

/* A line of exactly @length bytes (without '\n') that starts like a record of @id. */
static void write_long_line(FILE *file, uint64_t id, size_t length, bool newline)
{
	int prefix = fprintf(file, "%llu,1,", (unsigned long long)id);
	assert_true(prefix > 0 && (size_t)prefix < length);
	for (size_t i = (size_t)prefix; i < length; i++)
		fputc('x', file);
	if (newline)
		fputc('\n', file);
}

static void check_record(struct totals *totals, const uint8_t *record, uint64_t *last_id)
{
	uint64_t id = 0;
	memcpy(&id, record + schema.fields[0].offset, sizeof(id));
	int64_t value = weir_field_get_i64(&schema.fields[1], record);
	uint32_t name_length = 0;
	const char *name = weir_field_get_str(&schema.fields[2], record, &name_length);
	bool right = value == value_of(id) && name_length == name_length_of(id);
	for (uint32_t i = 0; right && i < name_length; i++)
		right = name[i] == 'a' + (int)(id % 26);
	totals->wrong_count += !right;
	totals->order_violation_count += *last_id != 0 && id <= *last_id;
	*last_id = id;
	totals->record_count++;
	totals->id_sum += id;
	totals->value_sum += value;
	if (totals->seen != NULL && id < totals->id_limit) {
		totals->duplicate_count += totals->seen[id] != 0;
		totals->seen[id] = 1;
	}
}

/* Opens @count partitions, pulls them round robin until every one has ended, and closes them
 * in reverse order (close must not depend on order). */
static void drive(struct weir_csv_source *csv, uint32_t count, struct totals *totals)
{
	assert_true(count <= PARTITIONS_MAX);
	struct weir_source source = weir_csv_source_as_source(csv);
	assert_ptr_equal(source.ctx, csv);
	assert_int_equal(source.schema->record_length, schema.record_length);
	void *partitions[PARTITIONS_MAX] = {0};
	struct weir_pull_status status[PARTITIONS_MAX] = {0};
	for (uint32_t i = 0; i < count; i++)
		assert_int_equal(source.vtable->open(source.ctx, i, count, arena, &partitions[i]),
				 0);
	static uint8_t records[BURST * 512];
	assert_true(schema.record_length <= 512);
	uint64_t last_id = 0; /* ids rise through partition 0, then 1...: one running maximum */
	uint64_t idle_pulls = 0;
	for (uint32_t i = 0; i < count; i++) {
		while (!status[i].ended) {
			uint32_t got = source.vtable->pull(partitions[i], records, BURST,
							   &status[i]);
			assert_true(got <= BURST);
			for (uint32_t r = 0; r < got; r++)
				check_record(totals, records + (size_t)r * schema.record_length,
					     &last_id);
			if (got == 0 && !status[i].ended) {
				idle_pulls++; /* a read is in flight */
				assert_true(idle_pulls < 100000000);
				sched_yield();
			}
		}
		/* Ended stays ended. */
		struct weir_pull_status again = {.ended = false, .consumed = 0};
		assert_int_equal(source.vtable->pull(partitions[i], records, BURST, &again), 0);
		assert_true(again.ended);
	}
	for (uint32_t i = count; i-- > 0;)
		source.vtable->close(source.ctx, partitions[i]);
}

/* Drops the file's pages from the page cache (best effort), so reads really go to the device
 * and pull() meets reads still in flight. */
static void evict(const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	(void)fdatasync(fd); /* dirty pages are not dropped */
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
}

static struct weir_csv_source *create_ok(const char *path)
{
	evict(path);
	struct weir_csv_source *csv = NULL;
	char error[512] = "";
	int rc = weir_csv_source_create(&csv, path, &schema, error, sizeof(error));
	if (rc != 0)
		fail_msg("create %s: %d %s", path, rc, error);
	assert_non_null(csv);
	return csv;
}

#define REPORT_LENGTH_MAX 8192

/* The report as a string, in a static buffer (fmemopen: its memory is ours, not libc's, so
 * cmocka's checked free never sees it). */
static const char *report_text(const struct weir_csv_source *csv)
{
	static char text[REPORT_LENGTH_MAX];
	memset(text, 0, sizeof(text));
	FILE *stream = fmemopen(text, sizeof(text), "w");
	assert_non_null(stream);
	weir_csv_source_report(csv, stream);
	assert_int_equal(fclose(stream), 0);
	assert_true(strlen(text) < sizeof(text) - 1);
	return text;
}

/* ---- every line once ---- */

static void test_every_line_once(void **state)
{
	(void)state;
	const uint64_t line_count = 300000; /* about 4.7 MiB: five chunks and change */
	char path[256];
	FILE *file = file_create("big.csv", path, sizeof(path));
	fputs(HEADER, file);
	uint64_t id_sum = 0;
	int64_t value_sum = 0;
	for (uint64_t id = 1; id <= line_count; id++) {
		write_good_line(file, id);
		id_sum += id;
		value_sum += value_of(id);
	}
	assert_int_equal(fclose(file), 0);

	uint8_t *seen = weir_mem_alloc(line_count + 1, 64, WEIR_MEM_ARENA_DEFAULT);
	assert_non_null(seen);
	for (size_t c = 0; c < sizeof(partition_counts) / sizeof(partition_counts[0]); c++) {
		struct weir_csv_source *csv = create_ok(path);
		memset(seen, 0, line_count + 1);
		struct totals totals = {.seen = seen, .id_limit = line_count + 1};
		drive(csv, partition_counts[c], &totals);
		assert_int_equal(totals.record_count, line_count);
		assert_int_equal(totals.id_sum, id_sum);
		assert_true(totals.value_sum == value_sum);
		assert_int_equal(totals.wrong_count, 0);
		assert_int_equal(totals.order_violation_count, 0);
		assert_int_equal(totals.duplicate_count, 0);
		for (uint64_t id = 1; id <= line_count; id++)
			assert_int_equal(seen[id], 1);
		assert_int_equal(weir_csv_source_line_count(csv), line_count);
		assert_int_equal(weir_csv_source_skipped_count(csv), 0);
		const char *text = report_text(csv);
		assert_string_equal(text, "");
		weir_csv_source_destroy(csv);
	}
	weir_mem_free(seen, WEIR_MEM_ARENA_DEFAULT);
	unlink(path);
}

/* ---- small files: trailing newline, CRLF, empty lines, tiny files with many partitions ---- */

struct small_case {
	const char *text;
	uint64_t record_count;
	uint64_t line_count;
	uint64_t skipped_count;
	const char *report_tail; /* the report after "weir: PATH: ", or "" */
};

static void test_small_files(void **state)
{
	(void)state;
	const struct small_case cases[] = {
		{HEADER "1,-4,b\n2,-1,cc\n3,2,ddd", 3, 3, 0, ""},
		{HEADER "1,-4,b\n2,-1,cc\n3,2,ddd\n", 3, 3, 0, ""},
		{HEADER "1,-4,b\r\n2,-1,cc\r\n3,2,ddd\r\n", 3, 3, 0, ""},
		{HEADER "1,-4,b\r\n2,-1,cc\r\n3,2,ddd", 3, 3, 0, ""},
		{"id,value,name\r\n1,-4,b\r\n2,-1,cc\r\n\r\n", 2, 2, 0, ""},
		{HEADER "1,-4,b\n2,-1,cc\n\n", 2, 2, 0, ""},
		{HEADER "1,-4,b\n\n2,-1,cc\n", 2, 3, 1,
		 "skipped 1 malformed line of 3\n  line 3: too few fields (0 of 3)\n"},
		{HEADER "1,-4,b\n2,-1,cc\n\n\n", 2, 3, 1,
		 "skipped 1 malformed line of 3\n  line 4: too few fields (0 of 3)\n"},
		{HEADER "\n1,-4,b\n", 1, 2, 1,
		 "skipped 1 malformed line of 2\n  line 2: too few fields (0 of 3)\n"},
		{HEADER "1,-4,b,x\n2,zz,cc\n3,2,\"ddd\n4,5,eeee\n5,8,fffff", 2, 5, 3,
		 "skipped 3 malformed lines of 5\n  line 2: too many fields (schema has 3)\n"
		 "  line 3: field 2 (value): not a number\n"
		 "  line 4: field 3 (name): bad quoting\n"},
		{HEADER, 0, 0, 0, ""},
		{"id,value,name", 0, 0, 0, ""},
		{"id,value,name\r\n", 0, 0, 0, ""},
		{HEADER "1,-4,b", 1, 1, 0, ""},
		{HEADER "2,-1,ccccccccccccccccccccccccccccccccc\n", 0, 1, 1,
		 "skipped 1 malformed line of 1\n  line 2: field 3 (name): string too long\n"},
		{HEADER "1,-4,\"b\"\n2,-1,\"cc\"\r\n\"3\",\"2\",\"ddd\"", 3, 3, 0, ""},
	};
	char path[256];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct small_case *test = &cases[i];
		file_write_text("small.csv", test->text, strlen(test->text), path, sizeof(path));
		for (uint32_t count = 1; count <= PARTITIONS_MAX; count++) {
			struct weir_csv_source *csv = create_ok(path);
			struct totals totals = {0};
			drive(csv, count, &totals);
			if (totals.record_count != test->record_count || totals.wrong_count != 0 ||
			    totals.order_violation_count != 0)
				fail_msg("case %zu, %u partitions: %llu records (%llu wrong)", i,
					 count, (unsigned long long)totals.record_count,
					 (unsigned long long)totals.wrong_count);
			assert_int_equal(weir_csv_source_line_count(csv), test->line_count);
			assert_int_equal(weir_csv_source_skipped_count(csv), test->skipped_count);
			char expected[1024] = "";
			if (test->report_tail[0] != '\0')
				snprintf(expected, sizeof(expected), "weir: %s: %s", path,
					 test->report_tail);
			const char *text = report_text(csv);
			if (strcmp(text, expected) != 0)
				fail_msg("case %zu, %u partitions: report\n%s\nexpected\n%s", i,
					 count, text, expected);
			weir_csv_source_destroy(csv);
		}
	}
	unlink(path);
}

/* ---- long lines ---- */

static void test_long_lines(void **state)
{
	(void)state;
	const size_t max = WEIR_CSV_LINE_LENGTH_MAX;
	char path[256];
	FILE *file = file_create("long.csv", path, sizeof(path));
	fputs(HEADER, file);
	uint64_t good_count = 0;
	for (uint64_t id = 1; id <= 4001; id++) {
		if (id == 1001)
			write_long_line(file, id, 2 * max + max / 2, true); /* spans three chunks */
		else if (id == 2001)
			write_long_line(file, id, max + 1, true);
		else if (id == 3001)
			write_long_line(file, id, max, true); /* fits: a string too long instead */
		else if (id == 3002)
			write_long_line(file, id, max - 1, true);
		else if (id == 4001)
			write_long_line(file, id, 3 * max, false); /* last, without '\n' */
		else {
			write_good_line(file, id);
			good_count++;
		}
	}
	assert_int_equal(fclose(file), 0);
	char expected[1024];
	snprintf(expected, sizeof(expected),
		 "weir: %s: skipped 5 malformed lines of 4001\n"
		 "  line 1002: line too long\n"
		 "  line 2002: line too long\n"
		 "  line 3002: field 3 (name): string too long\n"
		 "  line 3003: field 3 (name): string too long\n"
		 "  line 4002: line too long\n",
		 path);
	for (size_t c = 0; c < sizeof(partition_counts) / sizeof(partition_counts[0]); c++) {
		struct weir_csv_source *csv = create_ok(path);
		struct totals totals = {0};
		drive(csv, partition_counts[c], &totals);
		assert_int_equal(totals.record_count, good_count);
		assert_int_equal(totals.wrong_count, 0);
		assert_int_equal(totals.order_violation_count, 0);
		assert_int_equal(weir_csv_source_line_count(csv), 4001);
		assert_int_equal(weir_csv_source_skipped_count(csv), 5);
		const char *text = report_text(csv);
		if (strcmp(text, expected) != 0)
			fail_msg("%u partitions: report\n%s\nexpected\n%s", partition_counts[c],
				 text, expected);
		weir_csv_source_destroy(csv);
	}
	unlink(path);
}

/* ---- malformed lines across partitions ---- */

/* Writes data line @id, malformed in one of four ways for chosen ids.
 * Returns: the report line for it ("" when good). */
static const char *write_maybe_bad(FILE *file, uint64_t id, char *note, size_t capacity)
{
	unsigned long long line = (unsigned long long)id + 1;
	note[0] = '\0';
	if (id % 9973 == 0) {
		fprintf(file, "%llu,12x,abc\n", (unsigned long long)id);
		snprintf(note, capacity, "  line %llu: field 2 (value): not a number\n", line);
	} else if (id == 5) {
		fputc('\n', file);
		snprintf(note, capacity, "  line %llu: too few fields (0 of 3)\n", line);
	} else if (id == 77777) {
		fputs("1,2,3,4\n", file);
		snprintf(note, capacity, "  line %llu: too many fields (schema has 3)\n", line);
	} else if (id == 150001) {
		fputs("1,2,\"abc\n", file);
		snprintf(note, capacity, "  line %llu: field 3 (name): bad quoting\n", line);
	} else if (id == 150002) {
		fprintf(file, "%llu,1,%033d\n", (unsigned long long)id, 0);
		snprintf(note, capacity, "  line %llu: field 3 (name): string too long\n", line);
	} else {
		write_good_line(file, id);
	}
	return note;
}

static void test_malformed_report(void **state)
{
	(void)state;
	const uint64_t line_count = 200000;
	char path[256];
	FILE *file = file_create("bad.csv", path, sizeof(path));
	fputs(HEADER, file);
	uint64_t bad_count = 0;
	static char expected[REPORT_LENGTH_MAX];
	memset(expected, 0, sizeof(expected));
	FILE *expected_stream = fmemopen(expected, sizeof(expected), "w");
	assert_non_null(expected_stream);
	char notes[MALFORMED_MAX][128];
	for (uint64_t id = 1; id <= line_count; id++) {
		char note[128];
		write_maybe_bad(file, id, note, sizeof(note));
		if (note[0] != '\0') {
			assert_true(bad_count < MALFORMED_MAX);
			memcpy(notes[bad_count], note, sizeof(note));
			bad_count++;
		}
	}
	assert_int_equal(fclose(file), 0);
	assert_int_equal(bad_count, 24); /* 20 multiples of 9973, and four others */
	fprintf(expected_stream, "weir: %s: skipped %llu malformed lines of %llu\n", path,
		(unsigned long long)bad_count, (unsigned long long)line_count);
	for (uint64_t i = 0; i < WEIR_CSV_SOURCE_FAULTS_MAX; i++)
		fputs(notes[i], expected_stream);
	fprintf(expected_stream, "  (%llu more not shown)\n",
		(unsigned long long)(bad_count - WEIR_CSV_SOURCE_FAULTS_MAX));
	assert_int_equal(fclose(expected_stream), 0);

	for (size_t c = 0; c < sizeof(partition_counts) / sizeof(partition_counts[0]); c++) {
		struct weir_csv_source *csv = create_ok(path);
		struct totals totals = {0};
		drive(csv, partition_counts[c], &totals);
		assert_int_equal(totals.record_count, line_count - bad_count);
		assert_int_equal(totals.wrong_count, 0);
		assert_int_equal(weir_csv_source_line_count(csv), line_count);
		assert_int_equal(weir_csv_source_skipped_count(csv), bad_count);
		const char *text = report_text(csv);
		if (strcmp(text, expected) != 0)
			fail_msg("%u partitions: report\n%s\nexpected\n%s", partition_counts[c],
				 text, expected);
		weir_csv_source_destroy(csv);
	}
	unlink(path);
}

/* ---- create errors ---- */

static void expect_create_error(const char *path, int expected_rc, const char *phrase)
{
	struct weir_csv_source *csv = NULL;
	char error[512] = "";
	int rc = weir_csv_source_create(&csv, path, &schema, error, sizeof(error));
	if (rc != expected_rc)
		fail_msg("%s: expected %d, got %d (%s)", path, expected_rc, rc, error);
	assert_null(csv);
	assert_non_null(strstr(error, path));
	if (strstr(error, phrase) == NULL)
		fail_msg("%s: message '%s' lacks '%s'", path, error, phrase);
}

static void test_create_errors(void **state)
{
	(void)state;
	char path[256];
	path_of(path, sizeof(path), "missing.csv");
	expect_create_error(path, -ENOENT, "No such file");
	expect_create_error(directory, -EISDIR, "directory");
	file_write_text("empty.csv", "", 0, path, sizeof(path));
	expect_create_error(path, -EINVAL, "empty");
	unlink(path);
	file_write_text("blank.csv", "\n1,2,a\n", 7, path, sizeof(path));
	expect_create_error(path, -EINVAL, "header line is empty");
	unlink(path);
	const char *two = "id,value\n1,2\n";
	file_write_text("two.csv", two, strlen(two), path, sizeof(path));
	expect_create_error(path, -EINVAL, "header has 2 columns, schema has 3");
	unlink(path);
	const char *quote = "id,\"value,name\n";
	file_write_text("quote.csv", quote, strlen(quote), path, sizeof(path));
	expect_create_error(path, -EINVAL, "quot");
	unlink(path);

	/* A header longer than the line limit is refused, not searched for forever. */
	FILE *file = file_create("wide.csv", path, sizeof(path));
	for (size_t i = 0; i < WEIR_CSV_LINE_LENGTH_MAX + 10; i++)
		fputc(i % 2 ? ',' : 'h', file);
	fputc('\n', file);
	assert_int_equal(fclose(file), 0);
	expect_create_error(path, -EINVAL, "header line longer");
	unlink(path);

	/* Other names only warn (on stderr); the source works. */
	const char *renamed = "ident,val,name\n1,-4,b\n";
	file_write_text("renamed.csv", renamed, strlen(renamed), path, sizeof(path));
	struct weir_csv_source *csv = create_ok(path);
	struct totals totals = {0};
	drive(csv, 2, &totals);
	assert_int_equal(totals.record_count, 1);
	weir_csv_source_destroy(csv);
	unlink(path);
	weir_csv_source_destroy(NULL);
}

static void test_open_misuse(void **state)
{
	(void)state;
	char path[256];
	const char *text = HEADER "1,-4,b\n";
	file_write_text("misuse.csv", text, strlen(text), path, sizeof(path));
	struct weir_csv_source *csv = create_ok(path);
	struct weir_source source = weir_csv_source_as_source(csv);
	void *partition = NULL;
	expect_assert_failure(source.vtable->open(source.ctx, 3, 3, arena, &partition));
	assert_null(partition);
	weir_csv_source_destroy(csv);
	unlink(path);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(directory, sizeof(directory), "/tmp/weir-csv-XXXXXX");
	if (mkdtemp(directory) == NULL)
		return -1;
	char error[256];
	if (weir_schema_parse(&schema, SCHEMA_TEXT, error, sizeof(error)) != 0)
		return -1;
	return weir_mem_arena_create(&arena) == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return rmdir(directory);
}

int main(void)
{
	struct io_uring ring;
	int rc = io_uring_queue_init(4, &ring, 0);
	if (rc == -ENOSYS || rc == -EPERM) {
		fprintf(stderr, "test_io_csv_source: io_uring unavailable (%s), skipped\n",
			strerror(-rc));
		return 77;
	}
	if (rc == 0)
		io_uring_queue_exit(&ring);

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_line_once), cmocka_unit_test(test_small_files),
		cmocka_unit_test(test_long_lines),	cmocka_unit_test(test_malformed_report),
		cmocka_unit_test(test_create_errors),	cmocka_unit_test(test_open_misuse),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
