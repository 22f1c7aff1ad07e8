#!/usr/bin/env bash
# The libFuzzer targets of tests/fuzz/ (clang, ASan + UBSan), built into
# build-fuzz/ (tests/fuzz/README.md says what each one reads).
#
#   scripts/fuzz.sh --build              configure and build only
#   scripts/fuzz.sh --smoke              the bounded run CI does (scripts/test.sh):
#                                        every seed once, then each target for
#                                        GALAXY_FUZZ_SECONDS (15) s; fails on a crash
#   scripts/fuzz.sh [TARGET|all] [SECONDS]
#                                        long run: each TARGET (default all, one
#                                        after another) for SECONDS (default 600)
#                                        with GALAXY_FUZZ_JOBS parallel jobs (default
#                                        nproc); new inputs go to
#                                        build-fuzz/tests/fuzz/grown/, crashes to
#                                        .../artifacts/, never into git
#   scripts/fuzz.sh --merge TARGET       fold grown/TARGET into the
#                                        repository's corpus, minimized
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
bin=build-fuzz/tests/fuzz # also where ctest keeps grown/ and artifacts/
targets=(config safetensors plan jsonl tsv wordpiece store_protocol)
seconds_ci=${GALAXY_FUZZ_SECONDS:-15}

build() {
  # The kernel schema's generator comes from the main (g++) build.
  if [[ ! -x build/tools/galaxy-tblgen/galaxy-tblgen ]]; then
    [[ -f build/build.ninja ]] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
    cmake --build build --target galaxy-tblgen
  fi
  launcher=()
  command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  cmake -S . -B build-fuzz -G Ninja -DGALAXY_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DGALAXY_FUZZ_SECONDS="$seconds_ci" "${launcher[@]}" >/dev/null
  cmake --build build-fuzz -j "${GALAXY_JOBS:-$(nproc)}"
}

case "${1:-all}" in
--build)
  build
  ;;
--smoke)
  build
  echo "[fuzz] each target: its seeds once, then ${seconds_ci} s of fuzzing"
  ctest --test-dir build-fuzz --output-on-failure -j "${GALAXY_TEST_JOBS:-2}"
  ;;
--merge)
  t=${2:?usage: scripts/fuzz.sh --merge TARGET}
  "$bin/fuzz_$t" -merge=1 "tests/fuzz/corpus/$t" "$bin/grown/$t"
  ;;
*)
  sel=("${1:-all}")
  [[ "${sel[0]}" == all ]] && sel=("${targets[@]}")
  secs=${2:-600}
  jobs=${GALAXY_FUZZ_JOBS:-$(nproc)}
  build
  for t in "${sel[@]}"; do
    [[ -x "$bin/fuzz_$t" ]] || { echo "[fuzz] no target '$t' (${targets[*]})" >&2; exit 2; }
    mkdir -p "$bin/grown/$t" "build-fuzz/logs/$t" "$bin/artifacts"
    before=$(ls "$bin/artifacts" | grep -c "^$t-" || true)
    echo "[fuzz] $t: $jobs job(s) x ${secs} s, logs in build-fuzz/logs/$t"
    # -jobs writes fuzz-N.log into the working directory.
    (cd "build-fuzz/logs/$t" &&
      "$here/$bin/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2560 \
        -jobs="$jobs" -workers="$jobs" -print_final_stats=1 \
        -artifact_prefix="$here/$bin/artifacts/$t-" \
        "$here/$bin/grown/$t" "$here/tests/fuzz/corpus/$t" >/dev/null 2>&1) || true
    after=$(ls "$bin/artifacts" | grep -c "^$t-" || true)
    if ((after > before)); then
      echo "[fuzz] $t: FOUND ($bin/artifacts/$t-*, logs build-fuzz/logs/$t)" >&2
      status=1
    fi
  done
  exit "${status:-0}"
  ;;
esac
