#!/usr/bin/python3
"""Self-tests of the oracle (no Galaxy needed): file format, model against a plain numpy
transcription of the spec, training behaviour, determinism, and compare.py's verdicts."""

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

import bert_config  # noqa: E402
import bert_data  # noqa: E402
import bert_model  # noqa: E402
import compare  # noqa: E402
import safetensors_io  # noqa: E402
import tiny_case  # noqa: E402

PY = sys.executable
torch.set_num_threads(2)


def _run(*args):
    return subprocess.run([PY, *args], capture_output=True, text=True, timeout=120)


def _numpy_forward(cfg, p, ids, mask, types):
    """The spec, transcribed line by line in float64 numpy (shares nothing with torch)."""
    p = {k: v.astype(np.float64) for k, v in p.items()}
    B, S = ids.shape
    H, n = cfg["hidden_size"], cfg["num_attention_heads"]
    d, eps = H // n, cfg["layer_norm_eps"]

    def ln(x, name):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * p[name + ".weight"] + p[name + ".bias"]

    def lin(x, name):
        return x @ p[name + ".weight"].T + p[name + ".bias"]

    erf = np.vectorize(math.erf)
    x = (
        p["bert.embeddings.word_embeddings.weight"][ids]
        + p["bert.embeddings.position_embeddings.weight"][np.arange(S)][None]
        + p["bert.embeddings.token_type_embeddings.weight"][types]
    )
    x = ln(x, "bert.embeddings.LayerNorm")
    add = (1.0 - mask)[:, None, None, :] * -10000.0
    for i in range(cfg["num_hidden_layers"]):
        pre = f"bert.encoder.layer.{i}."
        q, k, v = (
            lin(x, pre + f"attention.self.{m}").reshape(B, S, n, d).transpose(0, 2, 1, 3)
            for m in ("query", "key", "value")
        )
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + add
        e = np.exp(s - s.max(-1, keepdims=True))
        ctx = (e / e.sum(-1, keepdims=True)) @ v
        att = lin(ctx.transpose(0, 2, 1, 3).reshape(B, S, H), pre + "attention.output.dense")
        h1 = ln(att + x, pre + "attention.output.LayerNorm")
        mid = lin(h1, pre + "intermediate.dense")
        mid = mid * 0.5 * (1.0 + erf(mid / math.sqrt(2.0)))
        x = ln(lin(mid, pre + "output.dense") + h1, pre + "output.LayerNorm")
    pooled = np.tanh(lin(x[:, 0], "bert.pooler.dense"))
    return lin(pooled, "classifier")


class Case(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        self.cfg_path = self.path("config.json")
        tiny_case.main(["config", "sgd", self.cfg_path])
        tiny_case.main(["data", self.path("train.jsonl"), "--rows", "24", "--seed", "1"])
        self.cfg = bert_config.load_config(self.cfg_path)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.dir, name)


class SafetensorsTest(Case):
    def test_round_trip_and_layout(self):
        t = {
            "b": np.arange(6, dtype=np.float32).reshape(2, 3),
            "a": np.array([1, -2], dtype=np.int32),
            "c": np.array([[2**40]], dtype=np.int64),
            "s": np.array(3.5, dtype=np.float32),
        }
        safetensors_io.save(self.path("t.st"), t, metadata={"format": "pt"})
        header, meta, start = safetensors_io.read_header(self.path("t.st"))
        self.assertEqual(meta, {"format": "pt"})
        self.assertEqual(start % 8, 0)
        self.assertEqual(header["b"]["dtype"], "F32")
        self.assertEqual(header["a"]["data_offsets"], [0, 8])  # names sorted
        back = safetensors_io.load(self.path("t.st"))
        for k in t:
            np.testing.assert_array_equal(back[k], t[k])
            self.assertEqual(back[k].dtype, t[k].dtype)

    def test_rejects_corrupt_files(self):
        safetensors_io.save(self.path("t.st"), {"x": np.zeros(4, np.float32)})
        with open(self.path("t.st"), "rb") as f:
            raw = f.read()
        with open(self.path("short.st"), "wb") as f:
            f.write(raw[:-4])
        with self.assertRaisesRegex(ValueError, "do not fit"):
            safetensors_io.load(self.path("short.st"))
        with open(self.path("junk.st"), "wb") as f:
            f.write(b"\xff" * 16)
        with self.assertRaisesRegex(ValueError, "implausible"):
            safetensors_io.load(self.path("junk.st"))
        with self.assertRaisesRegex(ValueError, "not supported"):
            safetensors_io.save(self.path("u.st"), {"x": np.zeros(2, np.uint8)})


class ModelTest(Case):
    def test_init_names_determinism_and_perturbation(self):
        a = bert_model.init_params(self.cfg, 5, perturb=True)
        b = bert_model.init_params(self.cfg, 5, perturb=True)
        c = bert_model.init_params(self.cfg, 6, perturb=True)
        self.assertEqual(len(a), 5 + 16 * 2 + 4)
        self.assertIn("bert.encoder.layer.1.attention.self.query.weight", a)
        for k in a:
            self.assertTrue(torch.equal(a[k], b[k]), k)
        self.assertFalse(torch.equal(a["classifier.weight"], c["classifier.weight"]))
        self.assertGreater(a["classifier.bias"].abs().max().item(), 0)
        ln = a["bert.embeddings.LayerNorm.weight"]
        self.assertLess((ln - 1).abs().max().item(), 0.2)
        self.assertGreater((ln - 1).abs().max().item(), 0)
        spec = bert_model.init_params(self.cfg, 5)
        self.assertEqual(spec["classifier.bias"].abs().max().item(), 0)
        std = spec["bert.embeddings.word_embeddings.weight"].std().item()
        self.assertAlmostEqual(std, 0.02, delta=0.002)

    def test_forward_matches_numpy_transcription(self):
        p = bert_model.init_params(self.cfg, 3, perturb=True)
        rows = bert_data.load_rows(self.path("train.jsonl"), self.cfg)
        ids, mask, types, _ = bert_data.make_batch(rows, range(8))
        self.assertTrue((mask == 0).any())  # padding is exercised
        got = bert_model.forward(self.cfg, p, ids, mask, types).detach().numpy()
        want = _numpy_forward(
            self.cfg,
            {k: v.numpy() for k, v in p.items()},
            ids.numpy(),
            mask.numpy().astype(np.float64),
            types.numpy(),
        )
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)

    def test_masked_positions_do_not_matter(self):
        p = bert_model.init_params(self.cfg, 3, perturb=True)
        ids = torch.tensor([[1, 5, 9, 0, 0, 0]])
        mask = torch.tensor([[1, 1, 1, 0, 0, 0]])
        types = torch.zeros_like(ids)
        a = bert_model.forward(self.cfg, p, ids, mask, types)
        b = bert_model.forward(self.cfg, p, torch.tensor([[1, 5, 9, 77, 3, 250]]), mask, types)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
        c = bert_model.forward(self.cfg, p, ids, torch.ones_like(mask), types)
        self.assertGreater((a - c).abs().max().item(), 1e-4)

    def test_adamw_step_is_the_kernel_contract(self):
        # docs/kernels.md adamw_update, one step (t = 1), against torch.optim.AdamW.
        g = torch.Generator().manual_seed(0)
        w0 = torch.randn(5, generator=g)
        grad = torch.randn(5, generator=g)
        lr, b1, b2, eps, wd = 1e-2, 0.9, 0.999, 1e-8, 0.1
        w = w0.clone().requires_grad_(True)
        opt = torch.optim.AdamW([w], lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
        w.grad = grad.clone()
        opt.step()
        m, v = (1 - b1) * grad, (1 - b2) * grad * grad
        want = w0 * (1 - lr * wd) - lr * (m / (1 - b1)) / ((v / (1 - b2)).sqrt() + eps)
        torch.testing.assert_close(w.detach(), want, atol=1e-7, rtol=1e-6)


class DataTest(Case):
    def test_padding_defaults_and_errors(self):
        rows = bert_data.load_rows(self.path("train.jsonl"), self.cfg)
        self.assertEqual(len(rows), 24)
        self.assertTrue(all(len(r[0]) == 16 == len(r[1]) == len(r[2]) for r in rows))
        self.assertEqual(bert_data.step_indices(6, 4, 24), [0, 1, 2, 3])
        self.assertEqual(bert_data.step_indices(5, 5, 24), [1, 2, 3, 4, 5])
        for bad, msg in (
            ({"input_ids": list(range(1, 18)), "label": 0}, "pad_size"),
            ({"input_ids": [1, 300], "label": 0}, "vocab_size"),
            ({"input_ids": [1, 2], "label": 10}, "num_classes"),
            ({"input_ids": [1, 2], "attention_mask": [1], "label": 1}, "attention_mask"),
        ):
            with open(self.path("bad.jsonl"), "w") as f:
                f.write(json.dumps(bad) + "\n")
            with self.assertRaisesRegex(ValueError, msg):
                bert_data.load_rows(self.path("bad.jsonl"), self.cfg)


class CliTest(Case):
    def train(self, tag, *extra, steps=5):
        r = _run(
            os.path.join(HERE, "bert_torch.py"), "train", self.cfg_path,
            "--init", self.path("init.st"), "--data", self.path("train.jsonl"),
            "--steps", str(steps), "--metrics", self.path(f"{tag}.jsonl"),
            "--save", self.path(f"{tag}.st"), "--eval", self.path("train.jsonl"),
            "--eval-out", self.path(f"{tag}.json"), *extra,
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(self.path(f"{tag}.jsonl")) as f:
            return [json.loads(line) for line in f]

    def compare(self, *args):
        return compare.main([a if a.startswith("-") or "." not in a or a[0].isdigit()
                             else self.path(a) for a in args])

    def test_end_to_end_determinism_and_compare(self):
        r = _run(os.path.join(HERE, "bert_torch.py"), "init", self.cfg_path,
                 "--seed", "1234", "--out", self.path("init.st"))
        self.assertEqual(r.returncode, 0, r.stderr)
        m1 = self.train("a")
        self.train("b")
        self.assertEqual([m["step"] for m in m1], [1, 2, 3, 4, 5])
        with open(self.path("a.json")) as f:
            ev = json.load(f)
        self.assertEqual(np.asarray(ev["logits"]).shape, (24, 10))
        self.assertEqual(set(ev), {"loss", "accuracy", "logits"})

        self.assertEqual(self.compare("a.jsonl", "b.jsonl"), 0)
        self.assertEqual(self.compare("weights", "a.st", "b.st", "--init", "init.st"), 0)
        self.assertEqual(self.compare("logits", "a.json", "b.json"), 0)

        # A perturbed loss, a missing step, an empty file: all mismatches.
        with open(self.path("a.jsonl")) as f:
            lines = f.read().splitlines()
        bad = [json.loads(x) for x in lines]
        bad[3]["loss"] *= 1 + 1e-3
        with open(self.path("c.jsonl"), "w") as f:
            f.write("".join(json.dumps(x) + "\n" for x in bad))
        self.assertEqual(self.compare("a.jsonl", "c.jsonl"), 1)
        with open(self.path("d.jsonl"), "w") as f:
            f.write("\n".join(lines[:4]) + "\n")
        self.assertEqual(self.compare("a.jsonl", "d.jsonl"), 1)
        open(self.path("e.jsonl"), "w").close()
        self.assertEqual(self.compare("e.jsonl", "e.jsonl"), 1)

        # A perturbed weight, a renamed tensor, a tiny change to a small update.
        w = safetensors_io.load(self.path("a.st"))
        w["bert.encoder.layer.0.output.dense.weight"][3, 7] += 0.01
        safetensors_io.save(self.path("c.st"), w)
        self.assertEqual(self.compare("weights", "a.st", "c.st"), 1)
        w = safetensors_io.load(self.path("a.st"))
        w["renamed"] = w.pop("classifier.bias")
        safetensors_io.save(self.path("d.st"), w)
        self.assertEqual(self.compare("weights", "a.st", "d.st"), 1)
        w = safetensors_io.load(self.path("a.st"))
        init = safetensors_io.load(self.path("init.st"))
        name = "bert.encoder.layer.0.attention.self.query.weight"
        w[name] = init[name] + (w[name] - init[name]) * 0.5  # a halved Q gradient
        safetensors_io.save(self.path("e.st"), w)
        self.assertEqual(self.compare("weights", "a.st", "e.st"), 0)  # atol alone: blind
        self.assertEqual(self.compare("weights", "a.st", "e.st", "--init", "init.st"), 1)
        ev["logits"][2][3] += 1e-3
        with open(self.path("c.json"), "w") as f:
            json.dump(ev, f)
        self.assertEqual(self.compare("logits", "a.json", "c.json"), 1)

    def test_sgd_loss_falls_on_a_repeated_batch(self):
        with open(self.path("train.jsonl")) as f:
            head = f.readlines()[:4]
        with open(self.path("train.jsonl"), "w") as f:
            f.writelines(head)
        safetensors_io.save(self.path("init.st"), bert_model.init_params(self.cfg, 9, True))
        m = self.train("f", "--lr", "0.2", steps=15)
        losses = [x["loss"] for x in m]
        self.assertLess(losses[-1], losses[0] - 0.2, losses)

    def test_refuses_dropout_and_bad_checkpoints(self):
        with open(self.cfg_path) as f:
            cfg = json.load(f)
        cfg["hidden_dropout_prob"] = 0.1
        with open(self.path("drop.json"), "w") as f:
            json.dump(cfg, f)
        r = _run(os.path.join(HERE, "bert_torch.py"), "train", self.path("drop.json"),
                 "--data", self.path("train.jsonl"), "--steps", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("hidden_dropout_prob", r.stderr)
        p = bert_model.init_params(self.cfg, 1)
        p.pop("classifier.bias")
        safetensors_io.save(self.path("missing.st"), p)
        r = _run(os.path.join(HERE, "bert_torch.py"), "eval", self.cfg_path,
                 "--init", self.path("missing.st"), "--eval", self.path("train.jsonl"),
                 "--eval-out", self.path("x.json"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("classifier.bias", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
