/* Goal: state/manifest's contract, exactly: a checkpoint info survives write + read field by
 * field (extreme values included) in the documented version-1 layout; retention keeps the
 * newest `keep`; weir_manifest_list takes only exact manifest-<20 digits> names; the newest
 * manifest that reads back whole is found, a damaged newer one is skipped with a message on
 * stderr, all damaged is -EBADMSG, none at all (or no directory) is 0; every truncation and
 * every single-byte change of a manifest is rejected with -EBADMSG; a checksummed manifest
 * with fields out of bounds is rejected too; a failed write (injected EIO/ENOSPC on a write or
 * an fsync) leaves no new manifest and no manifest.tmp behind, and short writes still succeed.
 *
 * Method: each test works in its own mkdtemp directory under /tmp, removed afterwards.
 * Damage is done to the files directly: truncation at every length, each byte xored with
 * 0x01 and with 0xff, zeroed contents, fields rewritten with the checksum recomputed (the
 * test knows the layout, which pins it).  Fault injection reads WEIR_FAULT once per process,
 * and this process has read it already, so each fault case forks and re-executes this binary
 * (/proc/self/exe --fault-child ...) with WEIR_FAULT set: the child writes manifests 1..N,
 * expecting the last write to return a given code, and the parent checks the directory.
 * No randomness: the sweeps are exhaustive. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
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

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/fault.h"
#include "state/manifest.h"

#define MANIFEST_LENGTH_MAX 22624u /* 96 + 32 * 256 splits + 56 * 256 shards */
#define KEEP_ALL 1000u

static struct weir_checkpoint_info written, got;
static uint8_t file_bytes[MANIFEST_LENGTH_MAX + 16];

/* ---- helpers ---- */

static size_t layout_length(uint32_t split_count, uint32_t worker_count)
{
	return 96 + 32 * (size_t)split_count + 56 * (size_t)worker_count;
}

/* A checkpoint with distinct values everywhere, the extremes included; the entries past the
 * counts are garbage that must not be stored. */
static void fill_info(struct weir_checkpoint_info *info, uint64_t epoch, uint32_t split_count,
		      uint32_t worker_count)
{
	memset(info, 0xA5, sizeof(*info));
	info->epoch = epoch;
	info->created_unix_ms = 1795446245000ull + epoch;
	info->duration_ns = 4100000 + epoch;
	info->seed = 0x9E3779B97F4A7C15ull ^ epoch;
	info->key_groups = 4096;
	info->worker_count = worker_count;
	info->finished = epoch % 2 == 0;
	info->events_in = 1200000 * epoch;
	info->split_count = split_count;
	for (uint32_t i = 0; i < split_count; i++) {
		struct weir_split *split = &info->splits[i];
		split->begin = i * 1000ull + epoch;
		split->end = UINT64_MAX - i;
		split->step = i + 1;
		split->max_seen = i == 0 ? INT64_MIN : i == 1 ? INT64_MAX : -(int64_t)i * 1000;
	}
	for (uint32_t i = 0; i < worker_count; i++) {
		struct weir_checkpoint_shard *shard = &info->shards[i];
		shard->log.first_segment = i;
		shard->log.end_segment = i + 2 + epoch;
		shard->log.end_offset = 8192ull * i + 40;
		shard->watermark = i == 0 ? INT64_MIN : i == 1 ? INT64_MAX : -123456 * (int64_t)i;
		shard->state_bytes = (1ull << 40) + i;
		shard->appended_bytes = UINT64_MAX - i;
		shard->snapshot = i % 2 == 1;
	}
	info->sink_bytes[0] = UINT64_MAX - epoch;
	info->sink_bytes[1] = 7;
}

static void assert_info_equal(const struct weir_checkpoint_info *a,
			      const struct weir_checkpoint_info *b)
{
	assert_int_equal(a->epoch, b->epoch);
	assert_int_equal(a->created_unix_ms, b->created_unix_ms);
	assert_int_equal(a->duration_ns, b->duration_ns);
	assert_int_equal(a->seed, b->seed);
	assert_int_equal(a->key_groups, b->key_groups);
	assert_int_equal(a->worker_count, b->worker_count);
	assert_int_equal(a->finished, b->finished);
	assert_int_equal(a->events_in, b->events_in);
	assert_int_equal(a->split_count, b->split_count);
	for (uint32_t i = 0; i < a->split_count; i++) {
		assert_int_equal(a->splits[i].begin, b->splits[i].begin);
		assert_int_equal(a->splits[i].end, b->splits[i].end);
		assert_int_equal(a->splits[i].step, b->splits[i].step);
		assert_true(a->splits[i].max_seen == b->splits[i].max_seen);
	}
	for (uint32_t i = 0; i < a->worker_count; i++) {
		const struct weir_checkpoint_shard *x = &a->shards[i], *y = &b->shards[i];
		assert_int_equal(x->log.first_segment, y->log.first_segment);
		assert_int_equal(x->log.end_segment, y->log.end_segment);
		assert_int_equal(x->log.end_offset, y->log.end_offset);
		assert_true(x->watermark == y->watermark);
		assert_int_equal(x->state_bytes, y->state_bytes);
		assert_int_equal(x->appended_bytes, y->appended_bytes);
		assert_int_equal(x->snapshot, y->snapshot);
	}
	assert_int_equal(a->sink_bytes[0], b->sink_bytes[0]);
	assert_int_equal(a->sink_bytes[1], b->sink_bytes[1]);
}

static void make_dir(char *dir)
{
	strcpy(dir, "/tmp/weir-manifest-XXXXXX");
	assert_non_null(mkdtemp(dir));
}

/* Removes @dir and what is in it (files, and empty folders a test made). */
static void remove_dir(const char *dir)
{
	DIR *stream = opendir(dir);
	assert_non_null(stream);
	struct dirent *entry;
	char path[PATH_MAX];
	while ((entry = readdir(stream)) != NULL) {
		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
		if (unlink(path) != 0)
			assert_int_equal(rmdir(path), 0);
	}
	closedir(stream);
	assert_int_equal(rmdir(dir), 0);
}

static size_t read_whole(const char *path, uint8_t *buffer, size_t capacity)
{
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buffer, capacity);
	assert_true(n >= 0);
	close(fd);
	return (size_t)n;
}

static void write_whole(const char *path, const void *buffer, size_t length)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buffer, length), (ssize_t)length);
	close(fd);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static void write_epoch(const char *dir, uint64_t epoch, uint32_t keep)
{
	char error[512] = "";
	fill_info(&written, epoch, 3, 2);
	int rc = weir_manifest_write(dir, &written, keep, error, sizeof(error));
	if (rc != 0)
		fail_msg("write %llu: %d %s", (unsigned long long)epoch, rc, error);
}

static void assert_epochs(const char *dir, const uint64_t *expected, int count)
{
	uint64_t epochs[WEIR_MANIFESTS_MAX];
	assert_int_equal(weir_manifest_list(dir, epochs, WEIR_MANIFESTS_MAX), count);
	for (int i = 0; i < count; i++)
		assert_int_equal(epochs[i], expected[i]);
}

/* Runs weir_manifest_newest with stderr captured in @captured (NUL-terminated). */
static int newest_captured(const char *dir, struct weir_checkpoint_info *info, char *error,
			   size_t error_length, char *captured, size_t captured_length)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "/tmp/weir-manifest-stderr-%d", (int)getpid());
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	int fd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
	assert_true(saved >= 0);
	assert_true(fd >= 0);
	dup2(fd, STDERR_FILENO);
	int rc = weir_manifest_newest(dir, info, error, error_length);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	ssize_t n = pread(fd, captured, captured_length - 1, 0);
	assert_true(n >= 0);
	captured[n] = '\0';
	close(fd);
	unlink(path);
	return rc;
}

static uint64_t get_le(const uint8_t *at, unsigned length)
{
	uint64_t value = 0;
	for (unsigned i = 0; i < length; i++)
		value |= (uint64_t)at[i] << (8 * i);
	return value;
}

static void put_le(uint8_t *at, unsigned length, uint64_t value)
{
	for (unsigned i = 0; i < length; i++)
		at[i] = (uint8_t)(value >> (8 * i));
}

/* ---- tests ---- */

static void round_trip(void **unused)
{
	(void)unused;
	static const uint32_t shapes[][2] = {{5, 3}, {0, 1}, {1, 2}, {256, 256}, {0, 256}};
	char dir[64], path[PATH_MAX], error[512];
	make_dir(dir);
	for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		uint64_t epoch = s + 1;
		fill_info(&written, epoch, shapes[s][0], shapes[s][1]);
		assert_int_equal(weir_manifest_write(dir, &written, KEEP_ALL, error, sizeof(error)),
				 0);
		weir_manifest_path(dir, epoch, path, sizeof(path));
		memset(&got, 0x5A, sizeof(got));
		assert_int_equal(weir_manifest_read(path, &got, error, sizeof(error)), 0);
		assert_info_equal(&written, &got);
		assert_int_equal(read_whole(path, file_bytes, sizeof(file_bytes)),
				 layout_length(shapes[s][0], shapes[s][1]));
	}
	assert_false(exists(strcat(strcpy(path, dir), "/manifest.tmp")));
	remove_dir(dir);
}

/* The documented version-1 layout, byte for byte where it matters. */
static void layout(void **unused)
{
	(void)unused;
	char dir[64], path[PATH_MAX], error[512];
	make_dir(dir);
	fill_info(&written, 6, 2, 3);
	assert_int_equal(weir_manifest_write(dir, &written, KEEP_ALL, error, sizeof(error)), 0);
	weir_manifest_path(dir, 6, path, sizeof(path));
	size_t length = read_whole(path, file_bytes, sizeof(file_bytes));
	assert_int_equal(length, 96 + 2 * 32 + 3 * 56);
	assert_memory_equal(file_bytes, "WEIRMANI", 8);
	assert_int_equal(get_le(file_bytes + 8, 4), 1);
	assert_int_equal(get_le(file_bytes + 12, 4), length);
	assert_int_equal(get_le(file_bytes + 16, 8), 6);
	assert_int_equal(get_le(file_bytes + 24, 8), written.created_unix_ms);
	assert_int_equal(get_le(file_bytes + 32, 8), written.duration_ns);
	assert_int_equal(get_le(file_bytes + 40, 8), written.seed);
	assert_int_equal(get_le(file_bytes + 48, 8), written.events_in);
	assert_int_equal(get_le(file_bytes + 56, 8), written.sink_bytes[0]);
	assert_int_equal(get_le(file_bytes + 64, 8), written.sink_bytes[1]);
	assert_int_equal(get_le(file_bytes + 72, 4), 4096);
	assert_int_equal(get_le(file_bytes + 76, 4), 3);
	assert_int_equal(get_le(file_bytes + 80, 4), 2);
	assert_int_equal(get_le(file_bytes + 84, 4), 1); /* epoch 6: finished */
	assert_int_equal(get_le(file_bytes + 88, 8), written.splits[0].begin);
	assert_int_equal(get_le(file_bytes + 88 + 24, 8), (uint64_t)INT64_MIN);
	const uint8_t *shard1 = file_bytes + 88 + 2 * 32 + 56;
	assert_int_equal(get_le(shard1, 8), 1);
	assert_int_equal(get_le(shard1 + 24, 8), (uint64_t)INT64_MAX);
	assert_int_equal(get_le(shard1 + 48, 4), 1); /* snapshot */
	assert_int_equal(get_le(shard1 + 52, 4), 0);
	assert_int_equal(get_le(file_bytes + length - 8, 8), XXH3_64bits(file_bytes, length - 8));
	remove_dir(dir);
}

static void path_format(void **unused)
{
	(void)unused;
	char path[PATH_MAX];
	weir_manifest_path("/state", 12, path, sizeof(path));
	assert_string_equal(path, "/state/manifest-00000000000000000012");
	weir_manifest_path("d", UINT64_MAX, path, sizeof(path));
	assert_string_equal(path, "d/manifest-18446744073709551615");
	expect_assert_failure(weir_manifest_path("/state", 1, path, 20)); /* too small */
}

static void keep_newest(void **unused)
{
	(void)unused;
	char dir[64];
	make_dir(dir);
	for (uint64_t epoch = 1; epoch <= 7; epoch++)
		write_epoch(dir, epoch, 3);
	assert_epochs(dir, (const uint64_t[]){5, 6, 7}, 3);
	write_epoch(dir, 8, 1);
	assert_epochs(dir, (const uint64_t[]){8}, 1);
	write_epoch(dir, 9, 5);
	assert_epochs(dir, (const uint64_t[]){8, 9}, 2);
	/* Writing an epoch again replaces it. */
	write_epoch(dir, 9, 5);
	assert_epochs(dir, (const uint64_t[]){8, 9}, 2);
	remove_dir(dir);
}

static void list_names(void **unused)
{
	(void)unused;
	static const char *const junk[] = {
		"manifest-1", "manifest-000000000000000000012", "manifest-0000000000000000001",
		"manifest-0000000000000000001x", "manifest-99999999999999999999", "manifest.tmp",
		"xmanifest-00000000000000000001", "manifest-00000000000000000001.tmp",
		"manifest--0000000000000000001", "Manifest-00000000000000000001",
	};
	char dir[64], path[PATH_MAX];
	make_dir(dir);
	for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, junk[i]);
		write_whole(path, "junk", 4);
	}
	static const uint64_t epochs[] = {30, 0, UINT64_MAX, 2, 18446744073709551614ull, 7};
	for (size_t i = 0; i < sizeof(epochs) / sizeof(epochs[0]); i++) {
		weir_manifest_path(dir, epochs[i], path, sizeof(path));
		write_whole(path, "x", 1);
	}
	assert_epochs(dir, (const uint64_t[]){0, 2, 7, 30, 18446744073709551614ull, UINT64_MAX},
		      6);
	/* Fewer slots than manifests: the newest ones. */
	uint64_t some[3];
	assert_int_equal(weir_manifest_list(dir, some, 3), 3);
	assert_int_equal(some[0], 30);
	assert_int_equal(some[1], 18446744073709551614ull);
	assert_int_equal(some[2], UINT64_MAX);
	assert_int_equal(weir_manifest_list(dir, NULL, 0), 0);
	snprintf(path, sizeof(path), "%s/nowhere", dir);
	assert_int_equal(weir_manifest_list(path, some, 3), -ENOENT);
	remove_dir(dir);
}

enum damage { DAMAGE_TRUNCATE, DAMAGE_FLIP, DAMAGE_ZERO, DAMAGE_EMPTY, DAMAGE_DIRECTORY };

static void damage(const char *dir, uint64_t epoch, enum damage how)
{
	char path[PATH_MAX];
	weir_manifest_path(dir, epoch, path, sizeof(path));
	size_t length = read_whole(path, file_bytes, sizeof(file_bytes));
	switch (how) {
	case DAMAGE_TRUNCATE: assert_int_equal(truncate(path, (off_t)length / 2), 0); break;
	case DAMAGE_FLIP:
		file_bytes[length / 2] ^= 0x10;
		write_whole(path, file_bytes, length);
		break;
	case DAMAGE_ZERO:
		memset(file_bytes, 0, length);
		write_whole(path, file_bytes, length);
		break;
	case DAMAGE_EMPTY: write_whole(path, "", 0); break;
	case DAMAGE_DIRECTORY:
		assert_int_equal(unlink(path), 0);
		assert_int_equal(mkdir(path, 0700), 0);
		break;
	}
}

static void newest_skips_damaged(void **unused)
{
	(void)unused;
	static const char *const reasons[] = {"header says", "checksum", "magic", "too short",
					      "not a regular file"};
	for (enum damage how = DAMAGE_TRUNCATE; how <= DAMAGE_DIRECTORY; how++) {
		char dir[64], error[512] = "", captured[2048];
		make_dir(dir);
		for (uint64_t epoch = 1; epoch <= 3; epoch++)
			write_epoch(dir, epoch, KEEP_ALL);
		damage(dir, 3, how);
		int rc = newest_captured(dir, &got, error, sizeof(error), captured,
					 sizeof(captured));
		assert_int_equal(rc, 1);
		fill_info(&written, 2, 3, 2);
		assert_info_equal(&written, &got);
		assert_non_null(strstr(captured, "weir: checkpoint manifest "));
		assert_non_null(strstr(captured, "manifest-00000000000000000003 is damaged ("));
		assert_non_null(strstr(captured, "; using the one before it\n"));
		if (strstr(captured, reasons[how]) == NULL)
			fail_msg("damage %d: '%s' lacks '%s'", how, captured, reasons[how]);
		/* Two damaged: the first good one below them. */
		damage(dir, 2, how);
		assert_int_equal(newest_captured(dir, &got, error, sizeof(error), captured,
						 sizeof(captured)), 1);
		assert_int_equal(got.epoch, 1);
		remove_dir(dir);
	}
}

static void newest_all_damaged(void **unused)
{
	(void)unused;
	char dir[64], error[512] = "", captured[2048];
	make_dir(dir);
	for (uint64_t epoch = 1; epoch <= 3; epoch++) {
		write_epoch(dir, epoch, KEEP_ALL);
		damage(dir, epoch, DAMAGE_FLIP);
	}
	int rc = newest_captured(dir, &got, error, sizeof(error), captured, sizeof(captured));
	assert_int_equal(rc, -EBADMSG);
	assert_non_null(strstr(error, dir));
	assert_non_null(strstr(error, "none of the 3"));
	assert_non_null(strstr(error, "manifest-00000000000000000003"));
	/* The oldest is reported without a promise of another. */
	assert_non_null(strstr(captured, "manifest-00000000000000000001 is damaged ("));
	assert_null(strstr(strstr(captured, "manifest-00000000000000000001"), "before it"));
	remove_dir(dir);
}

static void newest_none(void **unused)
{
	(void)unused;
	char dir[64], path[PATH_MAX], error[512] = "";
	make_dir(dir);
	assert_int_equal(weir_manifest_newest(dir, &got, error, sizeof(error)), 0);
	snprintf(path, sizeof(path), "%s/missing", dir);
	assert_int_equal(weir_manifest_newest(path, &got, error, sizeof(error)), 0);
	/* A crash between creating manifest.tmp and the rename leaves only the tmp file. */
	snprintf(path, sizeof(path), "%s/manifest.tmp", dir);
	write_whole(path, "half a manifest", 15);
	assert_int_equal(weir_manifest_newest(dir, &got, error, sizeof(error)), 0);
	/* A file where the directory should be is an error, not a fresh start. */
	assert_int_equal(weir_manifest_newest(path, &got, error, sizeof(error)), -ENOTDIR);
	assert_non_null(strstr(error, path));
	remove_dir(dir);
}

static void newest_after_delete(void **unused)
{
	(void)unused;
	char dir[64], path[PATH_MAX], error[512] = "";
	make_dir(dir);
	for (uint64_t epoch = 1; epoch <= 4; epoch++)
		write_epoch(dir, epoch, KEEP_ALL);
	assert_int_equal(weir_manifest_newest(dir, &got, error, sizeof(error)), 1);
	assert_int_equal(got.epoch, 4);
	weir_manifest_path(dir, 4, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	assert_int_equal(weir_manifest_newest(dir, &got, error, sizeof(error)), 1);
	fill_info(&written, 3, 3, 2);
	assert_info_equal(&written, &got);
	remove_dir(dir);
}

/* A manifest.tmp with junk, left by a crash, is ignored and then written over. */
static void tmp_left_over(void **unused)
{
	(void)unused;
	char dir[64], path[PATH_MAX], error[512] = "";
	make_dir(dir);
	write_epoch(dir, 1, KEEP_ALL);
	snprintf(path, sizeof(path), "%s/manifest.tmp", dir);
	memset(file_bytes, 0xEE, sizeof(file_bytes));
	write_whole(path, file_bytes, sizeof(file_bytes));
	assert_epochs(dir, (const uint64_t[]){1}, 1);
	assert_int_equal(weir_manifest_newest(dir, &got, error, sizeof(error)), 1);
	assert_int_equal(got.epoch, 1);
	write_epoch(dir, 2, KEEP_ALL);
	assert_false(exists(path));
	assert_int_equal(weir_manifest_newest(dir, &got, error, sizeof(error)), 1);
	assert_info_equal(&written, &got);
	remove_dir(dir);
}

static void truncated_everywhere(void **unused)
{
	(void)unused;
	char dir[64], path[PATH_MAX], error[512];
	make_dir(dir);
	write_epoch(dir, 1, KEEP_ALL);
	weir_manifest_path(dir, 1, path, sizeof(path));
	uint8_t whole[1024];
	size_t length = read_whole(path, whole, sizeof(whole));
	assert_int_equal(length, layout_length(3, 2));
	for (size_t cut = 0; cut < length; cut++) {
		write_whole(path, whole, cut);
		error[0] = '\0';
		assert_int_equal(weir_manifest_read(path, &got, error, sizeof(error)), -EBADMSG);
		assert_non_null(strstr(error, path));
	}
	/* One byte too many is as bad as one too few. */
	memcpy(file_bytes, whole, length);
	file_bytes[length] = 0;
	write_whole(path, file_bytes, length + 1);
	assert_int_equal(weir_manifest_read(path, &got, error, sizeof(error)), -EBADMSG);
	write_whole(path, whole, length);
	assert_int_equal(weir_manifest_read(path, &got, error, sizeof(error)), 0);
	remove_dir(dir);
}

static void every_byte_changed(void **unused)
{
	(void)unused;
	static const uint8_t masks[] = {0x01, 0x80, 0xff};
	char dir[64], path[PATH_MAX], error[512];
	make_dir(dir);
	write_epoch(dir, 1, KEEP_ALL);
	weir_manifest_path(dir, 1, path, sizeof(path));
	uint8_t whole[1024];
	size_t length = read_whole(path, whole, sizeof(whole));
	for (size_t at = 0; at < length; at++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			memcpy(file_bytes, whole, length);
			file_bytes[at] ^= masks[m];
			write_whole(path, file_bytes, length);
			int rc = weir_manifest_read(path, &got, error, sizeof(error));
			if (rc != -EBADMSG)
				fail_msg("byte %zu ^ 0x%02x: %d", at, masks[m], rc);
		}
	}
	remove_dir(dir);
}

/* Rewrites the u32/u64 at @offset of manifest 1 and recomputes its checksum, then expects
 * weir_manifest_read to say @reason. */
static void expect_field_rejected(const char *dir, const uint8_t *whole, size_t length,
				  size_t offset, unsigned width, uint64_t value, const char *reason)
{
	char path[PATH_MAX], error[512] = "";
	weir_manifest_path(dir, 1, path, sizeof(path));
	memcpy(file_bytes, whole, length);
	put_le(file_bytes + offset, width, value);
	put_le(file_bytes + length - 8, 8, XXH3_64bits(file_bytes, length - 8));
	write_whole(path, file_bytes, length);
	assert_int_equal(weir_manifest_read(path, &got, error, sizeof(error)), -EBADMSG);
	if (strstr(error, reason) == NULL || strstr(error, path) == NULL)
		fail_msg("offset %zu = %llu: '%s' lacks '%s'", offset, (unsigned long long)value,
			 error, reason);
}

static void checksummed_but_wrong(void **unused)
{
	(void)unused;
	char dir[64], path[PATH_MAX], other[PATH_MAX], error[512];
	make_dir(dir);
	write_epoch(dir, 1, KEEP_ALL);
	weir_manifest_path(dir, 1, path, sizeof(path));
	uint8_t whole[1024];
	size_t length = read_whole(path, whole, sizeof(whole));
	size_t shard0 = 88 + 3 * 32;
	expect_field_rejected(dir, whole, length, 8, 4, 2, "version 2");
	expect_field_rejected(dir, whole, length, 76, 4, 0, "worker count 0");
	expect_field_rejected(dir, whole, length, 76, 4, 257, "worker count 257");
	expect_field_rejected(dir, whole, length, 76, 4, 3, "3 workers need");
	expect_field_rejected(dir, whole, length, 80, 4, 257, "split count 257");
	expect_field_rejected(dir, whole, length, 80, 4, 2, "2 splits");
	expect_field_rejected(dir, whole, length, 16, 8, 0, "epoch 0");
	expect_field_rejected(dir, whole, length, 84, 4, 2, "unknown flags");
	expect_field_rejected(dir, whole, length, shard0 + 48, 4, 3, "shard 0: unknown flags");
	expect_field_rejected(dir, whole, length, shard0 + 56 + 52, 4, 1, "shard 1: unknown");
	/* A whole manifest under another epoch's name. */
	write_whole(path, whole, length);
	weir_manifest_path(dir, 5, other, sizeof(other));
	write_whole(other, whole, length);
	assert_int_equal(weir_manifest_read(other, &got, error, sizeof(error)), -EBADMSG);
	assert_non_null(strstr(error, "holds epoch 1, its name says 5"));
	/* Under a name that is no manifest's, it reads (e.g. a copy for inspection). */
	snprintf(other, sizeof(other), "%s/copy", dir);
	write_whole(other, whole, length);
	assert_int_equal(weir_manifest_read(other, &got, error, sizeof(error)), 0);
	assert_int_equal(got.epoch, 1);
	snprintf(other, sizeof(other), "%s/nothing", dir);
	assert_int_equal(weir_manifest_read(other, &got, error, sizeof(error)), -ENOENT);
	assert_non_null(strstr(error, other));
	remove_dir(dir);
}

static void write_errors(void **unused)
{
	(void)unused;
	char dir[64], path[PATH_MAX], error[512] = "";
	make_dir(dir);
	snprintf(path, sizeof(path), "%s/missing", dir);
	fill_info(&written, 1, 1, 1);
	assert_int_equal(weir_manifest_write(path, &written, 3, error, sizeof(error)), -ENOENT);
	assert_non_null(strstr(error, "missing/manifest.tmp"));
	/* Misuse is our bug: keep 0, epoch 0, worker counts out of range, too many splits. */
	expect_assert_failure(weir_manifest_write(dir, &written, 0, error, sizeof(error)));
	written.epoch = 0;
	expect_assert_failure(weir_manifest_write(dir, &written, 3, error, sizeof(error)));
	written.epoch = 1;
	written.worker_count = 0;
	expect_assert_failure(weir_manifest_write(dir, &written, 3, error, sizeof(error)));
	written.worker_count = WEIR_WORKERS_MAX + 1;
	expect_assert_failure(weir_manifest_write(dir, &written, 3, error, sizeof(error)));
	written.worker_count = 1;
	written.split_count = WEIR_CHECKPOINT_SPLITS_MAX + 1;
	expect_assert_failure(weir_manifest_write(dir, &written, 3, error, sizeof(error)));
	assert_epochs(dir, NULL, 0);
	remove_dir(dir);
}

/* ---- fault injection, in a re-executed child ---- */

/* The child: writes manifests 1..@last (keep all); every write but the last must succeed and
 * the last must return @expected.  Exit status 0 when all went as expected. */
static int fault_child(const char *dir, uint64_t last, int expected)
{
	if (!weir_fault_enabled() || weir_fault_config_error() != NULL) {
		fprintf(stderr, "fault child: WEIR_FAULT not in effect\n");
		return 3;
	}
	for (uint64_t epoch = 1; epoch <= last; epoch++) {
		char error[512] = "";
		fill_info(&written, epoch, 4, 3);
		int rc = weir_manifest_write(dir, &written, KEEP_ALL, error, sizeof(error));
		int want = epoch == last ? expected : 0;
		if (rc != want || (rc != 0 && strstr(error, dir) == NULL)) {
			fprintf(stderr, "fault child: epoch %llu: %d (want %d) '%s'\n",
				(unsigned long long)epoch, rc, want, error);
			return 1;
		}
	}
	return 0;
}

static void fault_case(const char *rule, uint64_t last, int expected)
{
	char dir[64], path[PATH_MAX], error[512] = "", last_text[24], expected_text[24];
	make_dir(dir);
	snprintf(last_text, sizeof(last_text), "%llu", (unsigned long long)last);
	snprintf(expected_text, sizeof(expected_text), "%d", expected);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *args[] = {(char *)"test_state_manifest", (char *)"--fault-child", dir,
				last_text, expected_text, NULL};
		setenv("WEIR_FAULT", rule, 1);
		execv("/proc/self/exe", args);
		_exit(127);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("WEIR_FAULT=%s: child status 0x%x", rule, status);
	/* Only the manifests that were written whole are there, and no tmp file. */
	uint64_t kept = expected == 0 ? last : last - 1;
	uint64_t epochs[WEIR_MANIFESTS_MAX];
	assert_int_equal(weir_manifest_list(dir, epochs, WEIR_MANIFESTS_MAX), (int)kept);
	for (uint64_t epoch = 1; epoch <= kept; epoch++) {
		weir_manifest_path(dir, epoch, path, sizeof(path));
		assert_int_equal(weir_manifest_read(path, &got, error, sizeof(error)), 0);
		fill_info(&written, epoch, 4, 3);
		assert_info_equal(&written, &got);
	}
	snprintf(path, sizeof(path), "%s/manifest.tmp", dir);
	assert_false(exists(path));
	remove_dir(dir);
}

static void faults(void **unused)
{
	(void)unused;
	fault_case("fsync-eio@1", 1, -EIO);	/* the file's fsync: never renamed */
	fault_case("fsync-eio@2", 1, -EIO);	/* the directory's fsync: taken back */
	fault_case("write-eio@1", 1, -EIO);
	fault_case("enospc@1", 1, -ENOSPC);
	fault_case("fsync-eio@3", 2, -EIO);	/* the earlier manifest stays */
	fault_case("fsync-eio@4", 2, -EIO);
	fault_case("write-eio@2", 2, -EIO);
	fault_case("short-write@1,short-write@2", 1, 0);
	/* Fails after a partial write.  (core/fault counts a rule's hits only when no rule
	 * before it fired, so the later rule goes first.) */
	fault_case("enospc@2,short-write@1", 1, -ENOSPC);
	fault_case("short-write@2", 3, 0);
}

int main(int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "--fault-child") == 0)
		return fault_child(argv[2], strtoull(argv[3], NULL, 10), atoi(argv[4]));
	unsetenv("WEIR_FAULT"); /* the parent's own writes must not fail */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(layout),
		cmocka_unit_test(path_format),
		cmocka_unit_test(keep_newest),
		cmocka_unit_test(list_names),
		cmocka_unit_test(newest_skips_damaged),
		cmocka_unit_test(newest_all_damaged),
		cmocka_unit_test(newest_none),
		cmocka_unit_test(newest_after_delete),
		cmocka_unit_test(tmp_left_over),
		cmocka_unit_test(truncated_everywhere),
		cmocka_unit_test(every_byte_changed),
		cmocka_unit_test(checksummed_but_wrong),
		cmocka_unit_test(write_errors),
		cmocka_unit_test(faults),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
