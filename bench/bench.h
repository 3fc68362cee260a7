/* weir bench: end-to-end throughput of weir jobs next to a reference program, in one run.
 *
 * The `weir` program registers weir_cmd_bench as its `bench` subcommand; bench/weir-bench is
 * the same command as a program of its own (bench_main.c). */
#ifndef WEIR_BENCH_BENCH_H
#define WEIR_BENCH_BENCH_H

/* Runs `weir bench`: argv[0] = "bench" (or the program's name).  Each engine repetition runs
 * in a child process, `/proc/self/exe bench --engine-once ...`, because DPDK's EAL starts once
 * per process: both programs must therefore accept `bench` as their first argument.
 * Returns: the exit status: 0, 1 a run failed, 2 bad usage. */
int weir_cmd_bench(int argc, char **argv);

#endif
