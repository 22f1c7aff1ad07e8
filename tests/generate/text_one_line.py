#!/usr/bin/python3
"""Generated text on stdout is one row a line, whatever the model generates.

  text_one_line.py BUILD_DIR [--keep DIR]

A tiny BART (tests/equiv/bart_case.py) whose final_logits_bias makes one token win every
greedy step, and a hand-written byte-level BPE vocabulary (vocab.json, no merges) in which
that token's text holds a tab, a backslash, CR LF, U+2028, NEL (U+0085), ESC and an
accented letter. `galaxy-run --prompt ... --tokenizer vocab.json --max-new-tokens 2`,
serial and tp over 2 ranks (the launcher's "[rank 0] " lines), must print exactly one line
per prompt (str.splitlines, which breaks at all of those), each the text escaped as
docs/inference.md says; --output's "text" must be the text itself. Standard library and
numpy. Exit 0 pass, 1 fail.
"""

import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))

import bart_case  # noqa: E402
import harness  # noqa: E402
import safetensors_io  # noqa: E402

ROW = "x\ty\\z\r\nw\u2028v\u0085u\x1bé"
# ROW twice (two new tokens), escaped: the expected line, written out by hand.
WANT_LINE = r"x\ty\\z\r\nw\u2028v\u0085u\u001bé" * 2
ROW_ID = 7
PROMPTS = ["ab", "ba"]


def fail(msg):
    print(f"text_one_line.py: {msg}")
    sys.exit(1)


def byte_chars():
    """GPT-2's byte -> printable character map, as byte-level BPE vocabularies spell bytes:
    '!'..'~', U+00A1..U+00AC and U+00AE..U+00FF stand for themselves, the other bytes for
    U+0100 onwards in byte order."""
    kept = set(range(0x21, 0x7F)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    out, extra = {}, 0
    for b in range(256):
        if b in kept:
            out[b] = chr(b)
        else:
            out[b] = chr(0x100 + extra)
            extra += 1
    return out


def check(work, galaxyc, galaxy_run):
    def p(name):
        return os.path.join(work, name)

    chars = byte_chars()
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a": 4, "b": 5, "c": 6,
             "".join(chars[b] for b in ROW.encode()): ROW_ID}
    os.mkdir(p("tok"))
    with open(p("tok/vocab.json"), "w") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(p("tok/merges.txt"), "w") as f:
        f.write("#version: 0.2\n")

    plans = {}
    for name, mode, world in (("serial", "serial", 1), ("tp", "tp", 2)):
        cfg = bart_case.config("sgd")
        cfg.update(batch_size=2)
        with open(p(f"{name}.json"), "w") as f:
            json.dump(cfg, f)
        r = subprocess.run([galaxyc, p(f"{name}.json"), "--mode", mode, "--world", str(world),
                            "-o", p(f"{name}.plan"), "--emit", "none"],
                           capture_output=True, text=True)
        if r.returncode:
            fail(f"galaxyc {name}:\n{r.stderr}")
        plans[name] = [p(f"{name}.plan")] + ([] if world == 1 else ["--nproc", str(world)])

    # Seeded weights, then a final_logits_bias that makes ROW_ID every step's argmax.
    harness.write_prompts(p("ids.jsonl"), [[0, 4, 2]])
    r = subprocess.run([galaxy_run, *plans["serial"], "--seed", "3", "--generate",
                        p("ids.jsonl"), "--max-new-tokens", "1", "--output", p("init.jsonl"),
                        "--save", p("seed.safetensors")], capture_output=True, text=True)
    if r.returncode:
        fail(f"galaxy-run --save:\n{r.stderr}")
    weights = safetensors_io.load(p("seed.safetensors"))
    bias = np.zeros_like(weights["final_logits_bias"])
    bias.reshape(-1)[ROW_ID] = 100.0
    weights["final_logits_bias"] = bias
    safetensors_io.save(p("w.safetensors"), weights)

    prompts = [a for t in PROMPTS for a in ("--prompt", t)]
    for name in ("serial", "tp"):
        r = subprocess.run([galaxy_run, *plans[name], "--init", p("w.safetensors"),
                            "--max-new-tokens", "2", *prompts, "--tokenizer",
                            p("tok/vocab.json"), "--output", p(f"{name}.out.jsonl")],
                           capture_output=True, text=True)
        if r.returncode:
            fail(f"galaxy-run --prompt ({name}):\n{r.stderr}")
        lines = r.stdout.splitlines()
        if name == "tp":
            lines = [x.split("] ", 1)[-1] for x in lines if x.startswith("[rank 0]")]
        print(f"{name}: {lines}")
        if lines != [WANT_LINE] * len(PROMPTS):
            fail(f"{name}: stdout {r.stdout!r}: want {len(PROMPTS)} lines, each {WANT_LINE!r}")
        with open(p(f"{name}.out.jsonl")) as f:
            rows = [json.loads(line) for line in f]
        if [row["generated_ids"] for row in rows] != [[ROW_ID, ROW_ID]] * len(PROMPTS):
            fail(f"{name}: generated {[row['generated_ids'] for row in rows]}, not the biased "
                 f"token {ROW_ID} twice per row")
        if [row.get("text") for row in rows] != [ROW * 2] * len(PROMPTS):
            fail(f"{name}: --output text {[row.get('text') for row in rows]!r}, want "
                 f"{ROW * 2!r}")
    print("text_one_line.py: pass")
    return 0


def main():
    return harness.script_main("text_one_line.py", "galaxy-text-line.", check)


if __name__ == "__main__":
    sys.exit(main())
