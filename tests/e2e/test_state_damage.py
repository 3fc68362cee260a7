#!/usr/bin/env python3
"""Goal: a damaged state dir never makes `weir agg --state-dir` silently lose or change
output.  Damage past what the newest checkpoint names (a torn log tail) is cut away and the
job finishes with the reference output; damage inside what it names stops the job (exit 1,
a message naming the segment file and the byte offset), leaves the output file as it was, and
does so again on a second attempt (no silent start from empty state); a missing or damaged
newest manifest makes recovery fall back to the one before it (with a warning naming the
damaged file) and the output still ends equal to the reference; when no manifest reads back
the job refuses to start.

Method: write an input with `weir gen`, compute the reference with a run without
--state-dir, then make a resumable state dir: run with --state-dir, --checkpoint-interval
20ms and WEIR_FAULT=kill:checkpoint.sealed@N (a worker has sealed its log for the next epoch,
so the log has bytes past the newest manifest's end), keeping one where at least 2 manifests
exist, the output holds exactly what the newest one published, and a shard log has a tail.
`weir checkpoints --state-dir` says what the newest manifest names (shard lines
`end SEG@OFFSET`, `sink 0 at N bytes`); the record boundaries of a segment are read here
from the 32-byte record headers (u32 payload length first).  Each case damages its own copy
of the state dir and output file, runs the same command again (on 1, 2 or 3 workers), and
checks the exit status, stderr and the output:
  * tail: cut the segment at a record boundary past the end, cut it mid-record past the end,
    zero a 4 KiB block past the end  -> exit 0, output equals the reference;
  * in range: cut the segment short of the end, delete it, flip a bit in a record payload,
    flip a bit in a record header, zero a 4 KiB block  -> exit 1 naming the file and the
    offset (the checkpoint's end for a short file, else the first damaged record), output
    unchanged, a second attempt fails the same way, `weir checkpoints --verify` exits 1;
  * manifests: delete the newest, flip a byte in it, cut it in half  -> a warning naming it
    (when damaged), exit 0, output equals the reference; damage every manifest -> exit 1,
    a message that refuses to start from empty state, output unchanged; delete every
    manifest -> the same refusal (the state dir says it has held checkpoints), output
    unchanged;
  * a second weir on a state dir another one is using -> exit 2, "in use by another weir
    process".
Every weir run has a subprocess timeout, so a hang fails the test instead of hanging it.

Usage: test_state_damage.py PATH/TO/weir   (WEIR_SOURCE_ROOT: the repository root)
Exit 0 when every case passes; otherwise 1, with one FAIL line per failing case.
"""
import collections
import fcntl
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

from e2e import failures, fail, ok, tail, run


SCHEMA = "ts:i64,card:str,merchant:str,amount:f64"
AGGS = "count,sum:amount,min:amount,max:amount"
ROWS = 1500000
CARDS = 5000
DISORDER = 100
TIMEOUT_S = 120
HEADER = struct.Struct("<IBBHIIQQ")  # length, type, format, state_type, key_group, key_length,
#                                       epoch, checksum: state/log.c
LOG_FORMAT = 0xB1
BLOCK = 4096


def lines_of(path):
    with open(path, "rb") as f:
        data = f.read()
    return collections.Counter(data.split(b"\n")[:-1] if data else [])


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def segment_path(state, shard, segment):
    return os.path.join(state, f"shard-{shard:04d}", f"{segment:016d}.seg")


def manifest_path(state, epoch):
    return os.path.join(state, f"manifest-{epoch:020d}")


def list_checkpoints(weir, state):
    """[{epoch, finished, damaged, sink0, shards: [(first, end_segment, end_offset)]}]"""
    result = run([weir, "checkpoints", "--state-dir", state])
    if result is None:
        return None
    checkpoints = []
    for line in result.stdout.splitlines():
        m = re.match(r"checkpoint (\d+)\s+(DAMAGED)?", line)
        if m:
            checkpoints.append({"epoch": int(m.group(1)), "damaged": bool(m.group(2)),
                                "finished": "finished=yes" in line, "sink0": None,
                                "shards": []})
            continue
        m = re.search(r"sink 0 at (\d+) bytes", line)
        if m and checkpoints:
            checkpoints[-1]["sink0"] = int(m.group(1))
        m = re.match(r"\s+shard (\d+): segments (\d+)\.\.(\d+), end (\d+)@(\d+)", line)
        if m and checkpoints:
            shard, first, end_segment, end2, offset = map(int, m.groups())
            assert shard == len(checkpoints[-1]["shards"]) and end2 == end_segment, line
            checkpoints[-1]["shards"].append((first, end_segment, offset))
    return checkpoints


def records(data, start, stop):
    """Offsets of the records in data[start:stop] (start at a record boundary), parsed from
    their headers; stops at a header that does not parse."""
    offsets = []
    at = start
    while at + HEADER.size <= min(stop, len(data)):
        length, kind, form = HEADER.unpack_from(data, at)[:3]
        if form != LOG_FORMAT or kind > 2:
            break
        offsets.append((at, HEADER.size + length, kind))
        at += HEADER.size + length
    return offsets


class Damage:
    def __init__(self, weir, tmp, data, window, reference):
        self.weir = weir
        self.tmp = tmp
        self.data = data
        self.window = window
        self.reference = reference
        self.base_state = os.path.join(tmp, "base-state")
        self.base_out = os.path.join(tmp, "base-out.jsonl")
        self.cases = 0

    def args(self, state, out, workers):
        return [self.weir, "agg", "--input", self.data, "--schema", SCHEMA, "--time", "ts",
                "--key", "card", "--window", f"tumbling:{self.window}", "--agg", AGGS,
                "--out-of-orderness", str(2 * DISORDER), "--out", out, "--workers",
                str(workers), "--no-pin", "--quiet", "--state-dir", state,
                "--checkpoint-interval", "20ms", "--checkpoints-kept", "3"]

    def make_base(self):
        """A killed job's state dir with >= 2 manifests, output == the newest's sink 0
        bytes, ideally a log tail.  Returns the newest checkpoint's dict, or None."""
        fallback = None
        for n in (13, 17, 9, 21, 25, 7):
            shutil.rmtree(self.base_state, ignore_errors=True)
            if os.path.exists(self.base_out):
                os.unlink(self.base_out)
            env = dict(os.environ, WEIR_FAULT=f"kill:checkpoint.sealed@{n}")
            result = run(self.args(self.base_state, self.base_out, 2), env=env)
            if result is None or result.returncode != -9:
                continue
            checkpoints = list_checkpoints(self.weir, self.base_state)
            if not checkpoints or len(checkpoints) < 2:
                continue
            newest = checkpoints[-1]
            if newest["finished"] or newest["damaged"] or \
                    os.path.getsize(self.base_out) != newest["sink0"]:
                continue
            newest["tails"] = [s for s, (_, seg, end) in enumerate(newest["shards"])
                               if os.path.getsize(segment_path(self.base_state, s, seg)) > end]
            newest["count"] = len(checkpoints)
            newest["n"] = n
            if newest["tails"]:
                return newest
            if fallback is None:
                fallback = newest
                shutil.copytree(self.base_state, self.base_state + "-fallback")
                shutil.copy(self.base_out, self.base_out + "-fallback")
        if fallback is not None:
            shutil.rmtree(self.base_state)
            os.rename(self.base_state + "-fallback", self.base_state)
            os.replace(self.base_out + "-fallback", self.base_out)
        return fallback

    def copy(self, label):
        self.cases += 1
        state = os.path.join(self.tmp, f"case-{self.cases}")
        out = os.path.join(self.tmp, f"case-{self.cases}.jsonl")
        shutil.copytree(self.base_state, state)
        shutil.copy(self.base_out, out)
        return state, out

    def expect_success(self, label, state, out, workers, stderr_has=None):
        result = run(self.args(state, out, workers))
        if result is None:
            fail(label, f"timed out after {TIMEOUT_S} s")
            return
        if result.returncode != 0:
            fail(label, f"exit status {result.returncode}, expected 0 (recovery should cope): "
                        f"{' '.join(self.args(state, out, workers))}\n{tail(result.stderr)}")
            return
        if stderr_has is not None and stderr_has not in result.stderr:
            fail(label, f"exit 0 but stderr lacks {stderr_has!r}:\n{tail(result.stderr)}")
            return
        lines = lines_of(out)
        missing = sum((self.reference - lines).values())
        extra = sum((lines - self.reference).values())
        if missing or extra:
            fail(label, f"exit 0 but the output differs from the reference: {missing} lines "
                        f"missing, {extra} extra or duplicated")
            return
        ok(label, f"exit 0, {sum(lines.values())} lines equal the reference"
                  f"{' (warned)' if stderr_has else ''}")

    def expect_failure(self, label, state, out, workers, needles, verify_fails=True):
        """The run must exit 1 with every needle on stderr, leave the output as it was, and do
        the same on a second attempt."""
        before = read_bytes(out)
        manifests = sorted(n for n in os.listdir(state) if n.startswith("manifest-"))
        good = True
        for attempt in (1, 2):
            result = run(self.args(state, out, workers))
            what = f"attempt {attempt}"
            if result is None:
                fail(label, f"{what}: timed out after {TIMEOUT_S} s")
                return
            if result.returncode != 1:
                lines = lines_of(out)
                missing = sum((self.reference - lines).values())
                extra = sum((lines - self.reference).values())
                fail(label, f"{what}: exit status {result.returncode}, expected 1 (damaged "
                            f"state inside the checkpoint must stop the job); the output now "
                            f"has {missing} lines missing and {extra} extra vs the reference: "
                            f"{' '.join(self.args(state, out, workers))}\n"
                            f"{tail(result.stderr)}")
                return
            message = result.stderr
            # A needle is a string, or a tuple of strings of which one must be there.
            absent = [n for n in needles
                      if not any(a in result.stderr for a in
                                 (n if isinstance(n, tuple) else (n,)))]
            if absent:
                fail(label, f"{what}: exit 1 but stderr lacks {absent}:\n{tail(result.stderr)}")
                good = False
            after = read_bytes(out)
            if after != before:
                fail(label, f"{what}: the failed attempt changed the output file "
                            f"({len(before)} -> {len(after)} bytes)")
                good = False
            now = sorted(n for n in os.listdir(state) if n.startswith("manifest-"))
            if now != manifests:
                fail(label, f"{what}: the failed attempt changed the manifests: {manifests} "
                            f"-> {now}")
                good = False
        if verify_fails:
            result = run([self.weir, "checkpoints", "--state-dir", state, "--verify"])
            if result is None or result.returncode != 1:
                fail(label, f"weir checkpoints --verify: exit status "
                            f"{None if result is None else result.returncode}, expected 1")
                good = False
        if good:
            ok(label, f"exit 1 twice, output unchanged: {tail(message, 1)[:200]}")


def damage_segment(path, offset, length=None, value=None, flip=None, cut=None):
    with open(path, "r+b") as f:
        if cut is not None:
            f.truncate(cut)
        if flip is not None:
            f.seek(flip)
            byte = f.read(1)
            f.seek(flip)
            f.write(bytes([byte[0] ^ 0x10]))
        if value is not None:
            f.seek(offset)
            f.write(value * length)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: test_state_damage.py PATH/TO/weir")
    weir = os.path.abspath(sys.argv[1])
    if not os.access(weir, os.X_OK):
        sys.exit(f"FAIL: {weir} is not an executable")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="weir-damage-") as tmp:
        data = os.path.join(tmp, "in.csv")
        result = run([weir, "gen", "--rows", str(ROWS), "--cards", str(CARDS), "--disorder",
                      str(DISORDER), "--seed", "23", "--out", data])
        if result is None or result.returncode != 0:
            sys.exit("FAIL: weir gen did not work")
        window = ROWS  # ts steps of 10: ten windows
        ref_out = os.path.join(tmp, "reference.jsonl")
        d = Damage(weir, tmp, data, window, None)
        args = [a for a in d.args(os.path.join(tmp, "unused"), ref_out, 2)]
        args = args[:args.index("--state-dir")]
        result = run(args)
        if result is None or result.returncode != 0:
            sys.exit(f"FAIL: the reference run {' '.join(args)} did not work")
        d.reference = lines_of(ref_out)

        newest = d.make_base()
        if newest is None:
            sys.exit("FAIL: could not make a resumable state dir with 2 manifests whose output "
                     "matches the newest (kill:checkpoint.sealed@N)")
        print(f"     base: killed at checkpoint.sealed@{newest['n']}, {newest['count']} "
              f"manifests, newest {newest['epoch']}, shards {newest['shards']}, output "
              f"{newest['sink0']} bytes, log tail in shards {newest['tails']}", flush=True)
        epoch = newest["epoch"]

        # ---- torn tails past the newest manifest's end ----
        if newest["tails"]:
            shard = newest["tails"][0]
            first, seg, end = newest["shards"][shard]
            tail_kind = "past the end"
        else:
            # No run left a tail: make one, a copy of the first records of the segment.
            shard = 0
            first, seg, end = newest["shards"][0]
            tail_kind = "past the end (synthetic: none of the runs left one)"
            path = segment_path(d.base_state, shard, seg)
            content = read_bytes(path)
            with open(path, "ab") as f:
                f.write(content[:3 * BLOCK])
        seg_rel = (shard, seg)
        content = read_bytes(segment_path(d.base_state, shard, seg))
        tail_records = records(content, end, len(content))
        print(f"     shard {shard} segment {seg}: {len(content)} bytes, checkpoint end {end}, "
              f"{len(tail_records)} whole records after it", flush=True)
        boundary = tail_records[1][0] if len(tail_records) > 1 else \
            (tail_records[0][0] + tail_records[0][1] if tail_records else end)
        if boundary >= len(content):
            boundary = end
        label = f"tail cut at a record boundary {tail_kind} (byte {boundary})"
        state, out = d.copy(label)
        damage_segment(segment_path(state, *seg_rel), 0, cut=boundary)
        d.expect_success(label, state, out, 2)

        mid = (tail_records[0][0] + HEADER.size + 3) if tail_records else end + 17
        mid = min(mid, len(content) - 1)
        label = f"tail cut mid-record {tail_kind} (byte {mid})"
        state, out = d.copy(label)
        damage_segment(segment_path(state, *seg_rel), 0, cut=mid)
        d.expect_success(label, state, out, 3)

        zero_at = (end + BLOCK - 1) // BLOCK * BLOCK
        if zero_at + 1 <= len(content):
            label = f"zeroed 4 KiB block {tail_kind} (byte {zero_at})"
            state, out = d.copy(label)
            damage_segment(segment_path(state, *seg_rel), zero_at, BLOCK, b"\0")
            d.expect_success(label, state, out, 1)

        # ---- damage inside what the newest manifest names ----
        shard = 0
        first, seg, end = newest["shards"][shard]
        path_rel = (shard, seg)
        content = read_bytes(segment_path(d.base_state, shard, seg))
        named = records(content, 0, end)
        if not named or named[-1][0] + named[-1][1] != end:
            fail("parse", f"the records of shard {shard} segment {seg} do not end at the "
                          f"checkpoint's end {end} (parsed {len(named)})")
        states = [r for r in named if r[2] == 1]  # WEIR_LOG_STATE
        middle = states[len(states) // 2]

        def in_range_case(label, workers, needles_for, **damage):
            state, out = d.copy(label)
            path = segment_path(state, *path_rel)
            if damage.get("delete"):
                os.unlink(path)
            else:
                damage_segment(path, damage.get("offset", 0), damage.get("length"),
                               damage.get("value"), damage.get("flip"), damage.get("cut"))
            d.expect_failure(label, state, out, workers, needles_for(path))

        cut = end - BLOCK - 7
        in_range_case(f"segment cut short of the checkpoint's end ({cut} < {end})", 2,
                      lambda p: [p, f"byte {end}"], cut=cut)
        in_range_case("segment the checkpoint names deleted", 3,
                      lambda p: [p, ("missing", "No such file")], delete=True)
        flip = middle[0] + HEADER.size + 2
        in_range_case(f"bit flipped in a record payload (byte {flip}, record at {middle[0]})",
                      2, lambda p: [p, f"byte {middle[0]}"], flip=flip)
        header_record = states[len(states) // 3]
        flip = header_record[0] + 8  # key_group
        in_range_case(f"bit flipped in a record header (byte {flip})", 1,
                      lambda p: [p, f"byte {header_record[0]}"], flip=flip)
        block = (middle[0] // BLOCK) * BLOCK + BLOCK
        if block + BLOCK > end:
            block -= 2 * BLOCK
        zeroed = content[:block] + b"\0" * BLOCK + content[block + BLOCK:]
        changed = next((r for r in named if r[0] + r[1] > block and
                        content[r[0]:r[0] + r[1]] != zeroed[r[0]:r[0] + r[1]]), None)
        in_range_case(f"zeroed 4 KiB block at byte {block}", 3,
                      lambda p: [p, f"byte {changed[0] if changed else block}"],
                      offset=block, length=BLOCK, value=b"\0")

        # ---- manifests ----
        label = "newest manifest deleted"
        state, out = d.copy(label)
        os.unlink(manifest_path(state, epoch))
        d.expect_success(label, state, out, 2)

        label = "newest manifest: one byte flipped"
        state, out = d.copy(label)
        path = manifest_path(state, epoch)
        size = os.path.getsize(path)
        damage_segment(path, 0, flip=size // 2)
        d.expect_success(label, state, out, 3, stderr_has=f"{path} is damaged")

        label = "newest manifest cut in half"
        state, out = d.copy(label)
        path = manifest_path(state, epoch)
        damage_segment(path, 0, cut=size // 2)
        d.expect_success(label, state, out, 1, stderr_has=f"{path} is damaged")

        label = "every manifest damaged"
        state, out = d.copy(label)
        for name in os.listdir(state):
            if name.startswith("manifest-"):
                damage_segment(os.path.join(state, name), 0, flip=40)
        d.expect_failure(label, state, out, 2,
                         [manifest_path(state, epoch), "refusing to start from empty state"],
                         verify_fails=True)

        # ---- one process per state dir: a second one is refused while the first runs ----
        label = "state dir in use"
        state, out = d.copy(label)
        before = read_bytes(out)
        # Hold the lock as a running weir does (flock on DIR/lock), so no timing decides.
        with open(os.path.join(state, "lock"), "a") as holder:
            fcntl.flock(holder, fcntl.LOCK_EX)
            second = run(d.args(state, out, 1))
        if second is None or second.returncode != 2 or \
                "in use by another weir process" not in second.stderr:
            fail(label, f"second run: {second and second.returncode}: "
                        f"{tail(second.stderr) if second else 'timed out'}")
        elif read_bytes(out) != before:
            fail(label, "the refused run changed the output")
        else:
            ok(label, "the second run was refused and changed nothing")

        label = "every manifest deleted"
        state, out = d.copy(label)
        for name in os.listdir(state):
            if name.startswith("manifest-"):
                os.unlink(os.path.join(state, name))
        d.expect_failure(label, state, out, 2,
                         [os.path.join(state, "checkpointed"),
                          "refusing to start from empty state"],
                         verify_fails=False)

    elapsed = time.monotonic() - started
    if failures:
        print(f"\ntest_state_damage: {len(failures)} failures ({elapsed:.1f} s):")
        for failure in failures:
            print("  " + failure.split("\n")[0])
        return 1
    print(f"test_state_damage: all cases pass ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
