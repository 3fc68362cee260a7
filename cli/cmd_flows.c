/* weir flows: per-window traffic aggregates from a capture file or a DPDK port.
 *
 *   weir flows --pcap FILE | --dpdk 'EAL ARGS' [--port ID]
 *              --group host|src|dst|conversation|5tuple --window SIZE|whole
 *              [--top K] [--workers N] [--out FILE.jsonl]
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "weir/weir.h"

/* One window over any capture: [0, 2^62) ns holds every timestamp until the year 2116. */
#define FLOWS_WHOLE_WINDOW_NS (INT64_C(1) << 62)

enum {
	OPT_PCAP = 1, OPT_DPDK, OPT_PORT, OPT_GROUP, OPT_WINDOW, OPT_TOP, OPT_WORKERS, OPT_CORES,
	OPT_OUT, OPT_FORMAT, OPT_OOO, OPT_IDLE_STOP, OPT_NO_PIN, OPT_QUIET, OPT_HELP, OPT_RANK,
	OPT_MIN, OPT_IDLE_TIMEOUT, OPT_ACTIVE_TIMEOUT, OPT_STATE_DIR, OPT_INTERVAL,
};

static const struct option flows_options[] = {
	{"pcap", required_argument, NULL, OPT_PCAP},
	{"dpdk", required_argument, NULL, OPT_DPDK},
	{"port", required_argument, NULL, OPT_PORT},
	{"group", required_argument, NULL, OPT_GROUP},
	{"window", required_argument, NULL, OPT_WINDOW},
	{"top", required_argument, NULL, OPT_TOP},
	{"workers", required_argument, NULL, OPT_WORKERS},
	{"cores", required_argument, NULL, OPT_CORES},
	{"out", required_argument, NULL, OPT_OUT},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"out-of-orderness", required_argument, NULL, OPT_OOO},
	{"idle-stop", required_argument, NULL, OPT_IDLE_STOP},
	{"no-pin", no_argument, NULL, OPT_NO_PIN},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"help", no_argument, NULL, OPT_HELP},
	{"rank", required_argument, NULL, OPT_RANK},
	{"min", required_argument, NULL, OPT_MIN},
	{"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
	{"active-timeout", required_argument, NULL, OPT_ACTIVE_TIMEOUT},
	{"state-dir", required_argument, NULL, OPT_STATE_DIR},
	{"checkpoint-interval", required_argument, NULL, OPT_INTERVAL},
	{NULL, 0, NULL, 0},
};

struct flows_args {
	const char *pcap;
	const char *dpdk;
	uint64_t port;
	const char *group;
	const char *window;
	uint64_t top;
	const char *rank;
	const char *min;
	const char *idle_timeout;   /* flowrec */
	const char *active_timeout; /* flowrec */
	const char *out;
	const char *format;
	const char *out_of_orderness;
	const char *state_dir;
	uint64_t idle_stop_ms;
	bool quiet;
	struct weir_job_options options;
};

static void flows_usage(FILE *stream)
{
	fprintf(stream,
		"usage: weir flows --pcap FILE | --dpdk 'EAL ARGS' [--port ID] [--idle-stop MS]\n"
		"         --group host|src|dst|conversation|5tuple|syn|scan --window SIZE|whole\n"
		"         | --group flowrec [--idle-timeout SIZE] [--active-timeout SIZE]\n"
		"       [--top K] [--rank COLUMN] [--min COLUMN[,COLUMN]=N] [--workers N]\n"
		"       [--cores LIST]\n"
		"       [--no-pin] [--out FILE] [--format jsonl|csv] [--out-of-orderness SIZE]\n"
		"       [--quiet] [--state-dir DIR [--checkpoint-interval 1s]]\n"
		"SIZE is a duration: 500ms, 1s, 10s, 1m (units ns us ms s m h).\n"
		"--top K keeps the K rows per window with the largest --rank column (bytes; syns\n"
		"for syn, distinct_ports for scan), written as each window completes; ties go\n"
		"to the lower address.  --min COLUMN=N writes only rows with COLUMN >= N (e.g.\n"
		"--min distinct_ports=100); with several columns, rows where each is >= N.\n"
		"flowrec: NetFlow-style records per 5-tuple, ended by --idle-timeout (15s),\n"
		"--active-timeout (30m), TCP FIN/RST or the end of input.\n"
		"--state-dir makes the output exactly-once (--out FILE, no --top): rerun the same\n"
		"command after a crash to continue.\n");
}

/* "1s", "250ms", "10us", "5m"... into nanoseconds.  Returns: 0 or -EINVAL. */
static int parse_duration_ns(const char *text, int64_t *out)
{
	static const struct {
		const char *unit;
		int64_t ns;
	} units[] = {{"ns", 1},		   {"us", 1000},	   {"ms", 1000000},
		     {"s", 1000000000}, {"m", 60000000000}, {"h", 3600000000000}};
	char *end = NULL;
	errno = 0;
	long long value = strtoll(text, &end, 10);
	if (errno != 0 || end == text || value < 0)
		return -EINVAL;
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		if (strcmp(end, units[u].unit) == 0) {
			if (value > INT64_MAX / units[u].ns)
				return -EINVAL;
			*out = value * units[u].ns;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_group(const char *text, enum weir_flow_group *group)
{
	static const struct {
		const char *name;
		enum weir_flow_group group;
	} groups[] = {{"host", WEIR_FLOWS_HOST},
		      {"src", WEIR_FLOWS_SRC},
		      {"dst", WEIR_FLOWS_DST},
		      {"conversation", WEIR_FLOWS_CONVERSATION},
		      {"5tuple", WEIR_FLOWS_5TUPLE},
		      {"syn", WEIR_FLOWS_SYN},
		      {"scan", WEIR_FLOWS_SCAN}};
	for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
		if (strcmp(text, groups[g].name) == 0) {
			*group = groups[g].group;
			return 0;
		}
	}
	return -EINVAL;
}

/* Returns: 0, 1 for --help, -1 for a usage error (already reported). */
static int parse_flows_args(struct flows_args *args, int argc, char **argv)
{
	int option;
	optind = 1;
	while ((option = getopt_long(argc, argv, "", flows_options, NULL)) != -1) {
		uint64_t value = 0;
		int rc = 0;
		switch (option) {
		case OPT_PCAP: args->pcap = optarg; break;
		case OPT_DPDK: args->dpdk = optarg; break;
		case OPT_GROUP: args->group = optarg; break;
		case OPT_WINDOW: args->window = optarg; break;
		case OPT_CORES: args->options.cpu_list = optarg; break;
		case OPT_OUT: args->out = optarg; break;
		case OPT_FORMAT: args->format = optarg; break;
		case OPT_OOO: args->out_of_orderness = optarg; break;
		case OPT_NO_PIN: args->options.pin_workers = false; break;
		case OPT_QUIET: args->quiet = true; break;
		case OPT_RANK: args->rank = optarg; break;
		case OPT_MIN: args->min = optarg; break;
		case OPT_IDLE_TIMEOUT: args->idle_timeout = optarg; break;
		case OPT_ACTIVE_TIMEOUT: args->active_timeout = optarg; break;
		case OPT_STATE_DIR: args->state_dir = optarg; break;
		case OPT_INTERVAL:
			rc = weir_parse_duration_ms(flows_options, option, optarg,
						    &args->options.checkpoint_interval_ms);
			break;
		case OPT_HELP: flows_usage(stdout); return 1;
		case OPT_PORT:
			rc = weir_parse_u64(flows_options, option, optarg, &args->port);
			if (rc == 0 && args->port > UINT16_MAX) {
				fprintf(stderr, "weir flows: --port %s: at most 65535\n", optarg);
				rc = -EINVAL;
			}
			break;
		case OPT_TOP: rc = weir_parse_u64(flows_options, option, optarg, &args->top); break;
		case OPT_IDLE_STOP:
			rc = weir_parse_u64(flows_options, option, optarg, &args->idle_stop_ms);
			break;
		case OPT_WORKERS:
			rc = weir_parse_u64(flows_options, option, optarg, &value);
			args->options.worker_count = (uint32_t)value;
			if (rc == 0 && value > 256) {
				fprintf(stderr, "weir flows: --workers %s: at most 256\n", optarg);
				rc = -EINVAL;
			}
			break;
		default: flows_usage(stderr); return -1;
		}
		if (rc != 0)
			return -1;
	}
	if (optind != argc) {
		fprintf(stderr, "weir flows: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if ((args->pcap == NULL) == (args->dpdk == NULL)) {
		fprintf(stderr,
			"weir flows: give exactly one of --pcap FILE and --dpdk 'EAL ARGS'\n");
		return -1;
	}
	bool records = args->group != NULL && strcmp(args->group, "flowrec") == 0;
	if (args->group == NULL || (args->window == NULL && !records)) {
		fprintf(stderr, "weir flows: %s is required\n",
			args->group == NULL ? "--group" : "--window");
		return -1;
	}
	if (records && (args->window != NULL || args->top > 0)) {
		fprintf(stderr, "weir flows: --group flowrec ends records by timeouts: it takes "
				"no --window or --top\n");
		return -1;
	}
	if (!records && (args->idle_timeout != NULL || args->active_timeout != NULL)) {
		fprintf(stderr, "weir flows: --idle-timeout and --active-timeout are for "
				"--group flowrec\n");
		return -1;
	}
	return 0;
}

/* --group flowrec: NetFlow's usual timeouts unless given. */
static int flow_records(struct weir_job *job, const struct flows_args *args)
{
	int64_t idle_ns = INT64_C(15) * 1000000000, active_ns = INT64_C(1800) * 1000000000;
	if ((args->idle_timeout != NULL && parse_duration_ns(args->idle_timeout, &idle_ns)) ||
	    (args->active_timeout != NULL &&
	     parse_duration_ns(args->active_timeout, &active_ns)) ||
	    idle_ns == 0 || active_ns == 0) {
		fprintf(stderr, "weir flows: --idle-timeout/--active-timeout: expected a "
				"duration such as 15s\n");
		return -EINVAL;
	}
	int rc = weir_job_flow_records(job, idle_ns, active_ns);
	if (rc != 0)
		fprintf(stderr, "weir flows: %s\n", weir_job_error(job));
	return rc;
}

static int attach_flows_sink(struct weir_job *job, const struct flows_args *args,
			     enum weir_flow_group group)
{
	enum weir_format format = WEIR_FORMAT_JSONL;
	if (args->format != NULL && strcmp(args->format, "csv") == 0)
		format = WEIR_FORMAT_CSV;
	struct weir_sink_options sink = {
		.path = args->out,
		.format = format,
		.top_k = (uint32_t)args->top,
		.rank_column = args->rank != NULL	     ? args->rank
			       : group == WEIR_FLOWS_SYN  ? "syns"
			       : group == WEIR_FLOWS_SCAN ? "distinct_ports"
							  : "bytes",
	};
	char min_column[64];
	if (args->min != NULL) {
		const char *equals = strchr(args->min, '=');
		char *end = NULL;
		if (equals != NULL && (size_t)(equals - args->min) < sizeof(min_column)) {
			memcpy(min_column, args->min, (size_t)(equals - args->min));
			min_column[equals - args->min] = '\0';
			errno = 0;
			sink.min_value = strtoll(equals + 1, &end, 10);
		}
		if (equals == NULL || end == equals + 1 || *end != '\0' || errno != 0) {
			fprintf(stderr, "weir flows: --min '%s': expected COLUMN[,COLUMN]=N\n",
				args->min);
			return -1;
		}
		sink.min_column = min_column;
	}
	int rc = weir_job_sink_with(job, &sink);
	if (rc != 0)
		fprintf(stderr, "weir flows: %s\n", weir_job_error(job));
	return rc;
}

static int build_flows_job(struct weir_job *job, const struct flows_args *args)
{
	enum weir_flow_group group = WEIR_FLOWS_5TUPLE;
	bool records = strcmp(args->group, "flowrec") == 0;
	if (!records && parse_group(args->group, &group) != 0) {
		fprintf(stderr, "weir flows: --group '%s': expected host, src, dst, conversation, "
				"5tuple, syn, scan or flowrec\n", args->group);
		return -1;
	}
	int64_t window_ns = FLOWS_WHOLE_WINDOW_NS;
	if (!records && strcmp(args->window, "whole") != 0 &&
	    (parse_duration_ns(args->window, &window_ns) != 0 || window_ns == 0)) {
		fprintf(stderr, "weir flows: --window '%s': expected a duration such as 1s or "
				"500ms, or whole\n", args->window);
		return -1;
	}
	if (args->format != NULL && strcmp(args->format, "csv") != 0 &&
	    strcmp(args->format, "jsonl") != 0) {
		fprintf(stderr, "weir flows: --format '%s': expected jsonl or csv\n", args->format);
		return -1;
	}
	/* First: the sink opens its file for two-phase commit when there is a state dir. */
	int rc = args->state_dir != NULL ? weir_job_use_state_dir(job, args->state_dir) : 0;
	if (rc != 0) {
		fprintf(stderr, "weir flows: %s\n", weir_job_error(job));
		return rc;
	}
	rc = args->pcap != NULL
			 ? weir_job_source_pcap(job, args->pcap)
			 : weir_job_source_dpdk(job, args->dpdk, (uint16_t)args->port,
						args->idle_stop_ms);
	if (rc == 0 && records)
		return flow_records(job, args) == 0 ? attach_flows_sink(job, args, group) : -1;
	if (rc == 0)
		rc = weir_job_flows(job, group, window_ns);
	if (rc == 0)
		return attach_flows_sink(job, args, group);
	fprintf(stderr, "weir flows: %s\n", weir_job_error(job));
	return rc;
}

static void on_interrupt(int signal_number)
{
	(void)signal_number;
	weir_stop();
}

int weir_cmd_flows(int argc, char **argv)
{
	struct flows_args args;
	memset(&args, 0, sizeof(args));
	weir_job_options_init(&args.options);
	int parsed = parse_flows_args(&args, argc, argv);
	if (parsed != 0)
		return parsed > 0 ? 0 : 2;
	if (args.out_of_orderness != NULL &&
	    parse_duration_ns(args.out_of_orderness, &args.options.out_of_orderness) != 0) {
		fprintf(stderr, "weir flows: --out-of-orderness '%s': expected a duration\n",
			args.out_of_orderness);
		return 2;
	}
	struct weir_job *job = NULL;
	if (weir_job_create(&job, &args.options) != 0) {
		fprintf(stderr, "weir flows: bad options (workers <= 256)\n");
		return 2;
	}
	if (build_flows_job(job, &args) != 0) {
		weir_job_destroy(job);
		return 2;
	}
	/* Ctrl-C ends live input like the end of a file: the open windows fire and print. */
	signal(SIGINT, on_interrupt);
	signal(SIGTERM, on_interrupt);
	int status = weir_cli_run(job, "flows", args.state_dir, args.quiet);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	return status;
}
