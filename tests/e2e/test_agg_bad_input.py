#!/usr/bin/env python3
"""Goal: `weir agg` copes with bad input and bad usage the way the README promises:
malformed CSV lines are skipped, counted and listed (first 20, by 1-based file line number,
header = line 1) while every good line still counts and the exit status is 0; bad options,
unknown columns and a missing input file stop the run with exit status 2 and a message that
names the offending thing; an event later than the allowed lateness goes to --late-out, is
counted on stderr, and is left out of the normal output.

Method: write CSV files here (tempfile) with malformed lines at known line numbers (too few
fields, too many, a non-number amount, a non-integer ts, a 256-byte string, an empty line,
...: 30 in all, spread over the whole file so a multi-worker reader's line numbering is
exercised), run `weir agg` with 1 and 3 workers, and check the exit status, the skipped-line
count and the listed line numbers on stderr, and the rows against a single-threaded reference
computed here over the good lines only.  Then run a series of bad command lines and check
exit status 2 and stderr.  Then a small file with one event far behind the clock, with
--lateness 0 (goes to --late-out) and with a large --lateness (updates its window).  And a
run with --state-dir killed after its second checkpoint: the restart names its bad lines by
byte offset (it did not read the lines before the resume point), and each offset must be the
first byte of a bad line (or, when nothing had been read at the checkpoint, by correct line
numbers); when the run had read all of its input by then, again with 5x the lines.

Usage: test_agg_bad_input.py PATH/TO/weir   (WEIR_SOURCE_ROOT: the repository root)
Exit 0 when every check passes; otherwise 1, with one message per failing check.
"""
import csv
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time

from e2e import failures, fail, ok, tail

SCHEMA = "ts:i64,card:str,merchant:str,amount:f64"
AGGS = "count,sum:amount,min:amount,max:amount,avg:amount"
TIMEOUT_S = 120


def run(args, timeout=TIMEOUT_S):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


# ---- the reference ----

def parse_good(text):
    """(ts, card, merchant, amount) of each data line of a CSV text with only good lines."""
    rows = list(csv.reader(io.StringIO(text)))
    return [(int(r[0]), r[1], r[2], float(r[3])) for r in rows[1:]]


def window_starts(ts, size, slide):
    return [k * slide for k in range((ts - size) // slide + 1, ts // slide + 1)]


def reference(events, keys, size, slide):
    key_index = {"card": 1, "merchant": 2}
    state = {}
    for event in events:
        key = tuple(event[key_index[k]] for k in keys)
        for start in window_starts(event[0], size, slide):
            acc = state.setdefault((start, key), [0, 0.0, event[3], event[3]])
            acc[0] += 1
            acc[1] += event[3]
            acc[2] = min(acc[2], event[3])
            acc[3] = max(acc[3], event[3])
    rows = {}
    for (start, key), (count, total, low, high) in state.items():
        row = {"window_start": start, "window_end": start + size}
        row.update(zip(keys, key))
        row.update({"count": count, "sum_amount": total, "min_amount": low,
                    "max_amount": high, "avg_amount": total / count})
        rows[(start,) + key] = row
    return rows


def read_rows(path, keys, label):
    """Output rows of a JSON-lines file as a list (in file order)."""
    rows = []
    if not os.path.exists(path):
        fail(label, f"no output file {path}")
        return rows
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except ValueError as error:
                fail(label, f"output line {number} is not JSON ({error}): {line[:200]!r}")
                continue
            rows.append(row)
    return rows


def row_key(row, keys):
    return (row.get("window_start"),) + tuple(row.get(k) for k in keys)


def compare(actual_rows, expected, keys, label, last_wins=False):
    """True when the output rows equal the reference (one row per window and key, unless
    last_wins: then the last row per window and key counts)."""
    actual = {}
    duplicates = []
    for row in actual_rows:
        k = row_key(row, keys)
        if k in actual and not last_wins:
            duplicates.append(row)
        actual[k] = row
    problems = []
    if duplicates:
        problems.append(f"{len(duplicates)} rows repeat a (window, key), e.g. {duplicates[0]}")
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    different = [k for k in expected if k in actual and actual[k] != expected[k]]
    if missing:
        problems.append(f"{len(missing)} expected rows missing, e.g. "
                        f"{[expected[k] for k in missing[:3]]}")
    if extra:
        problems.append(f"{len(extra)} unexpected rows, e.g. {[actual[k] for k in extra[:3]]}")
    if different:
        problems.append(f"{len(different)} rows differ, e.g. " + "; ".join(
            f"got {actual[k]} expected {expected[k]}" for k in different[:3]))
    if problems:
        fail(label, f"{len(actual_rows)} rows, expected {len(expected)}: " +
             " | ".join(problems))
        return False
    return True


def agg_args(weir, data, out, keys="card", window="tumbling:1000", workers=1, seed=1,
             out_of_orderness=50, extra=()):
    return [weir, "agg", "--input", data, "--schema", SCHEMA, "--time", "ts", "--key", keys,
            "--window", window, "--agg", AGGS, "--out-of-orderness", str(out_of_orderness),
            "--workers", str(workers), "--seed", str(seed), "--no-pin", "--out", out] + \
        list(extra)


# ---- 1. malformed lines ----

BAD_KINDS = [
    ("too few fields", lambda ts: f"{ts},c00001,m001"),
    ("too many fields", lambda ts: f"{ts},c00001,m001,1.25,9"),
    ("amount not a number", lambda ts: f"{ts},c00001,m001,abc"),
    ("ts not an integer", lambda ts: f"{ts}.5,c00001,m001,1.25"),
    ("card of 256 bytes", lambda ts: f"{ts},c{'x' * 255},m001,1.25"),
    ("empty line", lambda ts: ""),
    ("ts not a number", lambda ts: f"t{ts},c00001,m001,1.25"),
    ("amount with trailing junk", lambda ts: f"{ts},c00001,m001,1.25x"),
]


def malformed_file(path):
    """Writes the file; returns (bad line numbers in order, {line: kind}, good-only text)."""
    data_lines = 20000
    rnd = random.Random(5)
    bad_at = [3, 4, 6, 10, 17, 25] + [40 + j * ((data_lines - 100) // 24) for j in range(24)]
    bad_at = sorted(set(bad_at))
    assert len(bad_at) == 30 and bad_at[-1] <= data_lines
    long_card_at = {8, data_lines - 3}  # 255-byte strings: the longest that are good
    lines = ["ts,card,merchant,amount"]
    good = ["ts,card,merchant,amount"]
    kinds = {}
    for number in range(2, data_lines + 2):
        ts = (number - 2) * 3
        if number in bad_at:
            kind, make = BAD_KINDS[bad_at.index(number) % len(BAD_KINDS)]
            kinds[number] = kind
            lines.append(make(ts))
            continue
        ts -= rnd.randint(0, 20)
        card = "c" + "y" * 254 if number in long_card_at else f"c{rnd.randint(0, 40):05d}"
        line = f"{ts},{card},m{rnd.randint(0, 4):03d},{rnd.randint(1, 2000) * 0.25:.2f}"
        lines.append(line)
        good.append(line)
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return bad_at, kinds, "\n".join(good) + "\n"


def skipped_count_reported(stderr, count):
    """Is `count` given as the number of skipped lines (a line mentioning 'skip')?"""
    return any(re.search(rf"\b{count}\b", line) for line in stderr.split("\n")
               if re.search(r"skip|malformed|bad line|invalid", line, re.I))


def listed_line_numbers(stderr):
    return [int(n) for n in re.findall(r"\bline (\d+)\b", stderr)]


def check_malformed(weir, tmp):
    data = os.path.join(tmp, "malformed.csv")
    bad_at, kinds, good_text = malformed_file(data)
    expected = reference(parse_good(good_text), ["card"], 1000, 1000)
    for workers in (1, 3):
        label = f"malformed lines, workers={workers}"
        out = os.path.join(tmp, f"malformed-{workers}.jsonl")
        args = agg_args(weir, data, out, workers=workers, seed=10 + workers,
                        out_of_orderness=30)
        result = run(args)
        if result is None:
            fail(label, f"timed out: {' '.join(args)}")
            continue
        bad = False
        if result.returncode != 0:
            fail(label, f"exit status {result.returncode}, expected 0\n{tail(result.stderr)}")
            continue
        if not skipped_count_reported(result.stderr, len(bad_at)):
            fail(label, f"stderr does not say {len(bad_at)} lines were skipped:\n"
                        f"{tail(result.stderr)}")
            bad = True
        listed = listed_line_numbers(result.stderr)
        first = bad_at[:20]
        if listed[:5] != first[:5]:
            fail(label, f"the first listed line numbers are {listed[:5]}, expected {first[:5]} "
                        f"({', '.join(kinds[n] for n in first[:5])})\n{tail(result.stderr)}")
            bad = True
        elif sorted(listed) != first:
            not_listed = [f"{n} ({kinds[n]})" for n in first if n not in listed]
            wrong = [n for n in listed if n not in first]
            fail(label, f"listed line numbers {listed}, expected the first 20 bad ones "
                        f"{first}; not listed: {not_listed}; listed but not expected: "
                        f"{wrong}")
            bad = True
        rows = read_rows(out, ["card"], label)
        if not compare(rows, expected, ["card"], label):
            bad = True
            print("     hint: the bad lines are " +
                  ", ".join(f"{n} ({kinds[n]})" for n in bad_at), flush=True)
        if not bad:
            ok(label, f"{len(bad_at)} skipped, lines {listed[:5]}... listed, "
                      f"{len(rows)} rows match")


def check_bad_lines_do_not_move_clock(weir, tmp):
    """A malformed line whose first field is a huge, valid time must not count as an event,
    nor advance the clock (which would make every later good event late)."""
    label = "malformed lines with huge times"
    lines = ["ts,card,merchant,amount"]
    for i in range(400):
        lines.append(f"{i * 3},c{i % 5:05d},m{i % 3:03d},{(i % 40 + 1) * 0.25:.2f}")
        if i == 50:
            lines.append("1000000000,c00001,m001")
        if i == 60:
            lines.append("2000000000,c00002,m002,zz")
    text = "\n".join(lines) + "\n"
    good = "\n".join(line for line in lines if not line.startswith(("1000000000",
                                                                      "2000000000"))) + "\n"
    data = os.path.join(tmp, "clock.csv")
    with open(data, "w", encoding="utf-8") as f:
        f.write(text)
    out = os.path.join(tmp, "clock.jsonl")
    late = os.path.join(tmp, "clock-late.jsonl")
    args = agg_args(weir, data, out, window="tumbling:100", out_of_orderness=5,
                    extra=["--lateness", "0", "--late-out", late, "--batch", "16"])
    result = run(args)
    if result is None or result.returncode != 0:
        fail(label, f"{'timed out' if result is None else result.returncode}: "
                    f"{' '.join(args)}\n{'' if result is None else tail(result.stderr)}")
        return
    late_lines = open(late, encoding="utf-8").read().split() if os.path.exists(late) else []
    problems = False
    if late_lines:
        fail(label, f"{len(late_lines)} events went to --late-out (a malformed line moved the "
                    f"clock?), e.g. {late_lines[0]}")
        problems = True
    if not skipped_count_reported(result.stderr, 2):
        fail(label, f"stderr does not say 2 lines were skipped:\n{tail(result.stderr)}")
        problems = True
    if not compare(read_rows(out, ["card"], label),
                   reference(parse_good(good), ["card"], 100, 100), ["card"], label):
        problems = True
    if not problems:
        ok(label)


def resumed_runs(weir, tmp, count):
    """A run of @count lines killed at its second checkpoint, then its restart."""
    data = os.path.join(tmp, "resume.csv")
    lines = ["ts,card,merchant,amount"]
    bad_offsets, bad_numbers = set(), set()
    offset = len(lines[0]) + 1
    for i in range(count):
        line = f"{i},c{i % 97:05d},m001,1.25" if i % 20000 != 7 else f"{i},c00001,oops"
        if i % 20000 == 7:
            bad_offsets.add(offset)
            bad_numbers.add(i + 2)  # the header is line 1
        lines.append(line)
        offset += len(line) + 1
    with open(data, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    out = os.path.join(tmp, "resume.jsonl")
    state = os.path.join(tmp, "resume-state")
    shutil.rmtree(state, ignore_errors=True)  # a try with less input left it
    if os.path.exists(out):
        os.remove(out)
    args = agg_args(weir, data, out, workers=2, extra=(
        "--state-dir", state, "--checkpoint-interval", "5ms"))
    env = dict(os.environ, WEIR_FAULT="kill:checkpoint.published@2")
    first = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, env=env)
    second = run(args) if first.returncode in (137, -9, 0) else None
    return first, second, bad_offsets, bad_numbers


def check_resumed_report(weir, tmp):
    """After a restart from a checkpoint the lines before the resume point were not read again,
    so the report names bad lines by their byte offset; each offset must be a bad line's."""
    label = "bad lines after a restart"
    # The kill comes at the second checkpoint (5 ms apart): a fast run may have read all of
    # its input by then, and its restart has nothing to resume.  Then again, with more input.
    for count in (200000, 1000000, 5000000):
        first, second, bad_offsets, bad_numbers = resumed_runs(weir, tmp, count)
        if second is None or "had already finished" not in second.stderr:
            break
    if first.returncode not in (137, -9, 0):
        fail(label, f"killed run: exit {first.returncode}\n{tail(first.stderr)}")
        return
    if second is None or second.returncode != 0:
        fail(label, f"restart: {'timed out' if second is None else second.returncode}")
        return
    if first.returncode == 0:
        fail(label, "the run finished before its second checkpoint: nothing was resumed")
        return
    named = [int(m) for m in re.findall(r"the line at byte (\d+):", second.stderr)]
    numbered = [int(m) for m in re.findall(r"^  line (\d+):", second.stderr, re.M)]
    # A checkpoint taken before any line was read resumes every part at its start: then the
    # file's line numbers are still known and used.
    wrong = [o for o in named if o not in bad_offsets] + \
            [n for n in numbered if n not in bad_numbers]
    if not (named or numbered) or (named and numbered) or wrong:
        fail(label, f"offsets named {named}, line numbers {numbered}, not bad lines: "
                    f"{wrong}\n{tail(second.stderr)}")
    else:
        ok(label, f"{len(named)} bad lines named by byte offset, {len(numbered)} by number")


def check_quoting(weir, tmp):
    """RFC 4180 quoting (README), and a last line without a newline."""
    label = "quoted fields, no final newline"
    text = ('ts,card,merchant,amount\n0,"c00001",m001,1.25\n5,c00001,"m,002",2.50\n'
            '7,"c""q",m001,0.75\n"9",c00001,m001,"4.00"\n12,c00002,m001,3.00')
    data = os.path.join(tmp, "quoted.csv")
    with open(data, "w", encoding="utf-8") as f:
        f.write(text)
    out = os.path.join(tmp, "quoted.jsonl")
    args = agg_args(weir, data, out, keys="card,merchant", window="tumbling:10")
    result = run(args)
    if result is None or result.returncode != 0:
        fail(label, f"{'timed out' if result is None else result.returncode}: "
                    f"{' '.join(args)}\n{'' if result is None else tail(result.stderr)}")
        return
    events = parse_good(text)
    if compare(read_rows(out, ["card", "merchant"], label),
               reference(events, ["card", "merchant"], 10, 10), ["card", "merchant"], label):
        ok(label)
    elif re.search(r"skip", result.stderr, re.I):
        print(f"     stderr: {tail(result.stderr, 8)}", flush=True)


# ---- 2. bad command lines ----

def check_cli_errors(weir, tmp):
    data = os.path.join(tmp, "small.csv")
    with open(data, "w", encoding="utf-8") as f:
        f.write("ts,card,merchant,amount\n1,c00001,m001,1.25\n2,c00002,m001,2.50\n")
    missing = os.path.join(tmp, "no-such-dir", "missing-input.csv")
    help_result = run([weir, "agg", "--help"])
    usage_lines = set(help_result.stdout.split("\n")) if help_result is not None else set()

    def replace(args, option, value):
        args = list(args)
        args[args.index(option) + 1] = value
        return args

    def without(args, option):
        args = list(args)
        i = args.index(option)
        del args[i:i + 2]
        return args

    cases = [
        # (what, how to change the good command line, strings one of which stderr must hold)
        ("unknown --key column", lambda a: replace(a, "--key", "card,nosuchkey"),
         ["nosuchkey"]),
        ("unknown --time column", lambda a: replace(a, "--time", "nosuchtime"),
         ["nosuchtime"]),
        ("unknown aggregate column", lambda a: replace(a, "--agg", "count,sum:nosuchagg"),
         ["nosuchagg"]),
        ("unknown aggregate function", lambda a: replace(a, "--agg", "count,median:amount"),
         ["median"]),
        ("--window tumbling:abc", lambda a: replace(a, "--window", "tumbling:abc"),
         ["tumbling:abc", "window"]),
        ("--window sliding:10", lambda a: replace(a, "--window", "sliding:10"),
         ["sliding:10", "window"]),
        ("--window bogus", lambda a: replace(a, "--window", "bogus"), ["bogus", "window"]),
        ("bad --schema type",
         lambda a: replace(a, "--schema", "ts:i64,card:str,merchant:str,amount:f65"), ["f65"]),
        ("missing --input file", lambda a: replace(a, "--input", missing), [missing]),
        ("missing --window", lambda a: without(a, "--window"), ["--window"]),
        ("missing --input", lambda a: without(a, "--input"), ["--input"]),
        ("--workers abc", lambda a: replace(a, "--workers", "abc"), ["workers"]),
        ("--ring-slots 3 (not a power of two)", lambda a: a + ["--ring-slots", "3"],
         ["ring"]),
        ("--format xml", lambda a: a + ["--format", "xml"], ["xml", "format"]),
    ]
    for what, change, needles in cases:
        label = f"usage error: {what}"
        out = os.path.join(tmp, f"cli-{len(failures)}-{time.monotonic_ns()}.jsonl")
        args = change(agg_args(weir, data, out))
        result = run(args)
        if result is None:
            fail(label, f"timed out: {' '.join(args)}")
            continue
        problems = []
        # The usage text names every option: look only at the other lines.
        message = "\n".join(line for line in result.stderr.split("\n")
                            if line.strip() and line not in usage_lines)
        if result.returncode != 2:
            problems.append(f"exit status {result.returncode}, expected 2")
        if not result.stderr.strip():
            problems.append("nothing on stderr")
        elif not any(n.lower() in message.lower() for n in needles):
            problems.append(f"stderr does not mention {' or '.join(map(repr, needles))} "
                            f"(outside the usage text)")
        if os.path.exists(out) and os.path.getsize(out) > 0:
            problems.append("rows were written although the command line is bad")
        if problems:
            fail(label, "; ".join(problems) + f"\n  command: {' '.join(args)}\n  stderr: "
                 f"{tail(result.stderr, 6)}")
        else:
            ok(label, message.split("\n")[0][:110])


# ---- 3. late events ----

def late_file_text():
    lines = ["ts,card,merchant,amount"]
    for i in range(100):
        lines.append(f"{i * 10},c{i % 2 + 1:05d},m001,{(i % 8 + 1) * 0.25:.2f}")
    lines.append("10000,c00003,m001,1.00")
    for i in range(100):
        lines.append(f"{10001 + i},c00002,m002,{(i % 5 + 1) * 0.5:.2f}")
    lines.append("5,c00001,m003,7.25")  # the late one: the clock is at least 9990
    for i in range(50):
        lines.append(f"{10101 + i},c00001,m001,1.50")
    lines.append("20000,c00004,m001,2.00")
    return "\n".join(lines) + "\n"


def late_counts(stderr):
    """Numbers stderr gives next to 'late', 'dropped' or 'arrived after'."""
    numbers = set()
    for m in re.finditer(r"(\d+)\s+(?:late\b|dropped|(?:late\s+)?events?\s+(?:were\s+)?"
                         r"(?:late|dropped|arrived after))", stderr, re.I):
        numbers.add(int(m.group(1)))
    for m in re.finditer(r"\b(?:late|dropped)(?:\s+events?)?\s*[:=]?\s*(\d+)", stderr, re.I):
        numbers.add(int(m.group(1)))
    return numbers


def check_late(weir, tmp):
    text = late_file_text()
    data = os.path.join(tmp, "late.csv")
    with open(data, "w", encoding="utf-8") as f:
        f.write(text)
    events = parse_good(text)
    late_event = (5, "c00001", "m003", 7.25)
    on_time = [e for e in events if e != late_event]
    assert len(on_time) == len(events) - 1

    # --lateness 0: the event goes to --late-out and nowhere else.
    label = "late event, --lateness 0"
    out = os.path.join(tmp, "late-0.jsonl")
    late = os.path.join(tmp, "late-0-late.jsonl")
    args = agg_args(weir, data, out, out_of_orderness=10,
                    extra=["--lateness", "0", "--late-out", late, "--batch", "16"])
    result = run(args)
    if result is None or result.returncode != 0:
        fail(label, f"{'timed out' if result is None else result.returncode}: "
                    f"{' '.join(args)}\n{'' if result is None else tail(result.stderr)}")
    else:
        problems = False
        late_rows = read_rows(late, [], label)
        want = {"ts": 5, "card": "c00001", "amount": 7.25}
        if late_rows != [want]:
            fail(label, f"--late-out holds {late_rows}, expected [{want}]")
            problems = True
        if 1 not in late_counts(result.stderr):
            fail(label, f"stderr does not give the late count 1:\n{tail(result.stderr)}")
            problems = True
        rows = read_rows(out, ["card"], label)
        if not compare(rows, reference(on_time, ["card"], 1000, 1000), ["card"], label):
            problems = True
        if not problems:
            ok(label, f"late file {late_rows}")

    # A large --lateness: the event updates its (already fired) window, which is emitted
    # again; the last row per window and key is the complete one.
    label = "late event within --lateness"
    out = os.path.join(tmp, "late-big.jsonl")
    late = os.path.join(tmp, "late-big-late.jsonl")
    args = agg_args(weir, data, out, out_of_orderness=10,
                    extra=["--lateness", "100000", "--late-out", late, "--batch", "16"])
    result = run(args)
    if result is None or result.returncode != 0:
        fail(label, f"{'timed out' if result is None else result.returncode}: "
                    f"{' '.join(args)}\n{'' if result is None else tail(result.stderr)}")
    else:
        problems = False
        late_rows = read_rows(late, [], label) if os.path.exists(late) else []
        if late_rows:
            fail(label, f"--late-out holds {late_rows}, expected nothing")
            problems = True
        rows = read_rows(out, ["card"], label)
        if not compare(rows, reference(events, ["card"], 1000, 1000), ["card"], label,
                       last_wins=True):
            problems = True
        if not problems:
            ok(label, f"{len(rows)} rows, last per window and key match")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_agg_bad_input.py PATH/TO/weir")
    weir = os.path.abspath(sys.argv[1])
    if not os.access(weir, os.X_OK):
        sys.exit(f"FAIL: {weir} is not an executable")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="weir-bad-") as tmp:
        check_malformed(weir, tmp)
        check_bad_lines_do_not_move_clock(weir, tmp)
        check_quoting(weir, tmp)
        check_resumed_report(weir, tmp)
        check_cli_errors(weir, tmp)
        check_late(weir, tmp)
    elapsed = time.monotonic() - started
    if failures:
        print(f"\ntest_agg_bad_input: {len(failures)} failures ({elapsed:.1f} s):")
        for failure in failures:
            print("  " + failure.split("\n")[0])
        return 1
    print(f"test_agg_bad_input: all checks pass ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
