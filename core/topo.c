/* Topology discovery and worker placement with hwloc (see core/topo.h for the contract).
 *
 * Everything here is cold path: a job creates one topology and one plan at startup, and each
 * worker thread calls weir_topo_bind_thread once.  The topology is never modified after
 * weir_topo_create, which is what lets worker threads bind through it concurrently (hwloc
 * allows concurrent readers of an unmodified topology). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <hwloc.h>

#include "core/assert.h"
#include "core/mem.h"
#include "core/message.h"
#include "core/topo.h"

/* The largest OS CPU number a CPU list may name: Linux's NR_CPUS tops out at 8192, so this
 * leaves room while bounding the duplicate check's bitmap (8 KiB on the stack). */
#define TOPO_CPU_LIST_INDEX_MAX 65535u

/* Room for a printed set such as "0-15,32-47"; a longer one is cut short (display only). */
#define TOPO_LIST_TEXT_LENGTH 256

struct weir_topo {
	hwloc_topology_t hw;		/* loaded; never modified afterwards */
	char *synthetic;		/* our copy of the description; NULL: this machine */
	hwloc_obj_type_t core_type;	/* HWLOC_OBJ_CORE; HWLOC_OBJ_PU if there are no cores */
	uint32_t core_count;		/* objects of core_type */
	uint32_t pu_count;
	uint32_t numa_count;
	uint32_t package_count;
	uint32_t core_pu_max;		/* most PUs in one core: rounds of the default order */
};

/* hwloc reports failures as -1 with errno set; an errno of 0 would turn a failure into
 * "success", so it becomes -EIO. */
static int topo_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

static int topo_count(const struct weir_topo *topo, hwloc_obj_type_t type)
{
	int count = hwloc_get_nbobjs_by_type(topo->hw, type);
	return count > 0 ? count : 0;
}

/* Fills the counts once, so the accessors and the planner need no level lookups. */
static void topo_measure(struct weir_topo *topo)
{
	topo->core_type = topo_count(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
	topo->core_count = (uint32_t)topo_count(topo, topo->core_type);
	topo->pu_count = (uint32_t)topo_count(topo, HWLOC_OBJ_PU);
	topo->numa_count = (uint32_t)topo_count(topo, HWLOC_OBJ_NUMANODE);
	topo->package_count = (uint32_t)topo_count(topo, HWLOC_OBJ_PACKAGE);
	topo->core_pu_max = 0;
	for (uint32_t c = 0; c < topo->core_count; c++) {
		hwloc_obj_t core = hwloc_get_obj_by_type(topo->hw, topo->core_type, c);
		int pus = hwloc_get_nbobjs_inside_cpuset_by_type(topo->hw, core->cpuset,
								 HWLOC_OBJ_PU);
		if (pus > 0 && (uint32_t)pus > topo->core_pu_max)
			topo->core_pu_max = (uint32_t)pus;
	}
	WEIR_VERIFY(topo->core_count <= topo->pu_count);
}

static int topo_load(struct weir_topo *topo, const char *synthetic, char *error,
		     size_t error_length)
{
	if (hwloc_topology_init(&topo->hw) != 0) {
		weir_message_set(error, error_length, "hwloc could not start: out of memory");
		return -ENOMEM;
	}
	if (synthetic != NULL && hwloc_topology_set_synthetic(topo->hw, synthetic) != 0) {
		weir_message_set(
			error, error_length,
			"bad synthetic topology '%s' (expected levels of TYPE:COUNT from the "
			"machine down to PUs, such as 'pack:2 numa:2 core:8 pu:2')",
			synthetic);
		return -EINVAL;
	}
	if (hwloc_topology_load(topo->hw) != 0) {
		int rc = topo_errno();
		weir_message_set(error, error_length, "hwloc could not read the topology: %s",
				 strerror(-rc));
		return rc;
	}
	/* Builds hwloc's lazily computed internals now, so that concurrent readers (worker
	 * threads binding) never trigger a write into the shared topology. */
	if (hwloc_topology_refresh(topo->hw) != 0) {
		weir_message_set(error, error_length, "hwloc could not finish the topology: %s",
				 strerror(ENOMEM));
		return -ENOMEM;
	}
	topo_measure(topo);
	if (topo->pu_count == 0) {
		weir_message_set(error, error_length,
				 "the topology has no CPU this process may use");
		return -ENODEV;
	}
	return 0;
}

int weir_topo_create(struct weir_topo **out, const char *synthetic_or_null, char *error,
		     size_t error_length)
{
	WEIR_VERIFY(out != NULL);
	WEIR_VERIFY(error != NULL || error_length == 0);
	*out = NULL;
	weir_message_set(error, error_length, "%s", "");
	int rc = -ENOMEM;
	struct weir_topo *topo = weir_mem_alloc(sizeof(*topo), _Alignof(struct weir_topo),
						WEIR_MEM_ARENA_DEFAULT);
	if (topo == NULL)
		goto err_no_memory;
	if (synthetic_or_null != NULL) {
		size_t length = strlen(synthetic_or_null) + 1;
		topo->synthetic = weir_mem_alloc(length, 1, WEIR_MEM_ARENA_DEFAULT);
		if (topo->synthetic == NULL)
			goto err_free_topo;
		memcpy(topo->synthetic, synthetic_or_null, length);
	}
	rc = topo_load(topo, synthetic_or_null, error, error_length);
	if (rc != 0)
		goto err_destroy_hw;
	WEIR_VERIFY(topo->core_count > 0);
	WEIR_VERIFY(topo->hw != NULL);
	*out = topo;
	return 0;
err_destroy_hw:
	if (topo->hw != NULL)	/* NULL when hwloc_topology_init failed */
		hwloc_topology_destroy(topo->hw);
	weir_mem_free(topo->synthetic, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(topo, WEIR_MEM_ARENA_DEFAULT);
	return rc;
err_free_topo:
	weir_mem_free(topo, WEIR_MEM_ARENA_DEFAULT);
err_no_memory:
	weir_message_set(error, error_length, "out of memory");
	return rc;
}

void weir_topo_destroy(struct weir_topo *topo)
{
	if (topo == NULL)
		return;
	hwloc_topology_destroy(topo->hw);
	weir_mem_free(topo->synthetic, WEIR_MEM_ARENA_DEFAULT);
	weir_mem_free(topo, WEIR_MEM_ARENA_DEFAULT);
}

uint32_t weir_topo_core_count(const struct weir_topo *topo)
{
	WEIR_VERIFY(topo != NULL);
	return topo->core_count;
}

uint32_t weir_topo_pu_count(const struct weir_topo *topo)
{
	WEIR_VERIFY(topo != NULL);
	return topo->pu_count;
}

uint32_t weir_topo_numa_count(const struct weir_topo *topo)
{
	WEIR_VERIFY(topo != NULL);
	return topo->numa_count;
}

/* The NUMA node local to @pu: the first one attached to the nearest ancestor that has memory
 * (hwloc 2 hangs NUMA nodes off the object whose cpuset they serve, so that node's cpuset
 * contains @pu).  Walking up, rather than testing every node's cpuset, picks the nearest
 * node when several cover the PU (DRAM below a package next to a slower node above it).
 * A memory-side cache sits between an object and its node, hence the inner walk down. */
static int pu_numa_node(hwloc_obj_t pu)
{
	for (hwloc_obj_t obj = pu; obj != NULL; obj = obj->parent) {
		hwloc_obj_t memory = obj->memory_first_child;
		while (memory != NULL && memory->type != HWLOC_OBJ_NUMANODE)
			memory = memory->memory_first_child;
		if (memory != NULL)
			return (int)memory->os_index;
	}
	return 0;
}

/* The core @pu belongs to: its Core ancestor, or the PU itself when there are no cores. */
static hwloc_obj_t pu_core(const struct weir_topo *topo, hwloc_obj_t pu)
{
	if (topo->core_type == HWLOC_OBJ_PU)
		return pu;
	hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo->hw, HWLOC_OBJ_CORE, pu);
	return core != NULL ? core : pu;
}

static void place_fill(const struct weir_topo *topo, hwloc_obj_t pu, uint32_t worker,
		       struct weir_worker_place *place)
{
	WEIR_ASSERT(pu->type == HWLOC_OBJ_PU);
	hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(topo->hw, HWLOC_OBJ_PACKAGE, pu);
	place->worker = worker;
	place->pu_os_index = (int)pu->os_index;
	place->core_index = pu_core(topo, pu)->logical_index;
	place->package_index = package != NULL ? package->logical_index : 0;
	place->numa_node_os_index = pu_numa_node(pu);
	place->shares_core = false;
}

/* Sets shares_core on every worker with another worker on its core.  Quadratic, but at most
 * WEIR_WORKERS_MAX^2 / 2 comparisons, and it needs no table sized by the core count. */
static void plan_mark_sharing(struct weir_placement *plan)
{
	for (uint32_t a = 0; a < plan->worker_count; a++) {
		for (uint32_t b = a + 1; b < plan->worker_count; b++) {
			if (plan->workers[a].core_index == plan->workers[b].core_index) {
				plan->workers[a].shares_core = true;
				plan->workers[b].shares_core = true;
			}
		}
	}
}

/* The default order: the first PU of every core in core order, then every core's second PU
 * (those that have one), and so on; after the last PU it starts over. */
static void plan_by_cores(const struct weir_topo *topo, uint32_t worker_count,
			  struct weir_placement *plan)
{
	uint32_t round = 0, core_index = 0;
	for (uint32_t w = 0; w < worker_count; w++) {
		hwloc_obj_t pu = NULL;
		while (pu == NULL) {
			hwloc_obj_t core = hwloc_get_obj_by_type(topo->hw, topo->core_type,
								 core_index);
			pu = hwloc_get_obj_inside_cpuset_by_type(topo->hw, core->cpuset,
								 HWLOC_OBJ_PU, round);
			if (++core_index == topo->core_count) {
				core_index = 0;
				round = round + 1 == topo->core_pu_max ? 0 : round + 1;
			}
		}
		place_fill(topo, pu, w, &plan->workers[w]);
	}
	plan->worker_count = worker_count;
}

/* Reads a CPU number at *@cursor.  Returns: true, with *@cursor past its digits. */
static bool list_number(const char **cursor, uint32_t *value)
{
	const char *text = *cursor;
	uint32_t parsed = 0;
	if (*text < '0' || *text > '9')
		return false;
	for (; *text >= '0' && *text <= '9'; text++) {
		parsed = parsed * 10 + (uint32_t)(*text - '0');
		if (parsed > TOPO_CPU_LIST_INDEX_MAX)
			return false;
	}
	*cursor = text;
	*value = parsed;
	return true;
}

/* The parsed list: the first WEIR_WORKERS_MAX CPUs in the order given, and how many there
 * were in all (the rest are checked, then dropped: a plan never uses them). */
struct cpu_list {
	int pu_os_index[WEIR_WORKERS_MAX];
	uint32_t count;
	uint64_t seen[(TOPO_CPU_LIST_INDEX_MAX + 1) / 64];	/* bit per CPU: listed twice? */
};

/* Checks one CPU of an entry and appends it.  Returns: 0, or -EINVAL with a message. */
static int list_add(const struct weir_topo *topo, struct cpu_list *list, uint32_t cpu,
		    const char *entry, int entry_length, char *error, size_t error_length)
{
	if (hwloc_get_pu_obj_by_os_index(topo->hw, cpu) == NULL) {
		char cpus[TOPO_LIST_TEXT_LENGTH];
		hwloc_bitmap_list_snprintf(cpus, sizeof(cpus),
					   hwloc_topology_get_topology_cpuset(topo->hw));
		weir_message_set(
			error, error_length,
			"CPU %u (in CPU list entry '%.*s') is not in the topology, whose CPUs "
			"are %s",
			cpu, entry_length, entry, cpus);
		return -EINVAL;
	}
	if (list->seen[cpu / 64] & (UINT64_C(1) << (cpu % 64))) {
		weir_message_set(error, error_length,
				 "CPU %u is listed twice (entry '%.*s'); to put "
				 "several workers on a CPU, give a worker count",
				 cpu, entry_length, entry);
		return -EINVAL;
	}
	list->seen[cpu / 64] |= UINT64_C(1) << (cpu % 64);
	if (list->count < WEIR_WORKERS_MAX)
		list->pu_os_index[list->count] = (int)cpu;
	list->count++;
	return 0;
}

/* Parses "0,2-3,8": entries N or N-M (M >= N) separated by commas, nothing else. */
static int list_parse(const struct weir_topo *topo, const char *text, struct cpu_list *list,
		      char *error, size_t error_length)
{
	if (*text == '\0') {
		weir_message_set(error, error_length, "the CPU list is empty");
		return -EINVAL;
	}
	for (const char *entry = text;; entry++) {
		const char *cursor = entry;
		uint32_t first = 0, last = 0;
		bool good = list_number(&cursor, &first);
		last = first;
		if (good && *cursor == '-') {
			cursor++;
			good = list_number(&cursor, &last) && last >= first;
		}
		int entry_length = (int)strcspn(entry, ",");
		if (!good || (*cursor != ',' && *cursor != '\0')) {
			weir_message_set(
				error, error_length,
				"bad CPU list entry '%.*s' in '%s' (expected N or N-M with "
				"N <= M <= %u, separated by commas)",
				entry_length, entry, text, TOPO_CPU_LIST_INDEX_MAX);
			return -EINVAL;
		}
		for (uint32_t cpu = first; cpu <= last; cpu++) {
			int rc = list_add(topo, list, cpu, entry, entry_length, error,
					  error_length);
			if (rc != 0)
				return rc;
		}
		entry = cursor;
		if (*entry == '\0')
			return 0;
	}
}

static int plan_by_list(const struct weir_topo *topo, uint32_t worker_count, const char *text,
			struct weir_placement *plan, char *error, size_t error_length)
{
	struct cpu_list list;
	memset(&list, 0, sizeof(list));
	int rc = list_parse(topo, text, &list, error, error_length);
	if (rc != 0)
		return rc;
	WEIR_VERIFY(list.count > 0);
	if (worker_count == 0 && list.count > WEIR_WORKERS_MAX) {
		weir_message_set(error, error_length,
				 "the CPU list '%s' names %u CPUs, but a job has at "
				 "most %u workers",
				 text, list.count, WEIR_WORKERS_MAX);
		return -EINVAL;
	}
	uint32_t count = worker_count > 0 ? worker_count : list.count;
	for (uint32_t w = 0; w < count; w++) {
		/* w < WEIR_WORKERS_MAX, so w % list.count indexes a stored entry. */
		uint32_t slot = w % list.count;
		WEIR_ASSERT(slot < WEIR_WORKERS_MAX);
		hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo->hw,
							      (unsigned)list.pu_os_index[slot]);
		WEIR_VERIFY(pu != NULL);
		place_fill(topo, pu, w, &plan->workers[w]);
	}
	plan->worker_count = count;
	return 0;
}

int weir_topo_plan(const struct weir_topo *topo, uint32_t worker_count,
		   const char *cpu_list_or_null, struct weir_placement *plan, char *error,
		   size_t error_length)
{
	WEIR_VERIFY(topo != NULL);
	WEIR_VERIFY(plan != NULL);
	WEIR_VERIFY(error != NULL || error_length == 0);
	memset(plan, 0, sizeof(*plan));
	weir_message_set(error, error_length, "%s", "");
	if (worker_count > WEIR_WORKERS_MAX) {
		weir_message_set(error, error_length,
				 "%u workers asked for, but a job has at most %u", worker_count,
				 WEIR_WORKERS_MAX);
		return -EINVAL;
	}
	if (cpu_list_or_null != NULL) {
		int rc = plan_by_list(topo, worker_count, cpu_list_or_null, plan, error,
				      error_length);
		if (rc != 0) {
			memset(plan, 0, sizeof(*plan));
			return rc;
		}
	} else {
		uint32_t count = worker_count;
		if (count == 0)
			count = topo->core_count < WEIR_WORKERS_MAX ? topo->core_count
								    : WEIR_WORKERS_MAX;
		plan_by_cores(topo, count, plan);
	}
	plan_mark_sharing(plan);
	WEIR_VERIFY(plan->worker_count > 0 && plan->worker_count <= WEIR_WORKERS_MAX);
	if (worker_count > 0)
		WEIR_VERIFY(plan->worker_count == worker_count);
	return 0;
}

int weir_topo_bind_thread(const struct weir_topo *topo, const struct weir_worker_place *place)
{
	WEIR_VERIFY(topo != NULL);
	WEIR_VERIFY(place != NULL);
	if (topo->synthetic != NULL)
		return -EOPNOTSUPP;
	if (place->pu_os_index < 0 || place->numa_node_os_index < 0)
		return -EINVAL;
	hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(topo->hw, (unsigned)place->pu_os_index);
	hwloc_obj_t node = hwloc_get_numanode_obj_by_os_index(
		topo->hw, (unsigned)place->numa_node_os_index);
	if (pu == NULL || node == NULL)
		return -EINVAL;
	/* One PU, not the core: a worker that migrates between siblings loses its L1 and
	 * competes with whichever worker the plan put on the sibling. */
	if (hwloc_set_cpubind(topo->hw, pu->cpuset, HWLOC_CPUBIND_THREAD) != 0)
		return topo_errno();
	if (hwloc_set_membind(topo->hw, node->nodeset, HWLOC_MEMBIND_BIND,
			      HWLOC_MEMBIND_THREAD | HWLOC_MEMBIND_BYNODESET) != 0) {
		int rc = topo_errno();
		/* With one NUMA node every page is local whatever the policy, so a kernel
		 * without NUMA support (ENOSYS), a policy it cannot enforce (EXDEV) or a
		 * sandbox that forbids set_mempolicy (EPERM: Docker's default seccomp profile
		 * without CAP_SYS_NICE) loses nothing; refusing to run there would.  With
		 * several nodes a worker whose memory is remote is a silent slowdown, so
		 * every failure is reported. */
		if (topo->numa_count <= 1 && (rc == -ENOSYS || rc == -EXDEV || rc == -EPERM))
			return 0;
		return rc;
	}
	return 0;
}

/* Writes the logical indices of the cores entirely inside @cpuset, as a list ("0-7"). */
static void cores_inside(const struct weir_topo *topo, hwloc_const_cpuset_t cpuset, char *text,
			 size_t length)
{
	hwloc_bitmap_t cores = hwloc_bitmap_alloc();
	if (cores == NULL) {
		snprintf(text, length, "?");
		return;
	}
	hwloc_obj_t core = NULL;
	while ((core = hwloc_get_next_obj_inside_cpuset_by_type(topo->hw, cpuset,
								 topo->core_type, core)) != NULL)
		hwloc_bitmap_set(cores, core->logical_index);
	if (hwloc_bitmap_iszero(cores))
		snprintf(text, length, "none");
	else
		hwloc_bitmap_list_snprintf(text, length, cores);
	hwloc_bitmap_free(cores);
}

static void print_packages(const struct weir_topo *topo, FILE *out)
{
	char cores[TOPO_LIST_TEXT_LENGTH], pus[TOPO_LIST_TEXT_LENGTH];
	fprintf(out, "packages:\n");
	if (topo->package_count == 0)
		fprintf(out, "  (hwloc found no package; every core counts as package 0)\n");
	hwloc_obj_t package = NULL;
	while ((package = hwloc_get_next_obj_by_type(topo->hw, HWLOC_OBJ_PACKAGE, package))) {
		const char *model = hwloc_obj_get_info_by_name(package, "CPUModel");
		cores_inside(topo, package->cpuset, cores, sizeof(cores));
		hwloc_bitmap_list_snprintf(pus, sizeof(pus), package->cpuset);
		fprintf(out, "  package %u: cores %s; PUs %s%s%s\n", package->logical_index,
			cores, pus, model != NULL ? "; " : "", model != NULL ? model : "");
	}
}

static void print_numa_nodes(const struct weir_topo *topo, FILE *out)
{
	char cores[TOPO_LIST_TEXT_LENGTH], pus[TOPO_LIST_TEXT_LENGTH];
	fprintf(out, "NUMA nodes:\n");
	hwloc_obj_t node = NULL;
	while ((node = hwloc_get_next_obj_by_type(topo->hw, HWLOC_OBJ_NUMANODE, node))) {
		cores_inside(topo, node->cpuset, cores, sizeof(cores));
		hwloc_bitmap_list_snprintf(pus, sizeof(pus), node->cpuset);
		fprintf(out, "  node %u: cores %s; PUs %s", node->os_index, cores, pus);
		if (node->attr != NULL && node->attr->numanode.local_memory > 0)
			fprintf(out, "; %.1f GiB",
				(double)node->attr->numanode.local_memory / (1024.0 * 1024 * 1024));
		fprintf(out, "\n");
	}
}

static void print_cores(const struct weir_topo *topo, FILE *out)
{
	char pus[TOPO_LIST_TEXT_LENGTH];
	fprintf(out, "cores:\n");
	for (uint32_t c = 0; c < topo->core_count; c++) {
		hwloc_obj_t core = hwloc_get_obj_by_type(topo->hw, topo->core_type, c);
		hwloc_obj_t first = hwloc_get_obj_inside_cpuset_by_type(topo->hw, core->cpuset,
									HWLOC_OBJ_PU, 0);
		hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(topo->hw,
								     HWLOC_OBJ_PACKAGE, core);
		hwloc_bitmap_list_snprintf(pus, sizeof(pus), core->cpuset);
		fprintf(out, "  core %u: package %u, node %d, PUs %s\n", c,
			package != NULL ? package->logical_index : 0,
			first != NULL ? pu_numa_node(first) : 0, pus);
	}
}

static void print_plan(const struct weir_placement *plan, FILE *out)
{
	fprintf(out, "placement: %u worker%s\n", plan->worker_count,
		plan->worker_count == 1 ? "" : "s");
	fprintf(out, "  %6s -> %5s %6s %8s %9s\n", "worker", "PU", "core", "package",
		"NUMA node");
	uint32_t sharing_count = 0;
	for (uint32_t w = 0; w < plan->worker_count; w++) {
		const struct weir_worker_place *place = &plan->workers[w];
		fprintf(out, "  %6u -> %5d %6u %8u %9d%s\n", place->worker, place->pu_os_index,
			place->core_index, place->package_index, place->numa_node_os_index,
			place->shares_core ? "  (shares its core)" : "");
		sharing_count += place->shares_core;
	}
	if (sharing_count == 0) {
		fprintf(out, "note: every worker has a core to itself\n");
		return;
	}
	fprintf(out, "note: %u workers share a core with another worker (hyper-thread siblings\n"
		"  or the same PU), so they run slower than workers with a core of their own\n",
		sharing_count);
}

void weir_topo_print(const struct weir_topo *topo, const struct weir_placement *plan,
		     FILE *out)
{
	WEIR_VERIFY(topo != NULL);
	WEIR_VERIFY(out != NULL);
	if (topo->synthetic != NULL)
		fprintf(out, "topology: synthetic '%s'\n", topo->synthetic);
	else
		fprintf(out, "topology: this machine (the CPUs this process may use)\n");
	fprintf(out, "  %u package%s, %u NUMA node%s, %u core%s, %u PU%s (hardware threads)\n",
		topo->package_count, topo->package_count == 1 ? "" : "s", topo->numa_count,
		topo->numa_count == 1 ? "" : "s", topo->core_count,
		topo->core_count == 1 ? "" : "s", topo->pu_count, topo->pu_count == 1 ? "" : "s");
	fprintf(out, "  PUs are OS CPU numbers (as for taskset and --cores); cores and\n"
		"  packages are numbered in hwloc logical order\n");
	print_packages(topo, out);
	print_numa_nodes(topo, out);
	print_cores(topo, out);
	if (plan != NULL)
		print_plan(plan, out);
}
