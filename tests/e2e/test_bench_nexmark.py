#!/usr/bin/env python3
"""Goal: `weir bench`'s in-memory workloads nexmark-q0, q1, q2, q5, q7, q8 and shuffle-tax
run end to end (engine in a child process, baseline in the bench, their result digests
compared by the bench: for q5/q7/q8 that is every output row, so the engine's windows, top-1
and multi-column minimum are checked against hand-written code) and report one JSON object
each with the documented fields.

Method: run `weir-bench --list`, then `weir-bench --json --reps 1 --events N --workers 1,2
WORKLOAD` for each workload (N: 20000, or enough for several windows) and check exit 0,
every field present, events > 0, a positive baseline rate and ratio, and for q5/q7/q8 the
comparison with Flink's published rate.  Speeds are never checked: this is a smoke test of the
harness and of the workloads' own correctness checks (a failed check exits 1), not a
benchmark.  argv[1] is the weir program; weir-bench is found under $MESON_BUILD_ROOT/bench,
else next to argv[1] in bench/.
"""
import json
import os
import subprocess
import sys

from e2e import failures, check

WEIR = os.path.abspath(sys.argv[1])
BUILD = os.environ.get("MESON_BUILD_ROOT") or os.path.dirname(WEIR)
BENCH = os.path.join(BUILD, "bench", "weir-bench")
WORKLOADS = ["nexmark-q0", "nexmark-q1", "nexmark-q2", "nexmark-q5", "nexmark-q7", "nexmark-q8",
             "shuffle-tax"]
FIELDS = ["workload", "workers", "events", "seconds", "events_per_s", "events_per_s_min",
          "events_per_s_max", "events_per_s_per_worker", "baseline", "baseline_events_per_s",
          "baseline_events_per_s_min", "baseline_events_per_s_max", "ratio", "ratio_min",
          "ratio_max", "input"]


if not os.access(BENCH, os.X_OK):
    print(f"skip: no {BENCH}")
    sys.exit(77)

listed = subprocess.run([BENCH, "--list"], capture_output=True, text=True, timeout=30)
check(listed.returncode == 0, f"--list: exit {listed.returncode}")
names = {line.split()[0] for line in listed.stdout.splitlines() if line.split()}
for workload in WORKLOADS:
    check(workload in names, f"--list does not name {workload}: {listed.stdout!r}")

# q5/q7 see 46 bids and q8 4 persons or auctions per 500 us of event time: enough events for
# several 10 s windows, so that windows close mid-run and not only at the end.
EVENTS = {"nexmark-q5": 1200000, "nexmark-q7": 1200000, "nexmark-q8": 300000}
REFERENCED = ("nexmark-q5", "nexmark-q7", "nexmark-q8")

for workload in WORKLOADS:
    run = subprocess.run([BENCH, "--json", "--reps", "1", "--events",
                          str(EVENTS.get(workload, 20000)), "--workers", "1,2", workload],
                         capture_output=True, text=True, timeout=280)
    if run.returncode != 0:
        print(run.stderr)
    check(run.returncode == 0, f"{workload}: exit {run.returncode}")
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    check(len(rows) == 2, f"{workload}: {len(rows)} JSON lines, expected 2: {run.stdout!r}")
    for row, workers in zip(rows, [1, 2]):
        for field in FIELDS:
            check(field in row, f"{workload}: no field {field} in {row}")
        check(row.get("workload") == workload, f"workload: {row.get('workload')}")
        check(row.get("workers") == workers, f"{workload}: workers: {row.get('workers')}")
        check(isinstance(row.get("events"), (int, float)) and row["events"] > 0,
              f"{workload}: events: {row.get('events')}")
        check((row.get("seconds") or 0) > 0, f"{workload}: seconds: {row.get('seconds')}")
        check((row.get("baseline_events_per_s") or 0) > 0,
              f"{workload}: baseline rate: {row.get('baseline_events_per_s')}")
        check((row.get("ratio") or 0) > 0, f"{workload}: ratio: {row.get('ratio')}")
        if workload in REFERENCED:
            check((row.get("reference_events_per_s") or 0) > 0 and
                  (row.get("vs_reference") or 0) > 0,
                  f"{workload}: no comparison with the published rate: {row}")

print(f"{len(failures)} failures")
sys.exit(1 if failures else 0)
