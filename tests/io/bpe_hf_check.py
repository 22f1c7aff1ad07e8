#!/usr/bin/env python3
"""Galaxy's byte-level BPE (runtime/io/bpe.cpp) against Hugging Face's tokenizers.

Usage: bpe_hf_check.py BPE_ENCODE [--break-merges]

Trains a small ByteLevel BPE with `tokenizers` on a seeded corpus (unicode, emojis,
whitespace runs, numbers, contractions), saves it as tokenizer.json (RobertaProcessing:
<s> ... </s>, as BART's) and as vocab.json + merges.txt, and compares, text by text:
  - tokenizer.json: ids, truncated ids and decodings with tokenizers' Tokenizer;
  - vocab.json + merges.txt: ids with transformers' slow BartTokenizer (its own Python
    regex and merge loop) and its decodings.
--break-merges (negative control) drops every third merge from the files galaxy reads:
the ids must then differ.
With --galaxy GALAXYC GALAXY_RUN it also runs galaxy-run end to end: a tiny seq2seq BART
evaluated on {"text", "target_text"} rows with --tokenizer (the folder, then vocab.json)
must report exactly what it reports on the same rows pre-tokenized by Hugging Face
(input_ids = tokenizer(text), labels = tokenizer(text_target=target_text), both cut as
truncation=True).
"""

import json
import os
import random
import subprocess
import sys
import tempfile

from tokenizers import ByteLevelBPETokenizer, Tokenizer
from tokenizers.processors import RobertaProcessing
from transformers import BartTokenizer

WORDS = ["Hello", "world", "it's", "we'll", "they're", "I'm", "you've", "she'd", "don't",
         "naïve", "café", "über", "straße", "日本語", "テキスト", "한국어", "Ελληνικά",
         "😀", "👍🏽", "🇩🇪", "—", "“quoted”", "1234", "3.14159", "42nd", "x²", "٣٤",
         "e-mail", "C++", "#tag", "@user", "foo_bar", "!!!", "...", "$100", "ſ", "ﬁ"]
SPACES = [" ", " ", " ", "  ", "\t", "\n", "\n\n", "   ", "\u00a0", "\u3000", "\u2003",
          "\u000b", "\u0085", " \n "]


def sentence(r):
    n = r.randint(1, 12)
    s = "".join(r.choice(WORDS) + r.choice(SPACES) for _ in range(n))
    if r.random() < 0.3:
        s = r.choice(SPACES) + s
    if r.random() < 0.5:
        s = s.rstrip()
    return s


def main():
    exe = sys.argv[1]
    broken = "--break-merges" in sys.argv
    r = random.Random(7)
    corpus = [sentence(r) for _ in range(400)]
    texts = [sentence(r) for _ in range(150)] + [
        "", " ", "   ", "a", "  trailing spaces   ", "tabs\t\tand\nnewlines\n",
        "Hello <mask> world", "Hello<mask>world", "</s> inside <s> text <pad>",
        "unseen ZQXJ words 987654321", "\u00e9\u0301 combining", "\ud55c\uae00",
        "emoji🙂🙃in-between", "'s'S's 'll'LL",
    ]
    with tempfile.TemporaryDirectory() as d:
        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(corpus, vocab_size=600, min_frequency=2,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
        bpe.post_processor = RobertaProcessing(("</s>", 2), ("<s>", 0))
        bpe.save(os.path.join(d, "tokenizer.json"))
        vm = os.path.join(d, "vm")
        os.mkdir(vm)
        bpe.save_model(vm)
        hf = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
        slow = BartTokenizer(os.path.join(vm, "vocab.json"), os.path.join(vm, "merges.txt"))
        if broken:
            for path in (os.path.join(d, "tokenizer.json"),):
                j = json.load(open(path))
                del j["model"]["merges"][::3]
                json.dump(j, open(path, "w"))
            lines = open(os.path.join(vm, "merges.txt")).read().splitlines()
            open(os.path.join(vm, "merges.txt"), "w").write(
                "\n".join(lines[:1] + [m for i, m in enumerate(lines[1:]) if i % 3]) + "\n")
        stdin = "".join(json.dumps({"text": t}) + "\n" for t in texts)

        def galaxy(path, max_len=None):
            args = [exe, path] + ([str(max_len)] if max_len else [])
            out = subprocess.run(args, input=stdin, capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"bpe_encode {path} failed: {out.stderr}")
            return [json.loads(line) for line in out.stdout.split("\n") if line]

        bad = 0

        def check(what, text, got, want):
            nonlocal bad
            if got != want:
                bad += 1
                if bad <= 10:
                    print(f"MISMATCH {what} for {text!r}:\n  galaxy {got}\n  hf     {want}")

        fast = galaxy(os.path.join(d, "tokenizer.json"))
        cut = galaxy(os.path.join(d, "tokenizer.json"), 7)
        old = galaxy(os.path.join(vm, "vocab.json"))
        hf.enable_truncation(7)
        for t, g, c, o in zip(texts, fast, cut, old):
            hf.no_truncation()
            e = hf.encode(t)
            check("tokenizer.json ids", t, g["input_ids"], e.ids)
            check("decode", t, g["decoded"], hf.decode(e.ids, skip_special_tokens=False))
            check("decode (skip special)", t, g["decoded_skip"],
                  hf.decode(e.ids, skip_special_tokens=True))
            hf.enable_truncation(7)
            check("truncated ids", t, c["input_ids"], hf.encode(t).ids)
            check("vocab.json ids", t, o["input_ids"], slow(t)["input_ids"])
            check("slow decode", t, o["decoded_skip"],
                  slow.decode(o["input_ids"], skip_special_tokens=True,
                              clean_up_tokenization_spaces=False))
        if "--galaxy" in sys.argv:
            i = sys.argv.index("--galaxy")
            bad += galaxy_run_text(d, vm, sys.argv[i + 1], sys.argv[i + 2], texts, slow)
        n = len(texts)
        multi = sum(len(g["pieces"]) < len(t.encode()) for t, g in zip(texts, fast))
        print(f"{n} texts, {sum(len(g['pieces']) for g in fast)} pieces "
              f"({multi} texts with merged pieces), {bad} mismatches")
        sys.exit(1 if bad else 0)


def galaxy_run_text(d, vm, galaxyc, galaxy_run, texts, slow):
    """Eval of text rows through --tokenizer equals eval of HF's ids; returns mismatches."""
    here = os.path.dirname(os.path.abspath(__file__))
    cfg = json.load(open(os.path.join(here, "..", "..", "configs", "bart", "tiny.json")))
    cfg["batch_size"] = 3
    cfg["vocab_size"] = max(slow.get_vocab().values()) + 1
    S, T = cfg["pad_size"], cfg["target_pad_size"]
    pairs = [(texts[i], texts[i + 1]) for i in range(0, 40, 2)]
    with open(os.path.join(d, "text.jsonl"), "w") as f:
        for src, tgt in pairs:
            f.write(json.dumps({"text": src, "target_text": tgt}) + "\n")
    with open(os.path.join(d, "ids.jsonl"), "w") as f:
        for src, tgt in pairs:
            row = {"input_ids": slow(src, truncation=True, max_length=S)["input_ids"],
                   "labels": slow(text_target=tgt, truncation=True, max_length=T)["input_ids"]}
            f.write(json.dumps(row) + "\n")
    json.dump(cfg, open(os.path.join(d, "bart.json"), "w"))
    plan = os.path.join(d, "plan")
    subprocess.run([galaxyc, os.path.join(d, "bart.json"), "-o", plan, "--emit", "none"],
                   check=True, capture_output=True)
    outs = {}
    for name, data, tok in (("ids", "ids.jsonl", []),
                            ("folder", "text.jsonl", ["--tokenizer", d]),
                            ("vocab.json", "text.jsonl",
                             ["--tokenizer", os.path.join(vm, "vocab.json")])):
        out = os.path.join(d, f"{name}.eval.json")
        r = subprocess.run([galaxy_run, plan, "--eval", os.path.join(d, data), *tok,
                            "--eval-out", out], capture_output=True, text=True)
        if r.returncode:
            print(f"galaxy-run --eval ({name}) failed:\n{r.stderr}")
            return 1
        outs[name] = json.load(open(out))
    bad = 0
    for name in ("folder", "vocab.json"):
        same = outs[name] == outs["ids"]
        print(f"galaxy-run --eval text rows with --tokenizer {name}: "
              f"{'equal to' if same else 'DIFFERENT from'} HF's ids "
              f"(loss {outs[name]['loss']:.6f}, {outs[name]['targets']} targets)")
        bad += not same
    return bad


if __name__ == "__main__":
    main()
