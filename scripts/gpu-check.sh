#!/usr/bin/env bash
# One run on a GPU machine: build (Release, sm_90 unless GALAXY_CUDA_ARCH says
# otherwise), run the `gpu` tests, then time BERT-base and BERT-large training
# steps on GPU 0 (step time, tokens/s, MFU against the dense fp32 peak).
#
#   scripts/gpu-check.sh [BUILD_DIR]        (default: build-gpu)
#
# Env: GALAXY_JOBS (build parallelism, default nproc), GALAXY_CUDA_ARCH (90),
# BENCH_STEPS (10), BENCH_WARMUP (3), BENCH_BATCH (32), BENCH_SEQ (128).
# Exit status: that of the gpu tests (the benchmark only prints).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-gpu}
jobs=${GALAXY_JOBS:-$(nproc)}
arch=${GALAXY_CUDA_ARCH:-90}
say() { printf '\n== %s\n' "$*"; }

say "device"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader
else
  echo "nvidia-smi not found: the gpu tests will report themselves skipped"
fi

say "configure + build ($build, sm_$arch, -j$jobs)"
launcher=()
command -v ccache >/dev/null &&
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
t0=$(date +%s)
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DGALAXY_CUDA=ON -DGALAXY_CUDA_ARCH="$arch" "${launcher[@]}" >"$build.configure.log" 2>&1 ||
  { tail -30 "$build.configure.log"; echo "gpu-check: configure failed"; exit 1; }
cmake --build "$build" -j "$jobs" ||
  { echo "gpu-check: build failed"; exit 1; }
echo "built in $(( $(date +%s) - t0 )) s"

say "ctest -L gpu"
(cd "$build" && ctest -L gpu --output-on-failure)
test_rc=$?

say "benchmark: BERT training step on GPU 0 (fp32)"
bench=$build/runtime/cuda/cuda_bert_bench
galaxyc=$build/tools/galaxyc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
steps=${BENCH_STEPS:-10} warmup=${BENCH_WARMUP:-3}
batch=${BENCH_BATCH:-32} seq=${BENCH_SEQ:-128}
for model in base large; do
  if [[ $model == base ]]; then h=768 layers=12 heads=12 inter=3072
  else h=1024 layers=24 heads=16 inter=4096; fi
  cat >"$work/$model.json" <<JSON
{"model_type": "bert", "vocab_size": 30522, "hidden_size": $h,
 "num_hidden_layers": $layers, "num_attention_heads": $heads,
 "intermediate_size": $inter, "max_position_embeddings": 512,
 "pad_size": $seq, "batch_size": $batch, "num_classes": 2,
 "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
 "optimizer": "adamw", "learning_rate": 1e-4, "parallel_mode": "serial",
 "seed": 42}
JSON
  if ! "$galaxyc" "$work/$model.json" --mode serial --emit none -o "$work/$model" \
      >"$work/$model.galaxyc.log" 2>&1; then
    echo "BERT-$model: galaxyc failed:"; tail -5 "$work/$model.galaxyc.log"; continue
  fi
  out=$("$bench" "$work/$model/rank0.plan.pb" --steps "$steps" --warmup "$warmup" 2>&1)
  rc=$?
  if [[ $rc -eq 3 ]]; then
    echo "BERT-$model: not measured: $out"
    echo "(the benchmark runs once runtime/exec supports the CUDA backend)"
    break
  elif [[ $rc -ne 0 ]]; then
    echo "BERT-$model: benchmark failed (exit $rc): $out"
  else
    echo "BERT-$model (batch $batch, seq $seq): $out"
  fi
done
echo "bf16: not measured (the CUDA backend runs fp32 plans only so far)"

say "summary"
echo "gpu tests: $([[ $test_rc -eq 0 ]] && echo passed-or-skipped || echo FAILED) (exit $test_rc)"
exit $test_rc
