#!/usr/bin/python3
"""Self-tests of the LLaMA oracle (no Galaxy, no transformers needed): the model against a
plain float64 numpy transcription of the spec, masking and causality, GQA, the loss's
denominator, LoRA, parameter counts, data parsing and the CLI; HarnessTest runs
run_oracle.sh (llama) with the oracle standing in for Galaxy (slow: CTest runs it apart).

  test_llama_oracle.py [unittest args, e.g. HarnessTest or ModelTest CliTest]"""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import compare  # noqa: E402
import llama_config  # noqa: E402
import llama_data  # noqa: E402
import llama_model  # noqa: E402
import llama_tiny_case  # noqa: E402
import safetensors_io  # noqa: E402

PY = sys.executable
torch.set_num_threads(2)


def _run(*args):
    return subprocess.run([PY, *args], capture_output=True, text=True, timeout=120)


def _numpy_forward(cfg, p, ids, mask):
    """The spec, transcribed loop by loop in float64 numpy (shares nothing with torch):
    logits [B, S, V] (causal LM) or [B, C] (classification)."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    B, S = ids.shape
    n, kv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, half = cfg["rms_norm_eps"], cfg["head_dim"] // 2
    lora = set(llama_model.lora_modules(cfg))
    scale = cfg["lora_alpha"] / cfg["lora_dim"]

    def lin(x, name):
        y = x @ p[name + ".weight"].T
        if name in lora:
            y = y + (x @ p[name + ".lora_A.weight"].T) @ p[name + ".lora_B.weight"].T * scale
        return y

    def rms(x, name):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * p[name]

    def rope(t):  # t [S, d] of one head: pairs (i, i + d/2) rotate by pos * theta^(-2i/d)
        out = np.empty_like(t)
        for s in range(S):
            for i in range(half):
                a = s * cfg["rope_theta"] ** (-2.0 * i / d)
                x1, x2 = t[s, i], t[s, i + half]
                out[s, i] = x1 * math.cos(a) - x2 * math.sin(a)
                out[s, i + half] = x2 * math.cos(a) + x1 * math.sin(a)
        return out

    x = p["model.embed_tokens.weight"][ids]
    for layer in range(cfg["num_hidden_layers"]):
        pre = f"model.layers.{layer}."
        h = rms(x, pre + "input_layernorm.weight")
        q = lin(h, pre + "self_attn.q_proj").reshape(B, S, n, d)
        k = lin(h, pre + "self_attn.k_proj").reshape(B, S, kv, d)
        v = lin(h, pre + "self_attn.v_proj").reshape(B, S, kv, d)
        ctx = np.zeros((B, S, n, d))
        for b in range(B):
            for head in range(n):
                g = head // (n // kv)
                qh, kh = rope(q[b, :, head]), rope(k[b, :, g])
                for i in range(S):
                    keys = [j for j in range(i + 1) if mask[b, j]]
                    sc = np.array([qh[i] @ kh[j] / math.sqrt(d) for j in keys])
                    e = np.exp(sc - sc.max())
                    ctx[b, i, head] = (e / e.sum()) @ v[b, keys, g]
        x = x + lin(ctx.reshape(B, S, n * d), pre + "self_attn.o_proj")
        h = rms(x, pre + "post_attention_layernorm.weight")
        gate = lin(h, pre + "mlp.gate_proj")
        x = x + lin(gate / (1.0 + np.exp(-gate)) * lin(h, pre + "mlp.up_proj"),
                    pre + "mlp.down_proj")
    x = rms(x, "model.norm.weight")
    if cfg["task"] == "classification":
        last = [max(s for s in range(S) if ids[b, s] != cfg["pad_token_id"]) for b in range(B)]
        return np.stack([x[b, last[b]] for b in range(B)]) @ p["score.weight"].T
    head = "model.embed_tokens.weight" if cfg["tie_word_embeddings"] else "lm_head.weight"
    return x @ p[head].T


class Case(unittest.TestCase):
    case = "sgd"

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.cfg_path = self.path("config.json")
        self.cfg = self.make(self.case)

    def make(self, case, path=None):
        path = path or self.cfg_path
        llama_tiny_case.main(["config", case, path])
        cfg = llama_config.load_config(path)
        data = self.path(f"{cfg['task']}.jsonl")
        llama_tiny_case.main(["data", data, "--task", cfg["task"], "--rows", "24"])
        return cfg

    def rows(self, cfg=None):
        cfg = cfg or self.cfg
        return llama_data.load_rows(self.path(f"{cfg['task']}.jsonl"), cfg)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)


class ModelTest(Case):
    def test_forward_matches_numpy_transcription(self):
        for case in llama_tiny_case.CASES:
            with self.subTest(case=case):
                cfg = self.make(case, self.path(f"{case}.json"))
                p = llama_model.init_params(cfg, 3, perturb=True)
                ids, mask, _ = llama_data.make_batch(self.rows(cfg), range(7))
                self.assertTrue((mask == 0).any())  # padding is exercised
                if cfg["task"] == "causal_lm":  # and a masked key before a query
                    self.assertTrue(((mask[:, :-1] == 0) & (mask[:, 1:] == 1)).any())
                got = llama_model.forward(cfg, p, ids, mask).detach().numpy()
                want = _numpy_forward(cfg, {k: v.numpy() for k, v in p.items()},
                                      ids.numpy(), mask.numpy())
                self.assertEqual(got.shape, want.shape)
                if cfg["task"] == "causal_lm":  # padded query positions are never read
                    sel = mask.numpy().astype(bool)
                    got, want = got[sel], want[sel]
                np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)

    def test_causality_and_padding(self):
        p = llama_model.init_params(self.cfg, 3, perturb=True)
        pad = self.cfg["pad_token_id"]
        ids = torch.tensor([[5, 9, 11, 40, pad, pad]])
        mask = torch.tensor([[1, 1, 1, 1, 0, 0]])
        a = llama_model.forward(self.cfg, p, ids, mask)
        # The future and the padding do not reach earlier positions.
        b = llama_model.forward(self.cfg, p, torch.tensor([[5, 9, 11, 7, 60, 1]]), mask)
        torch.testing.assert_close(a[:, :3], b[:, :3], atol=0, rtol=0)
        self.assertGreater((a[:, 3] - b[:, 3]).abs().max().item(), 1e-3)
        # An unmasked pad key does change a later (padded) query's output.
        c = llama_model.forward(self.cfg, p, ids, torch.ones_like(mask))
        torch.testing.assert_close(a[:, :4], c[:, :4], atol=0, rtol=0)
        self.assertGreater((a[:, 5] - c[:, 5]).abs().max().item(), 1e-4)

    def test_gqa_is_mha_with_repeated_kv_heads(self):
        cfg = dict(self.cfg)
        p = llama_model.init_params(cfg, 4, perturb=True)
        mha = dict(cfg, num_key_value_heads=cfg["num_attention_heads"])
        q = dict(p)
        d, groups = cfg["head_dim"], cfg["num_attention_heads"] // cfg["num_key_value_heads"]
        for i in range(cfg["num_hidden_layers"]):
            for m in ("k_proj", "v_proj"):
                name = f"model.layers.{i}.self_attn.{m}.weight"
                w = p[name].view(cfg["num_key_value_heads"], d, -1)
                q[name] = w.repeat_interleave(groups, dim=0).reshape(-1, w.shape[-1])
        ids, mask, _ = llama_data.make_batch(self.rows(), range(4))
        torch.testing.assert_close(
            llama_model.forward(cfg, p, ids, mask), llama_model.forward(mha, q, ids, mask),
            atol=1e-5, rtol=0)

    def test_loss_is_the_mean_over_every_target_of_the_batch(self):
        p = llama_model.init_params(self.cfg, 3, perturb=True)
        ids, mask, labels = llama_data.make_batch(self.rows(), range(8))
        logits = llama_model.forward(self.cfg, p, ids, mask)
        total, count = 0.0, 0
        for b in range(8):
            for s in range(ids.shape[1] - 1):
                t = int(labels[b, s + 1])
                if t != -100:
                    total -= torch.log_softmax(logits[b, s].double(), -1)[t].item()
                    count += 1
        self.assertEqual(count, llama_model.num_targets(labels))
        per_row = [int((labels[b, 1:] != -100).sum()) for b in range(8)]
        self.assertGreater(len(set(per_row)), 2)  # rows weigh differently: not a row mean
        loss = llama_model.loss_fn(self.cfg, logits, labels).item()
        self.assertAlmostEqual(loss, total / count, delta=1e-5)

    def test_pad_embedding_row_gets_no_gradient(self):
        # Even where a pad's own output is scored (a masked pad, then a counted target),
        # as Hugging Face's nn.Embedding(padding_idx=pad_token_id) does.
        p = llama_model.init_params(self.cfg, 3, perturb=True)
        for t in p.values():
            t.requires_grad_(True)
        pad = self.cfg["pad_token_id"]
        ids = torch.tensor([[5, 9, pad, 40, 7]])
        mask = torch.tensor([[1, 1, 0, 1, 1]])
        labels = torch.tensor([[5, 9, -100, 40, 7]])
        llama_model.loss_fn(self.cfg, llama_model.forward(self.cfg, p, ids, mask),
                            labels).backward()
        g = p["model.embed_tokens.weight"].grad
        self.assertEqual(g[pad].abs().max().item(), 0.0)
        self.assertGreater(g[9].abs().max().item(), 0.0)

    def test_lora_with_zero_b_is_the_base_model(self):
        lora = self.make("lora", self.path("lora.json"))
        p = llama_model.init_params(lora, 3)  # spec init: B = 0
        base = {k: v for k, v in p.items() if ".lora_" not in k}
        ids, mask, _ = llama_data.make_batch(self.rows(lora), range(4))
        torch.testing.assert_close(llama_model.forward(lora, p, ids, mask),
                                   llama_model.forward(self.cfg, base, ids, mask),
                                   atol=0, rtol=0)

    def test_parameter_counts_are_hugging_faces(self):
        # LLaMA-7B (HF defaults): 6,738,415,616 parameters; LLaMA-2-70B's shape with GQA.
        seven = llama_config.resolve({"model_type": "llama"})
        self.assertEqual(llama_model.param_counts(seven), (6738415616, 6738415616))
        big = llama_config.resolve({
            "model_type": "llama", "hidden_size": 8192, "intermediate_size": 28672,
            "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8,
        })
        self.assertEqual(llama_model.param_counts(big)[0], 68976648192)
        tied = llama_config.resolve({"model_type": "llama", "tie_word_embeddings": True})
        self.assertEqual(llama_model.param_counts(tied)[0], 6738415616 - 32000 * 4096)
        lora = self.make("lora", self.path("lora.json"))
        total, trainable = llama_model.param_counts(lora)
        # 2 layers x 7 targets x r (in + out): q, k, v, o, gate, up, down.
        H, I, kvd, r = 32, 48, 16, 4
        per_layer = r * ((H + H) + 2 * (H + kvd) + (H + H) + 2 * (H + I) + (I + H))
        self.assertEqual(trainable, 2 * per_layer)

    def test_init_and_checkpoint_checks(self):
        a = llama_model.init_params(self.cfg, 5, perturb=True)
        b = llama_model.init_params(self.cfg, 5, perturb=True)
        for k in a:
            self.assertTrue(torch.equal(a[k], b[k]), k)
        self.assertGreater((a["model.norm.weight"] - 1).abs().max().item(), 0)
        spec = llama_model.init_params(self.cfg, 5)
        self.assertTrue(torch.equal(spec["model.norm.weight"], torch.ones(32)))
        a.pop("lm_head.weight")
        with self.assertRaisesRegex(ValueError, "lm_head.weight"):
            llama_model.check_params(self.cfg, a, "x")
        tied = self.make("adamw", self.path("tied.json"))
        t = llama_model.init_params(tied, 5)
        self.assertNotIn("lm_head.weight", t)
        t["lm_head.weight"] = t["model.embed_tokens.weight"].clone()
        self.assertNotIn("lm_head.weight", llama_model.check_params(tied, t, "x"))
        t["lm_head.weight"] += 1
        with self.assertRaisesRegex(ValueError, "differs"):
            llama_model.check_params(tied, t, "x")


class ConfigDataTest(Case):
    def test_config_errors(self):
        for raw, msg in (
            ({"num_attention_heads": 4, "num_key_value_heads": 3}, "multiple"),
            ({"task": "seq2seq"}, "task"),
            ({"attention_bias": True}, "attention_bias"),
            ({"rope_scaling": {"type": "linear", "factor": 2.0}}, "rope_scaling"),
            ({"use_adapter": True}, "full and LoRA"),
            ({"use_lora": True, "lora_target_modules": ["query"]}, "lora_target_modules"),
            ({"lora_dim": 4, "lora_r": 8}, "disagree"),
            ({"pad_token_id": 32000}, "pad_token_id"),
            ({"model_type": "bert"}, "llama"),
        ):
            with self.assertRaisesRegex(ValueError, msg):
                llama_config.resolve(dict({"model_type": "llama"}, **raw))
        cfg = llama_config.resolve({"model_type": "llama", "lora_att_dim": 16,
                                    "use_lora": True})
        self.assertEqual((cfg["lora_dim"], cfg["peft"], cfg["num_key_value_heads"]),
                         (16, "lora", 32))

    def test_padding_labels_and_errors(self):
        rows = self.rows()
        pad = self.cfg["pad_token_id"]
        self.assertEqual(len(rows), 24)
        for ids, mask, labels, _ in rows:
            self.assertEqual(len(ids), 16)
            for i, m, t in zip(ids, mask, labels):
                self.assertEqual(i == pad, m == 0)  # the tiny case keeps them equivalent
                if not m:
                    self.assertEqual(t, -100)
        self.assertTrue(any(-100 in r[2][: sum(r[1])] for r in rows))  # a masked prompt
        cls = self.make("cls", self.path("cls.json"))
        self.assertTrue(all(r[2] is None and 0 <= r[3] < 5 for r in self.rows(cls)))
        for cfg, bad, msg in (
            (self.cfg, {"input_ids": list(range(17))}, "pad_size"),
            (self.cfg, {"input_ids": [1, 64]}, "vocab_size"),
            (self.cfg, {"input_ids": [1, 2], "labels": [1]}, "labels"),
            (self.cfg, {"input_ids": [1, 2], "labels": [1, -1]}, "label"),
            (self.cfg, {"input_ids": [1, 2], "attention_mask": [1]}, "attention_mask"),
            (cls, {"input_ids": [1, 2]}, "num_classes"),
            (cls, {"input_ids": [3, 3], "label": 1}, "pad_token_id"),
        ):
            with open(self.path("bad.jsonl"), "w") as f:
                f.write(json.dumps(bad) + "\n")
            with self.assertRaisesRegex(ValueError, msg):
                llama_data.load_rows(self.path("bad.jsonl"), cfg)


class CliTest(Case):
    def train(self, tag, *extra, steps=5):
        r = _run(
            os.path.join(HERE, "llama_torch.py"), "train", self.cfg_path,
            "--init", self.path("init.st"), "--data", self.path("causal_lm.jsonl"),
            "--steps", str(steps), "--metrics", self.path(f"{tag}.jsonl"),
            "--save", self.path(f"{tag}.st"), "--eval", self.path("causal_lm.jsonl"),
            "--eval-out", self.path(f"{tag}.json"), *extra,
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path(f"{tag}.jsonl")) as f:
            return [json.loads(line) for line in f]

    def test_end_to_end_determinism_and_compare(self):
        r = _run(os.path.join(HERE, "llama_torch.py"), "init", self.cfg_path,
                 "--seed", "1234", "--out", self.path("init.st"))
        self.assertEqual(r.returncode, 0, r.stderr)
        m1 = self.train("a")
        self.train("b")
        self.assertEqual([m["step"] for m in m1], [1, 2, 3, 4, 5])
        with open(self.path("a.json")) as f:
            ev = json.load(f)
        self.assertEqual(np.asarray(ev["logits"]).shape, (24, 16, 64))
        p = lambda n: self.path(n)  # noqa: E731
        self.assertEqual(compare.main([p("a.jsonl"), p("b.jsonl")]), 0)
        self.assertEqual(compare.main(["weights", p("a.st"), p("b.st"), "--init", p("init.st")]), 0)
        self.assertEqual(compare.main(["logits", p("a.json"), p("b.json")]), 0)
        ev["logits"][2][5][7] += 1e-3  # a causal LM's logits are [rows, positions, vocab]
        with open(p("c.json"), "w") as f:
            json.dump(ev, f)
        self.assertEqual(compare.main(["logits", p("a.json"), p("c.json")]), 1)
        # A halved k_proj update.
        w = safetensors_io.load(p("a.st"))
        init = safetensors_io.load(p("init.st"))
        name = "model.layers.0.self_attn.k_proj.weight"
        w[name] = init[name] + (w[name] - init[name]) * 0.5
        safetensors_io.save(p("e.st"), w)
        self.assertEqual(compare.main(["weights", p("a.st"), p("e.st"), "--init", p("init.st")]), 1)

    def test_sgd_loss_falls_on_a_repeated_batch(self):
        with open(self.path("causal_lm.jsonl")) as f:
            head = f.readlines()[:4]
        with open(self.path("causal_lm.jsonl"), "w") as f:
            f.writelines(head)
        safetensors_io.save(self.path("init.st"), llama_model.init_params(self.cfg, 9, True))
        losses = [x["loss"] for x in self.train("f", "--lr", "1.0", steps=15)]
        self.assertLess(losses[-1], losses[0] - 0.2, losses)

    def test_lora_trains_only_the_adapters(self):
        self.make("lora")
        r = _run(os.path.join(HERE, "llama_torch.py"), "init", self.cfg_path,
                 "--seed", "7", "--out", self.path("init.st"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.train("g", steps=2)
        regex = llama_config.trainable_regex(llama_config.load_config(self.cfg_path))
        self.assertEqual(compare.main(["frozen", self.path("g.st"), self.path("init.st"),
                                       "--trainable", regex]), 0)

    def test_refuses_dropout_and_bad_checkpoints(self):
        with open(self.cfg_path) as f:
            cfg = json.load(f)
        cfg["attention_dropout"] = 0.1
        with open(self.path("drop.json"), "w") as f:
            json.dump(cfg, f)
        r = _run(os.path.join(HERE, "llama_torch.py"), "train", self.path("drop.json"),
                 "--data", self.path("causal_lm.jsonl"), "--steps", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("attention_dropout", r.stderr)
        p = llama_model.init_params(self.cfg, 1)
        p.pop("model.layers.1.mlp.up_proj.weight")
        safetensors_io.save(self.path("missing.st"), p)
        r = _run(os.path.join(HERE, "llama_torch.py"), "eval", self.cfg_path,
                 "--init", self.path("missing.st"), "--eval", self.path("causal_lm.jsonl"),
                 "--eval-out", self.path("x.json"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("up_proj", r.stderr)


_FAKE_GALAXYC = """#!/usr/bin/python3
# galaxyc CONFIG -o PLAN: keeps the config (with FAKE_CHANGE's keys) as the "plan".
import json, os, sys
cfg = json.load(open(sys.argv[1]))
cfg.update(json.loads(os.environ.get("FAKE_CHANGE", "{}")))
os.makedirs(sys.argv[3], exist_ok=True)
json.dump(cfg, open(os.path.join(sys.argv[3], "config.json"), "w"))
"""
_FAKE_GALAXY_RUN = """#!/usr/bin/python3
# galaxy-run PLAN --data ... : the oracle trains the plan's config (same flag names).
import os, subprocess, sys
oracle = os.path.join(os.environ["ORACLE_DIR"], "llama_torch.py")
cfg = os.path.join(sys.argv[1], "config.json")
sys.exit(subprocess.run([sys.executable, oracle, "train", cfg, *sys.argv[2:]]).returncode)
"""


class HarnessTest(unittest.TestCase):
    """run_oracle.sh (llama) with the oracle standing in for Galaxy: the same program must
    pass, a changed one (rope_theta, the pad id) must fail. No Galaxy binary needed."""

    def harness(self, mode, change=None):
        with tempfile.TemporaryDirectory() as d:
            for name, text in (("galaxyc", _FAKE_GALAXYC), ("galaxy-run", _FAKE_GALAXY_RUN)):
                with open(os.path.join(d, name), "w") as f:
                    f.write(text.replace("/usr/bin/python3", PY, 1))
                os.chmod(os.path.join(d, name), 0o755)
            env = dict(os.environ, GALAXYC=os.path.join(d, "galaxyc"),
                       GALAXY_RUN=os.path.join(d, "galaxy-run"), PYTHON=PY,
                       ORACLE_DIR=HERE, FAKE_CHANGE=json.dumps(change or {}))
            r = subprocess.run(["bash", os.path.join(HERE, "run_oracle.sh"), d, "llama", mode],
                               capture_output=True, text=True, timeout=300, env=env)
        return r.returncode, r.stdout + r.stderr

    def test_same_program_passes(self):
        rc, out = self.harness("lora_cls")  # the eval and frozen-tensor checks included
        self.assertEqual(rc, 0, out)
        self.assertIn("OK: logits within", out)
        self.assertIn("frozen tensors bit-identical", out)
        self.assertIn("Galaxy matches the oracle", out)

    def test_changed_program_fails(self):
        for mode, change, what in (
            ("sgd", {"rope_theta": 500000.0}, "weights"),
            ("cls", {"pad_token_id": 0}, "logits differ"),
        ):
            rc, out = self.harness(mode, change)
            self.assertEqual(rc, 1, out)
            self.assertIn("MISMATCH", out)
            self.assertIn(what, out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
