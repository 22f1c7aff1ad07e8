"""Galaxy's PEFT adapter folders against Hugging Face PEFT itself (not CTest: needs
transformers + peft from PyPI; run it through scripts/peft_check.sh).

  peft_roundtrip.py [--build BUILD] [--workdir DIR]   (DIR keeps the files)

Galaxy -> PEFT: galaxy-run trains the tiny BERT's LoRA for 3 steps and writes
--save-adapter DIR; PeftModel.from_pretrained(BertForSequenceClassification with the
same base weights, DIR) must put LoRA on exactly the plan's modules and give Galaxy's
eval logits (1e-4). Targets query, value and the MLP's output.dense (not the attention's
output.dense, which ends the same way: the written target_modules must tell them apart).

PEFT -> Galaxy: get_peft_model with random (non-zero) LoRA factors and task head writes
save_pretrained(DIR); galaxy-run --init BASE --init-adapter DIR gives PEFT's forward loss
at step 1 and PEFT's eval logits (1e-4); a plan with other targets refuses the folder.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "peft"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bert_config  # noqa: E402
import bert_data  # noqa: E402
import hf_conformance  # noqa: E402
import peft_case  # noqa: E402
import safetensors_io  # noqa: E402
import tiny_case  # noqa: E402

LOGITS_ATOL = 1e-4
LOSS_RTOL = 1e-4


class Failed(Exception):
    pass


def run(cmd, expect_rc=0):
    print("+ " + " ".join(cmd), flush=True)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != expect_rc:
        raise Failed(f"exit {r.returncode} (expected {expect_rc}):\n{r.stdout[-3000:]}")
    return r.stdout


def base_model(cfg, weights):
    """BertForSequenceClassification holding `weights` minus the LoRA factors."""
    model = hf_conformance.hf_model(cfg)
    state = {k: torch.from_numpy(v) for k, v in weights.items() if ".lora_" not in k}
    result = model.load_state_dict(state, strict=False)
    buffers = {n for n, _ in model.named_buffers()}
    missing = [k for k in result.missing_keys if k not in buffers]
    if missing or result.unexpected_keys:
        raise Failed(f"weights do not fit BERT: missing {missing}, unexpected "
                     f"{result.unexpected_keys}")
    return model


def logits_of(model, rows):
    model.eval()
    with torch.no_grad():
        ids, mask, types, _ = bert_data.make_batch(rows, range(len(rows)))
        return model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.numpy()


def lora_modules(peft_model):
    prefix = "base_model.model."
    return sorted(n[len(prefix):] for n, m in peft_model.named_modules()
                  if hasattr(m, "lora_A") and "default" in m.lora_A)


def close(what, got, want, atol=None, rtol=None):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise Failed(f"{what}: shape {got.shape} vs {want.shape}")
    err = np.abs(got - want).max()
    tol = atol if atol is not None else rtol * np.abs(want).max()
    print(f"{what}: max |diff| {err:.3g} (tolerance {tol:.3g})")
    if not err <= tol:
        raise Failed(f"{what}: max |diff| {err} > {tol}")
    return err


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.abspath(os.path.join(HERE, "..", ".."))
    ap.add_argument("--build", default=os.path.join(root, "build"))
    ap.add_argument("--workdir")
    ap.add_argument("--oracle-python", default="/usr/bin/python3")
    args = ap.parse_args(argv)
    if not args.workdir:
        with tempfile.TemporaryDirectory(prefix="galaxy-peft-rt.") as tmp:
            return check(args, tmp)
    os.makedirs(args.workdir, exist_ok=True)
    return check(args, args.workdir)


def check(args, work):
    galaxyc = os.path.join(args.build, "tools", "galaxyc")
    galaxy_run = os.path.join(args.build, "tools", "galaxy-run")
    w = lambda name: os.path.join(work, name)  # noqa: E731

    import peft
    import transformers
    print(f"peft {peft.__version__}, transformers {transformers.__version__}, "
          f"torch {torch.__version__}; work dir {work}")
    torch.manual_seed(0)
    torch.set_num_threads(2)

    for name, n, seed in (("train.jsonl", 24, 1), ("eval.jsonl", 8, 2)):
        with open(w(name), "w") as f:
            for row in tiny_case.rows(n, seed):
                f.write(json.dumps(row) + "\n")

    def plan_for(name, targets):
        cfg = {**peft_case.config("lora", "sgd"), "lora_target_modules": targets}
        with open(w(name + ".json"), "w") as f:
            json.dump(cfg, f, indent=1)
        run([galaxyc, w(name + ".json"), "-o", w(name + ".plan"), "--emit", "none"])
        return bert_config.load_config(w(name + ".json")), w(name + ".plan")

    results = {}

    # --- Galaxy -> PEFT ---------------------------------------------------------------
    cfg, plan = plan_for("fwd", ["query", "value", "output"])
    train_rows = bert_data.load_rows(w("train.jsonl"), cfg)
    eval_rows = bert_data.load_rows(w("eval.jsonl"), cfg)
    run([args.oracle_python, os.path.join(HERE, "bert_torch.py"), "init", w("fwd.json"),
         "--seed", "1234", "--out", w("init.safetensors")])
    run([galaxy_run, plan, "--init", w("init.safetensors"), "--data", w("train.jsonl"),
         "--steps", "3", "--save-adapter", w("galaxy_adapter"), "--eval", w("eval.jsonl"),
         "--eval-out", w("galaxy_eval.json")])
    with open(w("galaxy_adapter/adapter_config.json")) as f:
        written = json.load(f)
    print("written target_modules:", written["target_modules"])
    init = safetensors_io.load(w("init.safetensors"))
    model = base_model(cfg, init)
    base_logits = logits_of(model, eval_rows)
    pm = peft.PeftModel.from_pretrained(model, w("galaxy_adapter"))
    want = sorted(k[: -len(".lora_A.weight")] for k in init if k.endswith(".lora_A.weight"))
    got = lora_modules(pm)
    if got != want:
        raise Failed(f"PEFT put LoRA on {got}, the plan on {want}")
    print(f"PEFT put LoRA on the plan's {len(got)} modules")
    with open(w("galaxy_eval.json")) as f:
        galaxy_logits = np.array(json.load(f)["logits"])
    results["galaxy->peft logits"] = close(
        "Galaxy adapter in PEFT: eval logits vs Galaxy's", logits_of(pm, eval_rows),
        galaxy_logits, atol=LOGITS_ATOL)
    # Negative control: without the adapter the logits differ by far more.
    gap = np.abs(base_logits - galaxy_logits).max()
    print(f"control: base model without the adapter differs by {gap:.3g}")
    if not gap > 100 * LOGITS_ATOL:
        raise Failed("the adapter changed the logits too little to tell anything")

    # --- PEFT -> Galaxy ---------------------------------------------------------------
    cfg, plan = plan_for("rev", ["query", "value", "attention_output", "output"])
    torch.manual_seed(7)
    model = base_model(cfg, init)
    lcfg = peft.LoraConfig(task_type="SEQ_CLS", r=cfg["lora_dim"],
                           lora_alpha=cfg["lora_alpha"], lora_dropout=0.0,
                           target_modules=["query", "value", "output.dense"],
                           init_lora_weights=False)  # random, non-zero B
    pm = peft.get_peft_model(model, lcfg)
    with torch.no_grad():  # a task head of its own, unlike the base's
        for p in pm.base_model.model.classifier.modules_to_save["default"].parameters():
            p.normal_(0, 0.5)
    pm.save_pretrained(w("peft_adapter"))
    B = cfg["batch_size"]
    ids, mask, types, labels = bert_data.make_batch(train_rows, range(B))
    pm.eval()
    with torch.no_grad():
        peft_loss = pm(input_ids=ids, attention_mask=mask, token_type_ids=types,
                       labels=labels).loss.item()
    peft_logits = logits_of(pm, eval_rows)
    # The base checkpoint as a user has it: no LoRA factors, no trained head.
    safetensors_io.save(w("base.safetensors"),
                        {k: v for k, v in init.items()
                         if ".lora_" not in k and not k.startswith("classifier.")})
    run([galaxy_run, plan, "--init", w("base.safetensors"), "--init-adapter",
         w("peft_adapter"), "--data", w("train.jsonl"), "--steps", "1", "--metrics",
         w("rev_metrics.jsonl")])
    with open(w("rev_metrics.jsonl")) as f:
        galaxy_loss = json.loads(f.readline())["loss"]
    results["peft->galaxy loss"] = close("PEFT adapter in Galaxy: step-1 loss vs PEFT's",
                                         [galaxy_loss], [peft_loss], rtol=LOSS_RTOL)
    run([galaxy_run, plan, "--init", w("base.safetensors"), "--init-adapter",
         w("peft_adapter"), "--eval", w("eval.jsonl"), "--eval-out", w("rev_eval.json")])
    with open(w("rev_eval.json")) as f:
        rev_logits = np.array(json.load(f)["logits"])
    results["peft->galaxy logits"] = close("PEFT adapter in Galaxy: eval logits vs PEFT's",
                                           rev_logits, peft_logits, atol=LOGITS_ATOL)
    # A plan whose LoRA sits elsewhere refuses the folder, naming what differs.
    out = run([galaxy_run, w("fwd.plan"), "--init", w("base.safetensors"),
               "--init-adapter", w("peft_adapter"), "--eval", w("eval.jsonl")], expect_rc=2)
    if "target_modules" not in out:
        raise Failed(f"the refusal does not name target_modules:\n{out}")
    print("refused as it should:", out.strip().splitlines()[-1][:200])
    print("PASS", json.dumps({k: float(v) for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
