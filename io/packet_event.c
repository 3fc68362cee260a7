#include "io/packet_event.h"

#include <stddef.h>


bool weir_packet_schema_is_native(const struct weir_schema *schema)
{
	return schema->record_length == sizeof(struct weir_packet_event) &&
	       weir_schema_has_field_at(schema, "ts", offsetof(struct weir_packet_event, ts)) &&
	       weir_schema_has_field_at(schema, "src", offsetof(struct weir_packet_event, src)) &&
	       weir_schema_has_field_at(schema, "dst", offsetof(struct weir_packet_event, dst)) &&
	       weir_schema_has_field_at(schema, "sport",
					offsetof(struct weir_packet_event, sport)) &&
	       weir_schema_has_field_at(schema, "dport",
					offsetof(struct weir_packet_event, dport)) &&
	       weir_schema_has_field_at(schema, "proto",
					offsetof(struct weir_packet_event, proto)) &&
	       weir_schema_has_field_at(schema, "tcp_flags",
					offsetof(struct weir_packet_event, tcp_flags)) &&
	       weir_schema_has_field_at(schema, "bytes",
					offsetof(struct weir_packet_event, bytes));
}

void weir_packet_counters_add(struct weir_packet_counters *into,
			      const struct weir_packet_counters *from)
{
	into->frames += from->frames;
	into->bytes += from->bytes;
	for (uint32_t r = 0; r < WEIR_PACKET_REASON_COUNT; r++)
		into->by_reason[r] += from->by_reason[r];
}

void weir_packet_counters_report(const struct weir_packet_counters *counters, const char *what,
				 FILE *stream)
{
	uint64_t malformed = 0;
	for (uint32_t r = WEIR_PACKET_NOT_IP + 1; r < WEIR_PACKET_REASON_COUNT; r++)
		malformed += counters->by_reason[r];
	fprintf(stream, "weir: %s: %llu frames, %llu bytes, %llu not IP, %llu malformed", what,
		(unsigned long long)counters->frames, (unsigned long long)counters->bytes,
		(unsigned long long)counters->by_reason[WEIR_PACKET_NOT_IP],
		(unsigned long long)malformed);
	const char *separator = " (";
	for (uint32_t r = WEIR_PACKET_NOT_IP + 1; r < WEIR_PACKET_REASON_COUNT; r++) {
		if (counters->by_reason[r] == 0)
			continue;
		fprintf(stream, "%s%s %llu", separator,
			weir_packet_reason_name((enum weir_packet_reason)r),
			(unsigned long long)counters->by_reason[r]);
		separator = ", ";
	}
	fprintf(stream, "%s\n", malformed > 0 ? ")" : "");
}
