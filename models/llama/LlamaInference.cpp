#include "models/llama/LlamaInference.h"

#include <array>
#include <cmath>

#include "galaxy/GalaxyDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "models/graph_builder.h"

using namespace mlir;

namespace galaxy {
namespace {

// Values carry the model dimensions of @forward (B, S queries, K key slots,
// H, N / NK heads, D, A / AK, I, V), ops sit in the same galaxy.block kinds,
// so the partition pass lays these functions out like @forward. X names the
// unit axis of the one-hot slots.
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
  struct Port {
    std::string name;
    Type type;
    std::string dims;
  };
  struct Fn {
    func::FuncOp op;
    Block *entry = nullptr;
    Value arg(unsigned i) { return entry->getArgument(i); }
  };
  // A function with named inputs and outputs (galaxy.input / galaxy.output).
  Fn function(StringRef name, ArrayRef<Port> inputs, ArrayRef<Port> outputs);

  Value rmsNorm(Value x, const std::string &name) {
    Value w = param(name + ".weight", {H}, "ones", "H");
    return dims(b.create<RmsNormOp>(loc, x.getType(), x, w,
                                    b.getF64FloatAttr(c.rms_norm_eps)),
                dimsOf(x));
  }
  Value rope(Value v) {
    return dims(b.create<RopeOp>(loc, v.getType(), v,
                                 b.getF64FloatAttr(c.rope_theta),
                                 b.getBoolAttr(false)),
                dimsOf(v));
  }
  Value heads4(Value v, int64_t n, int64_t s, StringRef names) {
    return dims(b.create<SplitHeadsOp>(loc, f32({B, n, s, hd}), v), names);
  }
  Value matmul(Value a, Value x, ArrayRef<int64_t> shape, StringRef names,
               bool ta, bool tb, double alpha = 1.0) {
    return dims(b.create<MatmulOp>(loc, f32(shape), a, x, b.getBoolAttr(ta),
                                   b.getBoolAttr(tb), b.getF64FloatAttr(alpha)),
                names);
  }
  Value repeat(Value x, StringRef names) {
    if (kvHeads == heads)
      return x;
    return dims(b.create<RepeatKvOp>(loc, f32({B, heads, T, hd}), x,
                                     b.getI64IntegerAttr(heads / kvHeads)),
                names);
  }
  // q/k/v projections of n ([B, s, H]) split into heads.
  std::array<Value, 3> qkv(Value n, int64_t s, const std::string &a) {
    const bool bias = c.attention_bias;
    return {heads4(linear(n, a + "q_proj", H, heads * hd, "H", "A", bias),
                   heads, s, "B,N,S,D"),
            heads4(linear(n, a + "k_proj", H, kvHeads * hd, "H", "AK", bias),
                   kvHeads, s, s == T ? "B,NK,K,D" : "B,NK,S,D"),
            heads4(linear(n, a + "v_proj", H, kvHeads * hd, "H", "AK", bias),
                   kvHeads, s, s == T ? "B,NK,K,D" : "B,NK,S,D")};
  }
  // softmax(q·kᵀ/√d + mask)·v over the T cache slots, merged and projected.
  Value attend(Value q, Value k, Value v, Value mask, bool causal, int64_t s,
               const std::string &a) {
    Value scores = matmul(q, repeat(k, "B,N,K,D"), {B, heads, s, T}, "B,N,S,K",
                          false, true, 1.0 / std::sqrt(double(hd)));
    Value probs = dims(b.create<MaskedSoftmaxOp>(loc, scores.getType(), scores,
                                                 mask, b.getBoolAttr(causal)),
                       "B,N,S,K");
    Value ctxv = matmul(probs, repeat(v, "B,N,K,D"), {B, heads, s, hd},
                        "B,N,S,D", false, false);
    Value merged = dims(
        b.create<MergeHeadsOp>(loc, f32({B, s, heads * hd}), ctxv), "B,S,A");
    return linear(merged, a + "o_proj", heads * hd, H, "A", "H",
                  c.attention_bias);
  }
  // Layer i around its attention (`att` returns the attention output and
  // the layer's cache values): con, att, con, mlp, con as in @forward.
  template <typename Att>
  Value layer(Value x, int64_t i, SmallVector<Value> &caches, Att att) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    Value n1 = block("con", i, [&]() -> SmallVector<Value> {
      return {rmsNorm(x, p + "input_layernorm")};
    })[0];
    SmallVector<Value> a = block("att", i, [&]() -> SmallVector<Value> {
      return att(n1, p + "self_attn.");
    });
    caches.push_back(a[1]);
    caches.push_back(a[2]);
    SmallVector<Value> hn = block("con", i, [&]() -> SmallVector<Value> {
      Value h = dims(b.create<AddOp>(loc, x, a[0]), "B,S,H");
      return {h, rmsNorm(h, p + "post_attention_layernorm")};
    });
    Value m = block("mlp", i, [&]() -> SmallVector<Value> {
      const bool bias = c.mlp_bias;
      const std::string q = p + "mlp.";
      Value gate = linear(hn[1], q + "gate_proj", H, I, "H", "I", bias);
      Value up = linear(hn[1], q + "up_proj", H, I, "H", "I", bias);
      Value act = dims(b.create<SiluOp>(loc, gate), "B,S,I");
      Value prod = dims(b.create<MulOp>(loc, act, up), "B,S,I");
      return {linear(prod, q + "down_proj", I, H, "I", "H", bias)};
    })[0];
    return block("con", i, [&]() -> SmallVector<Value> {
      return {dims(b.create<AddOp>(loc, hn[0], m), "B,S,H")};
    })[0];
  }
  Value embedTable() {
    return param("model.embed_tokens.weight", {V, H}, "normal", "V,H");
  }
  Value embed(Value ids, int64_t s) {
    return block("embedding", -1, [&]() -> SmallVector<Value> {
      return {dims(b.create<EmbeddingOp>(loc, f32({B, s, H}), embedTable(), ids,
                                         b.getI64IntegerAttr(c.pad_token_id)),
                   "B,S,H")};
    })[0];
  }
  // The final norm and LM head of one position per row ([B, s, H] -> [B, V]):
  // `lastIndex` [B], or position 0.
  Value head(Value h, Value lastIndex) {
    return block(
        "head", -1,
        [&]() -> SmallVector<Value> {
          Value n = rmsNorm(h, "model.norm");
          Value last =
              lastIndex
                  ? b.create<TakeTokenOp>(loc, f32({B, H}), n, lastIndex, 0)
                  : b.create<TakeTokenOp>(loc, f32({B, H}), n, 0);
          dims(last, "B,H");
          Value w = c.tie_word_embeddings
                        ? embedTable()
                        : param("lm_head.weight", {V, H}, "normal", "V,H");
          return {dims(b.create<LinearOp>(loc, f32({B, V}), last, w, Value(),
                                          b.getBoolAttr(true)),
                       "B,V")};
        },
        "con")[0];
  }
  void prefill();
  void decode();

  const config::GalaxyConfig &c;
  const int64_t B, T, H, heads, kvHeads, hd, I, V, L;
};

LlamaInferenceBuilder::Fn
LlamaInferenceBuilder::function(StringRef name, ArrayRef<Port> inputs,
                                ArrayRef<Port> outputs) {
  SmallVector<Type> ins, outs;
  for (const Port &in : inputs)
    ins.push_back(in.type);
  for (const Port &out : outputs)
    outs.push_back(out.type);
  Fn fn;
  fn.op = b.create<func::FuncOp>(loc, name, b.getFunctionType(ins, outs));
  for (auto [i, in] : llvm::enumerate(inputs)) {
    fn.op.setArgAttr(i, kInputAttr, b.getStringAttr(in.name));
    fn.op.setArgAttr(i, kDimsAttr, argDimsAttr(b.getContext(), in.dims));
  }
  for (auto [i, out] : llvm::enumerate(outputs))
    fn.op.setResultAttr(i, kOutputAttr, b.getStringAttr(out.name));
  fn.entry = fn.op.addEntryBlock();
  return fn;
}

void LlamaInferenceBuilder::prefill() {
  std::vector<Port> outputs = {{"logits", f32({B, V}), "B,V"}};
  for (int64_t i = 0; i < L; ++i)
    for (const char *kv : {"k", "v"})
      outputs.push_back({std::string("cache.") + kv + "." + std::to_string(i),
                         f32({B, kvHeads, T, hd}), "B,NK,K,D"});
  Fn fn = function("prefill",
                   {{"input_ids", i32({B, T}), "B,S"},
                    {"attention_mask", f32({B, T}), "B,K"},
                    {"last_index", i32({B}), "B"}},
                   outputs);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(fn.entry);
  Value mask = fn.arg(1);
  Value h = embed(fn.arg(0), T);
  SmallVector<Value> results = {Value()};
  for (int64_t i = 0; i < L; ++i)
    h = layer(h, i, results,
              [&](Value n, const std::string &a) -> SmallVector<Value> {
                auto [q, k, v] = qkv(n, T, a);
                q = rope(q);
                k = rope(k);
                return {attend(q, k, v, mask, true, T, a), k, v};
              });
  results[0] = head(h, fn.arg(2));
  b.create<func::ReturnOp>(loc, results);
}

void LlamaInferenceBuilder::decode() {
  std::vector<Port> inputs = {{"input_ids", i32({B, 1}), "B,S"},
                              {"attention_mask", f32({B, T}), "B,K"},
                              {"slot_q", f32({B, heads, T, 1}), "B,N,K,X"},
                              {"slot_kv", f32({B, kvHeads, T, 1}), "B,NK,K,X"}};
  std::vector<Port> outputs = {{"logits", f32({B, V}), "B,V"}};
  for (int64_t i = 0; i < L; ++i)
    for (const char *kv : {"k", "v"}) {
      Port p{std::string("cache.") + kv + "." + std::to_string(i),
             f32({B, kvHeads, T, hd}), "B,NK,K,D"};
      inputs.push_back(p);
      outputs.push_back(p);
    }
  Fn fn = function("decode", inputs, outputs);
  OpBuilder::InsertionGuard guard(b);
  b.setInsertionPointToStart(fn.entry);
  Value mask = fn.arg(1), slotQ = fn.arg(2), slotKv = fn.arg(3);
  Value h = embed(fn.arg(0), 1);
  SmallVector<Value> results = {Value()};
  for (int64_t i = 0; i < L; ++i) {
    Value cacheK = fn.arg(4 + 2 * i), cacheV = fn.arg(5 + 2 * i);
    h = layer(
        h, i, results,
        [&](Value n, const std::string &a) -> SmallVector<Value> {
          auto [q1, k1, v1] = qkv(n, 1, a);
          // Placed at the row's slot ([B, n, T, 1] · [B, n, 1, D]) and
          // rotated there; the query is taken back out.
          Value qT = rope(
              matmul(slotQ, q1, {B, heads, T, hd}, "B,N,K,D", false, false));
          Value q =
              matmul(slotQ, qT, {B, heads, 1, hd}, "B,N,S,D", true, false);
          Value k =
              dims(b.create<AddOp>(loc, cacheK,
                                   rope(matmul(slotKv, k1, {B, kvHeads, T, hd},
                                               "B,NK,K,D", false, false))),
                   "B,NK,K,D");
          Value v = dims(b.create<AddOp>(loc, cacheV,
                                         matmul(slotKv, v1, {B, kvHeads, T, hd},
                                                "B,NK,K,D", false, false)),
                         "B,NK,K,D");
          return {attend(q, k, v, mask, false, 1, a), k, v};
        });
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
