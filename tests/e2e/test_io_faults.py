#!/usr/bin/env python3
"""Goal: an I/O error while `weir agg --state-dir` writes its log, staged output, manifests
or output never loses or duplicates output silently: the run either finishes (exit 0) with
the reference output, or stops with exit status 1 and an error message (no crash signal, no
sanitizer report, no hang), leaving only committed whole lines in --out, and then the same
command without faults continues and finishes with the reference output.  A WEIR_FAULT that
cannot be parsed is refused with exit status 2 and a message.

Method: write an input with `weir gen`, compute the reference with a run without
--state-dir, then run the job with --state-dir (--checkpoint-interval 20ms, 2 workers) and
WEIR_FAULT set to each of write-eio, fsync-eio, enospc and short-write at @N for N in 1, 2, 3,
5, 9, 17, 40, 100 (the N-th durable write or fsync of the process: small N hits the
first log blocks, staged output and manifests; a large N may come after the last one, and
then the run must simply succeed), plus two rules at once.  For each run: the exit status
must be 0 or 1; with 1, stderr must say what failed ("weir agg: ...", with the injected
error's text: "Input/output error" or "No space left on device"), --out must hold only
whole lines, each a reference line and none twice, and a rerun without WEIR_FAULT must exit
0 with the reference output; with 0, the output must equal the reference.  Then one run
whose only epoch is published in several 1 MiB copies (--checkpoint-interval 10m) gets
write-eio at one of those copies (N found by bisection: the largest N that still fails,
then down until stderr says "publishing output"): the output the failed run leaves must
still be whole lines, and the rerun must finish it.  Then WEIR_FAULT=garbage (and other
malformed rules) must exit 2 naming the rule.  Every weir run has a subprocess timeout.

Usage: test_io_faults.py PATH/TO/weir   (WEIR_SOURCE_ROOT: the repository root)
Exit 0 when every case passes; otherwise 1, with one FAIL line per failing case.
"""
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

from e2e import failures, fail, ok, tail

SCHEMA = "ts:i64,card:str,merchant:str,amount:f64"
AGGS = "count,sum:amount,min:amount,max:amount"
ROWS = 600000
CARDS = 5000
DISORDER = 100
TIMEOUT_S = 120
KINDS = ("write-eio", "fsync-eio", "enospc", "short-write")
NTH = (1, 2, 3, 5, 9, 17, 40, 100)
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:")


def run(args, timeout=TIMEOUT_S, fault=None):
    """Runs a command with WEIR_FAULT=fault (unset when None); CompletedProcess or None after
    a timeout."""
    env = dict(os.environ)
    env.pop("WEIR_FAULT", None)
    if fault is not None:
        env["WEIR_FAULT"] = fault
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None


def read_output(path):
    if not os.path.exists(path):
        return b"", collections.Counter()
    with open(path, "rb") as f:
        data = f.read()
    return data, collections.Counter(data.split(b"\n")[:-1] if data else [])


class Job:
    def __init__(self, weir, tmp, name, rows, cards, windows):
        self.weir = weir
        self.tmp = tmp
        self.data = os.path.join(tmp, f"{name}.csv")
        self.gen = ["gen", "--rows", str(rows), "--cards", str(cards), "--disorder",
                    str(DISORDER), "--seed", str(31 + cards)]
        result = run([weir] + self.gen + ["--out", self.data])
        if result is None or result.returncode != 0:
            sys.exit("FAIL: weir gen did not work")
        self.window = rows * 10 // windows  # ts steps of 10
        out = os.path.join(tmp, f"{name}-reference.jsonl")
        args = self.args(out, None, 2, None)
        result = run(args)
        if result is None or result.returncode != 0:
            sys.exit(f"FAIL: the reference run {' '.join(args)} did not work")
        self.reference = read_output(out)[1]
        self.cases = 0

    def args(self, out, state, workers, interval):
        args = [self.weir, "agg", "--input", self.data, "--schema", SCHEMA, "--time", "ts",
                "--key", "card", "--window", f"tumbling:{self.window}", "--agg", AGGS,
                "--out-of-orderness", str(2 * DISORDER), "--out", out, "--workers",
                str(workers), "--no-pin", "--quiet"]
        if state is not None:
            args += ["--state-dir", state, "--checkpoint-interval", interval]
        return args

    def fresh(self):
        self.cases += 1
        state = os.path.join(self.tmp, f"state-{self.cases}")
        out = os.path.join(self.tmp, f"out-{self.cases}.jsonl")
        return state, out

    def compare(self, label, out, what):
        """True when out equals the reference; a FAIL otherwise."""
        data, lines = read_output(out)
        missing = sum((self.reference - lines).values())
        extra = sum((lines - self.reference).values())
        partial = bool(data) and not data.endswith(b"\n")
        if missing or extra or partial:
            fail(label, f"{what}: the output differs from the reference: {missing} lines "
                        f"missing, {extra} extra or duplicated"
                        f"{', a partial last line' if partial else ''}")
            return False
        return True

    def check_committed(self, label, out):
        """After a failed run: --out holds whole lines, each a reference line, none twice."""
        data, lines = read_output(out)
        problems = []
        if data and not data.endswith(b"\n"):
            problems.append(f"it ends in a partial line ({len(data)} bytes, last bytes "
                            f"{data[-60:]!r})")
        unknown = sum(n for line, n in lines.items() if line not in self.reference)
        twice = sum(n - self.reference[line] for line, n in lines.items()
                    if line in self.reference and n > self.reference[line])
        if unknown:
            problems.append(f"{unknown} lines are not reference lines")
        if twice:
            problems.append(f"{twice} lines are duplicated")
        if problems:
            fail(label, "after the failed run the output holds more than committed whole "
                        "lines: " + "; ".join(problems))
        return len(data)


def sanitizer_report(text):
    return next((mark for mark in SANITIZER_MARKS if mark in text), None)


def fault_case(job, kind, nth, workers=2, interval="20ms"):
    """One run with WEIR_FAULT=kind@nth, then a rerun without faults when it failed.
    Returns the failed run's stderr, or None when it exited 0 (or failed to check)."""
    fault = kind if nth is None else f"{kind}@{nth}"
    label = f"WEIR_FAULT={fault}"
    state, out = job.fresh()
    args = job.args(out, state, workers, interval)
    result = run(args, fault=fault)
    command = f"WEIR_FAULT={fault} {' '.join(args)}"
    if result is None:
        fail(label, f"timed out after {TIMEOUT_S} s (hang?): {command}")
        return None
    mark = sanitizer_report(result.stderr)
    if mark:
        fail(label, f"{mark} report: {command}\n{tail(result.stderr, 30)}")
    if result.returncode < 0:
        fail(label, f"killed by signal {-result.returncode} (a crash): {command}\n"
                    f"{tail(result.stderr)}")
        return None
    if result.returncode == 0:
        if job.compare(label, out, "exit 0"):
            abandoned = result.stderr.count("abandoned")
            ok(label, "exit 0, output equals the reference"
                      f"{f' ({abandoned} checkpoints abandoned)' if abandoned else ''}")
        return None
    message = [line for line in result.stderr.splitlines() if line.startswith("weir")]
    if result.returncode != 1 or not message:
        fail(label, f"exit status {result.returncode}, expected 0, or 1 with an error "
                    f"message: {command}\nstderr:\n{tail(result.stderr)}")
    # The message says what went wrong, in the words of the injected errno.
    reasons = [text for rule, text in (("eio", "Input/output error"),
                                       ("enospc", "No space left on device")) if rule in fault]
    if reasons and not any(reason in result.stderr for reason in reasons):
        fail(label, f"stderr does not say {' or '.join(reasons)!r}:\n{tail(result.stderr)}")
    length = job.check_committed(label, out)
    rerun = run(args)
    if rerun is None:
        fail(label, f"the rerun without faults timed out: {' '.join(args)}")
        return result.stderr
    if rerun.returncode != 0:
        fail(label, f"the rerun without faults: exit status {rerun.returncode}, expected 0: "
                    f"{' '.join(args)}\n{tail(rerun.stderr)}")
        return result.stderr
    if job.compare(label, out, "after the rerun without faults"):
        ok(label, f"exit 1 ({message[-1][:150] if message else ''}); {length} bytes of "
                  f"output kept; the rerun finished with the reference output")
    return result.stderr


def publish_case(job):
    """write-eio at one of the 1 MiB copies of a publish: bisect for the largest failing N."""
    label = "write-eio during a multi-chunk publish"
    low, high = 1, 1
    # The largest N that fails: grow high until a run succeeds, then bisect.
    while True:
        state, out = job.fresh()
        result = run(job.args(out, state, 2, "10m"), fault=f"write-eio@{high}")
        if result is None or result.returncode not in (0, 1):
            fail(label, f"write-eio@{high}: "
                        f"{'timed out' if result is None else tail(result.stderr)}")
            return
        if result.returncode == 0:
            break
        low = high
        high *= 2
        if high > 1 << 20:
            fail(label, "write-eio@N fails for every N up to 2^20")
            return
    while high - low > 1:
        mid = (low + high) // 2
        state, out = job.fresh()
        result = run(job.args(out, state, 2, "10m"), fault=f"write-eio@{mid}")
        if result is None:
            fail(label, "timed out")
            return
        if result.returncode == 0:
            high = mid
        else:
            low = mid
    for nth in range(low, max(low - 6, 0), -1):
        state, out = job.fresh()
        args = job.args(out, state, 2, "10m")
        result = run(args, fault=f"write-eio@{nth}")
        if result is None or result.returncode == 0 or "publishing output" not in result.stderr:
            continue
        before = len(failures)
        length = job.check_committed(f"{label} (write-eio@{nth})", out)
        if len(failures) > before:
            agg = " ".join(job.args("out.jsonl", "st", 2, "10m")[1:])
            agg = agg.replace(job.data, "in.csv")
            print(f"     reproduce: weir {' '.join(job.gen)} --out in.csv; rm -rf st out.jsonl; "
                  f"WEIR_FAULT=write-eio@{nth} weir {agg}; tail -c 100 out.jsonl  (N depends "
                  f"on batching; stderr must say 'publishing output')", flush=True)
        rerun = run(args)
        if rerun is None or rerun.returncode != 0:
            fail(label, f"the rerun without faults did not finish: "
                        f"{'timeout' if rerun is None else tail(rerun.stderr)}")
            return
        if job.compare(label, out, "after the rerun without faults") and \
                len(failures) == before:
            ok(f"{label} (write-eio@{nth})", f"{tail(result.stderr, 1)[:120]}; {length} "
               f"bytes kept, whole lines; the rerun finished it")
        return
    print(f"     {label}: no N in {low}..{max(low - 5, 1)} failed while publishing "
          f"(not checked)", flush=True)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_io_faults.py PATH/TO/weir")
    weir = os.path.abspath(sys.argv[1])
    if not os.access(weir, os.X_OK):
        sys.exit(f"FAIL: {weir} is not an executable")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="weir-iofault-") as tmp:
        job = Job(weir, tmp, "in", ROWS, CARDS, windows=10)
        counts = collections.Counter()
        for kind in KINDS:
            for nth in NTH:
                stderr = fault_case(job, kind, nth)
                counts[(kind, stderr is not None)] += 1
            # Keep the disk from filling with the cases' state dirs.
            for name in os.listdir(tmp):
                if name.startswith(("state-", "out-")):
                    path = os.path.join(tmp, name)
                    shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        fault_case(job, "write-eio@4,fsync-eio@4", None, workers=3)
        fault_case(job, "enospc@7,short-write@2", None, workers=1)
        print("     failed runs per kind: " + ", ".join(
            f"{kind} {counts[(kind, True)]} of {len(NTH)}" for kind in KINDS), flush=True)

        # A publish copied in several 1 MiB pieces (one epoch of 40000 rows).
        big = Job(weir, tmp, "big", 200000, 20000, windows=2)
        publish_case(big)

        # Malformed rules: exit 2 with a message naming the rule.
        state, out = job.fresh()
        for rule in ("garbage", "kill:", "write-eio@0", "write-eio@x", "fsync-eio@3,bogus@1"):
            result = run(job.args(out, state, 2, "20ms"), fault=rule)
            label = f"WEIR_FAULT={rule}"
            if result is None:
                fail(label, "timed out")
            elif result.returncode != 2 or "WEIR_FAULT" not in result.stderr:
                fail(label, f"exit status {result.returncode}, expected 2 with a message "
                            f"naming WEIR_FAULT:\n{tail(result.stderr)}")
            else:
                ok(label, f"exit 2: {tail(result.stderr, 1)[:150]}")

    elapsed = time.monotonic() - started
    if failures:
        print(f"\ntest_io_faults: {len(failures)} failures ({elapsed:.1f} s):")
        for failure in failures:
            print("  " + failure.split("\n")[0])
        return 1
    print(f"test_io_faults: all cases pass ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
