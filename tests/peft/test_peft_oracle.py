#!/usr/bin/python3
"""Self-tests of the oracle's PEFT methods (no Galaxy needed): the methods' identities at
the spec's init, a float64 numpy transcription of the spec, the trainable/frozen split,
parameter counts against closed forms, config errors, compare.py frozen's verdicts and
run_peft_oracle.sh's plumbing with the oracle standing in for Galaxy."""

import json
import math
import os
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.join(HERE, "..", "oracle")
sys.path.insert(0, ORACLE)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import bert_config  # noqa: E402
import bert_data  # noqa: E402
import bert_model  # noqa: E402
import bert_torch  # noqa: E402
import compare  # noqa: E402
import peft_case  # noqa: E402
import safetensors_io  # noqa: E402
import tiny_case  # noqa: E402

torch.set_num_threads(2)


def _cfg(method, **extra):
    raw = peft_case.config(method, "sgd") if method != "full" else tiny_case.config("sgd")
    raw.update(extra)
    return bert_config.resolve(raw, f"case {method}")


def _numpy_forward(cfg, p, ids, mask, types):
    """Issue 5's PEFT semantics on top of the BERT spec, in float64 numpy."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    method, eps, n = cfg["peft"], cfg["layer_norm_eps"], cfg["num_attention_heads"]
    lora = {
        f"bert.encoder.layer.{i}.{bert_config.LORA_TARGETS[t]}"
        for i in range(cfg["num_hidden_layers"])
        for t in cfg["lora_target_modules"]
    } if method == "lora" else set()
    erf = np.vectorize(math.erf)

    def act(x, kind):
        if kind == "gelu_new":
            return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
        if kind == "relu":
            return np.maximum(x, 0.0)
        if kind == "swish":
            return x / (1.0 + np.exp(-x))
        return x * 0.5 * (1.0 + erf(x / math.sqrt(2.0)))

    def ln(x, name):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * p[name + ".weight"] + p[name + ".bias"]

    def lin(x, name):
        w = p[name + ".weight"]
        if name in lora:
            w = w.T if cfg["fan_in_fan_out"] else w
            delta = p[name + ".lora_B.weight"] @ p[name + ".lora_A.weight"]
            w = w + delta * (cfg["lora_alpha"] / cfg["lora_dim"])
        return x @ w.T + p[name + ".bias"]

    def adapter(h, pre):
        if method != "adapter":
            return h
        return h + lin(act(lin(h, pre + "adapter.down"), cfg["non_linearity"]), pre + "adapter.up")

    def layer(pre, x):
        B, S, H = x.shape
        d = H // n
        q, k, v = (
            lin(x, pre + f"attention.self.{m}").reshape(B, S, n, d).transpose(0, 2, 1, 3)
            for m in ("query", "key", "value")
        )
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + add
        e = np.exp(s - s.max(-1, keepdims=True))
        ctx = ((e / e.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(B, S, H)
        att = adapter(lin(ctx, pre + "attention.output.dense"), pre + "attention.output.")
        h1 = ln(att + x, pre + "attention.output.LayerNorm")
        mid = act(lin(h1, pre + "intermediate.dense"), cfg["hidden_act"])
        return ln(adapter(lin(mid, pre + "output.dense"), pre + "output.") + h1,
                  pre + "output.LayerNorm")

    S = ids.shape[1]
    x = (
        p["bert.embeddings.word_embeddings.weight"][ids]
        + p["bert.embeddings.position_embeddings.weight"][np.arange(S)][None]
        + p["bert.embeddings.token_type_embeddings.weight"][types]
    )
    x = ln(x, "bert.embeddings.LayerNorm")
    add = (1.0 - mask)[:, None, None, :] * -10000.0
    side = lin(x, "side.first_downsample") if method == "side" else None
    for i in range(cfg["num_hidden_layers"]):
        x = layer(f"bert.encoder.layer.{i}.", x)
        if side is not None:
            side = layer(f"side.layer.{i}.", side + lin(x, f"side.downsample.{i}"))
    if side is not None:
        x = x + lin(side, "side.upsample")
    pooled = np.tanh(lin(x[:, 0], "bert.pooler.dense"))
    return lin(pooled, "classifier")


class Case(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        tiny_case.main(["data", self.path("train.jsonl"), "--rows", "24", "--seed", "1"])
        rows = bert_data.load_rows(self.path("train.jsonl"), _cfg("full"))
        self.batch = bert_data.make_batch(rows, range(8))[:3]

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)

    def logits(self, cfg, p):
        with torch.no_grad():
            return bert_model.forward(cfg, p, *self.batch)


class IdentityAtSpecInitTest(Case):
    """At the spec's init LoRA (B = 0) and the adapter (up = 0) leave the model unchanged."""

    def check_identity(self, method):
        full, cfg = _cfg("full"), _cfg(method)
        base = bert_model.init_params(full, 7)
        p = bert_model.init_params(cfg, 7)  # same seed: the backbone comes first
        for k, v in base.items():
            self.assertTrue(torch.equal(p[k], v), k)
        self.assertTrue(torch.equal(self.logits(cfg, p), self.logits(full, base)))
        return cfg, p

    def test_lora_with_zero_b_is_the_base_model(self):
        cfg, p = self.check_identity("lora")
        a = p["bert.encoder.layer.1.attention.self.value.lora_A.weight"]
        self.assertLessEqual(a.abs().max().item(), 1 / math.sqrt(64))  # U(+-1/sqrt(in))
        self.assertGreater(a.abs().max().item(), 0.9 / math.sqrt(64))
        self.assertEqual(p["bert.encoder.layer.1.attention.self.value.lora_B.weight"]
                         .abs().max().item(), 0)

    def test_adapter_with_zero_up_is_the_identity(self):
        for kind in ("gelu_new", "gelu"):
            cfg, p = self.check_identity(f"adapter-{kind}")
            self.assertGreater(
                p["bert.encoder.layer.0.output.adapter.down.weight"].abs().max().item(), 0)

    def test_perturbed_init_changes_the_model(self):
        for method in ("lora", "adapter-gelu", "side"):
            full, cfg = _cfg("full"), _cfg(method)
            diff = self.logits(cfg, bert_model.init_params(cfg, 7, perturb=True)) - \
                self.logits(full, bert_model.init_params(full, 7, perturb=True))
            self.assertGreater(diff.abs().max().item(), 1e-4, method)


class ForwardTest(Case):
    def check_numpy(self, cfg):
        # float64 on both sides, so any deviation from the spec shows far above rounding;
        # the method's tensors are scaled up so that they move the logits by O(1).
        p = bert_model.init_params(cfg, 3, perturb=True)
        for k in p:
            if "lora_B" in k or ".adapter." in k or k.startswith(("side.", "classifier.")):
                p[k] = p[k] * 20
        p = {k: v.to(torch.float64) for k, v in p.items()}
        got = self.logits(cfg, p).numpy()
        ids, mask, types = (t.numpy() for t in self.batch)
        want = _numpy_forward(cfg, {k: v.numpy() for k, v in p.items()}, ids,
                              mask.astype(np.float64), types)
        np.testing.assert_allclose(got, want, atol=1e-9, rtol=0)

    def test_every_case_matches_the_numpy_transcription(self):
        for method in peft_case.CASES:
            with self.subTest(method=method):
                self.check_numpy(_cfg(method))
        self.check_numpy(_cfg("lora", lora_target_modules=["key", "output"]))

    def test_lora_equals_its_merged_weights(self):
        cfg, full = _cfg("lora", lora_alpha=12), _cfg("full")
        p = bert_model.init_params(cfg, 4, perturb=True)
        merged = {k: v.clone() for k, v in p.items() if "lora_" not in k}
        for mod in bert_model.lora_modules(cfg):
            merged[mod + ".weight"] += (12 / 4) * p[mod + ".lora_B.weight"] @ \
                p[mod + ".lora_A.weight"]
        torch.testing.assert_close(self.logits(cfg, p), self.logits(full, merged),
                                   atol=1e-5, rtol=0)

    def test_fan_in_fan_out_only_transposes_the_stored_weights(self):
        fan = _cfg("lora-all-targets-fanin")
        plain = _cfg("lora-all-targets-fanin", fan_in_fan_out=False)
        p = bert_model.init_params(fan, 5, perturb=True)
        mods = bert_model.lora_modules(fan)
        self.assertEqual(len(mods), 12)
        self.assertIn("bert.encoder.layer.0.output.dense", mods)
        self.assertIn("bert.encoder.layer.0.attention.output.dense", mods)
        self.assertEqual(tuple(p["bert.encoder.layer.0.intermediate.dense.weight"].shape),
                         (64, 128))  # [in, out]
        q = {k: (v.t().contiguous() if k[:-len(".weight")] in mods else v)
             for k, v in p.items()}
        self.assertTrue(torch.equal(self.logits(fan, p), self.logits(plain, q)))
        with self.assertRaisesRegex(ValueError, "intermediate.dense.weight"):
            bert_model.check_params(plain, p, "fan.st")

    def test_output_target_is_the_layers_output_dense(self):
        names = bert_model.param_shapes(_cfg("lora", lora_target_modules=["output"]))
        lora = [k for k in names if "lora_A" in k]
        self.assertEqual(lora, [f"bert.encoder.layer.{i}.output.dense.lora_A.weight"
                                for i in range(2)])


class ParamsTest(Case):
    def test_counts_match_closed_forms(self):
        V, H, I, L, P, T, C = 300, 64, 128, 2, 64, 2, 10
        layer = 4 * (H * H + H) + 2 * 2 * H + (I * H + I) + (H * I + H)
        base = V * H + P * H + T * H + 2 * H + L * layer + (H * H + H) + (C * H + C)
        self.assertEqual(bert_model.param_counts(_cfg("full")), (base, base))
        head = C * H + C
        lora = L * 2 * 4 * (H + H)  # query, value: r*(in+out) each
        self.assertEqual(bert_model.param_counts(_cfg("lora")), (base + lora, head + lora))
        six = L * 4 * (4 * (H + H) + (H + I) + (I + H))
        self.assertEqual(bert_model.param_counts(_cfg("lora-all-targets-fanin")),
                         (base + six, head + six))
        k = H // 8
        adapter = L * 2 * (H * k + k + k * H + H)
        self.assertEqual(bert_model.param_counts(_cfg("adapter-gelu")),
                         (base + adapter, head + adapter))
        Hs, Is = H // 4, I // 4
        side_layer = 4 * (Hs * Hs + Hs) + 4 * Hs + (Is * Hs + Is) + (Hs * Is + Hs)
        side = (L + 1) * (Hs * H + Hs) + L * side_layer + (H * Hs + H)
        self.assertEqual(bert_model.param_counts(_cfg("side")), (base + side, head + side))
        shapes = bert_model.param_shapes(_cfg("side"))
        self.assertEqual(shapes["side.layer.0.attention.self.query.weight"], (16, 16))
        self.assertEqual(shapes["side.layer.1.intermediate.dense.weight"], (32, 16))
        self.assertEqual(shapes["side.downsample.1.weight"], (16, 64))
        self.assertEqual(shapes["side.upsample.weight"], (64, 16))

    def test_trainable_sets(self):
        for method, want in (
            ("lora", "bert.encoder.layer.1.attention.self.value.lora_B.weight"),
            ("adapter-gelu", "bert.encoder.layer.0.attention.output.adapter.up.bias"),
            ("side", "side.layer.1.output.LayerNorm.weight"),
        ):
            cfg = _cfg(method)
            self.assertTrue(bert_model.is_trainable(cfg, want))
            self.assertTrue(bert_model.is_trainable(cfg, "classifier.bias"))
            for frozen in ("bert.pooler.dense.weight", "bert.embeddings.LayerNorm.bias",
                           "bert.encoder.layer.0.attention.self.value.weight"):
                self.assertFalse(bert_model.is_trainable(cfg, frozen), (method, frozen))
        self.assertTrue(bert_model.is_trainable(_cfg("full"), "bert.pooler.dense.weight"))


class TrainTest(Case):
    def train(self, method, optimizer, steps=3):
        raw = peft_case.config(method, optimizer)
        with open(self.path("c.json"), "w") as f:
            json.dump(raw, f)
        cfg = bert_config.resolve(raw)
        init = bert_model.init_params(cfg, 11, perturb=True)
        safetensors_io.save(self.path("i.st"), init)
        rc = bert_torch.main(["train", self.path("c.json"), "--init", self.path("i.st"),
                              "--data", self.path("train.jsonl"), "--steps", str(steps),
                              "--metrics", self.path("m.jsonl"), "--save", self.path("o.st")])
        self.assertEqual(rc, 0)
        return cfg, init, safetensors_io.load(self.path("o.st"))

    def test_frozen_weights_stay_bit_identical(self):
        for method, optimizer in (("side", "adamw"), ("lora-all-targets-fanin", "adamw"),
                                  ("adapter-gelu_new", "sgd")):
            with self.subTest(method=method):
                cfg, init, out = self.train(method, optimizer)
                moved = 0
                for k, v in init.items():
                    same = v.numpy().tobytes() == out[k].tobytes()
                    if bert_model.is_trainable(cfg, k):
                        moved += not same
                    else:
                        self.assertTrue(same, f"{method}: frozen {k} changed")
                n_train = sum(bert_model.is_trainable(cfg, k) for k in init)
                self.assertEqual(moved, n_train, method)  # every trainable tensor moves
                regex = bert_config.trainable_regex(cfg)
                self.assertEqual(compare.main(["frozen", self.path("o.st"),
                                               self.path("i.st"), "--trainable", regex]), 0)

    def test_side_loss_falls_on_a_repeated_batch(self):
        with open(self.path("train.jsonl")) as f:
            head = f.readlines()[:4]
        with open(self.path("train.jsonl"), "w") as f:
            f.writelines(head)
        self.train("side", "adamw", steps=12)
        with open(self.path("m.jsonl")) as f:
            losses = [json.loads(line)["loss"] for line in f]
        self.assertTrue(all(b < a for a, b in zip(losses, losses[1:])), losses)
        self.assertLess(losses[-1], losses[0] - 0.05, losses)


class ConfigTest(unittest.TestCase):
    def bad(self, msg, **raw):
        cfg = tiny_case.config("sgd")
        cfg.update(raw)
        with self.assertRaisesRegex(bert_config.ConfigError, msg):
            bert_config.resolve(cfg)

    def test_errors_name_the_key(self):
        self.bad(r"use_lora.*use_adapter.*exactly one", use_lora=True, use_adapter=True)
        self.bad(r"full_model.*use_side", full_model=True, use_side=True)
        self.bad("lora_target_modules", use_lora=True, lora_target_modules=["dense"])
        self.bad("empty", use_lora=True, lora_target_modules=[])
        self.bad("repeats", use_lora=True, lora_target_modules=["query", "query"])
        self.bad("lora_dim.*lora_r", use_lora=True, lora_dim=4, lora_r=8)
        self.bad("adapter_reduction_dim 7", use_adapter=True, adapter_reduction_dim=7)
        self.bad("non_linearity", use_adapter=True, non_linearity="tanh")
        self.bad("num_attention_heads 2", use_side=True, side_reduction_factor=64)
        self.bad("'use_lora' must be true or false", use_lora=1)

    def test_method_resolution(self):
        base = tiny_case.config("sgd")
        self.assertEqual(bert_config.resolve(base)["peft"], "full")
        self.assertEqual(bert_config.resolve({**base, "use_lora": True})["peft"], "lora")
        both = bert_config.resolve({**base, "use_side": True, "use_side_only": True})
        self.assertEqual(both["peft"], "side")
        self.assertEqual(bert_config.resolve({**base, "use_lora": True, "lora_r": 2})
                         ["lora_dim"], 2)

    def test_train_refuses_lora_dropout(self):
        cfg = bert_config.resolve({**peft_case.config("lora", "sgd"), "lora_dropout": 0.1})
        with self.assertRaisesRegex(bert_config.ConfigError, "lora_dropout"):
            bert_config.check_no_dropout(cfg)


class CompareFrozenTest(Case):
    def setUp(self):
        super().setUp()
        cfg = _cfg("lora")
        self.regex = bert_config.trainable_regex(cfg)
        self.init = {k: v.numpy() for k, v in bert_model.init_params(cfg, 2, True).items()}
        safetensors_io.save(self.path("i.st"), self.init)

    def verdict(self, tensors):
        safetensors_io.save(self.path("s.st"), tensors)
        return compare.main(["frozen", self.path("s.st"), self.path("i.st"),
                             "--trainable", self.regex])

    def moved(self):
        t = {k: v.copy() for k, v in self.init.items()}
        t["classifier.bias"] += 0.01
        return t

    def test_verdicts(self):
        self.assertEqual(self.verdict(self.moved()), 0)
        self.assertEqual(self.verdict(self.init), 1)  # nothing trained
        t = self.moved()
        w = t["bert.pooler.dense.weight"]
        w[0, 0] = np.nextafter(w[0, 0], np.float32(1))  # one ulp on a frozen tensor
        self.assertEqual(self.verdict(t), 1)
        t = self.moved()
        t["bert.embeddings.LayerNorm.bias"][0] = 0.0
        self.init["bert.embeddings.LayerNorm.bias"][0] = -0.0
        safetensors_io.save(self.path("i.st"), self.init)
        self.assertEqual(self.verdict(t), 1)  # -0.0 vs 0.0

    def test_missing_method_parameters_are_named(self):
        base = {k: v for k, v in self.moved().items() if "lora_" not in k}
        safetensors_io.save(self.path("s.st"), base)
        r = subprocess.run([sys.executable, os.path.join(ORACLE, "compare.py"), "frozen",
                            self.path("s.st"), self.path("i.st"), "--trainable", self.regex],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 1)
        self.assertIn("lacks 8 of the", r.stdout)
        self.assertIn("lora_A.weight", r.stdout)


# Stand-ins for galaxyc / galaxy-run built from the oracle, to test the script's plumbing.
_GALAXYC = """#!/usr/bin/env bash
set -e
mkdir -p "$3"
{drop} < "$1" > "$3/config.json"
"""
_GALAXY_RUN = """#!/usr/bin/python3
import os, sys
sys.path.insert(0, {oracle!r})
import bert_config, bert_model, bert_torch, safetensors_io
a = sys.argv[1:]
plan, flags = a[0], dict(zip(a[1::2], a[2::2]))
cfg_path = os.path.join(plan, "config.json")
cfg = bert_config.load_config(cfg_path)
init = os.path.join(plan, "init.st")
w = safetensors_io.load(flags["--init"])
safetensors_io.save(init, {{k: v for k, v in w.items() if k in bert_model.param_shapes(cfg)}})
sys.exit(bert_torch.main(["train", cfg_path, "--init", init, "--data", flags["--data"],
    "--steps", flags["--steps"], "--save", flags["--save"], "--metrics", flags["--metrics"],
    "--eval", flags["--eval"], "--eval-out", flags["--eval-out"]]))
"""


class ScriptTest(Case):
    def script(self, drop):
        for name, text in (("galaxyc", _GALAXYC.format(drop=drop)),
                           ("galaxy-run", _GALAXY_RUN.format(oracle=ORACLE))):
            path = self.path(name)
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
        env = dict(os.environ, GALAXYC=self.path("galaxyc"),
                   GALAXY_RUN=self.path("galaxy-run"), PYTHON=sys.executable)
        return subprocess.run(["bash", os.path.join(HERE, "run_peft_oracle.sh"), self.dir,
                               "side", "adamw"], capture_output=True, text=True,
                              env=env, timeout=240)

    def test_passes_when_galaxy_computes_the_method(self):
        r = self.script("cat")
        self.assertEqual(r.returncode, 0, r.stdout[-3000:] + r.stderr[-2000:])
        self.assertIn("Galaxy matches the oracle (side, adamw)", r.stdout + r.stderr)

    def test_fails_clearly_when_galaxy_ignores_the_method(self):
        # A compiler that drops the PEFT keys trains the full model without side.*.
        drop = (f"{sys.executable} -c 'import json,sys; c=json.load(sys.stdin); "
                "c.pop(\"use_side\"); c.pop(\"full_model\"); json.dump(c, sys.stdout)'")
        r = self.script(drop)
        out = r.stdout + r.stderr
        self.assertEqual(r.returncode, 1, out[-3000:])
        self.assertIn("lacks", out)
        self.assertIn("lacks 40 of the 81 initial tensors", out)  # every side.* tensor
        self.assertIn("lack the side parameters", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
