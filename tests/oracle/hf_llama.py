"""The LLaMA half of hf_conformance.py: transformers' LlamaForCausalLM /
LlamaForSequenceClassification must compute what the oracle (llama_torch.py) computes,
and what Galaxy computes, on the same weights and data.

Per case: gradients at the initial weights on the first batch (the oracle's model code
imported here, HF's autograd), then training through the oracle's own CLI (a subprocess
under Debian's /usr/bin/python3) against an HF training loop: losses, final weights
(values and updates), eval logits before and after. A LoRA case needs the `peft`
package; without it that case is skipped with a note.
"""

import json
import os

import torch

import compare
import llama_config
import llama_data
import llama_model
import llama_tiny_case
import safetensors_io

# The same float32 maths in two model codes: agreement to float32 noise expected.
HF_ORACLE_LOSS_RTOL = 1e-5
HF_ORACLE_LOGITS_ATOL = 1e-5
HF_ORACLE_WEIGHTS_ATOL = 1e-5
# Per tensor: max|gHF - gOracle| <= GRAD_ATOL + GRAD_RTOL * max|gOracle|.
HF_ORACLE_GRAD_RTOL, HF_ORACLE_GRAD_ATOL = 1e-4, 1e-9
# Galaxy's own tolerances (run_oracle.sh).
GALAXY_LOSS_RTOL, GALAXY_WEIGHTS_ATOL, GALAXY_LOGITS_ATOL = 1e-4, 1e-3, 1e-4


def hf_model(cfg):
    import transformers

    config = transformers.LlamaConfig(
        vocab_size=cfg["vocab_size"],
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        num_key_value_heads=cfg["num_key_value_heads"],
        head_dim=cfg["head_dim"],
        hidden_act="silu",
        max_position_embeddings=cfg["max_position_embeddings"],
        initializer_range=cfg["initializer_range"],
        rms_norm_eps=cfg["rms_norm_eps"],
        rope_theta=cfg["rope_theta"],
        attention_bias=False,
        mlp_bias=False,
        attention_dropout=0.0,
        tie_word_embeddings=cfg["tie_word_embeddings"],
        pad_token_id=cfg["pad_token_id"],
        num_labels=cfg["num_classes"],
    )
    # The eager path is the textbook attention; SDPA would be a third implementation.
    config._attn_implementation = "eager"
    if cfg["task"] == "classification":
        model = transformers.LlamaForSequenceClassification(config)
    else:
        model = transformers.LlamaForCausalLM(config)
    if cfg["peft"] == "lora":
        import peft

        lora = peft.LoraConfig(
            r=cfg["lora_dim"],
            lora_alpha=cfg["lora_alpha"],
            lora_dropout=0.0,
            target_modules=list(cfg["lora_target_modules"]),
            bias="none",
            task_type="SEQ_CLS" if cfg["task"] == "classification" else "CAUSAL_LM",
        )
        model = peft.get_peft_model(model, lora)
    return model


# PEFT wraps names: base_model.model.<HF name>, a wrapped linear's base_layer.weight,
# lora_A.default.weight, and for SEQ_CLS the trained head copy under
# score.modules_to_save.default (score.original_module is the frozen original).
def _to_flat(name):
    name = name.removeprefix("base_model.model.").replace(".base_layer.", ".")
    name = name.replace(".lora_A.default.", ".lora_A.").replace(".lora_B.default.", ".lora_B.")
    return name.replace("score.modules_to_save.default.", "score.")


def flat_params(model):
    """{flat HF/PEFT name: parameter} of the trained model (score.original_module left
    out: it is PEFT's frozen copy)."""
    return {
        _to_flat(n): p for n, p in model.named_parameters() if ".original_module." not in n
    }


def load_into(model, cfg, path):
    tensors = safetensors_io.load(path)
    params = flat_params(model)
    missing = [n for n in params if n not in tensors]
    extra = [n for n in tensors if n not in params]
    if missing or extra:
        raise ValueError(
            f"{path} does not fit the HF model: missing {missing[:5]}, unexpected {extra[:5]}"
        )
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(torch.from_numpy(tensors[n]))
        if cfg["peft"] == "lora" and cfg["task"] == "classification":
            orig = dict(model.named_parameters())
            key = "base_model.model.score.original_module.weight"
            orig[key].copy_(torch.from_numpy(tensors["score.weight"]))
    trainable = {n for n, p in params.items() if p.requires_grad}
    want = {n for n in params if llama_model.is_trainable(cfg, n)}
    if trainable != want:
        raise ValueError(
            f"HF trains {sorted(trainable ^ want)[:5]} differently from the oracle"
        )


def hf_forward(model, cfg, ids, mask, labels):
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    return out.logits, out.loss


def hf_eval(model, cfg, rows, out_path):
    model.eval()
    with torch.no_grad():
        ids, mask, labels = llama_data.make_batch(rows, range(len(rows)))
        logits, loss = hf_forward(model, cfg, ids, mask, labels)
        if cfg["task"] == "classification":
            acc = (logits.argmax(-1) == labels).float().mean().item()
        else:
            target = labels[:, 1:]
            counted = target != llama_data.IGNORE_INDEX
            acc = (((logits[:, :-1].argmax(-1) == target) & counted).sum() / counted.sum()).item()
    with open(out_path, "w") as f:
        json.dump({"loss": loss.item(), "accuracy": acc, "logits": logits.tolist()}, f)


def hf_train(model, cfg, rows, steps, metrics_path, save_path):
    model.train()  # dropout rates are 0: train mode computes the same numbers
    params = [p for p in flat_params(model).values() if p.requires_grad]
    if cfg["optimizer"] == "sgd":
        opt = torch.optim.SGD(params, lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"])
    else:
        opt = torch.optim.AdamW(
            params,
            lr=cfg["learning_rate"],
            betas=(cfg["adam_beta1"], cfg["adam_beta2"]),
            eps=cfg["adam_epsilon"],
            weight_decay=cfg["weight_decay"],
        )
    B = cfg["batch_size"]
    with open(metrics_path, "w") as f:
        for s in range(steps):
            ids, mask, labels = llama_data.make_batch(
                rows, llama_data.step_indices(s, B, len(rows))
            )
            _, loss = hf_forward(model, cfg, ids, mask, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
            f.write(json.dumps({"step": s + 1, "loss": loss.item()}) + "\n")
    safetensors_io.save(
        save_path, {n: p.detach() for n, p in flat_params(model).items()}, {"format": "pt"}
    )


def compare_gradients(model, cfg, init_path, rows):
    """Loss and every trainable gradient on the first batch, HF vs the oracle."""
    ids, mask, labels = llama_data.make_batch(
        rows, llama_data.step_indices(0, cfg["batch_size"], len(rows))
    )
    model.train()
    model.zero_grad()
    _, hf_loss = hf_forward(model, cfg, ids, mask, labels)
    hf_loss.backward()
    hf_grads = {n: p.grad for n, p in flat_params(model).items() if p.requires_grad}

    p = llama_model.check_params(cfg, safetensors_io.load_torch(init_path), init_path)
    trainable = {n: t.requires_grad_(True) for n, t in p.items()
                 if llama_model.is_trainable(cfg, n)}
    loss = llama_model.loss_fn(cfg, llama_model.forward(cfg, p, ids, mask), labels)
    loss.backward()

    rel = abs(hf_loss.item() - loss.item()) / abs(loss.item())
    print(f"first-batch loss: HF {hf_loss.item():.8f} oracle {loss.item():.8f} "
          f"(rel diff {rel:.3e})")
    rows_out, bad = [], []
    if set(hf_grads) != set(trainable):
        print(f"MISMATCH: trainable sets differ: {sorted(set(hf_grads) ^ set(trainable))[:5]}")
        return 1
    for n, t in trainable.items():
        if hf_grads[n] is None:
            bad.append(n)
            continue
        err = float((hf_grads[n] - t.grad).abs().max())
        mag = float(t.grad.abs().max())
        rows_out.append((err / (HF_ORACLE_GRAD_ATOL + HF_ORACLE_GRAD_RTOL * mag), err, mag, n))
    rows_out.sort(reverse=True)
    print(f"{len(rows_out)} gradients; worst max|gHF-gOracle| relative to "
          f"{HF_ORACLE_GRAD_ATOL} + {HF_ORACLE_GRAD_RTOL}*max|g|:")
    for ratio, err, mag, n in rows_out[:4]:
        print(f"  {ratio:8.4f}  {err:10.3e} (max|g| {mag:9.3e})  {n}")
    bad += [r[3] for r in rows_out if not r[0] <= 1.0]
    if bad or not rel <= HF_ORACLE_LOSS_RTOL:
        print(f"MISMATCH: loss rel diff {rel:.3e}; gradients off: {bad[:5]}")
        return 1
    return 0


def run_case(case, work, oracle, check, failures, steps, galaxy=None):
    """One tiny case (llama_tiny_case.CASES) or, with galaxy = {config, init, data, eval,
    metrics, weights, eval_out} (paths, some None), an existing run's inputs/outputs."""
    w = lambda name: os.path.join(work, f"{case}.{name}")  # noqa: E731
    g = galaxy or {}
    cfg_path = g.get("config")
    if not cfg_path:
        cfg_path = w("config.json")
        llama_tiny_case.main(["config", case, cfg_path])
    cfg = llama_config.load_config(cfg_path)
    llama_config.check_no_dropout(cfg, cfg_path)
    if cfg["peft"] == "lora":
        try:
            import peft  # noqa: F401
        except ImportError:
            print(f"== {case}: skipped (LoRA needs the peft package)\n")
            return
    task = cfg["task"]
    data, evald, init = g.get("data"), g.get("eval"), g.get("init")
    if not data:
        data = w("train.jsonl")
        llama_tiny_case.main(["data", data, "--task", task, "--rows", "24", "--seed", "1"])
    if not evald:
        evald = w("eval.jsonl")
        llama_tiny_case.main(["data", evald, "--task", task, "--rows", "8", "--seed", "2"])
    if not init:
        init = w("init.safetensors")
        oracle(["init", cfg_path, "--seed", "1234", "--out", init])
    train_rows, eval_rows = llama_data.load_rows(data, cfg), llama_data.load_rows(evald, cfg)
    print(f"=== LLaMA case {case}: {task}, {cfg['optimizer']}, peft {cfg['peft']}, "
          f"tied {cfg['tie_word_embeddings']}, {steps} steps")

    oracle(["eval", cfg_path, "--init", init, "--eval", evald, "--eval-out", w("oracle_eval0.json")])
    oracle(["train", cfg_path, "--init", init, "--data", data, "--steps", str(steps),
            "--metrics", w("oracle_metrics.jsonl"), "--save", w("oracle.safetensors"),
            "--eval", evald, "--eval-out", w("oracle_eval.json")])

    torch.manual_seed(0)  # HF's constructor draws an init we overwrite; keep it quiet
    model = hf_model(cfg)
    load_into(model, cfg, init)
    check(f"{case}: HF vs oracle: first-batch loss and gradients",
          compare_gradients(model, cfg, init, train_rows), failures)
    load_into(model, cfg, init)
    hf_eval(model, cfg, eval_rows, w("hf_eval0.json"))
    hf_train(model, cfg, train_rows, steps, w("hf_metrics.jsonl"), w("hf.safetensors"))
    hf_eval(model, cfg, eval_rows, w("hf_eval.json"))

    check(f"{case}: HF vs oracle: logits at init", compare.compare_logits(
        w("hf_eval0.json"), w("oracle_eval0.json"), HF_ORACLE_LOGITS_ATOL), failures)
    if steps:
        check(f"{case}: HF vs oracle: losses", compare.compare_losses(
            w("hf_metrics.jsonl"), w("oracle_metrics.jsonl"), HF_ORACLE_LOSS_RTOL, 0.0),
            failures)
        check(f"{case}: HF vs oracle: weights", compare.compare_weights(
            w("hf.safetensors"), w("oracle.safetensors"), HF_ORACLE_WEIGHTS_ATOL, None,
            init), failures)
    check(f"{case}: HF vs oracle: logits after training", compare.compare_logits(
        w("hf_eval.json"), w("oracle_eval.json"), HF_ORACLE_LOGITS_ATOL), failures)

    if g.get("metrics") and steps:
        check(f"{case}: HF vs Galaxy: losses", compare.compare_losses(
            w("hf_metrics.jsonl"), g["metrics"], GALAXY_LOSS_RTOL, 0.0), failures)
    if g.get("weights"):
        check(f"{case}: HF vs Galaxy: weights", compare.compare_weights(
            w("hf.safetensors"), g["weights"], GALAXY_WEIGHTS_ATOL, None, init), failures)
    if g.get("eval_out"):
        check(f"{case}: HF vs Galaxy: eval logits", compare.compare_logits(
            w("hf_eval.json"), g["eval_out"], GALAXY_LOGITS_ATOL), failures)
