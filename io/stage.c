#include "io/stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/fault.h"
#include "core/mem.h"
#include "io/durable.h"

#define STAGE_EPOCHS_MAX 64u /* epochs waiting at once: 2 normally, more after abandons */
#define STAGE_COPY_LENGTH (1u << 20)

struct stage_epoch {
	uint64_t epoch;
	int fd;		 /* O_RDWR */
	uint64_t length; /* bytes */
	bool synced;
};

struct weir_stage {
	char dir[700];
	char output_path[256];
	int output_fd;
	uint32_t index;
	uint64_t published_length;
	uint64_t published_epoch;
	bool dir_dirty; /* a stage file was made since the directory was last fsynced */
	struct stage_epoch epochs[STAGE_EPOCHS_MAX]; /* ascending by epoch */
	uint32_t epoch_count;
	char *copy_buffer;
	char error[600];
};

__attribute__((format(printf, 3, 4))) static int stage_fail(struct weir_stage *stage, int rc,
							   const char *format, ...)
{
	WEIR_ASSERT(rc < 0);
	if (stage->error[0] == '\0') {
		va_list args;
		va_start(args, format);
		vsnprintf(stage->error, sizeof(stage->error), format, args);
		va_end(args);
	}
	return rc;
}

static void epoch_path(const struct weir_stage *stage, uint64_t epoch, char *path, size_t length)
{
	snprintf(path, length, "%s/%020" PRIu64 ".stage", stage->dir, epoch);
}

/* Makes the stage folder's names durable (new stage files, deleted ones). */
static int sync_dir(struct weir_stage *stage)
{
	int rc = weir_durable_sync_dir(stage->dir);
	if (rc != 0)
		return stage_fail(stage, rc, "fsync of %s: %s", stage->dir, strerror(-rc));
	stage->dir_dirty = false;
	return 0;
}

int weir_stage_create(struct weir_stage **stage_out, const char *state_dir, uint32_t index,
		      int output_fd, const char *output_path, char *error, size_t error_length)
{
	WEIR_VERIFY(stage_out != NULL && state_dir != NULL && output_path != NULL);
	struct weir_stage *stage = weir_mem_alloc(sizeof(*stage), 64, WEIR_MEM_ARENA_DEFAULT);
	if (stage == NULL)
		return -ENOMEM;
	stage->copy_buffer = weir_mem_alloc(STAGE_COPY_LENGTH, 4096, WEIR_MEM_ARENA_DEFAULT);
	if (stage->copy_buffer == NULL) {
		weir_mem_free(stage, WEIR_MEM_ARENA_DEFAULT);
		return -ENOMEM;
	}
	stage->output_fd = output_fd;
	stage->index = index;
	snprintf(stage->dir, sizeof(stage->dir), "%s/output-%u", state_dir, index);
	snprintf(stage->output_path, sizeof(stage->output_path), "%s", output_path);
	if (mkdir(stage->dir, 0755) != 0 && errno != EEXIST) {
		int rc = -errno;
		snprintf(error, error_length, "cannot make %s: %s", stage->dir, strerror(-rc));
		weir_stage_destroy(stage);
		return rc;
	}
	*stage_out = stage;
	return 0;
}

void weir_stage_destroy(struct weir_stage *stage)
{
	if (stage == NULL)
		return;
	for (uint32_t i = 0; i < stage->epoch_count; i++)
		close(stage->epochs[i].fd);
	weir_mem_free(stage->copy_buffer, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(stage, WEIR_MEM_ARENA_DEFAULT);
}

const char *weir_stage_error(const struct weir_stage *stage)
{
	return stage->error;
}

uint64_t weir_stage_published_length(const struct weir_stage *stage)
{
	return stage->published_length;
}

/* The entry of @epoch, made (with its file) if new.  NULL on error (*rc says which). */
static struct stage_epoch *epoch_entry(struct weir_stage *stage, uint64_t epoch, int *rc)
{
	uint32_t at = stage->epoch_count;
	while (at > 0 && stage->epochs[at - 1].epoch >= epoch) {
		if (stage->epochs[at - 1].epoch == epoch)
			return &stage->epochs[at - 1];
		at--;
	}
	if (stage->epoch_count == STAGE_EPOCHS_MAX) {
		*rc = stage_fail(stage, -ENOSPC,
				 "output %s: more than %u epochs wait to be published",
				 stage->output_path, STAGE_EPOCHS_MAX);
		return NULL;
	}
	char path[800];
	epoch_path(stage, epoch, path, sizeof(path));
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		*rc = stage_fail(stage, -errno, "cannot make %s: %s", path, strerror(errno));
		return NULL;
	}
	memmove(&stage->epochs[at + 1], &stage->epochs[at],
		sizeof(stage->epochs[0]) * (stage->epoch_count - at));
	stage->epochs[at] = (struct stage_epoch){.epoch = epoch, .fd = fd};
	stage->epoch_count++;
	stage->dir_dirty = true;
	return &stage->epochs[at];
}

int weir_stage_append(struct weir_stage *stage, uint64_t epoch, const void *data, size_t length)
{
	WEIR_ASSERT(epoch > stage->published_epoch);
	if (stage->error[0] != '\0')
		return -EIO;
	int rc = 0;
	struct stage_epoch *entry = epoch_entry(stage, epoch, &rc);
	if (entry == NULL)
		return rc;
	WEIR_ASSERT(!entry->synced); /* nothing is added to an epoch after its prepare */
	rc = weir_durable_write(entry->fd, data, length, entry->length);
	if (rc != 0) {
		char path[800];
		epoch_path(stage, epoch, path, sizeof(path));
		return stage_fail(stage, rc, "writing %s at byte %" PRIu64 ": %s", path,
				  entry->length, strerror(-rc));
	}
	entry->length += length;
	return 0;
}

int weir_stage_prepare(struct weir_stage *stage, uint64_t epoch, uint64_t *bytes_after)
{
	if (stage->error[0] != '\0')
		return -EIO;
	uint64_t length = stage->published_length;
	for (uint32_t i = 0; i < stage->epoch_count && stage->epochs[i].epoch <= epoch; i++) {
		struct stage_epoch *entry = &stage->epochs[i];
		length += entry->length;
		if (entry->synced)
			continue;
		int rc = weir_durable_fsync(entry->fd, true);
		if (rc != 0) /* never retried: the bytes may be lost (fsyncgate) */
			return stage_fail(stage, rc, "fdatasync of staged output of epoch %" PRIu64
					  " for %s: %s", entry->epoch, stage->output_path,
					  strerror(-rc));
		entry->synced = true;
	}
	if (stage->dir_dirty) {
		int rc = sync_dir(stage);
		if (rc != 0)
			return rc;
	}
	*bytes_after = length;
	return 0;
}

/* Copies stage file @fd (@length bytes) to the output at @offset. */
static int copy_into_output(struct weir_stage *stage, int fd, uint64_t length, uint64_t offset)
{
	for (uint64_t done = 0; done < length;) {
		size_t want = length - done < STAGE_COPY_LENGTH ? (size_t)(length - done)
								 : STAGE_COPY_LENGTH;
		ssize_t got = pread(fd, stage->copy_buffer, want, (off_t)done);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return stage_fail(stage, got < 0 ? -errno : -EIO,
					  "reading staged output for %s: %s", stage->output_path,
					  got < 0 ? strerror(errno) : "the stage file is short");
		/* Each write ends on a line: a process killed between two of them leaves whole
		 * rows (committed ones: the manifest is durable) and the next run adds the rest. */
		if (done + (uint64_t)got < length) {
			const char *last = memrchr(stage->copy_buffer, '\n', (size_t)got);
			if (last != NULL)
				got = last + 1 - stage->copy_buffer;
		}
		int rc = weir_durable_write(stage->output_fd, stage->copy_buffer, (size_t)got,
				  offset + done);
		if (rc != 0)
			return stage_fail(stage, rc, "writing %s at byte %" PRIu64 ": %s",
					  stage->output_path, offset + done, strerror(-rc));
		done += (uint64_t)got;
	}
	return 0;
}

/* Drops the first @count entries: their files were published (or are stale). */
static int drop_entries(struct weir_stage *stage, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		char path[800];
		epoch_path(stage, stage->epochs[i].epoch, path, sizeof(path));
		close(stage->epochs[i].fd);
		if (unlink(path) != 0 && errno != ENOENT)
			return stage_fail(stage, -errno, "removing %s: %s", path, strerror(errno));
	}
	memmove(&stage->epochs[0], &stage->epochs[count],
		sizeof(stage->epochs[0]) * (stage->epoch_count - count));
	stage->epoch_count -= count;
	return count > 0 ? sync_dir(stage) : 0;
}

/* A publish that failed: cut the output back to what was published before, so no partial
 * epoch shows (recovery would cut it too, and publish it again from the stage files).
 * Returns: @rc. */
static int unpublish(struct weir_stage *stage, int rc)
{
	if (ftruncate(stage->output_fd, (off_t)stage->published_length) != 0)
		fprintf(stderr, "weir: cannot cut %s back to %llu bytes after a failed publish: "
				"%s (the next run does it)\n",
			stage->output_path, (unsigned long long)stage->published_length,
			strerror(errno));
	return rc;
}

int weir_stage_publish(struct weir_stage *stage, uint64_t epoch)
{
	if (stage->error[0] != '\0')
		return -EIO;
	uint32_t count = 0;
	uint64_t at = stage->published_length;
	for (; count < stage->epoch_count && stage->epochs[count].epoch <= epoch; count++) {
		const struct stage_epoch *entry = &stage->epochs[count];
		WEIR_VERIFY(entry->synced); /* prepare() came first */
		int rc = copy_into_output(stage, entry->fd, entry->length, at);
		if (rc != 0)
			return unpublish(stage, rc);
		at += entry->length;
		weir_fault_point("sink.publish");
	}
	int rc = weir_durable_fsync(stage->output_fd, true);
	if (rc != 0)
		return unpublish(stage, stage_fail(stage, rc, "fdatasync of %s: %s",
						  stage->output_path, strerror(-rc)));
	stage->published_length = at;
	stage->published_epoch = epoch;
	return drop_entries(stage, count);
}

/* Reads the stage files in the directory into entries (ascending), stale ones included. */
static int load_entries(struct weir_stage *stage)
{
	DIR *dir = opendir(stage->dir);
	if (dir == NULL)
		return stage_fail(stage, -errno, "reading %s: %s", stage->dir, strerror(errno));
	int rc = 0;
	for (struct dirent *item = readdir(dir); item != NULL && rc == 0; item = readdir(dir)) {
		/* Exactly what epoch_path() writes: 20 digits, ".stage" (strtoull alone would
		 * also take "+0...2.stage" for epoch 2 and count its bytes twice). */
		if (strspn(item->d_name, "0123456789") != 20 ||
		    strcmp(item->d_name + 20, ".stage") != 0)
			continue;
		uint64_t epoch = strtoull(item->d_name, NULL, 10);
		char path[800];
		epoch_path(stage, epoch, path, sizeof(path));
		int fd = open(path, O_RDWR | O_CLOEXEC);
		struct stat status;
		if (fd < 0 || fstat(fd, &status) != 0) {
			rc = stage_fail(stage, -errno, "opening %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			break;
		}
		if (stage->epoch_count == STAGE_EPOCHS_MAX) {
			close(fd);
			rc = stage_fail(stage, -E2BIG, "%s: too many stage files", stage->dir);
			break;
		}
		uint32_t at = stage->epoch_count;
		while (at > 0 && stage->epochs[at - 1].epoch > epoch)
			at--;
		memmove(&stage->epochs[at + 1], &stage->epochs[at],
			sizeof(stage->epochs[0]) * (stage->epoch_count - at));
		stage->epochs[at] = (struct stage_epoch){.epoch = epoch,
							 .fd = fd,
							 .length = (uint64_t)status.st_size,
							 .synced = true};
		stage->epoch_count++;
	}
	closedir(dir);
	return rc;
}

static int recover_fresh(struct weir_stage *stage, const char *header, size_t header_length)
{
	int rc = drop_entries(stage, stage->epoch_count);
	if (rc == 0 && ftruncate(stage->output_fd, 0) != 0)
		rc = stage_fail(stage, -errno, "truncating %s: %s", stage->output_path,
				strerror(errno));
	if (rc == 0 && header_length > 0)
		rc = weir_durable_write(stage->output_fd, header, header_length, 0);
	if (rc == 0)
		rc = weir_durable_fsync(stage->output_fd, true);
	if (rc != 0)
		return stage_fail(stage, rc, "starting %s: %s", stage->output_path, strerror(-rc));
	stage->published_length = header_length;
	return 0;
}

int weir_stage_recover(struct weir_stage *stage, const struct weir_checkpoint_info *info,
		       const char *header, size_t header_length)
{
	int rc = load_entries(stage);
	if (rc != 0)
		return rc;
	if (info == NULL)
		return recover_fresh(stage, header, header_length);
	uint64_t target = info->sink_bytes[stage->index];
	uint32_t mine = 0; /* entries of epochs <= the checkpoint: its publish */
	uint64_t staged = 0;
	while (mine < stage->epoch_count && stage->epochs[mine].epoch <= info->epoch)
		staged += stage->epochs[mine++].length;
	struct stat status;
	if (fstat(stage->output_fd, &status) != 0)
		return stage_fail(stage, -errno, "%s: %s", stage->output_path, strerror(errno));
	uint64_t length = (uint64_t)status.st_size;
	if (length < target) {
		/* The publish of this checkpoint was cut short: do it again, whole. */
		if (staged > target || length < target - staged)
			return stage_fail(stage, -EBADMSG,
					  "output %s has %" PRIu64 " bytes, checkpoint %" PRIu64
					  " published %" PRIu64 " and only %" PRIu64 " are staged: "
					  "was the file changed outside weir?",
					  stage->output_path, length, info->epoch, target, staged);
		uint64_t at = target - staged;
		for (uint32_t i = 0; i < mine; i++) {
			rc = copy_into_output(stage, stage->epochs[i].fd, stage->epochs[i].length,
					      at);
			if (rc != 0)
				return rc;
			at += stage->epochs[i].length;
		}
	}
	if (ftruncate(stage->output_fd, (off_t)target) != 0)
		return stage_fail(stage, -errno, "cutting %s back to %" PRIu64 " bytes: %s",
				  stage->output_path, target, strerror(errno));
	rc = weir_durable_fsync(stage->output_fd, true);
	if (rc != 0)
		return stage_fail(stage, rc, "fdatasync of %s: %s", stage->output_path,
				  strerror(-rc));
	stage->published_length = target;
	stage->published_epoch = info->epoch;
	/* Published now, or from epochs no manifest names (they will be made again). */
	return drop_entries(stage, stage->epoch_count);
}
