#!/usr/bin/env python3
"""Goal: the seed corpus for tests/fuzz/fuzz_packet.c: one small valid frame of each kind
the parser knows, so fuzzing starts deep in every path instead of at the link header.

Method: build each frame from struct-packed headers and write it, prefixed with the
harness's link byte (0 Ethernet, 1 raw, 2 SLL, 3 SLL2, 4 IPv4, 5 IPv6: the order of `links`
in fuzz_packet.c), to tests/fuzz/corpus/packet/<name>.  Deterministic: rerunning rewrites
the same bytes.  Usage: python3 tests/fuzz/make_packet_corpus.py
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "packet")
ETHERNET, RAW, SLL, SLL2, IPV4, IPV6 = range(6)

V4_SRC, V4_DST = bytes([192, 0, 2, 1]), bytes([198, 51, 100, 2])
V6_SRC = bytes.fromhex("20010db8000000000000000000000001")
V6_DST = bytes.fromhex("20010db80000000000000000000000ab")


def eth(ethertype):
    return bytes.fromhex("020000000001020000000002") + struct.pack("!H", ethertype)


def vlan(vid, ethertype):
    return struct.pack("!HH", vid, ethertype)


def sll(protocol):
    return struct.pack("!HHH8sH", 0, 1, 6, bytes.fromhex("020000000002"), protocol)


def sll2(protocol):
    return struct.pack("!HHIHBB8s", protocol, 0, 3, 1, 4, 6, bytes.fromhex("020000000001"))


def ipv4(protocol, payload, options=b"", fragment=0, src=V4_SRC, dst=V4_DST):
    ihl = 5 + len(options) // 4
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), 0x1234,
                         fragment, 64, protocol, 0, src, dst)
    return header + options + payload


def ipv6(next_header, payload):
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), next_header, 64,
                       V6_SRC, V6_DST) + payload


def extension(next_header, length):
    return struct.pack("!BB", next_header, length // 8 - 1) + bytes(length - 2)


def tcp(sport, dport, flags, options=b"", payload=b""):
    offset = (20 + len(options)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, offset << 4, flags, 65535, 0,
                       0) + options + payload


def udp(sport, dport, payload=b""):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


def icmp(kind, payload=b""):
    return struct.pack("!BBHI", kind, 0, 0, 0) + payload


TCP_OPTIONS = bytes.fromhex("020405b40402080a0000000100000000")  # MSS, SACK-perm, timestamps
VXLAN = bytes.fromhex("0800000000004200")

FRAMES = {
    "eth_ipv4_tcp": (ETHERNET, eth(0x0800) + ipv4(6, tcp(40000, 443, 0x12, TCP_OPTIONS))),
    "eth_vlan_ipv4_udp": (ETHERNET, eth(0x8100) + vlan(100, 0x0800)
                          + ipv4(17, udp(40001, 53, b"\x12\x34\x01\x00\x00\x01"))),
    "eth_qinq_ipv6_tcp": (ETHERNET, eth(0x88A8) + vlan(10, 0x8100) + vlan(20, 0x86DD)
                          + ipv6(6, tcp(50000, 22, 0x18, payload=b"SSH-2.0"))),
    "eth_ipv4_options_icmp": (ETHERNET, eth(0x0800) + ipv4(1, icmp(8, b"ping"),
                                                           options=b"\x01" * 8)),
    "eth_ipv4_fragment_first": (ETHERNET, eth(0x0800) + ipv4(17, udp(4500, 4501, bytes(16)),
                                                             fragment=0x2000)),
    "eth_ipv4_fragment_later": (ETHERNET, eth(0x0800) + ipv4(17, bytes(16), fragment=0x2003)),
    "eth_ipv6_chain_tcp": (ETHERNET, eth(0x86DD) + ipv6(0, extension(43, 8) + extension(44, 16)
                                                        + struct.pack("!BBHI", 60, 0, 1, 7)
                                                        + extension(6, 8)
                                                        + tcp(5008, 5009, 0x02))),
    "eth_ipip_4in4": (ETHERNET, eth(0x0800) + ipv4(4, ipv4(6, tcp(1, 2, 0x02),
                                                           src=bytes([10, 0, 0, 1]),
                                                           dst=bytes([10, 0, 0, 2])))),
    "eth_vxlan": (ETHERNET, eth(0x0800) + ipv4(17, udp(49152, 4789, VXLAN + eth(0x0800)
                                                       + ipv4(6, tcp(7, 8, 0x02))))),
    "eth_arp": (ETHERNET, eth(0x0806) + bytes.fromhex("0001080006040001") + bytes(20)),
    "eth_pppoe_session": (ETHERNET, eth(0x8864) + bytes.fromhex("1100000100200021") + bytes(8)),
    "sll_ipv4_udp": (SLL, sll(0x0800) + ipv4(17, udp(123, 123, bytes(8)))),
    "sll2_ipv6_icmpv6": (SLL2, sll2(0x86DD) + ipv6(58, icmp(128, b"ping"))),
    "raw_ipv6_udp": (RAW, ipv6(17, udp(546, 547, bytes(4)))),
    "ipv4_tcp": (IPV4, ipv4(6, tcp(2000, 3000, 0x04))),
    "ipv6_ah_tcp": (IPV6, ipv6(51, struct.pack("!BBHII", 6, 4, 0, 1, 1) + bytes(12)
                               + tcp(5004, 179, 0x10))),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, (link, frame) in sorted(FRAMES.items()):
        with open(os.path.join(OUT, name), "wb") as out:
            out.write(bytes([link]) + frame)
    print(f"{len(FRAMES)} frames in {OUT}")


if __name__ == "__main__":
    main()
