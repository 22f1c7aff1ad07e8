#!/usr/bin/env bash
# Sets up (Debian packages + build) and runs the whole test suite. CI runs exactly this.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh"
cd "$here/build"
# A suite that finds no tests is a failure, not a pass.
n=$(ctest -N | awk '/Total Tests:/ {print $3}')
if [[ -z "$n" || "$n" -eq 0 ]]; then
  echo "[test] ctest found no tests" >&2
  exit 1
fi
ctest --output-on-failure -j "${GALAXY_TEST_JOBS:-2}" "$@"
# The fuzz targets (tests/fuzz/): their own clang build, every seed once, then
# each target for GALAXY_FUZZ_SECONDS (15; 0 skips them) s.
if [[ "${GALAXY_FUZZ_SECONDS:-15}" != 0 ]]; then
  "$here/scripts/fuzz.sh" --smoke
fi
