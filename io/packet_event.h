/* Packet events: what the packet sources (a capture file, a DPDK port) hand to the job, one
 * record per frame whose outermost IP header is complete.  The schema is WEIR_PACKET_SCHEMA
 * (include/weir/weir.h); frames without hosts (ARP, garbage) are only counted.  The frame
 * itself never leaves the source: it is parsed, written as an event, and released. */
#ifndef WEIR_IO_PACKET_EVENT_H
#define WEIR_IO_PACKET_EVENT_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/schema.h"
#include "io/packet.h"
#include "weir/weir.h"

struct weir_packet_layout {
	uint32_t ts, src, dst, sport, dport, proto, tcp_flags, bytes; /* field offsets */
};

/* Fills @layout from @schema, which must have been parsed from WEIR_PACKET_SCHEMA. */
void weir_packet_layout_init(struct weir_packet_layout *layout, const struct weir_schema *schema);

/* Parses one frame, counts it, and writes its event at @record when it has hosts.
 * Returns: 1 if an event was written, 0 if the frame was only counted. */
static inline uint32_t weir_packet_to_event(const struct weir_packet_layout *layout,
					    const uint8_t *frame, uint32_t captured_length,
					    uint32_t wire_length, int64_t timestamp_ns,
					    enum weir_link_type link,
					    struct weir_packet_counters *counters, uint8_t *record)
{
	struct weir_packet_info info;
	enum weir_packet_reason reason = weir_packet_parse(frame, captured_length, link, &info);
	weir_packet_count(counters, reason, wire_length);
	if (!info.has_addresses)
		return 0;
	int64_t values[6] = {info.src_port, info.dst_port, info.protocol, info.tcp_flags,
			     wire_length, timestamp_ns};
	memcpy(record + layout->src, info.src, 16);
	memcpy(record + layout->dst, info.dst, 16);
	memcpy(record + layout->sport, &values[0], 8);
	memcpy(record + layout->dport, &values[1], 8);
	memcpy(record + layout->proto, &values[2], 8);
	memcpy(record + layout->tcp_flags, &values[3], 8);
	memcpy(record + layout->bytes, &values[4], 8);
	memcpy(record + layout->ts, &values[5], 8);
	return 1;
}

/* Adds @from into @into. */
void weir_packet_counters_add(struct weir_packet_counters *into,
			      const struct weir_packet_counters *from);

/* "frames N, bytes N, malformed: reason N, ..." on @stream, prefixed by @what. */
void weir_packet_counters_report(const struct weir_packet_counters *counters, const char *what,
				 FILE *stream);

#endif
