/* weir: the command-line program.  It is the only place that wires every module together. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"agg", weir_cmd_agg, "windowed aggregates over a CSV file"},
	{"bench", weir_cmd_bench, "throughput of weir jobs next to a baseline, in one run"},
	{"checkpoints", weir_cmd_checkpoints, "list and verify the checkpoints in a state dir"},
	{"flows", weir_cmd_flows, "traffic per host, conversation or 5-tuple per window"},
	{"gen", weir_cmd_gen, "write a synthetic transactions CSV (for demos and benchmarks)"},
	{"topology", weir_cmd_topology, "show the machine and where workers would run"},
};

static void usage(FILE *stream)
{
	fprintf(stream, "usage: weir COMMAND [OPTIONS]   (weir COMMAND --help for its options)\n"
			"\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(stream, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "weir: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
