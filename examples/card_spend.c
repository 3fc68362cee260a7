/* An embedding example: build and run a weir job from C.
 *
 * A generator makes card transactions (ts, card, amount); a filter keeps amounts of at least
 * 10; the job sums spending per card per 1-second tumbling window and writes JSON lines.
 * It then checks its own results against what it generated, so the test suite runs it.
 *
 *   card_spend OUT.jsonl [EVENTS] [WORKERS]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weir/weir.h"

#define CARDS 64

struct transaction_layout {
	int ts_offset, card_offset, amount_offset;
};

/* Event i: time i ms, card i % CARDS, amount (i % 40) -- deterministic, so checkable. */
static void generate(void *ctx, uint64_t first, uint64_t step, uint32_t count, uint8_t *records,
		     uint32_t record_length)
{
	const struct transaction_layout *layout = ctx;
	for (uint32_t k = 0; k < count; k++) {
		uint64_t i = first + k * step;
		uint8_t *record = records + (size_t)k * record_length;
		int64_t ts = (int64_t)i;
		double amount = (double)(i % 40);
		char card[16];
		int length = snprintf(card, sizeof(card), "card%02u", (unsigned)(i % CARDS));
		memcpy(record + layout->ts_offset, &ts, sizeof(ts));
		record[layout->card_offset] = (uint8_t)length;
		memcpy(record + layout->card_offset + 1, card, (size_t)length);
		memcpy(record + layout->amount_offset, &amount, sizeof(amount));
	}
}

static void keep_large(void *ctx, const uint8_t *records, uint32_t count, uint32_t record_length,
		       uint8_t *keep)
{
	const struct transaction_layout *layout = ctx;
	for (uint32_t k = 0; k < count; k++) {
		double amount;
		memcpy(&amount, records + (size_t)k * record_length + layout->amount_offset,
		       sizeof(amount));
		keep[k] = amount >= 10.0;
	}
}

static int fail(struct weir_job *job, const char *what)
{
	fprintf(stderr, "card_spend: %s: %s\n", what, weir_job_error(job));
	weir_job_destroy(job);
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: card_spend OUT.jsonl [EVENTS] [WORKERS]\n");
		return 2;
	}
	uint64_t events = argc > 2 ? strtoull(argv[2], NULL, 10) : 100000;
	struct weir_job_options options;
	weir_job_options_init(&options);
	options.worker_count = argc > 3 ? (uint32_t)atoi(argv[3]) : 2;
	options.pin_workers = false; /* an example should run anywhere, even oversubscribed */

	struct weir_job *job;
	if (weir_job_create(&job, &options) != 0)
		return 1;
	static struct transaction_layout layout;
	if (weir_job_source_generator(job, "ts:i64,card:str16,amount:f64", generate, &layout,
				      events) != 0)
		return fail(job, "source");
	layout.ts_offset = weir_job_column_offset(job, "ts");
	layout.card_offset = weir_job_column_offset(job, "card");
	layout.amount_offset = weir_job_column_offset(job, "amount");
	struct weir_window_spec window = {
		.time_column = "ts",
		.kind = WEIR_WINDOW_TUMBLING,
		.size = 1000,
		.slide = 1000,
		.aggregates = "count,sum:amount",
	};
	if (weir_job_filter(job, keep_large, &layout) != 0)
		return fail(job, "filter");
	if (weir_job_key_by(job, "card") != 0)
		return fail(job, "key_by");
	if (weir_job_window(job, &window) != 0)
		return fail(job, "window");
	if (weir_job_sink(job, argv[1], WEIR_FORMAT_JSONL) != 0)
		return fail(job, "sink");
	if (weir_job_run(job) != 0)
		return fail(job, "run");

	struct weir_job_stats stats;
	weir_job_get_stats(job, &stats);
	weir_job_report(job, stderr);
	weir_job_destroy(job);

	/* Check: the rows' counts and sums add up to what the filter let through. */
	uint64_t expected_count = 0;
	double expected_sum = 0;
	for (uint64_t i = 0; i < events; i++) {
		if (i % 40 >= 10) {
			expected_count++;
			expected_sum += (double)(i % 40);
		}
	}
	FILE *in = fopen(argv[1], "r");
	if (in == NULL)
		return 1;
	char line[512];
	uint64_t count = 0, rows = 0;
	double sum = 0;
	while (fgets(line, sizeof(line), in) != NULL) {
		const char *c = strstr(line, "\"count\":");
		const char *s = strstr(line, "\"sum_amount\":");
		if (c == NULL || s == NULL)
			return 1;
		count += strtoull(c + 8, NULL, 10);
		sum += strtod(s + 13, NULL);
		rows++;
	}
	fclose(in);
	printf("card_spend: %" PRIu64 " events, %" PRIu64 " kept, %" PRIu64 " rows\n", events,
	       count, rows);
	if (stats.events_in != events || count != expected_count || sum != expected_sum ||
	    rows != stats.rows_out) {
		fprintf(stderr,
			"card_spend: expected %" PRIu64 " events summing to %.0f, got %" PRIu64
			" summing to %.0f\n",
			expected_count, expected_sum, count, sum);
		return 1;
	}
	return 0;
}
