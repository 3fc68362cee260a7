#include "core/watermark.h"

#include <string.h>

#include "core/assert.h"

void weir_wm_source_init(struct weir_wm_source *source, int64_t out_of_orderness,
			 uint64_t idle_timeout_ns, uint64_t now_ns)
{
	WEIR_VERIFY(source != NULL);
	WEIR_VERIFY(out_of_orderness >= 0);
	source->max_seen = WEIR_WATERMARK_NONE;
	source->out_of_orderness = out_of_orderness;
	source->idle_timeout_ns = idle_timeout_ns;
	source->last_event_ns = now_ns;
	source->idle = false;
}

bool weir_wm_source_poll(struct weir_wm_source *source, bool produced, uint64_t now_ns)
{
	WEIR_ASSERT(source != NULL);
	if (produced) {
		source->last_event_ns = now_ns;
		if (source->idle) {
			source->idle = false;
			return true;
		}
		return false;
	}
	if (source->idle || source->idle_timeout_ns == 0)
		return false;
	WEIR_MAYBE(now_ns < source->last_event_ns); /* clocks of different CPUs */
	if (now_ns > source->last_event_ns &&
	    now_ns - source->last_event_ns >= source->idle_timeout_ns) {
		source->idle = true;
		return true;
	}
	return false;
}

void weir_wm_tracker_init(struct weir_wm_tracker *tracker, uint32_t channel_count)
{
	WEIR_VERIFY(tracker != NULL);
	WEIR_VERIFY(channel_count >= 1 && channel_count <= WEIR_CHANNELS_MAX);
	memset(tracker, 0, sizeof(*tracker));
	tracker->channel_count = channel_count;
	tracker->current = WEIR_WATERMARK_NONE;
	for (uint32_t i = 0; i < channel_count; i++)
		tracker->channel_watermark[i] = WEIR_WATERMARK_NONE;
}

/* Recomputes the minimum over live channels; keeps the clock monotonic. */
static bool tracker_recompute(struct weir_wm_tracker *tracker)
{
	if (weir_wm_tracker_all_ended(tracker)) {
		bool advanced = tracker->current != INT64_MAX;
		tracker->current = INT64_MAX;
		return advanced;
	}
	int64_t minimum = INT64_MAX;
	bool any_active = false;
	for (uint32_t i = 0; i < tracker->channel_count; i++) {
		if (tracker->channel_ended[i] || tracker->channel_idle[i])
			continue;
		any_active = true;
		if (tracker->channel_watermark[i] < minimum)
			minimum = tracker->channel_watermark[i];
	}
	/* Every live channel idle: nothing to wait for, but nothing proves time moved either. */
	if (!any_active)
		return false;
	if (minimum > tracker->current) {
		tracker->current = minimum;
		return true;
	}
	return false;
}

bool weir_wm_tracker_update(struct weir_wm_tracker *tracker, uint32_t channel, int64_t watermark,
			    bool idle)
{
	WEIR_ASSERT(channel < tracker->channel_count);
	WEIR_ASSERT(!tracker->channel_ended[channel]);
	bool changed = tracker->channel_idle[channel] != idle;
	tracker->channel_idle[channel] = idle;
	if (watermark > tracker->channel_watermark[channel]) {
		tracker->channel_watermark[channel] = watermark;
		changed = true;
	}
	if (!changed)
		return false;
	return tracker_recompute(tracker);
}

bool weir_wm_tracker_end(struct weir_wm_tracker *tracker, uint32_t channel)
{
	WEIR_VERIFY(channel < tracker->channel_count);
	WEIR_VERIFY(!tracker->channel_ended[channel]);
	tracker->channel_ended[channel] = true;
	tracker->ended_count++;
	return tracker_recompute(tracker);
}
