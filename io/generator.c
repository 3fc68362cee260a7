#include "io/generator.h"

#include <errno.h>

#include "core/assert.h"
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
	uint64_t step;	/* partition count */
	unsigned arena;
};

static int generator_open(void *ctx, uint32_t partition, uint32_t partition_count,
			  unsigned arena, void **partition_out)
{
	WEIR_VERIFY(partition < partition_count);
	struct generator_partition *part = weir_mem_alloc(sizeof(*part), 64, arena);
	if (part == NULL)
		return -ENOMEM;
	part->generator = ctx;
	part->next = partition;
	part->step = partition_count;
	part->arena = arena;
	*partition_out = part;
	return 0;
}

static uint32_t generator_pull(void *partition, uint8_t *records, uint32_t capacity,
			       struct weir_pull_status *status)
{
	struct generator_partition *part = partition;
	const struct generator *generator = part->generator;
	if (part->next >= generator->event_count) {
		status->ended = true;
		return 0;
	}
	uint64_t left = (generator->event_count - part->next + part->step - 1) / part->step;
	uint32_t count = left < capacity ? (uint32_t)left : capacity;
	generator->generate(generator->ctx, part->next, part->step, count, records,
			    generator->schema.record_length);
	part->next += (uint64_t)count * part->step;
	status->ended = part->next >= generator->event_count;
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
