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

LLaMA (--model llama; tests/equiv/llama_case.py: GQA 8 query / 4 KV heads, padded rows,
rows with their own -100 labels), LoRA on q/k/v/o_proj and gate/up/down_proj, for both
tasks against transformers' LlamaForCausalLM / LlamaForSequenceClassification (eager
attention, pad_token_id 0):
- CAUSAL_LM: Galaxy -> PEFT: the loss of PeftModel.from_pretrained(base, Galaxy's folder)
  on the first batch equals galaxy-run's step-1 loss (--metrics: the loss before the
  first update) from the trained --save (1e-4; causal LMs have no --eval yet). PEFT ->
  Galaxy: step-1 loss from --init BASE --init-adapter PEFT's folder equals PEFT's, and
  after one SGD step Galaxy's LoRA factors equal PEFT's (1e-3).
- SEQ_CLS (score as modules_to_save): Galaxy -> PEFT eval logits (1e-4); PEFT -> Galaxy
  step-1 loss and eval logits, base without a score.
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
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bert_config  # noqa: E402
import bert_data  # noqa: E402
import hf_conformance  # noqa: E402
import llama_case  # noqa: E402
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
    ap.add_argument("--model", default="all", choices=["all", "bert", "llama"])
    args = ap.parse_args(argv)
    if not args.workdir:
        with tempfile.TemporaryDirectory(prefix="galaxy-peft-rt.") as tmp:
            return check(args, tmp)
    os.makedirs(args.workdir, exist_ok=True)
    return check(args, args.workdir)


def check(args, work):
    import peft
    import transformers
    print(f"peft {peft.__version__}, transformers {transformers.__version__}, "
          f"torch {torch.__version__}; work dir {work}")
    torch.set_num_threads(2)
    results = {}
    if args.model in ("all", "bert"):
        results.update(check_bert(args, work))
    if args.model in ("all", "llama"):
        for task in ("causal_lm", "classification"):
            sub = os.path.join(work, "llama_" + task)
            os.makedirs(sub, exist_ok=True)
            results.update(check_llama(args, sub, task))
    print("PASS", json.dumps({k: float(v) for k, v in results.items()}))
    return 0


def check_bert(args, work):
    galaxyc = os.path.join(args.build, "tools", "galaxyc")
    galaxy_run = os.path.join(args.build, "tools", "galaxy-run")
    w = lambda name: os.path.join(work, name)  # noqa: E731

    import peft

    torch.manual_seed(0)
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
    return {"bert " + k: v for k, v in results.items()}

# --- LLaMA -----------------------------------------------------------------------------

LLAMA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LLAMA_WEIGHTS_ATOL = 1e-3


def llama_config(task):
    cfg = llama_case.config("sgd", task)
    cfg.update({"full_model": False, "use_lora": True, "lora_dim": 4, "lora_alpha": 8,
                "lora_dropout": 0.0, "lora_target_modules": LLAMA_TARGETS})
    return cfg


def llama_hf(cfg, task):
    """transformers' LLaMA for the config, weights scaled up from the 0.02 default so
    that the adapters move losses and logits well past the tolerances."""
    import transformers

    hf_cfg = transformers.LlamaConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_key_value_heads"],
        max_position_embeddings=cfg["max_position_embeddings"],
        rms_norm_eps=cfg["rms_norm_eps"], rope_theta=cfg["rope_theta"],
        pad_token_id=cfg["pad_token_id"], tie_word_embeddings=False,
        num_labels=cfg["num_classes"], initializer_range=0.3,
        attn_implementation="eager")  # Debian's torch 1.13 has no SDPA
    cls = (transformers.LlamaForSequenceClassification if task == "classification"
           else transformers.LlamaForCausalLM)
    return cls(hf_cfg)


def llama_batch(cfg, rows, task):
    """Galaxy's rows as tensors (runtime/io/dataset.cpp): right-padded with pad_token_id
    to pad_size; causal-LM labels are a row's "labels" or its ids, -100 under padding
    (transformers shifts them itself)."""
    S, pad = cfg["pad_size"], cfg["pad_token_id"]
    ids = torch.full((len(rows), S), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), S), dtype=torch.long)
    labels = torch.full((len(rows), S), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        n = min(len(row["input_ids"]), S)
        ids[i, :n] = torch.tensor(row["input_ids"][:n])
        mask[i, :n] = torch.tensor(row.get("attention_mask", [1] * n)[:n])
        labels[i, :n] = torch.tensor(row.get("labels", row["input_ids"])[:n])
    labels[mask == 0] = -100
    if task == "classification":
        labels = torch.tensor([row["label"] for row in rows])
    return ids, mask, labels


def llama_loss(model, batch):
    ids, mask, labels = batch
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def llama_logits(model, batch):
    model.eval()
    with torch.no_grad():
        return model(input_ids=batch[0], attention_mask=batch[1]).logits.numpy()


def check_llama(args, work, task):
    import peft

    galaxyc = os.path.join(args.build, "tools", "galaxyc")
    galaxy_run = os.path.join(args.build, "tools", "galaxy-run")
    w = lambda name: os.path.join(work, name)  # noqa: E731
    tag = "llama " + ("CAUSAL_LM" if task == "causal_lm" else "SEQ_CLS")
    print(f"=== {tag}")
    cfg = llama_config(task)
    with open(w("lora.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    run([galaxyc, w("lora.json"), "-o", w("lora.plan"), "--emit", "none"])
    rows = {}
    for name, n, seed in (("train", 24, 1), ("eval", 8, 2)):
        rows[name] = llama_case.rows(n, seed, task)
        with open(w(name + ".jsonl"), "w") as f:
            for row in rows[name]:
                f.write(json.dumps(row) + "\n")
    first = llama_batch(cfg, rows["train"][: cfg["batch_size"]], task)
    evalb = llama_batch(cfg, rows["eval"], task)
    classify = task == "classification"
    results = {}

    def step1_loss(*init):
        run([galaxy_run, w("lora.plan"), *init, "--data", w("train.jsonl"), "--steps", "1",
             "--metrics", w("step1.jsonl"), "--save", w("step1.safetensors")])
        with open(w("step1.jsonl")) as f:
            return json.loads(f.readline())["loss"]

    # The base checkpoint as a user has it (a classifier's score is the adapter's).
    torch.manual_seed(11)
    base = {k: v.detach().numpy().copy() for k, v in llama_hf(cfg, task).state_dict().items()
            if not (classify and k.startswith("score."))}
    safetensors_io.save(w("base.safetensors"), base)

    def hf_base():
        model = llama_hf(cfg, task)
        result = model.load_state_dict({k: torch.from_numpy(v) for k, v in base.items()},
                                       strict=False)
        expected = ["score.weight"] if classify else []
        if result.missing_keys != expected or result.unexpected_keys:
            raise Failed(f"base weights do not fit transformers' LLaMA: missing "
                         f"{result.missing_keys}, unexpected {result.unexpected_keys}")
        return model

    # --- Galaxy -> PEFT: random non-zero LoRA factors (and head), 3 steps.
    rng = np.random.default_rng(5)
    init = dict(base)
    plan_shapes = {k: v.shape for k, v in safetensors_io.load(
        w("base.safetensors")).items()}
    for m in (f"model.layers.{i}.{blk}.{t}" for i in range(cfg["num_hidden_layers"])
              for t in LLAMA_TARGETS
              for blk in (("self_attn",) if t[0] in "qkvo" else ("mlp",))):
        out_dim, in_dim = plan_shapes[m + ".weight"]
        init[m + ".lora_A.weight"] = rng.normal(0, 0.3, (4, in_dim)).astype(np.float32)
        init[m + ".lora_B.weight"] = rng.normal(0, 0.3, (out_dim, 4)).astype(np.float32)
    if classify:
        init["score.weight"] = rng.normal(0, 0.5, (cfg["num_classes"],
                                                  cfg["hidden_size"])).astype(np.float32)
    safetensors_io.save(w("init.safetensors"), init)
    ev = ["--eval", w("eval.jsonl"), "--eval-out", w("galaxy_eval.json")] if classify else []
    run([galaxy_run, w("lora.plan"), "--init", w("init.safetensors"), "--data",
         w("train.jsonl"), "--steps", "3", "--save", w("trained.safetensors"),
         "--save-adapter", w("galaxy_adapter"), *ev])
    with open(w("galaxy_adapter/adapter_config.json")) as f:
        written = json.load(f)
    print("written: task_type", written["task_type"], "target_modules",
          written["target_modules"], "modules_to_save", written["modules_to_save"])
    model = hf_base()
    model.eval()
    with torch.no_grad():
        base_loss = llama_loss(model, first).item()
        base_logits = llama_logits(model, evalb) if classify else None
    pm = peft.PeftModel.from_pretrained(model, w("galaxy_adapter"))
    pm.eval()
    want = sorted(k[: -len(".lora_A.weight")] for k in init if k.endswith(".lora_A.weight"))
    got = lora_modules(pm)
    if got != want:
        raise Failed(f"PEFT put LoRA on {got}, the plan on {want}")
    print(f"PEFT put LoRA on the plan's {len(got)} modules")
    with torch.no_grad():
        peft_loss = llama_loss(pm, first).item()
    galaxy_loss = step1_loss("--init", w("trained.safetensors"))
    results[tag + " galaxy->peft loss"] = close(
        f"{tag}: Galaxy adapter in PEFT, loss on the first batch vs Galaxy's step-1 loss",
        [peft_loss], [galaxy_loss], rtol=LOSS_RTOL)
    gap = abs(base_loss - galaxy_loss)
    print(f"control: base model without the adapter: loss differs by {gap:.3g}")
    if not gap > 100 * LOSS_RTOL * abs(galaxy_loss):
        raise Failed("the adapter changed the loss too little to tell anything")
    if classify:
        with open(w("galaxy_eval.json")) as f:
            galaxy_logits = np.array(json.load(f)["logits"])
        results[tag + " galaxy->peft logits"] = close(
            f"{tag}: Galaxy adapter in PEFT, eval logits vs Galaxy's",
            llama_logits(pm, evalb), galaxy_logits, atol=LOGITS_ATOL)
        gap = np.abs(base_logits - galaxy_logits).max()
        print(f"control: base model without the adapter: logits differ by {gap:.3g}")
        if not gap > 100 * LOGITS_ATOL:
            raise Failed("the adapter changed the logits too little to tell anything")

    # --- PEFT -> Galaxy: PEFT's own random factors (and score), saved by PEFT.
    torch.manual_seed(7)
    lcfg = peft.LoraConfig(task_type="SEQ_CLS" if classify else "CAUSAL_LM",
                           r=cfg["lora_dim"], lora_alpha=cfg["lora_alpha"],
                           lora_dropout=0.0, target_modules=LLAMA_TARGETS,
                           init_lora_weights=False)  # random, non-zero B
    pm = peft.get_peft_model(hf_base(), lcfg)
    if classify:
        with torch.no_grad():  # PEFT's SEQ_CLS adds score to modules_to_save itself
            pm.base_model.model.score.modules_to_save["default"].weight.normal_(0, 0.5)
    pm.save_pretrained(w("peft_adapter"))
    with open(w("peft_adapter/adapter_config.json")) as f:
        saved = json.load(f)
    print("PEFT wrote: task_type", saved["task_type"], "target_modules",
          sorted(saved["target_modules"]), "modules_to_save", saved["modules_to_save"])
    pm.eval()
    with torch.no_grad():
        peft_loss = llama_loss(pm, first).item()
        peft_logits = llama_logits(pm, evalb) if classify else None
    galaxy_loss = step1_loss("--init", w("base.safetensors"), "--init-adapter",
                             w("peft_adapter"))
    results[tag + " peft->galaxy loss"] = close(
        f"{tag}: PEFT adapter in Galaxy, step-1 loss vs PEFT's", [galaxy_loss], [peft_loss],
        rtol=LOSS_RTOL)
    # One SGD step in PEFT on the same batch: Galaxy's updated factors (and score).
    pm.train()
    opt = torch.optim.SGD([p for p in pm.parameters() if p.requires_grad],
                          lr=cfg["learning_rate"])
    opt.zero_grad()
    llama_loss(pm, first).backward()
    opt.step()
    updated = {k.replace(".default", "").replace("modules_to_save.", ""): v.detach().numpy()
               for k, v in pm.base_model.model.named_parameters() if v.requires_grad}
    galaxy_step = safetensors_io.load(w("step1.safetensors"))
    trained = sorted(k for k in galaxy_step if ".lora_" in k or k.startswith("score."))
    if sorted(updated) != trained:
        raise Failed(f"PEFT trains {sorted(set(updated) ^ set(trained))[:4]}..., which "
                     f"Galaxy's plan does not (or the other way round)")
    flat = lambda t: np.concatenate([np.ravel(t[k]) for k in trained])  # noqa: E731
    results[tag + " peft->galaxy step-1 weights"] = close(
        f"{tag}: after one SGD step, Galaxy's {len(trained)} trained tensors vs PEFT's",
        flat(galaxy_step), flat(updated), atol=LLAMA_WEIGHTS_ATOL)
    if classify:
        run([galaxy_run, w("lora.plan"), "--init", w("base.safetensors"), "--init-adapter",
             w("peft_adapter"), "--eval", w("eval.jsonl"), "--eval-out", w("rev_eval.json")])
        with open(w("rev_eval.json")) as f:
            rev_logits = np.array(json.load(f)["logits"])
        results[tag + " peft->galaxy logits"] = close(
            f"{tag}: PEFT adapter in Galaxy, eval logits vs PEFT's", rev_logits, peft_logits,
            atol=LOGITS_ATOL)
    return results


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failed as e:
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
