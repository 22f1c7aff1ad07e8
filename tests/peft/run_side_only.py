#!/usr/bin/python3
"""Side-only ("forward free") side tuning equals side-tuning (issue 5).

  run_side_only.py BUILD_DIR [--mode serial|dp|tp|sp|galaxy] [--world W] [--optimizer sgd|adamw]

A side-tuning plan (use_side) dumps the backbone's taps of the train and eval rows
(galaxy-run --dump-taps); a side-only plan (use_side_only) trains from them. From the
same init, with --shuffle, both must give the same losses (rtol 1e-5), side.* and
classifier.* weights and eval logits (atol 1e-5); the side-only plan holds no backbone
encoder weights and leaves the pooler unchanged. With another --mode the side-only plan
and a dumping side-tuning plan run on W ranks (uneven splits) against the serial
side-tuning run (losses rtol 1e-4, weights atol 1e-4), and the W-rank dump must equal
the serial one. PEFT_WORKDIR=DIR keeps the files."""

import sys

import peft_case
import peft_run_util as u
import side_only_common as so


def test():
    args = so.arg_parser().parse_args()
    c = u.Case(args.build, "side-only")
    c.data()
    two = args.world == 2
    # Uneven splits for every mode (tiny case: batch 4, 2 heads, I 128, pad 16; tp needs
    # world 2); galaxyc
    # warns about the lists a mode does not read.
    side = {**peft_case.config("side", args.optimizer),
            "dp_batch_list": [3, 1] if two else [2, 1, 1],
            "tp_num_attention_heads_list": [1, 1] if two else [1, 1, 0],
            "tp_intermediate_size_list": [96, 32] if two else [64, 32, 32],
            "seq_scatter_list": [10, 6] if two else [8, 5, 3]}
    side_cfg = c.config("side", side)
    only_cfg = c.config("side_only", {**side, "use_side_only": True})
    init = c.init(side_cfg, "init.safetensors")
    side_plan = c.compile(side_cfg, "side.plan")
    only_plan = c.compile(only_cfg, "only.plan", args.mode, args.world)

    so.side_tune_and_dump(c, side_cfg, side_plan, init, args.mode, args.world)
    taps = u.load(c.p("train.taps.safetensors"))
    want = ["taps.embeddings"] + [f"taps.layer.{i}" for i in range(side["num_hidden_layers"])]
    if sorted(taps) != sorted(want) or taps["taps.embeddings"].shape != (24, side["pad_size"],
                                                                         side["hidden_size"]):
        raise u.Failed(f"taps file holds {[(k, v.shape) for k, v in taps.items()]}, "
                       f"expected {want} of [24, S, H]")

    so.train_and_compare(c, only_plan, init, args.mode, args.world,
                         backbone=("bert.encoder.", "bert.emb"),
                         trained=("side.", "classifier."),
                         frozen=lambda k: k.startswith("bert.pooler."),
                         evals=("eval logits", u.logits))


if __name__ == "__main__":
    sys.exit(u.main(test))
