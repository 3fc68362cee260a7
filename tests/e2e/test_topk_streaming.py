#!/usr/bin/env python3
"""Goal: a top-k sink writes each window's top rows while the job runs, once every worker's
clock has passed the window (and its allowed lateness), not only when the input ends: a
monitoring box on a live port prints its top talkers every window.  What it writes must be
what the end-of-run ranking wrote: each window once, in window order, its rows ranked.

Method:
- Live: `weir flows --dpdk` on net_pcap with infinite_rx (the port never ends; event time
  is the receive time), `--group host --window 1s --top 3`.  While it runs, the output file
  must come to hold rows of at least two windows (waited for up to 90 s); then SIGINT ends
  it.  The file must then hold whole windows in increasing order, at most 3 rows each,
  ranked by bytes.
- Finite: a capture written here with 6 one-second windows, each with its own ranking of
  ten hosts, through `--pcap` with 1 and 2 workers and `--top 2`: the rows must be those a
  count in Python ranks first, window by window, the same for both worker counts.
"""
import json
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time

from e2e import failures, check, tail

WEIR = os.path.abspath(sys.argv[1])
ROOT = os.environ.get("WEIR_SOURCE_ROOT",
                      os.path.dirname(os.path.dirname(os.path.dirname(
                          os.path.abspath(__file__)))))


def read_rows(path):
    """The complete JSON lines of @path (a line still being written is left out)."""
    try:
        with open(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if line]


def check_windows(rows, top, label):
    """Whole windows in increasing order, at most @top rows each, ranked by bytes."""
    starts = []
    for row in rows:
        if not starts or starts[-1] != row["window_start"]:
            starts.append(row["window_start"])
    check(starts == sorted(set(starts)),
          f"{label}: windows must come once each, in order: {starts[:10]}")
    for start in starts:
        ranks = [row["bytes"] for row in rows if row["window_start"] == start]
        check(len(ranks) <= top, f"{label}: window {start} has {len(ranks)} rows > {top}")
        check(ranks == sorted(ranks, reverse=True),
              f"{label}: window {start} is not ranked by bytes: {ranks}")
    return starts


def live(directory):
    out = os.path.join(directory, "live.jsonl")
    sample = os.path.join(ROOT, "data", "sample.pcap")
    eal = (f"--no-huge --no-shconf -m 512 --no-pci --log-level=error "
           f"--file-prefix=weirtopk{os.getpid()} "
           f"--vdev net_pcap0,rx_pcap={sample},infinite_rx=1")
    process = subprocess.Popen([WEIR, "flows", "--no-pin", "--quiet", "--dpdk", eal,
                                "--group", "host", "--window", "1s", "--top", "3",
                                "--out", out], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    windows_while_running = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        rows = read_rows(out)
        windows_while_running = sorted({row["window_start"] for row in rows})
        if len(windows_while_running) >= 2:
            break
        time.sleep(0.2)
    still_running = process.poll() is None
    if still_running:
        process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        check(False, "live: weir did not stop within 60 s of SIGINT")
        return
    check(still_running, f"live: weir ended on its own (status {process.returncode}):\n"
          f"{tail(err)}")
    check(len(windows_while_running) >= 2,
          f"live: rows of {len(windows_while_running)} windows came while the port ran "
          f"(90 s); top-k rows must be written as windows complete")
    check(process.returncode == 0, f"live: exit status {process.returncode}:\n{tail(err)}")
    starts = check_windows(read_rows(out), 3, "live")
    print(f"live: {len(windows_while_running)} windows written while running, "
          f"{len(starts)} in all", flush=True)


def udp_frame(src, payload_length):
    udp = struct.pack(">HHHH", 5000, 53, 8 + payload_length, 0) + bytes(payload_length)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes(src), bytes((192, 168, 0, 1))) + udp
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + ip


def finite(directory):
    """6 windows; in window w, host 10.0.0.h sends (h * 7 + w * 3) % 10 + 1 packets."""
    path = os.path.join(directory, "windows.pcap")
    expected = []
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for window in range(6):
            sent = {}
            at_us = 1000
            for host in range(1, 11):
                for _ in range((host * 7 + window * 3) % 10 + 1):
                    frame = udp_frame((10, 0, 0, host), 100)
                    out.write(struct.pack("<IIII", 1700000000 + window, at_us, len(frame),
                                          len(frame)))
                    out.write(frame)
                    at_us += 50
                    sent[host] = sent.get(host, 0) + len(frame)
            # --group src ranks senders by bytes; ties go to the lower address.
            ranked = sorted(sent.items(), key=lambda item: (-item[1], item[0]))[:2]
            expected += [(window, f"10.0.0.{host}", total) for host, total in ranked]
    results = {}
    for workers in ("1", "2"):
        out = os.path.join(directory, f"finite{workers}.jsonl")
        run = subprocess.run([WEIR, "flows", "--no-pin", "--quiet", "--pcap", path,
                              "--group", "src", "--window", "1s", "--top", "2",
                              "--workers", workers, "--out", out],
                             capture_output=True, text=True, timeout=120)
        if not check(run.returncode == 0,
                     f"finite, {workers} workers: status {run.returncode}:\n"
                     f"{tail(run.stderr)}"):
            continue
        rows = read_rows(out)
        check_windows(rows, 2, f"finite, {workers} workers")
        first = min(row["window_start"] for row in rows) if rows else 0
        results[workers] = [((row["window_start"] - first) // 1000000000, row["src"],
                             row["bytes"]) for row in rows]
        check(results[workers] == expected,
              f"finite, {workers} workers: rows {results[workers]} != {expected}")
    print(f"finite: {len(expected)} rows over 6 windows checked", flush=True)


def main():
    with tempfile.TemporaryDirectory() as directory:
        finite(directory)
        live(directory)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
