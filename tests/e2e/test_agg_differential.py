#!/usr/bin/env python3
"""Goal: `weir agg` computes the same windowed aggregates as a plain, obviously correct
program, whatever the number of workers, the window kind, the key, the output format, the
key-group hash seed, or a badly skewed key distribution with tiny rings and batches.

Method: write input files with `weir gen` (fixed seeds; out of order by at most DISORDER),
compute the expected rows here with a single-threaded reference (python's csv module, our own
window assignment [k*SLIDE, k*SLIDE+SIZE) with floor division, count/sum/min/max/avg), then
run `weir agg` with --out-of-orderness >= DISORDER (so no event is late and there must be
exactly one row per window and key) on 1, 2, 3 and 4 workers, also with --combine (two-phase
aggregation: the same rows) (--no-pin: this may run on a
machine with fewer cores), parse its output (JSON lines, or CSV once) and compare the sorted
rows with the reference exactly, floats included (amounts are multiples of 0.25, so sums are
exact in any order).  Also checks the column order of every row.  Each `weir agg` run has a
subprocess timeout so a deadlock fails the test instead of hanging it.

Usage: test_agg_differential.py PATH/TO/weir   (WEIR_SOURCE_ROOT: the repository root)
Exit 0 when every case matches; otherwise 1, with one message per failing case.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

from e2e import failures, fail, tail, run


SCHEMA = "ts:i64,card:str,merchant:str,amount:f64"
AGGS = "count,sum:amount,min:amount,max:amount,avg:amount"
AGG_COLUMNS = ["count", "sum_amount", "min_amount", "max_amount", "avg_amount"]
TIMEOUT_S = 120
ROWS = 60000
DISORDER = 40


def gen(weir, path, rows, seed, cards, merchants, step, disorder):
    args = [weir, "gen", "--rows", str(rows), "--out", path, "--seed", str(seed),
            "--cards", str(cards), "--merchants", str(merchants), "--step", str(step),
            "--disorder", str(disorder)]
    result = run(args)
    if result is None or result.returncode != 0:
        sys.exit(f"FAIL: {' '.join(args)} did not work: "
                 f"{'timeout' if result is None else tail(result.stderr)}")


def read_events(path):
    """The data rows of a generated file as (ts, card, merchant, amount)."""
    events = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        assert header == ["ts", "card", "merchant", "amount"], header
        for row in reader:
            events.append((int(row[0]), row[1], row[2], float(row[3])))
    return events


def disorder_of(events):
    """How far behind the largest time seen so far an event comes, at most."""
    highest, worst = None, 0
    for event in events:
        if highest is not None:
            worst = max(worst, highest - event[0])
        highest = event[0] if highest is None else max(highest, event[0])
    return worst


def window_starts(ts, size, slide):
    """Starts of every window [k*slide, k*slide+size) that contains ts."""
    first = (ts - size) // slide + 1
    last = ts // slide
    return [k * slide for k in range(first, last + 1)]


def reference(events, keys, size, slide):
    """Expected output rows (sorted), computed the slow and simple way."""
    key_index = {"card": 1, "merchant": 2}
    state = {}
    for event in events:
        key = tuple(event[key_index[k]] for k in keys)
        amount = event[3]
        for start in window_starts(event[0], size, slide):
            acc = state.get((start, key))
            if acc is None:
                state[(start, key)] = [1, amount, amount, amount]
            else:
                acc[0] += 1
                acc[1] += amount
                acc[2] = min(acc[2], amount)
                acc[3] = max(acc[3], amount)
    rows = []
    for (start, key), (count, total, low, high) in state.items():
        row = {"window_start": start, "window_end": start + size}
        for name, value in zip(keys, key):
            row[name] = value
        row.update({"count": count, "sum_amount": total, "min_amount": low,
                    "max_amount": high, "avg_amount": total / count})
        rows.append(row)
    return sorted(rows, key=lambda r: sort_key(r, keys))


def sort_key(row, keys):
    return (row.get("window_start"), row.get("window_end"),
            tuple(str(row.get(k)) for k in keys))


def parse_jsonl(path, label):
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                fail(label, f"output line {number} is empty")
                continue
            try:
                rows.append(json.loads(line))
            except ValueError as error:
                fail(label, f"output line {number} is not JSON ({error}): {line[:200]!r}")
    return rows


def parse_csv_output(path, keys, label):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        expected = ["window_start", "window_end"] + keys + AGG_COLUMNS
        if header != expected:
            fail(label, f"CSV header is {header}, expected {expected}")
            return []
        rows = []
        for number, fields in enumerate(reader, 2):
            if len(fields) != len(header):
                fail(label, f"CSV output line {number} has {len(fields)} fields: {fields}")
                continue
            row = dict(zip(header, fields))
            try:
                for name in ("window_start", "window_end", "count"):
                    row[name] = int(row[name])
                for name in AGG_COLUMNS[1:]:
                    row[name] = float(row[name])
            except ValueError as error:
                fail(label, f"CSV output line {number}: {error}: {fields}")
                continue
            rows.append(row)
        return rows


def compare(actual, expected, keys, label):
    """Exact comparison of two row lists (the expected one sorted); True when equal."""
    ok = True
    order = ["window_start", "window_end"] + keys + AGG_COLUMNS
    bad_order = [r for r in actual if list(r.keys()) != order]
    if bad_order:
        fail(label, f"{len(bad_order)} rows have columns {list(bad_order[0].keys())}, "
                    f"expected {order}")
        ok = False
    bad_types = [r for r in actual
                 if not all(type(r.get(c)) is int for c in ("window_start", "window_end",
                                                             "count"))]
    if bad_types:
        fail(label, f"{len(bad_types)} rows have a non-integer window_start, window_end or "
                    f"count, e.g. {bad_types[0]}")
        ok = False
    actual = sorted(actual, key=lambda r: sort_key(r, keys))
    if actual == expected:
        return ok
    seen = {}
    for row in actual:
        seen.setdefault(sort_key(row, keys), []).append(row)
    want = {sort_key(row, keys): row for row in expected}
    duplicates = [k for k, v in seen.items() if len(v) > 1]
    missing = [k for k in want if k not in seen]
    extra = [k for k in seen if k not in want]
    different = [k for k in want if k in seen and seen[k][-1] != want[k]]
    parts = [f"{len(actual)} rows, expected {len(expected)}"]
    if duplicates:
        parts.append(f"{len(duplicates)} (window, key) pairs appear more than once, e.g. "
                     f"{seen[duplicates[0]]}")
    if missing:
        parts.append(f"{len(missing)} expected rows missing, e.g. "
                     f"{[want[k] for k in missing[:3]]}")
    if extra:
        parts.append(f"{len(extra)} unexpected rows, e.g. {[seen[k][0] for k in extra[:3]]}")
    if different:
        examples = [f"got {seen[k][-1]} expected {want[k]}" for k in different[:3]]
        parts.append(f"{len(different)} rows differ, e.g. " + "; ".join(examples))
    fail(label, "output differs from the reference: " + " | ".join(parts))
    return False


def agg_case(weir, tmp, label, data, expected, keys, window, workers, seed,
             out_of_orderness, output_format="jsonl", extra=()):
    out = os.path.join(tmp, f"out-{len(failures)}-{time.monotonic_ns()}.{output_format}")
    args = [weir, "agg", "--input", data, "--schema", SCHEMA, "--time", "ts",
            "--key", ",".join(keys), "--window", window, "--agg", AGGS,
            "--out-of-orderness", str(out_of_orderness), "--workers", str(workers),
            "--seed", str(seed), "--no-pin", "--out", out, "--format", output_format]
    args += list(extra)
    label = f"{label} workers={workers}"
    started = time.monotonic()
    result = run(args)
    elapsed = time.monotonic() - started
    if result is None:
        fail(label, f"timed out after {TIMEOUT_S} s (deadlock?): {' '.join(args)}")
        return
    if result.returncode != 0:
        fail(label, f"exit status {result.returncode}, expected 0: {' '.join(args)}\n"
                    f"stderr:\n{tail(result.stderr)}")
        return
    if not os.path.exists(out):
        fail(label, f"no output file {out}")
        return
    if output_format == "csv":
        actual = parse_csv_output(out, keys, label)
    else:
        actual = parse_jsonl(out, label)
    if compare(actual, expected, keys, label):
        print(f"ok   {label}: {len(actual)} rows match ({elapsed:.2f} s)", flush=True)
    else:
        print(f"     command: {' '.join(args)}", flush=True)


def max_by_case(weir, tmp, data, events, extra, label):
    """`max_by:ts:amount` renamed with =NAME (only ts and amount are projected, not the
    spec's text): per window and card, the time of the largest amount (ties: the later)."""
    out = os.path.join(tmp, f"max-by-{len(failures)}-{time.monotonic_ns()}.jsonl")
    args = [weir, "agg", "--input", data, "--schema", SCHEMA, "--time", "ts", "--key", "card",
            "--window", "tumbling:1000", "--agg", "count=n,max_by:ts:amount=at_max",
            "--out-of-orderness", str(DISORDER), "--workers", "2", "--no-pin", "--out", out]
    result = run(args + list(extra))
    if result is None or result.returncode != 0:
        fail(label, f"{' '.join(args + list(extra))}: "
                    f"{'timeout' if result is None else tail(result.stderr)}")
        return
    best = {}
    for ts, card, _, amount in events:
        key = (ts // 1000 * 1000, card)
        best[key] = max(best.get(key, (amount, ts)), (amount, ts))
    rows = {(r["window_start"], r["card"]): (r["n"], r["at_max"])
            for r in parse_jsonl(out, label)}
    counts = {}
    for ts, card, _, _ in events:
        counts[(ts // 1000 * 1000, card)] = counts.get((ts // 1000 * 1000, card), 0) + 1
    want = {key: (counts[key], best[key][1]) for key in best}
    if rows != want:
        wrong = [k for k in want if rows.get(k) != want[k]][:3]
        fail(label, f"{len(rows)} rows, expected {len(want)}; e.g. "
                    f"{[(k, rows.get(k), want[k]) for k in wrong]}")
    else:
        print(f"ok   {label}: {len(rows)} rows match", flush=True)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_agg_differential.py PATH/TO/weir")
    weir = os.path.abspath(sys.argv[1])
    if not os.access(weir, os.X_OK):
        sys.exit(f"FAIL: {weir} is not an executable")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="weir-diff-") as tmp:
        data = os.path.join(tmp, "transactions.csv")
        gen(weir, data, ROWS, seed=7, cards=300, merchants=7, step=3, disorder=DISORDER)
        events = read_events(data)
        if len(events) != ROWS:
            sys.exit(f"FAIL: weir gen wrote {len(events)} rows, expected {ROWS}")
        if disorder_of(events) > DISORDER:
            sys.exit(f"FAIL: weir gen output is out of order by {disorder_of(events)}, "
                     f"more than --disorder {DISORDER}")

        # Tumbling, key card, on 1..4 workers (the windows near 0 hold negative times).
        expected = reference(events, ["card"], 1000, 1000)
        for workers in (1, 2, 3, 4):
            agg_case(weir, tmp, "tumbling:1000 key=card", data, expected, ["card"],
                     "tumbling:1000", workers, seed=100 + workers, out_of_orderness=DISORDER)

        # Sliding (size a multiple of slide), key card,merchant, on 1..4 workers.
        expected = reference(events, ["card", "merchant"], 1000, 500)
        for workers in (1, 2, 3, 4):
            agg_case(weir, tmp, "sliding:1000,500 key=card,merchant", data, expected,
                     ["card", "merchant"], "sliding:1000,500", workers, seed=200 + workers,
                     out_of_orderness=DISORDER + 24)

        # Sliding where size is not a multiple of slide; tumbling of an odd size.
        expected = reference(events, ["card"], 900, 400)
        agg_case(weir, tmp, "sliding:900,400 key=card", data, expected, ["card"],
                 "sliding:900,400", 3, seed=301, out_of_orderness=DISORDER)
        expected = reference(events, ["card", "merchant"], 777, 777)
        agg_case(weir, tmp, "tumbling:777 key=card,merchant", data, expected,
                 ["card", "merchant"], "tumbling:777", 2, seed=302,
                 out_of_orderness=DISORDER)

        # CSV output once: a header line, then rows.
        expected = reference(events, ["card", "merchant"], 2000, 2000)
        agg_case(weir, tmp, "csv tumbling:2000 key=card,merchant", data, expected,
                 ["card", "merchant"], "tumbling:2000", 2, seed=401,
                 out_of_orderness=DISORDER, output_format="csv")

        # Two-phase aggregation (--combine): the same rows, merged before the shuffle.
        expected = reference(events, ["card"], 1000, 1000)
        for workers in (1, 2, 4):
            agg_case(weir, tmp, "combine tumbling:1000 key=card", data, expected, ["card"],
                     "tumbling:1000", workers, seed=600 + workers,
                     out_of_orderness=DISORDER, extra=["--combine"])
        expected = reference(events, ["card", "merchant"], 900, 400)
        agg_case(weir, tmp, "combine sliding:900,400 key=card,merchant", data, expected,
                 ["card", "merchant"], "sliding:900,400", 3, seed=611,
                 out_of_orderness=DISORDER, extra=["--combine"])
        # Small batches put batch boundaries inside each pull: a merged row must not carry
        # a time that moves the watermark past rows routed after it (no event is late here).
        expected = reference(events, ["card"], 300, 100)
        for workers in (2, 3):
            agg_case(weir, tmp, "combine batch=32 sliding:300,100 key=card", data, expected,
                     ["card"], "sliding:300,100", workers, seed=620 + workers,
                     out_of_orderness=DISORDER, extra=["--combine", "--batch", "32"])

        # max_by with renamed aggregates (weir agg once projected 'ts:amount' and 'n').
        max_by_case(weir, tmp, data, events, [], "max_by:ts:amount=at_max count=n")
        max_by_case(weir, tmp, data, events, ["--combine"],
                    "combine max_by:ts:amount=at_max count=n")

        # Skew: a single hot key, rings of 2 slots, batches of 16, 4 workers.
        hot = os.path.join(tmp, "hot.csv")
        gen(weir, hot, 40000, seed=11, cards=1, merchants=7, step=3, disorder=DISORDER)
        hot_events = read_events(hot)
        for keys, window, size, slide in ((["card"], "tumbling:500", 500, 500),
                                          (["card"], "sliding:1000,500", 1000, 500)):
            expected = reference(hot_events, keys, size, slide)
            agg_case(weir, tmp, f"skew cards=1 ring-slots=2 batch=16 {window}", hot, expected,
                     keys, window, 4, seed=501, out_of_orderness=DISORDER,
                     extra=["--ring-slots", "2", "--batch", "16"])
            agg_case(weir, tmp, f"skew cards=1 combine {window}", hot, expected,
                     keys, window, 4, seed=502, out_of_orderness=DISORDER,
                     extra=["--ring-slots", "2", "--batch", "16", "--combine"])

    elapsed = time.monotonic() - started
    if failures:
        print(f"\ntest_agg_differential: {len(failures)} failures ({elapsed:.1f} s):")
        for failure in failures:
            print("  " + failure.split("\n")[0])
        return 1
    print(f"test_agg_differential: all cases pass ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
