/* The ingest log: how a live source (a DPDK port) becomes replayable.  Each partition of the
 * live source gets a log, STATE/ingest/shard-QQQQ, and every burst it takes is appended there
 * (one log record per burst) before its events go on into the job.  At each barrier the log
 * is sealed and its position (after the sealed records) is the split's position in the
 * checkpoint; the worker acknowledges the checkpoint only once that seal is durable.
 *
 * Recovery opens each partition's log at the checkpoint's position, finds where its valid
 * records end (a crash leaves a torn tail: cut off and reported), and hands those records to
 * the job again, in order, before any new traffic: events taken after the checkpoint are
 * processed once more, exactly as if the crash had not happened.  Live input then continues
 * into a new segment.
 *
 * So the guarantee starts when an event's burst reaches the kernel in the log (survives a
 * process crash) and, for a power loss, when the next seal is durable.  A burst still in the
 * log's user-space buffer when the process dies is lost: at most one buffer (1 MiB) per
 * queue.  Frames the port drops before weir reads them are counted by the port.
 *
 * The splits: one per partition (= receive queue), so a live job continues only with the
 * worker count it had (its queues are its partitions).  split.step is the partition, begin
 * the position (segment << 40 | offset; 0: nothing to replay), end WEIR_SPLIT_LIVE. */
#include "state/ingest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/assert.h"
#include "core/mem.h"
#include "state/log.h"

#define INGEST_OFFSET_BITS 40u
#define INGEST_RECORD_TYPE 0x1e57u
#define INGEST_REPLAY_BURSTS 256u	/* log records (bursts) read per replay step */

struct weir_ingest {
	struct weir_source inner;
	char dir[600]; /* STATE/ingest */
	uint32_t partition_count;
	uint32_t record_length;
	uint32_t burst_events_max; /* events one pull may take: bursts are never bigger */
};

/* One burst read back from the log: its events, and where the log goes on after it. */
struct replay_burst {
	uint32_t first; /* index of its first event in the replay buffer */
	uint32_t events;
	uint64_t next_segment, next_offset;
};

struct ingest_partition {
	struct weir_ingest *ingest;
	void *inner;
	struct weir_log_writer *log;
	uint32_t index;
	unsigned arena;
	/* Replay: the bursts from the checkpoint's position up to (end_segment, end_offset),
	 * where the valid records ended at recovery, read INGEST_REPLAY_BURSTS at a time and
	 * handed out one whole burst per pull, so a barrier always falls between bursts. */
	bool replaying;
	uint64_t end_segment, end_offset;
	uint64_t next_segment, next_offset; /* after the last burst handed out */
	uint8_t *replay_events;
	struct replay_burst bursts[INGEST_REPLAY_BURSTS];
	uint32_t burst_count;
	uint32_t burst_at;
	uint32_t event_count;
};

uint64_t weir_ingest_position_encode(uint64_t segment, uint64_t offset)
{
	WEIR_VERIFY(segment < (UINT64_C(1) << (64 - INGEST_OFFSET_BITS)));
	WEIR_VERIFY(offset < (UINT64_C(1) << INGEST_OFFSET_BITS));
	return segment << INGEST_OFFSET_BITS | offset;
}

void weir_ingest_position_decode(uint64_t position, uint64_t *segment, uint64_t *offset)
{
	*segment = position >> INGEST_OFFSET_BITS;
	*offset = position & ((UINT64_C(1) << INGEST_OFFSET_BITS) - 1);
}

static int ingest_plan(void *ctx, uint32_t worker_count, struct weir_split *splits, uint32_t max)
{
	struct weir_ingest *ingest = ctx;
	WEIR_VERIFY(worker_count == ingest->partition_count && worker_count <= max);
	for (uint32_t q = 0; q < worker_count; q++)
		splits[q] = (struct weir_split){.begin = 0, .end = WEIR_SPLIT_LIVE, .step = q,
						.max_seen = INT64_MIN};
	return (int)worker_count;
}

static int replay_visit(void *ctx, const struct weir_log_record *record)
{
	struct ingest_partition *part = ctx;
	if (record->segment > part->end_segment ||
	    (record->segment == part->end_segment && record->offset >= part->end_offset))
		return 1; /* past what was there at recovery: this run's own records */
	if (part->burst_count == INGEST_REPLAY_BURSTS)
		return 1;
	if (record->type != WEIR_LOG_STATE)
		return 0;
	uint32_t length = part->ingest->record_length;
	uint32_t events = record->state.key_length / length;
	if (record->state.type != INGEST_RECORD_TYPE || record->state.key_length % length != 0 ||
	    events == 0 || events > part->ingest->burst_events_max) {
		fprintf(stderr, "weir: ingest log %u: the record at byte %llu of segment %llu is "
				"not a burst of this job's events (%u bytes each, at most %u)\n",
			part->index, (unsigned long long)record->offset,
			(unsigned long long)record->segment, length,
			part->ingest->burst_events_max);
		return -EBADMSG;
	}
	struct replay_burst *burst = &part->bursts[part->burst_count++];
	burst->first = part->event_count;
	burst->events = events;
	burst->next_segment = record->segment;
	burst->next_offset = record->offset + WEIR_LOG_HEADER_LENGTH + record->state.key_length;
	memcpy(part->replay_events + (size_t)part->event_count * length, record->state.key,
	       record->state.key_length);
	part->event_count += events;
	return 0;
}

/* Reads the next bursts of the replay; none left ends it.  Returns: 0 or -errno. */
static int replay_refill(struct ingest_partition *part)
{
	part->burst_count = part->burst_at = part->event_count = 0;
	uint64_t end_segment, end_offset, dropped;
	char error[400] = "";
	int rc = weir_log_read_tail(part->ingest->dir, part->index, part->next_segment,
				    part->next_offset, replay_visit, part, &end_segment,
				    &end_offset, &dropped, error, sizeof(error));
	if (rc < 0) {
		fprintf(stderr, "weir: ingest log %u: %s\n", part->index, error);
		return rc;
	}
	if (part->burst_count == 0)
		part->replaying = false; /* everything up to the recovery end was handed out */
	return 0;
}

static int count_visit(void *ctx, const struct weir_log_record *record)
{
	uint64_t *bursts = ctx;
	*bursts += record->type == WEIR_LOG_STATE;
	return 0;
}

/* Finds where the log's valid records end and cuts a torn tail there. */
static int replay_prepare(struct ingest_partition *part, uint64_t position)
{
	weir_ingest_position_decode(position, &part->next_segment, &part->next_offset);
	uint64_t bursts = 0, dropped = 0;
	char error[400] = "";
	int rc = weir_log_read_tail(part->ingest->dir, part->index, part->next_segment,
				    part->next_offset, count_visit, &bursts, &part->end_segment,
				    &part->end_offset, &dropped, error, sizeof(error));
	if (rc == 0 && dropped > 0) {
		struct weir_log_position end = {.first_segment = part->next_segment,
						.end_segment = part->end_segment,
						.end_offset = part->end_offset};
		rc = weir_log_trim(part->ingest->dir, part->index, &end, error, sizeof(error));
	}
	if (rc != 0) {
		fprintf(stderr, "weir: ingest log %u: %s\n", part->index, error);
		return rc;
	}
	fprintf(stderr, "weir: ingest log %u: replaying %llu bursts taken after the checkpoint; "
			"%llu bytes of a torn tail cut\n",
		part->index, (unsigned long long)bursts, (unsigned long long)dropped);
	part->replaying = bursts > 0;
	return 0;
}

static void partition_free(struct ingest_partition *part)
{
	weir_mem_free(part->replay_events, part->arena);
	weir_mem_free(part, part->arena);
}

static int ingest_open_split(void *ctx, const struct weir_split *split, uint32_t index,
			     uint32_t count, unsigned arena, void **partition_out)
{
	struct weir_ingest *ingest = ctx;
	WEIR_VERIFY(index < count && split->end == WEIR_SPLIT_LIVE);
	WEIR_VERIFY(split->step == index);
	struct ingest_partition *part = weir_mem_alloc(sizeof(*part), 64, arena);
	if (part == NULL)
		return -ENOMEM;
	part->ingest = ingest;
	part->index = index;
	part->arena = arena;
	part->replay_events = weir_mem_alloc((size_t)INGEST_REPLAY_BURSTS *
						     ingest->burst_events_max *
						     ingest->record_length,
					     64, arena);
	int rc = part->replay_events != NULL ? 0 : -ENOMEM;
	if (rc == 0 && split->begin != 0)
		rc = replay_prepare(part, split->begin);
	char error[400] = "";
	struct weir_log_writer_options options = {.dir = ingest->dir, .shard = index,
						  .arena = arena,
						  .buffer_length = WEIR_INGEST_BUFFER_LENGTH};
	if (rc == 0)
		rc = weir_log_writer_open(&part->log, &options, error, sizeof(error));
	if (rc != 0 && error[0] != '\0')
		fprintf(stderr, "weir: ingest log %u: %s\n", index, error);
	if (rc == 0)
		rc = ingest->inner.vtable->open(ingest->inner.ctx, index, count, arena,
						&part->inner);
	if (rc != 0) {
		if (part->log != NULL)
			weir_log_writer_close(part->log);
		partition_free(part);
		return rc;
	}
	*partition_out = part;
	return 0;
}

static uint32_t ingest_pull(void *partition, uint8_t *records, uint32_t capacity,
			    struct weir_pull_status *status)
{
	struct ingest_partition *part = partition;
	const uint32_t length = part->ingest->record_length;
	WEIR_ASSERT(capacity >= part->ingest->burst_events_max);
	if (part->replaying) {
		if (part->burst_at == part->burst_count && replay_refill(part) != 0) {
			status->ended = true; /* said on stderr; nothing after it can be trusted */
			return 0;
		}
		if (!part->replaying) {
			status->consumed = 1; /* done replaying: live input next pull */
			return 0;
		}
		const struct replay_burst *burst = &part->bursts[part->burst_at++];
		part->next_segment = burst->next_segment;
		part->next_offset = burst->next_offset;
		status->lent = part->replay_events + (size_t)burst->first * length;
		status->consumed = burst->events;
		return burst->events;
	}
	uint32_t count = part->ingest->inner.vtable->pull(part->inner, records,
							  part->ingest->burst_events_max, status);
	if (count > 0) {
		const uint8_t *events = status->lent != NULL ? status->lent : records;
		struct weir_state_record record = {
			.type = INGEST_RECORD_TYPE, .key = events, .key_length = count * length};
		/* A refused append is sticky in the log: the next seal fails the job with it. */
		int rc = weir_log_append(part->log, 0, &record);
		WEIR_MAYBE(rc != 0);
	}
	return count;
}

static void ingest_position(const void *partition, struct weir_split *split)
{
	const struct ingest_partition *part = partition;
	uint64_t segment = part->next_segment, offset = part->next_offset;
	if (!part->replaying)
		weir_log_writer_position(part->log, &segment, &offset);
	split->begin = weir_ingest_position_encode(segment, offset);
	split->end = WEIR_SPLIT_LIVE;
	split->step = part->index;
}

static int ingest_seal(void *partition, uint64_t tag)
{
	struct ingest_partition *part = partition;
	return weir_log_seal(part->log, tag);
}

static int ingest_durable(void *partition, uint64_t *tag)
{
	struct ingest_partition *part = partition;
	struct weir_log_position position;
	return weir_log_poll(part->log, tag, &position);
}

static void ingest_finish(void *partition)
{
	struct ingest_partition *part = partition;
	if (part->log != NULL)
		weir_log_writer_close(part->log);
	part->log = NULL;
}

static void ingest_close(void *ctx, void *partition)
{
	struct weir_ingest *ingest = ctx;
	struct ingest_partition *part = partition;
	ingest->inner.vtable->close(ingest->inner.ctx, part->inner);
	WEIR_VERIFY(part->log == NULL); /* finish() ran on the worker */
	partition_free(part);
}

static int ingest_open_unsplit(void *ctx, uint32_t partition, uint32_t partition_count,
			       unsigned arena, void **partition_out)
{
	struct weir_split split = {.end = WEIR_SPLIT_LIVE, .step = partition};
	return ingest_open_split(ctx, &split, partition, partition_count, arena, partition_out);
}

static const struct weir_source_vtable ingest_vtable = {
	.open = ingest_open_unsplit,
	.pull = ingest_pull,
	.close = ingest_close,
	.plan = ingest_plan,
	.open_split = ingest_open_split,
	.position = ingest_position,
	.seal = ingest_seal,
	.durable = ingest_durable,
	.finish = ingest_finish,
};

int weir_ingest_create(struct weir_ingest **ingest_out, const char *state_dir,
		       struct weir_source *source, uint32_t worker_count, uint32_t burst_events_max,
		       const struct weir_checkpoint_info *recovered, char *error,
		       size_t error_length)
{
	WEIR_VERIFY(source->vtable->open != NULL && source->vtable->plan == NULL);
	if (recovered != NULL && !recovered->finished && recovered->split_count != worker_count) {
		snprintf(error, error_length,
			 "its checkpoint was taken with %u workers (one ingest log per receive "
			 "queue); a live job continues with the same --workers",
			 recovered->split_count);
		return -EINVAL;
	}
	struct weir_ingest *ingest = weir_mem_alloc(sizeof(*ingest), 64, WEIR_MEM_ARENA_DEFAULT);
	if (ingest == NULL)
		return -ENOMEM;
	ingest->inner = *source;
	ingest->partition_count = worker_count;
	ingest->record_length = source->schema->record_length;
	ingest->burst_events_max = burst_events_max;
	snprintf(ingest->dir, sizeof(ingest->dir), "%s/ingest", state_dir);
	if (mkdir(ingest->dir, 0755) != 0 && errno != EEXIST) {
		int rc = -errno;
		snprintf(error, error_length, "cannot make %s: %s", ingest->dir, strerror(-rc));
		weir_mem_free(ingest, WEIR_MEM_ARENA_DEFAULT);
		return rc;
	}
	source->vtable = &ingest_vtable;
	source->ctx = ingest;
	*ingest_out = ingest;
	return 0;
}

void weir_ingest_destroy(struct weir_ingest *ingest)
{
	if (ingest == NULL)
		return;
	weir_mem_free(ingest, WEIR_MEM_ARENA_DEFAULT);
}
