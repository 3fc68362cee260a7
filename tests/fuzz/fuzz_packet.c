/* Goal: no input makes weir_packet_parse read outside the frame, hit undefined behaviour, or
 * break the invariants io/packet.h promises.
 *
 * Method: libFuzzer harness (also driven without libFuzzer by replay_main.c).  The first
 * byte picks one of the six supported link types (byte % 6, in the order of `links`); the
 * rest is the frame, copied into a heap buffer of exactly its length so ASan sees a one-byte
 * over-read (an empty frame is passed as NULL, so any read at all faults).  After the parse,
 * WEIR_VERIFY checks the invariants and that a second parse gives the same answer; a failure
 * aborts, which libFuzzer reports as a crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "io/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Index = first byte % 6.  tests/fuzz/make_packet_corpus.py writes its seeds in this order. */
static const enum weir_link_type links[] = {
	WEIR_LINK_ETHERNET, WEIR_LINK_RAW,  WEIR_LINK_LINUX_SLL,
	WEIR_LINK_LINUX_SLL2, WEIR_LINK_IPV4, WEIR_LINK_IPV6,
};

static void check_invariants(const struct weir_packet_info *info, enum weir_packet_reason reason)
{
	WEIR_VERIFY(reason < WEIR_PACKET_REASON_COUNT);
	WEIR_VERIFY(info->reason == reason);
	WEIR_VERIFY(weir_packet_reason_name(reason) != NULL);
	WEIR_VERIFY(info->ip_version == 0 || info->ip_version == 4 || info->ip_version == 6);
	WEIR_VERIFY(info->has_addresses == (info->ip_version != 0));
	if (info->has_ports)
		WEIR_VERIFY(info->has_addresses);
	if (!info->has_ports) {
		WEIR_VERIFY(info->src_port == 0);
		WEIR_VERIFY(info->dst_port == 0);
	}
	WEIR_VERIFY(info->vlan_outer <= 0x0fff);
	WEIR_VERIFY(info->vlan_inner <= 0x0fff);
	/* OK means an IP packet parsed; these reasons are decided before any IP header. */
	if (reason == WEIR_PACKET_OK)
		WEIR_VERIFY(info->has_addresses);
	if (reason == WEIR_PACKET_NOT_IP || reason == WEIR_PACKET_TRUNCATED_LINK ||
	    reason == WEIR_PACKET_TOO_MANY_VLANS || reason == WEIR_PACKET_BAD_IP_VERSION)
		WEIR_VERIFY(!info->has_addresses);
	if (info->ip_version == 4) {
		WEIR_VERIFY(info->src[10] == 0xff);
		WEIR_VERIFY(info->dst[11] == 0xff);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size - 1 > UINT32_MAX)
		return 0;
	enum weir_link_type link = links[data[0] % (sizeof(links) / sizeof(links[0]))];
	uint32_t length = (uint32_t)(size - 1);
	uint8_t *frame = NULL;

	if (length > 0) {
		frame = malloc(length);
		if (frame == NULL)
			abort();
		memcpy(frame, data + 1, length);
	}

	struct weir_packet_info info;
	struct weir_packet_info again;
	enum weir_packet_reason reason = weir_packet_parse(frame, length, link, &info);

	check_invariants(&info, reason);
	WEIR_VERIFY(weir_packet_parse(frame, length, link, &again) == reason);
	WEIR_VERIFY(memcmp(info.src, again.src, sizeof(info.src)) == 0);
	WEIR_VERIFY(memcmp(info.dst, again.dst, sizeof(info.dst)) == 0);
	WEIR_VERIFY(info.src_port == again.src_port);
	WEIR_VERIFY(info.dst_port == again.dst_port);
	WEIR_VERIFY(info.protocol == again.protocol);
	free(frame);
	return 0;
}
