"""Galaxy's serial BART against Hugging Face's: transformers.BartForConditionalGeneration
(task seq2seq) or BartForSequenceClassification (task classification) on the tiny BART of
tests/equiv/bart_case.py (2+2 layers, d_model 32, 4 heads, vocab 64, padded sources and
targets), from the same random weights: per-step losses (rtol 1e-4) and the weights after
the SGD steps (atol 1e-3) must agree. --peft lora wraps Hugging Face's model in PEFT's
LoRA (peft.get_peft_model; target_modules q/k/v/out_proj, fc1, fc2 reach the decoder's
cross-attention too) from random non-zero factors, and Galaxy's use_lora plan trains the
same factors (and, for classification, the classification_head) from them; Galaxy's
--save-adapter folder then opens in peft.PeftModel.from_pretrained over the initial base
model and must hold Hugging Face's trained LoRA weights (atol 1e-3) and give its loss.

Needs a Python with torch and transformers (Debian's python3-torch has no transformers:
a venv with system site packages and transformers installed): a manual check, and a ctest
(oracle_bart_hf_*) when CMake is given -DGALAXY_HF_PYTHON=that python:

  PY=/path/to/venv/bin/python  $PY tests/oracle/bart_hf.py BUILD_DIR [--task seq2seq|
      classification] [--peft full|lora] [--steps 2] [--keep DIR] [--galaxy-lr-factor F]
      [--hf-drop-cross-mask] [--hf-checkpoint]
--peft side checks Galaxy's own side-tuning (no Hugging Face counterpart) against a side
network built from Hugging Face's BartEncoderLayer / BartDecoderLayer at d_model /
side_reduction_factor (models/bart/BartModel.cpp: each side state starts from a
downsampled tap of the embeddings and adds one of every backbone layer's output; the side
decoder cross-attends to the side encoder; its upsampled output joins the last decoder
state before the LM head), the side network alone trained.

--hf-checkpoint moves the checkpoints through Hugging Face's own files: Galaxy starts from
the model.safetensors of save_pretrained (final_logits_bias [1, vocab], the tied embeddings
stored once), and Galaxy's --save output, beside the config.json, must open in
from_pretrained with no missing or unexpected keys and hold Hugging Face's trained weights.

Hugging Face gets the source attention_mask and the labels, nothing else: it builds the
decoder input with its own shift_tokens_right and runs its decoder with the causal mask
only, so this also checks Galaxy's data side (decoder inputs, eos index, -100 targets).
--galaxy-lr-factor scales Galaxy's learning rate, --hf-drop-cross-mask runs Hugging Face's
cross-attention without the source padding mask: negative controls that must fail.
Exit status: 0 equal, 1 different.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "equiv"))

import torch  # noqa: E402

import bart_case  # noqa: E402
import safetensors_io  # noqa: E402

LOSS_RTOL, WEIGHTS_ATOL = 1e-4, 1e-3
# Tied to model.shared.weight in Hugging Face's state dict; Galaxy keeps the one name.
TIED = {"model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
        "lm_head.weight"}


def hf_model(cfg):
    import transformers

    hc = transformers.BartConfig(
        vocab_size=cfg["vocab_size"], d_model=cfg["d_model"],
        encoder_layers=cfg["encoder_layers"], decoder_layers=cfg["decoder_layers"],
        encoder_attention_heads=cfg["encoder_attention_heads"],
        decoder_attention_heads=cfg["decoder_attention_heads"],
        encoder_ffn_dim=cfg["encoder_ffn_dim"], decoder_ffn_dim=cfg["decoder_ffn_dim"],
        max_position_embeddings=cfg["max_position_embeddings"],
        activation_function=cfg["activation_function"], dropout=0.0, attention_dropout=0.0,
        activation_dropout=0.0, classifier_dropout=0.0, scale_embedding=cfg["scale_embedding"],
        init_std=cfg["init_std"], pad_token_id=cfg["pad_token_id"],
        bos_token_id=cfg["bos_token_id"], eos_token_id=cfg["eos_token_id"],
        decoder_start_token_id=cfg["decoder_start_token_id"], forced_eos_token_id=None,
        num_labels=cfg["num_classes"])
    torch.manual_seed(1234)
    if cfg["task"] == "classification":
        m = transformers.BartForSequenceClassification(hc)
    else:
        m = transformers.BartForConditionalGeneration(hc)
        # A non-zero bias, so its loading (and that it never trains) is checked.
        m.final_logits_bias.copy_(0.1 * torch.randn_like(m.final_logits_bias))
    # Bigger than init_std's 0.02, so the attention is far from uniform and a wrong mask
    # shows.
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.dim() == 2:
                p.normal_(0.0, 0.2)
    return m.float()


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
LORA = {"lora_dim": 4, "lora_alpha": 8}


def peft_lora(model, task):
    """model wrapped in PEFT's LoRA with random non-zero factors (B starts at zero in PEFT,
    which would leave A's gradient zero in the first step); the classification head trains
    whole, as Galaxy's always does (PEFT's modules_to_save).

    Galaxy's targets are layer modules: the list's out_proj would also put LoRA on
    classification_head.out_proj in PEFT, so classification names the layers' modules by
    PEFT's regular-expression form instead."""
    import peft

    targets = LORA_TARGETS
    if task == "classification":
        targets = (r".*layers\.\d+\.((self_attn|encoder_attn)\.(q_proj|k_proj|v_proj|out_proj)"
                   r"|fc1|fc2)")
    lc = peft.LoraConfig(r=LORA["lora_dim"], lora_alpha=LORA["lora_alpha"], lora_dropout=0.0,
                         target_modules=targets)
    pm = peft.get_peft_model(model, lc)
    torch.manual_seed(99)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_" in name:
                p.normal_(0.0, 0.2)
            if ".classification_head." in name:
                p.requires_grad_(True)
    return pm.base_model.model


SIDE_FACTOR = 4


class SideNetwork(torch.nn.Module):
    """Galaxy's BART side network from Hugging Face's layers (names as Galaxy's, under side.)."""

    def __init__(self, model, cfg):
        import transformers
        from transformers.models.bart import modeling_bart as mb

        super().__init__()
        self.bart = model
        H, f = cfg["d_model"], SIDE_FACTOR
        sc = transformers.BartConfig(
            d_model=H // f, encoder_attention_heads=cfg["encoder_attention_heads"],
            decoder_attention_heads=cfg["decoder_attention_heads"],
            encoder_ffn_dim=cfg["encoder_ffn_dim"] // f, decoder_ffn_dim=cfg["decoder_ffn_dim"] // f,
            activation_function=cfg["activation_function"], dropout=0.0, attention_dropout=0.0,
            activation_dropout=0.0, attn_implementation="eager")
        sc._attn_implementation = "eager"

        def lin(a, b):
            return torch.nn.Linear(a, b)

        side = torch.nn.Module()
        for part, n, layer in (("encoder", cfg["encoder_layers"], mb.BartEncoderLayer),
                               ("decoder", cfg["decoder_layers"], mb.BartDecoderLayer)):
            m = torch.nn.Module()
            m.first_downsample = lin(H, H // f)
            m.downsample = torch.nn.ModuleList(lin(H, H // f) for _ in range(n))
            m.layers = torch.nn.ModuleList(layer(sc) for _ in range(n))
            setattr(side, part, m)
        side.decoder.upsample = lin(H // f, H)
        self.side = side
        torch.manual_seed(77)
        with torch.no_grad():
            for name, p in self.side.named_parameters():
                p.normal_(0.0, 0.2 if p.dim() == 2 else 0.1)
        for p in self.bart.parameters():
            p.requires_grad_(False)

    def forward(self, input_ids, attention_mask, labels):
        from transformers.modeling_attn_mask_utils import (_prepare_4d_attention_mask,
                                                           _prepare_4d_causal_attention_mask)
        from transformers.models.bart.modeling_bart import shift_tokens_right

        hc = self.bart.config
        dec_in = shift_tokens_right(labels, hc.pad_token_id, hc.decoder_start_token_id)
        out = self.bart.model(input_ids=input_ids, attention_mask=attention_mask,
                              decoder_input_ids=dec_in, output_hidden_states=True)
        enc_taps, dec_taps = out.encoder_hidden_states, out.decoder_hidden_states
        T = dec_in.shape[1]
        enc_mask = _prepare_4d_attention_mask(attention_mask, torch.float32)
        cross_mask = _prepare_4d_attention_mask(attention_mask, torch.float32, tgt_len=T)
        causal = _prepare_4d_causal_attention_mask(None, (dec_in.shape[0], T), dec_taps[0], 0)
        e = self.side.encoder
        s = e.first_downsample(enc_taps[0])
        for i, layer in enumerate(e.layers):
            s = layer(s + e.downsample[i](enc_taps[i + 1]), enc_mask, None)[0]
        d = self.side.decoder
        t = d.first_downsample(dec_taps[0])
        for i, layer in enumerate(d.layers):
            t = layer(t + d.downsample[i](dec_taps[i + 1]), attention_mask=causal,
                      encoder_hidden_states=s, encoder_attention_mask=cross_mask,
                      use_cache=False)[0]
        h = dec_taps[-1] + d.upsample(t)
        logits = self.bart.lm_head(h) + self.bart.final_logits_bias
        return torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]),
                                                 labels.view(-1))


def galaxy_name(name):
    """PEFT's names inside the wrapped model -> Galaxy's (and PEFT's adapter file's)."""
    return name.replace(".base_layer.", ".").replace(".default.", ".")


def galaxy_state(model):
    out = {}
    for name, t in model.state_dict().items():
        name = galaxy_name(name)
        if name.startswith("bart."):  # SideNetwork's backbone
            name = name[len("bart."):]
        if name in TIED:
            continue
        out[name] = t.detach().clone().numpy()  # final_logits_bias too: [1, vocab] both
    return out


def batches(rows, cfg):
    B, S = cfg["batch_size"], cfg["pad_size"]
    T = cfg.get("target_pad_size", S)
    pad = cfg["pad_token_id"]
    for i in range(0, len(rows), B):
        chunk = rows[i:i + B]
        ids = [r["input_ids"][:S] + [pad] * (S - len(r["input_ids"][:S])) for r in chunk]
        mask = [[1] * len(r["input_ids"][:S]) + [0] * (S - len(r["input_ids"][:S]))
                for r in chunk]
        batch = {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask)}
        if cfg["task"] == "classification":
            batch["labels"] = torch.tensor([r["label"] for r in chunk])
        else:
            batch["labels"] = torch.tensor(
                [r["labels"][:T] + [-100] * (T - len(r["labels"][:T])) for r in chunk])
        yield batch


def no_cross_mask_loss(model, batch, cfg):
    """BartForConditionalGeneration's loss with the decoder's cross-attention unmasked."""
    from transformers.models.bart.modeling_bart import shift_tokens_right

    enc = model.model.encoder(input_ids=batch["input_ids"],
                              attention_mask=batch["attention_mask"])[0]
    dec_in = shift_tokens_right(batch["labels"], cfg["pad_token_id"],
                                cfg["decoder_start_token_id"])
    dec = model.model.decoder(input_ids=dec_in, encoder_hidden_states=enc,
                              encoder_attention_mask=None)[0]
    logits = model.lm_head(dec) + model.final_logits_bias
    return torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]),
                                             batch["labels"].view(-1))


def adapter_opens_in_peft(folder, cfg, trained, rows):
    """Galaxy's --save-adapter folder over the initial base model, in PEFT: the LoRA (and
    head) weights of `trained` (Hugging Face after the same steps) and its loss."""
    import peft

    loaded = peft.PeftModel.from_pretrained(hf_model(cfg), folder)
    with open(os.path.join(folder, "adapter_config.json")) as f:
        acfg = json.load(f)
    mine = {galaxy_name(n.replace(".modules_to_save.", ".").replace(".original_module.", ".")):
            t for n, t in loaded.base_model.model.state_dict().items()
            if ".original_module." not in n}
    want = trained.state_dict()
    worst, missing = 0.0, []
    for name, t in want.items():
        if "lora_" not in name and "classification_head" not in name:
            continue
        got = mine.get(galaxy_name(name))
        if got is None:
            missing.append(name)
            continue
        worst = max(worst, float((got - t).abs().max()))
    n_lora = sum("lora_A" in n for n in mine)
    batch = next(batches(rows, cfg))
    loaded.eval()
    trained.eval()
    with torch.no_grad():
        l_loaded, l_trained = loaded(**batch).loss.item(), trained(**batch).loss.item()
    ok = not missing and worst <= WEIGHTS_ATOL and abs(l_loaded - l_trained) <= LOSS_RTOL * abs(
        l_trained) and n_lora == sum("lora_A" in n for n in want)
    print(f"adapter folder in PEFT: task_type {acfg['task_type']}, target_modules "
          f"{acfg['target_modules']}, modules_to_save {acfg['modules_to_save']}; {n_lora} LoRA "
          f"modules, max |peft - hf| {worst:.2e}, loss {l_loaded:.7f} vs hf {l_trained:.7f}" +
          (f"; missing {missing[:3]}" if missing else "") + ("" if ok else "  MISMATCH"))
    return ok


def galaxy_save_opens_in_hf(p, trained):
    """Galaxy's --save as model.safetensors beside save_pretrained's config.json, opened by
    from_pretrained: no missing or unexpected keys, `trained`'s weights."""
    os.makedirs(p("hf_galaxy"), exist_ok=True)
    shutil.copy(p("hf_init/config.json"), p("hf_galaxy/config.json"))
    shutil.copy(p("galaxy.safetensors"), p("hf_galaxy/model.safetensors"))
    loaded, info = type(trained).from_pretrained(p("hf_galaxy"), output_loading_info=True)
    problems = {k: v for k, v in info.items() if v}
    want, got = trained.state_dict(), loaded.state_dict()
    worst = max(float((got[n] - t).abs().max()) for n, t in want.items())
    bias = float(got["final_logits_bias"].abs().max()) if "final_logits_bias" in got else 0.0
    ok = not problems and worst <= WEIGHTS_ATOL and bias > 0
    print(f"galaxy's --save in from_pretrained: {problems or 'no missing/unexpected keys'}, "
          f"max |loaded - hf| {worst:.2e}, max |final_logits_bias| {bias:.3f}" +
          ("" if ok else "  MISMATCH"))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("build")
    ap.add_argument("--task", default="seq2seq", choices=["seq2seq", "classification"])
    ap.add_argument("--peft", default="full", choices=["full", "lora", "side"])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--hf-checkpoint", action="store_true",
                    help="init from save_pretrained's file; open Galaxy's --save in "
                    "from_pretrained")
    ap.add_argument("--keep")
    ap.add_argument("--galaxy-lr-factor", type=float, default=1.0)
    ap.add_argument("--hf-drop-cross-mask", action="store_true",
                    help="negative control (seq2seq): Hugging Face's cross-attention without "
                    "the source padding mask; must differ from Galaxy")
    args = ap.parse_args()
    galaxyc = os.environ.get("GALAXYC", os.path.join(args.build, "tools", "galaxyc"))
    galaxy_run = os.environ.get("GALAXY_RUN", os.path.join(args.build, "tools", "galaxy-run"))

    work = args.keep or tempfile.mkdtemp(prefix="galaxy-bart-hf.")
    os.makedirs(work, exist_ok=True)
    p = lambda name: os.path.join(work, name)  # noqa: E731
    cfg = bart_case.config("sgd", args.task)
    rows = bart_case.rows(cfg["batch_size"] * args.steps, 1, args.task)
    if args.peft == "side":
        if args.task != "seq2seq":
            sys.exit("--peft side: seq2seq only")
        cfg.update({"full_model": False, "use_side": True, "side_reduction_factor": SIDE_FACTOR})
    if args.peft == "lora":
        cfg.update({"full_model": False, "use_lora": True, "lora_dropout": 0.0,
                    "lora_target_modules": LORA_TARGETS, **LORA})
    gcfg = dict(cfg, learning_rate=cfg["learning_rate"] * args.galaxy_lr_factor)
    with open(p("config.json"), "w") as f:
        json.dump(gcfg, f, indent=1)
    with open(p("train.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")

    model = hf_model(cfg)
    if args.peft == "lora":
        model = peft_lora(model, args.task)
    elif args.peft == "side":
        model = SideNetwork(model, cfg)
    safetensors_io.save(p("init.safetensors"), galaxy_state(model))
    init_file = p("init.safetensors")
    if args.hf_checkpoint:
        model.save_pretrained(p("hf_init"), safe_serialization=True)
        init_file = p("hf_init/model.safetensors")

    for cmd in ([galaxyc, p("config.json"), "-o", p("plan"), "--emit", "none"],
                [galaxy_run, p("plan"), "--data", p("train.jsonl"), "--steps", str(args.steps),
                 "--init", init_file, "--save", p("galaxy.safetensors"),
                 "--metrics", p("galaxy_metrics.jsonl"),
                 *(["--save-adapter", p("adapter")] if args.peft == "lora" else [])]):
        print("+ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)

    trained = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.SGD(trained, lr=cfg["learning_rate"])
    model.train()
    hf_losses = []
    for batch in batches(rows, cfg):
        opt.zero_grad()
        if args.peft == "side":
            loss = model(**batch)
        else:
            loss = (no_cross_mask_loss(model, batch, cfg) if args.hf_drop_cross_mask
                    else model(**batch).loss)
        loss.backward()
        opt.step()
        hf_losses.append(loss.item())
    with open(p("galaxy_metrics.jsonl")) as f:
        galaxy_losses = [json.loads(line)["loss"] for line in f if line.strip()]

    ok = True
    for step, (g, h) in enumerate(zip(galaxy_losses, hf_losses)):
        good = abs(g - h) <= LOSS_RTOL * abs(h)
        ok &= good
        print(f"step {step}: galaxy loss {g:.7f}  hf {h:.7f}  |diff| {abs(g - h):.2e}"
              f"{'' if good else '  MISMATCH'}")
    if len(galaxy_losses) != len(hf_losses):
        print(f"galaxy logged {len(galaxy_losses)} steps, hf {len(hf_losses)}")
        ok = False
    saved = safetensors_io.load(p("galaxy.safetensors"))
    want = galaxy_state(model)
    init = safetensors_io.load(p("init.safetensors"))
    diffs, moved = [], 0
    for name, h in want.items():
        if name not in saved:
            print(f"galaxy did not save {name}")
            ok = False
            continue
        diffs.append((float(abs(saved[name].reshape(h.shape) - h).max()), name))
        moved += bool(abs(h - init[name]).max() > 0)
    diffs.sort(reverse=True)
    print(f"weights: {len(want)} tensors ({moved} updated by training), max |galaxy - hf|: " +
          ", ".join(f"{n} {d:.2e}" for d, n in diffs[:4]))
    ok &= bool(diffs) and diffs[0][0] <= WEIGHTS_ATOL
    if args.hf_checkpoint:
        ok &= galaxy_save_opens_in_hf(p, model)
    if args.peft == "lora":
        ok &= adapter_opens_in_peft(p("adapter"), cfg, model, rows)
    kept = not ok or args.keep
    print("bart_hf.py: " + ("galaxy == hugging face" if ok else "DIFFERENT") +
          f" ({args.task}{'' if args.peft == 'full' else ' ' + args.peft}, {args.steps} SGD steps" + (f"; files in {work})" if kept else ")"))
    if not kept:
        shutil.rmtree(work)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
