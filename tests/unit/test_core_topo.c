/* Goal: worker placement keeps the contract of core/topo.h on machines we do not have: the
 * default plan is one worker per physical core on its first PU, in core order, with the right
 * core, package and NUMA node; a worker count past the core count spills onto hyper-thread
 * siblings, then wraps, and marks every worker that shares a core; a CPU list places workers
 * on exactly those PUs, in order, round-robin when a count is given; every bad input (bad
 * synthetic description, bad list syntax, unknown or repeated CPU, empty list, too many
 * workers) returns exactly -EINVAL with a message naming the culprit; a synthetic topology
 * refuses to bind (-EOPNOTSUPP); misuse (NULL arguments) trips WEIR_VERIFY.  And this
 * machine's topology loads and plans at least one worker, and binding a thread to a worker's
 * place leaves that thread allowed on that one CPU only.
 *
 * Method: build topologies from hwloc synthetic descriptions, whose numbering is known: PUs
 * are numbered in order, so in "pack:2 numa:2 core:8 pu:2" core c holds PUs 2c and 2c+1,
 * cores 8k..8k+7 sit on NUMA node k and cores 16p..16p+15 in package p.  Check every field of
 * every worker against that arithmetic, and check every error code and message.  The binding
 * test runs in a thread of its own (so the test process stays unbound), which only records
 * its result and its affinity; the assertions run on the main thread. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Last: under UNIT_TESTING cmocka.h redefines malloc and friends. */
#include <cmocka.h>

#include "core/topo.h"

#define BIG "pack:2 numa:2 core:8 pu:2"

static struct weir_placement plan;	/* static: 6 KiB, and every test refills it */
static char message[512];

static struct weir_topo *topo_of(const char *description)
{
	struct weir_topo *topo = NULL;
	int rc = weir_topo_create(&topo, description, message, sizeof(message));
	if (rc != 0)
		fail_msg("'%s': rc %d: %s",
			 description != NULL ? description : "(this machine)", rc, message);
	assert_non_null(topo);
	return topo;
}

static void check_counts(const char *description, uint32_t cores, uint32_t pus,
			 uint32_t nodes)
{
	struct weir_topo *topo = topo_of(description);
	assert_int_equal(weir_topo_core_count(topo), cores);
	assert_int_equal(weir_topo_pu_count(topo), pus);
	assert_int_equal(weir_topo_numa_count(topo), nodes);
	weir_topo_destroy(topo);
}

static void test_counts(void **state)
{
	(void)state;
	check_counts(BIG, 32, 64, 4);
	check_counts("pack:1 core:4 pu:1", 4, 4, 1);
	check_counts("pack:1 numa:1 core:2 pu:2", 2, 4, 1);
	check_counts("pu:3", 3, 3, 1);	/* no cores: each PU counts as one */
}

static void test_bad_synthetic(void **state)
{
	(void)state;
	const char *bad[] = {"garbage", "", "pack:2 core:x", "pack:0 pu:1", "core:4 pu:2 pu:2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct weir_topo *topo = (struct weir_topo *)&plan;	/* create must reset it */
		message[0] = '\0';
		assert_int_equal(weir_topo_create(&topo, bad[i], message, sizeof(message)),
				 -EINVAL);
		assert_null(topo);
		assert_non_null(strstr(message, "bad synthetic topology"));
	}
	/* A zero-length error buffer is allowed and left alone. */
	struct weir_topo *topo = NULL;
	assert_int_equal(weir_topo_create(&topo, "garbage", NULL, 0), -EINVAL);
	assert_null(topo);
}

/* Checks worker @w of the plan for BIG: on core @core, PU @pu_rank of that core (0 first). */
static void check_big_worker(uint32_t w, uint32_t core, uint32_t pu_rank, bool shares)
{
	const struct weir_worker_place *place = &plan.workers[w];
	assert_int_equal(place->worker, w);
	assert_int_equal(place->core_index, core);
	assert_int_equal(place->pu_os_index, (int)(2 * core + pu_rank));
	assert_int_equal(place->package_index, core / 16);
	assert_int_equal(place->numa_node_os_index, (int)(core / 8));
	assert_int_equal(place->shares_core, shares);
}

static void test_default_one_per_core(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of(BIG);
	assert_int_equal(weir_topo_plan(topo, 0, NULL, &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.worker_count, 32);
	for (uint32_t w = 0; w < 32; w++)
		check_big_worker(w, w, 0, false);
	weir_topo_destroy(topo);
}

static void test_count_spills_onto_siblings(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of(BIG);
	assert_int_equal(weir_topo_plan(topo, 40, NULL, &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.worker_count, 40);
	/* Cores 0-7 carry two workers each (first PU, then sibling); 8-31 one. */
	for (uint32_t w = 0; w < 32; w++)
		check_big_worker(w, w, 0, w < 8);
	for (uint32_t w = 32; w < 40; w++)
		check_big_worker(w, w - 32, 1, true);

	assert_int_equal(weir_topo_plan(topo, 2, NULL, &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.worker_count, 2);
	check_big_worker(0, 0, 0, false);
	check_big_worker(1, 1, 0, false);

	/* 64 fills every PU; 65 wraps onto PU 0 again. */
	assert_int_equal(weir_topo_plan(topo, 65, NULL, &plan, message, sizeof(message)), 0);
	for (uint32_t w = 0; w < 64; w++)
		check_big_worker(w, w % 32, w / 32, true);
	check_big_worker(64, 0, 0, true);
	weir_topo_destroy(topo);
}

static void test_no_siblings_wraps(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of("pack:1 core:4 pu:1");
	assert_int_equal(weir_topo_plan(topo, 0, NULL, &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.worker_count, 4);
	for (uint32_t w = 0; w < 4; w++) {
		assert_int_equal(plan.workers[w].pu_os_index, (int)w);
		assert_int_equal(plan.workers[w].core_index, w);
		assert_int_equal(plan.workers[w].numa_node_os_index, 0);
		assert_false(plan.workers[w].shares_core);
	}
	assert_int_equal(weir_topo_plan(topo, 6, NULL, &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.worker_count, 6);
	const int pus[6] = {0, 1, 2, 3, 0, 1};
	const bool shares[6] = {true, true, false, false, true, true};
	for (uint32_t w = 0; w < 6; w++) {
		assert_int_equal(plan.workers[w].pu_os_index, pus[w]);
		assert_int_equal(plan.workers[w].core_index, (uint32_t)pus[w]);
		assert_int_equal(plan.workers[w].shares_core, shares[w]);
	}
	weir_topo_destroy(topo);
}

static void test_small_with_siblings(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of("pack:1 numa:1 core:2 pu:2");
	assert_int_equal(weir_topo_plan(topo, 0, NULL, &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.worker_count, 2);
	assert_int_equal(plan.workers[0].pu_os_index, 0);
	assert_int_equal(plan.workers[1].pu_os_index, 2);	/* PU 1 is core 0's sibling */
	assert_false(plan.workers[0].shares_core);
	assert_false(plan.workers[1].shares_core);
	assert_int_equal(weir_topo_plan(topo, 3, NULL, &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.workers[2].pu_os_index, 1);
	assert_int_equal(plan.workers[2].core_index, 0);
	assert_true(plan.workers[0].shares_core);
	assert_false(plan.workers[1].shares_core);
	assert_true(plan.workers[2].shares_core);
	weir_topo_destroy(topo);
}

/* PUs numbered the way Linux usually numbers them: the first PU of every core first, then
 * the siblings, so core c holds PUs c and c + 8.  The plan works in logical order and
 * reports OS numbers, and a CPU list is read as OS numbers. */
static void test_linux_style_numbering(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of("pack:2 core:4 pu:2(indexes=2*8:1*2)");
	assert_int_equal(weir_topo_plan(topo, 10, NULL, &plan, message, sizeof(message)), 0);
	for (uint32_t w = 0; w < 10; w++) {
		assert_int_equal(plan.workers[w].pu_os_index, (int)w);
		assert_int_equal(plan.workers[w].core_index, w % 8);
		assert_int_equal(plan.workers[w].package_index, (w % 8) / 4);
		assert_int_equal(plan.workers[w].shares_core, w % 8 < 2);
	}
	assert_int_equal(weir_topo_plan(topo, 0, "12,4", &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.worker_count, 2);
	assert_int_equal(plan.workers[0].pu_os_index, 12);
	assert_int_equal(plan.workers[1].pu_os_index, 4);
	assert_int_equal(plan.workers[0].core_index, 4);
	assert_int_equal(plan.workers[1].core_index, 4);
	assert_true(plan.workers[0].shares_core);
	assert_true(plan.workers[1].shares_core);
	weir_topo_destroy(topo);
}

static void test_cpu_list(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of(BIG);
	/* One worker per listed PU, in the order given; 2 and 3 are siblings of core 1. */
	assert_int_equal(weir_topo_plan(topo, 0, "0,2-3", &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.worker_count, 3);
	const int pus[3] = {0, 2, 3};
	for (uint32_t w = 0; w < 3; w++) {
		assert_int_equal(plan.workers[w].worker, w);
		assert_int_equal(plan.workers[w].pu_os_index, pus[w]);
		assert_int_equal(plan.workers[w].core_index, (uint32_t)pus[w] / 2);
	}
	assert_false(plan.workers[0].shares_core);
	assert_true(plan.workers[1].shares_core);
	assert_true(plan.workers[2].shares_core);

	/* Order is kept, and the node follows the PU. */
	assert_int_equal(weir_topo_plan(topo, 0, "63,16,0", &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.workers[0].numa_node_os_index, 3);
	assert_int_equal(plan.workers[0].package_index, 1);
	assert_int_equal(plan.workers[1].numa_node_os_index, 1);
	assert_int_equal(plan.workers[2].numa_node_os_index, 0);

	/* With a count: round-robin over the list; a longer list uses its first entries. */
	assert_int_equal(weir_topo_plan(topo, 5, "8,40", &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.worker_count, 5);
	for (uint32_t w = 0; w < 5; w++) {
		assert_int_equal(plan.workers[w].pu_os_index, w % 2 == 0 ? 8 : 40);
		assert_true(plan.workers[w].shares_core);
	}
	assert_int_equal(weir_topo_plan(topo, 2, "0-63", &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.worker_count, 2);
	assert_int_equal(plan.workers[1].pu_os_index, 1);
	weir_topo_destroy(topo);
}

/* Plans with @list must fail with -EINVAL, a message containing @needle, and an empty plan. */
static void check_bad_list(const struct weir_topo *topo, uint32_t count, const char *list,
			   const char *needle)
{
	message[0] = '\0';
	plan.worker_count = 99;
	int rc = weir_topo_plan(topo, count, list, &plan, message, sizeof(message));
	if (rc != -EINVAL)
		fail_msg("list '%s': rc %d, expected -EINVAL", list, rc);
	if (strstr(message, needle) == NULL)
		fail_msg("list '%s': message '%s' does not mention '%s'", list, message, needle);
	assert_int_equal(plan.worker_count, 0);
}

static void test_cpu_list_errors(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of(BIG);
	check_bad_list(topo, 0, "0-", "'0-'");
	check_bad_list(topo, 0, "a", "'a'");
	check_bad_list(topo, 0, "1,x3", "'x3'");
	check_bad_list(topo, 0, "0,,2", "''");
	check_bad_list(topo, 0, "0,", "''");
	check_bad_list(topo, 0, " 1", "' 1'");
	check_bad_list(topo, 0, "-1", "'-1'");
	check_bad_list(topo, 0, "3-2", "'3-2'");
	check_bad_list(topo, 0, "99999999999", "'99999999999'");
	check_bad_list(topo, 0, "999", "CPU 999");
	check_bad_list(topo, 0, "0,60-70", "CPU 64");
	check_bad_list(topo, 4, "999", "CPU 999");
	check_bad_list(topo, 0, "", "empty");
	check_bad_list(topo, 0, "1,0-3", "CPU 1 is listed twice");
	weir_topo_destroy(topo);

	/* More CPUs than workers allowed: fine with a count, refused without. */
	topo = topo_of("core:300 pu:1");
	check_bad_list(topo, 0, "0-299", "300 CPUs");
	assert_int_equal(weir_topo_plan(topo, 256, "0-299", &plan, message, sizeof(message)),
			 0);
	assert_int_equal(plan.worker_count, 256);
	assert_int_equal(plan.workers[255].pu_os_index, 255);
	/* And the default plan stops at WEIR_WORKERS_MAX cores. */
	assert_int_equal(weir_topo_plan(topo, 0, NULL, &plan, message, sizeof(message)), 0);
	assert_int_equal(plan.worker_count, WEIR_WORKERS_MAX);
	weir_topo_destroy(topo);
}

static void test_too_many_workers(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of(BIG);
	assert_int_equal(weir_topo_plan(topo, WEIR_WORKERS_MAX, NULL, &plan, message,
					sizeof(message)), 0);
	assert_int_equal(plan.worker_count, WEIR_WORKERS_MAX);
	message[0] = '\0';
	assert_int_equal(weir_topo_plan(topo, WEIR_WORKERS_MAX + 1, NULL, &plan, message,
					sizeof(message)), -EINVAL);
	assert_non_null(strstr(message, "257 workers"));
	assert_int_equal(plan.worker_count, 0);
	assert_int_equal(weir_topo_plan(topo, 1000, "0", &plan, NULL, 0), -EINVAL);
	weir_topo_destroy(topo);
}

static void test_bind_synthetic_refused(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of(BIG);
	assert_int_equal(weir_topo_plan(topo, 0, NULL, &plan, message, sizeof(message)), 0);
	assert_int_equal(weir_topo_bind_thread(topo, &plan.workers[0]), -EOPNOTSUPP);
	weir_topo_destroy(topo);
}

static void test_print(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of(BIG);
	assert_int_equal(weir_topo_plan(topo, 40, NULL, &plan, message, sizeof(message)), 0);
	char text[16384] = "";
	FILE *out = fmemopen(text, sizeof(text) - 1, "w");
	assert_non_null(out);
	weir_topo_print(topo, &plan, out);
	assert_int_equal(fclose(out), 0);
	assert_non_null(strstr(text, "2 packages, 4 NUMA nodes, 32 cores, 64 PUs"));
	assert_non_null(strstr(text, "node 3: cores 24-31; PUs 48-63"));
	assert_non_null(strstr(text, "core 31: package 1, node 3, PUs 62-63"));
	assert_non_null(strstr(text, "placement: 40 workers"));
	assert_non_null(strstr(text, "16 workers share a core"));
	weir_topo_destroy(topo);
}

static void test_this_machine(void **state)
{
	(void)state;
	struct weir_topo *topo = NULL;
	int rc = weir_topo_create(&topo, NULL, message, sizeof(message));
	if (rc != 0)
		fail_msg("this machine: rc %d: %s", rc, message);
	assert_true(weir_topo_core_count(topo) >= 1);
	assert_true(weir_topo_pu_count(topo) >= weir_topo_core_count(topo));
	assert_true(weir_topo_numa_count(topo) >= 1);
	assert_int_equal(weir_topo_plan(topo, 0, NULL, &plan, message, sizeof(message)), 0);
	assert_true(plan.worker_count >= 1);
	assert_true(plan.worker_count <= weir_topo_core_count(topo));
	for (uint32_t w = 0; w < plan.worker_count; w++)
		assert_false(plan.workers[w].shares_core);
	printf("test_core_topo: this machine has %u cores, %u PUs, %u NUMA nodes\n",
	       weir_topo_core_count(topo), weir_topo_pu_count(topo), weir_topo_numa_count(topo));
	weir_topo_destroy(topo);
}

/* What a bound thread saw: it only records; the main thread asserts. */
struct bind_result {
	const struct weir_topo *topo;
	const struct weir_worker_place *place;
	int rc;
	int affinity_rc;
	cpu_set_t affinity;
};

static void *bind_thread_main(void *arg)
{
	struct bind_result *result = arg;
	result->rc = weir_topo_bind_thread(result->topo, result->place);
	CPU_ZERO(&result->affinity);
	result->affinity_rc = sched_getaffinity(0, sizeof(result->affinity), &result->affinity);
	return NULL;
}

/* Binds a fresh thread (not the test's) to the last worker's PU and checks that the kernel
 * now runs it on that one CPU only. */
static void test_bind_this_machine(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of(NULL);
	assert_int_equal(weir_topo_plan(topo, 0, NULL, &plan, message, sizeof(message)), 0);
	struct bind_result result = {
		.topo = topo, .place = &plan.workers[plan.worker_count - 1], .rc = 1};
	pthread_t thread;
	assert_int_equal(pthread_create(&thread, NULL, bind_thread_main, &result), 0);
	assert_int_equal(pthread_join(thread, NULL), 0);
	if (result.rc == -EPERM && weir_topo_numa_count(topo) > 1) {
		/* A sandbox forbids set_mempolicy on a NUMA machine: bind_thread is right to
		 * refuse, and there is nothing more to see here. */
		printf("test_core_topo: memory binding not permitted here; skipping\n");
		weir_topo_destroy(topo);
		skip();
	}
	assert_int_equal(result.rc, 0);
	assert_int_equal(result.affinity_rc, 0);
	assert_int_equal(CPU_COUNT(&result.affinity), 1);
	assert_true(CPU_ISSET((size_t)result.place->pu_os_index, &result.affinity));

	struct weir_worker_place nowhere = *result.place;
	nowhere.pu_os_index = 99999;
	assert_int_equal(weir_topo_bind_thread(topo, &nowhere), -EINVAL);
	nowhere = *result.place;
	nowhere.numa_node_os_index = -1;
	assert_int_equal(weir_topo_bind_thread(topo, &nowhere), -EINVAL);
	weir_topo_destroy(topo);
}

static void test_misuse_is_caught(void **state)
{
	(void)state;
	struct weir_topo *topo = topo_of(BIG);
	expect_assert_failure(weir_topo_create(NULL, BIG, message, sizeof(message)));
	expect_assert_failure(weir_topo_plan(NULL, 0, NULL, &plan, message, sizeof(message)));
	expect_assert_failure(weir_topo_plan(topo, 0, NULL, NULL, message, sizeof(message)));
	expect_assert_failure(weir_topo_plan(topo, 0, NULL, &plan, NULL, 8));
	expect_assert_failure(weir_topo_bind_thread(topo, NULL));
	expect_assert_failure(weir_topo_core_count(NULL));
	weir_topo_destroy(topo);
	weir_topo_destroy(NULL);	/* allowed, like free(NULL) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_bad_synthetic),
		cmocka_unit_test(test_default_one_per_core),
		cmocka_unit_test(test_count_spills_onto_siblings),
		cmocka_unit_test(test_no_siblings_wraps),
		cmocka_unit_test(test_small_with_siblings),
		cmocka_unit_test(test_linux_style_numbering),
		cmocka_unit_test(test_cpu_list),
		cmocka_unit_test(test_cpu_list_errors),
		cmocka_unit_test(test_too_many_workers),
		cmocka_unit_test(test_bind_synthetic_refused),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_this_machine),
		cmocka_unit_test(test_bind_this_machine),
		cmocka_unit_test(test_misuse_is_caught),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
