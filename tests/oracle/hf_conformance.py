"""Conformance against Hugging Face: transformers' BertForSequenceClassification,
LlamaForCausalLM and LlamaForSequenceClassification must compute what the oracles
(bert_torch.py, llama_torch.py) compute, and what Galaxy computes, on the same weights.

Run it through scripts/hf_conformance.sh (it provides a venv with transformers over
Debian's torch). The oracles run as subprocesses under Debian's /usr/bin/python3
(python3-torch); the LLaMA half also compares first-batch gradients in process.

  hf_conformance.py [--model bert|llama|all] [--llama-cases sgd,adamw,cls,lora,lora_cls]
      [--workdir DIR] [--steps 3]
      # generates the tiny cases (tiny_case.py, llama_tiny_case.py) and checks HF == oracle
  hf_conformance.py --from DIR
      # DIR is an ORACLE_WORKDIR of run_oracle.sh (the config's
      # model_type says which): reuses its config/init/data and, where present, checks
      # HF == Galaxy too (galaxy_metrics.jsonl, galaxy.safetensors, ...)
  hf_conformance.py --config C --init W --data D --eval E [--galaxy-metrics GM.jsonl]
      [--galaxy-weights G.safetensors] [--galaxy-eval GL.json]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import bert_config  # noqa: E402
import bert_data  # noqa: E402
import compare  # noqa: E402
import hf_llama  # noqa: E402
import safetensors_io  # noqa: E402
import llama_tiny_case  # noqa: E402
import tiny_case  # noqa: E402

LLAMA_CASES = llama_tiny_case.CASES

# Two torch builds, two model codes, both float32: agreement to float32 noise expected.
HF_ORACLE_LOGITS_ATOL = 1e-5
HF_ORACLE_LOSS_RTOL = 1e-5
HF_ORACLE_WEIGHTS_ATOL = 1e-5
# Galaxy's own tolerances (run_oracle.sh).
GALAXY_LOSS_RTOL, GALAXY_WEIGHTS_ATOL, GALAXY_LOGITS_ATOL = 1e-4, 1e-3, 1e-4


def hf_model(cfg):
    import transformers

    kwargs = dict(
        vocab_size=cfg["vocab_size"],
        hidden_size=cfg["hidden_size"],
        num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"],
        intermediate_size=cfg["intermediate_size"],
        hidden_act=cfg["hidden_act"],
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        classifier_dropout=0.0,
        max_position_embeddings=cfg["max_position_embeddings"],
        type_vocab_size=cfg["type_vocab_size"],
        initializer_range=cfg["initializer_range"],
        layer_norm_eps=cfg["layer_norm_eps"],
        pad_token_id=cfg["pad_token_id"],
        num_labels=cfg["num_classes"],
    )
    config = transformers.BertConfig(**kwargs)
    # The eager path is the textbook attention; SDPA would be a third implementation.
    config._attn_implementation = "eager"
    model = transformers.BertForSequenceClassification(config)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    return model


def load_into(model, path):
    state = {k: torch.from_numpy(v) for k, v in safetensors_io.load(path).items()}
    result = model.load_state_dict(state, strict=False)
    buffers = {n for n, _ in model.named_buffers()}
    missing = [k for k in result.missing_keys if k not in buffers]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{path} does not fit BertForSequenceClassification: missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}"
        )


def hf_eval(model, rows, out_path):
    model.eval()
    with torch.no_grad():
        ids, mask, types, labels = bert_data.make_batch(rows, range(len(rows)))
        logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
        result = {
            "loss": F.cross_entropy(logits, labels).item(),
            "accuracy": (logits.argmax(-1) == labels).float().mean().item(),
            "logits": logits.tolist(),
        }
    with open(out_path, "w") as f:
        json.dump(result, f)


def hf_train(model, cfg, rows, steps, metrics_path, save_path):
    model.train()  # dropout rates are 0: train mode computes the same numbers
    params = list(model.parameters())
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
            ids, mask, types, labels = bert_data.make_batch(
                rows, bert_data.step_indices(s, B, len(rows))
            )
            out = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
            opt.zero_grad()
            out.loss.backward()
            opt.step()
            f.write(json.dumps({"step": s + 1, "loss": out.loss.item()}) + "\n")
    safetensors_io.save(
        save_path, {n: p.detach() for n, p in model.named_parameters()}, {"format": "pt"}
    )


def run_oracle(py, args, script="bert_torch.py"):
    cmd = [py, os.path.join(HERE, script), *args]
    print("+ " + " ".join(cmd))
    subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))


def check(label, rc, failures):
    print(f"== {label}: {'OK' if rc == 0 else 'MISMATCH'}\n")
    if rc:
        failures.append(label)


def _count_steps(path):
    with open(path) as f:
        return sum(1 for line in f if line.strip())


def run_bert(args, work, failures):
    """The BERT case: the tiny case, or the run args names; appends failed checks."""
    w = lambda name: os.path.join(work, name)  # noqa: E731
    if not args.config:
        tiny_case.main(["config", "sgd", w("config.json")])
        args.config = w("config.json")
    if not args.data:
        tiny_case.main(["data", w("train.jsonl"), "--rows", "24", "--seed", "1"])
        args.data = w("train.jsonl")
    if not args.eval:
        tiny_case.main(["data", w("eval.jsonl"), "--rows", "8", "--seed", "2"])
        args.eval = w("eval.jsonl")
    if not args.init:
        run_oracle(args.oracle_python, ["init", args.config, "--seed", "1234",
                                        "--out", w("init.safetensors")])
        args.init = w("init.safetensors")
    steps = args.steps
    if steps is None:
        steps = _count_steps(args.galaxy_metrics) if args.galaxy_metrics else 3

    cfg = bert_config.load_config(args.config)
    bert_config.check_no_dropout(cfg, args.config)
    torch.manual_seed(0)  # HF's constructor draws an init we overwrite; keep it quiet
    torch.set_num_threads(2)
    train_rows = bert_data.load_rows(args.data, cfg)
    eval_rows = bert_data.load_rows(args.eval, cfg)
    print(f"work dir {work}; {steps} {cfg['optimizer']} steps")

    # Oracle: logits at the initial weights, then training.
    run_oracle(args.oracle_python, ["eval", args.config, "--init", args.init,
                                    "--eval", args.eval, "--eval-out", w("oracle_eval0.json")])
    run_oracle(args.oracle_python, [
        "train", args.config, "--init", args.init, "--data", args.data,
        "--steps", str(steps), "--metrics", w("oracle_metrics.jsonl"),
        "--save", w("oracle.safetensors"), "--eval", args.eval,
        "--eval-out", w("oracle_eval.json")])

    # Hugging Face, same inputs.
    model = hf_model(cfg)
    load_into(model, args.init)
    hf_eval(model, eval_rows, w("hf_eval0.json"))
    hf_train(model, cfg, train_rows, steps, w("hf_metrics.jsonl"), w("hf.safetensors"))
    hf_eval(model, eval_rows, w("hf_eval.json"))

    check("HF vs oracle: logits at init", compare.compare_logits(
        w("hf_eval0.json"), w("oracle_eval0.json"), HF_ORACLE_LOGITS_ATOL), failures)
    if steps:
        check("HF vs oracle: losses", compare.compare_losses(
            w("hf_metrics.jsonl"), w("oracle_metrics.jsonl"), HF_ORACLE_LOSS_RTOL, 0.0),
            failures)
        check("HF vs oracle: weights", compare.compare_weights(
            w("hf.safetensors"), w("oracle.safetensors"), HF_ORACLE_WEIGHTS_ATOL, None,
            args.init), failures)
    check("HF vs oracle: logits after training", compare.compare_logits(
        w("hf_eval.json"), w("oracle_eval.json"), HF_ORACLE_LOGITS_ATOL), failures)

    if args.galaxy_metrics and steps:
        check("HF vs Galaxy: losses", compare.compare_losses(
            w("hf_metrics.jsonl"), args.galaxy_metrics, GALAXY_LOSS_RTOL, 0.0), failures)
    if args.galaxy_weights:
        check("HF vs Galaxy: weights", compare.compare_weights(
            w("hf.safetensors"), args.galaxy_weights, GALAXY_WEIGHTS_ATOL, None,
            args.init), failures)
    if args.galaxy_eval:
        check("HF vs Galaxy: eval logits", compare.compare_logits(
            w("hf_eval.json"), args.galaxy_eval, GALAXY_LOGITS_ATOL), failures)



def _model_type(config_path):
    with open(config_path) as f:
        return json.load(f).get("model_type", "bert")


def run_llama(args, work, failures):
    """The LLaMA tiny cases, or the one run args names (config, init, data, Galaxy's
    outputs); appends failed checks."""
    oracle = lambda a: run_oracle(args.oracle_python, a, "llama_torch.py")  # noqa: E731
    if args.config:
        galaxy = {
            "config": args.config, "init": args.init, "data": args.data, "eval": args.eval,
            "metrics": args.galaxy_metrics, "weights": args.galaxy_weights,
            "eval_out": args.galaxy_eval,
        }
        steps = args.steps
        if steps is None:
            steps = _count_steps(args.galaxy_metrics) if args.galaxy_metrics else 3
        hf_llama.run_case("run", work, oracle, check, failures, steps, galaxy)
        return
    for case in args.llama_cases.split(","):
        if case not in LLAMA_CASES:
            raise ValueError(f"--llama-cases: {case!r} is not one of {list(LLAMA_CASES)}")
        steps = 3 if args.steps is None else args.steps
        hf_llama.run_case(case, work, oracle, check, failures, steps)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("bert", "llama", "all"),
                    help="default: all, or the --from/--config run's model_type")
    ap.add_argument("--llama-cases", default=",".join(LLAMA_CASES),
                    help="comma-separated llama_tiny_case.py cases")
    ap.add_argument("--from", dest="from_dir",
                    help="an ORACLE_WORKDIR of run_oracle.sh")
    ap.add_argument("--config")
    ap.add_argument("--init")
    ap.add_argument("--data")
    ap.add_argument("--eval")
    ap.add_argument("--steps", type=int, help="default 3, or as many as --galaxy-metrics has")
    ap.add_argument("--galaxy-metrics", help="Galaxy's metrics JSONL for the same run")
    ap.add_argument("--galaxy-weights", help="Galaxy's saved weights for the same run")
    ap.add_argument("--galaxy-eval", help="Galaxy's --eval-out JSON for the same run")
    ap.add_argument("--workdir", help="keep files here (default: a temp dir)")
    ap.add_argument("--oracle-python", default="/usr/bin/python3")
    args = ap.parse_args(argv)

    work = args.workdir or tempfile.mkdtemp(prefix="galaxy-hf.")
    os.makedirs(work, exist_ok=True)

    if args.from_dir:
        d = lambda name: os.path.join(args.from_dir, name)  # noqa: E731
        args.config = args.config or d("config.json")
        args.init = args.init or d("init.safetensors")
        args.data = args.data or d("train.jsonl")
        args.eval = args.eval or d("eval.jsonl")
        for attr, name in (
            ("galaxy_metrics", "galaxy_metrics.jsonl"),
            ("galaxy_weights", "galaxy.safetensors"),
            ("galaxy_eval", "galaxy_eval.json"),
        ):
            if not getattr(args, attr) and os.path.exists(d(name)):
                setattr(args, attr, d(name))
    model = args.model
    if args.config:
        given = _model_type(args.config)
        if model not in (None, given):
            ap.error(f"--model {model} but {args.config} is a {given} config")
        model = given
    model = model or "all"
    if model not in ("bert", "llama", "all"):
        ap.error(f"model_type {model!r} has no Hugging Face check here")

    torch.manual_seed(0)  # HF's constructor draws an init we overwrite; keep it quiet
    torch.set_num_threads(2)
    failures = []
    if model in ("bert", "all"):
        run_bert(argparse.Namespace(**vars(args)), work, failures)  # it fills in paths
    if model in ("llama", "all"):
        run_llama(args, work, failures)

    if failures:
        print("hf_conformance: FAILED: " + "; ".join(failures) + f" (files in {work})")
        return 1
    print("hf_conformance: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
