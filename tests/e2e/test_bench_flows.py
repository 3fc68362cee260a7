#!/usr/bin/env python3
"""Goal: `weir bench` (as bench/weir-bench) lists its workloads and runs the flows workload
end to end: an engine run in a child process and, where dpdk-testpmd is installed, its
baseline, reported as one JSON object with the documented fields.

Method: run `weir-bench --list`, then a short `weir-bench --json --reps 1 --seconds 1 flows`
and check every field is present and that events were counted (events > 0).  Speeds are
never checked: this is a smoke test of the harness, not a benchmark.  argv[1] is the weir
program; weir-bench is found under $MESON_BUILD_ROOT/bench, else next to argv[1] in bench/.
"""
import json
import os
import subprocess
import sys

from e2e import failures, check

WEIR = os.path.abspath(sys.argv[1])
BUILD = os.environ.get("MESON_BUILD_ROOT") or os.path.dirname(WEIR)
BENCH = os.path.join(BUILD, "bench", "weir-bench")
ROOT = os.environ.get("WEIR_SOURCE_ROOT", os.path.join(os.path.dirname(__file__), "..", ".."))
FIELDS = ["workload", "workers", "events", "seconds", "events_per_s", "events_per_s_min",
          "events_per_s_max", "events_per_s_per_worker", "baseline", "baseline_events_per_s",
          "baseline_events_per_s_min", "baseline_events_per_s_max", "ratio", "ratio_min",
          "ratio_max"]


if not os.access(BENCH, os.X_OK):
    print(f"skip: no {BENCH}")
    sys.exit(77)
env = dict(os.environ, WEIR_SOURCE_ROOT=os.path.abspath(ROOT))

listed = subprocess.run([BENCH, "--list"], capture_output=True, text=True, timeout=30)
check(listed.returncode == 0, f"--list: exit {listed.returncode}")
check(any(line.split()[:1] == ["flows"] for line in listed.stdout.splitlines()),
      f"--list does not name flows: {listed.stdout!r}")

run = subprocess.run([BENCH, "--json", "--reps", "1", "--seconds", "1", "flows"],
                     capture_output=True, text=True, timeout=240, env=env)
if run.returncode != 0:
    print(run.stderr)
check(run.returncode == 0, f"flows: exit {run.returncode}")
rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
check(len(rows) == 1, f"flows: {len(rows)} JSON lines, expected 1: {run.stdout!r}")
for row in rows:
    for field in FIELDS:
        check(field in row, f"flows: no field {field} in {row}")
    check(row.get("workload") == "flows", f"workload: {row.get('workload')}")
    check(row.get("workers") == 1, f"workers: {row.get('workers')}")
    check(isinstance(row.get("events"), (int, float)) and row["events"] > 0,
          f"events: {row.get('events')}")
    check(row.get("seconds", 0) > 0, f"seconds: {row.get('seconds')}")
    if row.get("baseline") is None:
        print("note: no dpdk-testpmd here; the engine was measured alone")
        check(row.get("ratio") is None, f"ratio without a baseline: {row.get('ratio')}")
    else:
        check(row.get("baseline_events_per_s", 0) > 0, "baseline measured no packets")
        check(row.get("ratio", 0) > 0, f"ratio: {row.get('ratio')}")

bad = subprocess.run([BENCH, "nosuchworkload"], capture_output=True, text=True, timeout=30)
check(bad.returncode == 2, f"unknown workload: exit {bad.returncode}, expected 2")

print(f"{len(failures)} failures")
sys.exit(1 if failures else 0)
