#!/usr/bin/python3
"""Writes the demo dataset to configs/data/demo/: a small, learnable 10-class English topic
classification task (train.tsv, dev.tsv in the prototype's text<TAB>label format), its
vocab.txt, and train.jsonl (the first 64 training rows pre-tokenized, pad_size 32).

Deterministic (fixed seed, standard library only): rerunning reproduces the files byte for
byte. Usage: /usr/bin/python3 scripts/make_demo_data.py [OUT_DIR]
"""
import json
import os
import random
import sys
import unicodedata

SEED = 20240601
NUM_TRAIN = 2000
NUM_DEV = 200
PAD_SIZE = 32
JSONL_ROWS = 64

# Topic words; accented spellings exercise the tokenizer's accent stripping.
TOPICS = [
    ("sports", "game team player goal coach match score league ball stadium referee "
               "season tournament striker keeper fans trophy pitch win defeat"),
    ("cooking", "recipe oven kitchen chef soup bread butter garlic onion flour sauce "
                "crème brûlée café dinner spices salt pan bake roast"),
    ("weather", "rain storm cloud wind snow sunny forecast temperature thunder "
                "lightning humid fog frost breeze drizzle hail umbrella cold warm climate"),
    ("music", "song guitar piano concert band drummer melody rhythm album singer "
              "orchestra violin chorus lyrics jazz stage tune note opera rehearsal"),
    ("technology", "computer software laptop network code server robot internet "
                   "chip algorithm database phone app update keyboard screen wifi "
                   "program data engineer"),
    ("finance", "bank money stock market price loan interest budget tax investor "
                "profit debt euro dollar payment salary invest fund trade economy"),
    ("health", "doctor hospital medicine patient nurse fever vaccine clinic health "
               "diet exercise sleep heart blood pain therapy vitamin illness cure "
               "treatment"),
    ("travel", "trip flight hotel passport airport luggage tourist beach museum "
               "map train ticket journey visa zürich málaga são paulo fiancée resort"),
    ("space", "planet star rocket orbit moon galaxy astronaut telescope mars comet "
              "launch satellite nasa universe gravity asteroid crater solar cosmic "
              "nebula"),
    ("animals", "dog cat horse bird lion tiger elephant rabbit fish whale zoo puppy "
                "kitten wolf bear farm feather fur tail wild"),
]

FILLER = ("the a an and of to in is was we they he she it this that my our their "
          "very really today yesterday some new good old about with for on at by from "
          "people many every after before just also more most big small great "
          "bad first last next time day week year again still never always "
          "saw liked talked heard read said thought think know").split()

PUNCT = [".", ",", "!", "?", "'", "-", ":", ";"]
SUFFIXES = ["##s", "##ing", "##ed", "##er", "##ly"]
# Never in the vocab: they must come out as [UNK].
UNKNOWN = ["xyzzy", "qwerty", "blorft", "zzzt", "kwyjibo"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def strip_accents(text):
    return "".join(c for c in unicodedata.normalize("NFD", text)
                   if unicodedata.category(c) != "Mn")


def build_vocab():
    vocab = list(SPECIAL) + PUNCT
    seen = set(vocab)
    words = list(FILLER)
    for _, topic in TOPICS:
        words += topic.split()
    for w in words:
        w = strip_accents(w.lower())
        if w not in seen:
            seen.add(w)
            vocab.append(w)
    return vocab + SUFFIXES


def make_sentence(rng, label):
    topic = TOPICS[label][1].split()
    n = rng.randint(6, 20)
    words = []
    for _ in range(n):
        r = rng.random()
        if r < 0.40:
            w = rng.choice(topic)
            if rng.random() < 0.15 and not w.endswith("s"):
                w += "s"  # becomes word + "##s"
        elif r < 0.45:
            w = rng.choice(TOPICS[rng.randrange(len(TOPICS))][1].split())  # noise
        elif r < 0.47:
            w = rng.choice(UNKNOWN)
        else:
            w = rng.choice(FILLER)
        if rng.random() < 0.08:
            w += ","
        words.append(w)
    # At least two topic words so every sentence is learnable.
    for _ in range(2):
        words.insert(rng.randrange(len(words) + 1), rng.choice(topic))
    words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words) + rng.choice([".", ".", ".", "!", "?"])


# --- a BERT basic + WordPiece tokenizer (lower case, strip accents) for train.jsonl ---
def is_punct(c):
    o = ord(c)
    if 33 <= o <= 47 or 58 <= o <= 64 or 91 <= o <= 96 or 123 <= o <= 126:
        return True
    return unicodedata.category(c).startswith("P")


def basic_tokenize(text):
    out = []
    for word in text.split():
        word = strip_accents(word.lower())
        cur = ""
        for c in word:
            if is_punct(c):
                if cur:
                    out.append(cur)
                cur = ""
                out.append(c)
            else:
                cur += c
        if cur:
            out.append(cur)
    return out


def wordpiece(word, ids):
    if len(word) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            sub = word[start:end] if start == 0 else "##" + word[start:end]
            if sub in ids:
                break
            end -= 1
        if end == start:
            return ["[UNK]"]
        pieces.append(sub)
        start = end
    return pieces


def encode(text, ids):
    tokens = ["[CLS]"]
    for w in basic_tokenize(text):
        tokens += wordpiece(w, ids)
    tok_ids = [ids[t] for t in tokens][:PAD_SIZE]
    real = len(tok_ids)
    return {
        "input_ids": tok_ids + [0] * (PAD_SIZE - real),
        "attention_mask": [1] * real + [0] * (PAD_SIZE - real),
        "token_type_ids": [0] * PAD_SIZE,
    }


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "configs", "data",
                                                                 "demo")
    os.makedirs(out_dir, exist_ok=True)
    rng = random.Random(SEED)
    vocab = build_vocab()
    ids = {t: i for i, t in enumerate(vocab)}

    def split(n):
        return [(make_sentence(rng, i % len(TOPICS)), i % len(TOPICS)) for i in range(n)]

    train, dev = split(NUM_TRAIN), split(NUM_DEV)
    rng.shuffle(train)
    rng.shuffle(dev)

    def write(name, text):
        with open(os.path.join(out_dir, name), "w", encoding="utf-8", newline="\n") as f:
            f.write(text)

    write("vocab.txt", "".join(t + "\n" for t in vocab))
    write("train.tsv", "".join(f"{s}\t{y}\n" for s, y in train))
    write("dev.tsv", "".join(f"{s}\t{y}\n" for s, y in dev))
    rows = []
    for s, y in train[:JSONL_ROWS]:
        row = encode(s, ids)
        row["label"] = y
        rows.append(json.dumps(row, separators=(",", ":")) + "\n")
    write("train.jsonl", "".join(rows))
    print(f"wrote {out_dir}: vocab {len(vocab)}, train {len(train)}, dev {len(dev)}, "
          f"train.jsonl {len(rows)} rows")


if __name__ == "__main__":
    main()
