/* weir agg: windowed aggregates over a CSV file.
 *
 *   weir agg --input FILE.csv --schema 'ts:i64,card:str,merchant:str,amount:f64' --time ts
 *            --key card[,merchant] --window tumbling:SIZE | sliding:SIZE,SLIDE
 *            --agg count,sum:amount,min:amount,max:amount,avg:amount
 *            [--out-of-orderness N] [--lateness N] [--workers N] [--out FILE.jsonl] ...
 *            [--combine]
 *
 * Only the columns the job needs (time, key, aggregated) cross the shuffle: a projection is
 * fused into the source stage. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/fault.h"
#include "weir/weir.h"

struct agg_args {
	const char *input;
	const char *schema;
	const char *time;
	const char *key;
	const char *window;
	const char *aggregates;
	const char *out;
	const char *late_out;
	const char *format;
	const char *state_dir;
	bool quiet;
	struct weir_job_options options;
	struct weir_window_spec spec;
};

static void agg_usage(FILE *stream)
{
	fprintf(stream,
		"usage: weir agg --input FILE.csv --schema 'ts:i64,card:str,amount:f64' --time ts\n"
		"         --key COL[,COL...] --window tumbling:SIZE | sliding:SIZE,SLIDE\n"
		"         --agg count,sum:COL,min:COL,max:COL,avg:COL,distinct:COL,\n"
		"               max_by:COL:ORDER (COL of the largest ORDER)\n"
		"       [--out-of-orderness N] [--lateness N] [--workers N] [--cores LIST]\n"
		"       [--out FILE] [--format jsonl|csv] [--late-out FILE]\n"
		"       [--idle-timeout MS] [--state-budget MIB] [--ring-slots N] [--batch N]\n"
		"       [--seed N] [--no-pin] [--quiet] [--combine]\n"
		"       [--state-dir DIR [--checkpoint-interval 1s] [--checkpoints-kept 3]]\n"
		"SIZE, SLIDE and N are in the time column's unit; windows are [k*SLIDE, "
		"k*SLIDE+SIZE).\n"
		"With --state-dir the output is exactly-once: checkpoints go to DIR, --out only "
		"ever holds\ncommitted rows, and running the same command again after a crash "
		"continues from the\nnewest checkpoint (any --workers).\n"
		"--combine merges each pull's events per key and pane before the shuffle "
		"(two-phase\naggregation: fewer rows cross between workers when keys repeat; "
		"not with distinct).\n"
		"Exit status: 0 done, 1 failed while running, 2 bad usage or input, 3 done but a "
		"bound refused events.\n");
}

enum {
	OPT_INPUT = 1, OPT_SCHEMA, OPT_TIME, OPT_KEY, OPT_WINDOW, OPT_AGG, OPT_OOO, OPT_LATENESS,
	OPT_WORKERS, OPT_CORES, OPT_OUT, OPT_FORMAT, OPT_LATE_OUT, OPT_IDLE, OPT_BUDGET,
	OPT_RING, OPT_BATCH, OPT_SEED, OPT_NO_PIN, OPT_QUIET, OPT_HELP, OPT_STATE_DIR,
	OPT_INTERVAL, OPT_KEPT, OPT_COMBINE,
};

static const struct option agg_options[] = {
	{"input", required_argument, NULL, OPT_INPUT},
	{"schema", required_argument, NULL, OPT_SCHEMA},
	{"time", required_argument, NULL, OPT_TIME},
	{"key", required_argument, NULL, OPT_KEY},
	{"window", required_argument, NULL, OPT_WINDOW},
	{"agg", required_argument, NULL, OPT_AGG},
	{"out-of-orderness", required_argument, NULL, OPT_OOO},
	{"lateness", required_argument, NULL, OPT_LATENESS},
	{"workers", required_argument, NULL, OPT_WORKERS},
	{"cores", required_argument, NULL, OPT_CORES},
	{"out", required_argument, NULL, OPT_OUT},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"late-out", required_argument, NULL, OPT_LATE_OUT},
	{"idle-timeout", required_argument, NULL, OPT_IDLE},
	{"state-budget", required_argument, NULL, OPT_BUDGET},
	{"ring-slots", required_argument, NULL, OPT_RING},
	{"batch", required_argument, NULL, OPT_BATCH},
	{"seed", required_argument, NULL, OPT_SEED},
	{"no-pin", no_argument, NULL, OPT_NO_PIN},
	{"quiet", no_argument, NULL, OPT_QUIET},
	{"combine", no_argument, NULL, OPT_COMBINE},
	{"help", no_argument, NULL, OPT_HELP},
	{"state-dir", required_argument, NULL, OPT_STATE_DIR},
	{"checkpoint-interval", required_argument, NULL, OPT_INTERVAL},
	{"checkpoints-kept", required_argument, NULL, OPT_KEPT},
	{NULL, 0, NULL, 0},
};

static int parse_number_option(struct agg_args *args, int option, const char *text)
{
	uint64_t value = 0;
	int64_t signed_value = 0;
	int rc;
	switch (option) {
	case OPT_OOO:
	case OPT_LATENESS:
		rc = weir_parse_i64(agg_options, option, text, &signed_value);
		if (rc == 0 && signed_value < 0) {
			fprintf(stderr, "weir: --%s must be >= 0\n",
				weir_option_name(agg_options, option));
			return -1;
		}
		if (option == OPT_OOO)
			args->options.out_of_orderness = signed_value;
		else
			args->spec.allowed_lateness = signed_value;
		return rc;
	case OPT_INTERVAL:
		return weir_parse_duration_ms(agg_options, option, text,
					      &args->options.checkpoint_interval_ms);
	default:
		break;
	}
	rc = weir_parse_u64(agg_options, option, text, &value);
	if (rc != 0)
		return rc;
	bool fits_u32 = value <= UINT32_MAX;
	switch (option) {
	case OPT_WORKERS: args->options.worker_count = (uint32_t)value; break;
	case OPT_IDLE: args->options.idle_timeout_ms = value; break;
	case OPT_BUDGET: args->options.state_budget_mib = value; break;
	case OPT_RING: args->options.ring_slots = (uint32_t)value; break;
	case OPT_BATCH: args->options.batch_records = (uint32_t)value; break;
	case OPT_SEED: args->options.seed = value; fits_u32 = true; break;
	case OPT_KEPT: args->options.checkpoints_kept = (uint32_t)value; break;
	default: break;
	}
	if (!fits_u32) {
		fprintf(stderr, "weir: --%s: %s is too large\n",
			weir_option_name(agg_options, option), text);
		return -1;
	}
	return 0;
}

/* Returns: 0, 1 to exit 0 (help), or -1 to exit 2. */
static int parse_args(struct agg_args *args, int argc, char **argv)
{
	const char **strings[] = {
		[OPT_INPUT] = &args->input, [OPT_SCHEMA] = &args->schema,
		[OPT_TIME] = &args->time,   [OPT_KEY] = &args->key,
		[OPT_WINDOW] = &args->window, [OPT_AGG] = &args->aggregates,
		[OPT_CORES] = &args->options.cpu_list, [OPT_OUT] = &args->out,
		[OPT_FORMAT] = &args->format, [OPT_LATE_OUT] = &args->late_out,
		[OPT_STATE_DIR] = &args->state_dir,
	};
	int option;
	optind = 1;
	while ((option = getopt_long(argc, argv, "", agg_options, NULL)) != -1) {
		if (option == OPT_HELP) {
			agg_usage(stdout);
			return 1;
		}
		if (option == OPT_NO_PIN) {
			args->options.pin_workers = false;
		} else if (option == OPT_QUIET) {
			args->quiet = true;
		} else if (option == OPT_COMBINE) {
			args->spec.combine = true;
		} else if (option > 0 && option < (int)(sizeof(strings) / sizeof(strings[0])) &&
			   strings[option] != NULL) {
			*strings[option] = optarg;
		} else if (option == '?' || parse_number_option(args, option, optarg) != 0) {
			agg_usage(stderr);
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "weir agg: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	const char *missing = args->input == NULL    ? "--input"
			      : args->schema == NULL ? "--schema"
			      : args->time == NULL   ? "--time"
			      : args->key == NULL    ? "--key"
			      : args->window == NULL ? "--window"
			      : args->aggregates == NULL ? "--agg"
							 : NULL;
	if (missing != NULL) {
		fprintf(stderr, "weir agg: %s is required\n", missing);
		agg_usage(stderr);
		return -1;
	}
	if (weir_window_spec_parse(&args->spec, args->window) != 0) {
		fprintf(stderr,
			"weir agg: --window '%s': expected tumbling:SIZE or sliding:SIZE,SLIDE "
			"with positive integers\n",
			args->window);
		return -1;
	}
	return 0;
}

static int format_of(const char *name, const char *path, enum weir_format *format)
{
	if (name == NULL) {
		size_t length = path != NULL ? strlen(path) : 0;
		*format = length > 4 && strcmp(path + length - 4, ".csv") == 0 ? WEIR_FORMAT_CSV
									      : WEIR_FORMAT_JSONL;
		return 0;
	}
	if (strcmp(name, "jsonl") == 0 || strcmp(name, "json") == 0)
		*format = WEIR_FORMAT_JSONL;
	else if (strcmp(name, "csv") == 0)
		*format = WEIR_FORMAT_CSV;
	else
		return -1;
	return 0;
}

static bool list_contains(const char *list, const char *item)
{
	size_t length = strlen(item);
	for (const char *at = list; (at = strstr(at, item)) != NULL; at += length) {
		bool starts = at == list || at[-1] == ',';
		bool ends = at[length] == '\0' || at[length] == ',';
		if (starts && ends)
			return true;
	}
	return false;
}

static void add_column(char *out, size_t length, const char *column)
{
	if (column[0] == '\0' || list_contains(out, column))
		return;
	size_t used = strlen(out);
	if (used + 1 + strlen(column) < length)
		snprintf(out + used, length - used, ",%s", column);
}

/* The columns that cross the shuffle: time, key, then each aggregated column once (both of
 * max_by:COL:ORDER; an aggregate's =NAME is no column). */
static void needed_columns(const struct agg_args *args, char *out, size_t length)
{
	snprintf(out, length, "%s", args->time);
	char keys[1024], aggs[1024];
	snprintf(keys, sizeof(keys), "%s", args->key);
	snprintf(aggs, sizeof(aggs), "%s", args->aggregates);
	char *save = NULL;
	for (char *item = strtok_r(keys, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save))
		add_column(out, length, item);
	for (char *item = strtok_r(aggs, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		char *alias = strchr(item, '=');
		if (alias != NULL)
			*alias = '\0';
		char *column = strchr(item, ':');
		while (column != NULL) {
			char *next = strchr(++column, ':');
			if (next != NULL)
				*next = '\0';
			add_column(out, length, column);
			column = next;
		}
	}
}

static int build_job(struct weir_job *job, struct agg_args *args)
{
	/* First: the sinks open their files for two-phase commit when there is a state dir. */
	int rc = args->state_dir != NULL ? weir_job_use_state_dir(job, args->state_dir) : 0;
	if (rc == 0)
		rc = weir_job_source_csv(job, args->input, args->schema);
	char columns[2048];
	needed_columns(args, columns, sizeof(columns));
	if (rc == 0)
		rc = weir_job_project(job, columns);
	if (rc == 0)
		rc = weir_job_key_by(job, args->key);
	args->spec.time_column = args->time;
	args->spec.aggregates = args->aggregates;
	if (rc == 0)
		rc = weir_job_window(job, &args->spec);
	enum weir_format format, late_format;
	if (format_of(args->format, args->out, &format) != 0 ||
	    format_of(args->format, args->late_out, &late_format) != 0) {
		fprintf(stderr, "weir agg: --format '%s': expected jsonl or csv\n", args->format);
		return -1;
	}
	if (rc == 0)
		rc = weir_job_sink(job, args->out, format);
	if (rc == 0 && args->late_out != NULL)
		rc = weir_job_late_sink(job, args->late_out, late_format);
	if (rc != 0)
		fprintf(stderr, "weir agg: %s\n", weir_job_error(job));
	return rc;
}

int weir_cmd_agg(int argc, char **argv)
{
	struct agg_args args;
	memset(&args, 0, sizeof(args));
	weir_job_options_init(&args.options);
	int parsed = parse_args(&args, argc, argv);
	if (parsed != 0)
		return parsed > 0 ? 0 : 2;
	if (weir_fault_config_error() != NULL) {
		fprintf(stderr, "weir agg: %s\n", weir_fault_config_error());
		return 2;
	}
	struct weir_job *job = NULL;
	int rc = weir_job_create(&job, &args.options);
	if (rc != 0) {
		fprintf(stderr,
			"weir agg: bad options (ring slots must be a power of two >= 2, batch <= "
			"4096, workers <= 256 and <= key groups, state budget > 0)\n");
		return 2;
	}
	if (build_job(job, &args) != 0) {
		weir_job_destroy(job);
		return 2;
	}
	return weir_cli_run(job, "agg", args.state_dir, args.quiet);
}
