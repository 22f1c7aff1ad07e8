#!/usr/bin/env bash
# Installs every Debian package Galaxy needs (idempotent: only missing ones are fetched)
# and configures + builds the project into build/. Usage: scripts/setup.sh [--no-build]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)

pkgs=(
  cmake ninja-build ccache g++ pkg-config
  llvm-19-dev libmlir-19-dev mlir-19-tools llvm-19-tools
  libprotobuf-dev protobuf-compiler libabsl-dev nlohmann-json3-dev
  libgloo-dev libicu-dev libdnnl-dev libopenblas-dev libgtest-dev libssl-dev
  libsentencepiece-dev sentencepiece python3-sentencepiece
  python3-torch python3-numpy python3-venv time
  clang-14 libclang-rt-14-dev   # libFuzzer + sanitizer runtimes (tests/fuzz/)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[setup] all Debian packages present"
fi

[[ "${1:-}" == "--no-build" ]] && exit 0
cd "$here"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
[[ -f build/build.ninja ]] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}"
cmake --build build -j "${GALAXY_JOBS:-$(nproc)}"
