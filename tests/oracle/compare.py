#!/usr/bin/python3
"""Compares two runs (Galaxy vs the oracle, or any two): exit 0 match, 1 mismatch.

  compare.py [losses] A.jsonl B.jsonl [--rtol 1e-4] [--atol 0]
  compare.py weights A.safetensors B.safetensors [--atol 1e-3] [--ignore REGEX]
      [--init W.safetensors [--update-rtol 0.05] [--update-atol 1e-7]]
  compare.py logits A.json B.json [--atol 1e-4]
      (causal-LM evaluations: their per-position token_losses, targets and perplexity)
  compare.py frozen SAVED.safetensors INIT.safetensors --trainable REGEX

frozen (PEFT runs): SAVED must hold every tensor of INIT (a run that dropped or never
created the method's parameters fails here, naming them), every tensor whose name does
not match REGEX must be bit-identical to INIT, and at least one trainable tensor must
have moved.

With --init, weights also compares the updates dA = A-W and dB = B-W per tensor:
max|dA-dB| <= update_atol + update_rtol * max|dB| + 1e-6 * max|B| (the last term covers
float32 rounding of the weights themselves). A few steps move most weights by far less
than any useful absolute tolerance (attention Q/K updates are ~1e-6 at BERT's init), so
only this relative check notices a wrong or missing gradient there. Key biases are left
out of it: their gradient is exactly zero (softmax ignores a per-query shift), so under
AdamW their updates are amplified rounding noise that no tolerance can pin down.

"Nothing to compare" (no steps, no tensors, differing step or name sets) is a mismatch:
a comparison that checks nothing must not pass.
"""

import argparse
import json
import math
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402

import safetensors_io  # noqa: E402


def _fail(msg):
    print(f"MISMATCH: {msg}")
    return 1


def _read_losses(path):
    losses = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if "step" not in obj or "loss" not in obj:
                raise ValueError(f"{path}:{lineno}: a metrics line needs 'step' and 'loss'")
            if obj["step"] in losses:
                raise ValueError(f"{path}:{lineno}: step {obj['step']} appears twice")
            losses[int(obj["step"])] = float(obj["loss"])
    return losses


def compare_losses(a_path, b_path, rtol, atol):
    a, b = _read_losses(a_path), _read_losses(b_path)
    if not a or not b:
        return _fail(f"nothing to compare: {a_path} has {len(a)} steps, {b_path} {len(b)}")
    if set(a) != set(b):
        only_a = sorted(set(a) - set(b))
        only_b = sorted(set(b) - set(a))
        return _fail(
            f"step sets differ: only in {a_path}: {only_a[:10]}, only in {b_path}: {only_b[:10]}"
        )
    print(f"{'step':>5} {'A':>14} {'B':>14} {'abs diff':>11} {'rel diff':>11}")
    bad = []
    for s in sorted(a):
        x, y = a[s], b[s]
        diff = abs(x - y)
        rel = diff / max(abs(x), abs(y), 1e-30)
        ok = math.isfinite(x) and math.isfinite(y) and diff <= atol + rtol * max(abs(x), abs(y))
        flag = "" if ok else "  <-- FAIL"
        print(f"{s:>5} {x:>14.8f} {y:>14.8f} {diff:>11.3e} {rel:>11.3e}{flag}")
        if not ok:
            bad.append(s)
    if bad:
        return _fail(f"losses differ at steps {bad} (rtol {rtol}, atol {atol})")
    print(f"OK: {len(a)} steps match (rtol {rtol}, atol {atol})")
    return 0


_NOISE_ONLY = re.compile(r"attention\.self\.key\.bias$")


def _compare_updates(a, b, init_path, rtol, atol):
    w = safetensors_io.load(init_path)
    missing = sorted(set(a) - set(w))
    if missing:
        return _fail(f"{init_path} lacks {missing[:5]}; is it the run's initial weights?")
    rows = []
    for name in sorted(a):
        if _NOISE_ONLY.search(name):
            continue
        w0 = w[name].astype(np.float64)
        if w0.shape != a[name].shape:
            return _fail(f"'{name}' has shape {list(w0.shape)} in {init_path}")
        da = a[name].astype(np.float64) - w0
        db = b[name].astype(np.float64) - w0
        err = float(np.abs(da - db).max())
        mag = float(np.abs(db).max())
        allowed = atol + rtol * mag + 1e-6 * float(np.abs(b[name]).max())
        rows.append((err / allowed, err, mag, name))
    rows.sort(reverse=True)
    print("updates vs init (worst err/allowed):")
    for ratio, err, mag, name in rows[:5]:
        print(f"  {ratio:9.3f}  max|dA-dB| {err:10.3e}  max|dB| {mag:10.3e}  {name}")
    bad = [r for r in rows if not r[0] <= 1.0]
    if bad:
        _, err, mag, name = bad[0]
        return _fail(
            f"{len(bad)} tensors were updated differently; worst '{name}': "
            f"max|dA-dB| {err:.3e} exceeds {atol} + {rtol} * max|dB| {mag:.3e} "
            "+ 1e-6 * max|B|; a gradient differs"
        )
    print(f"OK: all updates agree (update_rtol {rtol}, update_atol {atol})")
    return 0


def compare_weights(a_path, b_path, atol, ignore, init=None, urtol=0.05, uatol=1e-7):
    skip = re.compile(ignore) if ignore else None
    a = {k: v for k, v in safetensors_io.load(a_path).items() if not (skip and skip.search(k))}
    b = {k: v for k, v in safetensors_io.load(b_path).items() if not (skip and skip.search(k))}
    if not a or not b:
        return _fail(f"nothing to compare: {a_path} has {len(a)} tensors, {b_path} {len(b)}")
    if set(a) != set(b):
        only_a = sorted(set(a) - set(b))
        only_b = sorted(set(b) - set(a))
        return _fail(
            f"tensor names differ: only in {a_path}: {only_a[:5]}, only in {b_path}: {only_b[:5]}"
        )
    rows = []
    for name in sorted(a):
        x, y = a[name], b[name]
        if x.shape != y.shape:
            return _fail(f"'{name}' has shape {list(x.shape)} in A, {list(y.shape)} in B")
        d = np.abs(x.astype(np.float64) - y.astype(np.float64))
        worst = float(d.max()) if d.size else 0.0
        if not np.all(np.isfinite(x)) or not np.all(np.isfinite(y)):
            worst = math.inf
        where = [int(i) for i in np.unravel_index(int(d.argmax()), d.shape)] if d.size else []
        rows.append((worst, name, where))
    rows.sort(reverse=True)
    print(f"{len(rows)} tensors; worst max|A-B|:")
    for worst, name, where in rows[:5]:
        print(f"  {worst:11.3e}  {name} at {where}")
    worst, name, where = rows[0]
    if not worst <= atol:
        n_bad = sum(1 for r in rows if not r[0] <= atol)
        return _fail(f"{n_bad} tensors exceed atol {atol}; worst '{name}' {worst:.3e} at {where}")
    print(f"OK: all {len(rows)} tensors within atol {atol}")
    if init:
        return _compare_updates(a, b, init, urtol, uatol)
    return 0


def compare_frozen(saved_path, init_path, trainable):
    saved = safetensors_io.load(saved_path)
    init = safetensors_io.load(init_path)
    train = re.compile(trainable)
    missing = [n for n in init if n not in saved]
    if missing:
        return _fail(
            f"{saved_path} lacks {len(missing)} of the {len(init)} initial tensors, e.g. "
            f"{missing[:4]}: the run did not create (or did not save) these parameters; "
            "does it implement the config's PEFT method?"
        )
    extra = [n for n in saved if n not in init]
    if extra:
        return _fail(f"{saved_path} has tensors {init_path} lacks: {extra[:4]}")
    frozen = [n for n in init if not train.search(n)]
    if not frozen:
        return _fail(f"nothing to compare: every tensor matches --trainable {trainable!r}")
    changed = []
    for n in frozen:
        a, b = saved[n], init[n]
        # Bit patterns, not values: -0.0 vs 0.0 or a NaN must not pass.
        if a.shape != b.shape or a.dtype != b.dtype or a.tobytes() != b.tobytes():
            d = np.abs(a.astype(np.float64) - b.astype(np.float64)) if a.shape == b.shape else None
            changed.append((n, float(d.max()) if d is not None and d.size else math.inf))
    if changed:
        worst = max(changed, key=lambda x: x[1])
        return _fail(
            f"{len(changed)} frozen tensors changed, e.g. {[c[0] for c in changed[:4]]}; "
            f"worst '{worst[0]}' by {worst[1]:.3e}: a frozen weight got an update"
        )
    moved = [n for n in init if train.search(n) and saved[n].tobytes() != init[n].tobytes()]
    if not moved:
        return _fail(f"no trainable tensor (matching {trainable!r}) moved from {init_path}")
    print(
        f"OK: {len(frozen)} frozen tensors bit-identical to {init_path}; "
        f"{len(moved)} of {len(init) - len(frozen)} trainable tensors moved"
    )
    return 0


def _read_eval(path):
    with open(path) as f:
        obj = json.load(f)
    scores = "token_losses" if "token_losses" in obj else "logits"
    for k in ("loss", "accuracy", scores):
        if k not in obj:
            raise ValueError(f"{path}: eval output needs '{k}' (has {sorted(obj)})")
    return obj


def compare_logits(a_path, b_path, atol):
    a, b = _read_eval(a_path), _read_eval(b_path)
    # A causal LM's evaluation: each position's token loss instead of logits.
    key = "token_losses" if "token_losses" in b else "logits"
    if key not in a:
        return _fail(f"{a_path} has no '{key}' as {b_path} has")
    if key == "token_losses":
        if a.get("targets") != b.get("targets"):
            return _fail(f"targets scored differ: {a.get('targets')} vs {b.get('targets')}")
        pa, pb = float(a["perplexity"]), float(b["perplexity"])
        print(f"perplexity A {pa:.6f} B {pb:.6f} over {b['targets']} targets")
        if not abs(pa - pb) <= 2 * atol * pb + 1e-6 * pb:
            return _fail(f"perplexities differ: {pa} vs {pb}")
    la = np.asarray(a[key], dtype=np.float64)
    lb = np.asarray(b[key], dtype=np.float64)
    if la.size == 0 or lb.size == 0:
        return _fail(f"nothing to compare: {a_path} logits {la.shape}, {b_path} {lb.shape}")
    if la.shape != lb.shape:
        return _fail(f"logits shapes differ: {list(la.shape)} vs {list(lb.shape)}")
    d = np.abs(la - lb)
    worst = float(d.max()) if np.all(np.isfinite(d)) else math.inf
    flat = int(np.nan_to_num(d, nan=np.inf).argmax())
    # [rows, classes], or [rows, positions, vocab] for a causal LM: name every index.
    idx = [int(i) for i in np.unravel_index(flat, d.shape)]
    at = f"row {idx[0]} " + "".join(f"position {i} " for i in idx[1:-1]) + f"class {idx[-1]}"
    # Cross-entropy moves by at most 2x the largest logit change.
    loss_diff = abs(float(a["loss"]) - float(b["loss"]))
    print(f"logits {list(la.shape)}: worst |A-B| {worst:.3e} at {at}")
    print(f"loss A {a['loss']:.8f} B {b['loss']:.8f} (|diff| {loss_diff:.3e})")
    print(f"accuracy A {a['accuracy']:.4f} B {b['accuracy']:.4f}")
    if not worst <= atol:
        return _fail(f"logits differ by {worst:.3e} > atol {atol} at {at}")
    if not loss_diff <= 2 * atol + 1e-6 * abs(float(b["loss"])):
        return _fail(f"eval loss differs by {loss_diff:.3e} (> 2*atol) though logits match")
    if a["accuracy"] != b["accuracy"]:
        print("note: accuracies differ although logits match: a near tie flipped an argmax")
    print(f"OK: logits within atol {atol}")
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in ("losses", "weights", "logits", "frozen", "-h", "--help"):
        argv.insert(0, "losses")  # the brief's form: compare.py LOSSES_A LOSSES_B
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("losses")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--rtol", type=float, default=1e-4)
    p.add_argument("--atol", type=float, default=0.0)
    p = sub.add_parser("weights")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--atol", type=float, default=1e-3)
    p.add_argument("--ignore", help="regex of tensor names to leave out")
    p.add_argument("--init", help="the initial weights: also compare the updates")
    p.add_argument("--update-rtol", type=float, default=0.05)
    p.add_argument("--update-atol", type=float, default=1e-7)
    p = sub.add_parser("logits")
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--atol", type=float, default=1e-4)
    p = sub.add_parser("frozen")
    p.add_argument("saved")
    p.add_argument("init")
    p.add_argument("--trainable", required=True, help="regex of the trainable names")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "losses":
            return compare_losses(args.a, args.b, args.rtol, args.atol)
        if args.cmd == "weights":
            return compare_weights(
                args.a, args.b, args.atol, args.ignore,
                args.init, args.update_rtol, args.update_atol,
            )
        if args.cmd == "frozen":
            return compare_frozen(args.saved, args.init, args.trainable)
        return compare_logits(args.a, args.b, args.atol)
    except (OSError, ValueError) as e:  # unreadable input: cannot show a match
        print(f"ERROR: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
