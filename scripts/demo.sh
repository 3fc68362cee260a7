#!/usr/bin/env bash
# The main job on the bundled input: per-card spending per 1000-unit tumbling window over
# data/transactions.csv (which holds two malformed lines on purpose: see the report).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

./build/weir agg --input data/transactions.csv \
  --schema 'ts:i64,card:str,merchant:str,amount:f64' --time ts \
  --key card --window tumbling:1000 --out-of-orderness 50 \
  --agg count,sum:amount,min:amount,max:amount,avg:amount \
  --out build/demo-windows.jsonl
echo
echo "first rows of build/demo-windows.jsonl ($(wc -l < build/demo-windows.jsonl) rows):"
sort build/demo-windows.jsonl | head -n 5
