// BART's serial graph, as Hugging Face computes it (spec/llama-bart.md):
// token embeddings from the shared table (times sqrt(d_model) when
// scale_embedding) plus learned positions looked up at position + 2, then
// layernorm_embedding; post-LN layers x = LN(x + sublayer(x)); q scaled by
// head_dim^-0.5; biases everywhere; the decoder's self-attention is causal,
// its cross-attention reads the encoder output under the source padding mask.
#include "models/bart/BartModel.h"

#include <cmath>

#include "galaxy/GalaxyDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "models/bart/bart_parts.h"
#include "models/bart/spec.h"

using namespace mlir;

namespace galaxy {
namespace {

// Hugging Face's BartLearnedPositionalEmbedding: row = position + 2 (a
// leftover of fairseq's padding offset).
constexpr int64_t kPositionOffset = 2;

} // namespace

BartParts::BartParts(MLIRContext &ctx, const config::GalaxyConfig &c)
    : GraphBuilder(ctx, "bart", c.initializer_range), c(c), B(c.batch_size),
      S(c.pad_size), T(models::bartTargetLength(c)), H(c.hidden_size),
      V(c.vocab_size) {}

Value BartParts::layerNorm(Value x, const std::string &name, const Width &w) {
  Value g = param(name + ".weight", {w.h}, "ones", w.H);
  Value beta = param(name + ".bias", {w.h}, "zeros", w.H);
  return dims(b.create<LayerNormOp>(loc, x.getType(), x, g, beta,
                                    b.getF64FloatAttr(c.layer_norm_eps)),
              dimsOf(x));
}

Value BartParts::embed(Value ids, int64_t len, StringRef seq,
                       const std::string &prefix, Value positionRows) {
  const std::string bsh = ("B," + seq + ",H").str();
  auto hT = f32({B, len, H});
  Value tok = dims(b.create<EmbeddingOp>(loc, hT, shared(), ids,
                                         b.getI64IntegerAttr(c.pad_token_id)),
                   bsh);
  if (c.scale_embedding)
    tok = dims(
        b.create<ScaleOp>(loc, tok, b.getF64FloatAttr(std::sqrt(double(H)))),
        bsh);
  Value posIds =
      positionRows
          ? positionRows
          : dims(b.create<IotaOp>(loc, i32({B, len}), 1, kPositionOffset),
                 ("B," + seq).str());
  Value pos = dims(b.create<EmbeddingOp>(
                       loc, hT,
                       param(prefix + ".embed_positions.weight",
                             {c.max_position_embeddings + kPositionOffset, H},
                             "normal", "P,H"),
                       posIds, b.getI64IntegerAttr(-1)),
                   bsh);
  Value sum = dims(b.create<AddOp>(loc, tok, pos), bsh);
  return dropout(layerNorm(sum, prefix + ".layernorm_embedding"),
                 c.hidden_dropout_prob);
}

Value BartParts::project(Value x, const std::string &name, int64_t heads,
                         int64_t len, StringRef seq, const Width &w) {
  return dims(b.create<SplitHeadsOp>(loc, f32({B, heads, len, w.h / heads}),
                                     linear(x, name, w.h, w.h, w.H, w.A)),
              "B," + w.N + "," + seq.str() + ",D");
}

Value BartParts::attend(Value q, Value k, Value v, Value mask, bool causal,
                        int64_t heads, int64_t qLen, int64_t kLen,
                        StringRef qSeq, StringRef kSeq, const std::string &p,
                        const Width &w) {
  const int64_t hw = w.h, hd = hw / heads;
  const std::string bn = "B," + w.N + ",";
  const std::string sd = bn + qSeq.str() + "," + kSeq.str();
  auto scoresT = f32({B, heads, qLen, kLen});
  // (q·scaling)·kᵀ = scaling·(q·kᵀ): Hugging Face scales q after its bias.
  Value scores =
      dims(b.create<MatmulOp>(loc, scoresT, q, k, b.getBoolAttr(false),
                              b.getBoolAttr(true),
                              b.getF64FloatAttr(1.0 / std::sqrt(double(hd)))),
           sd);
  Value probs = dims(b.create<MaskedSoftmaxOp>(loc, scoresT, scores, mask,
                                               b.getBoolAttr(causal)),
                     sd);
  probs = dropout(probs, c.attention_dropout);
  Value ctxv =
      dims(b.create<MatmulOp>(loc, f32({B, heads, qLen, hd}), probs, v,
                              b.getBoolAttr(false), b.getBoolAttr(false),
                              b.getF64FloatAttr(1.0)),
           bn + qSeq.str() + ",D");
  Value merged = dims(b.create<MergeHeadsOp>(loc, f32({B, qLen, hw}), ctxv),
                      "B," + qSeq.str() + "," + w.A);
  return linear(merged, p + "out_proj", hw, hw, w.A, w.H);
}

Value BartParts::ffn(Value x, int64_t inter, StringRef seq,
                     const std::string &p, const Width &w) {
  Value up = linear(x, p + "fc1", w.h, inter, w.H, w.I);
  const std::string names = "B," + seq.str() + "," + w.I;
  Value act;
  switch (c.hidden_act) {
  case config::Activation::kRelu:
    act = b.create<ReluOp>(loc, up);
    break;
  case config::Activation::kGeluNew:
    act = b.create<GeluOp>(loc, up, "tanh");
    break;
  default:
    act = b.create<GeluOp>(loc, up, "none");
  }
  act = dropout(dims(act, names), c.activation_dropout);
  return linear(act, p + "fc2", inter, w.h, w.I, w.H);
}

Value BartParts::encoderLayer(Value x, Value mask, int64_t i) {
  const std::string p = "model.encoder.layers." + std::to_string(i) + ".";
  Value att = block("att", i, [&]() -> SmallVector<Value> {
    return {attention(x, x, mask, false, c.num_attention_heads, S, S, "S", "K",
                      p + "self_attn.")};
  })[0];
  Value h = block("con", i, [&]() -> SmallVector<Value> {
    return {residualNorm(x, att, p + "self_attn_layer_norm")};
  })[0];
  Value m = block("mlp", i, [&]() -> SmallVector<Value> {
    return {ffn(h, c.intermediate_size, "S", p)};
  })[0];
  return block("con", i, [&]() -> SmallVector<Value> {
    return {residualNorm(h, m, p + "final_layer_norm")};
  })[0];
}

Value BartParts::lmLogits(Value d, ArrayRef<int64_t> shape, StringRef names) {
  // Hugging Face's shape [1, V] (U: a unit dimension), so checkpoints move
  // both ways unchanged.
  Value bias = dims(
      b.create<ParamOp>(loc, f32({1, V}), b.getStringAttr("final_logits_bias"),
                        b.getBoolAttr(false), b.getStringAttr("zeros"),
                        b.getF64FloatAttr(0.0)),
      "U,V");
  return dims(b.create<LinearOp>(loc, f32(shape), d, shared(), bias,
                                 b.getBoolAttr(true)),
              names);
}

namespace {

class BartBuilder : public BartParts {
public:
  BartBuilder(MLIRContext &ctx, const config::GalaxyConfig &c, int64_t stepRows)
      : BartParts(ctx, c), stepRows(stepRows) {}

  OwningOpRef<ModuleOp> build();

private:
  // The decoder layer of training: causal self-attention over the target,
  // cross-attention over the encoder output under the source padding mask.
  Value decoderLayer(Value x, Value selfMask, Value enc, Value encMask,
                     int64_t i) {
    const int64_t heads = c.decoder_attention_heads;
    return BartParts::decoderLayer(
        x, i,
        [&](Value n, const std::string &p) -> SmallVector<Value> {
          return {attention(n, n, selfMask, true, heads, T, T, "T", "TK", p)};
        },
        [&](Value h, const std::string &p) -> SmallVector<Value> {
          return {attention(h, enc, encMask, false, heads, T, S, "T", "K", p)};
        });
  }
  // Side-tuning (use_side): a narrow copy of each layer, one "side" block
  // each, fed by a downsampled tap of the backbone layer beside it; the
  // decoder's side layers cross-attend to the encoder's side network.
  Value sideEncoderLayer(Value x, Value mask, int64_t i);
  Value sideDecoderLayer(Value x, Value selfMask, Value enc, Value encMask,
                         int64_t i);
  Value sideDown(Value h, const std::string &name) {
    return linear(h, name, H, sideWidth().h, "H", "Hs");
  }

  const int64_t stepRows;
};

Value BartBuilder::sideEncoderLayer(Value x, Value mask, int64_t i) {
  const Width w = sideWidth();
  const std::string p = "side.encoder.layers." + std::to_string(i) + ".";
  return block("side", i, [&]() -> SmallVector<Value> {
    Value att = attention(x, x, mask, false, c.num_attention_heads, S, S, "S",
                          "K", p + "self_attn.", w);
    Value h = residualNorm(x, att, p + "self_attn_layer_norm", w);
    Value m = ffn(h, c.intermediate_size / c.side_reduction_factor, "S", p, w);
    return {residualNorm(h, m, p + "final_layer_norm", w)};
  })[0];
}

Value BartBuilder::sideDecoderLayer(Value x, Value selfMask, Value enc,
                                    Value encMask, int64_t i) {
  const Width w = sideWidth();
  const int64_t heads = c.decoder_attention_heads;
  const std::string p = "side.decoder.layers." + std::to_string(i) + ".";
  return block("side", c.num_hidden_layers + i, [&]() -> SmallVector<Value> {
    Value att = attention(x, x, selfMask, true, heads, T, T, "T", "TK",
                          p + "self_attn.", w);
    Value h = residualNorm(x, att, p + "self_attn_layer_norm", w);
    Value cross = attention(h, enc, encMask, false, heads, T, S, "T", "K",
                            p + "encoder_attn.", w);
    Value h2 = residualNorm(h, cross, p + "encoder_attn_layer_norm", w);
    Value m = ffn(h2, c.decoder_ffn_dim / c.side_reduction_factor, "T", p, w);
    return {residualNorm(h2, m, p + "final_layer_norm", w)};
  })[0];
}

OwningOpRef<ModuleOp> BartBuilder::build() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  const bool classify = c.task == "classification";
  // Side-tuning (use_side): each side state starts from a downsampled tap of
  // the embeddings and adds one of every backbone layer's output; only the
  // side network (and a classification head) trains, so backward stays out
  // of the backbone. Side-only (use_side_only) has no backbone: the taps are
  // program inputs; side-tuning's eval_step returns them after (loss,
  // logits), named, so galaxy-run --dump-taps can record them.
  const bool sideOnly = c.use_side_only, side = c.use_side || sideOnly;
  const std::vector<models::ModelInput> tapSpecs = models::bartTaps(c);
  SmallVector<Type> results = {f32({}), classify ? f32({B, c.num_classes})
                                                 : f32({B, T, V})};
  const bool exposeTaps = side && !sideOnly;
  if (exposeTaps)
    for (const models::ModelInput &t : tapSpecs)
      results.push_back(f32(t.shape));
  Inputs arg = beginForward(*module, models::bartSpec().inputs(c), results);
  if (exposeTaps) {
    auto fn = cast<func::FuncOp>(arg.entry->getParentOp());
    for (auto [i, t] : llvm::enumerate(tapSpecs))
      fn.setResultAttr(2 + i, kOutputAttr, b.getStringAttr(t.name));
  }
  Value encMask = arg("attention_mask"), labels = arg("labels");
  const Value decMask = arg("decoder_attention_mask");
  SmallVector<Value> taps;
  // A piece of the backbone, or in side-only its tap: the piece is still
  // built, into a block that is then dropped, so every later dropout takes
  // the op id (and so the mask) it takes in side-tuning.
  auto backbone = [&](const std::string &tap, auto piece) -> Value {
    Value out;
    if (!sideOnly) {
      out = piece();
    } else {
      Block scratch;
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(&scratch);
      piece(); // its ops go with `scratch`
      out = arg(tap);
    }
    taps.push_back(out);
    return out;
  };
  // The ids a dropped embedding reads in side-only (which has none).
  auto ids = [&](StringRef name, int64_t len, StringRef seq) -> Value {
    if (Value v = arg(name))
      return v;
    return dims(b.create<IotaOp>(loc, i32({B, len}), 1, 0), ("B," + seq).str());
  };

  Value h = backbone("tap.encoder.embeddings", [&] {
    return block("embedding", -1, [&]() -> SmallVector<Value> {
      return {embed(ids("input_ids", S, "S"), S, "S", "model.encoder")};
    })[0];
  });
  auto sideTap = [&](Value state, Value tap, const std::string &name,
                     int64_t layer) {
    return block("side", layer, [&]() -> SmallVector<Value> {
      Value down = sideDown(tap, name);
      if (!state)
        return {down};
      return {dims(b.create<AddOp>(loc, state, down), dimsOf(state))};
    })[0];
  };
  Value sEnc;
  if (side)
    sEnc = sideTap({}, h, "side.encoder.first_downsample", -1);
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    h = backbone("tap.encoder.layer." + std::to_string(i),
                 [&] { return encoderLayer(h, encMask, i); });
    if (side)
      sEnc = sideEncoderLayer(
          sideTap(sEnc, h, "side.encoder.downsample." + std::to_string(i), i),
          encMask, i);
  }
  const Value enc = h;

  Value d = backbone("tap.decoder.embeddings", [&] {
    return block("embedding", -1, [&]() -> SmallVector<Value> {
      return {embed(ids("decoder_input_ids", T, "T"), T, "T", "model.decoder")};
    })[0];
  });
  Value sDec;
  if (side)
    sDec = sideTap({}, d, "side.decoder.first_downsample", -1);
  for (int64_t i = 0; i < c.decoder_layers; ++i) {
    d = backbone("tap.decoder.layer." + std::to_string(i),
                 [&] { return decoderLayer(d, decMask, enc, encMask, i); });
    if (side) {
      const int64_t L = c.num_hidden_layers + i;
      sDec = sideDecoderLayer(
          sideTap(sDec, d, "side.decoder.downsample." + std::to_string(i), L),
          decMask, sEnc, encMask, i);
    }
  }
  if (side)
    d = block("side", -1, [&]() -> SmallVector<Value> {
      Value up =
          linear(sDec, "side.decoder.upsample", sideWidth().h, H, "Hs", "H");
      return {dims(b.create<AddOp>(loc, d, up), dimsOf(d))};
    })[0];

  SmallVector<Value> head;
  if (classify) {
    // Hugging Face's BartClassificationHead on the decoder state at each
    // row's last </s> (eos_index, from the data).
    head = block("head", -1, [&]() -> SmallVector<Value> {
      Value eos =
          dims(b.create<TakeTokenOp>(loc, f32({B, H}), d, arg("eos_index"), 0),
               "B,H");
      Value dense = linear(dropout(eos, c.classifier_dropout),
                           "classification_head.dense", H, H, "H", "H");
      Value act = dims(b.create<TanhOp>(loc, dense), "B,H");
      Value logits =
          linear(dropout(act, c.classifier_dropout),
                 "classification_head.out_proj", H, c.num_classes, "H", "C");
      return {rowLoss(logits, labels, B), logits};
    });
  } else {
    // lm_head (the shared table) plus final_logits_bias, a saved buffer that
    // never trains; the token-level mean over the step's labels as LLaMA's
    // causal LM (count = num_targets, a microbatch's share B / stepRows).
    head = block(
        "head", -1,
        [&]() -> SmallVector<Value> {
          Value logits = lmLogits(d, {B, T, V}, "B,T,V");
          return {tokenLoss(logits, labels, arg("num_targets"), B, stepRows),
                  logits};
        },
        "con");
  }
  if (exposeTaps)
    head.append(taps.begin(), taps.end());
  b.create<func::ReturnOp>(loc, ValueRange(head));
  return module;
}

} // namespace

OwningOpRef<ModuleOp> buildBartModel(MLIRContext &ctx,
                                     const config::GalaxyConfig &c,
                                     int64_t stepRows) {
  return BartBuilder(ctx, c, stepRows).build();
}

} // namespace galaxy
