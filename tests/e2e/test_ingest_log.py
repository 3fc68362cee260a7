#!/usr/bin/env python3
"""Goal: live input through DPDK is exactly-once from the moment weir takes it: after a crash,
the events taken after the last checkpoint come back from the ingest log, once, before any new
traffic, and nothing already counted is counted again.

Method: tools/gen_pcap.py writes a capture; `weir flows --dpdk` reads it through DPDK's
net_pcap vdev (one queue, frames in file order) with --state-dir and checkpoints every 20 ms,
and is killed by fault injection (WEIR_FAULT=kill:POINT@N) at several points while packets
are still arriving.  The restart reads an empty capture (no new traffic: whatever it reports
must come from the state and the ingest log).  What weir took before the crash is then a
prefix of the capture, so the committed output must equal a plain `weir flows --pcap` over
the first K frames, for the K that gives the same total packet count (found by bisection
over prefixes): one missing or doubled event makes that impossible.  Rows are compared
sorted (order across workers is free).  Also: a restart with another --workers is refused
with a clear message (one ingest log per receive queue), and the state dir then still
resumes with the original count.

Usage: test_ingest_log.py PATH/TO/weir   (WEIR_SOURCE_ROOT: the repository root)
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

from e2e import failures, check

WEIR = os.path.abspath(sys.argv[1])
ROOT = os.environ.get("WEIR_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
GEN = os.path.join(ROOT, "tools", "gen_pcap.py")
TIMEOUT_S = 120


def frames_of(path):
    """(header, [record bytes]) of a classic pcap file."""
    data = open(path, "rb").read()
    header, records, at = data[:24], [], 24
    while at + 16 <= len(data):
        captured = struct.unpack_from("<I", data, at + 8)[0]
        records.append(data[at:at + 16 + captured])
        at += 16 + captured
    return header, records


def write_prefix(path, header, records, count):
    with open(path, "wb") as out:
        out.write(header)
        out.write(b"".join(records[:count]))


def eal(capture, prefix):
    return (f"--no-huge --no-shconf -m 512 --no-pci --log-level=error --file-prefix={prefix} "
            f"--vdev net_pcap0,rx_pcap={capture}")


def run(args, fault=None):
    env = dict(os.environ)
    env.pop("WEIR_FAULT", None)
    if fault:
        env["WEIR_FAULT"] = fault
    return subprocess.run([WEIR, *args], capture_output=True, text=True, timeout=TIMEOUT_S,
                          env=env)


def rows(path):
    with open(path) as handle:
        return sorted(line for line in handle if line.strip())


def total_packets(lines):
    return sum(json.loads(line)["packets"] for line in lines)


def reference(directory, header, records, count):
    prefix = os.path.join(directory, "prefix.pcap")
    out = os.path.join(directory, "prefix.jsonl")
    write_prefix(prefix, header, records, count)
    done = run(["flows", "--pcap", prefix, "--group", "src", "--window", "1s", "--out", out,
                "--quiet", "--no-pin"])
    check(done.returncode == 0, f"reference over {count} frames: exit {done.returncode}")
    return rows(out)


def matching_prefix(directory, header, records, packets):
    """The rows of the shortest prefix with @packets events (bisection), or None."""
    low, high = 0, len(records)
    while low < high:
        middle = (low + high) // 2
        if total_packets(reference(directory, header, records, middle)) < packets:
            low = middle + 1
        else:
            high = middle
    got = reference(directory, header, records, low)
    return got if total_packets(got) == packets else None


def crash_case(directory, header, records, capture, empty, point, count, label, workers=1):
    """Kill at the @count-th @point; when that came before the first packet (a slow start
    under the sanitizers on a busy machine), try again with a later one: the case is only
    worth checking when the crash lost events the restart must bring back."""
    for attempt in range(4):
        packets = crash_once(directory, header, records, capture, empty,
                             f"kill:{point}@{count << attempt}", f"{label}-{attempt}", workers)
        if packets != 0:
            return
        print(f"{label}: the kill at {point}@{count << attempt} came before any packet; "
              "again with a later one", flush=True)
    check(False, f"{label}: nothing was counted before any of the kills")


def crash_once(directory, header, records, capture, empty, fault, label, workers):
    """The events the crashed run took (0: none), or None when a check failed."""
    state = os.path.join(directory, f"state-{label}")
    out = os.path.join(directory, f"out-{label}.jsonl")
    common = ["--idle-stop", "400", "--group", "src", "--window", "1s", "--out", out,
              "--state-dir", state, "--checkpoint-interval", "20ms", "--workers",
              str(workers), "--no-pin", "--quiet"]
    first = run(["flows", "--dpdk", eal(capture, f"ing{label}a"), *common], fault)
    if not check(first.returncode in (137, -9), f"{label}: killed run exit {first.returncode}: "
                 f"{first.stderr[-400:]}"):
        return None
    before = rows(out)
    second = run(["flows", "--dpdk", eal(empty, f"ing{label}b"), *common])
    if not check(second.returncode == 0, f"{label}: restart exit {second.returncode}: "
                 f"{second.stderr[-600:]}"):
        return None
    check("ingest log 0: replaying" in second.stderr,
          f"{label}: the restart did not say what it replayed: {second.stderr[-300:]}")
    after = rows(out)
    check(set(before) <= set(after), f"{label}: committed rows disappeared")
    packets = total_packets(after)
    if packets == 0:
        return 0
    expected = matching_prefix(directory, header, records, packets)
    if check(expected is not None, f"{label}: {packets} packets is no prefix of the capture "
             "(an event was lost or counted twice)"):
        missing = len(set(expected) - set(after))
        extra = len(set(after) - set(expected))
        check(after == expected, f"{label}: {missing} rows missing, {extra} rows extra against "
              f"the first frames of the capture")
    print(f"ok {label}: {packets} events taken before the crash, each counted once", flush=True)
    return packets


def main():
    with tempfile.TemporaryDirectory(prefix="weir-ingest-") as directory:
        capture = os.path.join(directory, "live.pcap")
        subprocess.run([sys.executable, GEN, "--out", capture, "--packets", "120000",
                        "--seconds", "20", "--quiet"], check=True, timeout=TIMEOUT_S)
        header, records = frames_of(capture)
        empty = os.path.join(directory, "empty.pcap")
        write_prefix(empty, header, records, 0)
        for label, point, count in (("sealed3", "checkpoint.sealed", 3),
                                    ("published2", "checkpoint.published", 2),
                                    ("manifest4", "checkpoint.after-manifest", 4),
                                    ("before5", "checkpoint.before-manifest", 5)):
            crash_case(directory, header, records, capture, empty, point, count, label)
        # Two workers: the vdev's one queue is read by worker 0 (its ingest log), worker 1's
        # partition has no queue and an empty log; the events are spread by key.
        crash_case(directory, header, records, capture, empty, "checkpoint.sealed", 4,
                   "sealed4-2w", workers=2)
        # Another worker count is refused: one ingest log per receive queue.
        state = os.path.join(directory, "state-workers")
        out = os.path.join(directory, "out-workers.jsonl")
        common = ["--idle-stop", "400", "--group", "src", "--window", "1s", "--out", out,
                  "--state-dir", state, "--checkpoint-interval", "20ms", "--no-pin", "--quiet"]
        run(["flows", "--dpdk", eal(capture, "ingw1"), *common, "--workers", "1"],
            "kill:checkpoint.published@2")
        other = run(["flows", "--dpdk", eal(empty, "ingw2"), *common, "--workers", "2"])
        check(other.returncode != 0 and "same --workers" in other.stderr,
              f"another worker count: exit {other.returncode}: {other.stderr[-300:]}")
        same = run(["flows", "--dpdk", eal(empty, "ingw3"), *common, "--workers", "1"])
        check(same.returncode == 0, f"then the same count: exit {same.returncode}")
    if failures:
        print(f"{len(failures)} failures")
        return 1
    print("all ingest-log cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
