/* weir: the embedding API.  A program that embeds weir includes only this header and links
 * the `weir_dep` libraries (core, io, state, operators).
 *
 * A job is a chain: one source -> stateless operators (filter, map, project) -> key_by ->
 * one keyed window aggregate -> a sink (and optionally a sink for late events).  Every worker
 * runs every stage; key_by shuffles records to the worker that owns their key group.
 *
 * Every function returns 0 or a negative errno; on failure weir_job_error() says what went
 * wrong in words.  Context: one thread builds and runs a job; the callbacks you register run
 * on the worker threads, many at a time, each on its own records. */
#ifndef WEIR_WEIR_H
#define WEIR_WEIR_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct weir_job;

struct weir_job_options {
	uint32_t worker_count;	   /* 0: one worker per physical core */
	const char *cpu_list;	   /* NULL, or OS CPU numbers "0,2-3" to pin workers on */
	bool pin_workers;	   /* bind each worker to its CPU and NUMA node (default true) */
	uint32_t ring_slots;	   /* batches each shuffle ring holds, a power of two >= 2 */
	uint32_t batch_records;	   /* records per batch; 0 picks from the record size */
	uint64_t seed;		   /* key-group hash seed; 0 picks a random one per job */
	uint32_t key_groups;	   /* key groups (Flink's max parallelism), default 4096 */
	int64_t out_of_orderness;  /* event-time units a source may run behind its maximum */
	uint64_t idle_timeout_ms;  /* a source partition silent this long stops holding time */
	uint64_t state_budget_mib; /* keyed state per worker, MiB */
	/* Checkpoints (with weir_job_use_state_dir): */
	uint64_t checkpoint_interval_ms; /* a barrier this often (default 1000) */
	uint64_t checkpoint_timeout_ms;	 /* one not done by then is abandoned (default 60000) */
	uint32_t checkpoints_kept;	 /* manifests kept (default 3) */
};

/* Fills @options with the defaults above. */
void weir_job_options_init(struct weir_job_options *options);

int weir_job_create(struct weir_job **job_out, const struct weir_job_options *options);
void weir_job_destroy(struct weir_job *job);

/* The last error's message ("" if none).  Valid until the next call on @job. */
const char *weir_job_error(const struct weir_job *job);

/* ---- sources: exactly one per job ---- */

/* A CSV file with a header line, split at line boundaries into one partition per worker and
 * read through io_uring.  @schema is "name:type,..." (i64 u64 f64 ts str strN ipv4 ipv6).
 * Malformed lines are skipped, counted and reported by line number. */
int weir_job_source_csv(struct weir_job *job, const char *path, const char *schema);

/* Writes @count records of @record_length bytes at @records: events number
 * @first, @first + @step, ... of a deterministic sequence.  Runs on worker threads. */
typedef void weir_generate_fn(void *ctx, uint64_t first, uint64_t step, uint32_t count,
			      uint8_t *records, uint32_t record_length);

/* Events 0 .. @event_count-1, spread over the workers (worker i makes i, i+n, i+2n, ...),
 * so the set of events does not depend on the number of workers. */
int weir_job_source_generator(struct weir_job *job, const char *schema,
			      weir_generate_fn *generate, void *ctx, uint64_t event_count);

/* Fills @count records (stride @record_length) with events @first, @first + @step, ...
 * Runs once per partition, on its worker, before the job's clock starts. */
typedef void weir_fill_fn(void *ctx, uint64_t first, uint64_t step, uint64_t count,
			  uint8_t *records, uint32_t record_length);

/* Like the generator, but each partition's events are made up front, into memory of the
 * worker's own NUMA node, then replayed through the normal source path: for benchmarks that
 * must not time the generation. */
int weir_job_source_memory(struct weir_job *job, const char *schema, weir_fill_fn *fill,
			   void *ctx, uint64_t event_count);

/* Packet sources produce one event per frame whose outermost IP header is complete, in this
 * schema: time (ns), addresses (IPv4 v4-mapped), ports (0 when none), IP protocol, TCP flags,
 * and the frame's length on the wire.  Frames are parsed in the source and never cross a
 * ring; frames without hosts and malformed frames are counted by reason. */
#define WEIR_PACKET_SCHEMA                                                                      \
	"ts:ts,src:ip,dst:ip,sport:i64,dport:i64,proto:i64,tcp_flags:i64,bytes:i64"

/* Replays a pcap or pcapng file (link type, byte order and timestamp unit from its header). */
int weir_job_source_pcap(struct weir_job *job, const char *path);

/* Receives from DPDK port @port.  @eal_arguments initialise DPDK's EAL once per process
 * (e.g. "--no-huge -m 1024 --no-pci --vdev net_pcap0,rx_pcap=X.pcap").  The port gets one RX
 * queue per worker when it supports RSS (a symmetric key: both directions of a flow land on
 * one worker), else one queue read by worker 0.  @idle_stop_ms > 0 ends the input after that
 * long without a packet (for replays); 0 runs until weir_stop() (SIGINT in the CLI). */
int weir_job_source_dpdk(struct weir_job *job, const char *eal_arguments, uint16_t port,
			 uint64_t idle_stop_ms);

/* Asks every live source to end its input; windows then fire as at the end of a file.
 * Context: any thread, and async-signal-safe. */
void weir_stop(void);

/* ---- stateless operators, fused into the source's stage ---- */

/* Sets keep[i] to 1 to keep record i of the @count records (stride @record_length). */
typedef void weir_filter_fn(void *ctx, const uint8_t *records, uint32_t count,
			    uint32_t record_length, uint8_t *keep);
/* Writes one output record (of the map's schema) at out + i * out_length for each input. */
typedef void weir_map_fn(void *ctx, const uint8_t *records, uint32_t count, uint32_t in_length,
			 uint8_t *out, uint32_t out_length);

int weir_job_filter(struct weir_job *job, weir_filter_fn *filter, void *ctx);
int weir_job_map(struct weir_job *job, const char *out_schema, weir_map_fn *map, void *ctx);
/* Keeps only the named columns, in the order given ("ts,card,amount"). */
int weir_job_project(struct weir_job *job, const char *columns);

/* Byte offset of a column in the records the chain produces so far, or a negative errno. */
int weir_job_column_offset(const struct weir_job *job, const char *column);

/* ---- key_by and the window aggregate ---- */

/* Shuffles by the named columns: key group = xxh3_64(key bytes, seed) % key_groups. */
int weir_job_key_by(struct weir_job *job, const char *columns);

enum weir_window_kind { WEIR_WINDOW_TUMBLING, WEIR_WINDOW_SLIDING };

struct weir_window_spec {
	const char *time_column;    /* i64 or ts column holding event time */
	enum weir_window_kind kind;
	int64_t size;		    /* event-time units */
	int64_t slide;		    /* == size for tumbling */
	int64_t allowed_lateness;   /* late events within this re-emit an updated row */
	/* "count,sum:amount,min:amount,max:amount,avg:amount", "distinct:card" (HyperLogLog),
	 * "max_by:merchant:amount" (merchant of the largest amount; ties: the larger merchant);
	 * any of them may be renamed in the output with =NAME ("count=packets,sum:length=bytes").
	 */
	const char *aggregates;
	/* NULL, or an integer column saying how many events each record stands for (records
	 * merged before the window): count, avg and the late, re-emitted and refused counts
	 * add it, not 1. */
	const char *weight_column;
	/* Two-phase aggregation: each worker first merges the records of each pull that share a
	 * key and a pane (gcd(size, slide)) into one partial row, so one row per key and pane
	 * crosses the rings instead of every record; the window then merges the partials.  The
	 * rows are those without it.  Pays when a pull holds many records per key (YSB: 100
	 * campaigns); costs a little when keys rarely repeat.  For count, sum, min, max, avg and
	 * max_by (not distinct, not with weight_column).  A partial row travels where its first
	 * record was, with that record's time, so no record is later than without it (a record
	 * merged into an earlier row may be less late).  Late records reach a late sink as
	 * partial rows: the key columns, the time column, weir_count (events merged) and one
	 * weir_* column per partial. */
	bool combine;
};

/* Windows aligned at 0: [k*slide, k*slide + size).  Output rows: window_start, window_end,
 * the key columns, then the aggregates in the order given (count, sum_<col>, min_<col>,
 * max_<col>, avg_<col>, distinct_<col>, max_by_<col>_<order>, or the =NAME given). */
int weir_job_window(struct weir_job *job, const struct weir_window_spec *spec);

/* Parses "tumbling:SIZE" or "sliding:SIZE,SLIDE" into @spec's kind, size and slide. */
int weir_window_spec_parse(struct weir_window_spec *spec, const char *text);

/* ---- flow analytics over a packet source ---- */

enum weir_flow_group {
	WEIR_FLOWS_HOST,	 /* each end: packets, bytes, sent and received */
	WEIR_FLOWS_SRC,		 /* source address */
	WEIR_FLOWS_DST,		 /* destination address */
	WEIR_FLOWS_CONVERSATION, /* addr_a (lower) and addr_b, with both directions */
	WEIR_FLOWS_5TUPLE,	 /* src, dst, sport, dport, proto */
	WEIR_FLOWS_SYN,		 /* per dst: TCP SYNs without ACK, distinct sources (floods) */
	WEIR_FLOWS_SCAN,	 /* per src: SYNs, distinct dst ports and hosts (port scans) */
};

/* Shapes packet events for @group, keys by it, and aggregates per tumbling window of
 * @window_ns: packets, bytes, first_seen, last_seen (and the per-direction columns); for
 * SYN and SCAN: syns, distinct counts (HyperLogLog estimates), first_seen, last_seen. */
int weir_job_flows(struct weir_job *job, enum weir_flow_group group, int64_t window_ns);

/* NetFlow-style flow records: keys the packet events by "src,dst,sport,dport,proto" (each
 * direction is its own flow) and emits one row per flow record when it ends, with the reason:
 * "idle" (no packet for more than @idle_timeout_ns: seen at the 5-tuple's next packet, or
 * once the watermark passes last_seen + @idle_timeout_ns, checked at most every quarter of
 * the idle timeout of event time), "active" (a packet at first_seen + @active_timeout_ns or
 * later starts the next record of a long flow), "fin" / "rst" (a TCP packet with FIN / RST
 * closes its record after being added; RST wins) or "end" (still open when the input ended;
 * a record already idle by the input's latest event time is "idle", whatever the number of
 * workers).  Rows: first_seen, last_seen (ns), src, dst,
 * sport, dport, proto, packets, bytes, tcp_flags (the OR over the record), end_reason.
 * Events out of order within out_of_orderness only widen first_seen/last_seen; later ones
 * are still added and counted in late_updates.  A packet that would start a record past the
 * state budget is refused and counted in state_full.  Call right after a packet source
 * (filters allowed), in place of key_by and window.
 * Returns: 0, -EINVAL (no packet source before it, @idle_timeout_ns <= 0, @active_timeout_ns
 * < @idle_timeout_ns, a key_by already made), -ENOMEM. */
int weir_job_flow_records(struct weir_job *job, int64_t idle_timeout_ns,
			  int64_t active_timeout_ns);

/* ---- sinks ---- */

/* DISCARD counts the rows and drops them (a blackhole sink, as benchmarks use to time a job
 * without its output formatting); the path is then ignored. */
enum weir_format { WEIR_FORMAT_JSONL, WEIR_FORMAT_CSV, WEIR_FORMAT_DISCARD };

/* Window results go to @path ("-" or NULL: standard output).  A job without key_by and window
 * sends the records its stateless operators produce to the sink instead, from every worker
 * (no shuffle). */
int weir_job_sink(struct weir_job *job, const char *path, enum weir_format format);
struct weir_sink_options {
	const char *path;	 /* NULL or "-": standard output */
	enum weir_format format;
	/* > 0: only the top_k rows of each window by rank_column (an integer output column),
	 * written once every worker's clock passed the window's end and allowed lateness
	 * (within about 20 ms of that; the rest when the run ends); the larger rank first,
	 * ties in the order of the rows' bytes, so the same rows win whatever the worker
	 * count.  Windows are written in order, each once.  With a state dir: refused. */
	uint32_t top_k;
	const char *rank_column;
	/* Non-NULL: only rows whose integer columns named here ("bytes", or up to 4 as
	 * "persons,auctions") are all >= min_value, as a HAVING clause. */
	const char *min_column;
	int64_t min_value;
};

/* A sink for the window rows with a row filter and/or a per-window top-k. */
int weir_job_sink_with(struct weir_job *job, const struct weir_sink_options *options);
/* Events later than the allowed lateness go to @path; without this they are only counted. */
int weir_job_late_sink(struct weir_job *job, const char *path, enum weir_format format);

/* ---- exactly-once ---- */

/* Checkpoints the job into @dir every options.checkpoint_interval_ms: keyed state goes to
 * per-worker logs, each checkpoint to a manifest, and the sinks make each epoch's output
 * visible only once its manifest is durable.  If @dir holds a checkpoint the run continues
 * from the newest complete one: state rebuilt from the logs (any worker count), sources
 * sought to their recorded positions, output cut back to what that checkpoint published.
 * Needs a replayable source (CSV file, generator) and file sinks.
 * Returns: 0, -EINVAL (no usable dir, or called twice), -ENOMEM. */
int weir_job_use_state_dir(struct weir_job *job, const char *dir);

/* ---- running ---- */

/* Runs the job to the end of its input.  Returns: 0, or a negative errno (see error()). */
int weir_job_run(struct weir_job *job);

struct weir_job_stats {
	uint32_t worker_count;
	uint64_t events_in;	   /* records the source produced */
	uint64_t events_shuffled;  /* records that went through the key_by exchange */
	uint64_t rows_out;	   /* window rows emitted (including re-emitted updates) */
	uint64_t late_updates;	   /* late events within the allowed lateness */
	uint64_t late_dropped;	   /* events later than that (late output) */
	uint64_t state_full;	   /* events refused because the state budget was reached */
	uint64_t input_skipped;	   /* malformed input records the source skipped */
	uint64_t backpressure_turns; /* loop turns a worker could not pull (output rings full) */
	uint64_t batches_shuffled;
	double seconds;		   /* from every worker being ready to the last one's end */
	/* Checkpoints (a job with a state dir): */
	uint64_t recovered_epoch;	   /* the checkpoint this run continued from, 0: none */
	bool already_finished;		   /* that checkpoint had finished the input: nothing ran */
	uint64_t checkpoints_completed;   /* manifests written (the final one included) */
	uint64_t checkpoints_abandoned;   /* timed out or failed to write its manifest */
	uint64_t checkpoint_ns_p50;	   /* trigger to manifest durable */
	uint64_t checkpoint_ns_p99;
	uint64_t checkpoint_ns_max;
	uint64_t checkpoint_bytes;	   /* log bytes all checkpoints appended */
	double recovery_seconds;	   /* reading the manifest and replaying the logs */
	uint64_t recovered_state_bytes;   /* live state that checkpoint recorded */
};

/* Fills @stats; valid after weir_job_run. */
void weir_job_get_stats(const struct weir_job *job, struct weir_job_stats *stats);

/* Prints the job's report on stderr-like @stream: skipped input with line numbers, late and
 * refused events, per-worker rates. */
void weir_job_report(const struct weir_job *job, void *stream /* FILE * */);

#ifdef __cplusplus
}
#endif

#endif
