/* The job-level entry point of the CSV file source (weir_job_source_csv in weir/weir.h). */
#include <errno.h>
#include <stdio.h>

#include "core/assert.h"
#include "core/job.h"
#include "io/csv_source.h"

static void csv_destroy(void *ctx)
{
	weir_csv_source_destroy(ctx);
}

static void csv_report(void *ctx, FILE *stream)
{
	weir_csv_source_report(ctx, stream);
}

static void csv_add_stats(void *ctx, struct weir_job_stats *stats)
{
	stats->input_skipped += weir_csv_source_skipped_count(ctx);
}

int weir_job_source_csv(struct weir_job *job, const char *path, const char *schema_text)
{
	WEIR_VERIFY(job != NULL && path != NULL && schema_text != NULL);
	struct weir_schema schema;
	char message[512];
	int rc = weir_schema_parse(&schema, schema_text, message, sizeof(message));
	if (rc != 0)
		return weir_job_fail(job, rc, "--schema: %s", message);
	struct weir_csv_source *source = NULL;
	rc = weir_csv_source_create(&source, path, &schema, message, sizeof(message));
	if (rc != 0)
		return weir_job_fail(job, rc, "%s", message);
	struct weir_component component = {
		.ctx = source,
		.destroy = csv_destroy,
		.report = csv_report,
		.add_stats = csv_add_stats,
	};
	return weir_job_attach_source(job, weir_csv_source_as_source(source), component);
}
