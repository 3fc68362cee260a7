/* weir topology: shows the machine (or a synthetic one) as weir sees it, and where the workers
 * of a job would run with the same --workers and --cores as `weir agg`.  Nothing is bound:
 * this only plans, so it also answers "what would weir do on a machine like X". */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/topo.h"

static void topology_usage(FILE *stream)
{
	fprintf(stream,
		"usage: weir topology [--synthetic DESC] [--workers N] [--cores LIST]\n"
		"  prints the packages, NUMA nodes, cores and PUs, then which PU each worker\n"
		"  would run on\n"
		"  --synthetic DESC  plan for an hwloc synthetic machine instead of this one,\n"
		"                    e.g. 'pack:2 numa:2 core:8 pu:2'\n"
		"  --workers N       N workers (default 0: one per physical core)\n"
		"  --cores LIST      run workers on these CPUs, in this order, e.g. '0,2-3,8'\n");
}

enum topology_option {
	OPT_SYNTHETIC = 's',
	OPT_WORKERS = 'w',
	OPT_CORES = 'c',
	OPT_HELP = 'h',
};

int weir_cmd_topology(int argc, char **argv)
{
	static const struct option long_options[] = {
		{"synthetic", required_argument, NULL, OPT_SYNTHETIC},
		{"workers", required_argument, NULL, OPT_WORKERS},
		{"cores", required_argument, NULL, OPT_CORES},
		{"help", no_argument, NULL, OPT_HELP},
		{NULL, 0, NULL, 0},
	};
	const char *synthetic = NULL, *cores = NULL;
	uint64_t workers = 0;
	int option;
	optind = 1;
	while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
		switch (option) {
		case OPT_SYNTHETIC: synthetic = optarg; break;
		case OPT_CORES: cores = optarg; break;
		case OPT_WORKERS:
			if (weir_parse_u64(long_options, option, optarg, &workers) != 0)
				return 2;
			if (workers > WEIR_WORKERS_MAX) {
				fprintf(stderr, "weir topology: --workers: %s is more than %u, the "
					"most workers a job can have\n", optarg, WEIR_WORKERS_MAX);
				return 2;
			}
			break;
		case OPT_HELP: topology_usage(stdout); return 0;
		default: topology_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "weir topology: unexpected argument '%s'\n", argv[optind]);
		topology_usage(stderr);
		return 2;
	}
	char message[512] = "";
	struct weir_topo *topo = NULL;
	int rc = weir_topo_create(&topo, synthetic, message, sizeof(message));
	if (rc != 0) {
		/* A bad description is bad usage; failing to read this machine is not. */
		fprintf(stderr, "weir topology: %s%s\n", synthetic != NULL ? "--synthetic: " : "",
			message);
		return synthetic != NULL ? 2 : 1;
	}
	struct weir_placement plan;
	rc = weir_topo_plan(topo, (uint32_t)workers, cores, &plan, message, sizeof(message));
	if (rc != 0) {
		/* --workers was range-checked above, so only the CPU list can be wrong. */
		fprintf(stderr, "weir topology: %s: %s\n", cores != NULL ? "--cores" : "--workers",
			message);
		weir_topo_destroy(topo);
		return 2;
	}
	weir_topo_print(topo, &plan, stdout);
	weir_topo_destroy(topo);
	if (fflush(stdout) != 0) {
		perror("weir topology: writing the output");
		return 1;
	}
	return 0;
}
