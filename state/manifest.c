/* Checkpoint manifests (state/manifest.h): a fixed little-endian encoding, written with
 * write, fsync, rename, fsync the directory, so that a manifest-N file exists only complete.
 *
 * The encoding is spelled out field by field rather than being the C struct, which has
 * padding, a bool and a host byte order.  Version 1 (offsets and lengths in bytes, integers
 * little-endian):
 *
 *    0  magic "WEIRMANI"                                   8
 *    8  version = 1                                        u32
 *   12  length of the whole file, checksum included       u32
 *   16  epoch (>= 1)                                       u64
 *   24  created_unix_ms                                    u64
 *   32  duration_ns                                        u64
 *   40  seed                                               u64
 *   48  events_in                                          u64
 *   56  sink_bytes[0], sink_bytes[1]                       u64 each
 *   72  key_groups                                         u32
 *   76  worker_count (1..WEIR_WORKERS_MAX)                 u32
 *   80  split_count (0..WEIR_CHECKPOINT_SPLITS_MAX)        u32
 *   84  flags: bit 0 finished, the other bits 0           u32
 *   88  split_count splits of 32: begin, end, step (u64), max_seen (i64)
 *    .  worker_count shards of 56: first_segment, end_segment, end_offset (u64),
 *       watermark (i64), state_bytes, appended_bytes (u64), flags (u32: bit 0 snapshot,
 *       the other bits 0), reserved (u32, 0)
 *    .  XXH3_64bits (seed 0) of every byte before it       u64
 *
 * So a manifest is 96 + 32 * split_count + 56 * worker_count bytes: 152 to 22624.  A reader
 * accepts only version 1 and only exactly this length; a change to the layout is version 2. */
#include "state/manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/assert.h"
#include "io/durable.h"

#define MANIFEST_MAGIC "WEIRMANI"
#define MANIFEST_MAGIC_LENGTH 8u
#define MANIFEST_VERSION 1u
#define MANIFEST_OFFSET_EPOCH 16u
#define MANIFEST_OFFSET_COUNTS 76u /* worker_count, then split_count */
#define MANIFEST_FIXED_LENGTH 88u  /* header and the scalar fields, up to the splits */
#define MANIFEST_SPLIT_LENGTH 32u
#define MANIFEST_SHARD_LENGTH 56u
#define MANIFEST_CHECKSUM_LENGTH 8u
#define MANIFEST_FLAG_FINISHED 1u
#define MANIFEST_SHARD_FLAG_SNAPSHOT 1u

#define MANIFEST_PREFIX "manifest-"
#define MANIFEST_PREFIX_LENGTH 9u
#define MANIFEST_DIGITS 20u	   /* enough for any uint64_t */
#define MANIFEST_TMP_NAME "manifest.tmp"
/* The longest name we make in a directory: "/manifest-" and 20 digits, or "/manifest.tmp". */
#define MANIFEST_NAME_LENGTH_MAX (1u + MANIFEST_PREFIX_LENGTH + MANIFEST_DIGITS)

static size_t manifest_length(uint32_t split_count, uint32_t worker_count)
{
	return MANIFEST_FIXED_LENGTH + (size_t)split_count * MANIFEST_SPLIT_LENGTH +
	       (size_t)worker_count * MANIFEST_SHARD_LENGTH + MANIFEST_CHECKSUM_LENGTH;
}

#define MANIFEST_LENGTH_MIN (MANIFEST_FIXED_LENGTH + MANIFEST_SHARD_LENGTH + \
			     MANIFEST_CHECKSUM_LENGTH)
#define MANIFEST_LENGTH_MAX                                                                    \
	(MANIFEST_FIXED_LENGTH + WEIR_CHECKPOINT_SPLITS_MAX * MANIFEST_SPLIT_LENGTH +         \
	 WEIR_WORKERS_MAX * MANIFEST_SHARD_LENGTH + MANIFEST_CHECKSUM_LENGTH)

/* The buffers below live on the main thread's stack; keep them small. */
WEIR_STATIC_ASSERT(MANIFEST_LENGTH_MAX <= 32u * 1024u, "a manifest fits a stack buffer");
WEIR_STATIC_ASSERT(sizeof(MANIFEST_MAGIC) - 1 == MANIFEST_MAGIC_LENGTH, "8-byte magic");
WEIR_STATIC_ASSERT(sizeof(MANIFEST_PREFIX) - 1 == MANIFEST_PREFIX_LENGTH, "prefix length");

/* ---- encoding ---- */

/* Where the next field goes (writer) or comes from (reader), and where the manifest ends. */
struct writer {
	uint8_t *at;
	const uint8_t *end;
};

struct reader {
	const uint8_t *at;
	const uint8_t *end;
};

static void put_u32(struct writer *c, uint32_t value)
{
	WEIR_ASSERT(c->end - c->at >= 4);
	for (unsigned i = 0; i < 4; i++)
		*c->at++ = (uint8_t)(value >> (8 * i));
}

static void put_u64(struct writer *c, uint64_t value)
{
	WEIR_ASSERT(c->end - c->at >= 8);
	for (unsigned i = 0; i < 8; i++)
		*c->at++ = (uint8_t)(value >> (8 * i));
}

static uint32_t get_u32(struct reader *c)
{
	WEIR_ASSERT(c->end - c->at >= 4);
	uint32_t value = 0;
	for (unsigned i = 0; i < 4; i++)
		value |= (uint32_t)*c->at++ << (8 * i);
	return value;
}

static uint64_t get_u64(struct reader *c)
{
	WEIR_ASSERT(c->end - c->at >= 8);
	uint64_t value = 0;
	for (unsigned i = 0; i < 8; i++)
		value |= (uint64_t)*c->at++ << (8 * i);
	return value;
}

/* Two's complement both ways, without relying on implementation-defined conversions. */
static uint64_t i64_bits(int64_t value)
{
	uint64_t bits;
	memcpy(&bits, &value, sizeof(bits));
	return bits;
}

static int64_t bits_i64(uint64_t bits)
{
	int64_t value;
	memcpy(&value, &bits, sizeof(value));
	return value;
}

/* Encodes @info into @buffer (MANIFEST_LENGTH_MAX bytes).  Returns: the length. */
static size_t manifest_encode(const struct weir_checkpoint_info *info, uint8_t *buffer)
{
	size_t length = manifest_length(info->split_count, info->worker_count);
	struct writer c = {buffer, buffer + length};

	memcpy(c.at, MANIFEST_MAGIC, MANIFEST_MAGIC_LENGTH);
	c.at += MANIFEST_MAGIC_LENGTH;
	put_u32(&c, MANIFEST_VERSION);
	put_u32(&c, (uint32_t)length);
	put_u64(&c, info->epoch);
	put_u64(&c, info->created_unix_ms);
	put_u64(&c, info->duration_ns);
	put_u64(&c, info->seed);
	put_u64(&c, info->events_in);
	put_u64(&c, info->sink_bytes[0]);
	put_u64(&c, info->sink_bytes[1]);
	put_u32(&c, info->key_groups);
	put_u32(&c, info->worker_count);
	put_u32(&c, info->split_count);
	put_u32(&c, info->finished ? MANIFEST_FLAG_FINISHED : 0);
	WEIR_ASSERT(c.at == buffer + MANIFEST_FIXED_LENGTH);
	for (uint32_t i = 0; i < info->split_count; i++) {
		const struct weir_split *split = &info->splits[i];
		put_u64(&c, split->begin);
		put_u64(&c, split->end);
		put_u64(&c, split->step);
		put_u64(&c, i64_bits(split->max_seen));
	}
	for (uint32_t i = 0; i < info->worker_count; i++) {
		const struct weir_checkpoint_shard *shard = &info->shards[i];
		put_u64(&c, shard->log.first_segment);
		put_u64(&c, shard->log.end_segment);
		put_u64(&c, shard->log.end_offset);
		put_u64(&c, i64_bits(shard->watermark));
		put_u64(&c, shard->state_bytes);
		put_u64(&c, shard->appended_bytes);
		put_u32(&c, shard->snapshot ? MANIFEST_SHARD_FLAG_SNAPSHOT : 0);
		put_u32(&c, 0);
	}
	put_u64(&c, XXH3_64bits(buffer, length - MANIFEST_CHECKSUM_LENGTH));
	WEIR_ASSERT(c.at == c.end);
	return length;
}

/* Checks the header of @buffer (@length bytes, the whole file) and the counts.
 * Returns: 0, or -EBADMSG with the reason in @reason. */
static int manifest_check_header(const uint8_t *buffer, size_t length, char *reason,
				 size_t reason_length)
{
	struct reader c = {buffer, buffer + length};
	if (length < MANIFEST_LENGTH_MIN) {
		snprintf(reason, reason_length, "too short: %zu bytes, a manifest has at least %u",
			 length, (unsigned)MANIFEST_LENGTH_MIN);
		return -EBADMSG;
	}
	if (memcmp(buffer, MANIFEST_MAGIC, MANIFEST_MAGIC_LENGTH) != 0) {
		snprintf(reason, reason_length, "not a weir manifest (wrong magic)");
		return -EBADMSG;
	}
	c.at += MANIFEST_MAGIC_LENGTH;
	uint32_t version = get_u32(&c), stated_length = get_u32(&c);
	if (version != MANIFEST_VERSION) {
		snprintf(reason, reason_length, "version %u, this weir reads version %u", version,
			 MANIFEST_VERSION);
		return -EBADMSG;
	}
	if (stated_length != length) {
		snprintf(reason, reason_length, "its header says %u bytes, the file has %zu",
			 stated_length, length);
		return -EBADMSG;
	}
	c.at = buffer + MANIFEST_OFFSET_COUNTS;
	uint32_t worker_count = get_u32(&c), split_count = get_u32(&c);
	if (worker_count == 0 || worker_count > WEIR_WORKERS_MAX) {
		snprintf(reason, reason_length, "worker count %u is not in 1..%u", worker_count,
			 WEIR_WORKERS_MAX);
		return -EBADMSG;
	}
	if (split_count > WEIR_CHECKPOINT_SPLITS_MAX) {
		snprintf(reason, reason_length, "split count %u is more than %u", split_count,
			 WEIR_CHECKPOINT_SPLITS_MAX);
		return -EBADMSG;
	}
	if (manifest_length(split_count, worker_count) != length) {
		snprintf(reason, reason_length, "%u splits and %u workers need %zu bytes, the "
			 "file has %zu", split_count, worker_count,
			 manifest_length(split_count, worker_count), length);
		return -EBADMSG;
	}
	uint64_t stored, computed = XXH3_64bits(buffer, length - MANIFEST_CHECKSUM_LENGTH);
	c.at = buffer + length - MANIFEST_CHECKSUM_LENGTH;
	stored = get_u64(&c);
	if (stored != computed) {
		snprintf(reason, reason_length,
			 "checksum mismatch: stored %016llx, computed %016llx",
			 (unsigned long long)stored, (unsigned long long)computed);
		return -EBADMSG;
	}
	return 0;
}

/* Decodes @buffer (@length bytes) into @info after checking all of it.
 * Returns: 0, or -EBADMSG with the reason in @reason. */
static int manifest_decode(const uint8_t *buffer, size_t length,
			   struct weir_checkpoint_info *info, char *reason, size_t reason_length)
{
	int rc = manifest_check_header(buffer, length, reason, reason_length);
	if (rc != 0)
		return rc;
	struct reader c = {buffer + MANIFEST_OFFSET_EPOCH, buffer + length};
	memset(info, 0, sizeof(*info));
	info->epoch = get_u64(&c);
	info->created_unix_ms = get_u64(&c);
	info->duration_ns = get_u64(&c);
	info->seed = get_u64(&c);
	info->events_in = get_u64(&c);
	info->sink_bytes[0] = get_u64(&c);
	info->sink_bytes[1] = get_u64(&c);
	info->key_groups = get_u32(&c);
	info->worker_count = get_u32(&c);
	info->split_count = get_u32(&c);
	uint32_t flags = get_u32(&c);
	/* The checksum matched, so what follows was written this way: by a different writer. */
	if (info->epoch == 0 || (flags & ~MANIFEST_FLAG_FINISHED) != 0) {
		snprintf(reason, reason_length, "%s",
			 info->epoch == 0 ? "epoch 0" : "unknown flags");
		return -EBADMSG;
	}
	info->finished = (flags & MANIFEST_FLAG_FINISHED) != 0;
	for (uint32_t i = 0; i < info->split_count; i++) {
		struct weir_split *split = &info->splits[i];
		split->begin = get_u64(&c);
		split->end = get_u64(&c);
		split->step = get_u64(&c);
		split->max_seen = bits_i64(get_u64(&c));
	}
	for (uint32_t i = 0; i < info->worker_count; i++) {
		struct weir_checkpoint_shard *shard = &info->shards[i];
		shard->log.first_segment = get_u64(&c);
		shard->log.end_segment = get_u64(&c);
		shard->log.end_offset = get_u64(&c);
		shard->watermark = bits_i64(get_u64(&c));
		shard->state_bytes = get_u64(&c);
		shard->appended_bytes = get_u64(&c);
		uint32_t shard_flags = get_u32(&c), reserved = get_u32(&c);
		if ((shard_flags & ~MANIFEST_SHARD_FLAG_SNAPSHOT) != 0 || reserved != 0) {
			snprintf(reason, reason_length, "shard %u: unknown flags", i);
			return -EBADMSG;
		}
		shard->snapshot = (shard_flags & MANIFEST_SHARD_FLAG_SNAPSHOT) != 0;
	}
	WEIR_ASSERT(c.at + MANIFEST_CHECKSUM_LENGTH == c.end);
	return 0;
}

/* ---- names ---- */

/* Whether @name is exactly "manifest-" and 20 digits naming a uint64_t; the epoch in @epoch. */
static bool manifest_name_parse(const char *name, uint64_t *epoch)
{
	if (strncmp(name, MANIFEST_PREFIX, MANIFEST_PREFIX_LENGTH) != 0 ||
	    strlen(name) != MANIFEST_PREFIX_LENGTH + MANIFEST_DIGITS)
		return false;
	uint64_t value = 0;
	for (const char *digit = name + MANIFEST_PREFIX_LENGTH; *digit != '\0'; digit++) {
		if (*digit < '0' || *digit > '9')
			return false;
		unsigned next = (unsigned)(*digit - '0');
		if (value > (UINT64_MAX - next) / 10)
			return false; /* 20 digits can say more than a uint64_t holds */
		value = value * 10 + next;
	}
	*epoch = value;
	return true;
}

void weir_manifest_path(const char *dir, uint64_t epoch, char *path, size_t path_length)
{
	WEIR_ASSERT(dir != NULL);
	WEIR_ASSERT(path != NULL);
	int n = snprintf(path, path_length, "%s/" MANIFEST_PREFIX "%020llu", dir,
			 (unsigned long long)epoch);
	/* Callers give PATH_MAX bytes and check the directory's length (dir_fits). */
	WEIR_VERIFY(n >= 0);
	WEIR_VERIFY((size_t)n < path_length);
}

/* Whether names we make in @dir fit PATH_MAX.  Returns: 0 or -ENAMETOOLONG with a message. */
static int dir_fits(const char *dir, char *error, size_t error_length)
{
	if (strlen(dir) + MANIFEST_NAME_LENGTH_MAX < PATH_MAX)
		return 0;
	snprintf(error, error_length, "checkpoint directory name too long: %s", dir);
	return -ENAMETOOLONG;
}

/* Inserts @epoch into the ascending @epochs (@count of at most @max), keeping the newest. */
static uint32_t epochs_insert(uint64_t *epochs, uint32_t count, uint32_t max, uint64_t epoch)
{
	uint32_t at = count;
	while (at > 0 && epochs[at - 1] > epoch)
		at--;
	if (count == max) {
		if (at == 0)
			return count; /* older than all @max kept */
		memmove(epochs, epochs + 1, (size_t)(at - 1) * sizeof(*epochs));
		epochs[at - 1] = epoch;
		return count;
	}
	memmove(epochs + at + 1, epochs + at, (size_t)(count - at) * sizeof(*epochs));
	epochs[at] = epoch;
	return count + 1;
}

/* When @dir holds more than @max manifests this returns the newest @max: recovery and
 * retention only ever want the newest. */
int weir_manifest_list(const char *dir, uint64_t *epochs, uint32_t max)
{
	WEIR_ASSERT(dir != NULL);
	WEIR_ASSERT(epochs != NULL || max == 0);
	DIR *stream = opendir(dir);
	if (stream == NULL)
		return -errno;
	uint32_t count = 0;
	struct dirent *entry;
	errno = 0;
	while ((entry = readdir(stream)) != NULL) {
		uint64_t epoch;
		if (manifest_name_parse(entry->d_name, &epoch) && max > 0)
			count = epochs_insert(epochs, count, max, epoch);
		errno = 0;
	}
	int rc = -errno;
	closedir(stream);
	for (uint32_t i = 1; i < count; i++)
		WEIR_ASSERT(epochs[i - 1] < epochs[i]);
	return rc != 0 ? rc : (int)count;
}

/* ---- reading ---- */

/* Reads and checks @path.  Returns: 0, -EBADMSG or -errno, with the reason (not naming the
 * file) in @reason. */
static int manifest_read_reason(const char *path, struct weir_checkpoint_info *info,
				char *reason, size_t reason_length)
{
	uint8_t buffer[MANIFEST_LENGTH_MAX];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int rc = -errno;
		snprintf(reason, reason_length, "cannot open: %s", strerror(-rc));
		return rc;
	}
	struct stat st;
	int rc = fstat(fd, &st) != 0 ? -errno : 0;
	if (rc != 0) {
		snprintf(reason, reason_length, "cannot stat: %s", strerror(-rc));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(reason, reason_length, "not a regular file");
		rc = -EBADMSG;
		goto out_close;
	}
	if (st.st_size > (off_t)MANIFEST_LENGTH_MAX) {
		snprintf(reason, reason_length, "too long: %lld bytes, a manifest has at most %u",
			 (long long)st.st_size, (unsigned)MANIFEST_LENGTH_MAX);
		rc = -EBADMSG;
		goto out_close;
	}
	size_t length = (size_t)st.st_size, done = 0;
	while (done < length) {
		ssize_t n = read(fd, buffer + done, length - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EBADMSG; /* 0: it shrank while we read */
			snprintf(reason, reason_length, "cannot read: %s", strerror(-rc));
			goto out_close;
		}
		done += (size_t)n;
	}
	rc = manifest_decode(buffer, length, info, reason, reason_length);
	const char *slash = strrchr(path, '/');
	uint64_t named_epoch;
	if (rc == 0 && manifest_name_parse(slash != NULL ? slash + 1 : path, &named_epoch) &&
	    named_epoch != info->epoch) {
		/* A whole manifest under another's name would make recovery use the wrong one. */
		snprintf(reason, reason_length, "holds epoch %llu, its name says %llu",
			 (unsigned long long)info->epoch, (unsigned long long)named_epoch);
		rc = -EBADMSG;
	}
out_close:
	close(fd);
	return rc;
}

int weir_manifest_read(const char *path, struct weir_checkpoint_info *info, char *error,
		       size_t error_length)
{
	WEIR_ASSERT(path != NULL);
	WEIR_ASSERT(info != NULL);
	char reason[256];
	int rc = manifest_read_reason(path, info, reason, sizeof(reason));
	if (rc != 0)
		snprintf(error, error_length, "checkpoint manifest %s: %s", path, reason);
	WEIR_ASSERT(rc <= 0);
	return rc;
}

/* Reads the manifests in @dir, newest first, until one is whole; each that is not is said on
 * stderr.  Any failure to read one counts as damage (the header's contract is 1, 0 or
 * -EBADMSG), but a failure to list @dir other than its absence is returned as is. */
int weir_manifest_newest(const char *dir, struct weir_checkpoint_info *info, char *error,
			 size_t error_length)
{
	WEIR_ASSERT(dir != NULL);
	WEIR_ASSERT(info != NULL);
	uint64_t epochs[WEIR_MANIFESTS_MAX];
	int rc = dir_fits(dir, error, error_length);
	if (rc != 0)
		return rc;
	int count = weir_manifest_list(dir, epochs, WEIR_MANIFESTS_MAX);
	if (count == -ENOENT || count == 0)
		return 0; /* a fresh state dir */
	if (count < 0) {
		snprintf(error, error_length, "cannot list checkpoint manifests in %s: %s", dir,
			 strerror(-count));
		return count;
	}
	char path[PATH_MAX], reason[256], newest_reason[256] = "";
	for (int i = count - 1; i >= 0; i--) {
		weir_manifest_path(dir, epochs[i], path, sizeof(path));
		if (manifest_read_reason(path, info, reason, sizeof(reason)) == 0) {
			WEIR_ASSERT(info->epoch == epochs[i]);
			return 1;
		}
		if (i == count - 1)
			snprintf(newest_reason, sizeof(newest_reason), "%s", reason);
		fprintf(stderr, "weir: checkpoint manifest %s is damaged (%s)%s\n", path, reason,
			i > 0 ? "; using the one before it" : "");
	}
	weir_manifest_path(dir, epochs[count - 1], path, sizeof(path));
	snprintf(error, error_length, "none of the %d checkpoint manifests in %s reads back whole "
		 "(the newest, %s: %s); refusing to start from empty state", count, dir, path,
		 newest_reason);
	return -EBADMSG;
}

/* ---- writing ---- */

/* Writes @buffer to @tmp_path and fsyncs it.  On failure @tmp_path is removed.
 * Returns: 0, or -errno with a message naming the file. */
static int write_tmp(const char *tmp_path, const uint8_t *buffer, size_t length, char *error,
		     size_t error_length)
{
	int fd = open(tmp_path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0) {
		int rc = -errno;
		snprintf(error, error_length, "cannot create %s: %s", tmp_path, strerror(-rc));
		return rc;
	}
	const char *step = "write";
	int rc = weir_durable_write(fd, buffer, length, 0);
	if (rc == 0) {
		step = "fsync";
		rc = weir_durable_fsync(fd, false);
	}
	/* After a failed fsync the page cache may say anything: the file is never renamed. */
	if (close(fd) != 0 && rc == 0) {
		step = "close";
		rc = -errno;
	}
	if (rc != 0) {
		snprintf(error, error_length, "cannot %s %s: %s", step, tmp_path, strerror(-rc));
		unlink(tmp_path);
	}
	return rc;
}

/* Deletes the oldest manifests in @dir so that @keep remain.  Not fsynced: an old manifest
 * that a crash brings back is only read when every newer one is damaged, and then a replay
 * of segments deleted since fails loudly rather than silently.  Returns: 0 or -errno. */
static int manifest_remove_old(const char *dir, uint32_t keep, char *error, size_t error_length)
{
	uint64_t epochs[WEIR_MANIFESTS_MAX];
	int count = weir_manifest_list(dir, epochs, WEIR_MANIFESTS_MAX);
	if (count < 0) {
		snprintf(error, error_length, "cannot list checkpoint manifests in %s: %s", dir,
			 strerror(-count));
		return count;
	}
	WEIR_ASSERT(count >= 1); /* the one just written */
	char path[PATH_MAX];
	for (int i = 0; i + (int)keep < count; i++) {
		weir_manifest_path(dir, epochs[i], path, sizeof(path));
		if (unlink(path) != 0 && errno != ENOENT) {
			int rc = -errno;
			snprintf(error, error_length,
				 "cannot delete old checkpoint manifest %s: %s", path,
				 strerror(-rc));
			return rc;
		}
	}
	return 0;
}

int weir_manifest_write(const char *dir, const struct weir_checkpoint_info *info, uint32_t keep,
			char *error, size_t error_length)
{
	WEIR_VERIFY(dir != NULL);
	WEIR_VERIFY(info != NULL);
	WEIR_VERIFY(keep >= 1);
	WEIR_VERIFY(info->epoch >= 1);
	WEIR_VERIFY(info->worker_count >= 1);
	WEIR_VERIFY(info->worker_count <= WEIR_WORKERS_MAX);
	WEIR_VERIFY(info->split_count <= WEIR_CHECKPOINT_SPLITS_MAX);
	uint8_t buffer[MANIFEST_LENGTH_MAX];
	char tmp_path[PATH_MAX], path[PATH_MAX];
	int rc = dir_fits(dir, error, error_length);
	if (rc != 0)
		return rc;
	size_t length = manifest_encode(info, buffer);
	snprintf(tmp_path, sizeof(tmp_path), "%s/" MANIFEST_TMP_NAME, dir);
	weir_manifest_path(dir, info->epoch, path, sizeof(path));

	rc = write_tmp(tmp_path, buffer, length, error, error_length);
	if (rc != 0)
		return rc;
	if (rename(tmp_path, path) != 0) {
		rc = -errno;
		snprintf(error, error_length, "cannot rename %s to %s: %s", tmp_path, path,
			 strerror(-rc));
		unlink(tmp_path);
		return rc;
	}
	rc = weir_durable_sync_dir(dir);
	if (rc != 0) {
		/* The rename may or may not survive a crash.  Take it back, so that a failed write
		 * leaves no manifest N in this process's view either (best effort: the directory
		 * just failed to sync). */
		snprintf(error, error_length, "cannot fsync directory %s after renaming %s into "
			 "it: %s", dir, path, strerror(-rc));
		unlink(path);
		return rc;
	}
	return manifest_remove_old(dir, keep, error, error_length);
}
