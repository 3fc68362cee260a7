#!/usr/bin/env python3
"""Goal: `weir agg --state-dir` is exactly-once under kill -9: however often and wherever the
process dies (at random moments, at every named kill point, during recovery, twice within a
second, and restarted with a different --workers count each time), running the same command
again until it exits 0 leaves --out holding exactly the rows of a failure-free run, none
lost and none twice; between crashes --out only ever holds whole committed lines (a prefix of
what it will finally hold, every line one of the reference's); a rerun after the end says
"already finished" and leaves the file byte-identical; `weir checkpoints --verify` accepts
the state dir of a crashed job.

Method: write one input with `weir gen` (WEIR_TORTURE_ROWS rows, default 3000000; no event
later than --out-of-orderness, so no lateness decision depends on timing), run it once
without --state-dir (the reference: its sorted lines) and once with --state-dir and no
fault (must equal the reference; its duration D scales the random kill delays).  Then run
"episodes": each starts with an empty state dir and output file and runs the job again and
again, killed each time, until a run without a fault exits 0, then compares the output with
the reference (counts of missing and extra lines), reruns it ("already finished", same
bytes) and starts the next episode.  The kills, in order:
  * random SIGKILLs sent by this test after a random delay (0.05..0.9 D), with
    --checkpoint-interval 100ms, on 1, then 2, then 3 workers, then random counts;
  * two kills less than a second apart; a kill 0..50 ms after a restart (during recovery);
    then more random kills, some with --checkpoint-interval 20ms or --checkpoints-kept 1
    or 2 (the default is 3);
  * WEIR_FAULT=kill:POINT@N at every kill point the code names (checkpoint.sealed,
    checkpoint.before-manifest, checkpoint.after-manifest, checkpoint.published,
    sink.publish, recovery.manifest, recovery.replay, compaction.start) with several N,
    --checkpoint-interval 20ms; the recovery points run right after another kill so there
    is something to recover; each must end in SIGKILL with the fault message (a point that
    is never reached fails the test); kill:recovery.replay is followed by a kill soon after
    the next restart;
  * compaction.start with a job whose log outgrows its live state (a 1/3-of-the-input
    window over 20000 keys, --checkpoint-interval 10ms), then a random kill;
  * kills around the last checkpoint, the one that marks the job finished (a smaller
    input, --checkpoint-interval 10m so it is the only one): before its manifest, after
    it, during its publish, after its publish; the rerun must complete the output.
After every kill: the output is empty or ends with a newline, every line is a reference
line and none occurs more often than in the reference, and the output before the kill is a
byte prefix of it (committed rows are never taken back).  `weir checkpoints --verify` runs
after the first kill of each episode and after every fourth kill, and must exit 0.
D follows the machine: each whole run (one that started from nothing and was not killed)
updates it.  Random choices come from one seed, printed; WEIR_SEED=N replays them (timing
still varies).
Every weir run has a subprocess timeout, so a hang fails the test instead of hanging it.
--long: many more random kills and more kill points (for hand runs).

Usage: test_exactly_once.py [--long] PATH/TO/weir   (WEIR_SOURCE_ROOT: the repository root)
Environment: WEIR_TORTURE_ROWS (input rows), WEIR_SEED (random seed).
Exit 0 when every check passes; otherwise 1, with one FAIL line per failing check.
"""
import collections
import functools
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from e2e import failures, fail, ok, tail, run


SCHEMA = "ts:i64,card:str,merchant:str,amount:f64"
AGGS = "count,sum:amount,min:amount,max:amount"
DISORDER = 100
CARDS = 5000                 # the torture input: ten windows of 5000 keys
COMPACTION_CARDS = 20000     # the compaction input: three windows of 20000 keys
TIMEOUT_S = 180
run = functools.partial(run, timeout=TIMEOUT_S)  # runs here may take longer
FAULT_MESSAGE = "fault injection: killed at a kill point"


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    return data, collections.Counter(data.split(b"\n")[:-1] if data else [])


class Torture:
    def __init__(self, weir, tmp, rng):
        self.weir = weir
        self.tmp = tmp
        self.rng = rng
        self.job = None        # the current Job: input, window, reference
        self.duration = 1.0    # seconds of a failure-free run with --state-dir
        self.episode = 0
        self.state = self.out = None
        self.previous = b""    # the output after the last kill
        self.kills = 0         # runs that ended in SIGKILL
        self.random_kills = 0
        self.point_kills = collections.Counter()  # kill point -> times it killed
        self.kill_times = []   # time.monotonic() of each kill
        self.workers_seen = []  # --workers of each run in order
        self.verifies = 0
        self.runs = 0

    def agg_args(self, job, out, state, workers, interval, kept=None):
        args = [self.weir, "agg", "--input", job.data, "--schema", SCHEMA, "--time", "ts",
                "--key", "card", "--window", f"tumbling:{job.window}",
                "--agg", AGGS, "--out-of-orderness", str(2 * DISORDER), "--out", out,
                "--workers", str(workers), "--no-pin", "--quiet"]
        if state is not None:
            args += ["--state-dir", state, "--checkpoint-interval", interval]
        if kept is not None:
            args += ["--checkpoints-kept", str(kept)]
        return args

    # ---- episodes ----

    def new_episode(self, label, job=None):
        """Starts from an empty state dir and output (the last episode's are removed)."""
        if self.state is not None:
            shutil.rmtree(self.state, ignore_errors=True)
            if os.path.exists(self.out):
                os.unlink(self.out)
        self.job = job or self.job
        self.episode_label = label
        self.episode += 1
        self.state = os.path.join(self.tmp, f"state-{self.episode}")
        self.out = os.path.join(self.tmp, f"out-{self.episode}.jsonl")
        self.previous = b""
        self.episode_kills = 0
        self.finished = False
        print(f"--   episode {self.episode}: {label}", flush=True)

    def start(self, workers, interval, fault=None, kill_after=None, kept=None):
        """One run of the job.  kill_after: seconds after which this test SIGKILLs it (None:
        let it run).  Returns (returncode or None on timeout, stderr text, seconds, args)."""
        args = self.agg_args(self.job, self.out, self.state, workers, interval, kept)
        env = dict(os.environ)
        env.pop("WEIR_FAULT", None)
        if fault is not None:
            env["WEIR_FAULT"] = fault
        self.runs += 1
        self.workers_seen.append(workers)
        err_path = os.path.join(self.tmp, "stderr.txt")
        started = time.monotonic()
        with open(err_path, "w+") as err:
            process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err, env=env)
            try:
                if kill_after is not None:
                    try:
                        process.wait(timeout=kill_after)
                    except subprocess.TimeoutExpired:
                        process.send_signal(signal.SIGKILL)
                rc = process.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                rc = None
            elapsed = time.monotonic() - started
            err.seek(0)
            stderr = err.read()
        if rc == -signal.SIGKILL:
            self.kills += 1
            self.episode_kills += 1
            self.kill_times.append(time.monotonic())
        return rc, stderr, elapsed, args

    def describe(self, args, fault):
        return (f"WEIR_FAULT={fault} " if fault else "") + " ".join(args)

    def step(self, label, workers, interval, fault=None, kill_after=None, expect_kill=None,
             kept=None, verify=True):
        """Runs once; checks the outcome and the output after a kill.  Returns 'killed',
        'finished' (exit 0: the episode was completed and checked), or 'failed'.  After a
        finished episode the next step starts a new one (same job)."""
        if self.finished:
            self.new_episode(self.episode_label.split(",")[0] + ", continued")
        rc, stderr, elapsed, args = self.start(workers, interval, fault, kill_after, kept)
        label = (f"episode {self.episode} {label} workers={workers} {interval}"
                 f"{f' kept={kept}' if kept else ''}")
        if rc is None:
            fail(label, f"timed out after {TIMEOUT_S} s (hang?): "
                        f"{self.describe(args, fault)}\nstderr:\n{tail(stderr)}")
            return "failed"
        if rc == -signal.SIGKILL:
            if fault is not None and FAULT_MESSAGE not in stderr:
                fail(label, f"killed, but stderr lacks '{FAULT_MESSAGE}':\n{tail(stderr)}")
            if fault is None and kill_after is not None:
                self.random_kills += 1
            if fault is not None:
                self.point_kills[fault.split(":", 1)[1].split("@")[0]] += 1
            print(f"     {label}: killed after {elapsed:.3f} s", flush=True)
            self.check_after_kill(label)
            if verify and (self.episode_kills == 1 or self.kills % 4 == 0):
                self.verify(label)
            return "killed"
        if rc == 0:
            if self.episode_kills == 0 and fault is None and \
                    "already finished" not in stderr:
                # A whole run: the machine's speed now, for the random delays.
                self.duration = max(0.5 * self.duration + 0.5 * elapsed, 0.2)
            if expect_kill:
                print(f"     {label}: {fault} not reached, the job finished "
                      f"({elapsed:.3f} s)", flush=True)
            self.check_finished(label, args, stderr)
            return "finished"
        fail(label, f"exit status {rc} (expected 0 or SIGKILL): "
                    f"{self.describe(args, fault)}\nstderr:\n{tail(stderr)}")
        return "failed"

    def check_after_kill(self, label):
        if not os.path.exists(self.out):
            if self.previous:
                fail(label, f"{self.out} vanished after a kill")
            return
        data, lines = read_lines(self.out)
        reference = self.job.reference
        if data and not data.endswith(b"\n"):
            # A kill can stop the publish's write at a page boundary: the start of a
            # committed row, which the restart completes (the prefix check below then
            # holds).  Anything else is a row that should not be there.
            torn = data[data.rfind(b"\n") + 1:]
            if any(line.startswith(torn) for line in reference):
                print(f"     {label}: the kill tore a publish; the file ends in the first "
                      f"{len(torn)} bytes of a committed row", flush=True)
            else:
                fail(label, f"output ends in a partial line that begins no row of the "
                            f"reference after the kill: {data[-80:]!r} ({len(data)} bytes)")
        unknown = sum(n for line, n in lines.items() if line not in reference)
        twice = sum(n - reference[line] for line, n in lines.items()
                    if line in reference and n > reference[line])
        if unknown or twice:
            example = next((line for line in lines if line not in reference), None)
            fail(label, f"after the kill the output holds {unknown} lines that are not in "
                        f"the reference and {twice} duplicated lines (uncommitted or "
                        f"repeated rows became visible), e.g. {example!r}")
        if not data.startswith(self.previous):
            fail(label, f"the output before this kill ({len(self.previous)} bytes) is not a "
                        f"prefix of the output after it ({len(data)} bytes): committed "
                        f"rows were taken back or rewritten")
        self.previous = data

    def verify(self, label):
        result = run([self.weir, "checkpoints", "--state-dir", self.state, "--verify"])
        self.verifies += 1
        if result is None:
            fail(label, "weir checkpoints --verify timed out")
        elif result.returncode != 0:
            fail(label, f"weir checkpoints --state-dir {self.state} --verify: exit status "
                        f"{result.returncode}, expected 0:\n{tail(result.stdout)}"
                        f"\n{tail(result.stderr)}")
        elif "NOT VERIFIED" in result.stdout or "DAMAGED" in result.stdout:
            fail(label, f"weir checkpoints --verify exit 0 but says:\n{tail(result.stdout)}")

    def check_finished(self, label, args, stderr):
        """The job exited 0: compare with the reference, rerun, then the episode is done."""
        if self.finished:
            fail(label, "a finished episode was run again (a bug in this test)")
            return
        self.finished = True
        if not os.path.exists(self.out):
            fail(label, f"exit 0 but no output file {self.out}")
            return
        data, lines = read_lines(self.out)
        reference = self.job.reference
        missing = sum((reference - lines).values())
        extra = sum((lines - reference).values())
        whole = not data or data.endswith(b"\n")
        if missing or extra or not whole:
            example_missing = next(iter(reference - lines), None)
            example_extra = next(iter(lines - reference), None)
            fail(label, f"after {self.episode_kills} kills the output differs from the "
                        f"reference: {sum(lines.values())} lines, expected "
                        f"{sum(reference.values())}; {missing} missing "
                        f"(e.g. {example_missing!r}), {extra} extra or duplicated "
                        f"(e.g. {example_extra!r}){'' if whole else ', partial last line'}"
                        f"\n     command: {' '.join(args)}")
        else:
            ok(label, f"finished after {self.episode_kills} kills: {sum(lines.values())} "
                      f"lines, 0 missing, 0 duplicated")
        if not data.startswith(self.previous):
            fail(label, "the output before the last kill is not a prefix of the final output")
        rerun = run(args)
        if rerun is None:
            fail(label, "the rerun after the end timed out")
        elif rerun.returncode != 0 or "already finished" not in rerun.stderr:
            fail(label, f"the rerun after the end: exit status {rerun.returncode}, expected 0 "
                        f"and 'already finished' on stderr:\n{tail(rerun.stderr)}")
        with open(self.out, "rb") as f:
            if f.read() != data:
                fail(label, "the rerun after the end changed the output file")

    def finish(self, label, workers=None):
        """Runs the episode to the end (no fault) unless it already ended."""
        if self.finished:
            return "finished"
        for attempt in range(3):
            outcome = self.step(f"{label} (finish)", workers or self.rng.choice((1, 2, 3)),
                                "100ms")
            if outcome != "killed":
                return outcome
        fail(label, "the job was killed while finishing without a fault")
        return "failed"

    def has_checkpoint(self):
        return (not self.finished and os.path.isdir(self.state) and
                any(n.startswith("manifest-") for n in os.listdir(self.state)))

    def random_delay(self, low=0.05, high=0.9):
        return self.rng.uniform(low, high) * self.duration


def source_kill_points():
    """The kill points named in the source (weir_fault_point("NAME")), if it is here."""
    root = os.environ.get("WEIR_SOURCE_ROOT")
    names = []
    if not root:
        return names
    for folder in ("core", "io", "state", "operators", "cli"):
        for base, _, files in os.walk(os.path.join(root, folder)):
            for name in files:
                if name.endswith(".c"):
                    with open(os.path.join(base, name), encoding="utf-8",
                              errors="replace") as f:
                        names += re.findall(r'weir_fault_point\("([^"]+)"\)', f.read())
    return names


class Job:
    """An input file, its window size and the reference output (a Counter of lines)."""
    def __init__(self, data, window):
        self.data = data
        self.window = window
        self.reference = None


def make_job(t, name, rows, cards, windows):
    """Generates an input (`weir gen`: ts steps of 10) and its reference: a run without
    --state-dir and without faults."""
    data = os.path.join(t.tmp, f"{name}.csv")
    result = run([t.weir, "gen", "--rows", str(rows), "--cards", str(cards), "--disorder",
                  str(DISORDER), "--seed", str(17 + cards), "--out", data])
    if result is None or result.returncode != 0:
        sys.exit(f"FAIL: weir gen: {'timeout' if result is None else tail(result.stderr)}")
    job = Job(data, max(rows * 10 // windows, 1))
    out = os.path.join(t.tmp, f"{name}-reference.jsonl")
    args = t.agg_args(job, out, None, 2, None)
    result = run(args)
    if result is None or result.returncode != 0:
        sys.exit(f"FAIL: the reference run: {' '.join(args)}: "
                 f"{'timeout' if result is None else tail(result.stderr)}")
    job.reference = read_lines(out)[1]
    if sum(job.reference.values()) < 100 or max(job.reference.values()) != 1:
        sys.exit(f"FAIL: the reference {out} has {sum(job.reference.values())} lines "
                 f"(duplicates: {max(job.reference.values()) != 1})")
    os.unlink(out)
    return job


def main():
    arguments = sys.argv[1:]
    long_run = "--long" in arguments
    arguments = [a for a in arguments if a != "--long"]
    if len(arguments) != 1:
        sys.exit("usage: test_exactly_once.py [--long] PATH/TO/weir")
    weir = os.path.abspath(arguments[0])
    if not os.access(weir, os.X_OK):
        sys.exit(f"FAIL: {weir} is not an executable")
    rows = int(os.environ.get("WEIR_TORTURE_ROWS", "3000000"))
    seed = int(os.environ.get("WEIR_SEED", str(int(time.time() * 1000) % 1000000)))
    print(f"test_exactly_once: seed {seed} (WEIR_SEED={seed} replays), {rows} rows"
          f"{', long' if long_run else ''}", flush=True)
    rng = random.Random(seed)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="weir-eo-") as tmp:
        t = Torture(weir, tmp, rng)
        main_job = make_job(t, "in", rows, CARDS, windows=10)
        compaction_job = make_job(t, "compaction", rows, COMPACTION_CARDS, windows=3)
        final_job = make_job(t, "final", max(rows // 5, 1000), CARDS, windows=10)

        # A failure-free run with --state-dir: equal to the reference; D.
        t.new_episode("no faults", main_job)
        before = time.monotonic()
        t.step("no faults 100ms", 2, "100ms")
        t.duration = max(time.monotonic() - before, 0.2)
        print(f"     a failure-free run takes {t.duration:.2f} s (D)", flush=True)

        random_target = 120 if long_run else 12

        # ---- random kills, 100ms, workers 1 -> 2 -> 3, two kills within a second, a kill
        # right after a restart ----
        t.new_episode("random kills, 100ms, workers 1 -> 2 -> 3")
        plan = [("random 1", 1, t.random_delay(0.3, 0.6)),
                ("random 2", 2, t.random_delay(0.2, 0.5)),
                ("random 3", 3, t.random_delay(0.2, 0.5))]
        for label, workers, delay in plan:
            t.step(label, workers, "100ms", kill_after=delay)
        if t.workers_seen[-3:] != [1, 2, 3]:
            fail("workers 1 -> 2 -> 3", f"runs had --workers {t.workers_seen[-3:]}")
        # Two kills less than a second apart: the second run dies 0.05..0.5 s after start
        # (and within the first 40% of a run's duration, so it is still running).
        # The first kill's state dir is not verified until after the second (a replay of
        # every log takes seconds on a busy machine, sanitizers on).
        pair_ok = False
        for attempt in range(6):
            # Early in the run, and the second within the rest of it (a run takes D).
            if t.step("pair, first", t.rng.choice((1, 2, 3)), "100ms",
                      kill_after=t.random_delay(0.05, 0.3), verify=False) != "killed":
                continue
            second_delay = min(t.random_delay(0.05, 0.4), t.rng.uniform(0.05, 0.5))
            if (t.step("pair, second", t.rng.choice((1, 2, 3)), "100ms",
                       kill_after=second_delay) == "killed" and
                    t.kill_times[-1] - t.kill_times[-2] < 1.0):
                ok("two kills within one second",
                   f"{t.kill_times[-1] - t.kill_times[-2]:.3f} s apart")
                pair_ok = True
                break
        if not pair_ok:
            fail("two kills within one second", "could not kill twice within a second")
        # A kill right after a restart: during startup and recovery.
        soon = 0
        for attempt in range(6):
            if soon >= 2:
                break
            if not t.has_checkpoint():
                t.step("make a checkpoint", 2, "100ms", fault="kill:checkpoint.published@1",
                       expect_kill=True)
            if t.step("soon after restart", t.rng.choice((1, 2, 3)), "100ms",
                      kill_after=t.rng.uniform(0.0, 0.05)) == "killed":
                soon += 1
        if soon < 2:
            fail("kill soon after restart", f"only {soon} of 2 runs killed within 50 ms")
        # More random kills, random worker counts, until the target.
        for attempt in range(4 * random_target):
            if t.random_kills >= random_target:
                break
            t.step("random", t.rng.choice((1, 2, 3)), t.rng.choice(("100ms", "100ms", "20ms")),
                   kill_after=t.random_delay(), kept=t.rng.choice((None, 1, 2)))
        if t.random_kills < random_target:
            print(f"     only {t.random_kills} of {random_target} random kills: the other "
                  f"runs finished first", flush=True)
        t.finish("random kills")

        # ---- every kill point, 20ms ----
        points = [("checkpoint.sealed", (1, 3)), ("checkpoint.before-manifest", (1, 2)),
                  ("checkpoint.after-manifest", (1, 3)), ("checkpoint.published", (1, 2)),
                  ("sink.publish", (1, 2)), ("recovery.manifest", (1,)),
                  ("recovery.replay", (1, 2))]
        if long_run:
            points = [(p, ns + (4, 7)) if not p.startswith("recovery") else (p, ns + (3,))
                      for p, ns in points]
        rules = [(p, n) for p, ns in points for n in ns]
        t.rng.shuffle(rules)
        # The recovery points only fire when there is a checkpoint to recover: they come
        # last, each after a kill at a checkpoint point when there is none.
        rules.sort(key=lambda r: r[0].startswith("recovery"))
        t.new_episode("kill points, 20ms")
        for point, n in rules:
            fault = f"kill:{point}@{n}"
            workers = t.rng.choice((1, 2, 3))
            if point == "recovery.replay" and n > 1:
                workers = max(workers, n)  # replay is passed once per worker
            for attempt in range(3):
                if point.startswith("recovery") and not t.has_checkpoint():
                    t.step("make a checkpoint", t.rng.choice((1, 2, 3)), "20ms",
                           fault="kill:checkpoint.published@2", expect_kill=True)
                outcome = t.step(fault, workers, "20ms", fault=fault, expect_kill=True)
                if outcome == "finished":
                    continue  # not reached before the end: again, in a new episode
                if outcome == "killed" and point == "recovery.replay":
                    t.step("soon after a recovery kill", t.rng.choice((1, 2, 3)), "20ms",
                           kill_after=t.rng.uniform(0.0, 0.08))
                break
            if t.rng.random() < 0.3:
                t.step("random, 20ms", t.rng.choice((1, 2, 3)), "20ms",
                       kill_after=t.random_delay(0.1, 0.5))
        t.finish("kill points")

        # ---- compaction.start: a long window over many keys, 10ms ----
        t.new_episode("compaction, 10ms", compaction_job)
        for n in ((1, 2) if long_run else (1,)):
            t.step(f"kill:compaction.start@{n}", 2, "10ms", fault=f"kill:compaction.start@{n}",
                   expect_kill=True)
        if t.step("random after compaction", t.rng.choice((1, 3)), "10ms",
                  kill_after=t.random_delay(0.5, 1.0)) == "killed":
            listing = run([weir, "checkpoints", "--state-dir", t.state])
            text = listing.stdout if listing is not None else ""
            snapshot = "new snapshot" in text or any(
                int(first) > 1 for first in re.findall(r"shard \d+: segments (\d+)\.\.", text))
            print(f"     the state dir {'has' if snapshot else 'has no'} snapshot segment "
                  f"after compaction", flush=True)
        t.finish("compaction")

        # ---- kills around the last checkpoint (the one that marks the job finished): with
        # --checkpoint-interval 10m it is the only one ----
        for point in ("checkpoint.before-manifest", "checkpoint.after-manifest",
                      "sink.publish", "checkpoint.published"):
            t.new_episode(f"kill at {point} of the last checkpoint, 10m", final_job)
            t.step(f"kill:{point}@1", t.rng.choice((1, 2, 3)), "10m",
                   fault=f"kill:{point}@1", expect_kill=True)
            t.finish(f"{point} of the last checkpoint")

        # ---- coverage: every point the source names was tested ----
        named = [p for p, _ in points] + ["compaction.start"]
        for point in sorted(set(source_kill_points()) - set(named)):
            fail(f"kill point {point}", "named in the source but not tested here")
        for point in named:
            if t.point_kills[point] == 0:
                fail(f"kill point {point}", "never reached: no run was killed there")
        print(f"     kills: {t.kills} in all, {t.random_kills} random SIGKILLs, at points: "
              f"{dict(sorted(t.point_kills.items()))}; {t.runs} runs in {t.episode} "
              f"episodes; {t.verifies} verifies", flush=True)
        if t.kills < 20:
            fail("kill count", f"only {t.kills} kills, expected 20 or more")

    elapsed = time.monotonic() - started
    if failures:
        print(f"\ntest_exactly_once: {len(failures)} failures ({elapsed:.1f} s, seed {seed}):")
        for failure in failures:
            print("  " + failure.split("\n")[0])
        return 1
    print(f"test_exactly_once: all checks pass ({elapsed:.1f} s, seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
