#!/usr/bin/env python3
"""Goal: `weir topology` shows a machine and its worker placement the way core/topo.h plans
it, and refuses bad usage with exit status 2 and a message naming the option.

Method: run the built program on the synthetic machine 'pack:2 numa:2 core:8 pu:2' (2
packages x 2 NUMA nodes x 8 cores x 2 hyper-threads, PUs numbered in order, so core c holds
PUs 2c and 2c+1 and sits on node c // 8) and parse its placement table: the default plan
must be 32 workers, worker w on PU 2w, core w, package w // 16, node w // 8, none sharing a
core; --workers 40 must add 8 workers on the siblings of cores 0-7 and flag 16 as sharing;
--cores must place workers on exactly the PUs listed.  Then this machine (exit 0, at least
one worker).  Then bad command lines: each must exit 2, print nothing on stdout and name
the culprit on stderr.

Usage: test_topology_cli.py PATH/TO/weir
Exit 0 when every check passes; otherwise 1, with one message per failing check.
"""
import re
import subprocess
import sys

from e2e import failures, fail, ok

BIG = "pack:2 numa:2 core:8 pu:2"
TIMEOUT_S = 60
ROW = re.compile(r"^\s*(\d+) ->\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)(\s+\(shares its core\))?$")


def run(args):
    return subprocess.run([WEIR, "topology", *args], capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def placement(stdout):
    """The placement table as a list of (worker, pu, core, package, node, shares)."""
    rows = []
    for line in stdout.splitlines():
        match = ROW.match(line)
        if match:
            numbers = tuple(int(g) for g in match.groups()[:5])
            rows.append(numbers + (match.group(6) is not None,))
    return rows


def check_run(label, args):
    """Runs a command line that must succeed; returns its stdout, or None."""
    result = run(args)
    if result.returncode != 0:
        fail(label, f"exit {result.returncode}, stderr: {result.stderr.strip()}")
        return None
    return result.stdout


def check_big_default():
    label = "synthetic default"
    out = check_run(label, ["--synthetic", BIG])
    if out is None:
        return
    failed_before = len(failures)
    if "2 packages, 4 NUMA nodes, 32 cores, 64 PUs" not in out:
        fail(label, "the totals line is missing or wrong:\n" + out[:400])
    nodes = re.findall(r"^\s*node (\d+): cores ([^;\s]+); PUs ([^;\s]+)", out, re.M)
    expected_nodes = [(str(k), f"{8 * k}-{8 * k + 7}", f"{16 * k}-{16 * k + 15}")
                      for k in range(4)]
    if nodes != expected_nodes:
        fail(label, f"NUMA node lines {nodes}, expected {expected_nodes}")
    if not re.search(r"^placement: 32 workers$", out, re.M):
        fail(label, "no 'placement: 32 workers' line")
    rows = placement(out)
    expected = [(w, 2 * w, w, w // 16, w // 8, False) for w in range(32)]
    if rows != expected:
        fail(label, f"placement rows {rows[:4]}..., expected {expected[:4]}...")
    elif "every worker has a core to itself" not in out:
        fail(label, "no note that no core is shared")
    elif len(failures) == failed_before:
        ok(label, "32 workers, one per core, on 4 NUMA nodes")


def check_big_oversubscribed():
    label = "synthetic --workers 40"
    out = check_run(label, ["--synthetic", BIG, "--workers", "40"])
    if out is None:
        return
    rows = placement(out)
    expected = [(w, 2 * w, w, w // 16, w // 8, w < 8) for w in range(32)]
    expected += [(w, 2 * (w - 32) + 1, w - 32, 0, 0, True) for w in range(32, 40)]
    if rows != expected:
        fail(label, f"placement rows differ: got {rows[30:]}, expected {expected[30:]}")
    elif "16 workers share a core" not in out:
        fail(label, "no note that 16 workers share a core")
    else:
        ok(label, "8 workers on hyper-thread siblings, 16 flagged as sharing")


def check_big_cpu_list():
    label = "synthetic --cores"
    out = check_run(label, ["--synthetic", BIG, "--cores", "63,0,2-3"])
    if out is None:
        return
    rows = placement(out)
    expected = [(0, 63, 31, 1, 3, False), (1, 0, 0, 0, 0, False), (2, 2, 1, 0, 0, True),
                (3, 3, 1, 0, 0, True)]
    if rows != expected:
        fail(label, f"placement rows {rows}, expected {expected}")
    else:
        ok(label, "workers on the listed PUs, in order")


def check_this_machine():
    label = "this machine"
    out = check_run(label, [])
    if out is None:
        return
    rows = placement(out)
    if not out.startswith("topology: this machine") or not rows:
        fail(label, "no header or no workers:\n" + out[:400])
    else:
        ok(label, f"{len(rows)} workers")


def check_usage_errors():
    cases = [
        (["--workers", "0x"], "--workers"),
        (["--workers", "-3"], "--workers"),
        (["--workers", "257"], "--workers"),
        (["--cores", "0-"], "'0-'"),
        (["--synthetic", BIG, "--cores", "999"], "CPU 999"),
        (["--synthetic", BIG, "--cores", "a"], "'a'"),
        (["--cores", ""], "empty"),
        (["--synthetic", "pack:2 banana:3"], "--synthetic"),
        (["--bogus"], "bogus"),
        (["--workers"], "--workers"),
        (["stray"], "stray"),
    ]
    for args, needle in cases:
        label = "usage " + " ".join(repr(a) for a in args)
        result = run(args)
        if result.returncode != 2:
            fail(label, f"exit {result.returncode}, expected 2")
        elif needle not in result.stderr:
            fail(label, f"stderr does not mention {needle!r}: {result.stderr.strip()}")
        elif result.stdout:
            fail(label, f"printed on stdout: {result.stdout[:200]}")
        else:
            ok(label, result.stderr.strip().splitlines()[0])
    result = run(["--help"])
    if result.returncode != 0 or "--synthetic" not in result.stdout:
        fail("--help", f"exit {result.returncode}, stdout: {result.stdout[:200]}")
    else:
        ok("--help")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: test_topology_cli.py PATH/TO/weir", file=sys.stderr)
        sys.exit(2)
    WEIR = sys.argv[1]
    check_big_default()
    check_big_oversubscribed()
    check_big_cpu_list()
    check_this_machine()
    check_usage_errors()
    if failures:
        print(f"{len(failures)} check(s) failed:")
        for line in failures:
            print("  " + line)
        sys.exit(1)
    print("all checks passed")
