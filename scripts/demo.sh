#!/usr/bin/env bash
# The main job on the bundled input: per-card spending per minute (tumbling windows of
# 60000 ms) over data/transactions.csv, 20,000 card transactions out of order by up to 40 ms.
# The file holds two malformed lines on purpose: the report on stderr names them.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null

./build/weir agg --input data/transactions.csv \
  --schema 'ts:i64,card:str,merchant:str,amount:f64' --time ts \
  --key card --window tumbling:60000 --out-of-orderness 40 \
  --agg count,sum:amount,min:amount,max:amount,avg:amount \
  --out build/demo-windows.jsonl
echo
echo "$(wc -l < build/demo-windows.jsonl) rows in build/demo-windows.jsonl; the biggest spenders:"
python3 - <<'PY'
import json
rows = [json.loads(line) for line in open("build/demo-windows.jsonl")]
for row in sorted(rows, key=lambda r: -r["sum_amount"])[:5]:
    print(json.dumps(row))
PY
