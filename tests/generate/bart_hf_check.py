#!/usr/bin/env python3
"""Galaxy's BART greedy generation against Hugging Face, token for token (a manual check).

  bart_hf_check.py BUILD_DIR [--modes serial,tp,galaxy] [--keep DIR]

Builds the tiny random BART of tests/oracle/bart_hf.py (a nonzero final_logits_bias;
matrices redrawn N(0, --std 0.3) with --seed 5: greedy tokens that vary, and a prompt
that ends at </s>) in Hugging Face, saves it as safetensors (Hugging Face's names are
Galaxy's), compiles the same config with galaxyc in each mode (2 uneven ranks), runs
`galaxy-run --generate` (cached encode/decode programs; the default --eos-id, the model's
</s>) on source prompts of different lengths, and compares every generated id with
BartForConditionalGeneration.generate(num_beams=1, do_sample=False) with the forced and
minimum-length processors off, one prompt at a time. Serial `--eval` of seq2seq rows
(bart_case.rows: padded sources and targets, -100 inside) must report Hugging Face's mean
token loss over the same rows (rtol 1e-4) and its token accuracy. Needs transformers (e.g.
.venv-hf/bin/python). Exit 0 equal, 1 different.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "oracle"))
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))

import torch  # noqa: E402
import bart_case  # noqa: E402
import bart_hf  # noqa: E402
import harness  # noqa: E402
import safetensors_io  # noqa: E402

PROMPTS = [[0, 5, 17, 42, 2], [0, 9, 2], [0, 8, 3, 3, 60, 21, 11, 44, 12, 40, 33, 2], [33],
           [0, 7, 8, 9, 10, 11, 2]]
MAX_NEW = 9


def fail(msg, code=1):
    print(f"bart_hf_check.py: {msg}")
    sys.exit(code)


def wide_model(cfg, std=0.3, seed=5):
    """bart_hf.py's model with its matrices redrawn N(0, std): wider than bart_hf.py's
    N(0, 0.2), so that greedy decoding moves between tokens instead of repeating one."""
    model = bart_hf.hf_model(cfg).eval()
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0.0, std)
    return model


def hf_generate(model, cfg):
    """Hugging Face's greedy tokens for each of PROMPTS, one prompt at a time (the forced
    and minimum-length processors off), without the decoder start token."""
    # generate() asks whether FSDP wraps the model, which imports
    # torch.distributed.fsdp: broken for Debian's torch 1.13 on Python 3.11.
    import transformers.generation.utils as gen_utils
    gen_utils.is_fsdp_managed_module = lambda module: False
    want = []
    with torch.no_grad():
        for ids in PROMPTS:
            out = model.generate(
                input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids)),
                num_beams=1, do_sample=False, max_new_tokens=MAX_NEW, min_length=0,
                forced_bos_token_id=None, forced_eos_token_id=None, no_repeat_ngram_size=0,
                eos_token_id=cfg["eos_token_id"], pad_token_id=cfg["pad_token_id"],
                decoder_start_token_id=cfg["decoder_start_token_id"])
            assert out[0, 0].item() == cfg["decoder_start_token_id"]
            want.append([int(t) for t in out[0, 1:]])
    return want


def mode_config(cfg, mode):
    """cfg for `mode` and its world (2 uneven ranks unless serial; galaxy: TP/None/TP)."""
    c = dict(cfg)
    world = 1 if mode == "serial" else 2
    if world > 1:
        split = bart_case.SPLITS[2]
        c.update(tp_num_attention_heads_list=split["heads"],
                 tp_intermediate_size_list=split["inter"])
        if mode == "galaxy":
            c.update(att_parallel_method="TP", con_parallel_method="None",
                     mlp_parallel_method="TP")
    return c, world


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--modes", default="serial,tp,galaxy")
    ap.add_argument("--keep")
    ap.add_argument("--std", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    galaxyc, galaxy_run = harness.tools(args.build, fail)
    cfg = bart_case.config("sgd")
    cfg["batch_size"] = 2
    model = wide_model(cfg, args.std, args.seed)
    want = hf_generate(model, cfg)
    print(f"hugging face: {want}")
    status = 0
    with harness.work_dir(args.keep, "galaxy-bart-hf.") as work:
        def p(name):
            return os.path.join(work, name)
        safetensors_io.save(p("hf.safetensors"), bart_hf.galaxy_state(model))
        harness.write_prompts(p("prompts.jsonl"), PROMPTS)
        status |= check_eval(model, cfg, galaxyc, galaxy_run, p)
        for mode in args.modes.split(","):
            c, world = mode_config(cfg, mode)
            with open(p(f"{mode}.json"), "w") as f:
                json.dump(c, f)
            subprocess.run([galaxyc, p(f"{mode}.json"), "--mode", mode, "--world", str(world),
                            "-o", p(f"{mode}.plan"), "--emit", "none"], check=True)
            ranks = ["--nproc", str(world)] if world > 1 else []
            subprocess.run([galaxy_run, p(f"{mode}.plan"), *ranks, "--init", p("hf.safetensors"),
                            "--generate", p("prompts.jsonl"), "--max-new-tokens", str(MAX_NEW),
                            "--output", p(f"{mode}.out.jsonl")], check=True)
            with open(p(f"{mode}.out.jsonl")) as f:
                got = [json.loads(line)["generated_ids"] for line in f]
            same = got == want
            print(f"{mode}: {'equal' if same else 'DIFFERENT'} {got if not same else ''}")
            status |= not same
    return status


def check_eval(model, cfg, galaxyc, galaxy_run, p):
    rows = bart_case.rows(7, 3)
    with open(p("eval.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    # Hugging Face: every row in one batch, so its mean is over all the file's targets.
    c = dict(cfg, batch_size=len(rows))
    batch = next(bart_hf.batches(rows, c))
    with torch.no_grad():
        out = model(**batch)
    labels = batch["labels"]
    counted = labels != -100
    correct = (out.logits.argmax(-1) == labels) & counted
    want_loss, want_acc = out.loss.item(), correct.sum().item() / counted.sum().item()
    with open(p("eval.json"), "w") as f:
        json.dump(cfg, f)  # batch 2: the last partial batch wraps
    subprocess.run([galaxyc, p("eval.json"), "-o", p("eval.plan"), "--emit", "none"], check=True)
    subprocess.run([galaxy_run, p("eval.plan"), "--init", p("hf.safetensors"), "--eval",
                    p("eval.jsonl"), "--eval-out", p("eval.out.json")], check=True)
    with open(p("eval.out.json")) as f:
        got = json.load(f)
    ok = (abs(got["loss"] - want_loss) <= 1e-4 * abs(want_loss)
          and abs(got["accuracy"] - want_acc) < 1e-9
          and got["targets"] == counted.sum().item())
    print(f"eval: galaxy loss {got['loss']:.6f} accuracy {got['accuracy']:.4f} over "
          f"{got['targets']} targets; hugging face {want_loss:.6f} {want_acc:.4f} over "
          f"{counted.sum().item()}: {'equal' if ok else 'DIFFERENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
