/* Packet parsing: one captured frame in, the fields flow analytics need out.
 *
 * Link types: Ethernet (with 802.1Q / 802.1ad VLAN tags, QinQ), Linux cooked capture (SLL
 * and SLL2) and raw IP.  Network: IPv4 (options, fragments: only the first fragment carries
 * ports), IPv6 with a bounded chain of extension headers (hop-by-hop, routing, fragment,
 * destination options, AH; at most 8).  Transport: TCP (ports, flags), UDP, ICMP, ICMPv6.
 * Tunnels (IP-in-IP, VXLAN) count under the outer addresses and ports: no descent.
 *
 * The parser never reads past @captured_length.  A frame that is malformed or truncated gets
 * a reason; if its outermost IP header was complete, its addresses are still filled in and
 * has_addresses is true, so it still counts toward its hosts and conversation. */
#ifndef WEIR_IO_PACKET_H
#define WEIR_IO_PACKET_H

#include <stdbool.h>
#include <stdint.h>

enum weir_link_type {
	WEIR_LINK_ETHERNET = 1,	  /* pcap LINKTYPE_ETHERNET */
	WEIR_LINK_RAW = 101,	  /* LINKTYPE_RAW: starts at the IP header (v4 or v6) */
	WEIR_LINK_LINUX_SLL = 113,
	WEIR_LINK_LINUX_SLL2 = 276,
	WEIR_LINK_IPV4 = 228,
	WEIR_LINK_IPV6 = 229,
};

/* Why a frame was not fully parsed.  WEIR_PACKET_OK and WEIR_PACKET_NOT_IP are normal. */
enum weir_packet_reason {
	WEIR_PACKET_OK = 0,
	WEIR_PACKET_NOT_IP,	       /* ARP, PPPoE, LLDP...: a frame, no hosts (normal) */
	WEIR_PACKET_TRUNCATED_LINK,    /* shorter than its link-layer header */
	WEIR_PACKET_TOO_MANY_VLANS,    /* more VLAN tags than the parser follows */
	WEIR_PACKET_TRUNCATED_IP,      /* shorter than the IP header (IPv4: with its options) */
	WEIR_PACKET_BAD_IP_VERSION,    /* version field neither 4 nor 6 (or not matching) */
	WEIR_PACKET_BAD_IP_HEADER_LENGTH, /* IPv4 IHL < 5 */
	WEIR_PACKET_BAD_IP_TOTAL_LENGTH,  /* IPv4 total length smaller than IHL * 4 */
	WEIR_PACKET_BAD_EXTENSION_CHAIN,  /* IPv6 extension headers truncated or more than 8 */
	WEIR_PACKET_TRUNCATED_L4,      /* fixed transport header cut by the capture or IP length */
	WEIR_PACKET_BAD_TCP_OFFSET,    /* TCP data offset < 5 or beyond the IP segment */
	WEIR_PACKET_BAD_UDP_LENGTH,    /* UDP length < 8 or beyond the IP payload */
	WEIR_PACKET_BAD_LINK_TYPE,     /* a link type the parser does not know */
	WEIR_PACKET_REASON_COUNT,
};

struct weir_packet_info {
	uint8_t src[16];	/* IPv4 as ::ffff:a.b.c.d (v4-mapped), IPv6 as is */
	uint8_t dst[16];
	uint8_t ip_version;	/* 4 or 6 exactly when has_addresses, else 0 */
	uint8_t protocol;	/* transport: 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6 */
	uint8_t tcp_flags;	/* FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20 ... */
	uint8_t icmp_type;
	uint16_t src_port;	/* 0 when the transport has none or it is not in this fragment */
	uint16_t dst_port;
	uint16_t vlan_outer;	/* 0 when untagged */
	uint16_t vlan_inner;
	bool has_addresses;	/* the outermost IP header's fixed part was captured */
	bool has_ports;		/* the fixed TCP/UDP header was captured (even if its length
				 * field then proved bad); implies has_addresses */
	bool is_fragment;	/* a fragment (first or not) */
	bool is_tunnel;		/* IP-in-IP or VXLAN: counted under the outer addresses */
	enum weir_packet_reason reason;
};

/* Parses @frame (@captured_length bytes present) of link type @link into @info.
 * Fields are filled as far as parsing got, so a malformed or truncated frame still carries
 * whatever was sound before the fault (addresses, ports).  Needed: the link header with at
 * most 2 VLAN tags, the IP header (IPv4 options, IPv6 extension headers), and the fixed
 * transport header (TCP 20, UDP 8, ICMP 4 bytes); TCP options and payload are not, so a
 * headers-only snaplen is OK.  Bytes after the IP length (Ethernet padding) are ignored.
 * Context: any thread; no allocation, no system call; reads only frame[0, captured_length).
 * Returns: info->reason (WEIR_PACKET_OK when everything parsed).  Never fails otherwise. */
enum weir_packet_reason weir_packet_parse(const uint8_t *frame, uint32_t captured_length,
					  enum weir_link_type link,
					  struct weir_packet_info *info);

/* A short name for @reason ("truncated_ip"), for reports and JSON; static storage.
 * An out-of-range reason is a programmer error (WEIR_ASSERT), "unknown" without asserts. */
const char *weir_packet_reason_name(enum weir_packet_reason reason);

/* Counters by reason, kept per worker and summed for the report. */
struct weir_packet_counters {
	uint64_t frames;
	uint64_t bytes; /* wire length */
	uint64_t by_reason[WEIR_PACKET_REASON_COUNT];
};

static inline void weir_packet_count(struct weir_packet_counters *counters,
				     enum weir_packet_reason reason, uint32_t wire_length)
{
	counters->frames++;
	counters->bytes += wire_length;
	counters->by_reason[reason]++;
}

#endif
