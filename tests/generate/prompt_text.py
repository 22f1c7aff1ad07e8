#!/usr/bin/python3
"""galaxy-run --prompt "text" --tokenizer tokenizer.model: encode, generate, print the text.

  prompt_text.py BUILD_DIR [--keep DIR]

Trains a tiny LLaMA-style SentencePiece model here (Debian's python3-sentencepiece: BPE,
byte fallback, <unk> 0, <s> 1, </s> 2), compiles a tiny LLaMA whose vocab_size is the
tokenizer's, and runs `galaxy-run --prompt A --prompt B --tokenizer M --output OUT`
(serial, and tp over 2 ranks; --max-seq 40 makes room past pad_size 16). The ids in OUT must be sp.encode(text) after BOS, its
"text" sp.decode(prompt ids + generated ids) and each printed line that text (escaped:
text_line.py); the tp run prints the same lines.
--prompt without --tokenizer is refused. Exit 0 pass, 1 fail.
"""

import json
import os
import subprocess
import sys

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))

import harness  # noqa: E402
import llama_case  # noqa: E402
from text_line import escape_line  # noqa: E402

CORPUS = """The quick brown fox jumps over the lazy dog.
A stitch in time saves nine.
Galaxy trains transformers on many machines at once.
Hello world, this is a tiny corpus for a tiny tokenizer.
Edge devices split a model too big for one of them.
"""
TEXTS = ["Hello world", "The quick brown fox"]


def fail(msg):
    print(f"prompt_text.py: {msg}")
    sys.exit(1)


def check(work, galaxyc, galaxy_run):
    def p(name):
        return os.path.join(work, name)

    with open(p("corpus.txt"), "w") as f:
        f.write(CORPUS)
    spm.SentencePieceTrainer.train(
        input=p("corpus.txt"), model_prefix=p("tok"), model_type="bpe", vocab_size=300,
        hard_vocab_limit=False, normalization_rule_name="identity", byte_fallback=True,
        character_coverage=1.0, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    sp = spm.SentencePieceProcessor(model_file=p("tok.model"))
    split = llama_case.SPLITS[2]
    plans = {}
    for name, mode, world in (("serial", "serial", 1), ("tp", "tp", 2)):
        cfg = llama_case.config("sgd")
        cfg.update(vocab_size=sp.vocab_size(), batch_size=2, initializer_range=0.3)
        if mode == "tp":
            cfg.update(tp_num_attention_heads_list=split["heads"],
                       tp_intermediate_size_list=split["inter"])
        with open(p(f"{name}.json"), "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([galaxyc, p(f"{name}.json"), "--mode", mode, "--world", str(world),
                            "-o", p(f"{name}.plan"), "--emit", "none", "--max-seq", "40"],
                           capture_output=True, text=True)
        if r.returncode:
            fail(f"galaxyc {name}:\n{r.stderr}")
        plans[name] = [p(f"{name}.plan")] + ([] if world == 1 else ["--nproc", str(world)])
    prompts = [a for t in TEXTS for a in ("--prompt", t)]
    r = subprocess.run([galaxy_run, *plans["serial"], "--seed", "3", "--max-new-tokens", "5",
                        *prompts, "--tokenizer", p("tok.model"), "--output",
                        p("serial.jsonl")], capture_output=True, text=True)
    if r.returncode:
        fail(f"galaxy-run --prompt (serial):\n{r.stderr}")
    printed = r.stdout.splitlines()
    with open(p("serial.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    if [row["input_ids"] for row in rows] != [[1] + sp.encode(t) for t in TEXTS]:
        fail(f"the prompts' ids {[row['input_ids'] for row in rows]} are not BOS + "
             f"sp.encode: {[sp.encode(t) for t in TEXTS]}")
    texts = [sp.decode(row["input_ids"] + row["generated_ids"]) for row in rows]
    if [row.get("text") for row in rows] != texts:
        fail(f"--output's texts {[row.get('text') for row in rows]}, sp.decode gives {texts}")
    # One line a row: line breaks the model generates are escaped.
    want = [escape_line(t) for t in texts]
    if printed != want:
        fail(f"printed {printed}, sp.decode gives {want}")
    for line in printed:
        print(f"serial: {line!r}")
    r = subprocess.run([galaxy_run, *plans["tp"], "--seed", "3", "--max-new-tokens", "5",
                        *prompts, "--tokenizer", p("tok.model")], capture_output=True, text=True)
    lines = [x.split("] ", 1)[-1] for x in r.stdout.splitlines() if x.startswith("[rank 0]")]
    if r.returncode or lines != printed:
        fail(f"tp printed {lines} (exit {r.returncode}), serial {printed}:\n{r.stderr}")
    r = subprocess.run([galaxy_run, *plans["serial"], "--prompt", "Hello"],
                       capture_output=True, text=True)
    if r.returncode != 2 or "--tokenizer" not in r.stderr:
        fail(f"--prompt without --tokenizer: exit {r.returncode}: {r.stderr}")
    print("prompt_text.py: pass")
    return 0


def main():
    return harness.script_main("prompt_text.py", "galaxy-prompt.", check)


if __name__ == "__main__":
    sys.exit(main())
