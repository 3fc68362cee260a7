/* Goal: io/stage's two-phase contract on real files.  A fresh recover leaves exactly the header
 * and removes a previous run's stage files (and nothing else); appends to interleaved epochs
 * reach the output only at publish, in epoch order, and prepare says the length they will
 * give; recover brings the output to exactly a checkpoint's length whatever a crash left: it
 * deletes the stage files of later epochs, cuts back what an unrecorded publish added, and
 * finishes a publish that was cut short (at every interesting prefix, and by a real kill at
 * the sink.publish point), but refuses an output shorter than any publish explains with
 * -EBADMSG naming the file, touching nothing.  Epochs with no bytes and epochs larger than
 * the 1 MiB copy buffer work; two sinks share a state dir; misuse asserts; injected faults
 * (fsync-eio in prepare and publish, write-eio in append and publish, enospc in append) are
 * sticky -errno with the call and the file in the message, a publish they stopped is finished
 * by the next recover, and short writes still give the right bytes.
 *
 * Method: each test works in its own mkdtemp folder under /tmp (the state dir and the output
 * file in it), removed at the end.  A model keeps the bytes appended to each epoch (seeded
 * random lengths and contents: the seed is printed, WEIR_SEED=n replays), and the output is
 * compared with the header followed by the epochs in order.  A crash is a destroy without
 * publish, an interrupted publish is the prefix of the staged bytes written to the output by
 * the test; the checkpoint handed to recover has only epoch and this sink's sink_bytes set
 * (the other sink's is a wrong length that must not be used).  WEIR_FAULT is read once per
 * process, so each fault case forks and re-executes this binary (/proc/self/exe --fault-child
 * CASE DIR) with the rule in its environment; the child runs a fixed scenario on patterned
 * bytes and exits 0 when every call returned what it expected, and the parent then checks
 * the files and recovers from what the child left.  The parent never sets WEIR_FAULT. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h> /* before cmocka.h, which redefines malloc under UNIT_TESTING */
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/test_rng.h"

#include "core/checkpoint.h"
#include "core/fault.h"
#include "core/mem.h"
#include "io/stage.h"

#define EPOCHS_MAX 8u
#define SCRATCH_LENGTH (16u << 20)
#define COPY_LENGTH (1u << 20) /* io/stage.c's copy buffer */
#define WAITING_MAX 64u	       /* io/stage.c: epochs that may wait at once */
#define CHILD_E1 6000u	       /* bytes of epoch 1 in the fault child */
#define CHILD_E2 2500u

static const char header[] = "ts,card,amount\n";
#define HEADER_LENGTH (sizeof(header) - 1)

struct fixture {
	char root[64];
	char state_dir[96];
	char output[96];
	int fd;
	uint32_t index;
	struct weir_stage *stage;
	const char *header;
	size_t header_length;
	uint8_t *data[EPOCHS_MAX + 1]; /* the model: bytes appended to each epoch */
	size_t length[EPOCHS_MAX + 1];
};

static struct fixture fx;
static uint8_t *scratch;  /* an expected output */
static uint8_t *readback; /* the output as read */
static struct weir_checkpoint_info info;

/* ---- files ---- */

static void remove_tree(const char *path)
{
	DIR *stream = opendir(path);
	assert_non_null(stream);
	struct dirent *entry;
	char child[PATH_MAX];
	while ((entry = readdir(stream)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		snprintf(child, sizeof(child), "%s/%s", path, entry->d_name);
		struct stat status;
		assert_int_equal(lstat(child, &status), 0);
		if (S_ISDIR(status.st_mode))
			remove_tree(child);
		else
			assert_int_equal(unlink(child), 0);
	}
	closedir(stream);
	assert_int_equal(rmdir(path), 0);
}

static bool exists(const char *path)
{
	struct stat status;
	return stat(path, &status) == 0;
}

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static void stage_path(uint64_t epoch, char *path, size_t length)
{
	snprintf(path, length, "%s/output-%u/%020llu.stage", fx.state_dir, fx.index,
		 (unsigned long long)epoch);
}

static bool staged(uint64_t epoch)
{
	char path[PATH_MAX];
	stage_path(epoch, path, sizeof(path));
	return exists(path);
}

/* Files in this sink's stage folder. */
static uint32_t stage_file_count(void)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/output-%u", fx.state_dir, fx.index);
	DIR *stream = opendir(path);
	assert_non_null(stream);
	uint32_t count = 0;
	for (struct dirent *entry = readdir(stream); entry != NULL; entry = readdir(stream))
		count += strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0;
	closedir(stream);
	return count;
}

static uint64_t output_length(void)
{
	struct stat status;
	assert_int_equal(fstat(fx.fd, &status), 0);
	return (uint64_t)status.st_size;
}

/* ---- the fixture and the model ---- */

static void begin(uint32_t index)
{
	memset(&fx, 0, sizeof(fx));
	strcpy(fx.root, "/tmp/weir-stage-XXXXXX");
	assert_non_null(mkdtemp(fx.root));
	snprintf(fx.state_dir, sizeof(fx.state_dir), "%s/state", fx.root);
	assert_int_equal(mkdir(fx.state_dir, 0755), 0);
	snprintf(fx.output, sizeof(fx.output), "%s/out.csv", fx.root);
	fx.fd = open(fx.output, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fx.fd >= 0);
	fx.index = index;
	fx.header = header;
	fx.header_length = HEADER_LENGTH;
}

static void stage_open(void)
{
	char error[512] = "";
	int rc = weir_stage_create(&fx.stage, fx.state_dir, fx.index, fx.fd, fx.output, error,
				   sizeof(error));
	if (rc != 0)
		fail_msg("weir_stage_create: %d %s", rc, error);
	assert_string_equal(weir_stage_error(fx.stage), "");
}

/* A crash, as far as the stage knows: its files stay as they are. */
static void stage_close(void)
{
	weir_stage_destroy(fx.stage);
	fx.stage = NULL;
}

static void model_forget(uint64_t epoch)
{
	weir_mem_free(fx.data[epoch], WEIR_MEM_ARENA_DEFAULT);
	fx.data[epoch] = NULL;
	fx.length[epoch] = 0;
}

static void end(void)
{
	stage_close();
	close(fx.fd);
	remove_tree(fx.root);
	for (uint64_t e = 0; e <= EPOCHS_MAX; e++)
		model_forget(e);
}

/* Room for @length more bytes of @epoch in the model.  Returns: where they go. */
static uint8_t *model_grow(uint64_t epoch, size_t length)
{
	assert_true(epoch >= 1 && epoch <= EPOCHS_MAX);
	uint8_t *grown = weir_mem_realloc(fx.data[epoch], fx.length[epoch] + length + 1,
					  WEIR_MEM_ARENA_DEFAULT);
	assert_non_null(grown);
	fx.data[epoch] = grown;
	uint8_t *at = grown + fx.length[epoch];
	fx.length[epoch] += length;
	return at;
}

/* Appends @length random bytes to @epoch, in the stage and in the model. */
static void put(uint64_t epoch, size_t length)
{
	uint8_t *at = model_grow(epoch, length);
	for (size_t i = 0; i < length; i += 8) {
		uint64_t word = test_rng_next();
		memcpy(at + i, &word, length - i < 8 ? length - i : 8);
	}
	int rc = weir_stage_append(fx.stage, epoch, at, length);
	if (rc != 0)
		fail_msg("append %zu bytes to epoch %llu: %d %s", length,
			 (unsigned long long)epoch, rc, weir_stage_error(fx.stage));
}

static size_t some_length(void)
{
	return 1 + test_rng_next() % 3000;
}

/* The output once epochs <= @through are published, in scratch.  Returns: its length. */
static size_t expected_through(uint64_t through)
{
	size_t length = fx.header_length;
	memcpy(scratch, fx.header, fx.header_length);
	for (uint64_t e = 1; e <= through && e <= EPOCHS_MAX; e++) {
		assert_true(length + fx.length[e] <= SCRATCH_LENGTH);
		if (fx.length[e] > 0)
			memcpy(scratch + length, fx.data[e], fx.length[e]);
		length += fx.length[e];
	}
	return length;
}

static void assert_output(const uint8_t *expected, size_t length)
{
	uint64_t have = output_length();
	if (have != length)
		fail_msg("%s has %llu bytes, expected %zu", fx.output, (unsigned long long)have,
			 length);
	assert_int_equal(pread(fx.fd, readback, length, 0), (ssize_t)length);
	for (size_t i = 0; i < length; i++) {
		if (readback[i] != expected[i])
			fail_msg("%s: byte %zu is 0x%02x, expected 0x%02x", fx.output, i,
				 readback[i], expected[i]);
	}
}

/* The output is the header and epochs <= @through, and the stage says so. */
static void assert_published(uint64_t through)
{
	size_t length = expected_through(through);
	assert_output(scratch, length);
	assert_int_equal(weir_stage_published_length(fx.stage), length);
}

/* ---- calls that must succeed ---- */

static void recover_fresh(const char *head)
{
	fx.header = head;
	fx.header_length = strlen(head);
	int rc = weir_stage_recover(fx.stage, NULL, head, strlen(head));
	if (rc != 0)
		fail_msg("fresh recover: %d %s", rc, weir_stage_error(fx.stage));
}

/* Checkpoint @epoch that published @bytes of this sink; the other sink's count is wrong on
 * purpose. */
static const struct weir_checkpoint_info *checkpoint(uint64_t epoch, uint64_t bytes)
{
	memset(&info, 0, sizeof(info));
	info.epoch = epoch;
	info.sink_bytes[0] = info.sink_bytes[1] = bytes + 977;
	info.sink_bytes[fx.index] = bytes;
	return &info;
}

static void recover_at(uint64_t epoch, uint64_t bytes)
{
	int rc = weir_stage_recover(fx.stage, checkpoint(epoch, bytes), fx.header,
				    fx.header_length);
	if (rc != 0)
		fail_msg("recover at %llu: %d %s", (unsigned long long)epoch, rc,
			 weir_stage_error(fx.stage));
}

static uint64_t prepare(uint64_t epoch)
{
	uint64_t after = UINT64_MAX;
	int rc = weir_stage_prepare(fx.stage, epoch, &after);
	if (rc != 0)
		fail_msg("prepare %llu: %d %s", (unsigned long long)epoch, rc,
			 weir_stage_error(fx.stage));
	return after;
}

static void publish(uint64_t epoch)
{
	int rc = weir_stage_publish(fx.stage, epoch);
	if (rc != 0)
		fail_msg("publish %llu: %d %s", (unsigned long long)epoch, rc,
			 weir_stage_error(fx.stage));
}

/* A fresh stage with epochs 1..@through published, @length random bytes each. */
static void start_published(uint64_t through, size_t length)
{
	stage_open();
	recover_fresh(header);
	for (uint64_t e = 1; e <= through; e++)
		put(e, length);
	if (through > 0) {
		assert_int_equal(prepare(through), expected_through(through));
		publish(through);
	}
}

/* ---- tests ---- */

static void fresh_recover_writes_only_the_header(void **state)
{
	(void)state;
	char path[PATH_MAX];
	begin(0);
	/* A previous run's output, stage files of any epoch, and files that are not weir's. */
	assert_int_equal(write(fx.fd, "old output, longer than the header\n", 35), 35);
	snprintf(path, sizeof(path), "%s/output-0", fx.state_dir);
	assert_int_equal(mkdir(path, 0755), 0);
	for (uint64_t epoch = 1; epoch <= 7; epoch += 3) {
		stage_path(epoch, path, sizeof(path));
		write_file(path, "staged by a run that is gone\n");
	}
	snprintf(path, sizeof(path), "%s/output-0/12.stage", fx.state_dir);
	write_file(path, "not a stage file name\n");
	stage_open();
	recover_fresh(header);
	assert_published(0);
	assert_int_equal(weir_stage_published_length(fx.stage), HEADER_LENGTH);
	assert_false(staged(1) || staged(4) || staged(7));
	assert_true(exists(path));
	assert_int_equal(stage_file_count(), 1);
	assert_string_equal(weir_stage_error(fx.stage), "");
	stage_close();
	/* No header: an empty output. */
	stage_open();
	recover_fresh("");
	assert_published(0);
	assert_int_equal(output_length(), 0);
	end();
}

static void create_names_a_missing_state_dir(void **state)
{
	(void)state;
	char missing[PATH_MAX], error[512] = "";
	begin(0);
	snprintf(missing, sizeof(missing), "%s/nowhere/deeper", fx.root);
	struct weir_stage *untouched = (struct weir_stage *)&fx;
	fx.stage = untouched;
	int rc = weir_stage_create(&fx.stage, missing, 0, fx.fd, fx.output, error, sizeof(error));
	assert_int_equal(rc, -ENOENT);
	assert_true(fx.stage == untouched);
	assert_non_null(strstr(error, missing));
	fx.stage = NULL;
	end();
}

static void interleaved_epochs_publish_in_order(void **state)
{
	(void)state;
	test_rng_seed();
	begin(0);
	stage_open();
	recover_fresh(header);
	/* Epoch 2 starts before all of 1 is in, 3 before all of 2. */
	put(2, some_length());
	put(1, some_length());
	put(3, some_length());
	put(2, some_length());
	put(1, some_length());
	put(1, some_length());
	uint64_t after = prepare(2);
	assert_int_equal(after, expected_through(2));
	assert_int_equal(prepare(2), after); /* again: the same, nothing more to sync */
	assert_published(0);		     /* nothing visible before publish */
	assert_true(staged(1) && staged(2) && staged(3));
	put(3, some_length()); /* 3 is still open */
	publish(2);
	assert_published(2);
	assert_false(staged(1) || staged(2));
	assert_true(staged(3));
	put(4, some_length());
	put(3, some_length());
	assert_int_equal(prepare(4), expected_through(4));
	assert_published(2);
	publish(4);
	assert_published(4);
	assert_int_equal(stage_file_count(), 0);
	end();
}

static void recover_drops_later_epochs(void **state)
{
	(void)state;
	test_rng_seed();
	begin(0);
	start_published(2, 1000);
	uint64_t published = expected_through(2);
	put(3, some_length());
	put(4, some_length());
	prepare(3); /* durable, but manifest 3 was never written */
	stage_close();
	stage_open();
	recover_at(2, published);
	assert_published(2);
	assert_int_equal(stage_file_count(), 0);
	/* The replay makes epoch 3 again, perhaps with other bytes. */
	model_forget(3);
	model_forget(4);
	put(3, some_length());
	assert_int_equal(prepare(3), expected_through(3));
	publish(3);
	assert_published(3);
	end();
}

static void recover_cuts_an_unrecorded_publish(void **state)
{
	(void)state;
	test_rng_seed();
	begin(0);
	start_published(2, 1500);
	uint64_t published = expected_through(2);
	put(3, some_length());
	prepare(3);
	publish(3); /* and the crash lost manifest 3 */
	put(4, some_length());
	stage_close();
	assert_int_equal(output_length(), expected_through(3));
	stage_open();
	recover_at(2, published);
	assert_published(2);
	assert_int_equal(stage_file_count(), 0);
	end();
}

/* Publish of epochs 2 and 3 (1 was published before) stopped after @cut of their bytes. */
static void interrupted_publish(size_t cut)
{
	begin(0);
	start_published(1, 900);
	size_t base = expected_through(1);
	put(2, 700);
	put(3, 500);
	put(2, 300);
	uint64_t full = prepare(3);
	put(4, 50); /* a later epoch: not part of it */
	size_t length = expected_through(3);
	assert_int_equal(full, length);
	assert_true(cut <= length - base);
	assert_int_equal(pwrite(fx.fd, scratch + base, cut, (off_t)base), (ssize_t)cut);
	stage_close();
	stage_open();
	recover_at(3, full);
	assert_published(3);
	assert_int_equal(stage_file_count(), 0);
	end();
}

static void recover_finishes_an_interrupted_publish(void **state)
{
	(void)state;
	test_rng_seed();
	/* Nothing, one byte, around the end of epoch 2, all but one byte, all of it. */
	static const size_t cuts[] = {0, 1, 999, 1000, 1001, 1499, 1500};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		interrupted_publish(cuts[i]);
}

static void expect_bad_output(uint64_t epoch, uint64_t bytes, uint64_t left)
{
	stage_open();
	int rc = weir_stage_recover(fx.stage, checkpoint(epoch, bytes), header, HEADER_LENGTH);
	assert_int_equal(rc, -EBADMSG);
	const char *error = weir_stage_error(fx.stage);
	if (strstr(error, fx.output) == NULL || strstr(error, "changed outside weir") == NULL)
		fail_msg("'%s' does not name %s", error, fx.output);
	assert_int_equal(output_length(), left); /* nothing was cut or copied */
	/* The error sticks. */
	assert_int_equal(weir_stage_append(fx.stage, epoch + 1, "x", 1), -EIO);
	uint64_t after = 0;
	assert_int_equal(weir_stage_prepare(fx.stage, epoch + 1, &after), -EIO);
	assert_int_equal(weir_stage_publish(fx.stage, epoch + 1), -EIO);
	stage_close();
}

static void recover_refuses_an_output_too_short(void **state)
{
	(void)state;
	test_rng_seed();
	begin(0);
	start_published(1, 800);
	uint64_t before = expected_through(1);
	put(2, 600);
	uint64_t full = prepare(2);
	stage_close();
	/* Shorter than checkpoint 1 left it: epoch 2's stage file cannot explain that. */
	assert_int_equal(ftruncate(fx.fd, (off_t)before - 1), 0);
	expect_bad_output(2, full, before - 1);
	assert_true(staged(2)); /* kept for whoever looks into it */
	/* Published whole, stage files gone, then cut short by someone. */
	model_forget(1);
	model_forget(2);
	start_published(2, 400);
	stage_close();
	full = expected_through(2);
	assert_int_equal(ftruncate(fx.fd, (off_t)full - 1), 0);
	expect_bad_output(2, full, full - 1);
	end();
}

static void epochs_without_bytes(void **state)
{
	(void)state;
	test_rng_seed();
	begin(0);
	stage_open();
	recover_fresh(header);
	put(1, 0); /* an epoch with a stage file but no bytes */
	assert_true(staged(1));
	assert_int_equal(prepare(1), HEADER_LENGTH);
	publish(1);
	assert_published(1);
	assert_false(staged(1));
	assert_int_equal(prepare(2), HEADER_LENGTH); /* no appends at all */
	publish(2);
	assert_published(2);
	put(4, 0);
	put(3, 200);
	put(4, 0);
	assert_int_equal(prepare(4), expected_through(4));
	publish(4);
	assert_published(4);
	put(5, 0);
	prepare(5);
	stage_close();
	stage_open();
	recover_at(5, expected_through(5));
	assert_published(5);
	assert_int_equal(stage_file_count(), 0);
	stage_close();
	/* No header either: the output stays empty. */
	stage_open();
	recover_fresh("");
	model_forget(3);
	put(1, 0);
	assert_int_equal(prepare(2), 0);
	publish(2);
	assert_published(2);
	assert_int_equal(output_length(), 0);
	end();
}

static void epochs_larger_than_the_copy_buffer(void **state)
{
	(void)state;
	test_rng_seed();
	begin(0);
	stage_open();
	recover_fresh(header);
	put(1, 2 * COPY_LENGTH + 12345);
	put(2, 77);
	put(1, COPY_LENGTH - 1);
	put(1, COPY_LENGTH + 1);
	assert_int_equal(prepare(2), expected_through(2));
	publish(2);
	assert_published(2);
	/* A publish of a large epoch cut short in its second copy. */
	size_t base = expected_through(2);
	put(3, 3 * COPY_LENGTH + 5);
	uint64_t full = prepare(3);
	assert_int_equal(full, expected_through(3));
	size_t cut = COPY_LENGTH + 4097;
	assert_int_equal(pwrite(fx.fd, scratch + base, cut, (off_t)base), (ssize_t)cut);
	stage_close();
	stage_open();
	recover_at(3, full);
	assert_published(3);
	end();
}

/* Sink 1 (the fixture's) and sink 0 in one state dir, recovered from one checkpoint. */
static void two_sinks_share_a_state_dir(void **state)
{
	(void)state;
	test_rng_seed();
	char other_output[PATH_MAX], error[512] = "";
	begin(1);
	snprintf(other_output, sizeof(other_output), "%s/rows0.csv", fx.root);
	int other_fd = open(other_output, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(other_fd >= 0);
	struct weir_stage *other = NULL;
	assert_int_equal(weir_stage_create(&other, fx.state_dir, 0, other_fd, other_output, error,
					   sizeof(error)),
			 0);
	assert_int_equal(weir_stage_recover(other, NULL, "a\n", 2), 0);
	assert_int_equal(weir_stage_append(other, 1, "row of sink 0\n", 14), 0);
	assert_int_equal(weir_stage_append(other, 2, "later row\n", 10), 0);
	start_published(1, 300);
	uint64_t after = 0;
	assert_int_equal(weir_stage_prepare(other, 1, &after), 0);
	assert_int_equal(after, 16);
	assert_int_equal(weir_stage_publish(other, 1), 0);
	put(2, 100);
	weir_stage_destroy(other);
	stage_close();
	/* Both from one checkpoint, each by its own count. */
	assert_int_equal(weir_stage_create(&other, fx.state_dir, 0, other_fd, other_output, error,
					   sizeof(error)),
			 0);
	memset(&info, 0, sizeof(info));
	info.epoch = 1;
	info.sink_bytes[0] = 16;
	info.sink_bytes[1] = expected_through(1);
	assert_int_equal(weir_stage_recover(other, &info, "a\n", 2), 0);
	stage_open();
	assert_int_equal(weir_stage_recover(fx.stage, &info, header, HEADER_LENGTH), 0);
	assert_published(1);
	assert_int_equal(stage_file_count(), 0);
	char got[32] = "";
	assert_int_equal(pread(other_fd, got, sizeof(got), 0), 16);
	assert_memory_equal(got, "a\nrow of sink 0\n", 16);
	weir_stage_destroy(other);
	close(other_fd);
	end();
}

static void too_many_waiting_epochs(void **state)
{
	(void)state;
	begin(0);
	stage_open();
	recover_fresh(header);
	for (uint64_t epoch = 1; epoch <= WAITING_MAX; epoch++)
		assert_int_equal(weir_stage_append(fx.stage, epoch, "r\n", 2), 0);
	int rc = weir_stage_append(fx.stage, WAITING_MAX + 1, "r\n", 2);
	assert_true(rc == -EIO || rc == -ENOSPC);
	assert_non_null(strstr(weir_stage_error(fx.stage), "more than 64 epochs"));
	assert_non_null(strstr(weir_stage_error(fx.stage), fx.output));
	assert_false(staged(WAITING_MAX + 1));
	end();
}

static void misuse_asserts(void **state)
{
	(void)state;
#if WEIR_ASSERTS
	test_rng_seed();
	begin(0);
	start_published(2, 100);
	/* An epoch that is published already. */
	expect_assert_failure(weir_stage_append(fx.stage, 2, "x", 1));
	expect_assert_failure(weir_stage_append(fx.stage, 1, "x", 1));
	/* Bytes for an epoch after its prepare. */
	put(3, 10);
	prepare(3);
	expect_assert_failure(weir_stage_append(fx.stage, 3, "x", 1));
	publish(3);
	/* Publish before prepare. */
	put(4, 10);
	expect_assert_failure(weir_stage_publish(fx.stage, 4));
	assert_published(3);
	end();
#else
	skip();
#endif
}

/* ---- fault injection, in a re-executed child ---- */

static void pattern(uint8_t *bytes, size_t length, uint64_t epoch)
{
	for (size_t i = 0; i < length; i++)
		bytes[i] = i % 64 == 63 ? '\n' : (uint8_t)('a' + (i * 7 + epoch * 13) % 26);
}

struct child {
	const char *name;
	struct weir_stage *stage;
	int fd;
	char output[PATH_MAX];
	char stage_dir[PATH_MAX];
	uint8_t e1[CHILD_E1];
	uint8_t e2[CHILD_E2];
};

static struct child kid;

#define CHILD_EXPECT(cond)                                                                     \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "fault child %s, line %d: %s (error '%s')\n", kid.name,  \
				__LINE__, #cond, weir_stage_error(kid.stage));                 \
			return 1;                                                              \
		}                                                                              \
	} while (0)

static bool error_says(const char *first, const char *second)
{
	const char *error = weir_stage_error(kid.stage);
	return strstr(error, first) != NULL && strstr(error, second) != NULL;
}

static uint64_t kid_length(void)
{
	struct stat status;
	return fstat(kid.fd, &status) == 0 ? (uint64_t)status.st_size : UINT64_MAX;
}

/* Appends e1 to epoch 1 (and e2 to epoch 2 when @both), prepares and publishes. */
static int child_publish(bool both)
{
	uint64_t epochs = both ? 2 : 1, after = 0;
	CHILD_EXPECT(weir_stage_append(kid.stage, 1, kid.e1, CHILD_E1) == 0);
	CHILD_EXPECT(!both || weir_stage_append(kid.stage, 2, kid.e2, CHILD_E2) == 0);
	CHILD_EXPECT(weir_stage_prepare(kid.stage, epochs, &after) == 0);
	CHILD_EXPECT(after == HEADER_LENGTH + CHILD_E1 + (both ? CHILD_E2 : 0));
	CHILD_EXPECT(weir_stage_publish(kid.stage, epochs) == 0);
	CHILD_EXPECT(kid_length() == after);
	return 0;
}

static int child_scenario(void)
{
	const char *name = kid.name;
	uint64_t after = 0;
	if (strcmp(name, "prepare-fsync") == 0 || strcmp(name, "dir-fsync") == 0) {
		CHILD_EXPECT(weir_stage_append(kid.stage, 1, kid.e1, CHILD_E1) == 0);
		CHILD_EXPECT(weir_stage_prepare(kid.stage, 1, &after) == -EIO);
		CHILD_EXPECT(name[0] == 'd' ? error_says("fsync of", kid.stage_dir)
					    : error_says("fdatasync", kid.output));
		CHILD_EXPECT(weir_stage_publish(kid.stage, 1) == -EIO); /* sticky */
		CHILD_EXPECT(weir_stage_append(kid.stage, 2, kid.e2, CHILD_E2) == -EIO);
		CHILD_EXPECT(kid_length() == HEADER_LENGTH);
	} else if (strcmp(name, "publish-fsync") == 0 || strcmp(name, "publish-eio") == 0) {
		CHILD_EXPECT(weir_stage_append(kid.stage, 1, kid.e1, CHILD_E1) == 0);
		CHILD_EXPECT(weir_stage_prepare(kid.stage, 1, &after) == 0);
		CHILD_EXPECT(weir_stage_publish(kid.stage, 1) == -EIO);
		CHILD_EXPECT(name[8] == 'f' ? error_says("fdatasync of", kid.output)
					    : error_says("writing", kid.output));
		CHILD_EXPECT(weir_stage_published_length(kid.stage) == HEADER_LENGTH);
		CHILD_EXPECT(weir_stage_publish(kid.stage, 1) == -EIO);
	} else if (strcmp(name, "append-eio") == 0 || strcmp(name, "append-enospc") == 0) {
		int want = strcmp(name, "append-eio") == 0 ? -EIO : -ENOSPC;
		CHILD_EXPECT(weir_stage_append(kid.stage, 1, kid.e1, CHILD_E1) == 0);
		CHILD_EXPECT(weir_stage_append(kid.stage, 1, kid.e2, CHILD_E2) == want);
		CHILD_EXPECT(error_says("00000000000000000001.stage", "at byte 6000"));
		CHILD_EXPECT(weir_stage_append(kid.stage, 2, kid.e2, CHILD_E2) == -EIO);
		CHILD_EXPECT(weir_stage_prepare(kid.stage, 1, &after) == -EIO);
	} else if (strcmp(name, "short-writes") == 0) {
		return child_publish(true);
	} else if (strcmp(name, "kill") == 0) {
		child_publish(true);
		fprintf(stderr, "fault child: not killed in publish\n");
		return 2;
	} else {
		fprintf(stderr, "fault child: no case '%s'\n", name);
		return 3;
	}
	return 0;
}

/* The child: a fresh stage on ROOT/out.csv with the header, then the scenario @name. */
static int fault_child(const char *name, const char *root)
{
	if (!weir_fault_enabled() || weir_fault_config_error() != NULL) {
		fprintf(stderr, "fault child: WEIR_FAULT not in effect\n");
		return 3;
	}
	char state_dir[512], error[512] = "";
	kid.name = name;
	pattern(kid.e1, CHILD_E1, 1);
	pattern(kid.e2, CHILD_E2, 2);
	snprintf(state_dir, sizeof(state_dir), "%s/state", root);
	snprintf(kid.stage_dir, sizeof(kid.stage_dir), "%s/output-0", state_dir);
	snprintf(kid.output, sizeof(kid.output), "%s/out.csv", root);
	kid.fd = open(kid.output, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (kid.fd < 0 || weir_stage_create(&kid.stage, state_dir, 0, kid.fd, kid.output, error,
					    sizeof(error)) != 0) {
		fprintf(stderr, "fault child: cannot start: %s\n", error);
		return 3;
	}
	int rc = weir_stage_recover(kid.stage, NULL, header, HEADER_LENGTH);
	if (rc != 0) {
		fprintf(stderr, "fault child: recover: %s\n", weir_stage_error(kid.stage));
		rc = 1;
	} else {
		rc = child_scenario();
	}
	weir_stage_destroy(kid.stage);
	close(kid.fd);
	return rc;
}

/* Runs case @name with WEIR_FAULT=@rule in the fixture's folder; the model gets the child's
 * epochs. */
static void fault_case(const char *name, const char *rule, bool killed)
{
	pattern(model_grow(1, CHILD_E1), CHILD_E1, 1);
	pattern(model_grow(2, CHILD_E2), CHILD_E2, 2);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *args[] = {(char *)"test_io_stage", (char *)"--fault-child", (char *)name,
				fx.root, NULL};
		setenv("WEIR_FAULT", rule, 1);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	bool as_expected = killed ? WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL
				  : WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (!as_expected)
		fail_msg("WEIR_FAULT=%s (%s): child status 0x%x", rule, name, status);
}

static void faults_in_prepare(void **state)
{
	(void)state;
	static const char *const cases[][2] = {{"prepare-fsync", "fsync-eio@2"},
					       {"dir-fsync", "fsync-eio@3"}};
	for (size_t c = 0; c < 2; c++) {
		begin(0);
		fault_case(cases[c][0], cases[c][1], false);
		assert_output((const uint8_t *)header, HEADER_LENGTH);
		/* Nothing was checkpointed: the next run starts afresh. */
		stage_open();
		recover_fresh(header);
		assert_published(0);
		assert_int_equal(stage_file_count(), 0);
		end();
	}
}

static void faults_in_append(void **state)
{
	(void)state;
	static const char *const cases[][2] = {{"append-eio", "write-eio@3"},
					       {"append-enospc", "enospc@3"}};
	for (size_t c = 0; c < 2; c++) {
		begin(0);
		fault_case(cases[c][0], cases[c][1], false); /* write 1: the header */
		assert_output((const uint8_t *)header, HEADER_LENGTH);
		end();
	}
}

/* A publish that failed after manifest 1 was written is finished by the next recover. */
static void faults_in_publish(void **state)
{
	(void)state;
	static const char *const cases[][2] = {{"publish-fsync", "fsync-eio@4"},
					       {"publish-eio", "write-eio@3"}};
	for (size_t c = 0; c < 2; c++) {
		begin(0);
		fault_case(cases[c][0], cases[c][1], false);
		stage_open();
		recover_at(1, expected_through(1));
		assert_published(1);
		assert_int_equal(stage_file_count(), 0);
		end();
	}
}

static void short_writes_still_write_everything(void **state)
{
	(void)state;
	/* A cut write's rest is the next write.  Writes 1-3: the header (cut twice), 4-5 and
	 * 6-7: the appends, 8-9 and 10-11: the copies of epochs 1 and 2. */
	begin(0);
	fault_case("short-writes",
		   "short-write@1,short-write@2,short-write@4,short-write@6,short-write@8,"
		   "short-write@10",
		   false);
	assert_output(scratch, expected_through(2));
	assert_int_equal(stage_file_count(), 0);
	end();
}

/* Killed in publish after epoch 1's copy (@1) or after both (@2), before the fdatasync. */
static void killed_in_publish(void **state)
{
	(void)state;
	for (uint64_t copied = 1; copied <= 2; copied++) {
		char rule[64];
		snprintf(rule, sizeof(rule), "kill:sink.publish@%llu", (unsigned long long)copied);
		begin(0);
		fault_case("kill", rule, true);
		assert_output(scratch, expected_through(copied));
		assert_true(staged(1) && staged(2));
		stage_open();
		recover_at(2, expected_through(2));
		assert_published(2);
		assert_int_equal(stage_file_count(), 0);
		end();
	}
}

static int group_setup(void **state)
{
	(void)state;
	scratch = weir_mem_alloc(SCRATCH_LENGTH, 64, WEIR_MEM_ARENA_DEFAULT);
	readback = weir_mem_alloc(SCRATCH_LENGTH, 64, WEIR_MEM_ARENA_DEFAULT);
	return scratch != NULL && readback != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	weir_mem_free(scratch, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(readback, WEIR_MEM_ARENA_DEFAULT);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--fault-child") == 0)
		return fault_child(argv[2], argv[3]);
	unsetenv("WEIR_FAULT"); /* the parent's own calls must not fail */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fresh_recover_writes_only_the_header),
		cmocka_unit_test(create_names_a_missing_state_dir),
		cmocka_unit_test(interleaved_epochs_publish_in_order),
		cmocka_unit_test(recover_drops_later_epochs),
		cmocka_unit_test(recover_cuts_an_unrecorded_publish),
		cmocka_unit_test(recover_finishes_an_interrupted_publish),
		cmocka_unit_test(recover_refuses_an_output_too_short),
		cmocka_unit_test(epochs_without_bytes),
		cmocka_unit_test(epochs_larger_than_the_copy_buffer),
		cmocka_unit_test(two_sinks_share_a_state_dir),
		cmocka_unit_test(too_many_waiting_epochs),
		cmocka_unit_test(misuse_asserts),
		cmocka_unit_test(faults_in_prepare),
		cmocka_unit_test(faults_in_append),
		cmocka_unit_test(faults_in_publish),
		cmocka_unit_test(short_writes_still_write_everything),
		cmocka_unit_test(killed_in_publish),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
