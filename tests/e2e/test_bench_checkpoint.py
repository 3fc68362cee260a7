#!/usr/bin/env python3
"""Goal: `weir bench checkpoint` (the same keyed job with and without checkpoints, plus a
recovery of a checkpointed state) runs end to end and reports its figures.

Method: run `weir-bench --json --reps 1 --events 400000 --workers 1,2 checkpoint` with small
settings from the environment (WEIR_BENCH_CHECKPOINT_MS=5 so a short run takes checkpoints,
WEIR_BENCH_RECOVERY_KEYS=300000 so the recovery job is small).  The bench itself checks that
the engine (checkpointed) and the baseline (not) saw every event and emitted the same number
of rows, and exits 1 otherwise, so a zero exit is the correctness check; here we check that
it succeeded, that --list names the workload, that each row has the documented fields, that
checkpoints were taken, and that the recovery run found a checkpoint and rebuilt a non-empty
state.  Speeds are never checked: this is a smoke test of the harness, not a benchmark.  The
temporary state dirs must be gone afterwards.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

from e2e import failures, check

WEIR = os.path.abspath(sys.argv[1])
BUILD = os.environ.get("MESON_BUILD_ROOT") or os.path.dirname(WEIR)
BENCH = os.path.join(BUILD, "bench", "weir-bench")
EVENTS = 400000
FIELDS = ["workload", "workers", "events", "seconds", "events_per_s", "baseline_events_per_s",
          "ratio", "checkpoints", "checkpoint_ms_p50", "checkpoint_ms_p99",
          "checkpoint_bytes_mean", "recovered_state_bytes", "recovery_seconds"]


if not os.access(BENCH, os.X_OK):
    print(f"skip: no {BENCH}")
    sys.exit(77)

listed = subprocess.run([BENCH, "--list"], capture_output=True, text=True, timeout=30)
check(listed.returncode == 0, f"--list: exit {listed.returncode}")
check(any(line.split()[:1] == ["checkpoint"] for line in listed.stdout.splitlines()),
      f"--list does not name checkpoint: {listed.stdout!r}")

with tempfile.TemporaryDirectory(prefix="weir-bench-ck-") as tmp:
    env = dict(os.environ, TMPDIR=tmp, WEIR_BENCH_CHECKPOINT_MS="5",
               WEIR_BENCH_RECOVERY_KEYS="300000")
    env.pop("WEIR_FAULT", None)
    run = subprocess.run([BENCH, "--json", "--reps", "1", "--events", str(EVENTS),
                          "--workers", "1,2", "checkpoint"], capture_output=True, text=True,
                         timeout=280, env=env)
    if run.returncode != 0:
        print(run.stderr[-3000:])
    check(run.returncode == 0, f"checkpoint: exit {run.returncode}")
    rows = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    check([row.get("workers") for row in rows] == [1, 2],
          f"expected one JSON line per worker count (1, 2): {run.stdout!r}")
    for row in rows:
        for field in FIELDS:
            check(field in row, f"no field {field} in {row}")
        check(row.get("workload") == "checkpoint", f"workload: {row.get('workload')}")
        check(row.get("events") == EVENTS, f"events: {row.get('events')}, expected {EVENTS}")
        check(row.get("checkpoints", 0) >= 1, f"no checkpoint was taken: {row}")
        check(row.get("recovered_state_bytes", 0) > 0, f"recovery rebuilt nothing: {row}")
        check(row.get("recovery_seconds", 0) > 0, f"no recovery time: {row}")
        check(row.get("ratio", 0) > 0, f"ratio: {row.get('ratio')}")
    left = glob.glob(os.path.join(tmp, "weirbench-checkpoint.*"))
    check(not left, f"state dirs left behind: {left}")

if failures:
    print(f"{len(failures)} failures")
    sys.exit(1)
print("checkpoint bench ok")
