#!/usr/bin/env bash
# Generation with the KV cache: prefill latency and decode tokens/s, Galaxy against
# Hugging Face `generate` on this machine, in one run (a benchmark that prints figures,
# not a test).
#
#   bench/generate.sh [BUILD_DIR]     (default: build; needs galaxyc and galaxy-run there)
#
# Models (MODELS, default "7b2 100m"):
#   7b2   LLaMA-7B's layer shape — hidden 4096, 32 heads (KV_HEADS_7B: 32), intermediate
#         11008, vocab 32000 — 2 layers: 0.67 G parameters with embedding and LM head;
#   100m  hidden 768, 12 heads, intermediate 2048, 8 layers, vocab 32000: 0.11 G.
# Each model at every batch in BATCHES (default "1 4"): BATCH prompts of PROMPT random ids
# (default 32), NEW new tokens each (default 32), greedy; pad_size = PROMPT + NEW.
# Galaxy: galaxyc compiles the config (serial) once per dtype in DTYPES (default "fp32
# bf16": the plan's matmul precision; bf16 reads bfloat16 weights packed once),
# galaxy-run --generate runs ROUNDS + 1 groups of BATCH prompts in one process
# (group 1 is the warm-up) and prints each group's prefill time and decode steps
# (runtime/exec/generate.h GenerateStats). Hugging Face: bench/generate_hf.py,
# LlamaForCausalLM of the same sizes, generate(do_sample=False, use_cache=True) in HF_DTYPE
# (default float32), one warm-up and ROUNDS timed rounds. Both sides run THREADS threads
# (default 2) with OMP_WAIT_POLICY=PASSIVE; medians over rounds.
# Decode tokens/s = rows x decode steps / decode seconds (the first new token comes from
# prefill on both sides).
# Env: MODELS, BATCHES, PROMPT, NEW, ROUNDS (3), THREADS (2), DTYPES, HF_DTYPE
#      (float32), KV_HEADS_7B (32), PYTHON (default: the project's .venv python if it
#      imports torch and transformers), GALAXYC / GALAXY_RUN, BENCH_WORKDIR (keep files).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=${1:-$root/build}
bench=generate.sh
galaxyc=${GALAXYC:-$build/tools/galaxyc}
galaxy_run=${GALAXY_RUN:-$build/tools/galaxy-run}
gemm=auto
models=${MODELS:-7b2 100m}
batches=${BATCHES:-1 4}
prompt=${PROMPT:-32}
new=${NEW:-32}
rounds=${ROUNDS:-3}
threads=${THREADS:-2}
dtypes=${DTYPES:-fp32 bf16}
hf_dtype=${HF_DTYPE:-float32}
export PYTHONDONTWRITEBYTECODE=1

py=${PYTHON:-$root/.venv/bin/python}
if ! "$py" -c 'import torch, transformers' 2>/dev/null; then
  echo "$bench: $py cannot import torch and transformers: make the project's .venv" \
    "(python3 -m venv .venv && .venv/bin/pip install torch transformers) or set PYTHON" >&2
  exit 1
fi
source "$here/common.sh"
export OMP_NUM_THREADS=$threads GALAXY_THREADS=$threads

echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores online;" \
  "threads $threads; $(date -u +%Y-%m-%dT%H:%MZ); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "prompt $prompt tokens, $new new tokens, greedy; Hugging Face $hf_dtype; $rounds rounds"
printf '%-5s %5s %-5s | %12s %13s | %14s %15s %7s\n' model batch G "prefill G ms" \
  "prefill HF ms" "decode G tok/s" "decode HF tok/s" "G / HF"

for model in $models; do
  case $model in
    7b2) sizes='"hidden_size": 4096, "num_attention_heads": 32,
          "num_key_value_heads": '"${KV_HEADS_7B:-32}"', "intermediate_size": 11008,
          "num_hidden_layers": 2' ;;
    100m) sizes='"hidden_size": 768, "num_attention_heads": 12, "num_key_value_heads": 12,
          "intermediate_size": 2048, "num_hidden_layers": 8' ;;
    *) echo "$bench: unknown model '$model' (7b2, 100m)" >&2; exit 1 ;;
  esac
  for batch in $batches; do
    tag=$model.b$batch
    for dtype in $dtypes; do
      cat >"$work/$tag.$dtype.json" <<JSON
{
  "model_type": "llama", "task": "causal_lm", "vocab_size": 32000, $sizes,
  "max_position_embeddings": 2048, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
  "hidden_act": "silu", "initializer_range": 0.02, "tie_word_embeddings": false,
  "pad_token_id": 0, "batch_size": $batch, "pad_size": $((prompt + new)),
  "learning_rate": 5e-05, "optimizer": "sgd", "weight_decay": 0.0, "seed": 42,
  "full_model": true, "parallel_mode": "serial", "dtype": "$dtype"
}
JSON
    done
    first=${dtypes%% *}
    "$py" - "$work/$tag" "$batch" "$prompt" "$rounds" <<'PY'
import json, random, sys
stem, batch, prompt, rounds = sys.argv[1], *map(int, sys.argv[2:])
r = random.Random(7)
rows = [[r.randrange(1, 32000) for _ in range(prompt)] for _ in range(batch * (rounds + 1))]
with open(stem + ".galaxy.jsonl", "w") as f:  # the warm-up group, then one per round
    f.writelines(json.dumps({"input_ids": ids}) + "\n" for ids in rows)
with open(stem + ".hf.jsonl", "w") as f:
    f.writelines(json.dumps({"input_ids": ids}) + "\n" for ids in rows[:batch])
PY
    for dtype in $dtypes; do
      t=$tag.$dtype
      "$galaxyc" "$work/$t.json" -o "$work/$t.plan" >"$work/$t.galaxyc.log" 2>&1 ||
        { cat "$work/$t.galaxyc.log" >&2; exit 1; }
      "$galaxy_run" "$work/$t.plan" --generate "$work/$tag.galaxy.jsonl" \
        --max-new-tokens "$new" --output "$work/$t.out.jsonl" >"$work/$t.galaxy.log" 2>&1 ||
        { cat "$work/$t.galaxy.log" >&2; exit 1; }
    done
    "$py" "$here/generate_hf.py" "$work/$tag.$first.json" "$work/$tag.hf.jsonl" \
      --max-new-tokens "$new" --threads "$threads" --rounds "$rounds" --dtype "$hf_dtype" \
      >"$work/$tag.hf.json" 2>"$work/$tag.hf.log" || { cat "$work/$tag.hf.log" >&2; exit 1; }
    for dtype in $dtypes; do
      "$py" - "$work/$tag" "$dtype" "$model" "$batch" <<'PY'
import json, re, statistics, sys
stem, dtype, model, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
groups = [tuple(map(float, m.groups())) for m in re.finditer(
    r"group \d+: prefill ([0-9.]+) s, decode (\d+) steps of \d+ rows in ([0-9.]+) s",
    open(f"{stem}.{dtype}.galaxy.log").read())][1:]  # group 1: warm-up
if not groups:
    sys.exit(f"generate.sh: no timed groups in {stem}.{dtype}.galaxy.log")
g_pre = statistics.median(p for p, _, _ in groups)
g_tok = statistics.median(batch * n / s for _, n, s in groups)
hf = json.load(open(stem + ".hf.json"))
h_pre, h_tok = hf["median_prefill_s"], hf["decode_tokens_per_s"]
print(f"{model:5} {batch:5} {dtype:5} | {g_pre * 1e3:12.1f} {h_pre * 1e3:13.1f} |"
      f" {g_tok:14.2f} {h_tok:15.2f} {g_tok / h_tok:6.2f}x")
PY
    done
  done
done
"$py" - "$(ls "$work"/*.hf.json | head -1)" "$py" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"Hugging Face: torch {r['torch']}, transformers {r['transformers']}, {r['threads']}"
      f" threads, attention {r['attention']} ({sys.argv[2]})")
PY
grep -h -m1 "GEMM:" "$work"/*.galaxy.log | head -1 | sed 's/^.*galaxy-run: //' || true
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other processes' load skews every side)"
