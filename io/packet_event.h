/* Packet events: what the packet sources (a capture file, a DPDK port) hand to the job, one
 * record per frame whose outermost IP header is complete.  The schema is WEIR_PACKET_SCHEMA
 * (include/weir/weir.h); frames without hosts (ARP, garbage) are only counted.  The frame
 * itself never leaves the source: it is parsed, written as an event, and released. */
#ifndef WEIR_IO_PACKET_EVENT_H
#define WEIR_IO_PACKET_EVENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/schema.h"
#include "io/packet.h"
#include "weir/weir.h"

/* One packet event: WEIR_PACKET_SCHEMA as weir_schema_parse lays it out, so the code that
 * runs once per packet (the parse into events, the flow stages) uses constant offsets. */
struct weir_packet_event {
	int64_t ts;
	uint8_t src[16];
	uint8_t dst[16];
	int64_t sport, dport, proto, tcp_flags, bytes;
};

/* Whether @schema is laid out as struct weir_packet_event (WEIR_PACKET_SCHEMA parsed is;
 * the packet sources verify it, the flow stages require it of their input). */
bool weir_packet_schema_is_native(const struct weir_schema *schema);

/* Parses one frame, counts it, and writes its event at @record (8-byte aligned) when it has
 * hosts.  Returns: 1 if an event was written, 0 if the frame was only counted. */
static inline uint32_t weir_packet_to_event(const uint8_t *frame, uint32_t captured_length,
					    uint32_t wire_length, int64_t timestamp_ns,
					    enum weir_link_type link,
					    struct weir_packet_counters *counters, uint8_t *record)
{
	struct weir_packet_info info;
	enum weir_packet_reason reason = weir_packet_parse(frame, captured_length, link, &info);
	weir_packet_count(counters, reason, wire_length);
	if (!info.has_addresses)
		return 0;
	struct weir_packet_event *event = (struct weir_packet_event *)(void *)record;
	event->ts = timestamp_ns;
	memcpy(event->src, info.src, 16);
	memcpy(event->dst, info.dst, 16);
	event->sport = info.src_port;
	event->dport = info.dst_port;
	event->proto = info.protocol;
	event->tcp_flags = info.tcp_flags;
	event->bytes = wire_length;
	return 1;
}

/* Adds @from into @into. */
void weir_packet_counters_add(struct weir_packet_counters *into,
			      const struct weir_packet_counters *from);

/* "frames N, bytes N, malformed: reason N, ..." on @stream, prefixed by @what. */
void weir_packet_counters_report(const struct weir_packet_counters *counters, const char *what,
				 FILE *stream);

#endif
