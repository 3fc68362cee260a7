#include "io/packet_event.h"

#include "core/assert.h"

static uint32_t offset_of(const struct weir_schema *schema, const char *name)
{
	int index = weir_schema_find(schema, name);
	WEIR_VERIFY(index >= 0);
	return schema->fields[index].offset;
}

void weir_packet_layout_init(struct weir_packet_layout *layout, const struct weir_schema *schema)
{
	layout->ts = offset_of(schema, "ts");
	layout->src = offset_of(schema, "src");
	layout->dst = offset_of(schema, "dst");
	layout->sport = offset_of(schema, "sport");
	layout->dport = offset_of(schema, "dport");
	layout->proto = offset_of(schema, "proto");
	layout->tcp_flags = offset_of(schema, "tcp_flags");
	layout->bytes = offset_of(schema, "bytes");
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
