/* The subcommands of the `weir` program.  Each takes argv with argv[0] = its own name and
 * returns the process exit status: 0 success, 1 the job failed while running, 2 bad usage or
 * configuration (unknown column, bad window, missing file), 3 the job finished but a bound
 * refused some events (they are counted in the report). */
#ifndef WEIR_CLI_COMMANDS_H
#define WEIR_CLI_COMMANDS_H

#include <stdbool.h>

#include "weir/weir.h"

int weir_cmd_agg(int argc, char **argv);
int weir_cmd_bench(int argc, char **argv); /* bench/bench.c */
int weir_cmd_checkpoints(int argc, char **argv);
int weir_cmd_flows(int argc, char **argv);
int weir_cmd_gen(int argc, char **argv);
int weir_cmd_topology(int argc, char **argv);

/* Runs @job, says why it failed or that its state dir had finished, prints the report
 * (always when input was skipped or events refused or late; otherwise unless @quiet), and
 * destroys the job.  @command names the subcommand in messages.  Returns: the exit status. */
int weir_cli_run(struct weir_job *job, const char *command, const char *state_dir, bool quiet);

#endif
