/* Packet parsing (io/packet.h): link layer, IP, transport, one pass, front to back.
 *
 * Every read goes through a bound computed first: a helper is called with a pointer and the
 * number of bytes that may be read from it, and checks its own need against that number
 * before touching a byte.  Multi-byte fields are assembled from bytes (rd16), so no unaligned
 * pointer is ever dereferenced; addresses are copied with memcpy.
 *
 * Two bounds matter once inside IP: what was captured (a snaplen cut) and what the IP header
 * says the packet holds (padding after it is ignored).  Headers the parser needs must fit in
 * both; TCP options and payload are never needed, so a headers-only capture (snaplen 64, 96)
 * of a TCP segment with options still parses OK. */
#include "io/packet.h"

#include <string.h>

#include "core/assert.h"

#define ETHERNET_HEADER_LENGTH 14 /* bytes: destination, source, ethertype */
#define VLAN_TAG_LENGTH 4	  /* bytes: TCI, then the next ethertype */
#define VLAN_TAGS_MAX 2		  /* outer and inner: the fields info has room for */
#define SLL_HEADER_LENGTH 16
#define SLL2_HEADER_LENGTH 20
#define IPV4_HEADER_LENGTH 20 /* bytes, without options */
#define IPV6_HEADER_LENGTH 40
#define IPV6_EXTENSIONS_MAX 8 /* headers followed before the chain counts as bad */
#define TCP_HEADER_LENGTH 20  /* bytes, without options */
#define UDP_HEADER_LENGTH 8
#define ICMP_HEADER_LENGTH 4 /* type, code, checksum: what every ICMP message has */

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_IPV6 0x86DD
#define ETHERTYPE_VLAN 0x8100	    /* 802.1Q */
#define ETHERTYPE_QINQ 0x88A8	    /* 802.1ad */
#define ETHERTYPE_QINQ_OLD 0x9100   /* pre-standard QinQ, still seen */

#define PROTOCOL_HOP_BY_HOP 0
#define PROTOCOL_ICMP 1
#define PROTOCOL_IPIP 4
#define PROTOCOL_TCP 6
#define PROTOCOL_UDP 17
#define PROTOCOL_IPV6 41
#define PROTOCOL_ROUTING 43
#define PROTOCOL_FRAGMENT 44
#define PROTOCOL_AH 51
#define PROTOCOL_ICMPV6 58
#define PROTOCOL_DESTINATION 60

#define UDP_PORT_VXLAN 4789

WEIR_STATIC_ASSERT(sizeof(((struct weir_packet_info *)0)->src) == 16, "room for IPv6");
WEIR_STATIC_ASSERT(WEIR_PACKET_REASON_COUNT <= 255, "a reason fits a byte in reports");

static inline uint16_t rd16(const uint8_t *bytes)
{
	return (uint16_t)((uint16_t)bytes[0] << 8 | bytes[1]);
}

static inline uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* The transport, at @l4 with @captured bytes readable and @ip_length bytes by the IP header
 * (the segment, which may exceed @captured after a snaplen cut).  @fragment: a first
 * fragment, whose UDP length describes the whole datagram, not this piece of it.
 * Fills ports, flags or type, and decides tunnels by UDP port. */
static enum weir_packet_reason parse_transport(const uint8_t *l4, uint32_t captured,
					       uint32_t ip_length, bool fragment,
					       struct weir_packet_info *info)
{
	uint32_t available = min_u32(captured, ip_length);

	WEIR_ASSERT(l4 != NULL || captured == 0);
	WEIR_ASSERT(info->has_addresses);
	switch (info->protocol) {
	case PROTOCOL_TCP:
		if (available < TCP_HEADER_LENGTH)
			return WEIR_PACKET_TRUNCATED_L4;
		info->src_port = rd16(l4);
		info->dst_port = rd16(l4 + 2);
		info->tcp_flags = l4[13];
		info->has_ports = true;
		/* The data offset is checked against the segment, not the capture: options cut
		 * by snaplen are not needed. */
		if (l4[12] >> 4 < 5 || (uint32_t)(l4[12] >> 4) * 4 > ip_length)
			return WEIR_PACKET_BAD_TCP_OFFSET;
		return WEIR_PACKET_OK;
	case PROTOCOL_UDP: {
		if (available < UDP_HEADER_LENGTH)
			return WEIR_PACKET_TRUNCATED_L4;
		uint16_t udp_length = rd16(l4 + 4);

		info->src_port = rd16(l4);
		info->dst_port = rd16(l4 + 2);
		info->has_ports = true;
		info->is_tunnel = info->dst_port == UDP_PORT_VXLAN;
		if (udp_length < UDP_HEADER_LENGTH || (!fragment && udp_length > ip_length))
			return WEIR_PACKET_BAD_UDP_LENGTH;
		return WEIR_PACKET_OK;
	}
	case PROTOCOL_ICMP:
	case PROTOCOL_ICMPV6:
		if (available < ICMP_HEADER_LENGTH)
			return WEIR_PACKET_TRUNCATED_L4;
		info->icmp_type = l4[0];
		return WEIR_PACKET_OK;
	case PROTOCOL_IPIP:
	case PROTOCOL_IPV6:
		/* Counted under the outer header: no descent, the inner packet is payload. */
		info->is_tunnel = true;
		return WEIR_PACKET_OK;
	default:
		return WEIR_PACKET_OK; /* ESP, GRE, SCTP...: protocol only */
	}
}

static void set_v4_mapped(uint8_t address[16], const uint8_t *v4)
{
	/* ::ffff:a.b.c.d; the first ten bytes are already zero (info was cleared). */
	address[10] = 0xff;
	address[11] = 0xff;
	memcpy(address + 12, v4, 4);
}

/* IPv4 at @ip with @captured bytes readable. */
static enum weir_packet_reason parse_ipv4(const uint8_t *ip, uint32_t captured,
					  struct weir_packet_info *info)
{
	WEIR_ASSERT(ip != NULL || captured == 0);
	WEIR_ASSERT(!info->has_addresses);
	if (captured < 1)
		return WEIR_PACKET_TRUNCATED_IP;
	if (ip[0] >> 4 != 4)
		return WEIR_PACKET_BAD_IP_VERSION;
	if (captured < IPV4_HEADER_LENGTH)
		return WEIR_PACKET_TRUNCATED_IP;
	set_v4_mapped(info->src, ip + 12);
	set_v4_mapped(info->dst, ip + 16);
	info->ip_version = 4;
	info->has_addresses = true;
	info->protocol = ip[9];

	uint32_t header_length = (uint32_t)(ip[0] & 0x0f) * 4;
	uint32_t total_length = rd16(ip + 2);
	uint16_t fragment = rd16(ip + 6);
	uint16_t fragment_offset = fragment & 0x1fff; /* in 8-byte units */

	if (header_length < IPV4_HEADER_LENGTH)
		return WEIR_PACKET_BAD_IP_HEADER_LENGTH;
	if (total_length < header_length)
		return WEIR_PACKET_BAD_IP_TOTAL_LENGTH;
	if (captured < header_length)
		return WEIR_PACKET_TRUNCATED_IP; /* options cut by the capture */
	info->is_fragment = (fragment & 0x2000) != 0 || fragment_offset != 0;
	if (fragment_offset != 0)
		return WEIR_PACKET_OK; /* a later fragment: its payload has no transport header */
	return parse_transport(ip + header_length, captured - header_length,
			       total_length - header_length, info->is_fragment, info);
}

/* Walks the IPv6 extension chain that starts at @ip + @offset with info->protocol, reading
 * only within @end bytes of @ip (the lesser of capture and 40 + payload length).  Leaves
 * @offset at the transport header and info->protocol set to its protocol; @has_transport
 * false after a fragment header with a nonzero offset (what follows is mid-datagram data).
 * Returns: OK, or BAD_EXTENSION_CHAIN for a header past @end or a ninth header. */
static enum weir_packet_reason skip_ipv6_extensions(const uint8_t *ip, uint32_t end,
						    uint32_t *offset, bool *has_transport,
						    struct weir_packet_info *info)
{
	uint8_t next = info->protocol;

	WEIR_ASSERT(*offset == IPV6_HEADER_LENGTH);
	WEIR_ASSERT(end >= IPV6_HEADER_LENGTH);
	*has_transport = true;
	for (uint32_t count = 0;; count++) {
		uint32_t length;

		if (next != PROTOCOL_HOP_BY_HOP && next != PROTOCOL_ROUTING &&
		    next != PROTOCOL_FRAGMENT && next != PROTOCOL_DESTINATION &&
		    next != PROTOCOL_AH)
			break;
		/* Every extension header is at least 8 bytes; 2 are enough to read its length. */
		if (count == IPV6_EXTENSIONS_MAX || end - *offset < 8)
			return WEIR_PACKET_BAD_EXTENSION_CHAIN;
		const uint8_t *header = ip + *offset;

		if (next == PROTOCOL_FRAGMENT) {
			length = 8;
			info->is_fragment = true;
			if ((rd16(header + 2) >> 3) != 0)
				*has_transport = false;
		} else if (next == PROTOCOL_AH) {
			length = ((uint32_t)header[1] + 2) * 4;
		} else {
			length = ((uint32_t)header[1] + 1) * 8;
		}
		if (length > end - *offset)
			return WEIR_PACKET_BAD_EXTENSION_CHAIN;
		next = header[0];
		*offset += length;
		info->protocol = next;
		if (!*has_transport)
			break; /* past a later fragment's header, bytes are payload */
	}
	WEIR_ASSERT(*offset <= end);
	return WEIR_PACKET_OK;
}

/* IPv6 at @ip with @captured bytes readable. */
static enum weir_packet_reason parse_ipv6(const uint8_t *ip, uint32_t captured,
					  struct weir_packet_info *info)
{
	WEIR_ASSERT(ip != NULL || captured == 0);
	WEIR_ASSERT(!info->has_addresses);
	if (captured < 1)
		return WEIR_PACKET_TRUNCATED_IP;
	if (ip[0] >> 4 != 6)
		return WEIR_PACKET_BAD_IP_VERSION;
	if (captured < IPV6_HEADER_LENGTH)
		return WEIR_PACKET_TRUNCATED_IP;
	memcpy(info->src, ip + 8, 16);
	memcpy(info->dst, ip + 24, 16);
	info->ip_version = 6;
	info->has_addresses = true;
	info->protocol = ip[6];

	uint32_t ip_length = IPV6_HEADER_LENGTH + (uint32_t)rd16(ip + 4);
	uint32_t offset = IPV6_HEADER_LENGTH;
	bool has_transport;
	enum weir_packet_reason reason = skip_ipv6_extensions(ip, min_u32(captured, ip_length),
							      &offset, &has_transport, info);

	if (reason != WEIR_PACKET_OK || !has_transport)
		return reason;
	return parse_transport(ip + offset, captured - offset, ip_length - offset,
			       info->is_fragment, info);
}

/* Dispatches on @ethertype for the payload at @frame + @offset, following VLAN tags. */
static enum weir_packet_reason parse_ethertype(const uint8_t *frame, uint32_t captured,
					       uint32_t offset, uint16_t ethertype,
					       struct weir_packet_info *info)
{
	uint32_t tag_count = 0;

	WEIR_ASSERT(offset <= captured);
	while (ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ ||
	       ethertype == ETHERTYPE_QINQ_OLD) {
		if (tag_count == VLAN_TAGS_MAX)
			return WEIR_PACKET_TOO_MANY_VLANS;
		if (captured - offset < VLAN_TAG_LENGTH)
			return WEIR_PACKET_TRUNCATED_LINK;
		uint16_t vlan = rd16(frame + offset) & 0x0fff; /* below PCP and DEI */

		if (tag_count == 0)
			info->vlan_outer = vlan;
		else
			info->vlan_inner = vlan;
		tag_count++;
		ethertype = rd16(frame + offset + 2);
		offset += VLAN_TAG_LENGTH;
	}
	WEIR_ASSERT(offset <= captured);
	if (ethertype == ETHERTYPE_IPV4)
		return parse_ipv4(frame + offset, captured - offset, info);
	if (ethertype == ETHERTYPE_IPV6)
		return parse_ipv6(frame + offset, captured - offset, info);
	/* ARP, PPPoE, LLDP..., or below 0x0600 an 802.3 length (LLC follows): normal frames. */
	return WEIR_PACKET_NOT_IP;
}

/* The link header of @link, then the network layer it announces. */
static enum weir_packet_reason parse_link(const uint8_t *frame, uint32_t captured,
					  enum weir_link_type link, struct weir_packet_info *info)
{
	WEIR_ASSERT(frame != NULL || captured == 0);
	WEIR_ASSERT(!info->has_addresses);
	switch (link) {
	case WEIR_LINK_ETHERNET:
		if (captured < ETHERNET_HEADER_LENGTH)
			return WEIR_PACKET_TRUNCATED_LINK;
		return parse_ethertype(frame, captured, ETHERNET_HEADER_LENGTH, rd16(frame + 12),
				       info);
	case WEIR_LINK_LINUX_SLL:
		if (captured < SLL_HEADER_LENGTH)
			return WEIR_PACKET_TRUNCATED_LINK;
		return parse_ethertype(frame, captured, SLL_HEADER_LENGTH, rd16(frame + 14), info);
	case WEIR_LINK_LINUX_SLL2:
		if (captured < SLL2_HEADER_LENGTH)
			return WEIR_PACKET_TRUNCATED_LINK;
		return parse_ethertype(frame, captured, SLL2_HEADER_LENGTH, rd16(frame), info);
	case WEIR_LINK_RAW:
		if (captured < 1)
			return WEIR_PACKET_TRUNCATED_IP;
		if (frame[0] >> 4 == 6)
			return parse_ipv6(frame, captured, info);
		if (frame[0] >> 4 == 4)
			return parse_ipv4(frame, captured, info);
		return WEIR_PACKET_BAD_IP_VERSION;
	case WEIR_LINK_IPV4:
		return parse_ipv4(frame, captured, info);
	case WEIR_LINK_IPV6:
		return parse_ipv6(frame, captured, info);
	}
	return WEIR_PACKET_BAD_LINK_TYPE;
}

/* flatten: the whole parse inlined into one body, so a frame costs no calls between its
 * layers (each was a call with its arguments spilled: 10% of `weir bench flows`). */
__attribute__((flatten)) enum weir_packet_reason
weir_packet_parse(const uint8_t *frame, uint32_t captured_length, enum weir_link_type link,
		  struct weir_packet_info *info)
{
	WEIR_ASSERT(info != NULL);
	WEIR_ASSERT(frame != NULL || captured_length == 0);
	*info = (struct weir_packet_info){0};

	enum weir_packet_reason reason = parse_link(frame, captured_length, link, info);

	WEIR_ASSERT(reason < WEIR_PACKET_REASON_COUNT);
	WEIR_ASSERT(info->has_addresses == (info->ip_version != 0));
	if (info->has_ports)
		WEIR_ASSERT(info->has_addresses);
	info->reason = reason;
	return reason;
}

static const char *const reason_names[] = {
	[WEIR_PACKET_OK] = "ok",
	[WEIR_PACKET_NOT_IP] = "not_ip",
	[WEIR_PACKET_TRUNCATED_LINK] = "truncated_link",
	[WEIR_PACKET_TOO_MANY_VLANS] = "too_many_vlans",
	[WEIR_PACKET_TRUNCATED_IP] = "truncated_ip",
	[WEIR_PACKET_BAD_IP_VERSION] = "bad_ip_version",
	[WEIR_PACKET_BAD_IP_HEADER_LENGTH] = "bad_ip_header_length",
	[WEIR_PACKET_BAD_IP_TOTAL_LENGTH] = "bad_ip_total_length",
	[WEIR_PACKET_BAD_EXTENSION_CHAIN] = "bad_extension_chain",
	[WEIR_PACKET_TRUNCATED_L4] = "truncated_l4",
	[WEIR_PACKET_BAD_TCP_OFFSET] = "bad_tcp_offset",
	[WEIR_PACKET_BAD_UDP_LENGTH] = "bad_udp_length",
	[WEIR_PACKET_BAD_LINK_TYPE] = "bad_link_type",
};
WEIR_STATIC_ASSERT(sizeof(reason_names) / sizeof(reason_names[0]) == WEIR_PACKET_REASON_COUNT,
		   "one name per reason");

const char *weir_packet_reason_name(enum weir_packet_reason reason)
{
	WEIR_ASSERT((uint32_t)reason < WEIR_PACKET_REASON_COUNT);
	if ((uint32_t)reason >= WEIR_PACKET_REASON_COUNT)
		return "unknown"; /* asserts compiled out: still a string */
	WEIR_ASSERT(reason_names[reason] != NULL);
	return reason_names[reason];
}
