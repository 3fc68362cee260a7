#include "io/durable.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/fault.h"

int weir_durable_write(int fd, const void *data, size_t length, uint64_t offset)
{
	WEIR_ASSERT(fd >= 0);
	WEIR_ASSERT(data != NULL || length == 0);
	const char *at = data;
	while (length > 0) {
		size_t want = length;
		int fault = weir_fault_io(WEIR_FAULT_IO_WRITE);
		if (fault < 0)
			return fault;
		if (fault == 1 && want > 1)
			want /= 2; /* an injected short write: the loop writes the rest */
		ssize_t written = pwrite(fd, at, want, (off_t)offset);
		if (written < 0 && errno == EINTR)
			continue;
		if (written <= 0)
			return written < 0 ? -errno : -EIO; /* taking nothing would loop forever */
		at += written;
		length -= (size_t)written;
		offset += (uint64_t)written;
	}
	return 0;
}

int weir_durable_fsync(int fd, bool data_only)
{
	WEIR_ASSERT(fd >= 0);
	int fault = weir_fault_io(WEIR_FAULT_IO_FSYNC);
	if (fault < 0)
		return fault;
	int rc = data_only ? fdatasync(fd) : fsync(fd);
	return rc == 0 ? 0 : -errno;
}

int weir_durable_sync_dir(const char *path)
{
	WEIR_ASSERT(path != NULL);
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = weir_durable_fsync(fd, false);
	close(fd);
	return rc;
}
