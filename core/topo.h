/* Topology discovery and worker placement (hwloc).
 *
 * weir runs one pinned worker thread per placement slot.  This module finds the machine's
 * packages, NUMA nodes, cores and PUs (hardware threads), decides which PU each worker runs
 * on, and binds a worker's thread to its PU and its memory to that PU's NUMA node.
 *
 * Placement is a pure function of a topology, so a plan for a machine we do not have is
 * tested by building its topology from an hwloc synthetic description ("pack:2 numa:2
 * core:8 pu:2").  A synthetic topology can be planned and printed but never bound.
 *
 * Numbering: a PU is named by its OS index (the CPU number of taskset, /proc/cpuinfo and
 * --cores); cores and packages by their hwloc logical index (0..n-1, grouped by package and
 * NUMA node); NUMA nodes by their OS index (the node number of numactl). */
#ifndef WEIR_CORE_TOPO_H
#define WEIR_CORE_TOPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The most workers a job can have: bounds the placement table and every per-worker array. */
#define WEIR_WORKERS_MAX 256u

/* A loaded hwloc topology: this machine or a synthetic one.  Opaque; immutable once created,
 * so any number of threads may read it (plan, print, bind) at the same time. */
struct weir_topo;

/* Where one worker runs. */
struct weir_worker_place {
	uint32_t worker;		/* the worker's id: its index in the plan */
	int pu_os_index;		/* the PU (OS CPU number) the worker's thread is bound to */
	uint32_t core_index;		/* logical index of the PU's core */
	uint32_t package_index;		/* logical index of the PU's package; 0 without any */
	int numa_node_os_index;		/* OS index of the PU's local NUMA node (its memory) */
	bool shares_core;		/* another worker of this plan runs on the same core */
};

/* Which PU every worker of a job runs on: workers[0..worker_count) are valid. */
struct weir_placement {
	uint32_t worker_count;		/* 1..WEIR_WORKERS_MAX after a successful plan */
	struct weir_worker_place workers[WEIR_WORKERS_MAX];
};

/* Loads a topology: this machine's when @synthetic_or_null is NULL (only the PUs this
 * process may run on, so a taskset or cgroup limit shrinks the default plan), else the
 * machine described by an hwloc synthetic string such as "pack:2 numa:2 core:8 pu:2".
 * On failure a sentence saying why goes to @error (always NUL-terminated when
 * @error_length > 0; @error may be NULL when @error_length is 0).
 * Ownership: *@out is the caller's; free it with weir_topo_destroy.
 * Context: cold path (it allocates, and reading this machine scans /sys).
 * Returns: 0; -EINVAL for a bad synthetic description; -ENOMEM; or the -errno with which
 * hwloc failed to read this machine. */
int weir_topo_create(struct weir_topo **out, const char *synthetic_or_null, char *error,
		     size_t error_length);

/* Frees a topology; NULL is ignored.  No thread may still use it. */
void weir_topo_destroy(struct weir_topo *topo);

/* Number of physical cores (a PU without a core object counts as a core of its own). */
uint32_t weir_topo_core_count(const struct weir_topo *topo);
/* Number of PUs (hardware threads). */
uint32_t weir_topo_pu_count(const struct weir_topo *topo);
/* Number of NUMA nodes (at least 1: hwloc gives a machine without NUMA one node). */
uint32_t weir_topo_numa_count(const struct weir_topo *topo);

/* Computes where @worker_count workers run; a pure function of @topo and the arguments.
 *
 * Without @cpu_list_or_null:
 * - @worker_count 0 (the default): one worker per physical core, on the core's first PU, so
 *   hyper-thread siblings stay free; cores in hwloc logical order, which groups them by
 *   package and NUMA node.  More than WEIR_WORKERS_MAX cores: the first WEIR_WORKERS_MAX.
 * - @worker_count N > 0: the first N cores' first PUs; past the core count, the second PU
 *   of each core (its hyper-thread sibling) in core order, then the third, and so on; past
 *   the PU count it wraps around to the start (oversubscribed, but it runs).
 * With @cpu_list_or_null, a list of OS CPU numbers like taskset -c and DPDK -l ("0,2-3,8"):
 * workers go on those PUs in the order given, one per listed PU, or @worker_count of them
 * round-robin over the list when @worker_count > 0.  A CPU may be listed once only.
 * shares_core is set on every worker that has another worker on its core.
 *
 * @plan is zeroed first, so on failure plan->worker_count is 0.  On failure a sentence
 * naming the bad value goes to @error (as for weir_topo_create).
 * Context: any thread; does not allocate.
 * Returns: 0; -EINVAL when @worker_count > WEIR_WORKERS_MAX, or the list is empty, has bad
 * syntax (the message names the token), names a CPU twice or a CPU not in @topo, or names
 * more than WEIR_WORKERS_MAX CPUs without a @worker_count. */
int weir_topo_plan(const struct weir_topo *topo, uint32_t worker_count,
		   const char *cpu_list_or_null, struct weir_placement *plan, char *error,
		   size_t error_length);

/* Binds the calling thread to @place's PU and its future memory allocations to @place's
 * NUMA node (a strict policy: memory comes from that node or the allocation fails).
 * A failed membind on a machine with a single NUMA node is ignored when the kernel cannot or
 * may not do it (ENOSYS: no NUMA support; EXDEV: not enforceable; EPERM: set_mempolicy
 * blocked, as in containers): there all memory is local anyway.
 * Context: the worker's own thread, at startup; @topo may be shared with other threads.
 * Returns: 0; -EOPNOTSUPP on a synthetic topology (it is not this machine; nothing is done);
 * -EINVAL when @place's PU is not in @topo; or the -errno of the failed cpubind or membind
 * (after a failed membind the thread stays bound to its PU). */
int weir_topo_bind_thread(const struct weir_topo *topo, const struct weir_worker_place *place);

/* Writes a readable summary to @out: totals; packages, NUMA nodes and cores with their PUs;
 * then, when @plan is not NULL, one line per worker (PU, core, package, NUMA node) and a
 * note naming the workers that share a core.  Context: cold path. */
void weir_topo_print(const struct weir_topo *topo, const struct weir_placement *plan,
		     FILE *out);

#endif
