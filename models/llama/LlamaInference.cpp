#include "models/llama/LlamaInference.h"

#include <cmath>

#include "galaxy/GalaxyDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "models/graph_builder.h"

using namespace mlir;

namespace galaxy {
namespace {

class LlamaInferenceBuilder : public GraphBuilder {
public:
  LlamaInferenceBuilder(MLIRContext &ctx, const config::GalaxyConfig &c)
      : GraphBuilder(ctx, "llama", c.initializer_range), c(c), B(c.batch_size),
        T(c.pad_size), H(c.hidden_size), heads(c.num_attention_heads),
        kvHeads(c.num_key_value_heads ? c.num_key_value_heads : heads),
        hd(H / heads), I(c.intermediate_size), V(c.vocab_size),
        L(c.num_hidden_layers) {}

  void build(ModuleOp module);

private:
  struct Fn {
    func::FuncOp op;
    Block *entry = nullptr;
    Value arg(unsigned i) { return entry->getArgument(i); }
  };
  // A function with named inputs and outputs (galaxy.input / galaxy.output).
  Fn function(StringRef name, ArrayRef<std::pair<std::string, Type>> inputs,
              ArrayRef<std::pair<std::string, Type>> outputs);

  Value rmsNorm(Value x, const std::string &name) {
    Value w = param(name + ".weight", {H}, "ones", "H");
    return b.create<RmsNormOp>(loc, x.getType(), x, w,
                               b.getF64FloatAttr(c.rms_norm_eps));
  }
  Value rope(Value v) {
    return b.create<RopeOp>(loc, v.getType(), v,
                            b.getF64FloatAttr(c.rope_theta),
                            b.getBoolAttr(false));
  }
  // Linear(in -> out) named `prefix` on x's last axis. The values carry no
  // galaxy.dims: nothing partitions these functions yet.
  Value lin(Value x, const std::string &prefix, int64_t in, int64_t out,
            bool bias) {
    Value w = param(prefix + ".weight", {out, in}, "normal", "O,I");
    Value bv = bias ? param(prefix + ".bias", {out}, "zeros", "O") : Value();
    SmallVector<int64_t> ys(cast<RankedTensorType>(x.getType()).getShape());
    ys.back() = out;
    return b.create<LinearOp>(loc, f32(ys), x, w, bv, b.getBoolAttr(true));
  }
  Value proj(Value x, const std::string &name, int64_t in, int64_t out,
             bool bias) {
    return lin(x, name, in, out, bias);
  }
  Value heads4(Value v, int64_t n, int64_t s) {
    return b.create<SplitHeadsOp>(loc, f32({B, n, s, hd}), v);
  }
  Value matmul(Value a, Value x, ArrayRef<int64_t> shape, bool ta, bool tb,
               double alpha = 1.0) {
    return b.create<MatmulOp>(loc, f32(shape), a, x, b.getBoolAttr(ta),
                              b.getBoolAttr(tb), b.getF64FloatAttr(alpha));
  }
  Value repeat(Value x) {
    if (kvHeads == heads)
      return x;
    return b.create<RepeatKvOp>(loc, f32({B, heads, T, hd}), x,
                                b.getI64IntegerAttr(heads / kvHeads));
  }
  // softmax(q·kᵀ/√d + mask)·v over the T cache slots, merged and projected.
  Value attend(Value q, Value k, Value v, Value mask, bool causal, int64_t s,
               const std::string &p) {
    Value scores = matmul(q, repeat(k), {B, heads, s, T}, false, true,
                          1.0 / std::sqrt(double(hd)));
    Value probs = b.create<MaskedSoftmaxOp>(loc, scores.getType(), scores, mask,
                                            b.getBoolAttr(causal));
    Value ctxv = matmul(probs, repeat(v), {B, heads, s, hd}, false, false);
    Value merged = b.create<MergeHeadsOp>(loc, f32({B, s, heads * hd}), ctxv);
    return lin(merged, p + "o_proj", heads * hd, H, c.attention_bias);
  }
  // The residual MLP half of layer `p` on h (its attention already added).
  Value mlpHalf(Value h, const std::string &p) {
    Value n = rmsNorm(h, p + "post_attention_layernorm");
    const std::string m = p + "mlp.";
    Value gate = lin(n, m + "gate_proj", H, I, c.mlp_bias);
    Value up = lin(n, m + "up_proj", H, I, c.mlp_bias);
    Value act = b.create<SiluOp>(loc, gate);
    Value prod = b.create<MulOp>(loc, act, up);
    return b.create<AddOp>(loc, h,
                           lin(prod, m + "down_proj", I, H, c.mlp_bias));
  }
  // The final norm and LM head of one position per row ([B, s, H] -> [B, V]).
  Value head(Value h, Value lastIndex) {
    Value n = rmsNorm(h, "model.norm");
    Value last = lastIndex
                     ? b.create<TakeTokenOp>(loc, f32({B, H}), n, lastIndex, 0)
                     : b.create<TakeTokenOp>(loc, f32({B, H}), n, 0);
    Value w = c.tie_word_embeddings
                  ? embedTable()
                  : param("lm_head.weight", {V, H}, "normal", "V,H");
    return b.create<LinearOp>(loc, f32({B, V}), last, w, Value(),
                              b.getBoolAttr(true));
  }
  Value embedTable() {
    return param("model.embed_tokens.weight", {V, H}, "normal", "V,H");
  }
  Value embed(Value ids, int64_t s) {
    return b.create<EmbeddingOp>(loc, f32({B, s, H}), embedTable(), ids,
                                 b.getI64IntegerAttr(c.pad_token_id));
  }
  std::string layerPrefix(int64_t i) {
    return "model.layers." + std::to_string(i) + ".";
  }
  void prefill();
  void decode();

  const config::GalaxyConfig &c;
  const int64_t B, T, H, heads, kvHeads, hd, I, V, L;
};

LlamaInferenceBuilder::Fn LlamaInferenceBuilder::function(
    StringRef name, ArrayRef<std::pair<std::string, Type>> inputs,
    ArrayRef<std::pair<std::string, Type>> outputs) {
  SmallVector<Type> ins, outs;
  for (const auto &in : inputs)
    ins.push_back(in.second);
  for (const auto &out : outputs)
    outs.push_back(out.second);
  Fn fn;
  fn.op = b.create<func::FuncOp>(loc, name, b.getFunctionType(ins, outs));
  for (auto [i, in] : llvm::enumerate(inputs))
    fn.op.setArgAttr(i, kInputAttr, b.getStringAttr(in.first));
  for (auto [i, out] : llvm::enumerate(outputs))
    fn.op.setResultAttr(i, kOutputAttr, b.getStringAttr(out.first));
  fn.entry = fn.op.addEntryBlock();
  return fn;
}

void LlamaInferenceBuilder::prefill() {
  std::vector<std::pair<std::string, Type>> outputs = {{"logits", f32({B, V})}};
  for (int64_t i = 0; i < L; ++i) {
    outputs.push_back(
        {"cache.k." + std::to_string(i), f32({B, kvHeads, T, hd})});
    outputs.push_back(
        {"cache.v." + std::to_string(i), f32({B, kvHeads, T, hd})});
  }
  Fn fn = function("prefill",
                   {{"input_ids", i32({B, T})},
                    {"attention_mask", f32({B, T})},
                    {"last_index", i32({B})}},
                   outputs);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(fn.entry);
  Value mask = fn.arg(1);
  Value h = embed(fn.arg(0), T);
  SmallVector<Value> results = {Value()};
  for (int64_t i = 0; i < L; ++i) {
    const std::string p = layerPrefix(i), a = p + "self_attn.";
    Value n = rmsNorm(h, p + "input_layernorm");
    Value q = rope(heads4(
        proj(n, a + "q_proj", H, heads * hd, c.attention_bias), heads, T));
    Value k = rope(heads4(
        proj(n, a + "k_proj", H, kvHeads * hd, c.attention_bias), kvHeads, T));
    Value v = heads4(proj(n, a + "v_proj", H, kvHeads * hd, c.attention_bias),
                     kvHeads, T);
    results.push_back(k);
    results.push_back(v);
    h = mlpHalf(b.create<AddOp>(loc, h, attend(q, k, v, mask, true, T, a)), p);
  }
  results[0] = head(h, fn.arg(2));
  b.create<func::ReturnOp>(loc, results);
}

void LlamaInferenceBuilder::decode() {
  std::vector<std::pair<std::string, Type>> inputs = {
      {"input_ids", i32({B, 1})},
      {"attention_mask", f32({B, T})},
      {"slot_q", f32({B, heads, T, 1})},
      {"slot_kv", f32({B, kvHeads, T, 1})}};
  std::vector<std::pair<std::string, Type>> outputs = {{"logits", f32({B, V})}};
  for (int64_t i = 0; i < L; ++i)
    for (const char *kv : {"k", "v"}) {
      const std::string name =
          std::string("cache.") + kv + "." + std::to_string(i);
      inputs.push_back({name, f32({B, kvHeads, T, hd})});
      outputs.push_back({name, f32({B, kvHeads, T, hd})});
    }
  Fn fn = function("decode", inputs, outputs);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(fn.entry);
  Value mask = fn.arg(1), slotQ = fn.arg(2), slotKv = fn.arg(3);
  Value h = embed(fn.arg(0), 1);
  SmallVector<Value> results = {Value()};
  for (int64_t i = 0; i < L; ++i) {
    const std::string p = layerPrefix(i), a = p + "self_attn.";
    Value cacheK = fn.arg(4 + 2 * i), cacheV = fn.arg(5 + 2 * i);
    Value n = rmsNorm(h, p + "input_layernorm");
    Value q1 = heads4(proj(n, a + "q_proj", H, heads * hd, c.attention_bias),
                      heads, 1);
    Value k1 = heads4(proj(n, a + "k_proj", H, kvHeads * hd, c.attention_bias),
                      kvHeads, 1);
    Value v1 = heads4(proj(n, a + "v_proj", H, kvHeads * hd, c.attention_bias),
                      kvHeads, 1);
    // Placed at the row's slot ([B, n, T, 1] · [B, n, 1, D]), rotated there.
    Value qT = rope(matmul(slotQ, q1, {B, heads, T, hd}, false, false));
    Value q = matmul(slotQ, qT, {B, heads, 1, hd}, true, false);
    Value k = b.create<AddOp>(
        loc, cacheK,
        rope(matmul(slotKv, k1, {B, kvHeads, T, hd}, false, false)));
    Value v = b.create<AddOp>(
        loc, cacheV, matmul(slotKv, v1, {B, kvHeads, T, hd}, false, false));
    results.push_back(k);
    results.push_back(v);
    h = mlpHalf(b.create<AddOp>(loc, h, attend(q, k, v, mask, false, 1, a)), p);
  }
  results[0] = head(h, Value());
  b.create<func::ReturnOp>(loc, results);
}

void LlamaInferenceBuilder::build(ModuleOp module) {
  b.setInsertionPointToEnd(module.getBody());
  prefill();
  decode();
}

} // namespace

bool llamaInferenceApplies(const config::GalaxyConfig &c) {
  return c.model_type == "llama" && c.task == "causal_lm" && !c.use_lora &&
         !c.use_adapter && !c.use_side && !c.use_side_only;
}

void addLlamaInference(ModuleOp module, const config::GalaxyConfig &c) {
  LlamaInferenceBuilder(*module.getContext(), c).build(module);
}

} // namespace galaxy
