/* The subcommands of the `weir` program.  Each takes argv with argv[0] = its own name and
 * returns the process exit status: 0 success, 1 the job failed while running, 2 bad usage or
 * configuration (unknown column, bad window, missing file), 3 the job finished but a bound
 * refused some events (they are counted in the report). */
#ifndef WEIR_CLI_COMMANDS_H
#define WEIR_CLI_COMMANDS_H

int weir_cmd_agg(int argc, char **argv);
int weir_cmd_bench(int argc, char **argv); /* bench/bench.c */
int weir_cmd_checkpoints(int argc, char **argv);
int weir_cmd_flows(int argc, char **argv);
int weir_cmd_gen(int argc, char **argv);
int weir_cmd_topology(int argc, char **argv);

#endif
