/* weir bench's workload interface: what bench.c gives a workload (its options, a prepared
 * environment) and what a workload gives back (samples), and the registry entries of the
 * workloads defined outside bench.c.  Only bench/ includes this header.
 *
 * A workload file defines its entry points with these types and exports one entry macro;
 * bench.c's registry (bench_workloads[]) lists each macro on one line. */
#ifndef WEIR_BENCH_WORKLOADS_H
#define WEIR_BENCH_WORKLOADS_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "weir/weir.h"

#define BENCH_WORKER_SETS_MAX 8u

struct bench_options {
	bool json;
	bool list;
	uint32_t reps;
	double seconds;
	uint32_t workers[BENCH_WORKER_SETS_MAX];
	uint32_t worker_set_count;
	const char *capture;	 /* --capture, or NULL: the workload's default */
	uint32_t max_frames;
	uint64_t events;	 /* --events (ysb), or 0: the workload's default */
	const char *engine_once; /* hidden: run the engine of this workload once, print JSON */
	const char *input;	 /* hidden, with --engine-once: the prepared input */
	const char *plot_dir;	 /* --plot: write bench.dat, bench.gp and bench.svg there */
};

/* What a workload prepares once and every run reads. */
struct bench_env {
	const struct bench_options *options;
	char temp_dir[PATH_MAX - 64]; /* "" until made; removed with every file put in it */
	char input[PATH_MAX];	 /* the input both programs read (flows: the capture) */
	int64_t frames;		 /* frames in the capture, or -1 if we cannot count them */
	char testpmd[PATH_MAX];	 /* "" when there is no baseline program */
	char note[PATH_MAX + 256]; /* how the input was made, for the report */
	bool has_baseline;	 /* the baseline can run (flows: testpmd is installed) */
	void *state;		 /* the workload's own, freed by its release() */
	char header[512];	 /* more header lines for the text report, or "" */
	char json_extra[512];	 /* ",\"key\":value..." appended to each JSON row, or "" */
	uint32_t workers;	 /* the worker count being measured (for in-process baselines) */
};

/* One run: @events in @seconds of wall time; with a digest of its results when the workload
 * checks the engine against its baseline (both digests must be equal). */
struct bench_sample {
	uint64_t events;
	double seconds;
	bool has_digest;
	uint64_t digest;
	uint64_t digest_total; /* what the digested results add up to, for the message */
};

struct bench_workload {
	const char *name;
	const char *description;
	const char *baseline_name; /* what the baseline is, for the report */
	const char *baseline_unit; /* "packets", "events": the baseline column's unit */
	bool runs_to_end;	   /* the engine runs over a fixed input: --seconds is unused */
	int (*prepare)(struct bench_env *env);
	/* In the child process; may print diagnostics on stderr only. */
	int (*engine_once)(const struct bench_env *env, uint32_t workers, struct bench_sample *out);
	/* Returns: 0, -ENOENT when the baseline program is missing, or another -errno. */
	int (*baseline_once)(const struct bench_env *env, struct bench_sample *out);
	void (*release)(struct bench_env *env); /* frees env->state; NULL: nothing to free */
	/* A published rate to compare weir's per-worker rate with, or NULL / 0: none. */
	const char *reference_name;
	double reference_events_per_s;
};

/* ---- NEXMark q0-q2 over the bid stream (bench/nexmark.c) ---- */

int bench_nexmark_q0_prepare(struct bench_env *env);
int bench_nexmark_q1_prepare(struct bench_env *env);
int bench_nexmark_q2_prepare(struct bench_env *env);
int bench_nexmark_q0_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out);
int bench_nexmark_q1_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out);
int bench_nexmark_q2_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out);
int bench_nexmark_baseline_once(const struct bench_env *env, struct bench_sample *out);
void bench_nexmark_release(struct bench_env *env);

#define BENCH_NEXMARK_BASELINE "single-threaded loop over the same bids in weir's layout, 1 core"

#define BENCH_NEXMARK_ENTRY(query, what)                                                        \
	{                                                                                       \
		.name = "nexmark-" #query, .description = "NEXMark " #query ": " what,          \
		.baseline_name = BENCH_NEXMARK_BASELINE, .baseline_unit = "bids",               \
		.runs_to_end = true, .prepare = bench_nexmark_##query##_prepare,               \
		.engine_once = bench_nexmark_##query##_engine_once,                             \
		.baseline_once = bench_nexmark_baseline_once, .release = bench_nexmark_release, \
	}
#define BENCH_NEXMARK_Q0                                                                        \
	BENCH_NEXMARK_ENTRY(q0, "in-memory bids -> passthrough -> discarding sink")
#define BENCH_NEXMARK_Q1                                                                        \
	BENCH_NEXMARK_ENTRY(q1, "in-memory bids -> map price to euros -> discarding sink")
#define BENCH_NEXMARK_Q2                                                                        \
	BENCH_NEXMARK_ENTRY(q2, "in-memory bids -> auction % 123 == 0 -> (auction, price) -> "   \
				"discarding sink")

/* ---- NEXMark q5, q7, q8: keyed windows (bench/nexmark_windowed.c) ---- */

int bench_nexmark_q5_prepare(struct bench_env *env);
int bench_nexmark_q7_prepare(struct bench_env *env);
int bench_nexmark_q8_prepare(struct bench_env *env);
int bench_nexmark_q5_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out);
int bench_nexmark_q7_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out);
int bench_nexmark_q8_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out);
int bench_nexmark_windowed_baseline_once(const struct bench_env *env, struct bench_sample *out);
void bench_nexmark_windowed_release(struct bench_env *env);

#define BENCH_NEXMARK_WINDOWED_BASELINE                                                         \
	"single-threaded C loop with hand-written hash tables over the same events, 1 core"

/* Flink 2.0's published NEXMark rates per core (the anchors; the goal is 20x). */
#define BENCH_NEXMARK_WINDOWED_ENTRY(query, what, unit, flink_rate)                             \
	{                                                                                       \
		.name = "nexmark-" #query, .description = "NEXMark " #query ": " what,          \
		.baseline_name = BENCH_NEXMARK_WINDOWED_BASELINE, .baseline_unit = unit,        \
		.runs_to_end = true, .prepare = bench_nexmark_##query##_prepare,               \
		.engine_once = bench_nexmark_##query##_engine_once,                             \
		.baseline_once = bench_nexmark_windowed_baseline_once,                          \
		.release = bench_nexmark_windowed_release,                                      \
		.reference_name = "Flink 2.0, published NEXMark " #query " rate per core",      \
		.reference_events_per_s = flink_rate,                                           \
	}
#define BENCH_NEXMARK_Q5                                                                        \
	BENCH_NEXMARK_WINDOWED_ENTRY(q5, "hot items: bids per auction per 10 s window sliding " \
				 "every 2 s, the top auction of each window", "bids", 75e3)
#define BENCH_NEXMARK_Q7                                                                        \
	BENCH_NEXMARK_WINDOWED_ENTRY(q7, "highest bid: max price per auction per 10 s window, " \
				 "the top of each window", "bids", 23e3)
#define BENCH_NEXMARK_Q8                                                                        \
	BENCH_NEXMARK_WINDOWED_ENTRY(q8, "monitor new users: persons who opened an auction in " \
				 "the 10 s window they registered in (persons and auctions "    \
				 "co-grouped by id)", "events", 160e3)

/* ---- the shuffle tax: a keyed count, pre-partitioned vs shuffled (bench/shuffle.c) ---- */

int bench_shuffle_prepare(struct bench_env *env);
int bench_shuffle_engine_once(const struct bench_env *env, uint32_t workers,
			      struct bench_sample *out);
int bench_shuffle_baseline_once(const struct bench_env *env, struct bench_sample *out);

#define BENCH_SHUFFLE_TAX                                                                       \
	{                                                                                       \
		.name = "shuffle-tax",                                                          \
		.description = "count per key (100k keys) per tumbling window; engine: input "  \
			       "spread over the workers, so (n-1)/n of it crosses the ring mesh", \
		.baseline_name = "the same job over input pre-partitioned by key owner (no "    \
				 "record crosses a ring), per worker",                           \
		.baseline_unit = "events", .runs_to_end = true,                                 \
		.prepare = bench_shuffle_prepare, .engine_once = bench_shuffle_engine_once,     \
		.baseline_once = bench_shuffle_baseline_once,                                   \
	}

/* ---- exactly-once: the same job with and without checkpoints (bench/checkpoint.c) ---- */

int bench_checkpoint_prepare(struct bench_env *env);
int bench_checkpoint_engine_once(const struct bench_env *env, uint32_t workers,
				 struct bench_sample *out);
int bench_checkpoint_baseline_once(const struct bench_env *env, struct bench_sample *out);
void bench_checkpoint_release(struct bench_env *env);

#define BENCH_CHECKPOINT                                                                        \
	{                                                                                       \
		.name = "checkpoint",                                                           \
		.description = "count and sum per key (100k keys, all changing) per window, "   \
			       "checkpointed every 1 s to a state dir (logs, manifests, staged " \
			       "output)",                                                      \
		.baseline_name = "the same job without checkpoints, same worker count",         \
		.baseline_unit = "events", .runs_to_end = true,                                 \
		.prepare = bench_checkpoint_prepare,                                            \
		.engine_once = bench_checkpoint_engine_once,                                    \
		.baseline_once = bench_checkpoint_baseline_once,                                \
		.release = bench_checkpoint_release,                                            \
	}

/* The YSB workload's pieces (bench/ysb.c).  Each returns 0 or a negative errno, having said
 * why on stderr. */
struct bench_ysb;
uint64_t bench_ysb_event_count(uint64_t requested);
int bench_ysb_engine_once(uint64_t event_count, uint32_t workers, const char *rows_path,
			  uint64_t *events, double *seconds, uint64_t *digest, uint64_t *total);
void bench_ysb_destroy(struct bench_ysb *ysb);
int bench_ysb_create(struct bench_ysb **out, uint64_t event_count, char *note,
		     size_t note_capacity, char *text, size_t text_capacity, char *json,
		     size_t json_capacity);
int bench_ysb_baseline_once(struct bench_ysb *ysb, uint64_t *events, double *seconds,
			    uint64_t *digest, uint64_t *total);

/* The integer after "key": in a flat JSON line (a row of weir's JSON-lines sink).
 * Returns: 0 or -EPROTO. */
int bench_json_integer(const char *line, const char *key, int64_t *value);

/* weir_job_create, saying on stderr that @what's options were refused.  Returns: its rc. */
int bench_job_create(struct weir_job **job_out, const struct weir_job_options *options,
		     const char *what);

/* Runs @job if @rc is 0 (its sink attached), reports a failure as @what's, fills @stats and
 * destroys the job.  Returns: the first error, or 0. */
int bench_job_finish(struct weir_job *job, int rc, const char *what,
		     struct weir_job_stats *stats);

/* Attaches the sink (rows discarded when @sink_path is "/dev/null", else JSON lines there),
 * runs @job if @rc is 0, reports a failure as @what's, fills @stats and destroys the job.
 * Returns: the first error, or 0. */
int bench_sink_run(struct weir_job *job, int rc, const char *sink_path, const char *what,
		   struct weir_job_stats *stats);

#endif
