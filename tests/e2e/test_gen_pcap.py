#!/usr/bin/env python3
"""Goal: tools/gen_pcap.py writes captures that other readers see exactly as its ground truth
says, in every format, link type and timestamp resolution, and the bundled data/sample.pcap
is what the documented command makes and what data/sample.truth.json describes.

Method: generate small captures (pcap and pcapng; Ethernet, Linux cooked and raw IP;
microsecond and nanosecond timestamps; one with a 128-byte snap length) into a temporary
directory, each with --truth.  Recount every capture with a small pcap/pcapng reader written
here (separate from the generator's code): file header, magic, link type and timestamp
resolution, timestamps sorted and inside the capture, IPv4 header checksums, then frames,
bytes (original length), non-IP frames, per host, per conversation (both directions), per
5-tuple, the scan's distinct ports and the flood's SYNs, all compared exactly with the truth.
When tshark is installed the same counts are made a second time from `tshark -T fields`
(IPv4 reassembly off, so that later fragments stay what they are); when it is not, a line
says so and only the reader here counts.  Last, the documented command is run again and must
give data/sample.pcap and data/sample.truth.json byte for byte, and data/sample.pcap is
recounted against data/sample.truth.json the same two ways.

Usage: test_gen_pcap.py PATH/TO/weir   (the weir path is not used; WEIR_SOURCE_ROOT: the
repository root).  Exit 0 when every check passes; otherwise 1, one message per failed check.
"""
import collections
import ipaddress
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from e2e import failures, fail, ok

ROOT = os.environ.get("WEIR_SOURCE_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
GEN = os.path.join(ROOT, "tools", "gen_pcap.py")
SAMPLE_ARGS = ["--seed", "1", "--seconds", "10", "--packets", "20000"]
SAMPLE_COMMAND = ("python3 tools/gen_pcap.py --out data/sample.pcap --truth data/sample.truth.json "
                  "--seed 1 --seconds 10 --packets 20000")
ALLOWED = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "192.168.0.0/16", "fd00::/8", "2001:db8::/32")]


# ---- an independent reader ----
def read_frames(path):
    """(info, [(ts_ns, orig_len, data)]) for a pcap or pcapng file."""
    with open(path, "rb") as f:
        blob = f.read()
    magic = blob[:4]
    frames = []
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = "<" if magic[0] in (0xD4, 0x4D) else ">"
        nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
        _, major, minor, _, _, snaplen, linktype = struct.unpack(end + "IHHiIII", blob[:24])
        pos = 24
        while pos + 16 <= len(blob):
            sec, frac, caplen, origlen = struct.unpack(end + "IIII", blob[pos:pos + 16])
            data = blob[pos + 16:pos + 16 + caplen]
            frames.append((sec * 1000000000 + frac * (1 if nano else 1000), origlen, data))
            pos += 16 + caplen
        info = {"format": "pcap", "nanosecond": nano, "linktype": linktype, "version": (major, minor),
                "snaplen": snaplen, "trailing": len(blob) - pos}
        return info, frames
    if magic != b"\x0a\x0d\x0d\x0a":
        raise ValueError("not a pcap or pcapng file")
    end = "<" if blob[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
    interfaces = []  # (linktype, ns per unit)
    pos = 0
    info = {"format": "pcapng", "blocks": collections.Counter()}
    while pos + 12 <= len(blob):
        block_type, length = struct.unpack(end + "II", blob[pos:pos + 8])
        if length < 12 or pos + length > len(blob) or \
                struct.unpack(end + "I", blob[pos + length - 4:pos + length])[0] != length:
            raise ValueError(f"bad pcapng block at {pos}")
        body = blob[pos + 8:pos + length - 4]
        info["blocks"][block_type] += 1
        if block_type == 1:
            linktype, _, snaplen = struct.unpack(end + "HHI", body[:8])
            unit, opt = 1000, 8
            while opt + 4 <= len(body):
                code, olen = struct.unpack(end + "HH", body[opt:opt + 4])
                if code == 0:
                    break
                if code == 9:
                    r = body[opt + 4]
                    unit = 2 ** -(r & 0x7F) * 1e9 if r & 0x80 else 10 ** (9 - r)
                opt += 4 + olen + (-olen % 4)
            interfaces.append((linktype, unit))
        elif block_type == 6:
            iface, hi, lo, caplen, origlen = struct.unpack(end + "IIIII", body[:20])
            frames.append((((hi << 32) | lo) * interfaces[iface][1], origlen, body[20:20 + caplen]))
        pos += length
    info["linktype"] = interfaces[0][0] if interfaces else None
    info["nanosecond"] = bool(interfaces) and interfaces[0][1] == 1
    info["interfaces"] = len(interfaces)
    info["trailing"] = len(blob) - pos
    return info, frames


def ones_complement(data):
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def parse(linktype, data):
    """One frame -> None (not IP) or dict(src, dst, sport, dport, proto, flags, v4_checksum_ok)."""
    if linktype == 1:
        pos, ethertype = 14, struct.unpack("!H", data[12:14])[0]
        while ethertype in (0x8100, 0x88A8, 0x9100):
            ethertype = struct.unpack("!H", data[pos + 2:pos + 4])[0]
            pos += 4
    elif linktype == 113:
        pos, ethertype = 16, struct.unpack("!H", data[14:16])[0]
    elif linktype == 101:
        pos, ethertype = 0, {4: 0x0800, 6: 0x86DD}.get(data[0] >> 4, 0)
    else:
        raise ValueError(f"link type {linktype}")
    ip = data[pos:]
    out = {"sport": 0, "dport": 0, "flags": 0, "checksum_ok": True, "later_fragment": False}
    if ethertype == 0x0800:
        ihl = (ip[0] & 0x0F) * 4
        out["checksum_ok"] = ones_complement(ip[:ihl]) == 0xFFFF
        out["src"], out["dst"] = ipaddress.IPv4Address(ip[12:16]), ipaddress.IPv4Address(ip[16:20])
        proto, frag = ip[9], struct.unpack("!H", ip[6:8])[0] & 0x1FFF
        l4 = ip[ihl:]
        out["later_fragment"] = frag != 0
    elif ethertype == 0x86DD:
        out["src"], out["dst"] = ipaddress.IPv6Address(ip[8:24]), ipaddress.IPv6Address(ip[24:40])
        proto, l4, frag = ip[6], ip[40:], 0
        while proto in (0, 43, 60, 44):
            if proto == 44:
                frag = struct.unpack("!H", l4[2:4])[0] >> 3
                proto, l4 = l4[0], l4[8:]
            else:
                proto, l4 = l4[0], l4[(l4[1] + 1) * 8:]
    else:
        return None
    out["proto"] = proto
    if frag == 0 and proto in (6, 17) and len(l4) >= 4:
        out["sport"], out["dport"] = struct.unpack("!HH", l4[:4])
        if proto == 6 and len(l4) >= 14:
            out["flags"] = l4[13]
    return out


def mapped(addr):
    return addr.packed if addr.version == 6 else b"\0" * 10 + b"\xff\xff" + addr.packed


class Recount:
    """Counts the truth file's numbers from (wire length, src, dst, sport, dport, proto, flags)."""

    def __init__(self):
        self.frames = self.bytes = self.non_ip = 0
        self.hosts = collections.defaultdict(lambda: collections.Counter())
        self.conversations = collections.defaultdict(lambda: collections.Counter())
        self.five = collections.defaultdict(lambda: collections.Counter())
        self.syn_ports = collections.defaultdict(set)  # (src, dst) -> dports of SYN without ACK
        self.syn_count = collections.Counter()  # (src, dst, dport) -> SYNs without ACK

    def add(self, wire, src=None, dst=None, sport=0, dport=0, proto=0, flags=0):
        self.frames += 1
        self.bytes += wire
        if src is None:
            self.non_ip += 1
            return
        s, d = str(src), str(dst)
        self.hosts[s].update(packets_sent=1, bytes_sent=wire)
        self.hosts[d].update(packets_received=1, bytes_received=wire)
        forward = mapped(src) <= mapped(dst)
        c = self.conversations["%s|%s" % ((s, d) if forward else (d, s))]
        direction = "a_to_b" if forward else "b_to_a"
        c.update({"packets": 1, "bytes": wire, "packets_" + direction: 1, "bytes_" + direction: wire})
        self.five["%s|%s|%d|%d|%d" % (s, d, sport, dport, proto)].update(packets=1, bytes=wire)
        if proto == 6 and flags & 0x12 == 0x02:
            self.syn_ports[(s, d)].add(dport)
            self.syn_count[(s, d, dport)] += 1

    def compare(self, label, truth):
        problems = []
        for key, mine in (("frames", self.frames), ("bytes", self.bytes), ("non_ip_frames", self.non_ip)):
            if truth[key] != mine:
                problems.append(f"{key}: truth {truth[key]}, counted {mine}")
        for key, mine in (("hosts", self.hosts), ("conversations", self.conversations),
                          ("five_tuples", self.five)):
            theirs = truth[key]
            mine = {k: {f: v for f, v in c.items() if v} for k, c in mine.items()}
            theirs_nz = {k: {f: v for f, v in c.items() if v} for k, c in theirs.items()}
            if mine != theirs_nz:
                missing = sorted(set(theirs_nz) - set(mine))[:3]
                extra = sorted(set(mine) - set(theirs_nz))[:3]
                differ = [k for k in sorted(set(mine) & set(theirs_nz)) if mine[k] != theirs_nz[k]][:3]
                problems.append(f"{key}: {len(theirs)} in truth, {len(mine)} counted; only in truth "
                                f"{missing}, only counted {extra}, different "
                                f"{[(k, theirs_nz[k], mine[k]) for k in differ]}")
        scan = truth.get("scan")
        if scan:
            ports = len(self.syn_ports.get((scan["source"], scan["target"]), ()))
            syns = sum(n for (s, d, _), n in self.syn_count.items()
                       if s == scan["source"] and d == scan["target"])
            if ports != scan["distinct_ports"] or syns != scan["syns"]:
                problems.append(f"scan: truth {scan['distinct_ports']} ports / {scan['syns']} SYNs, "
                                f"counted {ports} / {syns}")
        flood = truth.get("syn_flood")
        if flood:
            victim, port = flood["victim"], flood["port"]
            spoofed = sum(n for (s, d, p), n in self.syn_count.items()
                          if d == victim and p == port and s.startswith("10.99."))
            total = sum(n for (s, d, p), n in self.syn_count.items() if d == victim)
            if spoofed != flood["syns"] or total != flood["victim_syns_total"]:
                problems.append(f"syn_flood: truth {flood['syns']} spoofed / {flood['victim_syns_total']} "
                                f"SYNs to the victim, counted {spoofed} / {total}")
        if problems:
            for problem in problems:
                fail(label, problem)
        else:
            ok(label, f"{self.frames} frames, {self.bytes} bytes, {len(self.hosts)} hosts, "
                      f"{len(self.conversations)} conversations, {len(self.five)} 5-tuples")
        return not problems


def recount_here(label, path, truth, expect):
    try:
        info, frames = read_frames(path)
    except (ValueError, struct.error, IndexError) as e:
        fail(label, f"reader: {e}")
        return
    header_problems = []
    for key, value in expect.items():
        if info.get(key) != value:
            header_problems.append(f"{key} is {info.get(key)!r}, expected {value!r}")
    if info["trailing"]:
        header_problems.append(f"{info['trailing']} bytes after the last record")
    if info["format"] == "pcapng" and (info["blocks"][0x0A0D0D0A] != 1 or info["blocks"][1] != 1):
        header_problems.append(f"pcapng blocks {dict(info['blocks'])}: want one SHB and one IDB")
    start, seconds = truth["capture"]["start_ns"], truth["capture"]["seconds"]
    times = [ts for ts, _, _ in frames]
    if times != sorted(times):
        header_problems.append("timestamps not sorted")
    first = start if info["nanosecond"] else start - start % 1000
    if times and (times[0] != first or times[-1] >= start + round(seconds * 1e9)):
        header_problems.append(f"timestamps {times[0]}..{times[-1]}: want the first at {first}, "
                               f"all before {start} + {seconds} s")
    if info["format"] == "pcap" and any(len(d) != min(o, info["snaplen"]) for _, o, d in frames):
        header_problems.append("a captured length is not min(original length, snap length)")
    if "snaplen" in expect and not any(len(d) < o for _, o, d in frames):
        header_problems.append("no frame was cut by the snap length")
    recount = Recount()
    bad_checksums = outside = 0
    for _, wire, data in frames:
        parsed = parse(info["linktype"], data)
        if parsed is None:
            recount.add(wire)
            continue
        if not parsed["checksum_ok"]:
            bad_checksums += 1
        if not any(parsed["src"] in n for n in ALLOWED) or not any(parsed["dst"] in n for n in ALLOWED):
            outside += 1
        recount.add(wire, parsed["src"], parsed["dst"], parsed["sport"], parsed["dport"], parsed["proto"],
                    parsed["flags"])
    if bad_checksums:
        header_problems.append(f"{bad_checksums} IPv4 header checksums wrong")
    if outside:
        header_problems.append(f"{outside} packets with an address outside the private/documentation ranges")
    for problem in header_problems:
        fail(label + " file", problem)
    recount.compare(label + " (reader here)", truth)


def recount_tshark(label, path, truth):
    fields = ["frame.len", "ip.src", "ip.dst", "ipv6.src", "ipv6.dst", "ip.proto", "tcp.srcport",
              "tcp.dstport", "tcp.flags", "udp.srcport", "udp.dstport", "icmp.type", "icmpv6.type"]
    command = ["tshark", "-n", "-r", path, "-o", "ip.defragment:FALSE", "-o", "tcp.desegment_tcp_streams:FALSE",
               "-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]
    for field in fields:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        fail(label + " (tshark)", f"exit {result.returncode}: {result.stderr.strip()[-500:]}")
        return
    recount = Recount()
    for line in result.stdout.splitlines():
        row = dict(zip(fields, line.split("\t")))
        wire = int(row["frame.len"])
        if row.get("ip.src"):
            src, dst = ipaddress.ip_address(row["ip.src"]), ipaddress.ip_address(row["ip.dst"])
        elif row.get("ipv6.src"):
            src, dst = ipaddress.ip_address(row["ipv6.src"]), ipaddress.ip_address(row["ipv6.dst"])
        else:
            recount.add(wire)
            continue
        if row.get("tcp.srcport"):
            proto, sport, dport = 6, int(row["tcp.srcport"]), int(row["tcp.dstport"])
        elif row.get("udp.srcport"):
            proto, sport, dport = 17, int(row["udp.srcport"]), int(row["udp.dstport"])
        elif row.get("icmp.type"):
            proto, sport, dport = 1, 0, 0
        elif row.get("icmpv6.type"):
            proto, sport, dport = 58, 0, 0
        else:  # a later fragment: no transport header
            proto, sport, dport = int(row["ip.proto"]), 0, 0
        flags = int(row["tcp.flags"], 16) if row.get("tcp.flags") else 0
        recount.add(wire, src, dst, sport, dport, proto, flags)
    recount.compare(label + " (tshark)", truth)


def generate(tmp, name, extra):
    out, truth = os.path.join(tmp, name), os.path.join(tmp, name + ".json")
    result = subprocess.run([sys.executable, GEN, "--out", out, "--truth", truth, "--quiet"] + extra,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        fail(name, f"gen_pcap.py {' '.join(extra)}: exit {result.returncode}: {result.stderr.strip()[-500:]}")
        return None, None
    with open(truth) as f:
        return out, json.load(f)


def main():
    tshark = shutil.which("tshark")
    if tshark:
        ok("tshark", tshark)
    else:
        print("tshark is not installed: counting with the reader in this test only "
              "(apt-get install tshark for the second, independent count)", flush=True)
    with tempfile.TemporaryDirectory(prefix="weir-gen-pcap-") as tmp:
        variants = []
        seed = 11
        for fmt in ("pcap", "pcapng"):
            for link in ("ethernet", "sll", "raw"):
                for nano in (False, True):
                    seed += 1
                    extra = ["--seed", str(seed), "--seconds", "3", "--packets", "1500", "--format", fmt,
                             "--link", link, "--start-ns", str(1600000000123456789 + seed)]
                    if nano:
                        extra.append("--nanosecond")
                    if seed % 3 == 0:
                        extra.append("--no-attacks")
                    linktype = {"ethernet": 1, "sll": 113, "raw": 101}[link]
                    variants.append((f"{fmt}-{link}-{'ns' if nano else 'us'}", extra,
                                     {"format": fmt, "linktype": linktype, "nanosecond": nano}))
        variants.append(("pcap-ethernet-snaplen128", ["--seed", "5", "--seconds", "2", "--packets", "1000",
                                                     "--snaplen", "128"],
                         {"format": "pcap", "linktype": 1, "nanosecond": False, "snaplen": 128}))
        for name, extra, expect in variants:
            path, truth = generate(tmp, name, extra)
            if path is None:
                continue
            if ("--no-attacks" in extra) != (truth["scan"] is None):
                fail(name, "--no-attacks and the truth's scan disagree")
            recount_here(name, path, truth, expect)
            if tshark:
                recount_tshark(name, path, truth)

        # Determinism: the same arguments give the same bytes.
        again = os.path.join(tmp, "again")
        os.mkdir(again)
        path2, _ = generate(again, "pcapng-sll-ns", dict((v[0], v[1]) for v in variants)["pcapng-sll-ns"])
        if path2:
            with open(os.path.join(tmp, "pcapng-sll-ns"), "rb") as a, open(path2, "rb") as b:
                if a.read() != b.read():
                    fail("determinism", "same arguments, different bytes")
                else:
                    ok("determinism", "same arguments, same bytes")

        # The bundled sample.
        sample = os.path.join(ROOT, "data", "sample.pcap")
        sample_truth = os.path.join(ROOT, "data", "sample.truth.json")
        with open(os.path.join(ROOT, "data", "README.md")) as f:
            if SAMPLE_COMMAND not in f.read():
                fail("sample", f"data/README.md does not give the command: {SAMPLE_COMMAND}")
        path, truth = generate(tmp, "sample.pcap", SAMPLE_ARGS)
        if path:
            for mine, bundled in ((path, sample), (path + ".json", sample_truth)):
                with open(mine, "rb") as a, open(bundled, "rb") as b:
                    if a.read() != b.read():
                        fail("sample", f"{os.path.relpath(bundled, ROOT)} is not what the documented "
                                       f"command makes: regenerate with {SAMPLE_COMMAND}")
                    else:
                        ok("sample", f"{os.path.relpath(bundled, ROOT)} regenerates byte for byte")
        with open(sample_truth) as f:
            truth = json.load(f)
        size = os.path.getsize(sample)
        if size > 3200000:
            fail("sample", f"data/sample.pcap is {size} bytes: keep it near 3 MB")
        if not truth["scan"] or truth["scan"]["distinct_ports"] < 400 or \
                not truth["syn_flood"] or truth["syn_flood"]["syns"] < 2500:
            fail("sample", f"the scan or the flood is missing: {truth['scan']} {truth['syn_flood']}")
        s = truth["summary"]
        for key in ("ipv6", "icmp", "icmpv6", "arp", "pppoe", "vlan_tagged", "qinq", "ipv4_options",
                    "ipv4_later_fragment", "ipv6_extension_headers"):
            if not s.get(key):
                fail("sample", f"no {key} frames in data/sample.pcap")
        recount_here("data/sample.pcap", sample, truth, {"format": "pcap", "linktype": 1, "nanosecond": False})
        if tshark:
            recount_tshark("data/sample.pcap", sample, truth)

    if failures:
        print(f"{len(failures)} check(s) failed", flush=True)
        return 1
    print("all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
