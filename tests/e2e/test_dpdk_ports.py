#!/usr/bin/env python3
"""Goal: `weir flows --dpdk` reads the kernel-backed and synthetic DPDK ports a monitoring box
uses besides capture replay, and counts what arrives exactly: net_af_packet on an interface,
net_tap (a TAP interface DPDK creates; it has several queues, so each worker reads its own,
and it wants as many TX queues as RX queues), and net_null (endless synthetic frames).

Method (root; interfaces made here and removed after, no IP address anywhere):
- net_af_packet: a veth pair (IPv6 off, so the kernel sends nothing on it); weir reads one
  end; once its packet socket is bound (/proc/net/packet), this test sends UDP frames from
  five sources, 10 to 50 each, on the other end through an AF_PACKET socket.  With
  `--group src --window whole --idle-stop`, weir must report each source's packets and
  bytes exactly and exit 0.
- net_tap: weir creates the interface, 2 workers; once DPDK has brought it up, the same
  frames are sent into it the same way; the same exact counts, and both workers' queues
  configured (the report says 2 RX queues).
- net_null: 2 s, then SIGINT: exit 0, many frames counted, every one "not IP" (its frames
  are zero bytes), no row.
Without the rights to make interfaces, the test says so and is skipped (exit 77).
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time

from e2e import failures, check, tail

WEIR = os.path.abspath(sys.argv[1])
TAG = os.getpid() % 100000
SOURCES = {f"10.9.{block}.{k}": k * 10 for block in (0, 1) for k in range(1, 6)}


def eal(prefix, vdev):
    return (f"--no-huge --no-shconf -m 512 --no-pci --log-level=error "
            f"--file-prefix=weirports{TAG}{prefix} --vdev {vdev}")


def udp_frame(source, payload_length=100):
    udp = struct.pack(">HHHH", 5000, 53, 8 + payload_length, 0) + bytes(payload_length)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(source), socket.inet_aton("10.9.255.1")) + udp
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + ip


def send_frames(interface, block):
    """Sends each of block @block's sources' frames out of @interface; returns {src: bytes}."""
    sent = {}
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((interface, 0))
        for source, packets in SOURCES.items():
            if not source.startswith(f"10.9.{block}."):
                continue
            frame = udp_frame(source)
            for _ in range(packets):
                sock.send(frame)
            sent[source] = packets * len(frame)
    return sent


def ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def wait_for(condition, seconds, process):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            return True
        time.sleep(0.05)
    return False


def start_weir(vdev_eal, workers):
    return subprocess.Popen([WEIR, "flows", "--no-pin", "--dpdk", vdev_eal, "--group", "src",
                             "--window", "whole", "--idle-stop", "3000", "--workers", workers],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process, label):
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        check(False, f"{label}: weir did not end within 120 s")
    check(process.returncode == 0, f"{label}: exit status {process.returncode}:\n{tail(err)}")
    return out, err


def check_counts(out, sent, label):
    rows = {}
    for line in out.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            rows[row["src"]] = (row["packets"], row["bytes"])
    for source, total in sent.items():
        want = (SOURCES[source], total)
        check(rows.get(source) == want, f"{label}: {source}: got {rows.get(source)}, "
              f"sent {want} (packets, bytes)")
    print(f"{label}: {len(sent)} sources counted exactly", flush=True)


def packet_socket_bound(ifindex):
    with open("/proc/net/packet") as handle:
        lines = handle.read().splitlines()[1:]
    return any(line.split()[4] == str(ifindex) for line in lines if len(line.split()) > 4)


def af_packet():
    near, far = f"wpa{TAG}", f"wpb{TAG}"
    made = ip("link", "add", near, "type", "veth", "peer", "name", far)
    if made.returncode != 0:
        return made.stderr.strip()
    try:
        for name in (near, far):
            subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"],
                           capture_output=True)
            ip("link", "set", name, "up")
        with open(f"/sys/class/net/{near}/ifindex") as handle:
            ifindex = int(handle.read())
        process = start_weir(eal("a", f"net_af_packet0,iface={near}"), "1")
        bound = wait_for(lambda: packet_socket_bound(ifindex), 60, process)
        check(bound, "net_af_packet: weir never bound a packet socket to the interface")
        sent = send_frames(far, 0) if bound else {}
        out, _ = finish(process, "net_af_packet")
        if bound:
            check_counts(out, sent, "net_af_packet")
    finally:
        ip("link", "del", near)
    return None


def interface_up(name):
    try:
        with open(f"/sys/class/net/{name}/flags") as handle:
            return int(handle.read(), 16) & 0x1 != 0
    except (FileNotFoundError, ValueError):
        return False


def tap():
    name = f"wpt{TAG}"
    process = start_weir(eal("t", f"net_tap0,iface={name}"), "2")
    try:
        up = wait_for(lambda: interface_up(name), 60, process)
        check(up, "net_tap: DPDK never brought the TAP interface up")
        sent = send_frames(name, 1) if up else {}
        out, err = finish(process, "net_tap")
        if up:
            check_counts(out, sent, "net_tap")
        check("(2 RX queues)" in err, f"net_tap: expected a queue per worker:\n{tail(err)}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def null_port():
    process = subprocess.Popen([WEIR, "flows", "--no-pin", "--dpdk", eal("n", "net_null0"),
                                "--group", "src", "--window", "1s", "--workers", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    out, err = finish(process, "net_null")
    found = re.search(r"(\d+) frames, \d+ bytes, (\d+) not IP, (\d+) malformed", err)
    if check(found is not None, f"net_null: no frame counts in the report:\n{tail(err)}"):
        frames, not_ip, malformed = (int(found.group(k)) for k in (1, 2, 3))
        check(frames > 1000, f"net_null: only {frames} frames in 2 s")
        check(not_ip == frames and malformed == 0,
              f"net_null: {frames} frames, {not_ip} not IP, {malformed} malformed")
        print(f"net_null: {frames} frames, all not IP", flush=True)
    check(out.strip() == "", f"net_null: rows from zero frames: {out[:200]}")


def main():
    if os.geteuid() != 0:
        print("SKIP: making interfaces needs root")
        return 77
    refused = af_packet()
    if refused is not None:
        print(f"SKIP: cannot make a veth pair here ({refused})")
        return 77
    tap()
    null_port()
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
