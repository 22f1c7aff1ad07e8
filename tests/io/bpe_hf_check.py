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
        n = len(texts)
        multi = sum(len(g["pieces"]) < len(t.encode()) for t, g in zip(texts, fast))
        print(f"{n} texts, {sum(len(g['pieces']) for g in fast)} pieces "
              f"({multi} texts with merged pieces), {bad} mismatches")
        sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
