#!/usr/bin/env bash
# The whole test suite: unit (cmocka) and end-to-end tests, once in a normal build and once
# under AddressSanitizer + UndefinedBehaviorSanitizer.  Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh || exit 1

jobs=$(nproc)
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
status=0

run_suite() { # build dir, meson setup arguments...
  local dir=$1; shift
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >/dev/null || return 1
  fi
  ninja -C "$dir" || return 1
  meson test -C "$dir" --num-processes "$jobs" --print-errorlogs
}

echo "== normal build (debugoptimized, asserts on)"
run_suite build || status=1
echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
run_suite build-asan -Db_sanitize=address,undefined -Db_lundef=false || status=1

echo "== libFuzzer (clang): the packet parser, bounded runs"
run_fuzz() {
  if [ ! -f build-fuzz/build.ninja ]; then
    CC=clang meson setup build-fuzz -Db_lundef=false >/dev/null || return 1
  fi
  ninja -C build-fuzz tests/fuzz_packet || return 1
  meson test -C build-fuzz --no-rebuild --suite fuzz --print-errorlogs fuzz_packet
}
run_fuzz || status=1

python3 - build build-asan build-fuzz <<'PY' || status=1
import json, os, sys
passed = failed = skipped = 0
for d in sys.argv[1:]:
    log = os.path.join(d, "meson-logs", "testlog.json")
    if not os.path.exists(log):
        failed += 1
        continue
    for line in open(log):
        result = json.loads(line)["result"]
        if result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
PY
exit $status
