#include "models/bart/BartInference.h"

#include "galaxy/GalaxyDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "models/bart/bart_parts.h"
#include "runtime/plan/programs.h"

using namespace mlir;

namespace galaxy {
namespace {

// Source positions are S (queries) / K (keys), decoder ones T / TK, as in
// @forward; X names the unit axis of the one-hot slot.
class BartInferenceBuilder : public BartParts {
public:
  BartInferenceBuilder(MLIRContext &ctx, const config::GalaxyConfig &c)
      : BartParts(ctx, c), heads(c.decoder_attention_heads),
        hd(c.hidden_size / c.decoder_attention_heads), L(c.decoder_layers) {}

  void build(ModuleOp module) {
    encode(module);
    decode(module);
  }

private:
  std::string name(const char *what, int64_t i) {
    return std::string(what) + "." + std::to_string(i);
  }
  Value matmul(Value a, Value x, ArrayRef<int64_t> shape, StringRef names) {
    return dims(b.create<MatmulOp>(loc, f32(shape), a, x, b.getBoolAttr(false),
                                   b.getBoolAttr(false),
                                   b.getF64FloatAttr(1.0)),
                names);
  }
  void encode(ModuleOp module);
  void decode(ModuleOp module);

  const int64_t heads, hd, L;
};

void BartInferenceBuilder::encode(ModuleOp module) {
  std::vector<Type> types;
  std::vector<std::string> names;
  for (int64_t i = 0; i < L; ++i)
    for (const char *kv : {"cross.k", "cross.v"}) {
      types.push_back(f32({B, heads, S, hd}));
      names.push_back(name(kv, i));
    }
  Inputs arg = beginFunction(module, "encode",
                             {{"input_ids", true, {B, S}, "B,S"},
                              {"attention_mask", false, {B, S}, "B,K"}},
                             types, names);
  Value h = block("embedding", -1, [&]() -> SmallVector<Value> {
    return {embed(arg("input_ids"), S, "S", "model.encoder")};
  })[0];
  for (int64_t i = 0; i < c.num_hidden_layers; ++i)
    h = encoderLayer(h, arg("attention_mask"), i);
  // Each decoder layer's cross-attention keys and values, in the block
  // @forward computes them in.
  SmallVector<Value> results;
  for (int64_t i = 0; i < L; ++i) {
    const std::string p =
        "model.decoder.layers." + std::to_string(i) + ".encoder_attn.";
    SmallVector<Value> kv =
        block("att", c.num_hidden_layers + i, [&]() -> SmallVector<Value> {
          Value k = project(h, p + "k_proj", heads, S, "K");
          Value v = project(h, p + "v_proj", heads, S, "K");
          return {k, v};
        });
    results.append(kv.begin(), kv.end());
  }
  b.create<func::ReturnOp>(loc, results);
}

void BartInferenceBuilder::decode(ModuleOp module) {
  std::vector<models::ModelInput> inputs = {
      {"decoder_input_ids", true, {B, 1}, "B,T"},
      {"position_rows", true, {B, 1}, "B,T"},
      {"decoder_attention_mask", false, {B, T}, "B,TK"},
      {"slot", false, {B, heads, T, 1}, "B,N,TK,X"},
      {"attention_mask", false, {B, S}, "B,K"}};
  std::vector<Type> types = {f32({B, V})};
  std::vector<std::string> names = {"logits"};
  for (int64_t i = 0; i < L; ++i)
    for (const char *kv : {"k", "v"}) {
      inputs.push_back(
          {plan::cachePort(kv, i), false, {B, heads, T, hd}, "B,N,TK,D"});
      types.push_back(f32({B, heads, T, hd}));
      names.push_back(plan::cachePort(kv, i));
    }
  for (int64_t i = 0; i < L; ++i)
    for (const char *kv : {"cross.k", "cross.v"})
      inputs.push_back({name(kv, i), false, {B, heads, S, hd}, "B,N,K,D"});
  Inputs arg = beginFunction(module, "decode", inputs, types, names);
  Value slot = arg("slot");
  Value d = block("embedding", -1, [&]() -> SmallVector<Value> {
    return {embed(arg("decoder_input_ids"), 1, "T", "model.decoder",
                  arg("position_rows"))};
  })[0];
  SmallVector<Value> results = {Value()};
  for (int64_t i = 0; i < L; ++i)
    d = decoderLayer(
        d, i,
        [&](Value x, const std::string &p) -> SmallVector<Value> {
          Value q = project(x, p + "q_proj", heads, 1, "T");
          Value k1 = project(x, p + "k_proj", heads, 1, "T");
          Value v1 = project(x, p + "v_proj", heads, 1, "T");
          // The new key and value placed at the slot ([B, N, T, 1] ·
          // [B, N, 1, D]: exact zeros elsewhere) and added to the cache.
          Value k = dims(
              b.create<AddOp>(loc, arg(plan::cachePort("k", i)),
                              matmul(slot, k1, {B, heads, T, hd}, "B,N,TK,D")),
              "B,N,TK,D");
          Value v = dims(
              b.create<AddOp>(loc, arg(plan::cachePort("v", i)),
                              matmul(slot, v1, {B, heads, T, hd}, "B,N,TK,D")),
              "B,N,TK,D");
          return {attend(q, k, v, arg("decoder_attention_mask"), false, heads,
                         1, T, "T", "TK", p),
                  k, v};
        },
        [&](Value h, const std::string &p) -> SmallVector<Value> {
          Value q = project(h, p + "q_proj", heads, 1, "T");
          return {attend(q, arg(name("cross.k", i)), arg(name("cross.v", i)),
                         arg("attention_mask"), false, heads, 1, S, "T", "K",
                         p)};
        },
        &results);
  results[0] = block(
      "head", -1,
      [&]() -> SmallVector<Value> {
        Value last = dims(b.create<TakeTokenOp>(loc, f32({B, H}), d, 0), "B,H");
        return {lmLogits(last, {B, V}, "B,V")};
      },
      "con")[0];
  b.create<func::ReturnOp>(loc, results);
}

} // namespace

bool bartInferenceApplies(const config::GalaxyConfig &c) {
  // LoRA and adapters: the PEFT pass rewrites @encode / @decode as @forward.
  // Side-tuning's side network would need caches of its own (galaxy-run
  // generates with eval_step instead); side-only has no backbone.
  return c.model_type == "bart" && c.task != "classification" && !c.use_side &&
         !c.use_side_only;
}

void addBartInference(ModuleOp module, const config::GalaxyConfig &c) {
  BartInferenceBuilder(*module.getContext(), c).build(module);
}

} // namespace galaxy
