#!/usr/bin/env python3
"""Goal: `weir bench ysb` (the Yahoo Streaming Benchmark, engine-only) runs end to end: the
engine as a weir job in a child process and the hand-written C baseline, over the same
events, with equal results, reported as one JSON object per worker count.

Method: run `weir-bench --json --reps 1 --events 200000 --workers 1,2 ysb`.  The bench itself
compares the digest of the engine's per-(window, campaign) counts with the baseline's after
every run and exits 1 when they differ, so a zero exit is the correctness check; here we check
that it succeeded, that --list names ysb, and that each row has the documented fields with
events > 0.  Speeds are never checked: this is a smoke test of the harness, not a benchmark.
argv[1] is the weir program; weir-bench is found under $MESON_BUILD_ROOT/bench, else next to
argv[1] in bench/ (as test_bench_flows.py does).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

from e2e import failures, check

WEIR = os.path.abspath(sys.argv[1])
BUILD = os.environ.get("MESON_BUILD_ROOT") or os.path.dirname(WEIR)
BENCH = os.path.join(BUILD, "bench", "weir-bench")
EVENTS = 200000
FIELDS = ["workload", "workers", "reps", "events", "seconds", "events_per_s",
          "events_per_s_min", "events_per_s_max", "events_per_s_per_worker", "baseline",
          "baseline_events_per_s", "baseline_events_per_s_min", "baseline_events_per_s_max",
          "ratio", "ratio_min", "ratio_max", "input", "record_bytes", "weir_record_bytes",
          "read_gb_per_s", "read_ceiling_records_per_s", "strided_read_gb_per_s",
          "strided_ceiling_records_per_s", "all_cores", "all_cores_read_gb_per_s"]


def positive(row, field):
    value = row.get(field)
    return isinstance(value, (int, float)) and value > 0


if not os.access(BENCH, os.X_OK):
    print(f"skip: no {BENCH}")
    sys.exit(77)

listed = subprocess.run([BENCH, "--list"], capture_output=True, text=True, timeout=30)
check(listed.returncode == 0, f"--list: exit {listed.returncode}")
check(any(line.split()[:1] == ["ysb"] for line in listed.stdout.splitlines()),
      f"--list does not name ysb: {listed.stdout!r}")

plot_dir = tempfile.mkdtemp(prefix="weir-bench-plot-")
run = subprocess.run([BENCH, "--json", "--reps", "1", "--events", str(EVENTS), "--workers",
                      "1,2", "--plot", plot_dir, "ysb"], capture_output=True, text=True,
                     timeout=240)
if run.returncode != 0:
    print(run.stderr)
check(run.returncode == 0, f"ysb: exit {run.returncode} (1: a run failed or the engine's "
      "counts differ from the baseline's)")
check("differ" not in run.stderr, "ysb: the engine's results differ from the baseline's")
rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
check([row.get("workers") for row in rows] == [1, 2],
      f"ysb: expected one JSON line per worker count (1, 2): {run.stdout!r}")
for row in rows:
    for field in FIELDS:
        check(field in row, f"ysb: no field {field} in {row}")
    check(row.get("workload") == "ysb", f"workload: {row.get('workload')}")
    check(row.get("events") == EVENTS, f"events: {row.get('events')}, expected {EVENTS}")
    for field in ["seconds", "events_per_s", "baseline_events_per_s", "ratio",
                  "read_gb_per_s", "read_ceiling_records_per_s", "all_cores",
                  "all_cores_read_gb_per_s"]:
        check(positive(row, field), f"ysb, {row.get('workers')} workers: {field}: "
              f"{row.get(field)}")
    check(row.get("record_bytes") == 78, f"record_bytes: {row.get('record_bytes')}")
    check(isinstance(row.get("baseline"), str), f"baseline: {row.get('baseline')}")

# --plot: the data behind the chart has a line per worker count, and gnuplot drew it.
with open(os.path.join(plot_dir, "bench.dat")) as handle:
    plotted = [line for line in handle if not line.startswith("#")]
check(len(plotted) == 2 and all(line.startswith('"ysb, ') for line in plotted),
      f"--plot data: {plotted}")
svg = os.path.join(plot_dir, "bench.svg")
check(os.path.exists(svg) and "<svg" in open(svg).read(), "--plot drew no SVG")
shutil.rmtree(plot_dir)

bad = subprocess.run([BENCH, "--events", "0", "ysb"], capture_output=True, text=True,
                     timeout=30)
check(bad.returncode == 2, f"--events 0: exit {bad.returncode}, expected 2")

print(f"{len(failures)} failures")
sys.exit(1 if failures else 0)
