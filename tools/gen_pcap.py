#!/usr/bin/env python3
"""Writes a realistic synthetic packet capture (pcap or pcapng), deterministic from --seed.

What is in it: hosts on private and documentation ranges only (10.0.0.0/16, 192.168.x.x,
fd00::/8, 2001:db8::/32 -- never a real public address), TCP conversations (SYN, SYN-ACK, ACK,
requests and responses both ways, FIN or now and then RST), UDP (DNS on 53, NTP on 123, RTP-like
streams and other traffic between high ports), ICMP echo and ICMPv6 echo, 802.1Q VLAN tags on
some hosts' frames and 802.1ad + 802.1Q (QinQ) on a few, a few IPv4 packets with options
(Router Alert, Record Route), a few fragmented IPv4 UDP datagrams (only the first fragment
carries the ports), a few IPv6 packets with a hop-by-hop or destination-options header, a
handful of ARP frames and one PPPoE discovery frame (PADI).  Talkers are heavy-tailed (a few
hosts send most of the bytes) and frames are 60..1514 bytes on Ethernet.

Hidden in it unless --no-attacks: a PORT SCAN (10.0.66.6 sends SYNs to ~500 distinct ports of
10.0.1.20 within ~2 s; the target answers RST or SYN-ACK, a few ports stay silent and get one
retransmitted SYN) and a SYN FLOOD (~3000 SYNs from spoofed 10.99.x.x sources to 10.0.0.80
port 80 over ~3 s, never ACKed; the victim answers a quarter of them with SYN-ACK).  Both
scale down with --packets below 20000 (at least 50 ports and 100 SYNs).

Link types: ethernet (1), sll (113, Linux cooked: 16-byte header, VLAN tags stripped as the
kernel does, ARP and PPPoE kept), raw (101: the IP packet only, non-IP frames dropped).
pcap has microsecond (magic 0xa1b2c3d4) or, with --nanosecond, nanosecond (0xa1b23c4d)
timestamps; pcapng has one SHB, one IDB (if_tsresol=9 with --nanosecond) and EPBs.
Frames are sorted by timestamp.  IPv4 header checksums are correct, and so are the TCP, UDP,
ICMP and ICMPv6 checksums.  --snaplen N (128 or more, so every header survives) cuts the
stored frames at N bytes, keeping their original length; by default frames are stored whole.

--truth FILE.json writes the generator's own ground truth, counted from the frames as it
built them (no parsing): frames, bytes (sum of original wire lengths), non_ip_frames, per
host, per conversation ("A|B", A < B comparing IPv4 as ::ffff:a.b.c.d), per 5-tuple
("src|dst|sport|dport|proto", ports 0 for ICMP and for later fragments), scan, syn_flood and
a summary of feature counts.  Every byte count is a frame's original (wire) length.

Example: tools/gen_pcap.py --out data/sample.pcap --seed 1 --seconds 10 --packets 20000 \\
             --truth data/sample.truth.json
Python 3 standard library only.
"""
import argparse
import bisect
import ipaddress
import itertools
import json
import math
import random
import struct
import sys

ETH_IPV4, ETH_IPV6, ETH_ARP = 0x0800, 0x86DD, 0x0806
ETH_VLAN, ETH_QINQ, ETH_PPPOE_DISCOVERY = 0x8100, 0x88A8, 0x8863
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
LINKTYPES = {"ethernet": 1, "sll": 113, "raw": 101}
BROADCAST = b"\xff" * 6
MIN_ETHERNET = 60  # without FCS
ATTACK_REFERENCE_PACKETS = 20000
MEAN_FRAME_BYTES = 125  # byte budget a frame (keeps data/sample.pcap under 3 MB)

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address


def checksum(data):
    if len(data) & 1:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def pseudo_header(src, dst, proto, length):
    if src.version == 4:
        return src.packed + dst.packed + struct.pack("!BBH", 0, proto, length)
    return src.packed + dst.packed + struct.pack("!IxxxB", length, proto)


def with_checksum(src, dst, proto, segment, offset, zero_as_ffff=False):
    value = checksum(pseudo_header(src, dst, proto, len(segment)) + segment)
    if zero_as_ffff and value == 0:
        value = 0xFFFF
    return segment[:offset] + struct.pack("!H", value) + segment[offset + 2:]


def tcp_segment(src, dst, sport, dport, seq, ack, flags, window, payload=b"", options=b""):
    offset = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                         offset << 4, flags, window, 0, 0) + options
    return with_checksum(src, dst, TCP, header + payload, 16)


def udp_datagram(src, dst, sport, dport, payload):
    segment = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return with_checksum(src, dst, UDP, segment, 6, zero_as_ffff=True)


def icmp_echo(src, dst, reply, ident, seq, payload):
    if src.version == 4:
        message = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + payload
        value = checksum(message)
        return message[:2] + struct.pack("!H", value) + message[4:]
    message = struct.pack("!BBHHH", 129 if reply else 128, 0, 0, ident, seq) + payload
    return with_checksum(src, dst, ICMPV6, message, 2)


def ipv4_packet(src, dst, proto, payload, ident, ttl, df=True, options=b"", frag_offset=0,
                more_fragments=False):
    ihl = 5 + len(options) // 4
    flags = (0x4000 if df else 0) | (0x2000 if more_fragments else 0) | (frag_offset // 8)
    header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, ihl * 4 + len(payload), ident & 0xFFFF,
                         flags, ttl, proto, 0, src.packed, dst.packed) + options
    value = checksum(header)
    return header[:10] + struct.pack("!H", value) + header[12:] + payload


def ipv6_packet(src, dst, proto, payload, hop_limit, extensions=(), flow_label=0):
    body, next_header = payload, proto
    for kind in reversed(extensions):
        if kind == 0:  # hop-by-hop: Router Alert (MLD) + PadN(0)
            options = b"\x05\x02\x00\x00\x01\x00"
        else:  # 60, destination options: PadN(4)
            options = b"\x01\x04\x00\x00\x00\x00"
        body = bytes([next_header, 0]) + options + body
        next_header = kind
    return struct.pack("!IHBB16s16s", (6 << 28) | flow_label, len(body), next_header, hop_limit,
                       src.packed, dst.packed) + body


ROUTER_ALERT = b"\x94\x04\x00\x00"
RECORD_ROUTE = b"\x07\x27\x04" + b"\x00" * 36 + b"\x00"  # 39 bytes + EOL = 40
SYN_OPTIONS = b"\x02\x04\x05\xb4\x01\x03\x03\x07\x01\x01\x04\x02"  # MSS, NOP, WS 7, NOP NOP SACKOK


class Host:
    __slots__ = ("addr", "version", "mac", "ttl", "ident", "tags")

    def __init__(self, rng, addr, tags=()):
        self.addr = ipaddress.ip_address(addr)
        self.version = self.addr.version
        tail = self.addr.packed[-4:]
        self.mac = bytes([0x02, 0x00 if self.version == 4 else 0x06]) + tail
        self.ttl = rng.choice((64, 64, 64, 128))
        self.ident = rng.randrange(65536)
        self.tags = tuple(tags)

    def next_ident(self):
        self.ident = (self.ident + 1) & 0xFFFF
        return self.ident


class Packet:
    __slots__ = ("ts", "order", "ip", "ethertype", "l2payload", "smac", "dmac", "tags", "src",
                 "dst", "sport", "dport", "proto", "kind", "broadcast", "features", "tcp_flags")


def sort_key(addr):
    return addr.packed if addr.version == 6 else b"\0" * 10 + b"\xff\xff" + addr.packed


class Generator:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.duration_ns = int(args.seconds * 1e9)
        self.packets = []
        self.order = itertools.count()
        self.scan_truth = None
        self.flood_truth = None
        self.wire_bytes = 0  # Ethernet wire bytes so far, for the byte budget
        self.make_hosts()

    # ---- hosts ----
    def tags_for(self):
        roll = self.rng.random()
        if roll < 0.05:
            return ((ETH_QINQ, 100 + self.rng.randrange(4)), (ETH_VLAN, self.rng.choice((10, 20, 30))))
        if roll < 0.25:
            return ((ETH_VLAN, self.rng.choice((10, 20, 30, 40))),)
        return ()

    def make_hosts(self):
        rng = self.rng
        v4 = set()
        while len(v4) < 220:
            v4.add("10.0.%d.%d" % (rng.randrange(3, 40), rng.randrange(2, 250)))
        while len(v4) < 260:
            v4.add("192.168.%d.%d" % (rng.randrange(1, 4), rng.randrange(2, 250)))
        v6 = set()
        while len(v6) < 25:
            v6.add("fd00:10::%x:%x" % (rng.randrange(1, 16), rng.randrange(1, 65536)))
        while len(v6) < 40:
            v6.add("2001:db8:10::%x" % rng.randrange(1, 65536))
        v4 = sorted(v4, key=lambda a: ipaddress.ip_address(a).packed)
        v6 = sorted(v6, key=lambda a: ipaddress.ip_address(a).packed)
        rng.shuffle(v4)
        rng.shuffle(v6)
        self.clients4 = [Host(rng, a, self.tags_for()) for a in v4]
        self.clients6 = [Host(rng, a, self.tags_for()) for a in v6]
        # Zipf-like client activity: a few clients do most of the talking.
        self.weights4 = list(itertools.accumulate(1.0 / (i + 1) ** 1.1 for i in range(len(v4))))
        self.weights6 = list(itertools.accumulate(1.0 / (i + 1) ** 1.1 for i in range(len(v6))))
        self.server = {name: Host(rng, addr) for name, addr in (
            ("web", "10.0.0.80"), ("dns", "10.0.0.53"), ("ntp", "10.0.0.123"),
            ("files", "10.0.1.10"), ("backup", "10.0.1.11"), ("mail", "10.0.2.25"),
            ("db", "192.168.10.5"), ("gateway", "10.0.0.1"), ("scan_target", "10.0.1.20"),
            ("web6", "fd00:1::80"), ("dns6", "2001:db8::53"), ("files6", "2001:db8:1::10"),
            ("ntp6", "fd00:1::123"))}
        self.flood_victim = self.server["web"]
        self.scanner = Host(rng, "10.0.66.6")

    def client(self, version=4):
        if version == 4:
            return self.clients4[bisect.bisect(self.weights4, self.rng.random() * self.weights4[-1])]
        return self.clients6[bisect.bisect(self.weights6, self.rng.random() * self.weights6[-1])]

    # ---- emitting ----
    def emit(self, ts, src, dst, proto, l4, sport, dport, tags, kind, v4_options=b"",
             extensions=(), df=True, transport=None):
        """One unfragmented IP packet from Host src to Host dst; l4 = transport bytes."""
        if src.version == 4:
            ip = ipv4_packet(src.addr, dst.addr, proto, l4, src.next_ident(), src.ttl, df=df,
                             options=v4_options)
        else:
            ip = ipv6_packet(src.addr, dst.addr, proto, l4, src.ttl, extensions)
        features = []
        if v4_options:
            features.append("ipv4_options")
        if extensions:
            features.append("ipv6_extension_headers")
        self.add_ip(ts, src, dst, ip, sport, dport, transport or proto, tags, kind, features,
                    l4[13] if proto == TCP else 0)

    def add_ip(self, ts, src, dst, ip, sport, dport, proto, tags, kind, features=(), tcp_flags=0):
        p = Packet()
        p.ts, p.order, p.ip = int(ts), next(self.order), ip
        p.ethertype = ETH_IPV4 if src.version == 4 else ETH_IPV6
        p.l2payload = None
        p.smac, p.dmac, p.tags = src.mac, dst.mac, tags
        p.src, p.dst, p.sport, p.dport, p.proto = src.addr, dst.addr, sport, dport, proto
        p.kind, p.broadcast, p.features = kind, False, tuple(features)
        p.tcp_flags = tcp_flags
        self.packets.append(p)
        self.wire_bytes += max(MIN_ETHERNET, 14 + 4 * len(tags) + len(ip))

    def add_non_ip(self, ts, smac, dmac, ethertype, payload, kind):
        p = Packet()
        p.ts, p.order, p.ip = int(ts), next(self.order), None
        p.ethertype, p.l2payload = ethertype, payload
        p.smac, p.dmac, p.tags = smac, dmac, ()
        p.src = p.dst = None
        p.sport = p.dport = p.proto = 0
        p.kind, p.broadcast, p.features = kind, dmac == BROADCAST, ()
        p.tcp_flags = 0
        self.packets.append(p)

    def place(self, length_ns):
        """A start time so that an activity lasting length_ns fits in the capture."""
        room = max(1, self.duration_ns - int(length_ns) - 1)
        return self.rng.randrange(room)

    # ---- traffic ----
    def tcp_conversation(self, client, server, dport, exchanges, rtt_ns, start=None,
                         close="fin", gap_ns=12000):
        """exchanges: [(client bytes, server bytes)].  Times are relative until placed."""
        rng = self.rng
        events = []  # (t, from_client, flags, payload_len, options)
        tags = client.tags
        mss = (1460 if client.version == 4 else 1440) - 4 * len(tags)
        t = 0
        events.append((t, True, SYN, b"", SYN_OPTIONS))
        t += rtt_ns // 2
        events.append((t, False, SYN | ACK, b"", SYN_OPTIONS))
        t += rtt_ns // 2
        events.append((t, True, ACK, b"", b""))
        for ask, answer in exchanges:
            t += int(rng.expovariate(1 / 3e6)) + 1000
            for sender, size in ((True, ask), (False, answer)):
                if size <= 0:
                    continue
                message = self.app_message(dport, sender, size)
                segments = [message[i:i + mss] for i in range(0, size, mss)]
                for i, seg in enumerate(segments):
                    last = i == len(segments) - 1
                    events.append((t, sender, ACK | (PSH if last else 0), seg, b""))
                    if i % 2 == 1 or last:
                        events.append((t + rtt_ns // 2, not sender, ACK, b"", b""))
                    t += gap_ns * len(seg) // 1460 + rng.randrange(gap_ns // 4 + 1)
                t += rtt_ns // 2 + rng.randrange(200000)
        t += int(rng.expovariate(1 / 5e6)) + 1000
        if close == "fin":
            events.append((t, True, FIN | ACK, b"", b""))
            events.append((t + rtt_ns // 2, False, FIN | ACK, b"", b""))
            events.append((t + rtt_ns, True, ACK, b"", b""))
            t += rtt_ns
        else:
            events.append((t, rng.random() < 0.5, RST | ACK, b"", b""))
        if start is None:
            start = self.place(t)
        events.sort(key=lambda e: e[0])
        sport = rng.randrange(32768, 61000)
        seq = {True: rng.randrange(1 << 32), False: rng.randrange(1 << 32)}
        window = {True: rng.choice((502, 1026, 64240)), False: rng.choice((509, 2048, 65160))}
        for t_rel, from_client, flags, payload, options in events:
            a, b = (client, server) if from_client else (server, client)
            sp, dp = (sport, dport) if from_client else (dport, sport)
            size = len(payload)
            segment = tcp_segment(a.addr, b.addr, sp, dp, seq[from_client],
                                  seq[not from_client] if flags & ACK else 0, flags,
                                  window[from_client], payload, options)
            self.emit(start + t_rel, a, b, TCP, segment, sp, dp, tags, "tcp")
            seq[from_client] += size + (1 if flags & (SYN | FIN) else 0)
        return len(events)

    def app_message(self, port, from_client, size):
        """size bytes that look like the application on @port (HTTP, TLS) or random ones."""
        rng = self.rng
        if port == 80 and size >= 64:
            if from_client:
                head = ("GET /%s/%d HTTP/1.1\r\nHost: www.corp.example\r\nX-Pad: "
                        % (rng.choice(("static", "api", "img", "app")), rng.randrange(100000))).encode()
                return head + b"a" * max(0, size - len(head) - 4) + b"\r\n\r\n"
            # The header's length depends on Content-Length's digits: find a fit, padding
            # with one more space after the colon where none fits exactly.
            for space in (b" ", b"  "):
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n" \
                       b"Content-Length:" + space + b"%d\r\n\r\n"
                fixed = len(head) - 2
                fits = [n for n in (size - fixed - d for d in range(1, 8)) if n > 0 and
                        fixed + len(str(n)) + n == size]
                if fits:
                    return head % fits[0] + rng.randbytes(fits[0])
        if port in (443, 993) and size >= 6:
            message, remaining = b"", size
            while remaining:  # TLS application-data records, none shorter than 1 byte
                body = min(16384, remaining - 5)
                if 0 < remaining - 5 - body < 6:
                    body -= 6
                message += struct.pack("!BHH", 0x17, 0x0303, body) + rng.randbytes(body)
                remaining -= 5 + body
            return message
        return rng.randbytes(size)

    def web_exchanges(self):
        rng = self.rng
        exchanges = []
        for _ in range(1 + int(rng.expovariate(1 / 1.2))):
            ask = rng.randrange(80, 400)
            answer = int(min(20000, 150 * rng.paretovariate(1.7)))
            exchanges.append((ask, answer))
        return exchanges

    def tcp_event(self, version, small=False):
        rng = self.rng
        client = self.client(version)
        roll = 0.69 + 0.31 * rng.random() if small else rng.random()
        rtt = rng.randrange(200000, 30000000)
        close = "rst" if rng.random() < 0.06 else "fin"
        if version == 6:
            if roll < 0.85:
                server, dport, exchanges = self.server["web6"], 443, self.web_exchanges()
            else:
                server, dport = self.server["files6"], 445
                exchanges = [(rng.randrange(100, 300), int(min(120000, 1500 * rng.paretovariate(1.2))))]
        elif roll < 0.55:
            server, dport, exchanges = self.server["web"], rng.choice((80, 443, 443)), self.web_exchanges()
        elif roll < 0.64:
            server, dport = self.server["files"], 445
            exchanges = [(rng.randrange(100, 300), int(min(250000, 2500 * rng.paretovariate(1.1))))
                         for _ in range(rng.randrange(1, 3))]
        elif roll < 0.69:
            server, dport = self.server["backup"], 22
            exchanges = [(int(min(100000, 2000 * rng.paretovariate(1.2))), rng.randrange(40, 120))]
        elif roll < 0.85:
            server, dport = self.server["mail"], rng.choice((25, 993))
            exchanges = [(rng.randrange(20, 150), rng.randrange(20, 300))
                         for _ in range(rng.randrange(2, 5))]
        else:
            server, dport = self.server["db"], 5432
            exchanges = [(rng.randrange(60, 300), rng.randrange(40, 700))
                         for _ in range(rng.randrange(1, 5))]
            rtt = rng.randrange(100000, 800000)
        # A big transfer late in the capture may not blow the byte budget by much.
        cap = max(4000, (MEAN_FRAME_BYTES * self.args.packets - self.wire_bytes) // 2)
        exchanges = [(min(ask, cap), min(answer, cap)) for ask, answer in exchanges]
        return self.tcp_conversation(client, server, dport, exchanges, rtt, close=close)

    def dns_event(self, version):
        rng = self.rng
        client = self.client(version)
        server = self.server["dns" if version == 4 else "dns6"]
        name = "%s%d.%s" % (rng.choice(("host", "db", "api", "cdn", "mail", "printer", "nas")),
                            rng.randrange(100), rng.choice(("corp.example", "lab.example.org",
                                                             "example.net")))
        qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".")) + b"\0"
        qtype = 1 if version == 4 or rng.random() < 0.3 else 28
        ident = rng.randrange(65536)
        query = struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)
        answers = rng.randrange(1, 4)
        records = b""
        for _ in range(answers):
            if qtype == 1:
                rdata = V4("10.0.%d.%d" % (rng.randrange(0, 40), rng.randrange(1, 250))).packed
            else:
                rdata = V6("fd00:1::%x" % rng.randrange(1, 65536)).packed
            records += struct.pack("!HHHIH", 0xC00C, qtype, 1, rng.randrange(30, 3600), len(rdata)) + rdata
        response = struct.pack("!HHHHHH", ident, 0x8180, 1, answers, 0, 0) + qname + \
            struct.pack("!HH", qtype, 1) + records
        sport = rng.randrange(1024, 65536)
        rtt = rng.randrange(100000, 5000000)
        t = self.place(rtt)
        self.emit(t, client, server, UDP, udp_datagram(client.addr, server.addr, sport, 53, query),
                  sport, 53, client.tags, "udp")
        self.emit(t + rtt, server, client, UDP, udp_datagram(server.addr, client.addr, 53, sport, response),
                  53, sport, client.tags, "udp")
        return 2

    def ntp_event(self):
        rng = self.rng
        version = 4 if rng.random() < 0.8 else 6
        client = self.client(version)
        server = self.server["ntp" if version == 4 else "ntp6"]
        sport = 123 if rng.random() < 0.5 else rng.randrange(1024, 65536)
        rtt = rng.randrange(100000, 3000000)
        t = self.place(rtt)
        request = b"\x23\x00\x06\xe8" + rng.randbytes(44)
        reply = b"\x24\x02\x06\xe8" + rng.randbytes(44)
        self.emit(t, client, server, UDP, udp_datagram(client.addr, server.addr, sport, 123, request),
                  sport, 123, client.tags, "udp")
        self.emit(t + rtt, server, client, UDP, udp_datagram(server.addr, client.addr, 123, sport, reply),
                  123, sport, client.tags, "udp")
        return 2

    def stream_event(self):
        """An RTP-like voice stream between two clients' high ports, 20 ms apart."""
        rng = self.rng
        version = 4 if rng.random() < 0.85 else 6
        a, b = self.client(version), self.client(version)
        if a is b:
            return 0
        ports = (rng.randrange(16384, 32768) & ~1, rng.randrange(16384, 32768) & ~1)
        count = rng.randrange(20, 120)
        size = rng.choice((32, 32, 32, 172))
        both = rng.random() < 0.6
        start = self.place(count * 20000000 + 1000000)
        emitted = 0
        for i in range(count):
            directions = ((a, b, ports), (b, a, ports[::-1])) if both else ((a, b, ports),)
            for k, (src, dst, (sp, dp)) in enumerate(directions):
                t = start + i * 20000000 + k * rng.randrange(1000000) + rng.randrange(300000)
                payload = b"\x80\x00" + rng.randbytes(size - 2)
                self.emit(t, src, dst, UDP, udp_datagram(src.addr, dst.addr, sp, dp, payload),
                          sp, dp, a.tags, "udp")
                emitted += 1
        return emitted

    def udp_misc_event(self):
        rng = self.rng
        version = 4 if rng.random() < 0.8 else 6
        a, b = self.client(version), self.client(version)
        if a is b:
            return 0
        sp, dp = rng.randrange(1024, 65536), rng.randrange(1024, 65536)
        count = 1 + int(rng.expovariate(1 / 4))
        start = self.place(count * 50000000)
        for i in range(count):
            forward = i % 2 == 0 or rng.random() < 0.3
            src, dst, s, d = (a, b, sp, dp) if forward else (b, a, dp, sp)
            size = int(min(1400, 10 + 30 * rng.paretovariate(1.5)))
            t = start + i * rng.randrange(1000000, 50000000)
            payload = bytes([rng.randrange(64)]) + rng.randbytes(size - 1)  # not RTP-like
            self.emit(t, src, dst, UDP, udp_datagram(src.addr, dst.addr, s, d, payload),
                      s, d, a.tags, "udp")
        return count

    def ping_event(self, version, record_route=False, hop_by_hop=False):
        rng = self.rng
        a = self.client(version)
        b = rng.choice([self.server["gateway"], self.server["web"], self.server["dns"]] if version == 4
                       else [self.server["web6"], self.server["dns6"]])
        count = rng.randrange(2, 6)
        start = self.place(count * 1000000000)
        ident = rng.randrange(65536)
        rtt = rng.randrange(100000, 2000000)
        for seq in range(1, count + 1):
            t = start + (seq - 1) * (1000000000 + rng.randrange(-2000000, 2000000) if seq > 1 else 0)
            payload = rng.randbytes(8) + bytes(range(0x10, 0x10 + 48))
            options = RECORD_ROUTE if record_route else b""
            extensions = (0,) if hop_by_hop else ()
            proto = ICMP if version == 4 else ICMPV6
            kind = "icmp" if version == 4 else "icmpv6"
            self.emit(t, a, b, proto, icmp_echo(a.addr, b.addr, False, ident, seq, payload), 0, 0,
                      a.tags, kind, v4_options=options, extensions=extensions, df=False)
            self.emit(t + rtt, b, a, proto, icmp_echo(b.addr, a.addr, True, ident, seq, payload), 0, 0,
                      a.tags, kind, v4_options=options, extensions=extensions, df=False)
        return 2 * count

    def fragment_event(self):
        """A large UDP datagram (NFS-like, port 2049) in 1480-byte IPv4 fragments."""
        rng = self.rng
        a, b = self.client(4), self.server["files"]
        sport = rng.randrange(600, 1024)
        datagram = udp_datagram(a.addr, b.addr, sport, 2049, rng.randbytes(rng.randrange(1600, 5000)))
        ident = a.next_ident()
        start = self.place(1000000)
        pieces = [datagram[i:i + 1480] for i in range(0, len(datagram), 1480)]
        for i, piece in enumerate(pieces):
            ip = ipv4_packet(a.addr, b.addr, UDP, piece, ident, a.ttl, df=False, frag_offset=i * 1480,
                             more_fragments=i < len(pieces) - 1)
            ports = (sport, 2049) if i == 0 else (0, 0)
            self.add_ip(start + i * 15000, a, b, ip, ports[0], ports[1], UDP, a.tags, "udp",
                        ["ipv4_fragment"] + (["ipv4_later_fragment"] if i else []))
        return len(pieces)

    def udp_options_event(self, version):
        """A few UDP packets with IPv4 Router Alert, or an IPv6 destination-options header."""
        rng = self.rng
        a, b = self.client(version), self.client(version)
        if a is b:
            return 0
        sp, dp = rng.randrange(1024, 65536), rng.choice((5004, 7400, 9000))
        count = rng.randrange(1, 4)
        start = self.place(count * 10000000)
        for i in range(count):
            payload = bytes([rng.randrange(64)]) + rng.randbytes(rng.randrange(20, 400))
            self.emit(start + i * 10000000, a, b, UDP, udp_datagram(a.addr, b.addr, sp, dp, payload),
                      sp, dp, a.tags, "udp", v4_options=ROUTER_ALERT if version == 4 else b"",
                      extensions=(60,) if version == 6 else (), df=False)
        return count

    def arp_event(self):
        rng = self.rng
        asker = self.client(4)
        if not str(asker.addr).startswith("10."):
            asker = self.server["files"]
        target = rng.choice((self.server["gateway"], self.server["web"], self.server["dns"]))
        t = self.place(1000000)

        def arp(op, sender, tha, receiver):
            return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sender.mac, sender.addr.packed,
                               tha, receiver.addr.packed)
        self.add_non_ip(t, asker.mac, BROADCAST, ETH_ARP, arp(1, asker, b"\0" * 6, target), "arp")
        self.add_non_ip(t + rng.randrange(50000, 500000), target.mac, asker.mac, ETH_ARP,
                        arp(2, target, asker.mac, asker), "arp")
        return 2

    def pppoe_event(self):
        rng = self.rng
        mac = b"\x02\x50" + rng.randbytes(4)
        host_uniq = rng.randbytes(4)
        tags = struct.pack("!HH", 0x0101, 0) + struct.pack("!HH", 0x0103, 4) + host_uniq
        padi = struct.pack("!BBHH", 0x11, 0x09, 0, len(tags)) + tags
        self.add_non_ip(self.place(1000), mac, BROADCAST, ETH_PPPOE_DISCOVERY, padi, "pppoe")
        return 1

    # ---- attacks ----
    def port_scan(self, ports_wanted):
        rng = self.rng
        scanner, target = self.scanner, self.server["scan_target"]
        open_ports = {22, 80, 443}
        ports = set(open_ports)
        while len(ports) < ports_wanted:
            ports.add(rng.randrange(1, 1025) if rng.random() < 0.7 else rng.randrange(1025, 65536))
        order = sorted(ports)
        rng.shuffle(order)
        window = min(2.0e9, 0.2 * self.duration_ns)
        start = int(0.2 * self.duration_ns)
        step = window / (len(order) + 1)
        sport = rng.randrange(40000, 60000)
        rtt = 300000
        filtered = set(rng.sample(sorted(ports - open_ports), max(1, len(ports) // 10)))
        syns = 0
        for i, port in enumerate(order):
            t = start + int(i * step) + rng.randrange(max(1, int(step / 2)))
            seq = rng.randrange(1 << 32)
            syn = tcp_segment(scanner.addr, target.addr, sport, port, seq, 0, SYN, 1024,
                              options=b"\x02\x04\x05\xb4")
            self.emit(t, scanner, target, TCP, syn, sport, port, (), "tcp")
            syns += 1
            if port in filtered:  # no answer: nmap retransmits once
                t2 = min(start + int(window) - 1, t + int(window * 0.05))
                self.emit(t2, scanner, target, TCP, syn, sport, port, (), "tcp")
                syns += 1
            elif port in open_ports:
                self.emit(t + rtt, target, scanner, TCP,
                          tcp_segment(target.addr, scanner.addr, port, sport, rng.randrange(1 << 32),
                                      seq + 1, SYN | ACK, 64240, options=b"\x02\x04\x05\xb4"),
                          port, sport, (), "tcp")
                self.emit(t + rtt + 20000, scanner, target, TCP,
                          tcp_segment(scanner.addr, target.addr, sport, port, seq + 1, 0, RST, 0),
                          sport, port, (), "tcp")
            else:
                self.emit(t + rtt, target, scanner, TCP,
                          tcp_segment(target.addr, scanner.addr, port, sport, 0, seq + 1, RST | ACK, 0),
                          port, sport, (), "tcp")
        self.scan_truth = {"source": str(scanner.addr), "target": str(target.addr),
                           "distinct_ports": len(ports), "syns": syns, "targets": 1,
                           "first_ns": self.args.start_ns + start,
                           "last_ns": self.args.start_ns + start + int(window)}

    def syn_flood(self, syns):
        rng = self.rng
        victim = self.flood_victim
        window = int(min(3.0e9, 0.3 * self.duration_ns))
        start = int(0.6 * self.duration_ns)
        times = sorted(rng.randrange(window) for _ in range(syns))
        sources = {}
        for t in times:
            key = "10.99.%d.%d" % (rng.randrange(256), rng.randrange(1, 255))
            src = sources.get(key)
            if src is None:
                src = sources[key] = Host(rng, key)
                src.ttl = rng.randrange(40, 250)
            sport = rng.randrange(1024, 65536)
            seq = rng.randrange(1 << 32)
            self.emit(start + t, src, victim, TCP,
                      tcp_segment(src.addr, victim.addr, sport, 80, seq, 0, SYN, rng.choice((512, 1024, 5840, 65535))),
                      sport, 80, (), "tcp")
            if rng.random() < 0.25:  # backscatter until the backlog fills
                self.emit(start + t + 80000, victim, src, TCP,
                          tcp_segment(victim.addr, src.addr, 80, sport, rng.randrange(1 << 32), seq + 1,
                                      SYN | ACK, 65160, options=b"\x02\x04\x05\xb4"),
                          80, sport, (), "tcp")
        self.flood_truth = {"victim": str(victim.addr), "port": 80, "syns": syns,
                            "sources": len(sources),
                            "first_ns": self.args.start_ns + start,
                            "last_ns": self.args.start_ns + start + window}

    # ---- the whole capture ----
    def generate(self):
        args = self.args
        if not args.no_attacks:
            scale = min(1.0, args.packets / ATTACK_REFERENCE_PACKETS)
            self.port_scan(max(50, round(500 * scale)))
            self.syn_flood(max(100, round(3000 * scale)))
        for _ in range(max(2, args.packets // 2500)):
            self.arp_event()
        self.pppoe_event()
        # Features that must be there even in a small capture, then the usual mix.
        self.fragment_event()
        self.udp_options_event(4)
        self.udp_options_event(6)
        self.ping_event(4, record_route=True)
        self.ping_event(6, hop_by_hop=True)
        mix = [
            ("tcp4", 25, lambda: self.tcp_event(4)),
            ("tcp6", 6, lambda: self.tcp_event(6)),
            ("dns4", 34, lambda: self.dns_event(4)),
            ("dns6", 6, lambda: self.dns_event(6)),
            ("ntp", 8, self.ntp_event),
            ("stream", 0.8, self.stream_event),
            ("udp", 7, self.udp_misc_event),
            ("ping4", 5, lambda: self.ping_event(4, record_route=self.rng.random() < 0.03)),
            ("ping6", 2, lambda: self.ping_event(6, hop_by_hop=self.rng.random() < 0.1)),
            ("fragments", 0.4, self.fragment_event),
            ("options4", 0.4, lambda: self.udp_options_event(4)),
            ("ext6", 0.4, lambda: self.udp_options_event(6)),
        ]
        small = [entry for entry in mix if entry[0] in ("dns4", "dns6", "ntp", "ping4", "ping6")]
        small.append(("tcp4_small", 25, lambda: self.tcp_event(4, small=True)))
        cumulative = list(itertools.accumulate(weight for _, weight, _ in mix))
        cumulative_small = list(itertools.accumulate(weight for _, weight, _ in small))
        # Heavy tails make the byte total swing from seed to seed; while the capture is over
        # its byte budget (MEAN_FRAME_BYTES a frame), only small-packet activities are added.
        while len(self.packets) < args.packets:
            if self.wire_bytes > MEAN_FRAME_BYTES * len(self.packets):
                pick = bisect.bisect(cumulative_small, self.rng.random() * cumulative_small[-1])
                small[pick][2]()
            else:
                pick = bisect.bisect(cumulative, self.rng.random() * cumulative[-1])
                mix[pick][2]()
        first = min(p.ts for p in self.packets)  # the first frame is at --start-ns
        for p in self.packets:
            p.ts -= first
        last = max(p.ts for p in self.packets)
        if last >= self.duration_ns:  # only with a very short --seconds: squeeze into it
            for p in self.packets:
                p.ts = p.ts * (self.duration_ns - 1) // last
        self.packets.sort(key=lambda p: (p.ts, p.order))


# ---- link layer and file formats ----
def frame_bytes(p, link):
    """The frame as captured on @link, or None when the link cannot carry it."""
    if link == "raw":
        return p.ip
    payload = p.ip if p.ip is not None else p.l2payload
    if link == "sll":
        packet_type = 1 if p.broadcast else 0
        return struct.pack("!HHH8sH", packet_type, 1, 6, p.smac + b"\0\0", p.ethertype) + payload
    header = p.dmac + p.smac
    for tpid, vid in p.tags:
        header += struct.pack("!HH", tpid, vid)
    frame = header + struct.pack("!H", p.ethertype) + payload
    if len(frame) < MIN_ETHERNET:
        frame += b"\0" * (MIN_ETHERNET - len(frame))
    return frame


def write_capture(out, packets, args):
    link = LINKTYPES[args.link]
    snaplen = args.snaplen or 262144
    start = args.start_ns
    kept = []
    with open(out, "wb") as f:
        if args.format == "pcap":
            magic = 0xA1B23C4D if args.nanosecond else 0xA1B2C3D4
            f.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, link))
        else:
            application = b"weir tools/gen_pcap.py"
            shb_options = struct.pack("<HH", 4, len(application)) + application + \
                b"\0" * (-len(application) % 4) + struct.pack("<HH", 0, 0)
            body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + shb_options
            f.write(struct.pack("<II", 0x0A0D0D0A, len(body) + 12) + body + struct.pack("<I", len(body) + 12))
            idb_options = b""
            if args.nanosecond:
                idb_options += struct.pack("<HHB3x", 9, 1, 9)
            idb_options += struct.pack("<HH", 0, 0)
            body = struct.pack("<HHI", link, 0, snaplen) + idb_options
            f.write(struct.pack("<II", 1, len(body) + 12) + body + struct.pack("<I", len(body) + 12))
        for p in packets:
            frame = frame_bytes(p, args.link)
            if frame is None:
                continue
            kept.append((p, len(frame), frame))
            ts = start + p.ts
            stored = frame[:snaplen]
            if args.format == "pcap":
                if args.nanosecond:
                    sec, frac = divmod(ts, 1000000000)
                else:
                    sec, frac = divmod(ts // 1000, 1000000)
                f.write(struct.pack("<IIII", sec, frac, len(stored), len(frame)) + stored)
            else:
                units = ts if args.nanosecond else ts // 1000
                pad = b"\0" * (-len(stored) % 4)
                total = 32 + len(stored) + len(pad)
                f.write(struct.pack("<IIIIIII", 6, total, 0, units >> 32, units & 0xFFFFFFFF,
                                    len(stored), len(frame)) + stored + pad + struct.pack("<I", total))
    return kept


# ---- ground truth ----
def compute_truth(kept, gen, args):
    hosts, conversations, five_tuples = {}, {}, {}
    summary = {"ipv4": 0, "ipv6": 0, "tcp": 0, "udp": 0, "icmp": 0, "icmpv6": 0, "arp": 0,
               "pppoe": 0, "vlan_tagged": 0, "qinq": 0, "ipv4_options": 0, "ipv4_fragment": 0,
               "ipv4_later_fragment": 0, "ipv6_extension_headers": 0}
    frames = total_bytes = non_ip = 0
    victim = gen.flood_victim.addr
    victim_syns, victim_syn_sources = 0, set()
    for p, wire, frame in kept:
        frames += 1
        total_bytes += wire
        summary[p.kind] += 1
        if p.tags and args.link == "ethernet":
            summary["vlan_tagged"] += 1
            if len(p.tags) > 1:
                summary["qinq"] += 1
        if p.ip is None:
            non_ip += 1
            continue
        summary["ipv4" if p.src.version == 4 else "ipv6"] += 1
        if p.dst == victim and p.tcp_flags & (SYN | ACK) == SYN:
            victim_syns += 1
            victim_syn_sources.add(p.src)
        for feature in p.features:
            summary[feature] += 1
        s, d = str(p.src), str(p.dst)
        for addr, sent in ((s, True), (d, False)):
            h = hosts.get(addr)
            if h is None:
                h = hosts[addr] = {"packets_sent": 0, "bytes_sent": 0, "packets_received": 0,
                                   "bytes_received": 0}
            if sent:
                h["packets_sent"] += 1
                h["bytes_sent"] += wire
            else:
                h["packets_received"] += 1
                h["bytes_received"] += wire
        forward = sort_key(p.src) <= sort_key(p.dst)
        key = "%s|%s" % ((s, d) if forward else (d, s))
        c = conversations.get(key)
        if c is None:
            c = conversations[key] = {"packets": 0, "bytes": 0, "packets_a_to_b": 0, "bytes_a_to_b": 0,
                                      "packets_b_to_a": 0, "bytes_b_to_a": 0}
        c["packets"] += 1
        c["bytes"] += wire
        direction = "a_to_b" if forward else "b_to_a"
        c["packets_" + direction] += 1
        c["bytes_" + direction] += wire
        key = "%s|%s|%d|%d|%d" % (s, d, p.sport, p.dport, p.proto)
        f = five_tuples.get(key)
        if f is None:
            f = five_tuples[key] = {"packets": 0, "bytes": 0}
        f["packets"] += 1
        f["bytes"] += wire
    flood = gen.flood_truth
    if flood is not None:  # all SYNs without ACK to the victim, the flood's and normal ones
        flood = dict(flood, victim_syns_total=victim_syns, victim_syn_sources=len(victim_syn_sources))
    return {"frames": frames, "bytes": total_bytes, "non_ip_frames": non_ip, "hosts": hosts,
            "conversations": conversations, "five_tuples": five_tuples,
            "scan": gen.scan_truth, "syn_flood": flood, "summary": summary,
            "capture": {"format": args.format, "link": args.link, "linktype": LINKTYPES[args.link],
                        "nanosecond": bool(args.nanosecond), "seed": args.seed,
                        "seconds": args.seconds, "start_ns": args.start_ns,
                        "snaplen": args.snaplen or 262144}}


def dump_truth(truth):
    """Sorted JSON with one host / conversation / 5-tuple per line (diffs stay readable)."""
    lines = ["{"]
    items = sorted(truth.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key in ("hosts", "conversations", "five_tuples"):
            lines.append("  %s: {" % json.dumps(key))
            entries = sorted(value.items())
            for j, (k, v) in enumerate(entries):
                lines.append("    %s: %s%s" % (json.dumps(k), json.dumps(v, sort_keys=True, separators=(",", ":")),
                                                "," if j < len(entries) - 1 else ""))
            lines.append("  }" + comma)
        else:
            lines.append("  %s: %s%s" % (json.dumps(key), json.dumps(value, sort_keys=True), comma))
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="capture file to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0, help="capture duration (default 10)")
    parser.add_argument("--packets", type=int, default=20000, help="approximate total (default 20000)")
    parser.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    parser.add_argument("--link", choices=tuple(LINKTYPES), default="ethernet")
    parser.add_argument("--nanosecond", action="store_true",
                        help="nanosecond timestamps (pcap magic 0xa1b23c4d; pcapng if_tsresol=9)")
    parser.add_argument("--start-ns", type=int, default=1700000000000000000,
                        help="the first frame's timestamp, ns since the epoch (cut to the "
                             "microsecond without --nanosecond)")
    parser.add_argument("--snaplen", type=int, default=0,
                        help="store at most N >= 128 bytes of each frame (every header still fits, "
                             "so the truth is the same); default: whole frames")
    parser.add_argument("--truth", help="write the ground truth here (JSON)")
    parser.add_argument("--no-attacks", action="store_true", help="leave out the port scan and SYN flood")
    parser.add_argument("--quiet", action="store_true", help="no summary on stderr")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.packets < 1 or args.start_ns < 0 or not 0 <= args.snaplen <= 262144 \
            or 0 < args.snaplen < 128:
        parser.error("--seconds and --packets must be positive, --start-ns >= 0, --snaplen 128..262144")
    if args.seconds < 0.01:
        parser.error("--seconds must be at least 0.01")

    gen = Generator(args)
    gen.generate()
    kept = write_capture(args.out, gen.packets, args)
    truth = compute_truth(kept, gen, args)
    if args.truth:
        with open(args.truth, "w") as f:
            f.write(dump_truth(truth))
    if not args.quiet:
        s = truth["summary"]
        print("gen_pcap: %d frames, %d bytes, %d hosts, %d conversations, %d 5-tuples; %s"
              % (truth["frames"], truth["bytes"], len(truth["hosts"]), len(truth["conversations"]),
                 len(truth["five_tuples"]), ", ".join("%s %d" % kv for kv in s.items())), file=sys.stderr)
        if gen.scan_truth:
            print("gen_pcap: scan %s -> %s, %d ports; SYN flood -> %s:80, %d SYNs from %d sources"
                  % (gen.scan_truth["source"], gen.scan_truth["target"], gen.scan_truth["distinct_ports"],
                     gen.flood_truth["victim"], gen.flood_truth["syns"], gen.flood_truth["sources"]),
                  file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
