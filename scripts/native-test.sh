#!/usr/bin/env bash
# Builds the native code with AddressSanitizer + UndefinedBehaviorSanitizer
# (clang when available), runs every native unit test and replays every fuzz
# corpus through ctest, then runs each libFuzzer target briefly.
#
#   scripts/native-test.sh               tests + corpus replay + short fuzzing
#   scripts/native-test.sh --fuzz-only   only the fuzzing step
#   FUZZ_SECONDS=0 scripts/native-test.sh  skip fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-native
fuzz_seconds=${FUZZ_SECONDS:-15}
fuzz_only=0
[[ ${1:-} == --fuzz-only ]] && fuzz_only=1

cc=gcc cxx=g++ fuzz=OFF
if command -v clang++-14 >/dev/null; then
  cc=clang-14 cxx=clang++-14 fuzz=ON
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)

cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=$cc -DCMAKE_CXX_COMPILER=$cxx -DCKPT_SANITIZE=ON -DCKPT_FUZZ=$fuzz >/dev/null
cmake --build "$build" -j "$(nproc)"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if ((fuzz_only == 0)); then
  ctest --test-dir "$build" --output-on-failure -j 2
fi

if [[ $fuzz == ON && $fuzz_seconds != 0 && -s $build/fuzzers.txt ]]; then
  while IFS='|' read -r name corpus; do
    [[ -z $name ]] && continue
    bin=$(find "$build" -type f -name "$name" -perm -u+x | head -n 1)
    work=$(mktemp -d)
    cp -r "$corpus"/. "$work"/ 2>/dev/null || true
    echo "fuzzing $name for ${fuzz_seconds}s"
    "$bin" -max_total_time="$fuzz_seconds" -print_final_stats=0 "$work" >"$work.log" 2>&1 || {
      tail -n 60 "$work.log"
      echo "fuzzer $name found a problem (log above; crash input saved in the current directory)"
      exit 1
    }
    rm -rf "$work" "$work.log"
  done <"$build/fuzzers.txt"
fi
echo "native tests passed"
