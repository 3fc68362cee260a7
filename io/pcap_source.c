/* Capture files as a packet source (weir_job_source_pcap): classic pcap (microsecond or
 * nanosecond timestamps, either byte order) and pcapng (section and interface headers,
 * enhanced and simple packet blocks, per-interface link type and timestamp resolution).
 *
 * The file is mapped read-only and replayed by partition 0 (one split: the whole file, which a
 * checkpoint records as the byte offset of the next block); the other partitions end at once
 * and the key_by spreads the events over every worker.  A capture is read once, front to
 * back, so the page cache (with MADV_SEQUENTIAL read-ahead) serves it; live traffic goes
 * through DPDK instead.  A record cut off by the end of the file, or a block whose length
 * lies, stops the replay there: what was read counts, and the report names the offset. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/assert.h"
#include "core/job.h"
#include "core/mem.h"
#include "io/packet_event.h"

#define PCAPNG_INTERFACES_MAX 64u
#define PCAP_MAGIC_MICRO 0xa1b2c3d4u
#define PCAP_MAGIC_NANO 0xa1b23c4du
#define PCAPNG_SECTION 0x0a0d0d0au
#define PCAPNG_BYTE_ORDER 0x1a2b3c4du

enum capture_format { CAPTURE_PCAP, CAPTURE_PCAPNG };

struct pcapng_interface {
	enum weir_link_type link;
	uint64_t unit_numerator;   /* ns = ticks * numerator / denominator */
	uint64_t unit_denominator;
};

struct pcap_source {
	char path[256];
	const uint8_t *map;
	size_t length;
	enum capture_format format;
	struct weir_schema schema;
	struct weir_packet_counters totals;
	char error[320]; /* where the replay stopped early, or "" */
	enum weir_link_type link; /* pcap: the file's; pcapng: the first interface's */
	bool nanosecond;	  /* pcap only */
};

struct pcap_partition {
	struct pcap_source *source;
	bool active;
	bool swapped; /* the file's byte order differs from ours */
	size_t offset;
	int64_t last_timestamp_ns;
	uint32_t interface_count;
	struct pcapng_interface interfaces[PCAPNG_INTERFACES_MAX];
	struct weir_packet_counters counters;
	char error[320];
	unsigned arena;
};

static uint32_t load32(const struct pcap_partition *part, size_t offset)
{
	uint32_t value;
	memcpy(&value, part->source->map + offset, sizeof(value));
	return part->swapped ? __builtin_bswap32(value) : value;
}

static uint16_t load16(const struct pcap_partition *part, size_t offset)
{
	uint16_t value;
	memcpy(&value, part->source->map + offset, sizeof(value));
	return part->swapped ? __builtin_bswap16(value) : value;
}

static void stop_replay(struct pcap_partition *part, const char *why)
{
	snprintf(part->error, sizeof(part->error), "%s at byte %zu; the rest was not read", why,
		 part->offset);
	part->active = false;
}

/* One classic pcap record; returns events written (0 or 1). */
static uint32_t pcap_next(struct pcap_partition *part, uint8_t *record)
{
	const struct pcap_source *source = part->source;
	if (part->offset + 16 > source->length) {
		if (part->offset != source->length)
			stop_replay(part, "truncated record header");
		part->active = false;
		return 0;
	}
	uint64_t seconds = load32(part, part->offset);
	uint64_t fraction = load32(part, part->offset + 4);
	uint32_t captured = load32(part, part->offset + 8);
	uint32_t wire = load32(part, part->offset + 12);
	if (captured > source->length - part->offset - 16) {
		stop_replay(part, "record longer than the rest of the file");
		return 0;
	}
	const uint8_t *frame = source->map + part->offset + 16;
	part->offset += 16 + (size_t)captured;
	int64_t ns = (int64_t)(seconds * 1000000000u + fraction * (source->nanosecond ? 1 : 1000));
	return weir_packet_to_event(frame, captured, wire < captured ? captured : wire, ns,
				    source->link, &part->counters, record);
}

static void pcapng_add_interface(struct pcap_partition *part, size_t body, size_t body_end)
{
	if (part->interface_count == PCAPNG_INTERFACES_MAX || body + 8 > body_end)
		return;
	struct pcapng_interface *interface = &part->interfaces[part->interface_count++];
	interface->link = (enum weir_link_type)load16(part, body);
	interface->unit_numerator = 1000; /* default resolution: microseconds */
	interface->unit_denominator = 1;
	for (size_t at = body + 8; at + 4 <= body_end;) {
		uint16_t code = load16(part, at);
		uint16_t length = load16(part, at + 2);
		if (code == 0 || at + 4 + length > body_end)
			break;
		if (code == 9 && length >= 1) { /* if_tsresol */
			uint8_t resolution = part->source->map[at + 4];
			uint32_t exponent = resolution & 0x7f;
			bool binary = (resolution & 0x80) != 0;
			uint64_t ticks_per_second = 1;
			for (uint32_t i = 0; i < exponent && ticks_per_second < (1ull << 62); i++)
				ticks_per_second *= binary ? 2 : 10;
			interface->unit_numerator = 1000000000u;
			interface->unit_denominator = ticks_per_second;
		}
		at += 4 + (((size_t)length + 3) & ~(size_t)3);
	}
}

static int64_t pcapng_ns(const struct pcapng_interface *interface, uint64_t ticks)
{
	__uint128_t ns = (__uint128_t)ticks * interface->unit_numerator /
			 interface->unit_denominator;
	return ns > INT64_MAX ? INT64_MAX : (int64_t)ns;
}

/* A packet block's frame; returns events written (0 or 1). */
static uint32_t pcapng_packet(struct pcap_partition *part, uint32_t type, size_t body,
			      size_t body_end, uint8_t *record)
{
	const struct pcap_source *source = part->source;
	uint32_t interface_id = 0, captured, wire;
	size_t data;
	if (type == 6) { /* enhanced packet block */
		if (body + 20 > body_end)
			return 0;
		interface_id = load32(part, body);
		uint64_t ticks = (uint64_t)load32(part, body + 4) << 32 | load32(part, body + 8);
		captured = load32(part, body + 12);
		wire = load32(part, body + 16);
		data = body + 20;
		if (interface_id < part->interface_count)
			part->last_timestamp_ns = pcapng_ns(&part->interfaces[interface_id], ticks);
	} else { /* simple packet block: no timestamp, the previous one stands */
		if (body + 4 > body_end)
			return 0;
		wire = load32(part, body);
		data = body + 4;
		captured = (uint32_t)(body_end - data < wire ? body_end - data : wire);
	}
	if (captured > body_end - data) {
		stop_replay(part, "packet longer than its block");
		return 0;
	}
	enum weir_link_type link = interface_id < part->interface_count
					   ? part->interfaces[interface_id].link
					   : (enum weir_link_type)0;
	return weir_packet_to_event(source->map + data, captured,
				    wire < captured ? captured : wire, part->last_timestamp_ns,
				    link, &part->counters, record);
}

/* One pcapng block; returns events written (0 or 1). */
static uint32_t pcapng_next(struct pcap_partition *part, uint8_t *record)
{
	const struct pcap_source *source = part->source;
	if (part->offset + 12 > source->length) {
		if (part->offset != source->length)
			stop_replay(part, "truncated block header");
		part->active = false;
		return 0;
	}
	uint32_t type;
	memcpy(&type, source->map + part->offset, 4); /* palindromic for a section header */
	if (type == PCAPNG_SECTION) {
		uint32_t order;
		memcpy(&order, source->map + part->offset + 8, 4);
		part->swapped = order != PCAPNG_BYTE_ORDER;
		part->interface_count = 0; /* interfaces are per section */
	}
	type = load32(part, part->offset);
	uint32_t length = load32(part, part->offset + 4);
	if (length < 12 || length % 4 != 0 || length > source->length - part->offset) {
		stop_replay(part, "bad block length");
		return 0;
	}
	size_t body = part->offset + 8;
	size_t body_end = part->offset + length - 4;
	uint32_t written = 0;
	if (type == 1)
		pcapng_add_interface(part, body, body_end);
	else if (type == 6 || type == 3)
		written = pcapng_packet(part, type, body, body_end, record);
	part->offset += length;
	return written;
}

/* pcapng: the byte order and interfaces in force at @offset come from the section and
 * interface blocks before it; walks the block headers up to there, reading only those. */
static int pcapng_seek(struct pcap_partition *part, size_t offset)
{
	while (part->offset < offset && part->active) {
		uint32_t type;
		memcpy(&type, part->source->map + part->offset, 4);
		if (type == 6 || type == 3) { /* a packet: skip it unparsed */
			uint32_t length = load32(part, part->offset + 4);
			if (length < 12 || length > offset - part->offset)
				return -ESPIPE;
			part->offset += length;
			continue;
		}
		uint32_t written = pcapng_next(part, NULL); /* not a packet: writes nothing */
		WEIR_VERIFY(written == 0);
	}
	return part->offset == offset ? 0 : -ESPIPE;
}

static int pcap_open_range(struct pcap_source *source, uint64_t begin, bool active,
			   unsigned arena, void **partition_out)
{
	struct pcap_partition *part = weir_mem_alloc(sizeof(*part), WEIR_CACHE_LINE, arena);
	if (part == NULL)
		return -ENOMEM;
	part->source = source;
	part->arena = arena;
	part->active = active && begin < source->length;
	int rc = 0;
	if (source->format == CAPTURE_PCAP) {
		uint32_t magic;
		memcpy(&magic, source->map, 4);
		part->swapped = magic != PCAP_MAGIC_MICRO && magic != PCAP_MAGIC_NANO;
		part->offset = begin > 24 ? begin : 24;
	} else if (begin > 0 && part->active) {
		rc = pcapng_seek(part, begin);
	}
	if (rc != 0 || begin > source->length) {
		fprintf(stderr, "weir: %s: a checkpoint's position %llu is not a block of this "
				"capture (was it changed?)\n",
			source->path, (unsigned long long)begin);
		weir_mem_free(part, arena);
		return -ESPIPE;
	}
	*partition_out = part;
	return 0;
}

static int pcap_open(void *ctx, uint32_t partition, uint32_t partition_count, unsigned arena,
		     void **partition_out)
{
	WEIR_VERIFY(partition < partition_count);
	return pcap_open_range(ctx, 0, partition == 0, arena, partition_out);
}

/* One split: the whole capture, read by worker 0 (the key_by spreads its events). */
static int pcap_plan(void *ctx, uint32_t worker_count, struct weir_split *splits, uint32_t max)
{
	const struct pcap_source *source = ctx;
	WEIR_VERIFY(worker_count >= 1 && max >= 1);
	splits[0] = (struct weir_split){.begin = 0, .end = source->length, .step = 1,
					.max_seen = INT64_MIN};
	return 1;
}

static int pcap_open_split(void *ctx, const struct weir_split *split, uint32_t index,
			   uint32_t count, unsigned arena, void **partition_out)
{
	WEIR_VERIFY(index < count);
	return pcap_open_range(ctx, split->begin, split->begin < split->end, arena,
			       partition_out);
}

static void pcap_position(const void *partition, struct weir_split *split)
{
	const struct pcap_partition *part = partition;
	split->end = part->source->length;
	split->step = 1;
	split->begin = part->active ? part->offset : part->source->length;
}

static uint32_t pcap_pull(void *partition, uint8_t *records, uint32_t capacity,
			  struct weir_pull_status *status)
{
	struct pcap_partition *part = partition;
	const struct pcap_source *source = part->source;
	const uint32_t length = source->schema.record_length;
	uint32_t count = 0;
	uint32_t blocks = 0;
	/* Bounded: a burst of frames without hosts must not keep the worker from its inputs. */
	for (; part->active && count < capacity && blocks < 4 * capacity; blocks++) {
		uint8_t *record = records + (size_t)count * length;
		count += source->format == CAPTURE_PCAP ? pcap_next(part, record)
							: pcapng_next(part, record);
	}
	status->ended = !part->active;
	status->consumed = blocks;
	return count;
}

static void pcap_close(void *ctx, void *partition)
{
	struct pcap_source *source = ctx;
	struct pcap_partition *part = partition;
	weir_packet_counters_add(&source->totals, &part->counters);
	if (part->error[0] != '\0')
		snprintf(source->error, sizeof(source->error), "%s", part->error);
	weir_mem_free(part, part->arena);
}

static const struct weir_source_vtable pcap_vtable = {
	.open = pcap_open,
	.pull = pcap_pull,
	.close = pcap_close,
	.plan = pcap_plan,
	.open_split = pcap_open_split,
	.position = pcap_position,
};

static void pcap_destroy(void *ctx)
{
	struct pcap_source *source = ctx;
	if (source->map != NULL)
		munmap((void *)source->map, source->length);
	weir_mem_free(source, WEIR_MEM_ARENA_DEFAULT);
}

static void pcap_report(void *ctx, FILE *stream)
{
	const struct pcap_source *source = ctx;
	char what[400];
	snprintf(what, sizeof(what), "%s (%s)", source->path,
		 source->format == CAPTURE_PCAPNG ? "pcapng"
		 : source->nanosecond		  ? "pcap, ns"
						  : "pcap, us");
	weir_packet_counters_report(&source->totals, what, stream);
	if (source->error[0] != '\0')
		fprintf(stream, "weir: %s: %s\n", source->path, source->error);
}

static void pcap_add_stats(void *ctx, struct weir_job_stats *stats)
{
	const struct pcap_source *source = ctx;
	for (uint32_t r = WEIR_PACKET_NOT_IP + 1; r < WEIR_PACKET_REASON_COUNT; r++)
		stats->input_skipped += source->totals.by_reason[r];
}

/* Reads the file's header: format, byte order, link type, timestamp unit. */
static int capture_header(struct pcap_source *source, struct weir_job *job)
{
	uint32_t magic;
	if (source->length < 24) {
		if (source->length >= 4)
			memcpy(&magic, source->map, 4);
		return weir_job_fail(job, -EINVAL, "%s: too short to be a capture (%zu bytes)",
				     source->path, source->length);
	}
	memcpy(&magic, source->map, 4);
	uint32_t link;
	memcpy(&link, source->map + 20, 4);
	if (magic == PCAP_MAGIC_MICRO || magic == PCAP_MAGIC_NANO) {
		source->format = CAPTURE_PCAP;
		source->nanosecond = magic == PCAP_MAGIC_NANO;
	} else if (magic == __builtin_bswap32(PCAP_MAGIC_MICRO) ||
		   magic == __builtin_bswap32(PCAP_MAGIC_NANO)) {
		source->format = CAPTURE_PCAP;
		source->nanosecond = magic == __builtin_bswap32(PCAP_MAGIC_NANO);
		link = __builtin_bswap32(link);
	} else if (magic == PCAPNG_SECTION) {
		source->format = CAPTURE_PCAPNG;
		return 0;
	} else {
		return weir_job_fail(job, -EINVAL,
				     "%s: not a pcap or pcapng capture (magic 0x%08x)",
				     source->path, magic);
	}
	/* The upper 16 bits may carry FCS information (pcap "LINKTYPE_" + flags). */
	source->link = (enum weir_link_type)(link & 0xffff);
	return 0;
}

static int pcap_map(struct pcap_source *source, struct weir_job *job, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return weir_job_fail(job, -errno, "cannot open capture %s: %s", path,
				     strerror(errno));
	struct stat status;
	int rc = 0;
	if (fstat(fd, &status) != 0)
		rc = weir_job_fail(job, -errno, "%s: %s", path, strerror(errno));
	else if (!S_ISREG(status.st_mode))
		rc = weir_job_fail(job, -EINVAL, "%s: not a regular file", path);
	else if (status.st_size == 0)
		rc = weir_job_fail(job, -EINVAL, "%s: empty file", path);
	if (rc == 0) {
		source->length = (size_t)status.st_size;
		void *map = mmap(NULL, source->length, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map == MAP_FAILED)
			rc = weir_job_fail(job, -errno, "%s: mmap: %s", path, strerror(errno));
		else
			source->map = map;
	}
	close(fd);
	if (rc == 0)
		madvise((void *)source->map, source->length, MADV_SEQUENTIAL);
	return rc;
}

int weir_job_source_pcap(struct weir_job *job, const char *path)
{
	WEIR_VERIFY(job != NULL && path != NULL);
	struct pcap_source *source = weir_mem_alloc(sizeof(*source), WEIR_CACHE_LINE,
						    WEIR_MEM_ARENA_DEFAULT);
	if (source == NULL)
		return weir_job_fail(job, -ENOMEM, "pcap: out of memory");
	snprintf(source->path, sizeof(source->path), "%s", path);
	char message[256];
	int rc = weir_schema_parse(&source->schema, WEIR_PACKET_SCHEMA, message, sizeof(message));
	WEIR_VERIFY(rc == 0);
	WEIR_VERIFY(weir_packet_schema_is_native(&source->schema));
	rc = pcap_map(source, job, path);
	if (rc == 0)
		rc = capture_header(source, job);
	if (rc != 0) {
		pcap_destroy(source);
		return rc;
	}
	struct weir_source as_source = {
		.vtable = &pcap_vtable, .ctx = source, .schema = &source->schema};
	struct weir_component component = {
		.ctx = source,
		.destroy = pcap_destroy,
		.report = pcap_report,
		.add_stats = pcap_add_stats,
	};
	return weir_job_attach_source(job, as_source, component);
}
