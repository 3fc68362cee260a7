/* Goal: state/log's contract, end to end on real files: what was appended and sealed replays
 * byte for byte, in order, with every epoch's marker, up to any durable position the writer
 * reported; records straddle buffers and segments rotate; a torn tail past the position is
 * ignored by replay and cut by trim; any damage inside the named range (a flipped bit in a
 * header or a payload, a zeroed block, a missing segment, an end that is not a record
 * boundary) is -EBADMSG or -ENOENT with the file and byte in the message, never a silent
 * success; snapshots start a new first segment; a reopened shard writes a new segment; the
 * writer's position after a seal (or at open) is exactly where the next record's header goes,
 * the next segment's start when the seal rotates; a tail read from such a position yields
 * exactly the records after it, through later segments (a reopened writer's too), and stops
 * without error at a torn tail (a cut record or header, random bytes, zeros, a flipped bit)
 * or a gap in the numbering, counting the bytes it dropped; and the fault rules (write-eio,
 * fsync-eio, enospc, short-write) end in a sticky error, or, for a short write that can be
 * completed, in a correct log.
 *
 * Method: each test works in its own mkdtemp folder under /tmp, removed at the end.  A
 * reference model keeps every appended record (seeded random keys and values of 0..8160
 * bytes, WEIR_SEED=n replays; the seed is printed); tiny buffers (8 KiB x 2) and segments
 * (64 KiB) force waits, straddling and rotation.  poll() never blocks, so the tests spin on
 * it with a 1 ms sleep, for 10 s at most.  Damage is done with pwrite/truncate on the closed
 * files and undone after each check.  WEIR_FAULT is read once per process, so each fault case
 * runs this binary again (fork + exec of /proc/self/exe with --fault-child) with the rule in
 * its environment; the child reports through its exit status and a result file, and the
 * parent replays what it left.  The parent itself never sets WEIR_FAULT.  Exits 77 without
 * io_uring. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h> /* before cmocka.h, which redefines malloc under UNIT_TESTING */
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/test_rng.h"

#include "state/log.h"

#define RECORDS_MAX 4096
#define BYTES_MAX (8u << 20)
#define SMALL_BUFFER 8192u
#define POLL_ROUNDS 10000 /* of 1 ms: 10 s */
#define ERROR_LENGTH 512

/* ---- the reference model ---- */

struct expected {
	enum weir_log_record_type type;
	uint64_t epoch;
	uint16_t state_type;
	uint32_t key_group;
	uint32_t key_length;
	uint32_t value_length;
	size_t data; /* offset in model.bytes: key then value */
	uint64_t segment; /* where replay found it (filled by a replay with record_where) */
	uint64_t offset;
};

struct model {
	struct expected records[RECORDS_MAX];
	uint32_t count;
	uint8_t bytes[BYTES_MAX]; /* static: cmocka would count a kept allocation as a leak */
	size_t used;
};

static struct model model;

static void model_reset(void)
{
	model.count = 0;
	model.used = 0;
}

static char test_dir[64];

static void dir_make(void)
{
	snprintf(test_dir, sizeof(test_dir), "/tmp/weir-log-XXXXXX");
	assert_non_null(mkdtemp(test_dir));
}

/* Removes @path and everything in it (two levels: DIR/shard-SSSS/files). */
static void tree_remove(const char *path)
{
	DIR *dir = opendir(path);
	if (dir == NULL) {
		unlink(path);
		return;
	}
	struct dirent *entry;
	while ((entry = readdir(dir)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		char child[512];
		snprintf(child, sizeof(child), "%s/%s", path, entry->d_name);
		tree_remove(child);
	}
	closedir(dir);
	rmdir(path);
}

static void segment_file(char *path, size_t length, uint32_t shard, uint64_t segment)
{
	snprintf(path, length, "%s/shard-%04u/%016llu.seg", test_dir, shard,
		 (unsigned long long)segment);
}

static uint64_t segment_size(uint32_t shard, uint64_t segment)
{
	char path[256];
	segment_file(path, sizeof(path), shard, segment);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static bool segment_exists(uint32_t shard, uint64_t segment)
{
	char path[256];
	segment_file(path, sizeof(path), shard, segment);
	struct stat st;
	return stat(path, &st) == 0;
}

/* Open file descriptors of this process: a writer must close every segment it opened. */
static uint32_t fd_count(void)
{
	DIR *dir = opendir("/proc/self/fd");
	assert_non_null(dir);
	uint32_t count = 0;
	while (readdir(dir) != NULL)
		count++;
	closedir(dir);
	return count;
}

/* ---- writing ---- */

static struct weir_log_writer *writer_open(uint32_t shard, uint32_t buffer_length,
					   uint32_t buffer_count, uint64_t segment_length)
{
	const struct weir_log_writer_options options = {
		.dir = test_dir,
		.shard = shard,
		.buffer_length = buffer_length,
		.buffer_count = buffer_count,
		.segment_length = segment_length,
	};
	struct weir_log_writer *writer = NULL;
	char error[ERROR_LENGTH] = "";
	int rc = weir_log_writer_open(&writer, &options, error, sizeof(error));
	if (rc != 0)
		print_error("open: %s\n", error);
	assert_int_equal(rc, 0);
	assert_non_null(writer);
	return writer;
}

/* Appends a STATE record with the given lengths and random bytes, and models it. */
static void append_random(struct weir_log_writer *writer, uint64_t epoch, uint32_t key_length,
			  uint32_t value_length)
{
	assert_true(model.count < RECORDS_MAX);
	assert_true(model.used + key_length + value_length <= BYTES_MAX);
	struct expected *e = &model.records[model.count++];
	*e = (struct expected){
		.type = WEIR_LOG_STATE,
		.epoch = epoch,
		.state_type = (uint16_t)test_rng_next(),
		.key_group = (uint32_t)test_rng_next(),
		.key_length = key_length,
		.value_length = value_length,
		.data = model.used,
	};
	uint8_t *data = model.bytes + model.used;
	for (uint32_t i = 0; i < key_length + value_length; i++)
		data[i] = (uint8_t)test_rng_next();
	model.used += key_length + value_length;
	const struct weir_state_record record = {
		.type = e->state_type,
		.key_group = e->key_group,
		.key = data,
		.key_length = key_length,
		.value = data + key_length,
		.value_length = value_length,
	};
	assert_int_equal(weir_log_append(writer, epoch, &record), 0);
}

static void seal(struct weir_log_writer *writer, uint64_t epoch)
{
	assert_true(model.count < RECORDS_MAX);
	model.records[model.count++] = (struct expected){.type = WEIR_LOG_MARKER, .epoch = epoch};
	assert_int_equal(weir_log_seal(writer, epoch), 0);
}

/* Polls until epoch @epoch is durable.  Returns: its position. */
static struct weir_log_position wait_durable(struct weir_log_writer *writer, uint64_t epoch)
{
	struct weir_log_position position = {0};
	uint64_t durable = 0;
	for (int round = 0; round < POLL_ROUNDS; round++) {
		assert_int_equal(weir_log_poll(writer, &durable, &position), 0);
		if (durable >= epoch)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	assert_int_equal(durable, epoch);
	return position;
}

/* A random epoch: up to @count records, keys of 0..64 bytes, values mostly small, some over
 * 4 KiB, some making the record exactly @buffer_length bytes. */
static void append_epoch(struct weir_log_writer *writer, uint64_t epoch, uint32_t count,
			 uint32_t buffer_length)
{
	uint32_t records = (uint32_t)(test_rng_next() % (count + 1));
	for (uint32_t r = 0; r < records; r++) {
		uint32_t key_length = (uint32_t)(test_rng_next() % 65);
		uint32_t room = buffer_length - 32 - key_length; /* the largest value */
		uint64_t dice = test_rng_next() % 100;
		uint32_t value_length;
		if (dice < 60)
			value_length = (uint32_t)(test_rng_next() % 200);
		else if (dice < 90)
			value_length = 4096 + (uint32_t)(test_rng_next() % (room - 4096 + 1));
		else if (dice < 95)
			value_length = room;
		else
			value_length = 0;
		append_random(writer, epoch, key_length, value_length);
	}
}

/* ---- replaying ---- */

struct check {
	uint32_t index;	       /* next model record expected */
	uint32_t count;	       /* model records the replay must yield */
	uint64_t last_segment; /* where the previous record was */
	uint64_t last_offset;
	int stop_at;	       /* return 1234 from this record's visit, or -1 */
};

static int check_visit(void *ctx, const struct weir_log_record *record)
{
	struct check *check = ctx;
	assert_true(check->index < check->count);
	struct expected *e = &model.records[check->index];
	if (record->type != e->type || record->epoch != e->epoch)
		print_error("record %u: type %d epoch %llu, expected type %d epoch %llu\n",
			    check->index, record->type, (unsigned long long)record->epoch, e->type,
			    (unsigned long long)e->epoch);
	assert_int_equal(record->type, e->type);
	assert_int_equal(record->epoch, e->epoch);
	/* Records come in stream order. */
	assert_true(record->segment > check->last_segment ||
		    (record->segment == check->last_segment &&
		     (record->offset > check->last_offset || check->index == 0)));
	check->last_segment = record->segment;
	check->last_offset = record->offset;
	e->segment = record->segment;
	e->offset = record->offset;
	if (e->type == WEIR_LOG_STATE) {
		const struct weir_state_record *state = &record->state;
		assert_int_equal(state->type, e->state_type);
		assert_int_equal(state->key_group, e->key_group);
		assert_int_equal(state->key_length, e->key_length);
		assert_int_equal(state->value_length, e->value_length);
		assert_memory_equal(state->key, model.bytes + e->data, e->key_length);
		assert_memory_equal(state->value, model.bytes + e->data + e->key_length,
				    e->value_length);
	}
	if ((int)check->index == check->stop_at)
		return 1234;
	check->index++;
	return 0;
}

/* Replays shard @shard up to @position and checks it yields model records
 * [first, first + count) exactly. */
static void replay_expect(uint32_t shard, const struct weir_log_position *position,
			  uint32_t first, uint32_t count)
{
	struct check check = {.index = first, .count = first + count, .stop_at = -1};
	char error[ERROR_LENGTH] = "";
	int rc = weir_log_replay(test_dir, shard, position, check_visit, &check, error,
				 sizeof(error));
	if (rc != 0)
		print_error("replay: %d: %s\n", rc, error);
	assert_int_equal(rc, 0);
	assert_int_equal(check.index, first + count);
}

static int count_visit(void *ctx, const struct weir_log_record *record)
{
	(void)record;
	(*(uint32_t *)ctx)++;
	return 0;
}

/* Replays expecting failure @expected_rc with every string of @needles in the message. */
static void replay_fails(uint32_t shard, const struct weir_log_position *position,
			 int expected_rc, const char *needle, const char *needle2)
{
	char error[ERROR_LENGTH] = "";
	uint32_t count = 0;
	int rc = weir_log_replay(test_dir, shard, position, count_visit, &count, error,
				 sizeof(error));
	if (rc != expected_rc || strstr(error, needle) == NULL ||
	    (needle2 != NULL && strstr(error, needle2) == NULL))
		print_error("replay: %d (expected %d): '%s', expected '%s' and '%s'\n", rc,
			    expected_rc, error, needle, needle2 != NULL ? needle2 : "");
	assert_int_equal(rc, expected_rc);
	assert_non_null(strstr(error, needle));
	if (needle2 != NULL)
		assert_non_null(strstr(error, needle2));
}

/* The index of the marker of @epoch in the model. */
static uint32_t marker_index(uint64_t epoch)
{
	for (uint32_t i = 0; i < model.count; i++) {
		if (model.records[i].type == WEIR_LOG_MARKER && model.records[i].epoch == epoch)
			return i;
	}
	fail_msg("no marker for epoch %llu", (unsigned long long)epoch);
	return 0;
}

/* ---- tests ---- */

static void random_epochs_replay(void **state)
{
	(void)state;
	test_rng_seed();
	model_reset();
	dir_make();
	const uint32_t shard = 1;
	const uint64_t epochs = 24;
	uint32_t fds = fd_count();
	struct weir_log_writer *writer = writer_open(shard, SMALL_BUFFER, 2, 64u << 10);
	struct weir_log_position positions[25] = {{0}};
	for (uint64_t epoch = 1; epoch <= epochs; epoch++) {
		append_epoch(writer, epoch, 40, SMALL_BUFFER);
		seal(writer, epoch);
		if (epoch % 3 == 0)
			positions[epoch] = wait_durable(writer, epoch);
	}
	/* A record larger than a buffer is refused, and the writer stays usable. */
	uint8_t big[SMALL_BUFFER] = {0};
	const struct weir_state_record too_big = {.key = big, .key_length = 16, .value = big,
						  .value_length = SMALL_BUFFER - 32 - 15};
	assert_int_equal(weir_log_append(writer, epochs, &too_big), -EINVAL);
	struct weir_log_position last = wait_durable(writer, epochs);
	assert_memory_equal(&last, &positions[epochs], sizeof(last));

	struct weir_log_writer_stats stats;
	weir_log_writer_stats(writer, &stats);
	assert_true(stats.waits > 0);
	assert_true(stats.segments > 1);
	assert_int_equal(stats.syncs, epochs);
	assert_true(stats.writes >= stats.bytes_written / SMALL_BUFFER);
	assert_int_equal(last.first_segment, 1);
	assert_int_equal(last.end_segment, stats.segments);
	/* Everything was sealed: the replay length is every byte written, in the files. */
	uint64_t on_disk = 0;
	for (uint64_t s = 1; s <= last.end_segment; s++)
		on_disk += segment_size(shard, s);
	assert_int_equal(weir_log_replay_length(writer), stats.bytes_written);
	assert_int_equal(on_disk, stats.bytes_written);
	assert_int_equal(segment_size(shard, last.end_segment), last.end_offset);
	assert_int_equal(last.end_offset % WEIR_LOG_BLOCK_LENGTH, 0);
	/* Rotated-away segments were closed once their syncs completed: the current one and
	 * the ring remain. */
	assert_int_equal(fd_count(), fds + 2);
	weir_log_writer_close(writer);
	assert_int_equal(fd_count(), fds);

	replay_expect(shard, &last, 0, model.count);
	/* Every intermediate position replays exactly the epochs up to it. */
	for (uint64_t epoch = 3; epoch < epochs; epoch += 3)
		replay_expect(shard, &positions[epoch], 0, marker_index(epoch) + 1);
	/* A visitor's non-zero return stops the replay and is returned. */
	struct check check = {.count = model.count, .stop_at = (int)(model.count / 2)};
	assert_int_equal(weir_log_replay(test_dir, shard, &last, check_visit, &check, NULL, 0),
			 1234);
	assert_int_equal(check.index, model.count / 2);
	/* A position naming no segment replays nothing. */
	const struct weir_log_position none = {0};
	replay_expect(shard, &none, 0, 0);
	tree_remove(test_dir);
}

static void torn_tail_trim(void **state)
{
	(void)state;
	test_rng_seed();
	model_reset();
	dir_make();
	const uint32_t shard = 2;
	struct weir_log_writer *writer = writer_open(shard, SMALL_BUFFER, 4, 1u << 30);
	for (uint32_t r = 0; r < 10; r++)
		append_random(writer, 1, 8, 100 + r * 300);
	seal(writer, 1);
	struct weir_log_position first = wait_durable(writer, 1);
	uint32_t epoch1_count = model.count;
	/* Epoch 2, never sealed: full buffers reach the file, the rest is dropped at close. */
	for (uint32_t r = 0; r < 12; r++)
		append_random(writer, 2, 8, 3000);
	weir_log_writer_close(writer);
	assert_true(segment_size(shard, 1) > first.end_offset);
	replay_expect(shard, &first, 0, epoch1_count);
	char error[ERROR_LENGTH] = "";
	assert_int_equal(weir_log_trim(test_dir, shard, &first, error, sizeof(error)), 0);
	assert_int_equal(segment_size(shard, 1), first.end_offset);
	replay_expect(shard, &first, 0, epoch1_count);

	/* A new writer: segment 2.  Epochs 3 and 4 are durable; then epoch 4's last record is
	 * cut in the middle, as a crash before its blocks reached the disk would leave it. */
	model_reset();
	writer = writer_open(shard, SMALL_BUFFER, 4, 1u << 30);
	for (uint32_t r = 0; r < 6; r++)
		append_random(writer, 3, 8, 500);
	seal(writer, 3);
	struct weir_log_position third = wait_durable(writer, 3);
	uint32_t epoch3_count = model.count;
	for (uint32_t r = 0; r < 6; r++)
		append_random(writer, 4, 8, 700);
	seal(writer, 4);
	struct weir_log_position fourth = wait_durable(writer, 4);
	weir_log_writer_close(writer);
	assert_int_equal(third.first_segment, 2);
	assert_int_equal(third.end_segment, 2);
	replay_expect(shard, &fourth, 0, model.count); /* records the offsets */
	const struct expected *victim = &model.records[model.count - 2]; /* last STATE */
	assert_int_equal(victim->type, WEIR_LOG_STATE);
	char path[256];
	segment_file(path, sizeof(path), shard, 2);
	assert_int_equal(truncate(path, (off_t)(victim->offset + 40)), 0);
	replay_fails(shard, &fourth, -EBADMSG, path, "short of the checkpoint's end");
	replay_expect(shard, &third, 0, epoch3_count);
	/* A later segment (as a restarted writer would have made) goes too. */
	writer = writer_open(shard, SMALL_BUFFER, 2, 0);
	assert_int_equal(weir_log_seal(writer, 5), 0);
	weir_log_writer_close(writer);
	assert_true(segment_exists(shard, 3));
	assert_int_equal(weir_log_trim(test_dir, shard, &third, error, sizeof(error)), 0);
	assert_int_equal(segment_size(shard, 2), third.end_offset);
	assert_false(segment_exists(shard, 3));
	assert_true(segment_exists(shard, 1));
	replay_expect(shard, &third, 0, epoch3_count);
	/* Trim cannot lengthen a file: a position past its end is corruption. */
	assert_int_equal(weir_log_trim(test_dir, shard, &fourth, error, sizeof(error)), -EBADMSG);
	tree_remove(test_dir);
}

static void flip_bit(const char *path, uint64_t offset, uint8_t mask)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t byte = 0;
	assert_int_equal(pread(fd, &byte, 1, (off_t)offset), 1);
	byte ^= mask;
	assert_int_equal(pwrite(fd, &byte, 1, (off_t)offset), 1);
	close(fd);
}

/* Flips one bit of the record @e at @within bytes into it, checks the replay names the file
 * and the record, and flips it back. */
static void corrupt_and_check(uint32_t shard, const struct weir_log_position *position,
			      const struct expected *e, uint64_t within)
{
	char path[256];
	segment_file(path, sizeof(path), shard, e->segment);
	char at[64];
	snprintf(at, sizeof(at), "record at byte %llu ", (unsigned long long)e->offset);
	uint8_t mask = (uint8_t)(1u << (test_rng_next() % 8));
	flip_bit(path, e->offset + within, mask);
	replay_fails(shard, position, -EBADMSG, path, at);
	flip_bit(path, e->offset + within, mask);
}

static void corruption_detected(void **state)
{
	(void)state;
	test_rng_seed();
	model_reset();
	dir_make();
	const uint32_t shard = 7;
	struct weir_log_writer *writer = writer_open(shard, SMALL_BUFFER, 2, 16u << 10);
	for (uint64_t epoch = 1; epoch <= 6; epoch++) {
		append_epoch(writer, epoch, 12, SMALL_BUFFER);
		append_random(writer, epoch, 4, 5000); /* at least one record over 4 KiB */
		seal(writer, epoch);
	}
	struct weir_log_position end = wait_durable(writer, 6);
	weir_log_writer_close(writer);
	assert_true(end.end_segment >= 3);
	replay_expect(shard, &end, 0, model.count); /* records where each one is */

	/* A flipped bit in a header (each of its 32 bytes somewhere) or a payload. */
	for (uint32_t k = 0; k < 48; k++) {
		const struct expected *e = &model.records[test_rng_next() % model.count];
		uint32_t length = e->key_length + e->value_length;
		uint64_t within = k < 32 || length == 0 ? k % 32 : 32 + test_rng_next() % length;
		corrupt_and_check(shard, &end, e, within);
	}
	replay_expect(shard, &end, 0, model.count);

	/* A zeroed block inside the named range. */
	const struct expected *e = &model.records[model.count / 2];
	char path[256];
	segment_file(path, sizeof(path), shard, e->segment);
	uint8_t saved[WEIR_LOG_BLOCK_LENGTH];
	uint8_t zeros[WEIR_LOG_BLOCK_LENGTH] = {0};
	off_t block = (off_t)(e->offset / WEIR_LOG_BLOCK_LENGTH * WEIR_LOG_BLOCK_LENGTH);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, saved, sizeof(saved), block), sizeof(saved));
	assert_int_equal(pwrite(fd, zeros, sizeof(zeros), block), sizeof(zeros));
	replay_fails(shard, &end, -EBADMSG, path, "corrupt state");
	assert_int_equal(pwrite(fd, saved, sizeof(saved), block), sizeof(saved));
	close(fd);
	replay_expect(shard, &end, 0, model.count);


	/* An end inside a record; an end exactly at one is fine. */
	const struct expected *last = &model.records[model.count - 2];
	segment_file(path, sizeof(path), shard, last->segment);
	struct weir_log_position cut = {end.first_segment, last->segment, last->offset + 1};
	replay_fails(shard, &cut, -EBADMSG, path, "not a record boundary");
	cut.end_offset = last->offset;
	replay_expect(shard, &cut, 0, model.count - 2);
	/* An end past the file. */
	cut = end;
	cut.end_offset += WEIR_LOG_BLOCK_LENGTH;
	segment_file(path, sizeof(path), shard, end.end_segment);
	replay_fails(shard, &cut, -EBADMSG, path, "short of the checkpoint's end");
	/* Segments out of order. */
	cut = (struct weir_log_position){3, 2, 0};
	replay_fails(shard, &cut, -EINVAL, "segments 3..2", NULL);
	/* A missing segment in the middle. */
	segment_file(path, sizeof(path), shard, 2);
	assert_int_equal(unlink(path), 0);
	replay_fails(shard, &end, -ENOENT, path, "missing");
	tree_remove(test_dir);
}

/* Segments before the end one are read to their end, which must be a record's end. */
static void earlier_segment_cut(void **state)
{
	(void)state;
	test_rng_seed();
	model_reset();
	dir_make();
	const uint32_t shard = 8;
	/* Each epoch is over 8 KiB, so each seal starts a new segment. */
	struct weir_log_writer *writer = writer_open(shard, SMALL_BUFFER, 2, 8u << 10);
	for (uint64_t epoch = 1; epoch <= 4; epoch++) {
		append_random(writer, epoch, 10, 7000);
		append_epoch(writer, epoch, 8, SMALL_BUFFER);
		seal(writer, epoch);
	}
	struct weir_log_position end = wait_durable(writer, 4);
	assert_int_equal(end.end_segment, 4);
	weir_log_writer_close(writer);
	replay_expect(shard, &end, 0, model.count);
	char path[256];
	segment_file(path, sizeof(path), shard, 2);
	uint64_t length = segment_size(shard, 2);
	assert_int_equal(truncate(path, (off_t)(length - 100)), 0);
	replay_fails(shard, &end, -EBADMSG, path, "past the end of the file");
	assert_int_equal(truncate(path, (off_t)(length - WEIR_LOG_BLOCK_LENGTH - 8)), 0);
	replay_fails(shard, &end, -EBADMSG, path, "corrupt state");
	tree_remove(test_dir);
}

static void snapshot_start(void **state)
{
	(void)state;
	test_rng_seed();
	model_reset();
	dir_make();
	const uint32_t shard = 4;
	struct weir_log_writer *writer = writer_open(shard, SMALL_BUFFER, 2, 1u << 30);
	/* Nothing durable yet: epoch 0, an empty log in the first segment. */
	uint64_t durable = 99;
	struct weir_log_position position;
	assert_int_equal(weir_log_poll(writer, &durable, &position), 0);
	assert_int_equal(durable, 0);
	assert_int_equal(position.first_segment, 1);
	assert_int_equal(position.end_segment, 1);
	assert_int_equal(position.end_offset, 0);
	for (uint64_t epoch = 1; epoch <= 2; epoch++) {
		append_epoch(writer, epoch, 10, SMALL_BUFFER);
		seal(writer, epoch);
	}
	struct weir_log_position second = wait_durable(writer, 2);
	assert_int_equal(second.first_segment, 1);
	assert_int_equal(second.end_segment, 1);
	uint32_t before = model.count;
	assert_int_equal(weir_log_start_snapshot(writer), 0);
	append_random(writer, 3, 10, 6000);
	append_epoch(writer, 3, 10, SMALL_BUFFER);
	seal(writer, 3);
	struct weir_log_position third = wait_durable(writer, 3);
	assert_int_equal(third.first_segment, 2);
	assert_int_equal(third.end_segment, 2);
	assert_int_equal(weir_log_replay_length(writer), third.end_offset);
	assert_int_equal(segment_size(shard, 2), third.end_offset);
	replay_expect(shard, &third, before, model.count - before);
	const struct weir_log_position all = {1, 2, third.end_offset};
	replay_expect(shard, &all, 0, model.count);

	/* Misuse: a snapshot may only start right after a seal. */
	append_random(writer, 4, 4, 10);
	expect_assert_failure(weir_log_start_snapshot(writer));
	seal(writer, 4);
	struct weir_log_position fourth = wait_durable(writer, 4);
	assert_int_equal(fourth.first_segment, 2);
	/* A snapshot with no records: the marker starts segment 3. */
	uint32_t before_fifth = model.count;
	assert_int_equal(weir_log_start_snapshot(writer), 0);
	seal(writer, 5);
	struct weir_log_position fifth = wait_durable(writer, 5);
	assert_int_equal(fifth.first_segment, 3);
	assert_int_equal(fifth.end_segment, 3);
	assert_int_equal(fifth.end_offset, WEIR_LOG_BLOCK_LENGTH);
	replay_expect(shard, &fifth, before_fifth, 1);
	weir_log_writer_close(writer);

	/* A writer whose segment is still empty takes it as the snapshot segment. */
	model_reset();
	writer = writer_open(5, SMALL_BUFFER, 2, 0);
	assert_int_equal(weir_log_start_snapshot(writer), 0);
	append_random(writer, 1, 3, 3);
	seal(writer, 1);
	struct weir_log_position only = wait_durable(writer, 1);
	assert_int_equal(only.first_segment, 1);
	assert_int_equal(only.end_segment, 1);
	struct weir_log_writer_stats stats;
	weir_log_writer_stats(writer, &stats);
	assert_int_equal(stats.segments, 1);
	weir_log_writer_close(writer);
	replay_expect(5, &only, 0, model.count);
	tree_remove(test_dir);
}

static void touch(const char *relative)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", test_dir, relative);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	close(fd);
}

static uint64_t seal_one(uint32_t shard)
{
	struct weir_log_writer *writer = writer_open(shard, SMALL_BUFFER, 2, 0);
	assert_int_equal(weir_log_seal(writer, 1), 0);
	struct weir_log_position position = wait_durable(writer, 1);
	weir_log_writer_close(writer);
	assert_int_equal(position.first_segment, position.end_segment);
	return position.end_segment;
}

static void reopen_shards_remove(void **state)
{
	(void)state;
	dir_make();
	/* Each writer starts one past the highest segment there, whatever its name says. */
	assert_int_equal(seal_one(3), 1);
	assert_int_equal(seal_one(3), 2);
	touch("shard-0003/0000000000000009.seg");
	touch("shard-0003/junk.txt");
	touch("shard-0003/123.seg");
	assert_int_equal(seal_one(3), 10);
	/* Shards: folders named exactly as the writer names them. */
	assert_int_equal(seal_one(12), 1);
	assert_int_equal(seal_one(1), 1);
	touch("shard-0004");
	char path[256];
	snprintf(path, sizeof(path), "%s/shard-3", test_dir);
	assert_int_equal(mkdir(path, 0755), 0);
	uint32_t shards[4] = {0};
	assert_int_equal(weir_log_shards(test_dir, shards, 4), 3);
	assert_int_equal(shards[0], 1);
	assert_int_equal(shards[1], 3);
	assert_int_equal(shards[2], 12);
	memset(shards, 0, sizeof(shards));
	assert_int_equal(weir_log_shards(test_dir, shards, 2), 2);
	assert_int_equal(shards[0], 1);
	assert_int_equal(shards[1], 3);
	assert_int_equal(weir_log_shards(test_dir, NULL, 0), 0);

	assert_int_equal(weir_log_remove_before(test_dir, 3, 9), 2);
	assert_false(segment_exists(3, 1));
	assert_false(segment_exists(3, 2));
	assert_true(segment_exists(3, 9));
	assert_true(segment_exists(3, 10));
	assert_int_equal(weir_log_remove_before(test_dir, 3, 9), 0);
	/* All: the folder goes too, once nothing but segments is in it. */
	assert_int_equal(weir_log_remove_before(test_dir, 3, UINT64_MAX), -ENOTEMPTY);
	assert_false(segment_exists(3, 9));
	snprintf(path, sizeof(path), "%s/shard-0003/junk.txt", test_dir);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof(path), "%s/shard-0003/123.seg", test_dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(weir_log_remove_before(test_dir, 3, UINT64_MAX), 0);
	snprintf(path, sizeof(path), "%s/shard-0003", test_dir);
	struct stat st;
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(weir_log_shards(test_dir, shards, 4), 2);
	assert_int_equal(shards[0], 1);
	assert_int_equal(shards[1], 12);
	assert_int_equal(weir_log_remove_before(test_dir, 3, 5), 0); /* no folder */
	assert_int_equal(weir_log_remove_before(test_dir, 12, UINT64_MAX), 1);
	tree_remove(test_dir);
	assert_int_equal(weir_log_shards(test_dir, shards, 4), -ENOENT);
}

static void open_errors(void **state)
{
	(void)state;
	dir_make();
	struct weir_log_writer_options options = {.dir = test_dir, .buffer_length = 1000};
	struct weir_log_writer *writer = (struct weir_log_writer *)&options; /* overwritten */
	char error[ERROR_LENGTH] = "";
	assert_int_equal(weir_log_writer_open(&writer, &options, error, sizeof(error)), -EINVAL);
	assert_null(writer);
	assert_non_null(strstr(error, "multiple of 4096"));
	char path[256];
	snprintf(path, sizeof(path), "%s/file", test_dir);
	touch("file");
	snprintf(path, sizeof(path), "%s/file/state", test_dir);
	options = (struct weir_log_writer_options){.dir = path};
	assert_int_equal(weir_log_writer_open(&writer, &options, error, sizeof(error)), -ENOTDIR);
	assert_null(writer);
	assert_non_null(strstr(error, path));
	snprintf(path, sizeof(path), "%s/missing/state", test_dir);
	assert_int_equal(weir_log_writer_open(&writer, &options, error, sizeof(error)), -ENOENT);
	/* Trim of a segment that is not there. */
	const struct weir_log_position position = {1, 1, 0};
	assert_int_equal(weir_log_trim(test_dir, 0, &position, error, sizeof(error)), -ENOENT);
	expect_assert_failure(weir_log_writer_open(NULL, &options, error, sizeof(error)));
	tree_remove(test_dir);
}

/* ---- reading a tail ---- */

struct tail_at {
	uint64_t segment;
	uint64_t offset; /* bytes into the segment */
};

static struct tail_at writer_position(const struct weir_log_writer *writer)
{
	struct tail_at at = {UINT64_MAX, UINT64_MAX};
	weir_log_writer_position(writer, &at.segment, &at.offset);
	assert_int_not_equal(at.segment, UINT64_MAX);
	assert_int_equal(at.offset % WEIR_LOG_BLOCK_LENGTH, 0);
	return at;
}

/* Reads shard @shard's tail from @from and checks that it yields model records
 * [first, first + count) exactly, ends at @end and drops @dropped bytes. */
static void tail_expect(uint32_t shard, struct tail_at from, uint32_t first, uint32_t count,
			struct tail_at end, uint64_t dropped)
{
	struct check check = {.index = first, .count = first + count, .stop_at = -1};
	char error[ERROR_LENGTH] = "";
	struct tail_at got = {UINT64_MAX, UINT64_MAX};
	uint64_t got_dropped = UINT64_MAX;
	int rc = weir_log_read_tail(test_dir, shard, from.segment, from.offset, check_visit,
				    &check, &got.segment, &got.offset, &got_dropped, error,
				    sizeof(error));
	if (rc != 0 || check.index != first + count || got.segment != end.segment ||
	    got.offset != end.offset || got_dropped != dropped)
		print_error("tail from %llu:%llu: %d '%s', %u records to %llu:%llu dropping %llu; "
			    "expected %u to %llu:%llu dropping %llu\n",
			    (unsigned long long)from.segment, (unsigned long long)from.offset, rc,
			    error, check.index - first, (unsigned long long)got.segment,
			    (unsigned long long)got.offset, (unsigned long long)got_dropped, count,
			    (unsigned long long)end.segment, (unsigned long long)end.offset,
			    (unsigned long long)dropped);
	assert_int_equal(rc, 0);
	assert_int_equal(check.index, first + count);
	assert_int_equal(got.segment, end.segment);
	assert_int_equal(got.offset, end.offset);
	assert_int_equal(got_dropped, dropped);
}

/* Reads shard @shard's tail from @from expecting @expected_rc, with @needle in the message
 * and the out-parameters untouched. */
static void tail_fails(uint32_t shard, struct tail_at from, int expected_rc, const char *needle)
{
	char error[ERROR_LENGTH] = "";
	uint32_t count = 0;
	struct tail_at got = {7, 7};
	uint64_t got_dropped = 7;
	int rc = weir_log_read_tail(test_dir, shard, from.segment, from.offset, count_visit,
				    &count, &got.segment, &got.offset, &got_dropped, error,
				    sizeof(error));
	if (rc != expected_rc || strstr(error, needle) == NULL)
		print_error("tail: %d (expected %d): '%s', expected '%s'\n", rc, expected_rc,
			    error, needle);
	assert_int_equal(rc, expected_rc);
	assert_non_null(strstr(error, needle));
	assert_int_equal(count, 0);
	assert_int_equal(got.segment, 7);
	assert_int_equal(got.offset, 7);
	assert_int_equal(got_dropped, 7);
}

static uint8_t saved_bytes[1u << 20]; /* a segment's bytes while a test damages it */

/* Reads all of @path into saved_bytes.  Returns: its length. */
static uint64_t file_save(const char *path)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = pread(fd, saved_bytes, sizeof(saved_bytes), 0);
	close(fd);
	assert_true(n >= 0 && (size_t)n < sizeof(saved_bytes));
	return (uint64_t)n;
}

static void file_restore(const char *path, uint64_t length)
{
	int fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, saved_bytes, length, 0), (ssize_t)length);
	close(fd);
}

/* Appends @length bytes to @path: random ones, or zeros. */
static void file_append(const char *path, size_t length, bool random)
{
	uint8_t bytes[8192] = {0};
	assert_true(length <= sizeof(bytes));
	for (size_t i = 0; random && i < length; i++)
		bytes[i] = (uint8_t)test_rng_next();
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, bytes, length), (ssize_t)length);
	close(fd);
}

/* Bytes of shard @shard's segments @from..@to. */
static uint64_t segments_size(uint32_t shard, uint64_t from, uint64_t to)
{
	uint64_t total = 0;
	for (uint64_t s = from; s <= to; s++)
		total += segment_size(shard, s);
	return total;
}

/* After a seal: the writer's position is the seal's end, or the next segment's start when
 * the seal passed segment_length (that segment is not made before the next append).
 * Returns: whether it rotates. */
static bool position_after_seal(uint32_t shard, struct tail_at at,
				const struct weir_log_position *sealed, uint64_t segment_length)
{
	if (sealed->end_offset < segment_length) {
		assert_int_equal(at.segment, sealed->end_segment);
		assert_int_equal(at.offset, sealed->end_offset);
		return false;
	}
	assert_int_equal(at.segment, sealed->end_segment + 1);
	assert_int_equal(at.offset, 0);
	assert_false(segment_exists(shard, at.segment));
	return true;
}

/* Damages the log tail_after_position wrote (read from @from, model records from @first,
 * ending at @last) as a crash or a stray write would, and checks where a tail read stops. */
static void tail_damaged(uint32_t shard, struct tail_at from, uint32_t first,
			 const struct weir_log_position *last)
{
	const struct tail_at end = {last->end_segment, last->end_offset};
	char path[256];
	segment_file(path, sizeof(path), shard, end.segment);
	uint64_t length = file_save(path);
	assert_int_equal(length, end.offset);
	/* The last segment cut inside its last STATE record's payload, then inside its header:
	 * the log ends at that record. */
	uint32_t victim = model.count - 2;
	const struct expected *e = &model.records[victim];
	assert_int_equal(e->type, WEIR_LOG_STATE);
	assert_int_equal(e->segment, end.segment);
	const uint64_t cuts[] = {40, 10};
	for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
		assert_int_equal(truncate(path, (off_t)(e->offset + cuts[c])), 0);
		tail_expect(shard, from, first, victim - first,
			    (struct tail_at){end.segment, e->offset}, cuts[c]);
	}
	file_restore(path, length);
	/* Random bytes, then a zeroed block, after the last record. */
	file_append(path, 1000, true);
	tail_expect(shard, from, first, model.count - first, end, 1000);
	assert_int_equal(truncate(path, (off_t)length), 0);
	file_append(path, WEIR_LOG_BLOCK_LENGTH, false);
	tail_expect(shard, from, first, model.count - first, end, WEIR_LOG_BLOCK_LENGTH);
	assert_int_equal(truncate(path, (off_t)length), 0);
	/* A record of an earlier segment with a flipped bit, then cut: the log ends there and
	 * every later segment is dropped whole.  Its payload is over 8 bytes, so that the flip
	 * (its first payload byte, 32) and the cut (40) both fall inside it: a shorter record
	 * would end before the cut, whole, and the log at the next one's cut header.  Epoch 5's
	 * 5004-byte record is in A's segment (segments rotate only at a seal), before the last. */
	for (victim = first;; victim++) {
		assert_true(victim < model.count);
		e = &model.records[victim];
		if (e->segment < end.segment && e->type == WEIR_LOG_STATE &&
		    e->key_length + e->value_length > 8)
			break;
	}
	segment_file(path, sizeof(path), shard, e->segment);
	uint64_t later = segments_size(shard, e->segment + 1, end.segment);
	uint64_t earlier_length = file_save(path);
	const struct tail_at stop = {e->segment, e->offset};
	flip_bit(path, e->offset + 32, 0x10);
	tail_expect(shard, from, first, victim - first, stop,
		    earlier_length - e->offset + later);
	file_restore(path, earlier_length);
	assert_int_equal(truncate(path, (off_t)(e->offset + 40)), 0);
	tail_expect(shard, from, first, victim - first, stop, 40 + later);
	file_restore(path, earlier_length);
	tail_expect(shard, from, first, model.count - first, end, 0);

	/* Errors: a start past the file (its end itself is fine: nothing after it). */
	segment_file(path, sizeof(path), shard, end.segment);
	tail_fails(shard, (struct tail_at){end.segment, length + WEIR_LOG_BLOCK_LENGTH},
		   -EBADMSG, path);
	tail_fails(shard, (struct tail_at){end.segment, length + 1}, -EBADMSG, "short of");
	tail_expect(shard, end, model.count, 0, end, 0);
	/* A segment past the last: empty from its start, missing from anywhere else. */
	const struct tail_at beyond = {end.segment + 5, 0};
	tail_expect(shard, beyond, model.count, 0, beyond, 0);
	tail_fails(shard, (struct tail_at){end.segment + 5, 4096}, -ENOENT, "missing");
	tail_fails(shard, (struct tail_at){0, 0}, -EINVAL, "segment 0");
	/* A missing segment that later ones follow is not an empty log. */
	segment_file(path, sizeof(path), shard, 1);
	assert_int_equal(unlink(path), 0);
	tail_fails(shard, (struct tail_at){1, 0}, -ENOENT, path);
}

static void tail_after_position(void **state)
{
	(void)state;
	test_rng_seed();
	model_reset();
	dir_make();
	const uint32_t shard = 9;
	const uint64_t segment_length = 16u << 10;
	const uint64_t epochs = 12;
	const uint64_t a = 4; /* position A: after epoch 4's seal */
	struct weir_log_writer *writer = writer_open(shard, SMALL_BUFFER, 2, segment_length);
	struct tail_at at[13]; /* at[e]: the position after epoch e's seal (0: at open) */
	uint32_t after[13];    /* after[e]: the model index of the first record after it */
	at[0] = writer_position(writer);
	after[0] = 0;
	assert_int_equal(at[0].segment, 1);
	assert_int_equal(at[0].offset, 0);
	uint32_t rotations = 0;
	struct weir_log_position last = {0};
	for (uint64_t epoch = 1; epoch <= epochs; epoch++) {
		append_epoch(writer, epoch, 12, SMALL_BUFFER);
		append_random(writer, epoch, 4, 5000); /* over 5 KiB an epoch: segments rotate */
		if (epoch == 5) /* between appends and a seal: no record boundary to report */
			expect_assert_failure(weir_log_writer_position(writer, &at[0].segment,
								       &at[0].offset));
		seal(writer, epoch);
		at[epoch] = writer_position(writer);
		after[epoch] = model.count;
		last = wait_durable(writer, epoch);
		rotations += position_after_seal(shard, at[epoch], &last, segment_length);
	}
	weir_log_writer_close(writer);
	assert_true(rotations >= 2);
	assert_true(at[a].segment < last.end_segment);
	replay_expect(shard, &last, 0, model.count); /* records where each one is */
	/* Each position is exactly where the next record's header went. */
	for (uint64_t epoch = 0; epoch < epochs; epoch++) {
		assert_int_equal(model.records[after[epoch]].segment, at[epoch].segment);
		assert_int_equal(model.records[after[epoch]].offset, at[epoch].offset);
	}
	/* From A: the records appended after it, to the end of the log, nothing dropped; the
	 * writer's final position is that end, or the start of the segment it would rotate
	 * to. */
	const struct tail_at end = {last.end_segment, last.end_offset};
	tail_expect(shard, at[a], after[a], model.count - after[a], end, 0);
	if (at[epochs].segment == end.segment)
		assert_int_equal(at[epochs].offset, end.offset);
	else
		assert_int_equal(at[epochs].segment, end.segment + 1);
	for (uint64_t epoch = 0; epoch < epochs; epoch++)
		tail_expect(shard, at[epoch], after[epoch], model.count - after[epoch], end, 0);
	/* From the final position: nothing (from a rotated one, an empty log there). */
	tail_expect(shard, at[epochs], model.count, 0, at[epochs], 0);
	/* A visitor's non-zero return stops the read and is returned. */
	struct check check = {.index = after[a], .count = model.count,
			      .stop_at = (int)after[a] + 3};
	uint64_t out[3] = {7, 7, 7};
	assert_int_equal(weir_log_read_tail(test_dir, shard, at[a].segment, at[a].offset,
					    check_visit, &check, &out[0], &out[1], &out[2], NULL,
					    0),
			 1234);
	assert_int_equal(check.index, after[a] + 3);
	assert_int_equal(out[0] + out[1] + out[2], 21);
	tail_damaged(shard, at[a], after[a], &last);
	tree_remove(test_dir);
}

/* A writer that stops before its seal (segment 3 of tail_reopen_gap's log, read from @from
 * with model records from @first): its full buffers reached the file, the record the last
 * one cut is the torn tail. */
static void tail_unsealed(uint32_t shard, struct tail_at from, uint32_t first)
{
	struct weir_log_writer *writer = writer_open(shard, SMALL_BUFFER, 2, 1u << 30);
	const struct tail_at start = writer_position(writer);
	assert_int_equal(start.segment, 3);
	assert_int_equal(start.offset, 0);
	uint32_t unsealed = model.count;
	for (uint32_t r = 0; r < 12; r++)
		append_random(writer, 6, 8, 3000); /* 3040-byte records */
	weir_log_writer_close(writer);
	/* 4 full buffers: 10 whole records and 2368 bytes of the 11th. */
	const uint64_t written = 4 * SMALL_BUFFER;
	const struct tail_at stop = {3, 10 * 3040};
	assert_int_equal(segment_size(shard, 3), written);
	tail_expect(shard, start, unsealed, 10, stop, written - stop.offset);
	tail_expect(shard, from, first, unsealed + 10 - first, stop, written - stop.offset);
}

static void tail_reopen_gap(void **state)
{
	(void)state;
	test_rng_seed();
	model_reset();
	dir_make();
	const uint32_t shard = 10;
	/* No folder yet, then a writer's fresh segment: an empty log, ending where it starts. */
	const struct tail_at one = {1, 0};
	tail_expect(shard, one, 0, 0, one, 0);
	struct weir_log_writer *writer = writer_open(shard, SMALL_BUFFER, 2, 1u << 30);
	struct tail_at a = writer_position(writer);
	assert_int_equal(a.segment, 1);
	assert_int_equal(a.offset, 0);
	assert_true(segment_exists(shard, 1));
	tail_expect(shard, a, 0, 0, a, 0);
	uint32_t first = 0;
	for (uint64_t epoch = 1; epoch <= 3; epoch++) {
		append_epoch(writer, epoch, 6, SMALL_BUFFER);
		seal(writer, epoch);
		if (epoch == 2) {
			a = writer_position(writer);
			first = model.count;
		}
	}
	struct weir_log_position old = wait_durable(writer, 3);
	uint32_t old_count = model.count;
	weir_log_writer_close(writer);
	/* A reopened writer starts segment 2; a tail from the old segment reads on into it. */
	writer = writer_open(shard, SMALL_BUFFER, 2, 1u << 30);
	struct tail_at reopened = writer_position(writer);
	assert_int_equal(reopened.segment, 2);
	assert_int_equal(reopened.offset, 0);
	tail_expect(shard, reopened, model.count, 0, reopened, 0);
	for (uint64_t epoch = 4; epoch <= 5; epoch++) {
		append_epoch(writer, epoch, 6, SMALL_BUFFER);
		append_random(writer, epoch, 4, 300);
		seal(writer, epoch);
	}
	struct weir_log_position last = wait_durable(writer, 5);
	weir_log_writer_close(writer);
	assert_int_equal(last.end_segment, 2);
	const struct tail_at end = {2, last.end_offset};
	tail_expect(shard, a, first, model.count - first, end, 0);
	/* A gap in the numbering ends the log: segment 4 is neither read nor counted. */
	char path[256];
	segment_file(path, sizeof(path), shard, 4);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	assert_true(fd >= 0);
	close(fd);
	file_append(path, 5000, true);
	tail_expect(shard, a, first, model.count - first, end, 0);
	/* Random bytes after segment 1's last record: the rest of it and all of segment 2 are
	 * dropped, segment 4 (after the gap) is not counted. */
	segment_file(path, sizeof(path), shard, 1);
	file_append(path, 100, true);
	tail_expect(shard, a, first, old_count - first, (struct tail_at){1, old.end_offset},
		    100 + segment_size(shard, 2));
	assert_int_equal(truncate(path, (off_t)old.end_offset), 0);
	segment_file(path, sizeof(path), shard, 4);
	assert_int_equal(unlink(path), 0);
	tail_unsealed(shard, a, first);
	tree_remove(test_dir);
}


/* ---- fault injection, in a child process ---- */

#define FAULT_EPOCHS 3
#define FAULT_RECORDS 12
#define FAULT_BUFFER (16u << 10)

/* Models record @i of epoch @epoch of a fault scenario (the same bytes in parent and child);
 * "big": 12 records of 3332 bytes per epoch (two full 16 KiB buffers, and the seal writes
 * the last 8 KiB); "small": one record per epoch (each seal writes one block). */
static struct weir_state_record fault_record(bool big, uint64_t epoch, uint32_t i)
{
	uint32_t value_length = big ? 3300 : 100;
	struct expected *e = &model.records[model.count++];
	*e = (struct expected){
		.type = WEIR_LOG_STATE,
		.epoch = epoch,
		.state_type = (uint16_t)epoch,
		.key_group = i,
		.key_length = 8,
		.value_length = value_length,
		.data = model.used,
	};
	uint8_t *data = model.bytes + model.used;
	for (uint32_t b = 0; b < 8 + value_length; b++)
		data[b] = (uint8_t)(epoch * 31 + i * 7 + b);
	model.used += 8 + value_length;
	return (struct weir_state_record){
		.type = e->state_type,
		.key_group = i,
		.key = data,
		.key_length = 8,
		.value = data + 8,
		.value_length = value_length,
	};
}

static void fault_model(bool big)
{
	model_reset();
	for (uint64_t epoch = 1; epoch <= FAULT_EPOCHS; epoch++) {
		for (uint32_t i = 0; i < (big ? FAULT_RECORDS : 1); i++)
			fault_record(big, epoch, i);
		model.records[model.count++] = (struct expected){.type = WEIR_LOG_MARKER,
								 .epoch = epoch};
	}
}

/* Writes and seals the scenario's epochs, each until durable.  Returns: 0; or, after the
 * first error, that errno if every later call returns the same error and no epoch was
 * reported durable; or 1xx saying what went wrong.  Writes "syncs writes first end offset"
 * to DIR/result.  No cmocka asserts here: this is not a cmocka test run. */
static int fault_child(const char *scenario, const char *dir)
{
	bool big = strcmp(scenario, "big") == 0;
	snprintf(test_dir, sizeof(test_dir), "%s", dir);
	model_reset();
	const struct weir_log_writer_options options = {
		.dir = dir, .buffer_length = FAULT_BUFFER, .buffer_count = 2};
	struct weir_log_writer *writer = NULL;
	if (weir_log_writer_open(&writer, &options, NULL, 0) != 0)
		return 110;
	int failure = 0;
	uint64_t durable = 0;
	struct weir_log_position position = {0};
	for (uint64_t epoch = 1; epoch <= FAULT_EPOCHS && failure == 0; epoch++) {
		for (uint32_t i = 0; i < (big ? FAULT_RECORDS : 1) && failure == 0; i++) {
			struct weir_state_record record = fault_record(big, epoch, i);
			failure = weir_log_append(writer, epoch, &record);
		}
		if (failure == 0)
			failure = weir_log_seal(writer, epoch);
		for (int round = 0; round < POLL_ROUNDS && failure == 0 && durable < epoch;
		     round++) {
			failure = weir_log_poll(writer, &durable, &position);
			nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
		}
		if (failure == 0 && durable < epoch)
			failure = 111; /* timed out */
	}
	int code = failure == 111 ? 111 : -failure;
	if (failure < 0) {
		const struct weir_state_record record = {.key_length = 0};
		uint64_t later = 0;
		if (weir_log_poll(writer, &later, &position) != failure ||
		    weir_log_append(writer, 9, &record) != failure ||
		    weir_log_seal(writer, 9) != failure)
			code = 101; /* not sticky */
		else if (durable != 0 || later != 0)
			code = 102; /* an epoch with a failed write or sync was called durable */
	}
	struct weir_log_writer_stats stats;
	weir_log_writer_stats(writer, &stats);
	weir_log_writer_close(writer);
	char path[256];
	snprintf(path, sizeof(path), "%s/result", dir);
	FILE *file = fopen(path, "w");
	if (file == NULL)
		return 112;
	fprintf(file, "%llu %llu %llu %llu %llu\n", (unsigned long long)stats.syncs,
		(unsigned long long)stats.writes, (unsigned long long)position.first_segment,
		(unsigned long long)position.end_segment, (unsigned long long)position.end_offset);
	fclose(file);
	return code;
}

struct fault_result {
	int status; /* the child's exit status */
	uint64_t syncs;
	uint64_t writes;
	struct weir_log_position position;
};

/* Runs fault_child in a fresh process with WEIR_FAULT=@rule. */
static struct fault_result fault_run(const char *rule, const char *scenario)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setenv("WEIR_FAULT", rule, 1);
		execl("/proc/self/exe", "test_state_log", "--fault-child", scenario, test_dir,
		      (char *)NULL);
		_exit(127);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	struct fault_result result = {.status = WEXITSTATUS(status)};
	char path[256];
	snprintf(path, sizeof(path), "%s/result", test_dir);
	FILE *file = fopen(path, "r");
	assert_non_null(file);
	unsigned long long values[5] = {0};
	assert_int_equal(fscanf(file, "%llu %llu %llu %llu %llu", &values[0], &values[1],
				&values[2], &values[3], &values[4]),
			 5);
	fclose(file);
	result.syncs = values[0];
	result.writes = values[1];
	result.position = (struct weir_log_position){values[2], values[3], values[4]};
	print_message("WEIR_FAULT=%s (%s): status %d, %llu syncs, %llu writes\n", rule, scenario,
		      result.status, values[0], values[1]);
	return result;
}

static void fault_errors_are_sticky(void **state)
{
	(void)state;
	const struct {
		const char *rule;
		const char *scenario;
		int status;
	} cases[] = {
		{"write-eio@2", "big", EIO},	 /* a full buffer's write */
		{"write-eio@3", "big", EIO},	 /* the seal's write */
		{"enospc@2", "big", ENOSPC},
		{"fsync-eio@1", "big", EIO},
		{"fsync-eio@1", "small", EIO},
		{"short-write@1", "small", EIO}, /* one block: cannot be split */
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		dir_make();
		struct fault_result result = fault_run(cases[c].rule, cases[c].scenario);
		assert_int_equal(result.status, cases[c].status);
		tree_remove(test_dir);
	}
}

static void fault_short_write_completes(void **state)
{
	(void)state;
	const struct {
		const char *rule;
		uint64_t syncs; /* one per epoch, and one again after a resubmitted seal write */
	} cases[] = {
		{"short-write@1", FAULT_EPOCHS},     /* a full buffer: the rest is resubmitted */
		{"short-write@3", FAULT_EPOCHS + 1}, /* the seal's write: its fdatasync again */
		/* Epoch 2's second full buffer: its rest is resubmitted before the seal when an
		 * append waits and reaps it (3), else after the seal's sync (4). */
		{"short-write@5", 0},
	};
	fault_model(true);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		dir_make();
		struct fault_result result = fault_run(cases[c].rule, "big");
		assert_int_equal(result.status, 0);
		if (cases[c].syncs != 0)
			assert_int_equal(result.syncs, cases[c].syncs);
		else
			assert_in_range(result.syncs, FAULT_EPOCHS, FAULT_EPOCHS + 1);
		assert_int_equal(result.writes, 3 * FAULT_EPOCHS + 1);
		replay_expect(0, &result.position, 0, model.count);
		assert_int_equal(segment_size(0, result.position.end_segment),
				 result.position.end_offset);
		tree_remove(test_dir);
	}
}

/* Removes the test's folder even when a failed assert cut the test short. */
static int teardown(void **state)
{
	(void)state;
	if (test_dir[0] != '\0')
		tree_remove(test_dir);
	test_dir[0] = '\0';
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--fault-child") == 0)
		return fault_child(argv[2], argv[3]);
	struct io_uring ring;
	int rc = io_uring_queue_init(4, &ring, 0);
	if (rc == -ENOSYS || rc == -EPERM) {
		fprintf(stderr, "test_state_log: io_uring unavailable (%s), skipped\n",
			strerror(-rc));
		return 77;
	}
	if (rc == 0)
		io_uring_queue_exit(&ring);
	/* The fault cases need a WEIR_FAULT of their own; one inherited would break the rest. */
	if (getenv("WEIR_FAULT") != NULL) {
		fprintf(stderr, "test_state_log: unset WEIR_FAULT\n");
		return 1;
	}

	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(random_epochs_replay, teardown),
		cmocka_unit_test_teardown(torn_tail_trim, teardown),
		cmocka_unit_test_teardown(corruption_detected, teardown),
		cmocka_unit_test_teardown(earlier_segment_cut, teardown),
		cmocka_unit_test_teardown(snapshot_start, teardown),
		cmocka_unit_test_teardown(reopen_shards_remove, teardown),
		cmocka_unit_test_teardown(open_errors, teardown),
		cmocka_unit_test_teardown(tail_after_position, teardown),
		cmocka_unit_test_teardown(tail_reopen_gap, teardown),
		cmocka_unit_test_teardown(fault_errors_are_sticky, teardown),
		cmocka_unit_test_teardown(fault_short_write_completes, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
