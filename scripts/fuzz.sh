#!/usr/bin/env bash
# Fuzzes the parsers of outside bytes with libFuzzer under ASan + UBSan: the .pth reader (zip +
# pickle) and the JPEG/PNG decoders. (safetensors, the CIFAR readers and the pickle reader of the
# CIFAR python batches are TypeScript: scripts/fuzz-ts.ts and test/data/parsers-mutation.test.ts.)
#   bash scripts/fuzz.sh [seconds per target, default 600] [target...]   (targets: pth image)
# Needs clang and its runtime: sudo apt-get install -y clang libclang-rt-14-dev.
# Seed corpora are the fixture files (scripts/make-pth-fixtures.py, make-hostile-pth.py,
# make-data-fixtures.py, make-hostile-images.py); found inputs go to build-fuzz/corpus, crashes to
# build-fuzz/findings. Prints one JSON line per target; exits 1 if any target found something.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pth image)

command -v clang++ >/dev/null || { echo "fuzz: clang++ not found (sudo apt-get install -y clang libclang-rt-14-dev)" >&2; exit 2; }
generator=(); command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B build-fuzz "${generator[@]}" -DTORCH_ATTN_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >build-fuzz.log 2>&1 || { cat build-fuzz.log >&2; exit 2; }
cmake --build build-fuzz --parallel "$(nproc)" >>build-fuzz.log 2>&1 || { tail -40 build-fuzz.log >&2; exit 2; }
rm -f build-fuzz.log

seeds() {
  case "$1" in
    pth) find test/fixtures/pth -name '*.pth' ;;
    image) find test/fixtures/data -type f \( -iname '*.png' -o -iname '*.jpg' -o -iname '*.jpeg' \) ;;
  esac
}

status=0
for target in "${targets[@]}"; do
  corpus=build-fuzz/corpus/$target findings=build-fuzz/findings/$target
  mkdir -p "$corpus" "$findings"
  seeds "$target" | while read -r f; do cp "$f" "$corpus/seed-$(basename "$f")"; done
  log=build-fuzz/$target.log
  set +e
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
    "build-fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=1048576 \
    -print_final_stats=1 -artifact_prefix="$findings/" "$corpus" >"$log" 2>&1
  rc=$?
  set -e
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  found=$(find "$findings" -type f | wc -l)
  printf '{"target":"%s","seconds":%s,"exit":%d,"runs":%s,"execPerSec":%s,"corpusFiles":%s,"corpusBytes":%s,"peakRssMb":%s,"findings":%s}\n' \
    "$target" "$seconds" "$rc" "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" \
    "$(find "$corpus" -type f | wc -l)" "$(du -sb "$corpus" | cut -f1)" "$(stat peak_rss_mb)" "$found"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then status=1; tail -60 "$log" >&2; fi
done
exit $status
