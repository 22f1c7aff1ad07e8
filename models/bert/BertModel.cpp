//===- BertModel.cpp - BERT for sequence classification -------------------===//
#include "models/bert/BertModel.h"
#include "models/bert/spec.h"
#include "models/graph_builder.h"

#include <cmath>
#include <tuple>

#include "galaxy/GalaxyDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir;

namespace galaxy {
namespace {

class BertBuilder : public GraphBuilder {
public:
  BertBuilder(MLIRContext &ctx, const BertDims &d)
      : GraphBuilder(ctx, "bert", d.initializerRange), d(d) {}

  OwningOpRef<ModuleOp> build();

private:
  Value layerNorm(Value x, const std::string &prefix, int64_t width = 0,
                  StringRef dim = "H") {
    if (!width)
      width = d.hidden;
    Value g = param(prefix + ".weight", {width}, "ones", dim);
    Value beta = param(prefix + ".bias", {width}, "zeros", dim);
    return dims(b.create<LayerNormOp>(loc, x.getType(), x, g, beta,
                                      b.getF64FloatAttr(d.layerNormEps)),
                dimsOf(x));
  }
  Value embeddings(Value ids, Value types);
  // One encoder layer's sizes, names and model-dimension labels. The side
  // network's layers use their own labels (Hs, As, ...) so no tensor-parallel
  // split of the backbone applies to them.
  struct LayerSpec {
    std::string prefix;
    int64_t hidden, inter, heads;
    std::string H, A, N, I;
    bool side;
  };
  LayerSpec backboneLayer(int64_t i) const {
    return {"bert.encoder.layer." + std::to_string(i) + ".",
            d.hidden,
            d.intermediate,
            d.heads,
            "H",
            "A",
            "N",
            "I",
            false};
  }
  LayerSpec sideLayer(int64_t i) const {
    int64_t f = d.sideReduction;
    return {"side.layer." + std::to_string(i) + ".",
            d.hidden / f,
            d.intermediate / f,
            d.heads,
            "Hs",
            "As",
            "Ns",
            "Is",
            true};
  }
  Value encoderLayer(Value x, Value mask, int64_t i, const LayerSpec &spec);

  const BertDims &d;
};

Value BertBuilder::embeddings(Value ids, Value types) {
  return block("embedding", -1, [&]() -> SmallVector<Value> {
    const std::string p = "bert.embeddings.";
    auto hs = f32({d.batch, d.seq, d.hidden});
    Value word = dims(
        b.create<EmbeddingOp>(loc, hs,
                              param(p + "word_embeddings.weight",
                                    {d.vocabSize, d.hidden}, "normal", "V,H"),
                              ids, b.getI64IntegerAttr(d.padId)),
        "B,S,H");
    Value pos_ids =
        dims(b.create<IotaOp>(loc, i32({d.batch, d.seq}), 1, 0), "B,S");
    Value pos = dims(b.create<EmbeddingOp>(
                         loc, hs,
                         param(p + "position_embeddings.weight",
                               {d.maxPositions, d.hidden}, "normal", "P,H"),
                         pos_ids, b.getI64IntegerAttr(-1)),
                     "B,S,H");
    // TV: the type vocabulary (T names an encoder-decoder's target
    // positions, which sequence parallelism splits).
    Value type = dims(
        b.create<EmbeddingOp>(loc, hs,
                              param(p + "token_type_embeddings.weight",
                                    {d.typeVocab, d.hidden}, "normal", "TV,H"),
                              types, b.getI64IntegerAttr(-1)),
        "B,S,H");
    Value sum =
        dims(b.create<AddOp>(
                 loc, dims(b.create<AddOp>(loc, word, pos), "B,S,H"), type),
             "B,S,H");
    return {dropout(layerNorm(sum, p + "LayerNorm"), d.hiddenDropout)};
  })[0];
}

Value BertBuilder::encoderLayer(Value x, Value mask, int64_t i,
                                const LayerSpec &L) {
  const std::string &p = L.prefix;
  int64_t hd = L.hidden / L.heads;
  auto names = [](std::initializer_list<StringRef> parts) {
    return llvm::join(parts, ",");
  };
  // Side layers are one "side" region each; backbone layers are
  // att/con/mlp/con.
  auto kind = [&](StringRef k) { return L.side ? StringRef("side") : k; };
  auto xT = f32({d.batch, d.seq, L.hidden});
  Value att = block(kind("att"), i, [&]() -> SmallVector<Value> {
    // Keys and values index key positions (K): under sequence parallelism the
    // queries stay sharded while K and V are gathered.
    auto heads = [&](Value v, StringRef seq) {
      return dims(
          b.create<SplitHeadsOp>(loc, f32({d.batch, L.heads, d.seq, hd}), v),
          names({"B", L.N, seq, "D"}));
    };
    Value q = heads(
        linear(x, p + "attention.self.query", L.hidden, L.hidden, L.H, L.A),
        "S");
    Value k = heads(
        linear(x, p + "attention.self.key", L.hidden, L.hidden, L.H, L.A), "K");
    Value v = heads(
        linear(x, p + "attention.self.value", L.hidden, L.hidden, L.H, L.A),
        "K");
    auto scoresT = f32({d.batch, L.heads, d.seq, d.seq});
    Value scores =
        dims(b.create<MatmulOp>(loc, scoresT, q, k, b.getBoolAttr(false),
                                b.getBoolAttr(true),
                                b.getF64FloatAttr(1.0 / std::sqrt(double(hd)))),
             names({"B", L.N, "S", "K"}));
    Value probs = dims(b.create<MaskedSoftmaxOp>(loc, scoresT, scores, mask,
                                                 b.getBoolAttr(false)),
                       names({"B", L.N, "S", "K"}));
    probs = dropout(probs, d.attentionDropout);
    Value ctxv =
        dims(b.create<MatmulOp>(loc, f32({d.batch, L.heads, d.seq, hd}), probs,
                                v, b.getBoolAttr(false), b.getBoolAttr(false),
                                b.getF64FloatAttr(1.0)),
             names({"B", L.N, "S", "D"}));
    Value merged =
        dims(b.create<MergeHeadsOp>(loc, xT, ctxv), names({"B", "S", L.A}));
    return {linear(merged, p + "attention.output.dense", L.hidden, L.hidden,
                   L.A, L.H)};
  })[0];
  Value h1 = block(kind("con"), i, [&]() -> SmallVector<Value> {
    Value r = dims(b.create<AddOp>(loc, dropout(att, d.hiddenDropout), x),
                   names({"B", "S", L.H}));
    return {layerNorm(r, p + "attention.output.LayerNorm", L.hidden, L.H)};
  })[0];
  Value mlp = block(kind("mlp"), i, [&]() -> SmallVector<Value> {
    Value up =
        linear(h1, p + "intermediate.dense", L.hidden, L.inter, L.H, L.I);
    Value act = dims(
        b.create<GeluOp>(loc, up, d.hiddenAct == "gelu_new" ? "tanh" : "none"),
        names({"B", "S", L.I}));
    return {linear(act, p + "output.dense", L.inter, L.hidden, L.I, L.H)};
  })[0];
  return block(kind("con"), i, [&]() -> SmallVector<Value> {
    Value r = dims(b.create<AddOp>(loc, dropout(mlp, d.hiddenDropout), h1),
                   names({"B", "S", L.H}));
    return {layerNorm(r, p + "output.LayerNorm", L.hidden, L.H)};
  })[0];
}

OwningOpRef<ModuleOp> BertBuilder::build() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  auto hT = f32({d.batch, d.seq, d.hidden});
  // The inputs bertSpec() declares for these sizes: (name, type, dims).
  config::GalaxyConfig c;
  c.batch_size = d.batch;
  c.pad_size = d.seq;
  c.hidden_size = d.hidden;
  c.num_hidden_layers = d.layers;
  c.use_side_only = d.sideOnly;
  SmallVector<Type> resultTypes = {f32({}), f32({d.batch, d.numClasses})};
  if (d.exposeTaps)
    resultTypes.append(d.layers + 1, hT);
  Inputs arg = beginForward(*module, models::bertSpec().inputs(c), resultTypes);
  Value mask = arg("attention_mask"), labels = arg("labels");

  // Side-only keeps the dropout op ids side-tuning gives the side network and
  // the head, so both draw the same masks.
  const int64_t layerDropouts =
      (d.attentionDropout != 0.0) + 2 * (d.hiddenDropout != 0.0);
  Value h;
  if (d.sideOnly) {
    h = arg("tap.embeddings");
    nextOpId += d.hiddenDropout != 0.0;
  } else {
    h = embeddings(arg("input_ids"), arg("token_type_ids"));
  }
  SmallVector<Value> taps = {h};
  // Side-tuning: a narrow network fed by a downsampled tap of every backbone
  // layer; only it (and the classifier) trains, so backward stays out of the
  // backbone.
  const int64_t f = d.sideReduction, hs = f ? d.hidden / f : 0;
  Value side;
  auto down = [&](Value x, const std::string &name) {
    return linear(x, name, d.hidden, hs, "H", "Hs");
  };
  if (f)
    side = block("side", -1, [&]() -> SmallVector<Value> {
      return {down(h, "side.first_downsample")};
    })[0];
  for (int64_t i = 0; i < d.layers; ++i) {
    if (d.sideOnly) {
      h = arg("tap.layer." + std::to_string(i));
      nextOpId += layerDropouts;
    } else {
      h = encoderLayer(h, mask, i, backboneLayer(i));
    }
    taps.push_back(h);
    if (f) {
      Value tap = block("side", i, [&]() -> SmallVector<Value> {
        return {dims(
            b.create<AddOp>(loc, side,
                            down(h, "side.downsample." + std::to_string(i))),
            "B,S,Hs")};
      })[0];
      side = encoderLayer(tap, mask, i, sideLayer(i));
    }
  }
  if (f)
    h = block("side", -1, [&]() -> SmallVector<Value> {
      Value up = linear(side, "side.upsample", hs, d.hidden, "Hs", "H");
      return {dims(b.create<AddOp>(loc, h, up), "B,S,H")};
    })[0];
  Value pooled = block("pooler", -1, [&]() -> SmallVector<Value> {
    Value first =
        dims(b.create<TakeTokenOp>(loc, f32({d.batch, d.hidden}), h, 0), "B,H");
    return {dims(b.create<TanhOp>(loc, linear(first, "bert.pooler.dense",
                                              d.hidden, d.hidden, "H", "H")),
                 "B,H")};
  })[0];
  auto head = block("head", -1, [&]() -> SmallVector<Value> {
    Value logits = linear(dropout(pooled, d.hiddenDropout), "classifier",
                          d.hidden, d.numClasses, "H", "C");
    return {rowLoss(logits, labels, d.batch), logits};
  });
  if (d.exposeTaps)
    head.append(taps.begin(), taps.end());
  b.create<func::ReturnOp>(loc, ValueRange(head));
  return module;
}

} // namespace

OwningOpRef<ModuleOp> buildBert(MLIRContext &ctx, const BertDims &dims) {
  return BertBuilder(ctx, dims).build();
}

BertDims bertDims(const config::GalaxyConfig &c) {
  BertDims d;
  d.vocabSize = c.vocab_size;
  d.hidden = c.hidden_size;
  d.layers = c.num_hidden_layers;
  d.heads = c.num_attention_heads;
  d.intermediate = c.intermediate_size;
  d.maxPositions = c.max_position_embeddings;
  d.typeVocab = c.type_vocab_size;
  d.numClasses = c.num_classes;
  d.batch = c.batch_size;
  d.seq = c.pad_size;
  d.padId = c.pad_token_id;
  d.layerNormEps = c.layer_norm_eps;
  d.hiddenDropout = c.hidden_dropout_prob;
  d.attentionDropout = c.attention_probs_dropout_prob;
  d.initializerRange = c.initializer_range;
  d.hiddenAct =
      c.hidden_act == config::Activation::kGeluNew ? "gelu_new" : "gelu";
  if (c.use_side || c.use_side_only)
    d.sideReduction = c.side_reduction_factor;
  // Side-only: the backbone's taps are program inputs; side-tuning plans
  // return them from eval_step so galaxy-run --dump-taps can record them.
  d.sideOnly = c.use_side_only;
  d.exposeTaps = c.use_side && !c.use_side_only;
  return d;
}

OwningOpRef<ModuleOp> buildBertModel(MLIRContext &ctx,
                                     const config::GalaxyConfig &c,
                                     int64_t /*stepRows*/) {
  return buildBert(ctx, bertDims(c));
}

} // namespace galaxy
