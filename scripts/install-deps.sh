#!/usr/bin/env bash
# Installs what weir needs to build and test on Debian 12, and nothing when it is all there.
# Runs as root (or with sudo on PATH); never prompts (CI has no terminal).
set -euo pipefail

# clang + libclang-rt-14-dev: the libFuzzer build of the packet parser's fuzz target.
# dpdk-dev: dpdk-testpmd, the rx-only baseline of `weir bench flows`.
# tshark: an independent oracle for the capture generator's ground truth (tests).
# gnuplot-nox: `weir bench --plot` draws its chart with it.
packages=(gcc libc6-dev pkg-config meson ninja-build python3
          libdpdk-dev dpdk dpdk-dev liburing-dev libhwloc-dev libjemalloc-dev libxxhash-dev
          libcmocka-dev clang libclang-rt-14-dev tshark gnuplot-nox)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "weir: installing ${missing[*]}" >&2
as_root=()
[ "$(id -u)" -ne 0 ] && as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
