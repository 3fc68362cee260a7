/* Event time.
 *
 * A source partition's clock is max_seen - out_of_orderness: it promises that no later event
 * of that partition has a smaller timestamp, and events that break the promise are late.  A
 * partition that produced nothing for idle_timeout stops holding time back: it is marked idle
 * until its next event.
 *
 * A worker's clock is the minimum over its input channels that are neither idle nor ended; it
 * never goes backwards.  When every channel has ended the clock is +infinity (INT64_MAX), which
 * fires every window. */
#ifndef WEIR_CORE_WATERMARK_H
#define WEIR_CORE_WATERMARK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/batch.h"

#define WEIR_CHANNELS_MAX 256u

struct weir_wm_source {
	int64_t max_seen;	  /* largest timestamp so far, WEIR_WATERMARK_NONE before any */
	int64_t out_of_orderness; /* >= 0 */
	uint64_t idle_timeout_ns; /* 0: never idle */
	uint64_t last_event_ns;	  /* monotonic time of the last pull that produced events */
	bool idle;
};

void weir_wm_source_init(struct weir_wm_source *source, int64_t out_of_orderness,
			 uint64_t idle_timeout_ns, uint64_t now_ns);

static inline void weir_wm_source_observe(struct weir_wm_source *source, int64_t timestamp)
{
	if (timestamp > source->max_seen)
		source->max_seen = timestamp;
}

/* The partition's clock now, WEIR_WATERMARK_NONE before any event. */
static inline int64_t weir_wm_source_current(const struct weir_wm_source *source)
{
	if (source->max_seen == WEIR_WATERMARK_NONE)
		return WEIR_WATERMARK_NONE;
	if (source->max_seen <= INT64_MIN + source->out_of_orderness)
		return INT64_MIN + 1;
	return source->max_seen - source->out_of_orderness;
}

/* Called after each pull with whether it produced events.  Returns: true when the idle state
 * changed (the caller tells its consumers). */
bool weir_wm_source_poll(struct weir_wm_source *source, bool produced, uint64_t now_ns);

struct weir_wm_tracker {
	uint32_t channel_count;
	uint32_t ended_count;
	int64_t current; /* the worker's clock; monotonic */
	int64_t channel_watermark[WEIR_CHANNELS_MAX];
	bool channel_idle[WEIR_CHANNELS_MAX];
	bool channel_ended[WEIR_CHANNELS_MAX];
};

void weir_wm_tracker_init(struct weir_wm_tracker *tracker, uint32_t channel_count);

/* Records what channel @channel said (a watermark, and whether its source is idle).
 * Returns: true when the worker's clock advanced. */
bool weir_wm_tracker_update(struct weir_wm_tracker *tracker, uint32_t channel, int64_t watermark,
			    bool idle);

/* Channel @channel ended.  Returns: true when the worker's clock advanced. */
bool weir_wm_tracker_end(struct weir_wm_tracker *tracker, uint32_t channel);

static inline bool weir_wm_tracker_all_ended(const struct weir_wm_tracker *tracker)
{
	return tracker->ended_count == tracker->channel_count;
}

#endif
