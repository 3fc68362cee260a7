#include "io/packet_event.h"

#include <stddef.h>

#include "core/assert.h"

static void check_field(const struct weir_schema *schema, const char *name, size_t offset)
{
	int index = weir_schema_find(schema, name);
	WEIR_VERIFY(index >= 0);
	WEIR_VERIFY(schema->fields[index].offset == offset);
}

void weir_packet_schema_check(const struct weir_schema *schema)
{
	WEIR_VERIFY(schema->record_length == sizeof(struct weir_packet_event));
	check_field(schema, "ts", offsetof(struct weir_packet_event, ts));
	check_field(schema, "src", offsetof(struct weir_packet_event, src));
	check_field(schema, "dst", offsetof(struct weir_packet_event, dst));
	check_field(schema, "sport", offsetof(struct weir_packet_event, sport));
	check_field(schema, "dport", offsetof(struct weir_packet_event, dport));
	check_field(schema, "proto", offsetof(struct weir_packet_event, proto));
	check_field(schema, "tcp_flags", offsetof(struct weir_packet_event, tcp_flags));
	check_field(schema, "bytes", offsetof(struct weir_packet_event, bytes));
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
