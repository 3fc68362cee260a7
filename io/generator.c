#include "io/generator.h"

#include <errno.h>
#include <string.h>

#include "core/assert.h"
#include "core/batch.h"
#include "core/job.h"
#include "core/mem.h"

struct generator {
	struct weir_schema schema;
	weir_generate_fn *generate;
	void *ctx;
	uint64_t event_count;
};

struct generator_partition {
	const struct generator *generator;
	uint64_t next;	/* next event number of this partition */
	uint64_t step;	/* between its event numbers */
	uint64_t end;	/* its events are below this */
	unsigned arena;
};

/* ---- splits shared by the generator and the memory source: events begin, begin + step,
 * ... below end; a fresh run of n workers gives worker i the events i, i + n, ... ---- */

static uint64_t split_events(const struct weir_split *split)
{
	return split->end > split->begin ? (split->end - split->begin + split->step - 1) /
						   split->step
					 : 0;
}

static int strided_plan(uint64_t event_count, uint32_t worker_count, struct weir_split *splits,
			uint32_t max)
{
	WEIR_VERIFY(worker_count >= 1);
	uint32_t count = worker_count < max ? worker_count : max;
	for (uint32_t i = 0; i < count; i++)
		splits[i] = (struct weir_split){.begin = i, .end = event_count, .step = count,
						.max_seen = WEIR_WATERMARK_NONE};
	return (int)count;
}

static int generator_plan(void *ctx, uint32_t worker_count, struct weir_split *splits,
			  uint32_t max)
{
	const struct generator *generator = ctx;
	return strided_plan(generator->event_count, worker_count, splits, max);
}

static int generator_open_split(void *ctx, const struct weir_split *split, uint32_t index,
				uint32_t count, unsigned arena, void **partition_out)
{
	const struct generator *generator = ctx;
	WEIR_VERIFY(index < count);
	if (split->step == 0 || split->end > generator->event_count)
		return -ESPIPE; /* not a split of this generator */
	struct generator_partition *part = weir_mem_alloc(sizeof(*part), 64, arena);
	if (part == NULL)
		return -ENOMEM;
	part->generator = generator;
	part->next = split->begin;
	part->step = split->step;
	part->end = split->end;
	part->arena = arena;
	*partition_out = part;
	return 0;
}

static int generator_open(void *ctx, uint32_t partition, uint32_t partition_count,
			  unsigned arena, void **partition_out)
{
	const struct generator *generator = ctx;
	WEIR_VERIFY(partition < partition_count);
	struct weir_split split = {.begin = partition, .end = generator->event_count,
				   .step = partition_count};
	return generator_open_split(ctx, &split, partition, partition_count, arena,
				    partition_out);
}

static void generator_position(const void *partition, struct weir_split *split)
{
	const struct generator_partition *part = partition;
	split->begin = part->next < part->end ? part->next : part->end;
	split->end = part->end;
	split->step = part->step;
}

static uint32_t generator_pull(void *partition, uint8_t *records, uint32_t capacity,
			       struct weir_pull_status *status)
{
	struct generator_partition *part = partition;
	const struct generator *generator = part->generator;
	if (part->next >= part->end) {
		status->ended = true;
		return 0;
	}
	uint64_t left = (part->end - part->next + part->step - 1) / part->step;
	uint32_t count = left < capacity ? (uint32_t)left : capacity;
	generator->generate(generator->ctx, part->next, part->step, count, records,
			    generator->schema.record_length);
	part->next += (uint64_t)count * part->step;
	status->ended = part->next >= part->end;
	status->consumed = count;
	WEIR_ASSERT(count > 0);
	return count;
}

static void generator_close(void *ctx, void *partition)
{
	(void)ctx;
	struct generator_partition *part = partition;
	weir_mem_free(part, part->arena);
}

static const struct weir_source_vtable generator_vtable = {
	.open = generator_open,
	.pull = generator_pull,
	.close = generator_close,
	.plan = generator_plan,
	.open_split = generator_open_split,
	.position = generator_position,
};

static void generator_destroy(void *ctx)
{
	weir_mem_free(ctx, WEIR_MEM_ARENA_DEFAULT);
}

int weir_job_source_generator(struct weir_job *job, const char *schema,
			      weir_generate_fn *generate, void *ctx, uint64_t event_count)
{
	WEIR_VERIFY(job != NULL && schema != NULL && generate != NULL);
	struct generator *generator = weir_mem_alloc(sizeof(*generator), 64,
						     WEIR_MEM_ARENA_DEFAULT);
	if (generator == NULL)
		return weir_job_fail(job, -ENOMEM, "generator: out of memory");
	char message[256];
	int rc = weir_schema_parse(&generator->schema, schema, message, sizeof(message));
	if (rc != 0) {
		generator_destroy(generator);
		return weir_job_fail(job, rc, "generator: %s", message);
	}
	generator->generate = generate;
	generator->ctx = ctx;
	generator->event_count = event_count;
	struct weir_source source = {
		.vtable = &generator_vtable, .ctx = generator, .schema = &generator->schema};
	struct weir_component component = {.ctx = generator, .destroy = generator_destroy};
	return weir_job_attach_source(job, source, component);
}

/* ---- the memory source: events made up front, per partition, then replayed ---- */

struct memory_source {
	struct weir_schema schema;
	weir_fill_fn *fill;
	void *ctx;
	uint64_t event_count;
};

struct memory_partition {
	uint8_t *records; /* this partition's events, in its worker's arena */
	uint64_t count;
	uint64_t next;	  /* index of the next record to hand out */
	struct weir_split split; /* the events they are */
	uint32_t record_length;
	unsigned arena;
};

static int memory_open_split(void *ctx, const struct weir_split *split, uint32_t index,
			     uint32_t count, unsigned arena, void **partition_out)
{
	const struct memory_source *source = ctx;
	WEIR_VERIFY(index < count);
	if (split->step == 0 || split->end > source->event_count)
		return -ESPIPE;
	struct memory_partition *part = weir_mem_alloc(sizeof(*part), 64, arena);
	if (part == NULL)
		return -ENOMEM;
	part->arena = arena;
	part->record_length = source->schema.record_length;
	part->split = *split;
	part->count = split_events(split);
	if (part->count > 0) {
		/* Made and first touched on the worker's thread: its NUMA node's pages. */
		part->records = weir_mem_alloc(part->count * part->record_length, 4096, arena);
		if (part->records == NULL) {
			weir_mem_free(part, arena);
			return -ENOMEM;
		}
		source->fill(source->ctx, split->begin, split->step, part->count, part->records,
			     part->record_length);
	}
	*partition_out = part;
	return 0;
}

static int memory_open(void *ctx, uint32_t partition, uint32_t partition_count, unsigned arena,
		       void **partition_out)
{
	const struct memory_source *source = ctx;
	WEIR_VERIFY(partition < partition_count);
	struct weir_split split = {.begin = partition, .end = source->event_count,
				   .step = partition_count};
	return memory_open_split(ctx, &split, partition, partition_count, arena, partition_out);
}

static int memory_plan(void *ctx, uint32_t worker_count, struct weir_split *splits,
		       uint32_t max)
{
	const struct memory_source *source = ctx;
	return strided_plan(source->event_count, worker_count, splits, max);
}

static void memory_position(const void *partition, struct weir_split *split)
{
	const struct memory_partition *part = partition;
	*split = part->split;
	split->begin = part->next < part->count ? part->split.begin + part->next * part->split.step
						: part->split.end;
}

static uint32_t memory_pull(void *partition, uint8_t *records, uint32_t capacity,
			    struct weir_pull_status *status)
{
	struct memory_partition *part = partition;
	(void)records; /* lent instead: the events are already in this worker's memory */
	uint64_t left = part->count - part->next;
	uint32_t count = left < capacity ? (uint32_t)left : capacity;
	status->lent = part->records + part->next * part->record_length;
	part->next += count;
	status->consumed = count;
	status->ended = part->next == part->count;
	WEIR_ASSERT(part->next <= part->count);
	return count;
}

static void memory_close(void *ctx, void *partition)
{
	(void)ctx;
	struct memory_partition *part = partition;
	weir_mem_free(part->records, part->arena);
	weir_mem_free(part, part->arena);
}

static const struct weir_source_vtable memory_vtable = {
	.open = memory_open,
	.pull = memory_pull,
	.close = memory_close,
	.plan = memory_plan,
	.open_split = memory_open_split,
	.position = memory_position,
};

int weir_job_source_memory(struct weir_job *job, const char *schema, weir_fill_fn *fill,
			   void *ctx, uint64_t event_count)
{
	WEIR_VERIFY(job != NULL && schema != NULL && fill != NULL);
	struct memory_source *source = weir_mem_alloc(sizeof(*source), 64,
						      WEIR_MEM_ARENA_DEFAULT);
	if (source == NULL)
		return weir_job_fail(job, -ENOMEM, "memory source: out of memory");
	char message[256];
	int rc = weir_schema_parse(&source->schema, schema, message, sizeof(message));
	if (rc != 0) {
		generator_destroy(source);
		return weir_job_fail(job, rc, "memory source: %s", message);
	}
	source->fill = fill;
	source->ctx = ctx;
	source->event_count = event_count;
	struct weir_source as_source = {
		.vtable = &memory_vtable, .ctx = source, .schema = &source->schema};
	struct weir_component component = {.ctx = source, .destroy = generator_destroy};
	return weir_job_attach_source(job, as_source, component);
}
