// LLaMA's serial graph, as Hugging Face computes it (spec/llama-bart.md):
// pre-norm layers x + attn(rms(x)), h + down(silu(gate(n)) * up(n)); rotary
// positions (rotate_half); grouped-query attention; causal and padding masks;
// no biases unless attention_bias / mlp_bias.
#include "models/llama/LlamaModel.h"

#include <cmath>

#include "galaxy/GalaxyDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "models/graph_builder.h"
#include "models/llama/spec.h"

using namespace mlir;

namespace galaxy {
namespace {

class LlamaBuilder : public GraphBuilder {
public:
  LlamaBuilder(MLIRContext &ctx, const config::GalaxyConfig &c,
               int64_t stepRows)
      : GraphBuilder(ctx, "llama", c.initializer_range), c(c),
        stepRows(stepRows), B(c.batch_size), S(c.pad_size), H(c.hidden_size),
        heads(c.num_attention_heads),
        kvHeads(c.num_key_value_heads ? c.num_key_value_heads : heads),
        hd(H / heads), I(c.intermediate_size), V(c.vocab_size) {}

  OwningOpRef<ModuleOp> build();

private:
  Value rmsNorm(Value x, const std::string &name) {
    Value w = param(name + ".weight", {H}, "ones", "H");
    return dims(b.create<RmsNormOp>(loc, x.getType(), x, w,
                                    b.getF64FloatAttr(c.rms_norm_eps)),
                dimsOf(x));
  }
  Value embedTable() {
    return param("model.embed_tokens.weight", {V, H}, "normal", "V,H");
  }
  Value attention(Value n, Value mask, const std::string &p);
  Value mlp(Value n, const std::string &p);
  Value layer(Value x, Value mask, int64_t i);

  const config::GalaxyConfig &c;
  const int64_t stepRows;
  const int64_t B, S, H, heads, kvHeads, hd, I, V;
};

Value LlamaBuilder::attention(Value n, Value mask, const std::string &p) {
  const bool bias = c.attention_bias;
  // Query heads N (hidden A); KV heads NK (hidden AK). Keys and values index
  // key positions K: under sequence parallelism they are gathered while the
  // queries stay sharded. Rotary angles follow each value's own positions.
  auto heads4 = [&](Value v, int64_t n, StringRef names) {
    return dims(b.create<SplitHeadsOp>(loc, f32({B, n, S, hd}), v), names);
  };
  auto rope = [&](Value v) {
    return dims(b.create<RopeOp>(loc, v.getType(), v,
                                 b.getF64FloatAttr(c.rope_theta),
                                 b.getBoolAttr(false)),
                dimsOf(v));
  };
  Value q = rope(heads4(linear(n, p + "q_proj", H, heads * hd, "H", "A", bias),
                        heads, "B,N,S,D"));
  Value k =
      rope(heads4(linear(n, p + "k_proj", H, kvHeads * hd, "H", "AK", bias),
                  kvHeads, "B,NK,K,D"));
  Value v = heads4(linear(n, p + "v_proj", H, kvHeads * hd, "H", "AK", bias),
                   kvHeads, "B,NK,K,D");
  if (kvHeads != heads) {
    auto repeat = [&](Value x) {
      return dims(b.create<RepeatKvOp>(loc, f32({B, heads, S, hd}), x,
                                       b.getI64IntegerAttr(heads / kvHeads)),
                  "B,N,K,D");
    };
    k = repeat(k);
    v = repeat(v);
  }
  auto scoresT = f32({B, heads, S, S});
  Value scores =
      dims(b.create<MatmulOp>(loc, scoresT, q, k, b.getBoolAttr(false),
                              b.getBoolAttr(true),
                              b.getF64FloatAttr(1.0 / std::sqrt(double(hd)))),
           "B,N,S,K");
  Value probs = dims(b.create<MaskedSoftmaxOp>(loc, scoresT, scores, mask,
                                               b.getBoolAttr(true)),
                     "B,N,S,K");
  probs = dropout(probs, c.attention_dropout);
  Value ctxv =
      dims(b.create<MatmulOp>(loc, f32({B, heads, S, hd}), probs, v,
                              b.getBoolAttr(false), b.getBoolAttr(false),
                              b.getF64FloatAttr(1.0)),
           "B,N,S,D");
  Value merged =
      dims(b.create<MergeHeadsOp>(loc, f32({B, S, heads * hd}), ctxv), "B,S,A");
  return linear(merged, p + "o_proj", heads * hd, H, "A", "H", bias);
}

Value LlamaBuilder::mlp(Value n, const std::string &p) {
  const bool bias = c.mlp_bias;
  Value gate = linear(n, p + "gate_proj", H, I, "H", "I", bias);
  Value up = linear(n, p + "up_proj", H, I, "H", "I", bias);
  Value act = dims(b.create<SiluOp>(loc, gate), "B,S,I");
  Value prod = dims(b.create<MulOp>(loc, act, up), "B,S,I");
  return linear(prod, p + "down_proj", I, H, "I", "H", bias);
}

Value LlamaBuilder::layer(Value x, Value mask, int64_t i) {
  const std::string p = "model.layers." + std::to_string(i) + ".";
  Value n1 = block("con", i, [&]() -> SmallVector<Value> {
    return {rmsNorm(x, p + "input_layernorm")};
  })[0];
  Value att = block("att", i, [&]() -> SmallVector<Value> {
    return {attention(n1, mask, p + "self_attn.")};
  })[0];
  SmallVector<Value> hn = block("con", i, [&]() -> SmallVector<Value> {
    Value h = dims(b.create<AddOp>(loc, x, att), "B,S,H");
    return {h, rmsNorm(h, p + "post_attention_layernorm")};
  });
  Value m = block("mlp", i, [&]() -> SmallVector<Value> {
    return {mlp(hn[1], p + "mlp.")};
  })[0];
  return block("con", i, [&]() -> SmallVector<Value> {
    return {dims(b.create<AddOp>(loc, hn[0], m), "B,S,H")};
  })[0];
}

OwningOpRef<ModuleOp> LlamaBuilder::build() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());
  const bool classify = c.task == "classification";
  std::vector<models::ModelInput> inputs = models::llamaSpec().inputs(c);
  SmallVector<Type> argTypes;
  for (const models::ModelInput &in : inputs)
    argTypes.push_back(in.isInt ? Type(i32(in.shape)) : f32(in.shape));
  SmallVector<Type> resultTypes = {f32({}), classify ? f32({B, c.num_classes})
                                                     : f32({B, S, V})};
  auto fn = b.create<func::FuncOp>(loc, "forward",
                                   b.getFunctionType(argTypes, resultTypes));
  for (auto [i, in] : llvm::enumerate(inputs)) {
    fn.setArgAttr(i, kInputAttr, b.getStringAttr(in.name));
    fn.setArgAttr(i, kDimsAttr, argDimsAttr(b.getContext(), in.dims));
  }
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  auto arg = [&](StringRef name) {
    for (auto [i, in] : llvm::enumerate(inputs))
      if (in.name == name)
        return Value(entry->getArgument(i));
    return Value();
  };
  Value mask = arg("attention_mask"), labels = arg("labels");

  Value h = block("embedding", -1, [&]() -> SmallVector<Value> {
    return {dims(b.create<EmbeddingOp>(loc, f32({B, S, H}), embedTable(),
                                       arg("input_ids"),
                                       b.getI64IntegerAttr(c.pad_token_id)),
                 "B,S,H")};
  })[0];
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    h = layer(h, mask, i);

  SmallVector<Value> head;
  if (classify) {
    // The final norm is elementwise per position: sharded like a CON block.
    Value n = block(
        "norm", -1,
        [&]() -> SmallVector<Value> { return {rmsNorm(h, "model.norm")}; },
        "con")[0];
    // Hugging Face scores the last non-padding token of each row.
    head = block("head", -1, [&]() -> SmallVector<Value> {
      Value last =
          dims(b.create<TakeTokenOp>(loc, f32({B, H}), n, arg("last_index"), 0),
               "B,H");
      Value logits = linear(last, "score", H, c.num_classes, "H", "C", false);
      Value loss = dims(b.create<CrossEntropyOp>(loc, f32({}), logits, labels,
                                                 b.getF64FloatAttr(double(B)),
                                                 IntegerAttr()),
                        "");
      return {loss, logits};
    });
  } else {
    // Every position's logits against the (pre-shifted) next-token labels,
    // divided by the number of targets in the step's whole batch
    // (num_targets): per position, so the head shards by sequence like a CON
    // block and each rank's partial sums add up to the serial mean. A
    // pipeline weights microbatch losses by rows / stepRows (the mean of
    // means BERT needs), so a microbatch program divides by that share too,
    // which makes the weighted sum Σ sum_i / num_targets again.
    head = block(
        "head", -1,
        [&]() -> SmallVector<Value> {
          Value n = rmsNorm(h, "model.norm");
          Value w = c.tie_word_embeddings
                        ? embedTable()
                        : param("lm_head.weight", {V, H}, "normal", "V,H");
          Value logits = dims(b.create<LinearOp>(loc, f32({B, S, V}), n, w,
                                                 Value(), b.getBoolAttr(true)),
                              "B,S,V");
          Value loss =
              dims(b.create<CrossEntropyOp>(
                       loc, f32({}), logits, labels, arg("num_targets"),
                       b.getF64FloatAttr(double(B) / double(stepRows)),
                       IntegerAttr()),
                   "");
          return {loss, logits};
        },
        "con");
  }
  b.create<func::ReturnOp>(loc, ValueRange(head));
  return module;
}

} // namespace

OwningOpRef<ModuleOp> buildLlamaModel(MLIRContext &ctx,
                                      const config::GalaxyConfig &c,
                                      int64_t stepRows) {
  return LlamaBuilder(ctx, c, stepRows).build();
}

} // namespace galaxy
