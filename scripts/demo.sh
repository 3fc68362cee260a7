#!/usr/bin/env bash
# The main job: network monitoring on the bundled capture.  data/sample.pcap (10 s of
# synthetic traffic with a port scan and a SYN flood hidden in it; see data/README.md) is
# replayed through DPDK's net_pcap port into `weir flows`, three times: the top talkers of each
# second, the port scans, the SYN floods.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null

eal="--no-huge --no-shconf -m 1024 --no-pci --log-level=error"
eal+=" --vdev net_pcap0,rx_pcap=data/sample.pcap"
flows() { ./build/weir flows --dpdk "$eal" --idle-stop 500 "$@"; }

echo "== top 3 talkers per second (bytes sent; JSON lines)"
flows --group src --window 1s --top 3 --quiet
echo
echo "== port scans: sources whose SYNs tried 100+ ports within 10 s"
flows --group scan --window 10s --min distinct_ports=100 --quiet
echo
echo "== SYN floods: destinations sent SYNs from 500+ sources within 10 s (summary below)"
flows --group syn --window 10s --min sources=500
