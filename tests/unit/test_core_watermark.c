/* Goal: core/watermark's event-time rules, exactly.  A source partition: no clock before its
 * first event, then max_seen - out_of_orderness, never lowered by older events; idle after
 * idle_timeout without events (never with timeout 0), active again on the next event, and
 * poll reports every change once.  A worker's tracker: the minimum over channels that are
 * neither idle nor ended, nothing until every live channel spoke, monotonic, held while
 * every live channel is idle, +infinity once all ended; misuse asserts.
 *
 * Method: drive the functions by hand with a fake monotonic clock (the now_ns argument) and
 * hand-picked watermarks, checking the clock and every return value after each step.  A
 * seeded random walk (WEIR_SEED=n replays it) checks the tracker against a model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h> /* before cmocka.h, which redefines malloc under UNIT_TESTING */
#include <time.h>

#include <cmocka.h>

#include "tests/support/test_rng.h"

#include "core/watermark.h"

#define MS 1000000ull /* ns */

static void source_before_events(void **state)
{
	(void)state;
	struct weir_wm_source source;
	weir_wm_source_init(&source, 100, 0, 5 * MS);
	assert_true(weir_wm_source_current(&source) == WEIR_WATERMARK_NONE);
	assert_false(source.idle);
	assert_int_equal(source.last_event_ns, 5 * MS);
	/* Observing WEIR_WATERMARK_NONE itself is not an event that moves the clock. */
	weir_wm_source_observe(&source, WEIR_WATERMARK_NONE);
	assert_true(weir_wm_source_current(&source) == WEIR_WATERMARK_NONE);
	expect_assert_failure(weir_wm_source_init(&source, -1, 0, 0));
	expect_assert_failure(weir_wm_source_init(NULL, 0, 0, 0));
}

static void source_clock(void **state)
{
	(void)state;
	struct weir_wm_source source;
	weir_wm_source_init(&source, 100, 0, 0);
	weir_wm_source_observe(&source, 1000);
	assert_int_equal(weir_wm_source_current(&source), 900);
	weir_wm_source_observe(&source, 1500);
	assert_int_equal(weir_wm_source_current(&source), 1400);
	/* Older (out of order, or late) events never lower it. */
	weir_wm_source_observe(&source, 1200);
	weir_wm_source_observe(&source, -5000);
	assert_int_equal(weir_wm_source_current(&source), 1400);
	weir_wm_source_observe(&source, 1500);
	assert_int_equal(weir_wm_source_current(&source), 1400);
	weir_wm_source_observe(&source, 1501);
	assert_int_equal(weir_wm_source_current(&source), 1401);

	/* Zero out-of-orderness: the clock is the largest timestamp. */
	weir_wm_source_init(&source, 0, 0, 0);
	weir_wm_source_observe(&source, -7);
	assert_int_equal(weir_wm_source_current(&source), -7);
}

/* Separate so the known bug below fails alone. */
static void source_clock_saturates(void **state)
{
	(void)state;
	struct weir_wm_source source;
	/* Near the bottom of the range the clock saturates instead of wrapping, and never
	 * reads as WEIR_WATERMARK_NONE once an event was seen (the header: NONE only "before
	 * any event"). */
	weir_wm_source_init(&source, 100, 0, 0);
	weir_wm_source_observe(&source, INT64_MIN + 50);
	assert_true(weir_wm_source_current(&source) == INT64_MIN + 1);
	weir_wm_source_observe(&source, INT64_MIN + 100);
	/* Regression: max_seen == INT64_MIN + out_of_orderness used to yield INT64_MIN, which
	 * reads as WEIR_WATERMARK_NONE although an event was seen. */
	assert_true(weir_wm_source_current(&source) != WEIR_WATERMARK_NONE);
	assert_true(weir_wm_source_current(&source) == INT64_MIN + 1);
	weir_wm_source_observe(&source, INT64_MIN + 101);
	assert_true(weir_wm_source_current(&source) == INT64_MIN + 1);
	weir_wm_source_observe(&source, INT64_MAX);
	assert_true(weir_wm_source_current(&source) == INT64_MAX - 100);
}

static void source_idle(void **state)
{
	(void)state;
	struct weir_wm_source source;
	weir_wm_source_init(&source, 10, 100 * MS, 1000 * MS);
	/* Events keep it active; poll reports no change. */
	assert_false(weir_wm_source_poll(&source, true, 1050 * MS));
	assert_false(source.idle);
	/* Quiet for less than the timeout: still active. */
	assert_false(weir_wm_source_poll(&source, false, 1100 * MS));
	assert_false(weir_wm_source_poll(&source, false, 1149 * MS));
	assert_false(source.idle);
	/* Exactly the timeout since the last event: idle, reported once. */
	assert_true(weir_wm_source_poll(&source, false, 1150 * MS));
	assert_true(source.idle);
	assert_false(weir_wm_source_poll(&source, false, 1151 * MS));
	assert_false(weir_wm_source_poll(&source, false, 9000 * MS));
	assert_true(source.idle);
	/* Producing again: active, reported once. */
	assert_true(weir_wm_source_poll(&source, true, 9001 * MS));
	assert_false(source.idle);
	assert_false(weir_wm_source_poll(&source, true, 9002 * MS));
	assert_false(weir_wm_source_poll(&source, false, 9101 * MS));
	assert_true(weir_wm_source_poll(&source, false, 9102 * MS));
	assert_true(source.idle);

	/* Idleness does not touch the event clock. */
	weir_wm_source_observe(&source, 500);
	assert_int_equal(weir_wm_source_current(&source), 490);

	/* A clock read on another CPU may be behind the last event's: never idle from that. */
	weir_wm_source_init(&source, 0, 100 * MS, 1000 * MS);
	assert_false(weir_wm_source_poll(&source, false, 1 * MS));
	assert_false(source.idle);
	/* Idle counts from init when nothing was ever produced. */
	assert_true(weir_wm_source_poll(&source, false, 1100 * MS));
}

static void source_never_idle_without_timeout(void **state)
{
	(void)state;
	struct weir_wm_source source;
	weir_wm_source_init(&source, 0, 0, 0);
	assert_false(weir_wm_source_poll(&source, false, 1));
	assert_false(weir_wm_source_poll(&source, false, UINT64_MAX));
	assert_false(source.idle);
	assert_false(weir_wm_source_poll(&source, true, UINT64_MAX));
	assert_false(source.idle);
}

static void tracker_minimum(void **state)
{
	(void)state;
	struct weir_wm_tracker tracker;
	weir_wm_tracker_init(&tracker, 3);
	assert_true(tracker.current == WEIR_WATERMARK_NONE);
	assert_false(weir_wm_tracker_all_ended(&tracker));
	/* Nothing until every channel spoke. */
	assert_false(weir_wm_tracker_update(&tracker, 0, 100, false));
	assert_false(weir_wm_tracker_update(&tracker, 2, 300, false));
	assert_true(tracker.current == WEIR_WATERMARK_NONE);
	assert_true(weir_wm_tracker_update(&tracker, 1, 200, false));
	assert_int_equal(tracker.current, 100);
	/* The minimum moves when the slowest channel moves. */
	assert_false(weir_wm_tracker_update(&tracker, 2, 400, false));
	assert_int_equal(tracker.current, 100);
	assert_true(weir_wm_tracker_update(&tracker, 0, 250, false));
	assert_int_equal(tracker.current, 200);
	/* A lower or equal report changes nothing. */
	assert_false(weir_wm_tracker_update(&tracker, 1, 150, false));
	assert_false(weir_wm_tracker_update(&tracker, 1, 200, false));
	assert_int_equal(tracker.current, 200);
	assert_int_equal(tracker.channel_watermark[1], 200);
	assert_true(weir_wm_tracker_update(&tracker, 1, 1000, false));
	assert_int_equal(tracker.current, 250);

	/* A single channel. */
	weir_wm_tracker_init(&tracker, 1);
	assert_true(weir_wm_tracker_update(&tracker, 0, -5, false));
	assert_int_equal(tracker.current, -5);
}

static void tracker_idle(void **state)
{
	(void)state;
	struct weir_wm_tracker tracker;
	weir_wm_tracker_init(&tracker, 3);
	/* An idle channel does not hold time back, even one that never sent a watermark. */
	assert_false(weir_wm_tracker_update(&tracker, 0, WEIR_WATERMARK_NONE, true));
	assert_false(weir_wm_tracker_update(&tracker, 1, 500, false));
	assert_true(weir_wm_tracker_update(&tracker, 2, 400, false));
	assert_int_equal(tracker.current, 400);
	/* Channel 2 goes idle: only channel 1 counts. */
	assert_true(weir_wm_tracker_update(&tracker, 2, 400, true));
	assert_int_equal(tracker.current, 500);
	/* Every channel idle: the clock holds (neither back nor forward). */
	assert_false(weir_wm_tracker_update(&tracker, 1, 600, true));
	assert_int_equal(tracker.current, 500);
	assert_false(weir_wm_tracker_update(&tracker, 1, 700, true));
	assert_int_equal(tracker.current, 500);
	/* Channel 0 returns with a lower watermark: the clock does not go back... */
	assert_false(weir_wm_tracker_update(&tracker, 0, 50, false));
	assert_int_equal(tracker.current, 500);
	/* ...and does not move until channel 0 passes it. */
	assert_false(weir_wm_tracker_update(&tracker, 0, 499, false));
	assert_int_equal(tracker.current, 500);
	assert_true(weir_wm_tracker_update(&tracker, 0, 650, false));
	assert_int_equal(tracker.current, 650);
	/* Channel 1 returns (it reported 700 while idle): the minimum stays channel 0's. */
	assert_false(weir_wm_tracker_update(&tracker, 1, 700, false));
	assert_int_equal(tracker.current, 650);
	/* Channel 2 returns at 400, below the clock: held. */
	assert_false(weir_wm_tracker_update(&tracker, 2, 400, false));
	assert_int_equal(tracker.current, 650);
	assert_false(weir_wm_tracker_update(&tracker, 0, 800, false));
	assert_int_equal(tracker.current, 650);
	assert_true(weir_wm_tracker_update(&tracker, 2, 900, false));
	assert_int_equal(tracker.current, 700);
}

static void tracker_end(void **state)
{
	(void)state;
	struct weir_wm_tracker tracker;
	weir_wm_tracker_init(&tracker, 3);
	assert_false(weir_wm_tracker_update(&tracker, 0, 100, false));
	assert_false(weir_wm_tracker_update(&tracker, 1, 200, false));
	/* Channel 2 never spoke; ending it lets the others decide. */
	assert_true(weir_wm_tracker_end(&tracker, 2));
	assert_int_equal(tracker.ended_count, 1);
	assert_int_equal(tracker.current, 100);
	assert_false(weir_wm_tracker_all_ended(&tracker));
	/* Ending the slowest channel advances to the next one. */
	assert_true(weir_wm_tracker_end(&tracker, 0));
	assert_int_equal(tracker.current, 200);
	/* All ended: +infinity. */
	assert_true(weir_wm_tracker_end(&tracker, 1));
	assert_true(weir_wm_tracker_all_ended(&tracker));
	assert_true(tracker.current == INT64_MAX);

	/* Ending while the rest are idle holds the clock until the last one ends. */
	weir_wm_tracker_init(&tracker, 2);
	assert_false(weir_wm_tracker_update(&tracker, 0, 10, false));
	assert_true(weir_wm_tracker_update(&tracker, 1, 20, false));
	assert_int_equal(tracker.current, 10);
	assert_false(weir_wm_tracker_update(&tracker, 1, 20, true));
	assert_int_equal(tracker.current, 10);
	assert_false(weir_wm_tracker_end(&tracker, 0));
	assert_int_equal(tracker.current, 10);
	assert_true(weir_wm_tracker_end(&tracker, 1));
	assert_true(tracker.current == INT64_MAX);

	/* A channel that already reached INT64_MAX: ending everything is no further advance. */
	weir_wm_tracker_init(&tracker, 1);
	assert_true(weir_wm_tracker_update(&tracker, 0, INT64_MAX, false));
	assert_false(weir_wm_tracker_end(&tracker, 0));
	assert_true(tracker.current == INT64_MAX);
}

static void tracker_misuse_asserts(void **state)
{
	(void)state;
	struct weir_wm_tracker tracker;
	expect_assert_failure(weir_wm_tracker_init(&tracker, 0));
	expect_assert_failure(weir_wm_tracker_init(&tracker, WEIR_CHANNELS_MAX + 1));
	expect_assert_failure(weir_wm_tracker_init(NULL, 1));
	weir_wm_tracker_init(&tracker, WEIR_CHANNELS_MAX);
	weir_wm_tracker_init(&tracker, 2);
	assert_true(weir_wm_tracker_end(&tracker, 0) == false);
	/* Ending twice (WEIR_VERIFY) and a channel out of range. */
	expect_assert_failure(weir_wm_tracker_end(&tracker, 0));
	assert_int_equal(tracker.ended_count, 1);
	expect_assert_failure(weir_wm_tracker_end(&tracker, 2));
	expect_assert_failure(weir_wm_tracker_end(&tracker, UINT32_MAX));
#if WEIR_ASSERTS
	/* Updates are on the hot path (WEIR_ASSERT): out of range, or after the end. */
	expect_assert_failure(weir_wm_tracker_update(&tracker, 2, 5, false));
	expect_assert_failure(weir_wm_tracker_update(&tracker, 0, 5, false));
#endif
	assert_true(weir_wm_tracker_end(&tracker, 1));
}

/* The model: every channel's highest report; the clock is the running max of the minimum
 * over live channels, taken only when some channel is live and active. */
static void tracker_random_walk(void **state)
{
	(void)state;
	test_rng_seed();
	for (int round = 0; round < 200; round++) {
		uint32_t channels = 1 + (uint32_t)(test_rng_next() % 8);
		struct weir_wm_tracker tracker;
		weir_wm_tracker_init(&tracker, channels);
		int64_t mark[8];
		bool idle[8] = {false};
		bool ended[8] = {false};
		int64_t clock = WEIR_WATERMARK_NONE;
		for (uint32_t c = 0; c < channels; c++)
			mark[c] = WEIR_WATERMARK_NONE;
		uint32_t live = channels;
		while (live > 0) {
			uint32_t c = (uint32_t)(test_rng_next() % channels);
			if (ended[c])
				continue;
			bool advanced;
			if (test_rng_next() % 40 == 0) {
				ended[c] = true;
				live--;
				advanced = weir_wm_tracker_end(&tracker, c);
			} else {
				int64_t report = (int64_t)(test_rng_next() % 1000);
				idle[c] = test_rng_next() % 4 == 0;
				if (report > mark[c])
					mark[c] = report;
				advanced = weir_wm_tracker_update(&tracker, c, report, idle[c]);
			}
			int64_t before = clock;
			if (live == 0) {
				clock = INT64_MAX;
			} else {
				int64_t minimum = INT64_MAX;
				bool any = false;
				for (uint32_t i = 0; i < channels; i++) {
					if (ended[i] || idle[i])
						continue;
					any = true;
					if (mark[i] < minimum)
						minimum = mark[i];
				}
				if (any && minimum > clock)
					clock = minimum;
			}
			assert_int_equal(advanced, clock != before);
			assert_true(tracker.current == clock);
		}
		assert_true(weir_wm_tracker_all_ended(&tracker));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(source_before_events),
		cmocka_unit_test(source_clock),
		cmocka_unit_test(source_clock_saturates),
		cmocka_unit_test(source_idle),
		cmocka_unit_test(source_never_idle_without_timeout),
		cmocka_unit_test(tracker_minimum),
		cmocka_unit_test(tracker_idle),
		cmocka_unit_test(tracker_end),
		cmocka_unit_test(tracker_misuse_asserts),
		cmocka_unit_test(tracker_random_walk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
