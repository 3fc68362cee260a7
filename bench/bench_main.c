/* bench/weir-bench: `weir bench` as a program of its own (see bench.h).
 *
 * `weir-bench ARGS` and `weir-bench bench ARGS` are the same: the second form is how the
 * bench re-executes itself (/proc/self/exe bench --engine-once ...), as it would as `weir`. */
#include <string.h>

#include "bench/bench.h"

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "bench") == 0)
		return weir_cmd_bench(argc - 1, argv + 1);
	return weir_cmd_bench(argc, argv);
}
