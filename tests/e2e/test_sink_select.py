#!/usr/bin/env python3
"""Goal: the sink's row selection is exact and deterministic: a per-window top-k picks the
same rows whatever the number of workers and the order rows arrive in, also when ranks tie
(ties go to the row whose bytes compare lower), and a minimum over several columns keeps
only rows where every named column reaches it.

Method: a capture written here (Ethernet / IPv4 / UDP) where eight sources each send the
same number of equally long packets (every rank ties) and three more send more (clear
winners), in one window.  `weir flows --group src --window whole --top K` through 1, 2 and 4
workers, three runs each, must print the same rows; the clear winners come first, and the
tied places go to the lowest addresses.  Then `--group conversation --min
packets_a_to_b,packets_b_to_a=2`: conversations built to pass in one direction only must be
dropped, the one passing in both kept.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

from e2e import failures, check

WEIR = os.path.abspath(sys.argv[1])


def udp_frame(src, dst, payload_length):
    payload = bytes(payload_length)
    udp = struct.pack(">HHHH", 5000, 53, 8 + payload_length, 0) + payload
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes(src), bytes(dst)) + udp
    return b"\x02\x00\x00\x00\x00\x01" + b"\x02\x00\x00\x00\x00\x02" + b"\x08\x00" + ip


def write_capture(path, senders, replies=(), peers=()):
    """senders: [(source address tuple, packets, payload bytes)] to 192.168.0.1, or, with
    @peers, each to its peer; @replies: the same from each peer back.  Returns {src:
    (packets, bytes on the wire)}."""
    truth = {}
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        at_us = 0
        streams = [(s, peers[k] if peers else (192, 168, 0, 1), n, size)
                 for k, (s, n, size) in enumerate(senders)]
        streams += [(s, senders[k][0], n, size) for k, (s, n, size) in enumerate(replies)]
        for source, destination, packets, payload in streams:
            for _ in range(packets):
                frame = udp_frame(source, destination, payload)
                out.write(struct.pack("<IIII", 1700000000 + at_us // 1000000,
                                      at_us % 1000000, len(frame), len(frame)))
                out.write(frame)
                at_us += 10
                text = ".".join(str(b) for b in source)
                got = truth.get(text, (0, 0))
                truth[text] = (got[0] + 1, got[1] + len(frame))
    return truth


def flows(*options):
    run = subprocess.run([WEIR, "flows", "--no-pin", "--quiet", *options], capture_output=True,
                         text=True, timeout=120)
    check(run.returncode == 0, f"weir flows {' '.join(options)}: exit {run.returncode}: "
          f"{run.stderr[-300:]}")
    return [json.loads(line) for line in run.stdout.splitlines() if line.strip()]


def main():
    with tempfile.TemporaryDirectory(prefix="weir-select-") as directory:
        capture = os.path.join(directory, "ties.pcap")
        tied = [((10, 0, 0, 9 - k), 4, 100) for k in range(8)]
        winners = [((10, 1, 0, k), 6 + k, 100) for k in range(3)]
        truth = write_capture(capture, tied + winners)

        for top in (1, 3, 5):
            seen = set()
            for workers in (1, 2, 4):
                for _ in range(3):
                    rows = flows("--pcap", capture, "--group", "src", "--window", "whole",
                                 "--top", str(top), "--rank", "packets", "--workers",
                                 str(workers))
                    check(len(rows) == top, f"--top {top}: {len(rows)} rows")
                    seen.add(tuple(r["src"] for r in rows))
            check(len(seen) == 1, f"--top {top}: the rows depend on the run: {sorted(seen)}")
            chosen = next(iter(seen))
            # The clear winners by rank, then the tied sources with the lowest addresses.
            expected = ["10.1.0.2", "10.1.0.1", "10.1.0.0", "10.0.0.2", "10.0.0.3"][:top]
            check(list(chosen) == expected, f"--top {top}: {chosen}, expected {expected}")
            for src in chosen:
                check(src in truth, f"--top {top}: unknown source {src}")
        print("ok: top-k is the same through 1, 2 and 4 workers, ties included")

        # Passing on one column is not enough: --min names both directions of a
        # conversation (a threshold of 2: a reply, and more than one packet each way).
        capture = os.path.join(directory, "min.pcap")
        a, b, c, d, e, f = [(10, 2, 0, k) for k in range(1, 7)]
        write_capture(capture, [(a, 10, 20), (c, 3, 20), (e, 1, 20)],
                      [(b, 1, 20), (d, 3, 20), (f, 5, 20)], [b, d, f])
        rows = flows("--pcap", capture, "--group", "conversation", "--window", "whole",
                     "--min", "packets_a_to_b,packets_b_to_a=2")
        got = sorted((r["addr_a"], r["addr_b"]) for r in rows)
        check(got == [("10.2.0.3", "10.2.0.4")],
              f"--min packets_a_to_b,packets_b_to_a=2: {got}")
        rows = flows("--pcap", capture, "--group", "conversation", "--window", "whole",
                     "--min", "packets_a_to_b=2", "--top", "10", "--rank", "packets")
        got = sorted((r["addr_a"], r["addr_b"]) for r in rows)
        check(got == [("10.2.0.1", "10.2.0.2"), ("10.2.0.3", "10.2.0.4")],
              f"--min packets_a_to_b=2 --top 10: {got}")
        bad = subprocess.run([WEIR, "flows", "--no-pin", "--pcap", capture, "--group", "src",
                              "--window", "whole", "--min", "packets,nosuch=1"],
                             capture_output=True, text=True, timeout=60)
        check(bad.returncode == 2 and "nosuch" in bad.stderr,
              f"an unknown --min column: exit {bad.returncode}: {bad.stderr[-200:]}")
        print("ok: --min over several columns keeps rows passing on all of them")
    if failures:
        print(f"{len(failures)} failures")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
