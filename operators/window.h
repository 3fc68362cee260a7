/* Event-time windows with incremental aggregates, keyed (operators/ -> state/ -> core/).
 *
 * Sliding windows are cut into panes of gcd(size, slide) so each event is added to exactly one
 * pane; a window's row combines its size/pane panes.  State is one table keyed by
 * (key, pane) holding count, sum, min and max per aggregated column, plus a list of each pane's
 * entries so a pane can be fired and evicted without scanning the table.
 *
 * A window [s, e) fires when the worker's clock reaches e.  An event whose windows have all
 * passed e + allowed_lateness is late: it goes to the late output and is counted.  An event
 * within the lateness updates its pane and re-emits an updated row for every window of it that
 * has already fired.  The public entry point is weir_job_window() in include/weir/weir.h. */
#ifndef WEIR_OPERATORS_WINDOW_H
#define WEIR_OPERATORS_WINDOW_H

#include <stdint.h>

/* The most panes a window may span (size / gcd(size, slide)). */
#define WEIR_WINDOW_PANES_MAX 4096

/* floor(a / b) for b > 0, also for negative a. */
static inline int64_t weir_floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && a < 0) ? q - 1 : q;
}

#endif
