#!/usr/bin/env python3
"""BART --generate / --prompt with the model's byte-level BPE: text rows as Hugging Face's.

  bart_text_generate.py BUILD_DIR [--keep DIR] [--break-tokenizer]

Trains a small ByteLevel BPE with `tokenizers` (vocab.json + merges.txt, BART's special
tokens), builds the tiny random BART of tests/oracle/bart_hf.py over that vocabulary
(matrices N(0, 0.3)), and compares with Hugging Face (BartTokenizer, generate greedy):
  - `galaxy-run --prompt TEXT ... --tokenizer vocab.json`: sources encoded by Galaxy's BPE
    (<s> text </s>, cut to pad_size), generated greedily, printed one line per prompt on
    stdout (line breaks escaped: text_line.py), must equal
    tokenizer.batch_decode(generate(tokenizer(text)), skip_special_tokens=True), and
    --output's ids and texts must equal generate's;
  - `galaxy-run --generate FILE --tokenizer FOLDER` on Hugging Face's ids prints the same
    lines.
--break-tokenizer (negative control) hands galaxy-run a merges.txt with every third merge
dropped: the texts must then differ. Needs transformers and tokenizers. Exit 0 equal.
"""

import argparse
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))

import torch  # noqa: E402
from tokenizers import ByteLevelBPETokenizer  # noqa: E402
from transformers import BartTokenizer  # noqa: E402

import bart_case  # noqa: E402
import bart_hf  # noqa: E402
import harness  # noqa: E402
import safetensors_io  # noqa: E402
from text_line import escape_line  # noqa: E402

WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away", "naïve",
         "café", "日本", "😀", "it's", "42", "hello", "world", "again", "and"]
PROMPTS = ["the cat sat on a mat", "hello world", "a dog ran far away and again",
           "naïve café 😀", "it's 42"]
MAX_NEW = 8


def fail(msg, code=1):
    print(f"bart_text_generate.py: {msg}")
    sys.exit(code)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--keep")
    ap.add_argument("--break-tokenizer", action="store_true")
    args = ap.parse_args()
    galaxyc, galaxy_run = harness.tools(args.build, fail)
    r = random.Random(3)
    corpus = [" ".join(r.choice(WORDS) for _ in range(r.randrange(3, 9))) for _ in range(300)]
    with harness.work_dir(args.keep, "galaxy-bart-text.") as work:
        def p(name):
            return os.path.join(work, name)

        tok_dir = p("tokenizer")
        os.mkdir(tok_dir)
        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(corpus, vocab_size=320, min_frequency=2,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        bpe.save_model(tok_dir)
        slow = BartTokenizer(os.path.join(tok_dir, "vocab.json"),
                             os.path.join(tok_dir, "merges.txt"))
        galaxy_tok = tok_dir
        if args.break_tokenizer:
            galaxy_tok = p("broken")
            os.mkdir(galaxy_tok)
            with open(os.path.join(tok_dir, "vocab.json")) as f:
                vocab_text = f.read()
            with open(os.path.join(galaxy_tok, "vocab.json"), "w") as f:
                f.write(vocab_text)
            lines = open(os.path.join(tok_dir, "merges.txt")).read().splitlines()
            with open(os.path.join(galaxy_tok, "merges.txt"), "w") as f:
                f.write("\n".join(lines[:1] + [m for i, m in enumerate(lines[1:]) if i % 3])
                        + "\n")

        cfg = bart_case.config("sgd")
        cfg.update(batch_size=2, vocab_size=max(slow.get_vocab().values()) + 1)
        model = bart_hf.hf_model(cfg).eval()
        torch.manual_seed(5)
        with torch.no_grad():
            for prm in model.parameters():
                if prm.dim() == 2:
                    prm.normal_(0.0, 0.3)
        import transformers.generation.utils as gen_utils
        gen_utils.is_fsdp_managed_module = lambda module: False  # Debian torch 1.13
        want_ids, want_text, sources = [], [], []
        with torch.no_grad():
            for text in PROMPTS:
                enc = slow(text, truncation=True, max_length=cfg["pad_size"],
                           return_tensors="pt")
                sources.append([int(t) for t in enc["input_ids"][0]])
                out = model.generate(
                    **enc, num_beams=1, do_sample=False, max_new_tokens=MAX_NEW, min_length=0,
                    forced_bos_token_id=None, forced_eos_token_id=None,
                    no_repeat_ngram_size=0, eos_token_id=cfg["eos_token_id"],
                    pad_token_id=cfg["pad_token_id"],
                    decoder_start_token_id=cfg["decoder_start_token_id"])
                want_ids.append([int(t) for t in out[0, 1:]])
                want_text.append(slow.decode(out[0], skip_special_tokens=True))
        print(f"hugging face: {want_ids}\n  {want_text}")
        if len(set(want_text)) < 2 or not any(t.strip() for t in want_text):
            fail(f"degenerate generations: {want_text}")
        safetensors_io.save(p("w.safetensors"), bart_hf.galaxy_state(model))
        with open(p("bart.json"), "w") as f:
            json.dump(cfg, f)
        subprocess.run([galaxyc, p("bart.json"), "-o", p("bart.plan"), "--emit", "none"],
                       check=True, capture_output=True)
        status = 0

        def run(what, extra):
            nonlocal status
            res = subprocess.run([galaxy_run, p("bart.plan"), "--init", p("w.safetensors"),
                                  "--max-new-tokens", str(MAX_NEW), "--output",
                                  p(f"{what}.jsonl"), *extra], capture_output=True, text=True)
            if res.returncode:
                fail(f"galaxy-run ({what}) failed:\n{res.stderr}")
            got = res.stdout.split("\n")[:-1]
            with open(p(f"{what}.jsonl")) as f:
                rows = [json.loads(line) for line in f]
            ids = [row["generated_ids"] for row in rows]
            # One line a row (line breaks escaped); --output holds the texts as they are.
            ok = (got == [escape_line(t) for t in want_text] and ids == want_ids
                  and [row.get("text") for row in rows] == want_text)
            print(f"{what}: {'equal' if ok else 'DIFFERENT'}"
                  + ("" if ok else f"\n  text {got}\n  ids {ids}\n  sources "
                     f"{[row['input_ids'] for row in rows]} vs {sources}"))
            status |= not ok

        prompts = [a for t in PROMPTS for a in ("--prompt", t)]
        run("prompt_vocab_json", [*prompts, "--tokenizer", os.path.join(galaxy_tok, "vocab.json")])
        harness.write_prompts(p("sources.jsonl"), sources)
        run("generate_folder", ["--generate", p("sources.jsonl"), "--tokenizer", galaxy_tok])
    print("bart_text_generate.py: " + ("equal" if status == 0 else "DIFFERENT"))
    return status


if __name__ == "__main__":
    sys.exit(main())
