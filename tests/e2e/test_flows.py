#!/usr/bin/env python3
"""Goal: `weir flows` counts every host, conversation and 5-tuple exactly, from every capture
format and through DPDK, whatever the number of workers; bad captures and bad options are
reported, never crash.

Method: tools/gen_pcap.py writes captures together with its own ground truth (computed from
what it generated, not by parsing the file).  We run weir flows over them with --window whole
and compare every row with the truth; the same capture through 1, 2 and 4 workers, in pcapng,
with nanosecond timestamps, with Linux cooked and raw link types, and through DPDK's net_pcap
must give the same rows.  Then truncated captures, CLI errors, and late packets counted as
packets in every grouping.
"""
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

from e2e import failures, check

WEIR = os.path.abspath(sys.argv[1])
ROOT = os.environ.get("WEIR_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
GEN = os.path.join(ROOT, "tools", "gen_pcap.py")


def generate(directory, name, *options):
    path = os.path.join(directory, name)
    truth = path + ".json"
    subprocess.run([sys.executable, GEN, "--out", path, "--truth", truth, "--quiet", *options],
                   check=True, timeout=120)
    with open(truth) as handle:
        return path, json.load(handle)


def flows(*options, expect=0):
    run = subprocess.run([WEIR, "flows", "--no-pin", *options], capture_output=True,
                         text=True, timeout=120)
    if run.returncode != expect:
        print(run.stderr)
    check(run.returncode == expect, f"weir flows {' '.join(options)}: exit {run.returncode}")
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    return rows, run.stderr


def conversations(rows):
    return {f"{r['addr_a']}|{r['addr_b']}": {k: r[k] for k in (
        "packets", "bytes", "packets_a_to_b", "bytes_a_to_b", "packets_b_to_a",
        "bytes_b_to_a")} for r in rows}


def check_capture(path, truth, label, *source):
    source = source or ("--pcap", path)
    rows, stderr = flows(*source, "--group", "conversation", "--window", "whole")
    got = conversations(rows)
    check(len(rows) == len(got), f"{label}: a conversation appears twice")
    expected = {k: {f: v[f] for f in got.get(k, v)} for k, v in truth["conversations"].items()}
    missing = set(expected) - set(got)
    extra = set(got) - set(expected)
    check(not missing and not extra,
          f"{label}: conversations differ: {len(missing)} missing, {len(extra)} extra "
          f"(e.g. {sorted(missing)[:2]} / {sorted(extra)[:2]})")
    wrong = [k for k in expected if k in got and got[k] != expected[k]]
    check(not wrong, f"{label}: {len(wrong)} conversations counted wrong, e.g. "
                     f"{wrong[:1]}: {[got.get(w) for w in wrong[:1]]} vs "
                     f"{[expected.get(w) for w in wrong[:1]]}")
    check(f"{truth['frames']} frames" in stderr, f"{label}: frame count missing from report")
    check(f"{truth['bytes']} bytes" in stderr, f"{label}: byte count missing from report")
    return got


def check_flowrec_exactly_once(directory):
    """Flow records with --state-dir, killed at kill points and restarted with other worker
    counts: the committed rows equal a run without crashes.  A capture big enough that
    checkpoints come before its end even on a loaded machine."""
    path, _ = generate(directory, "flowrec.pcap", "--seed", "5", "--packets", "60000",
                       "--seconds", "20")
    rows, _ = flows("--pcap", path, "--group", "flowrec", "--idle-timeout", "200ms",
                    "--active-timeout", "1s", "--workers", "1")
    expected = sorted(json.dumps(r, sort_keys=True) for r in rows)
    out = os.path.join(directory, "flowrec.jsonl")
    state = os.path.join(directory, "flowrec-state")
    args = [WEIR, "flows", "--no-pin", "--quiet", "--pcap", path, "--group", "flowrec",
            "--idle-timeout", "200ms", "--active-timeout", "1s", "--out", out,
            "--state-dir", state, "--checkpoint-interval", "1ms"]
    kills = 0
    for workers, fault in (("2", "kill:checkpoint.published@1"),
                           ("1", "kill:checkpoint.sealed@2"),
                           ("3", "kill:checkpoint.after-manifest@2"), ("2", None)):
        env = dict(os.environ)
        env.pop("WEIR_FAULT", None)
        if fault:
            env["WEIR_FAULT"] = fault
        run = subprocess.run(args + ["--workers", workers], capture_output=True, text=True,
                             timeout=120, env=env)
        kills += run.returncode in (137, -9)
        check(run.returncode in (0, 137, -9), f"flowrec {fault}: exit {run.returncode}: "
                                              f"{run.stderr[-300:]}")
    with open(out) as handle:
        got = sorted(json.dumps(json.loads(line), sort_keys=True) for line in handle)
    check(kills >= 1, "flowrec: no run was killed (the capture ends before the checkpoints)")
    check(got == expected, f"flowrec after {kills} kills: {len(set(expected) - set(got))} rows "
                           f"missing, {len(set(got) - set(expected))} extra")


def check_late_counts(directory):
    """Late packets are counted as packets in every grouping, through 1 and 2 workers, and
    nothing is lost: 15000 on-time packets over 3000 sources, then 7 of one conversation
    from a window long closed, then more on-time ones.  Lateness is judged per batch
    against the clock the worker had when the batch arrived, so whether the 7 are late
    depends on how far the keyed side had got (it may have queued every batch before
    moving its clock): some or all of the 7 may be dropped as late, or none and window 0
    holds them; the rows' packets plus the dropped ones are always every packet.  (Where the
    conversation stage merges packets into one row the window weighs the row by its
    packets: test_operators_window checks that.)"""
    path = os.path.join(directory, "late.pcap")

    def frame(src, dst):
        udp = struct.pack(">HHHH", 5000, 53, 18, 0) + bytes(10)
        ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes(src), bytes(dst)) + udp
        return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + ip

    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

        def packet(second, us, src, dst=(10, 0, 0, 2)):
            data = frame(src, dst)
            out.write(struct.pack("<IIII", 1700000000 + second, us, len(data), len(data)))
            out.write(data)

        for i in range(10000):
            packet(i // 2000, i % 2000, (10, 1 + (i % 3000) // 250, 1, i % 250))
        for _ in range(7):
            packet(0, 5, (10, 0, 0, 1))
        for i in range(5000):
            packet(5 + i // 2000, i % 2000, (10, 1 + (i % 3000) // 250, 1, i % 250))
    for group in ("src", "conversation", "5tuple"):
        for workers in ("1", "2"):
            rows, stderr = flows("--pcap", path, "--group", group, "--window", "1s",
                                 "--workers", workers)
            late = re.search(r"late: (\d+) updated, (\d+) dropped", stderr)
            label = f"late packets, --group {group}, {workers} workers"
            if not check(late is not None, f"{label}: no late count: {stderr[-300:]}"):
                continue
            dropped = int(late.group(2))
            check(late.group(1) == "0" and 0 <= dropped <= 7,
                  f"{label}: {late.group(0)}, expected at most the 7 old packets dropped")
            counted = sum(r["packets"] for r in rows)
            check(counted + dropped == 15007,
                  f"{label}: {counted} packets in rows + {dropped} dropped != 15007")


def main():
    with tempfile.TemporaryDirectory() as directory:
        path, truth = generate(directory, "mix.pcap", "--seed", "3", "--packets", "5000",
                               "--seconds", "5")
        reference = check_capture(path, truth, "pcap")

        for workers in ("1", "2", "4"):
            rows, _ = flows("--pcap", path, "--group", "conversation", "--window", "whole",
                            "--workers", workers)
            check(conversations(rows) == reference, f"{workers} workers: rows differ")

        rows, _ = flows("--pcap", path, "--group", "5tuple", "--window", "whole",
                        "--workers", "3")
        got = {f"{r['src']}|{r['dst']}|{r['sport']}|{r['dport']}|{r['proto']}":
               {"packets": r["packets"], "bytes": r["bytes"]} for r in rows}
        check(got == truth["five_tuples"], f"5tuple: {len(got)} rows vs "
                                           f"{len(truth['five_tuples'])} in the truth")

        rows, _ = flows("--pcap", path, "--group", "host", "--window", "whole")
        for row in rows:
            expected = truth["hosts"].get(row["host"])
            check(expected is not None, f"host {row['host']} is not in the truth")
            if expected is None:
                continue
            for field in ("packets_sent", "bytes_sent", "packets_received", "bytes_received"):
                check(row[field] == expected[field], f"host {row['host']} {field}: "
                                                     f"{row[field]} vs {expected[field]}")
            check(row["packets"] == expected["packets_sent"] + expected["packets_received"],
                  f"host {row['host']}: packets is not sent + received")
        check(len(rows) == len(truth["hosts"]), "host: number of hosts differs")

        # Per-second windows add up to the whole.
        rows, _ = flows("--pcap", path, "--group", "src", "--window", "1s")
        check(sum(r["packets"] for r in rows) == sum(
            h["packets_sent"] for h in truth["hosts"].values()), "src per second: packets")
        check(all(r["window_end"] - r["window_start"] == 10**9 for r in rows),
              "src per second: window bounds")
        check(all(r["window_start"] <= r["first_seen"] <= r["last_seen"] < r["window_end"]
                  for r in rows), "src per second: first/last seen outside the window")

        # Top 3 talkers per second: at most 3 rows a window, the biggest ones.
        top, _ = flows("--pcap", path, "--group", "src", "--window", "1s", "--top", "3")
        by_window = {}
        for r in rows:
            by_window.setdefault(r["window_start"], []).append(r["bytes"])
        for start, byte_counts in by_window.items():
            chosen = sorted((r["bytes"] for r in top if r["window_start"] == start),
                            reverse=True)
            check(chosen == sorted(byte_counts, reverse=True)[:3], f"top 3 of window {start}")

        # Flow records: however the timeouts cut them, per 5-tuple they add up to the truth;
        # and the rows themselves (end reasons included) do not depend on the workers.
        flowrec_rows = {}
        for workers in ("1", "3"):
            rows, _ = flows("--pcap", path, "--group", "flowrec", "--idle-timeout", "200ms",
                            "--active-timeout", "1s", "--workers", workers)
            sums = {}
            for r in rows:
                key = f"{r['src']}|{r['dst']}|{r['sport']}|{r['dport']}|{r['proto']}"
                total = sums.setdefault(key, {"packets": 0, "bytes": 0})
                total["packets"] += r["packets"]
                total["bytes"] += r["bytes"]
                check(r["first_seen"] <= r["last_seen"], f"flowrec: {r}")
                check(r["last_seen"] - r["first_seen"] < 10**9, f"flowrec active cut: {r}")
                check(r["end_reason"] in ("idle", "active", "fin", "rst", "end"), str(r))
            check(sums == truth["five_tuples"], f"flowrec with {workers} workers: per-5-tuple "
                                                f"sums differ from the truth")
            check(len(rows) > len(sums), "flowrec: timeouts cut no flow")
            flowrec_rows[workers] = sorted(json.dumps(r, sort_keys=True) for r in rows)
        check(flowrec_rows["1"] == flowrec_rows["3"], "flowrec: 1 and 3 workers give other rows")
        check_flowrec_exactly_once(directory)

        # Detection: the hidden port scan and SYN flood stand out.
        scan = truth["scan"]
        rows, _ = flows("--pcap", path, "--group", "scan", "--window", "whole",
                        "--min", "distinct_ports=50")
        check([r["src"] for r in rows] == [scan["source"]], f"scan: detected {rows}")
        if rows:
            check(abs(rows[0]["distinct_ports"] - scan["distinct_ports"])
                  <= 0.05 * scan["distinct_ports"] + 1, f"scan: {rows[0]} vs {scan}")
            check(rows[0]["targets"] == 1, f"scan: one target expected, {rows[0]}")
        flood = truth["syn_flood"]
        rows, _ = flows("--pcap", path, "--group", "syn", "--window", "whole",
                        "--min", "sources=100")
        check([r["dst"] for r in rows] == [flood["victim"]], f"syn flood: detected {rows}")
        if rows:
            check(rows[0]["syns"] >= flood["syns"], f"syn flood: {rows[0]} vs {flood}")
            check(abs(rows[0]["sources"] - flood["sources"]) <= 0.1 * flood["sources"],
                  f"syn flood sources: {rows[0]} vs {flood}")
        _, stderr = flows("--pcap", path, "--group", "syn", "--window", "1s", "--min",
                          "nope=3", expect=2)
        check("nope" in stderr, "--min with an unknown column")

        for name, options in (("ng.pcapng", ("--format", "pcapng")),
                              ("ns.pcap", ("--nanosecond",)),
                              ("ngns.pcapng", ("--format", "pcapng", "--nanosecond")),
                              ("sll.pcap", ("--link", "sll")),
                              ("raw.pcap", ("--link", "raw"))):
            variant, variant_truth = generate(directory, name, "--seed", "9", "--packets",
                                              "1500", "--seconds", "2", *options)
            check_capture(variant, variant_truth, name)

        # The bundled capture of the main job, against its own truth.
        sample = os.path.join(ROOT, "data", "sample.pcap")
        with open(os.path.join(ROOT, "data", "sample.truth.json")) as handle:
            check_capture(sample, json.load(handle), "data/sample.pcap")

        # The same capture through DPDK's net_pcap port.
        prefix = f"weirtest{os.getpid()}"
        eal = (f"--no-huge --no-shconf -m 512 --no-pci --log-level=error --file-prefix={prefix}"
               f" --vdev net_pcap0,rx_pcap={path}")
        check_capture(path, truth, "dpdk net_pcap", "--dpdk", eal, "--idle-stop", "300")

        # A capture cut in the middle of a record: what came before counts, the report says
        # where it stopped, the exit status is 0.
        with open(path, "rb") as handle:
            data = handle.read()
        cut = os.path.join(directory, "cut.pcap")
        with open(cut, "wb") as handle:
            handle.write(data[: len(data) // 2 + 7])
        rows, stderr = flows("--pcap", cut, "--group", "src", "--window", "whole")
        check("at byte" in stderr, "truncated capture: no offset in the report")
        check(0 < sum(r["packets"] for r in rows) < truth["frames"], "truncated capture: counts")

        not_capture = os.path.join(directory, "text.pcap")
        with open(not_capture, "w") as handle:
            handle.write("this is not a capture at all\n")
        for options, needle in (
                (("--pcap", not_capture, "--group", "src", "--window", "1s"), "not a pcap"),
                (("--pcap", os.path.join(directory, "nope.pcap"), "--group", "src",
                  "--window", "1s"), "nope.pcap"),
                (("--pcap", path, "--group", "bogus", "--window", "1s"), "bogus"),
                (("--pcap", path, "--group", "src", "--window", "10"), "--window"),
                (("--pcap", path, "--group", "src"), "--window"),
                (("--group", "src", "--window", "1s"), "--pcap"),
                (("--pcap", path, "--dpdk", "x", "--group", "src", "--window", "1s"), "--pcap")):
            _, stderr = flows(*options, expect=2)
            check(needle in stderr, f"{options}: stderr does not mention {needle!r}: {stderr}")

        check_late_counts(directory)

    print(f"{0 if failures else 1} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
