/* Goal: io/packet's parser keeps its contract exactly: every supported framing (Ethernet,
 * 802.1Q/802.1ad/0x9100 tags and QinQ, SLL, SLL2, raw and IPv4/IPv6 link types; IPv4 with
 * options and fragments; IPv6 with each extension header and a chain; TCP, UDP, ICMP,
 * ICMPv6; IP-in-IP and VXLAN; ARP, PPPoE, LLDP, 802.3) fills every field as documented; each
 * reason comes from exactly the fault it names, with has_addresses true exactly when the
 * outer IP header's fixed part was there; no frame, however cut or damaged, is read past its
 * captured length.
 *
 * Method: frames are built by hand with small append helpers that also record where each
 * layer the parser needs ends (link, IP fixed part, IP options, IPv6 extensions, fixed
 * transport header).  A table of valid kinds is checked field by field; one test per reason
 * uses a frame crafted for it (and a last test checks that every reason was produced).  The
 * truncation sweep parses every prefix of every valid kind and predicts the reason from the
 * recorded layer ends; the mutation test flips bytes of valid kinds from a printed seed
 * (WEIR_SEED=n replays it) and checks only invariants.  Every parse reads from a heap copy of
 * exactly the frame's length, so ASan builds catch a one-byte over-read. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/assert.h"
#include "io/packet.h"

/* Defined before cmocka.h on purpose: under UNIT_TESTING cmocka turns malloc into its
 * test_malloc, which surrounds the block with guard bytes, so an over-read would land in a
 * guard and ASan would not see it.  These use the real allocator, exactly @length bytes. */
static uint8_t *exact_copy(const uint8_t *bytes, uint32_t length)
{
	uint8_t *copy = malloc(length); /* malloc(0): a unique pointer, or NULL (both fine) */

	if (copy == NULL && length > 0)
		abort();
	if (length > 0)
		memcpy(copy, bytes, length);
	return copy;
}

static void exact_free(uint8_t *copy)
{
	free(copy);
}

/* cmocka last: under UNIT_TESTING it turns malloc and free into its checked versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tests/support/test_rng.h"

#define FRAME_MAX 640 /* bytes */
#define FIXES_MAX 8
#define MUTATION_COUNT 100000

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* The outer addresses every builder uses; tunnels carry different inner ones. */
static const uint8_t V4_SRC[4] = {192, 0, 2, 1};
static const uint8_t V4_DST[4] = {198, 51, 100, 2};
static const uint8_t V4_INNER_SRC[4] = {10, 0, 0, 1};
static const uint8_t V4_INNER_DST[4] = {10, 0, 0, 2};
static const uint8_t V6_SRC[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
static const uint8_t V6_DST[16] = {0x20, 0x01, 0x0d, 0xb8, [14] = 0xab, [15] = 2};
static const uint8_t V6_INNER_SRC[16] = {0xfd, [15] = 1};
static const uint8_t V6_INNER_DST[16] = {0xfd, [15] = 2};

enum fix_kind { FIX_IPV4_TOTAL, FIX_IPV6_PAYLOAD, FIX_UDP_LENGTH };

/* A frame under construction.  The *_end fields are offsets where what the parser needs of
 * the OUTER packet ends; they are recorded once and never by headers after a tunnel. */
struct frame {
	uint8_t bytes[FRAME_MAX];
	uint32_t length; /* bytes */
	enum weir_link_type link;
	bool has_ip;	   /* an outer IP header was appended */
	bool frozen;	   /* past the outer packet (tunnel payload): record nothing more */
	uint32_t link_end; /* after the link header and its tags */
	uint32_t ip_offset;
	uint32_t ip_fixed_end; /* after the IP header's fixed part: has_addresses from here */
	uint32_t ip_end;       /* after IPv4 options */
	uint32_t ext_end;      /* after IPv6 extension headers (== ip_end without) */
	uint32_t l4_end;       /* after the fixed transport header; 0 when none is needed */
	uint32_t fix_offset[FIXES_MAX];
	enum fix_kind fix_kind[FIXES_MAX];
	uint32_t fix_count;
};

static void put16(uint8_t *at, uint16_t value)
{
	at[0] = (uint8_t)(value >> 8);
	at[1] = (uint8_t)value;
}

static void frame_start(struct frame *f, enum weir_link_type link)
{
	memset(f, 0, sizeof(*f));
	f->link = link;
}

static uint8_t *grow(struct frame *f, uint32_t length)
{
	assert_true(f->length + length <= FRAME_MAX);
	uint8_t *at = f->bytes + f->length;

	memset(at, 0, length);
	f->length += length;
	return at;
}

static void add_fix(struct frame *f, uint32_t offset, enum fix_kind kind)
{
	assert_true(f->fix_count < FIXES_MAX);
	f->fix_offset[f->fix_count] = offset;
	f->fix_kind[f->fix_count] = kind;
	f->fix_count++;
}

/* Writes every length field from where its header starts to the end of the frame so far. */
static void frame_finish(struct frame *f)
{
	for (uint32_t i = 0; i < f->fix_count; i++) {
		uint32_t at = f->fix_offset[i];

		if (f->fix_kind[i] == FIX_IPV4_TOTAL)
			put16(f->bytes + at + 2, (uint16_t)(f->length - at));
		else if (f->fix_kind[i] == FIX_IPV6_PAYLOAD)
			put16(f->bytes + at + 4, (uint16_t)(f->length - at - 40));
		else
			put16(f->bytes + at + 4, (uint16_t)(f->length - at));
	}
	f->fix_count = 0;
}

static void record_link_end(struct frame *f)
{
	if (!f->frozen && !f->has_ip)
		f->link_end = f->length;
}

static void put_ethernet(struct frame *f, uint16_t ethertype)
{
	uint8_t *at = grow(f, 14);

	memcpy(at, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02", 12);
	put16(at + 12, ethertype);
	record_link_end(f);
}

/* A tag after a VLAN ethertype: @tci (PCP, DEI, VLAN id), then the next ethertype. */
static void put_vlan(struct frame *f, uint16_t tci, uint16_t ethertype)
{
	uint8_t *at = grow(f, 4);

	put16(at, tci);
	put16(at + 2, ethertype);
	record_link_end(f);
}

static void put_sll(struct frame *f, uint16_t protocol)
{
	uint8_t *at = grow(f, 16);

	put16(at, 0);	  /* packet type: to us */
	put16(at + 2, 1); /* ARPHRD_ETHER */
	put16(at + 4, 6); /* address length */
	memcpy(at + 6, "\x02\x00\x00\x00\x00\x02", 6);
	put16(at + 14, protocol);
	record_link_end(f);
}

static void put_sll2(struct frame *f, uint16_t protocol)
{
	uint8_t *at = grow(f, 20);

	put16(at, protocol);
	at[7] = 3;	  /* interface index */
	put16(at + 8, 1); /* ARPHRD_ETHER */
	at[10] = 4;	  /* packet type: outgoing */
	at[11] = 6;	  /* address length */
	memcpy(at + 12, "\x02\x00\x00\x00\x00\x01", 6);
	record_link_end(f);
}

/* An IPv4 header with @options_length bytes of NOP options and @fragment as flags and
 * offset; the total length is written by frame_finish. */
static void put_ipv4(struct frame *f, uint8_t protocol, const uint8_t src[4],
		     const uint8_t dst[4], uint32_t options_length, uint16_t fragment)
{
	assert_int_equal(options_length % 4, 0);
	uint32_t start = f->length;
	uint8_t *at = grow(f, 20 + options_length);

	at[0] = (uint8_t)(0x40 | (20 + options_length) / 4);
	put16(at + 4, 0x1234); /* identification */
	put16(at + 6, fragment);
	at[8] = 64;
	at[9] = protocol;
	memcpy(at + 12, src, 4);
	memcpy(at + 16, dst, 4);
	memset(at + 20, 1, options_length);
	add_fix(f, start, FIX_IPV4_TOTAL);
	if (f->has_ip)
		f->frozen = true; /* an inner header: the parser does not descend */
	if (f->frozen)
		return;
	f->has_ip = true;
	f->ip_offset = start;
	f->ip_fixed_end = start + 20;
	f->ip_end = f->length;
	f->ext_end = f->length;
}

static void put_ipv6(struct frame *f, uint8_t next, const uint8_t src[16],
		     const uint8_t dst[16])
{
	uint32_t start = f->length;
	uint8_t *at = grow(f, 40);

	at[0] = 0x60;
	at[6] = next;
	at[7] = 64;
	memcpy(at + 8, src, 16);
	memcpy(at + 24, dst, 16);
	add_fix(f, start, FIX_IPV6_PAYLOAD);
	if (f->has_ip)
		f->frozen = true;
	if (f->frozen)
		return;
	f->has_ip = true;
	f->ip_offset = start;
	f->ip_fixed_end = f->length;
	f->ip_end = f->length;
	f->ext_end = f->length;
}

/* An IPv6 extension header of @type (0, 43, 60 or 51) of @length bytes. */
static void put_extension(struct frame *f, uint8_t type, uint8_t next, uint32_t length)
{
	uint8_t *at = grow(f, length);

	at[0] = next;
	if (type == 51) {
		assert_true(length >= 12 && length % 4 == 0);
		at[1] = (uint8_t)(length / 4 - 2);
	} else {
		assert_true(length >= 8 && length % 8 == 0);
		at[1] = (uint8_t)(length / 8 - 1);
	}
	if (type == 43)
		at[2] = 4; /* routing type: segment routing, irrelevant to the parser */
	if (!f->frozen)
		f->ext_end = f->length;
}

/* An IPv6 fragment header: @offset in 8-byte units, @more: the M flag. */
static void put_fragment6(struct frame *f, uint8_t next, uint16_t offset, bool more)
{
	uint8_t *at = grow(f, 8);

	at[0] = next;
	put16(at + 2, (uint16_t)(offset << 3 | (more ? 1 : 0)));
	memcpy(at + 4, "\x00\x00\xbe\xef", 4);
	if (!f->frozen)
		f->ext_end = f->length;
}

static void record_l4_end(struct frame *f, uint32_t fixed_end)
{
	if (!f->frozen && f->l4_end == 0)
		f->l4_end = fixed_end;
}

static void put_tcp(struct frame *f, uint16_t src_port, uint16_t dst_port, uint8_t flags,
		    uint32_t options_length)
{
	assert_int_equal(options_length % 4, 0);
	uint8_t *at = grow(f, 20 + options_length);

	put16(at, src_port);
	put16(at + 2, dst_port);
	put16(at + 4, 0x0102); /* sequence number */
	at[12] = (uint8_t)((20 + options_length) / 4 << 4);
	at[13] = flags;
	put16(at + 14, 65535);	      /* window */
	memset(at + 20, 1, options_length); /* NOP */
	record_l4_end(f, (uint32_t)(at - f->bytes) + 20);
}

static void put_udp(struct frame *f, uint16_t src_port, uint16_t dst_port)
{
	uint32_t start = f->length;
	uint8_t *at = grow(f, 8);

	put16(at, src_port);
	put16(at + 2, dst_port);
	add_fix(f, start, FIX_UDP_LENGTH);
	record_l4_end(f, f->length);
}

/* An ICMP or ICMPv6 header (8 bytes: type, code, checksum, rest); the parser needs 4. */
static void put_icmp(struct frame *f, uint8_t type, uint8_t code)
{
	uint8_t *at = grow(f, 8);

	at[0] = type;
	at[1] = code;
	record_l4_end(f, (uint32_t)(at - f->bytes) + 4);
}

static void put_payload(struct frame *f, uint32_t length)
{
	uint8_t *at = grow(f, length);

	for (uint32_t i = 0; i < length; i++)
		at[i] = (uint8_t)(0xa0 + i);
}

/* Parses the first @length bytes of @f from an exact-size heap copy. */
static enum weir_packet_reason parse_prefix(const struct frame *f, uint32_t length,
					    enum weir_link_type link,
					    struct weir_packet_info *info)
{
	uint8_t *copy = exact_copy(f->bytes, length);

	memset(info, 0x5a, sizeof(*info)); /* the parser must overwrite every field */
	enum weir_packet_reason reason = weir_packet_parse(copy, length, link, info);

	exact_free(copy);
	assert_int_equal(reason, info->reason);
	return reason;
}

static enum weir_packet_reason parse_frame(const struct frame *f, struct weir_packet_info *info)
{
	return parse_prefix(f, f->length, f->link, info);
}

/* --- The valid kinds: builders and what the parser must say about each. --- */

static void build_eth_ipv4_tcp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x0800);
	put_ipv4(f, 6, V4_SRC, V4_DST, 0, 0x4000); /* DF */
	put_tcp(f, 40000, 443, TCP_SYN | TCP_ACK, 12);
	put_payload(f, 20);
	frame_finish(f);
}

static void build_eth_ipv4_udp_padded(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x0800);
	put_ipv4(f, 17, V4_SRC, V4_DST, 0, 0);
	put_udp(f, 5353, 53);
	put_payload(f, 4);
	frame_finish(f);
	put_payload(f, 60 - f->length); /* Ethernet minimum: padding past the IP length */
}

static void build_vlan_ipv4_udp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x8100);
	put_vlan(f, 0xa064, 0x0800); /* PCP 5: the id is 100 */
	put_ipv4(f, 17, V4_SRC, V4_DST, 0, 0);
	put_udp(f, 40001, 53);
	put_payload(f, 30);
	frame_finish(f);
}

static void build_qinq_ipv6_tcp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x88a8);
	put_vlan(f, 0x0fff, 0x8100); /* the largest id: 4095 */
	put_vlan(f, 0x3007, 0x86dd); /* PCP 1: the id is 7 */
	put_ipv6(f, 6, V6_SRC, V6_DST);
	put_tcp(f, 50000, 22, TCP_PSH | TCP_ACK, 0);
	put_payload(f, 16);
	frame_finish(f);
}

static void build_qinq9100_ipv4_icmp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x9100);
	put_vlan(f, 300, 0x8100);
	put_vlan(f, 301, 0x0800);
	put_ipv4(f, 1, V4_SRC, V4_DST, 0, 0);
	put_icmp(f, 8, 0); /* echo request */
	put_payload(f, 8);
	frame_finish(f);
}

static void build_sll_ipv4_udp(struct frame *f)
{
	frame_start(f, WEIR_LINK_LINUX_SLL);
	put_sll(f, 0x0800);
	put_ipv4(f, 17, V4_SRC, V4_DST, 0, 0);
	put_udp(f, 123, 123);
	put_payload(f, 48);
	frame_finish(f);
}

static void build_sll_vlan_ipv4_tcp(struct frame *f)
{
	frame_start(f, WEIR_LINK_LINUX_SLL);
	put_sll(f, 0x8100); /* libpcap puts a stripped tag back this way */
	put_vlan(f, 42, 0x0800);
	put_ipv4(f, 6, V4_SRC, V4_DST, 0, 0);
	put_tcp(f, 1024, 80, TCP_FIN | TCP_ACK, 0);
	frame_finish(f);
}

static void build_sll2_ipv6_icmpv6(struct frame *f)
{
	frame_start(f, WEIR_LINK_LINUX_SLL2);
	put_sll2(f, 0x86dd);
	put_ipv6(f, 58, V6_SRC, V6_DST);
	put_icmp(f, 128, 0); /* echo request */
	put_payload(f, 8);
	frame_finish(f);
}

static void build_raw_ipv4_tcp(struct frame *f)
{
	frame_start(f, WEIR_LINK_RAW);
	put_ipv4(f, 6, V4_SRC, V4_DST, 0, 0);
	put_tcp(f, 2000, 3000, TCP_RST, 0);
	frame_finish(f);
}

static void build_raw_ipv6_udp(struct frame *f)
{
	frame_start(f, WEIR_LINK_RAW);
	put_ipv6(f, 17, V6_SRC, V6_DST);
	put_udp(f, 546, 547);
	put_payload(f, 10);
	frame_finish(f);
}

static void build_link_ipv4_icmp(struct frame *f)
{
	frame_start(f, WEIR_LINK_IPV4);
	put_ipv4(f, 1, V4_SRC, V4_DST, 0, 0);
	put_icmp(f, 3, 1); /* destination unreachable */
	frame_finish(f);
}

static void build_link_ipv6_tcp(struct frame *f)
{
	frame_start(f, WEIR_LINK_IPV6);
	put_ipv6(f, 6, V6_SRC, V6_DST);
	put_tcp(f, 8080, 65535, TCP_SYN, 20);
	frame_finish(f);
}

static void build_ipv4_options_tcp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x0800);
	put_ipv4(f, 6, V4_SRC, V4_DST, 40, 0); /* IHL 15, the most there is */
	put_tcp(f, 33000, 25, TCP_ACK, 0);
	put_payload(f, 10);
	frame_finish(f);
}

/* The first fragment: its UDP length covers the whole 1480-byte datagram, more than this
 * fragment carries, which must not count as a bad UDP length. */
static void build_ipv4_first_fragment(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x0800);
	put_ipv4(f, 17, V4_SRC, V4_DST, 0, 0x2000); /* MF, offset 0 */
	put_udp(f, 4500, 4501);
	put_payload(f, 64);
	frame_finish(f);
	put16(f->bytes + 14 + 20 + 4, 1480);
}

static void build_ipv4_later_fragment(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x0800);
	put_ipv4(f, 17, V4_SRC, V4_DST, 0, 0x2000 | 9); /* MF, offset 72 bytes */
	put_payload(f, 72);
	frame_finish(f);
}

static void build_ipv4_last_fragment(struct frame *f)
{
	frame_start(f, WEIR_LINK_RAW);
	put_ipv4(f, 6, V4_SRC, V4_DST, 0, 18); /* no MF, offset 144 bytes */
	put_payload(f, 40);
	frame_finish(f);
}

static void build_ipv6_hop_by_hop_udp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x86dd);
	put_ipv6(f, 0, V6_SRC, V6_DST);
	put_extension(f, 0, 17, 8);
	put_udp(f, 5000, 5001);
	put_payload(f, 12);
	frame_finish(f);
}

static void build_ipv6_routing_tcp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x86dd);
	put_ipv6(f, 43, V6_SRC, V6_DST);
	put_extension(f, 43, 6, 24);
	put_tcp(f, 5002, 5003, TCP_ACK, 0);
	frame_finish(f);
}

static void build_ipv6_destination_icmpv6(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x86dd);
	put_ipv6(f, 60, V6_SRC, V6_DST);
	put_extension(f, 60, 58, 16);
	put_icmp(f, 135, 0); /* neighbour solicitation */
	frame_finish(f);
}

static void build_ipv6_ah_tcp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x86dd);
	put_ipv6(f, 51, V6_SRC, V6_DST);
	put_extension(f, 51, 6, 24); /* 12 fixed + 12 bytes of ICV */
	put_tcp(f, 5004, 179, TCP_PSH | TCP_ACK, 0);
	frame_finish(f);
}

static void build_ipv6_first_fragment(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x86dd);
	put_ipv6(f, 44, V6_SRC, V6_DST);
	put_fragment6(f, 17, 0, true);
	put_udp(f, 5006, 5007);
	put_payload(f, 40);
	frame_finish(f);
	put16(f->bytes + 14 + 40 + 8 + 4, 3000); /* the whole datagram's UDP length */
}

static void build_ipv6_later_fragment(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x86dd);
	put_ipv6(f, 44, V6_SRC, V6_DST);
	put_fragment6(f, 6, 185, false);
	put_payload(f, 40); /* mid-datagram bytes: must not be read as a TCP header */
	frame_finish(f);
}

/* Every extension type once, in RFC 8200's recommended order, then TCP. */
static void build_ipv6_chain_tcp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x86dd);
	put_ipv6(f, 0, V6_SRC, V6_DST);
	put_extension(f, 0, 60, 8);
	put_extension(f, 60, 43, 16);
	put_extension(f, 43, 44, 8);
	put_fragment6(f, 51, 0, true);
	put_extension(f, 51, 60, 16);
	put_extension(f, 60, 6, 8);
	put_tcp(f, 5008, 5009, TCP_SYN, 8);
	frame_finish(f);
}

/* Eight extension headers: the most the parser follows. */
static void build_ipv6_chain_of_8_udp(struct frame *f)
{
	frame_start(f, WEIR_LINK_RAW);
	put_ipv6(f, 60, V6_SRC, V6_DST);
	for (int i = 0; i < 7; i++)
		put_extension(f, 60, 60, 8);
	put_extension(f, 60, 17, 8);
	put_udp(f, 5010, 5011);
	frame_finish(f);
}

static void build_ipip_4in4(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x0800);
	put_ipv4(f, 4, V4_SRC, V4_DST, 0, 0);
	put_ipv4(f, 6, V4_INNER_SRC, V4_INNER_DST, 0, 0);
	put_tcp(f, 1111, 2222, TCP_SYN, 0);
	frame_finish(f);
}

static void build_ipip_6in4(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x0800);
	put_ipv4(f, 41, V4_SRC, V4_DST, 0, 0);
	put_ipv6(f, 17, V6_INNER_SRC, V6_INNER_DST);
	put_udp(f, 3333, 4444);
	frame_finish(f);
}

static void build_ipip_4in6(struct frame *f)
{
	frame_start(f, WEIR_LINK_RAW);
	put_ipv6(f, 4, V6_SRC, V6_DST);
	put_ipv4(f, 17, V4_INNER_SRC, V4_INNER_DST, 0, 0);
	put_udp(f, 3333, 4444);
	frame_finish(f);
}

static void build_ipip_6in6(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x86dd);
	put_ipv6(f, 41, V6_SRC, V6_DST);
	put_ipv6(f, 6, V6_INNER_SRC, V6_INNER_DST);
	put_tcp(f, 5555, 6666, TCP_ACK, 0);
	frame_finish(f);
}

static void build_vxlan(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x0800);
	put_ipv4(f, 17, V4_SRC, V4_DST, 0, 0);
	put_udp(f, 49152, 4789);
	uint8_t *vxlan = grow(f, 8);

	vxlan[0] = 0x08; /* I flag */
	vxlan[6] = 0x42; /* VNI 0x000042 */
	f->frozen = true;
	put_ethernet(f, 0x0800);
	put_ipv4(f, 6, V4_INNER_SRC, V4_INNER_DST, 0, 0);
	put_tcp(f, 7777, 8888, TCP_SYN, 0);
	frame_finish(f);
}

static void build_arp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x0806);
	uint8_t *arp = grow(f, 28);

	memcpy(arp, "\x00\x01\x08\x00\x06\x04\x00\x01", 8); /* Ethernet/IPv4 request */
	memcpy(arp + 14, V4_SRC, 4);
	memcpy(arp + 24, V4_DST, 4);
	frame_finish(f);
}

static void build_vlan_arp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x8100);
	put_vlan(f, 12, 0x0806);
	put_payload(f, 28);
	frame_finish(f);
}

static void build_pppoe_discovery(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x8863);
	memcpy(grow(f, 6), "\x11\x09\x00\x00\x00\x00", 6); /* PADI */
	frame_finish(f);
}

/* PPPoE session carrying IPv4 (PPP protocol 0x0021): not followed, so NOT_IP. */
static void build_pppoe_session(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x8864);
	memcpy(grow(f, 8), "\x11\x00\x00\x01\x00\x20\x00\x21", 8);
	put_payload(f, 30);
	frame_finish(f);
}

static void build_lldp(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x88cc);
	put_payload(f, 40);
	frame_finish(f);
}

/* 802.3 with an LLC header: the type field is a length (below 0x0600). */
static void build_ieee8023(struct frame *f)
{
	frame_start(f, WEIR_LINK_ETHERNET);
	put_ethernet(f, 0x0026);
	memcpy(grow(f, 3), "\x42\x42\x03", 3); /* STP's LLC */
	put_payload(f, 35);
	frame_finish(f);
}

static void build_sll2_arp(struct frame *f)
{
	frame_start(f, WEIR_LINK_LINUX_SLL2);
	put_sll2(f, 0x0806);
	put_payload(f, 28);
	frame_finish(f);
}

struct kind {
	const char *name;
	void (*build)(struct frame *f);
	struct weir_packet_info want; /* src and dst: the outer V4_* or V6_* by ip_version */
};

#define IP4 .ip_version = 4, .has_addresses = true
#define IP6 .ip_version = 6, .has_addresses = true
#define PORTS(s, d) .src_port = (s), .dst_port = (d), .has_ports = true

static const struct kind kinds[] = {
	{"eth_ipv4_tcp", build_eth_ipv4_tcp,
	 {IP4, .protocol = 6, .tcp_flags = TCP_SYN | TCP_ACK, PORTS(40000, 443)}},
	{"eth_ipv4_udp_padded", build_eth_ipv4_udp_padded, {IP4, .protocol = 17, PORTS(5353, 53)}},
	{"vlan_ipv4_udp", build_vlan_ipv4_udp,
	 {IP4, .protocol = 17, PORTS(40001, 53), .vlan_outer = 100}},
	{"qinq_ipv6_tcp", build_qinq_ipv6_tcp,
	 {IP6, .protocol = 6, .tcp_flags = TCP_PSH | TCP_ACK, PORTS(50000, 22), .vlan_outer = 4095,
	  .vlan_inner = 7}},
	{"qinq9100_ipv4_icmp", build_qinq9100_ipv4_icmp,
	 {IP4, .protocol = 1, .icmp_type = 8, .vlan_outer = 300, .vlan_inner = 301}},
	{"sll_ipv4_udp", build_sll_ipv4_udp, {IP4, .protocol = 17, PORTS(123, 123)}},
	{"sll_vlan_ipv4_tcp", build_sll_vlan_ipv4_tcp,
	 {IP4, .protocol = 6, .tcp_flags = TCP_FIN | TCP_ACK, PORTS(1024, 80), .vlan_outer = 42}},
	{"sll2_ipv6_icmpv6", build_sll2_ipv6_icmpv6, {IP6, .protocol = 58, .icmp_type = 128}},
	{"raw_ipv4_tcp", build_raw_ipv4_tcp,
	 {IP4, .protocol = 6, .tcp_flags = TCP_RST, PORTS(2000, 3000)}},
	{"raw_ipv6_udp", build_raw_ipv6_udp, {IP6, .protocol = 17, PORTS(546, 547)}},
	{"link_ipv4_icmp", build_link_ipv4_icmp, {IP4, .protocol = 1, .icmp_type = 3}},
	{"link_ipv6_tcp", build_link_ipv6_tcp,
	 {IP6, .protocol = 6, .tcp_flags = TCP_SYN, PORTS(8080, 65535)}},
	{"ipv4_options_tcp", build_ipv4_options_tcp,
	 {IP4, .protocol = 6, .tcp_flags = TCP_ACK, PORTS(33000, 25)}},
	{"ipv4_first_fragment", build_ipv4_first_fragment,
	 {IP4, .protocol = 17, PORTS(4500, 4501), .is_fragment = true}},
	{"ipv4_later_fragment", build_ipv4_later_fragment,
	 {IP4, .protocol = 17, .is_fragment = true}},
	{"ipv4_last_fragment", build_ipv4_last_fragment, {IP4, .protocol = 6, .is_fragment = true}},
	{"ipv6_hop_by_hop_udp", build_ipv6_hop_by_hop_udp,
	 {IP6, .protocol = 17, PORTS(5000, 5001)}},
	{"ipv6_routing_tcp", build_ipv6_routing_tcp,
	 {IP6, .protocol = 6, .tcp_flags = TCP_ACK, PORTS(5002, 5003)}},
	{"ipv6_destination_icmpv6", build_ipv6_destination_icmpv6,
	 {IP6, .protocol = 58, .icmp_type = 135}},
	{"ipv6_ah_tcp", build_ipv6_ah_tcp,
	 {IP6, .protocol = 6, .tcp_flags = TCP_PSH | TCP_ACK, PORTS(5004, 179)}},
	{"ipv6_first_fragment", build_ipv6_first_fragment,
	 {IP6, .protocol = 17, PORTS(5006, 5007), .is_fragment = true}},
	{"ipv6_later_fragment", build_ipv6_later_fragment,
	 {IP6, .protocol = 6, .is_fragment = true}},
	{"ipv6_chain_tcp", build_ipv6_chain_tcp,
	 {IP6, .protocol = 6, .tcp_flags = TCP_SYN, PORTS(5008, 5009), .is_fragment = true}},
	{"ipv6_chain_of_8_udp", build_ipv6_chain_of_8_udp,
	 {IP6, .protocol = 17, PORTS(5010, 5011)}},
	{"ipip_4in4", build_ipip_4in4, {IP4, .protocol = 4, .is_tunnel = true}},
	{"ipip_6in4", build_ipip_6in4, {IP4, .protocol = 41, .is_tunnel = true}},
	{"ipip_4in6", build_ipip_4in6, {IP6, .protocol = 4, .is_tunnel = true}},
	{"ipip_6in6", build_ipip_6in6, {IP6, .protocol = 41, .is_tunnel = true}},
	{"vxlan", build_vxlan, {IP4, .protocol = 17, PORTS(49152, 4789), .is_tunnel = true}},
	{"arp", build_arp, {.reason = WEIR_PACKET_NOT_IP}},
	{"vlan_arp", build_vlan_arp, {.vlan_outer = 12, .reason = WEIR_PACKET_NOT_IP}},
	{"pppoe_discovery", build_pppoe_discovery, {.reason = WEIR_PACKET_NOT_IP}},
	{"pppoe_session", build_pppoe_session, {.reason = WEIR_PACKET_NOT_IP}},
	{"lldp", build_lldp, {.reason = WEIR_PACKET_NOT_IP}},
	{"ieee8023", build_ieee8023, {.reason = WEIR_PACKET_NOT_IP}},
	{"sll2_arp", build_sll2_arp, {.reason = WEIR_PACKET_NOT_IP}},
};

#define KIND_COUNT (sizeof(kinds) / sizeof(kinds[0]))

static void v4_mapped(uint8_t out[16], const uint8_t v4[4])
{
	memset(out, 0, 16);
	out[10] = 0xff;
	out[11] = 0xff;
	memcpy(out + 12, v4, 4);
}

/* @want with the outer addresses its ip_version implies (zero without IP). */
static struct weir_packet_info complete_want(const struct weir_packet_info *want)
{
	struct weir_packet_info full = *want;

	if (full.ip_version == 4) {
		v4_mapped(full.src, V4_SRC);
		v4_mapped(full.dst, V4_DST);
	} else if (full.ip_version == 6) {
		memcpy(full.src, V6_SRC, 16);
		memcpy(full.dst, V6_DST, 16);
	}
	return full;
}

static void assert_info_equal(const struct weir_packet_info *got,
			      const struct weir_packet_info *want)
{
	assert_memory_equal(got->src, want->src, 16);
	assert_memory_equal(got->dst, want->dst, 16);
	assert_int_equal(got->ip_version, want->ip_version);
	assert_int_equal(got->protocol, want->protocol);
	assert_int_equal(got->tcp_flags, want->tcp_flags);
	assert_int_equal(got->icmp_type, want->icmp_type);
	assert_int_equal(got->src_port, want->src_port);
	assert_int_equal(got->dst_port, want->dst_port);
	assert_int_equal(got->vlan_outer, want->vlan_outer);
	assert_int_equal(got->vlan_inner, want->vlan_inner);
	assert_int_equal(got->has_addresses, want->has_addresses);
	assert_int_equal(got->has_ports, want->has_ports);
	assert_int_equal(got->is_fragment, want->is_fragment);
	assert_int_equal(got->is_tunnel, want->is_tunnel);
	assert_int_equal(got->reason, want->reason);
}

/* Every valid kind, every field, and the builders' bookkeeping checked against the bytes. */
static void test_valid_kinds(void **state)
{
	(void)state;
	for (uint32_t k = 0; k < KIND_COUNT; k++) {
		struct frame f;
		struct weir_packet_info info;
		struct weir_packet_info want = complete_want(&kinds[k].want);

		kinds[k].build(&f);
		print_message("%-24s %3u bytes\n", kinds[k].name, f.length);
		assert_int_equal(parse_frame(&f, &info), want.reason);
		assert_info_equal(&info, &want);
		assert_int_equal(f.has_ip, want.has_addresses);
		if (want.has_ports)
			assert_int_not_equal(f.l4_end, 0);
	}
}

/* Parses the frame of kind @name. */
static void build_named(struct frame *f, const char *name)
{
	for (uint32_t k = 0; k < KIND_COUNT; k++) {
		if (strcmp(kinds[k].name, name) == 0) {
			kinds[k].build(f);
			return;
		}
	}
	fail_msg("no kind %s", name);
}

/* A snaplen cut right after the fixed TCP header (options and payload missing) is OK. */
static void test_snaplen_keeps_tcp(void **state)
{
	(void)state;
	struct frame f;
	struct weir_packet_info info;

	build_named(&f, "eth_ipv4_tcp"); /* 12 bytes of TCP options */
	assert_int_equal(parse_prefix(&f, 14 + 20 + 20, f.link, &info), WEIR_PACKET_OK);
	assert_true(info.has_ports);
	assert_int_equal(info.dst_port, 443);
	assert_int_equal(info.tcp_flags, TCP_SYN | TCP_ACK);
}

/* The same IPv4 frame under every link type that can carry it. */
static void test_link_types_agree(void **state)
{
	(void)state;
	struct frame ip;
	struct frame f;
	struct weir_packet_info want;
	struct weir_packet_info info;

	build_named(&ip, "raw_ipv4_tcp");
	assert_int_equal(parse_frame(&ip, &want), WEIR_PACKET_OK);
	assert_int_equal(parse_prefix(&ip, ip.length, WEIR_LINK_IPV4, &info), WEIR_PACKET_OK);
	assert_info_equal(&info, &want);
	assert_int_equal(parse_prefix(&ip, ip.length, WEIR_LINK_IPV6, &info),
			 WEIR_PACKET_BAD_IP_VERSION);

	frame_start(&f, WEIR_LINK_LINUX_SLL2);
	put_sll2(&f, 0x0800);
	memcpy(grow(&f, ip.length), ip.bytes, ip.length);
	assert_int_equal(parse_frame(&f, &info), WEIR_PACKET_OK);
	assert_info_equal(&info, &want);
}

/* --- One test per reason. --- */

static uint32_t reasons_seen; /* bit per reason, checked by the last test */

static void expect_reason(const struct frame *f, uint32_t length, enum weir_link_type link,
			  enum weir_packet_reason reason, bool has_addresses)
{
	struct weir_packet_info info;

	assert_int_equal(parse_prefix(f, length, link, &info), reason);
	assert_int_equal(info.has_addresses, has_addresses);
	assert_int_equal(info.ip_version != 0, has_addresses);
	if (info.has_ports)
		assert_true(info.has_addresses);
	reasons_seen |= 1u << reason;
}

static void expect_frame(const struct frame *f, enum weir_packet_reason reason,
			 bool has_addresses)
{
	expect_reason(f, f->length, f->link, reason, has_addresses);
}

static void test_reason_ok_and_not_ip(void **state)
{
	(void)state;
	struct frame f;

	build_named(&f, "eth_ipv4_tcp");
	expect_frame(&f, WEIR_PACKET_OK, true);
	build_named(&f, "arp");
	expect_frame(&f, WEIR_PACKET_NOT_IP, false);
}

static void test_reason_truncated_link(void **state)
{
	(void)state;
	struct frame f;

	build_named(&f, "eth_ipv4_tcp");
	expect_reason(&f, 13, f.link, WEIR_PACKET_TRUNCATED_LINK, false);
	expect_reason(&f, 0, f.link, WEIR_PACKET_TRUNCATED_LINK, false);
	build_named(&f, "qinq_ipv6_tcp");
	expect_reason(&f, 14 + 4 + 3, f.link, WEIR_PACKET_TRUNCATED_LINK, false); /* 2nd tag */
	build_named(&f, "sll_ipv4_udp");
	expect_reason(&f, 15, f.link, WEIR_PACKET_TRUNCATED_LINK, false);
	build_named(&f, "sll2_ipv6_icmpv6");
	expect_reason(&f, 19, f.link, WEIR_PACKET_TRUNCATED_LINK, false);
}

static void test_reason_too_many_vlans(void **state)
{
	(void)state;
	struct frame f;
	struct weir_packet_info info;

	frame_start(&f, WEIR_LINK_ETHERNET);
	put_ethernet(&f, 0x88a8);
	put_vlan(&f, 10, 0x8100);
	put_vlan(&f, 20, 0x8100);
	put_vlan(&f, 30, 0x0800);
	put_ipv4(&f, 6, V4_SRC, V4_DST, 0, 0);
	put_tcp(&f, 1, 2, TCP_SYN, 0);
	frame_finish(&f);
	expect_frame(&f, WEIR_PACKET_TOO_MANY_VLANS, false);
	parse_frame(&f, &info);
	assert_int_equal(info.vlan_outer, 10);
	assert_int_equal(info.vlan_inner, 20);
	/* Decided at the third tag's type, before its bytes: a cut there changes nothing. */
	expect_reason(&f, 14 + 8, f.link, WEIR_PACKET_TOO_MANY_VLANS, false);
}

static void test_reason_truncated_ip(void **state)
{
	(void)state;
	struct frame f;

	build_named(&f, "eth_ipv4_tcp");
	expect_reason(&f, 14, f.link, WEIR_PACKET_TRUNCATED_IP, false);
	expect_reason(&f, 14 + 19, f.link, WEIR_PACKET_TRUNCATED_IP, false);
	build_named(&f, "ipv4_options_tcp"); /* fixed part there, options cut: has addresses */
	expect_reason(&f, 14 + 20 + 39, f.link, WEIR_PACKET_TRUNCATED_IP, true);
	build_named(&f, "qinq_ipv6_tcp");
	expect_reason(&f, 22 + 39, f.link, WEIR_PACKET_TRUNCATED_IP, false);
	build_named(&f, "raw_ipv6_udp");
	expect_reason(&f, 0, f.link, WEIR_PACKET_TRUNCATED_IP, false);
}

static void test_reason_bad_ip_version(void **state)
{
	(void)state;
	struct frame f;

	build_named(&f, "eth_ipv4_tcp");
	f.bytes[14] = 0x65; /* version 6 under ethertype IPv4 */
	expect_frame(&f, WEIR_PACKET_BAD_IP_VERSION, false);
	build_named(&f, "qinq_ipv6_tcp");
	f.bytes[22] = 0x45; /* version 4 under ethertype IPv6 */
	expect_frame(&f, WEIR_PACKET_BAD_IP_VERSION, false);
	build_named(&f, "raw_ipv4_tcp");
	f.bytes[0] = 0x55;
	expect_frame(&f, WEIR_PACKET_BAD_IP_VERSION, false);
	expect_reason(&f, 1, f.link, WEIR_PACKET_BAD_IP_VERSION, false);
	build_named(&f, "link_ipv4_icmp");
	expect_reason(&f, f.length, WEIR_LINK_IPV6, WEIR_PACKET_BAD_IP_VERSION, false);
	build_named(&f, "link_ipv6_tcp");
	expect_reason(&f, f.length, WEIR_LINK_IPV4, WEIR_PACKET_BAD_IP_VERSION, false);
}

static void test_reason_bad_ip_header_length(void **state)
{
	(void)state;
	struct frame f;
	struct weir_packet_info info;

	build_named(&f, "eth_ipv4_tcp");
	f.bytes[14] = 0x44; /* IHL 4: 16 bytes, shorter than any IPv4 header */
	expect_frame(&f, WEIR_PACKET_BAD_IP_HEADER_LENGTH, true);
	parse_frame(&f, &info);
	assert_false(info.has_ports);
	f.bytes[14] = 0x40;
	expect_frame(&f, WEIR_PACKET_BAD_IP_HEADER_LENGTH, true);
}

static void test_reason_bad_ip_total_length(void **state)
{
	(void)state;
	struct frame f;
	struct weir_packet_info info;

	build_named(&f, "eth_ipv4_tcp");
	put16(f.bytes + 14 + 2, 19);
	expect_frame(&f, WEIR_PACKET_BAD_IP_TOTAL_LENGTH, true);
	put16(f.bytes + 14 + 2, 0); /* what TSO/LRO captures on a host can show */
	expect_frame(&f, WEIR_PACKET_BAD_IP_TOTAL_LENGTH, true);
	parse_frame(&f, &info);
	assert_memory_equal(info.src + 12, V4_SRC, 4); /* still counted for its hosts */
	build_named(&f, "ipv4_options_tcp");
	put16(f.bytes + 14 + 2, 59); /* one byte short of the 60-byte header */
	expect_frame(&f, WEIR_PACKET_BAD_IP_TOTAL_LENGTH, true);
}

static void test_reason_bad_extension_chain(void **state)
{
	(void)state;
	struct frame f;

	frame_start(&f, WEIR_LINK_RAW); /* nine headers, one more than the parser follows */
	put_ipv6(&f, 60, V6_SRC, V6_DST);
	for (int i = 0; i < 8; i++)
		put_extension(&f, 60, 60, 8);
	put_extension(&f, 60, 17, 8);
	put_udp(&f, 1, 2);
	frame_finish(&f);
	expect_frame(&f, WEIR_PACKET_BAD_EXTENSION_CHAIN, true);

	build_named(&f, "ipv6_routing_tcp"); /* a header longer than the whole packet */
	f.bytes[14 + 40 + 1] = 255;
	expect_frame(&f, WEIR_PACKET_BAD_EXTENSION_CHAIN, true);

	build_named(&f, "ipv6_hop_by_hop_udp"); /* captured, but past the payload length */
	put16(f.bytes + 14 + 4, 7);
	expect_frame(&f, WEIR_PACKET_BAD_EXTENSION_CHAIN, true);

	build_named(&f, "ipv6_ah_tcp"); /* cut by the capture */
	expect_reason(&f, 14 + 40 + 23, f.link, WEIR_PACKET_BAD_EXTENSION_CHAIN, true);
}

static void test_reason_truncated_l4(void **state)
{
	(void)state;
	struct frame f;

	build_named(&f, "eth_ipv4_tcp");
	expect_reason(&f, 14 + 20 + 19, f.link, WEIR_PACKET_TRUNCATED_L4, true);
	put16(f.bytes + 14 + 2, 20 + 10); /* captured in full, but the IP length ends early */
	expect_frame(&f, WEIR_PACKET_TRUNCATED_L4, true);
	build_named(&f, "sll_ipv4_udp");
	expect_reason(&f, 16 + 20 + 7, f.link, WEIR_PACKET_TRUNCATED_L4, true);
	build_named(&f, "link_ipv4_icmp");
	expect_reason(&f, 20 + 3, f.link, WEIR_PACKET_TRUNCATED_L4, true);
	build_named(&f, "link_ipv6_tcp");
	put16(f.bytes + 4, 0); /* payload length 0 (jumbogram or TSO): no room for TCP */
	expect_frame(&f, WEIR_PACKET_TRUNCATED_L4, true);
	build_named(&f, "ipv4_first_fragment");
	put16(f.bytes + 14 + 2, 20 + 4); /* a tiny first fragment */
	expect_frame(&f, WEIR_PACKET_TRUNCATED_L4, true);
}

static void test_reason_bad_tcp_offset(void **state)
{
	(void)state;
	struct frame f;
	struct weir_packet_info info;

	build_named(&f, "raw_ipv4_tcp");
	f.bytes[20 + 12] = 4 << 4;
	expect_frame(&f, WEIR_PACKET_BAD_TCP_OFFSET, true);
	parse_frame(&f, &info);
	assert_true(info.has_ports); /* the fixed header was there: ports are real */
	assert_int_equal(info.dst_port, 3000);
	f.bytes[20 + 12] = 6 << 4; /* 24 bytes in a 20-byte segment */
	expect_frame(&f, WEIR_PACKET_BAD_TCP_OFFSET, true);
	build_named(&f, "link_ipv6_tcp");
	f.bytes[40 + 12] = 15 << 4;
	expect_frame(&f, WEIR_PACKET_BAD_TCP_OFFSET, true);
}

static void test_reason_bad_udp_length(void **state)
{
	(void)state;
	struct frame f;

	build_named(&f, "sll_ipv4_udp");
	put16(f.bytes + 16 + 20 + 4, 7);
	expect_frame(&f, WEIR_PACKET_BAD_UDP_LENGTH, true);
	put16(f.bytes + 16 + 20 + 4, 8 + 48 + 1); /* one byte past the IP payload */
	expect_frame(&f, WEIR_PACKET_BAD_UDP_LENGTH, true);
	put16(f.bytes + 16 + 20 + 4, 8 + 48);
	expect_frame(&f, WEIR_PACKET_OK, true);
	build_named(&f, "raw_ipv6_udp");
	put16(f.bytes + 40 + 4, 0);
	expect_frame(&f, WEIR_PACKET_BAD_UDP_LENGTH, true);
	build_named(&f, "eth_ipv4_udp_padded"); /* the padding is not IP payload */
	put16(f.bytes + 14 + 20 + 4, 13);
	expect_frame(&f, WEIR_PACKET_BAD_UDP_LENGTH, true);
}

static void test_reason_bad_link_type(void **state)
{
	(void)state;
	struct frame f;

	build_named(&f, "eth_ipv4_tcp");
	expect_reason(&f, f.length, (enum weir_link_type)0, WEIR_PACKET_BAD_LINK_TYPE, false);
	expect_reason(&f, f.length, (enum weir_link_type)12345, WEIR_PACKET_BAD_LINK_TYPE, false);
	expect_reason(&f, 0, (enum weir_link_type)2, WEIR_PACKET_BAD_LINK_TYPE, false);
}

static void test_every_reason_seen(void **state)
{
	(void)state;
	assert_int_equal(reasons_seen, (1u << WEIR_PACKET_REASON_COUNT) - 1);
}

/* Out of line: inlined next to expect_assert_failure's setjmp it trips -Wclobbered. */
__attribute__((noinline)) static const char *name_of(uint32_t reason)
{
	return weir_packet_reason_name((enum weir_packet_reason)reason);
}

__attribute__((noinline)) static void parse_raw(const uint8_t *frame, uint32_t length,
						struct weir_packet_info *info)
{
	weir_packet_parse(frame, length, WEIR_LINK_ETHERNET, info);
}

static void test_reason_names_and_misuse(void **state)
{
	(void)state;
	struct weir_packet_info info;

	assert_string_equal(name_of(WEIR_PACKET_OK), "ok");
	assert_string_equal(name_of(WEIR_PACKET_TRUNCATED_IP), "truncated_ip");
	for (uint32_t r = 0; r < WEIR_PACKET_REASON_COUNT; r++) {
		const char *name = name_of(r);

		assert_non_null(name);
		assert_true(strlen(name) > 0);
		for (const char *c = name; *c != '\0'; c++) /* snake_case: JSON keys as they are */
			assert_non_null(strchr("abcdefghijklmnopqrstuvwxyz0123456789_", *c));
		for (uint32_t other = 0; other < r; other++)
			assert_string_not_equal(name, name_of(other));
	}
	parse_raw(NULL, 0, &info); /* nothing captured: allowed */
	assert_int_equal(info.reason, WEIR_PACKET_TRUNCATED_LINK);
#if WEIR_ASSERTS
	expect_assert_failure(name_of(WEIR_PACKET_REASON_COUNT));
	expect_assert_failure(parse_raw(NULL, 10, &info));
	expect_assert_failure(parse_raw((const uint8_t *)"x", 1, NULL));
#else
	assert_string_equal(name_of(WEIR_PACKET_REASON_COUNT), "unknown");
#endif
}

/* --- Truncation: every prefix of every valid kind. --- */

/* The reason a cut at @cut must give, from the layer ends the builder recorded. */
static enum weir_packet_reason reason_for_cut(const struct frame *f, uint32_t cut,
					      enum weir_packet_reason full)
{
	if (!f->has_ip)
		return cut < f->link_end ? WEIR_PACKET_TRUNCATED_LINK : full;
	if (cut < f->ip_offset)
		return WEIR_PACKET_TRUNCATED_LINK;
	if (cut < f->ip_end)
		return WEIR_PACKET_TRUNCATED_IP;
	if (cut < f->ext_end)
		return WEIR_PACKET_BAD_EXTENSION_CHAIN;
	if (cut < f->l4_end)
		return WEIR_PACKET_TRUNCATED_L4;
	return full;
}

static void check_cut(const struct frame *f, uint32_t cut, const struct weir_packet_info *full)
{
	struct weir_packet_info info;
	uint32_t needed_end = f->has_ip ? f->ext_end : f->link_end;
	enum weir_packet_reason reason = parse_prefix(f, cut, f->link, &info);

	if (f->l4_end > needed_end)
		needed_end = f->l4_end;
	assert_int_equal(reason, reason_for_cut(f, cut, full->reason));
	if (cut >= needed_end) { /* everything needed is there: the same answer as in full */
		assert_info_equal(&info, full);
		return;
	}
	assert_int_not_equal(reason, WEIR_PACKET_OK);
	assert_false(info.has_ports);
	assert_int_equal(info.has_addresses, f->has_ip && cut >= f->ip_fixed_end);
	if (info.has_addresses) {
		assert_memory_equal(info.src, full->src, 16);
		assert_memory_equal(info.dst, full->dst, 16);
		assert_int_equal(info.ip_version, full->ip_version);
	} else {
		assert_int_equal(info.ip_version, 0);
	}
}

static void test_truncation_sweep(void **state)
{
	(void)state;
	uint32_t cut_count = 0;

	for (uint32_t k = 0; k < KIND_COUNT; k++) {
		struct frame f;
		struct weir_packet_info full;

		kinds[k].build(&f);
		parse_frame(&f, &full);
		for (uint32_t cut = 0; cut <= f.length; cut++) {
			check_cut(&f, cut, &full);
			cut_count++;
		}
	}
	print_message("truncation: %u prefixes of %zu kinds\n", cut_count, KIND_COUNT);
}

/* --- Seeded random mutation: only invariants, and ASan watching the reads. --- */

static const enum weir_link_type all_links[] = {
	WEIR_LINK_ETHERNET, WEIR_LINK_RAW,  WEIR_LINK_LINUX_SLL,
	WEIR_LINK_LINUX_SLL2, WEIR_LINK_IPV4, WEIR_LINK_IPV6,
};

static void test_random_mutation(void **state)
{
	(void)state;
	static struct frame built[KIND_COUNT];
	uint32_t by_reason[WEIR_PACKET_REASON_COUNT] = {0};

	test_rng_seed();
	for (uint32_t k = 0; k < KIND_COUNT; k++)
		kinds[k].build(&built[k]);
	for (uint32_t i = 0; i < MUTATION_COUNT; i++) {
		struct frame f = built[test_rng_next() % KIND_COUNT];
		uint32_t flips = 1 + (uint32_t)(test_rng_next() % 4);
		enum weir_link_type link = f.link;
		struct weir_packet_info info;

		for (uint32_t j = 0; j < flips && f.length > 0; j++)
			f.bytes[test_rng_next() % f.length] ^= (uint8_t)(1 + test_rng_next() % 255);
		if (test_rng_next() % 4 == 0)
			f.length = (uint32_t)(test_rng_next() % (f.length + 1));
		if (test_rng_next() % 16 == 0)
			link = all_links[test_rng_next() % 6];
		enum weir_packet_reason reason = parse_prefix(&f, f.length, link, &info);

		assert_true(reason < WEIR_PACKET_REASON_COUNT);
		assert_true(info.ip_version == 0 || info.ip_version == 4 || info.ip_version == 6);
		if (info.has_ports)
			assert_true(info.has_addresses);
		by_reason[reason]++;
	}
	for (uint32_t r = 0; r < WEIR_PACKET_REASON_COUNT; r++)
		print_message("  %-22s %u\n", name_of(r), by_reason[r]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_kinds),
		cmocka_unit_test(test_snaplen_keeps_tcp),
		cmocka_unit_test(test_link_types_agree),
		cmocka_unit_test(test_reason_ok_and_not_ip),
		cmocka_unit_test(test_reason_truncated_link),
		cmocka_unit_test(test_reason_too_many_vlans),
		cmocka_unit_test(test_reason_truncated_ip),
		cmocka_unit_test(test_reason_bad_ip_version),
		cmocka_unit_test(test_reason_bad_ip_header_length),
		cmocka_unit_test(test_reason_bad_ip_total_length),
		cmocka_unit_test(test_reason_bad_extension_chain),
		cmocka_unit_test(test_reason_truncated_l4),
		cmocka_unit_test(test_reason_bad_tcp_offset),
		cmocka_unit_test(test_reason_bad_udp_length),
		cmocka_unit_test(test_reason_bad_link_type),
		cmocka_unit_test(test_every_reason_seen),
		cmocka_unit_test(test_reason_names_and_misuse),
		cmocka_unit_test(test_truncation_sweep),
		cmocka_unit_test(test_random_mutation),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
