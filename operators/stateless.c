#include "operators/stateless.h"

#include <errno.h>
#include <string.h>

#include "core/assert.h"
#include "core/job.h"
#include "core/mem.h"

#define STATELESS_BATCH_MAX 4096u

struct filter_op {
	weir_filter_fn *filter;
	void *ctx;
};

struct map_op {
	weir_map_fn *map;
	void *ctx;
	struct weir_schema out_schema;
};

struct project_op {
	uint32_t part_count;
	struct {
		uint32_t from, to, length;
	} parts[WEIR_SCHEMA_FIELDS_MAX];
	struct weir_schema out_schema;
};

static void op_free(void *ctx)
{
	weir_mem_free(ctx, WEIR_MEM_ARENA_DEFAULT);
}

/* The kept records are listed first (without a branch, which a selective filter would
 * mispredict often), then copied: only they are. */
static uint32_t filter_stage(void *ctx, const uint8_t *in, uint32_t count, uint32_t in_length,
			     uint8_t *out, uint32_t out_length)
{
	const struct filter_op *op = ctx;
	WEIR_ASSERT(in_length == out_length);
	uint8_t keep[STATELESS_BATCH_MAX];
	uint16_t kept_index[STATELESS_BATCH_MAX];
	WEIR_VERIFY(count <= STATELESS_BATCH_MAX);
	WEIR_STATIC_ASSERT(STATELESS_BATCH_MAX <= UINT16_MAX + 1u, "kept_index holds u16");
	memset(keep, 0, count);
	op->filter(op->ctx, in, count, in_length, keep);
	/* Counted first, in a loop the compiler vectorizes: a filter that keeps everything
	 * (q0's passthrough) then costs no index at all. */
	uint32_t kept_count = 0;
	for (uint32_t i = 0; i < count; i++)
		kept_count += keep[i] != 0;
	if (kept_count == count)
		return WEIR_STAGE_UNCHANGED; /* nothing to leave out: no copy */
	uint32_t kept = 0;
	for (uint32_t i = 0; i < count; i++) {
		kept_index[kept] = (uint16_t)i;
		kept += keep[i] != 0;
	}
	WEIR_ASSERT(kept == kept_count);
	for (uint32_t k = 0; k < kept; k++)
		weir_record_copy(out + (size_t)k * out_length,
				 in + (size_t)kept_index[k] * in_length, in_length);
	return kept;
}

int weir_job_filter(struct weir_job *job, weir_filter_fn *filter, void *ctx)
{
	WEIR_VERIFY(job != NULL && filter != NULL);
	const struct weir_schema *schema = weir_job_tail_schema(job);
	if (schema == NULL)
		return weir_job_fail(job, -EINVAL, "filter: add a source first");
	struct filter_op *op = weir_mem_alloc(sizeof(*op), 8, WEIR_MEM_ARENA_DEFAULT);
	if (op == NULL)
		return weir_job_fail(job, -ENOMEM, "filter: out of memory");
	op->filter = filter;
	op->ctx = ctx;
	struct weir_component component = {.ctx = op, .destroy = op_free};
	return weir_job_append_stage(job, filter_stage, op, schema, 1, component);
}

static uint32_t map_stage(void *ctx, const uint8_t *in, uint32_t count, uint32_t in_length,
			  uint8_t *out, uint32_t out_length)
{
	const struct map_op *op = ctx;
	WEIR_ASSERT(out_length == op->out_schema.record_length);
	memset(out, 0, (size_t)count * out_length);
	op->map(op->ctx, in, count, in_length, out, out_length);
	return count;
}

int weir_job_map(struct weir_job *job, const char *out_schema, weir_map_fn *map, void *ctx)
{
	WEIR_VERIFY(job != NULL && map != NULL && out_schema != NULL);
	if (weir_job_tail_schema(job) == NULL)
		return weir_job_fail(job, -EINVAL, "map: add a source first");
	struct map_op *op = weir_mem_alloc(sizeof(*op), 8, WEIR_MEM_ARENA_DEFAULT);
	if (op == NULL)
		return weir_job_fail(job, -ENOMEM, "map: out of memory");
	char message[256];
	int rc = weir_schema_parse(&op->out_schema, out_schema, message, sizeof(message));
	if (rc != 0) {
		op_free(op);
		return weir_job_fail(job, rc, "map: %s", message);
	}
	op->map = map;
	op->ctx = ctx;
	struct weir_component component = {.ctx = op, .destroy = op_free};
	return weir_job_append_stage(job, map_stage, op, &op->out_schema, 1, component);
}

static uint32_t project_stage(void *ctx, const uint8_t *in, uint32_t count, uint32_t in_length,
			      uint8_t *out, uint32_t out_length)
{
	const struct project_op *op = ctx;
	WEIR_ASSERT(out_length == op->out_schema.record_length);
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *from = in + (size_t)i * in_length;
		uint8_t *to = out + (size_t)i * out_length;
		for (uint32_t p = 0; p < op->part_count; p++)
			memcpy(to + op->parts[p].to, from + op->parts[p].from, op->parts[p].length);
	}
	return count;
}

static int project_configure(struct project_op *op, struct weir_job *job,
			     const struct weir_schema *schema, const char *columns)
{
	char copy[1024];
	if (columns[0] == '\0' || strlen(columns) >= sizeof(copy))
		return weir_job_fail(job, -EINVAL, "project: empty or too long column list");
	strcpy(copy, columns);
	weir_schema_init(&op->out_schema);
	char *save = NULL;
	for (char *name = strtok_r(copy, ",", &save); name != NULL;
	     name = strtok_r(NULL, ",", &save)) {
		int index = weir_schema_find(schema, name);
		if (index < 0)
			return weir_job_fail(job, -ENOENT, "project: column '%s' is not in the "
					     "schema", name);
		const struct weir_field *field = &schema->fields[index];
		if (weir_schema_add(&op->out_schema, name, field->type, field->max_length) != 0)
			return weir_job_fail(job, -EINVAL, "project: column '%s' given twice",
					     name);
		const struct weir_field *added =
			&op->out_schema.fields[op->out_schema.field_count - 1];
		op->parts[op->part_count].from = field->offset;
		op->parts[op->part_count].to = added->offset;
		op->parts[op->part_count].length = field->length;
		op->part_count++;
	}
	return 0;
}

int weir_job_project(struct weir_job *job, const char *columns)
{
	WEIR_VERIFY(job != NULL && columns != NULL);
	const struct weir_schema *schema = weir_job_tail_schema(job);
	if (schema == NULL)
		return weir_job_fail(job, -EINVAL, "project: add a source first");
	struct project_op *op = weir_mem_alloc(sizeof(*op), 8, WEIR_MEM_ARENA_DEFAULT);
	if (op == NULL)
		return weir_job_fail(job, -ENOMEM, "project: out of memory");
	int rc = project_configure(op, job, schema, columns);
	if (rc != 0) {
		op_free(op);
		return rc;
	}
	struct weir_component component = {.ctx = op, .destroy = op_free};
	return weir_job_append_stage(job, project_stage, op, &op->out_schema, 1, component);
}
