#include "models/llama/LlamaInference.h"

#include <array>
#include <cmath>

#include "galaxy/GalaxyDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "models/llama/llama_parts.h"
#include "runtime/plan/programs.h"

using namespace mlir;

namespace galaxy {
namespace {

// Values carry the model dimensions of @forward (B, S queries, K key slots,
// H, N / NK heads, D, A / AK, I, V), ops sit in the same galaxy.block kinds,
// so the partition pass lays these functions out like @forward. X names the
// unit axis of the one-hot slots.
class LlamaInferenceBuilder : public LlamaParts {
public:
  LlamaInferenceBuilder(MLIRContext &ctx, const config::GalaxyConfig &c)
      : LlamaParts(ctx, c) {}

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
          return {
              dims(b.create<LinearOp>(loc, f32({B, V}), last, lmHeadWeight(),
                                      Value(), b.getBoolAttr(true)),
                   "B,V")};
        },
        "con")[0];
  }
  void prefill();
  void decode();
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
      outputs.push_back(
          {plan::cachePort(kv, i), f32({B, kvHeads, T, hd}), "B,NK,K,D"});
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
    h = layer(
        h, i,
        [&](Value n, const std::string &a) -> SmallVector<Value> {
          auto [q, k, v] = qkv(n, T, a);
          q = rope(q);
          k = rope(k);
          return {attend(q, k, v, mask, true, T, a), k, v};
        },
        &results);
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
      Port p{plan::cachePort(kv, i), f32({B, kvHeads, T, hd}), "B,NK,K,D"};
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
        h, i,
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
        },
        &results);
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
  return c.model_type == "llama" && c.task == "causal_lm";
}

int64_t cacheSlots(const config::GalaxyConfig &c) {
  return c.max_seq > 0 ? c.max_seq : c.pad_size;
}

void addLlamaInference(ModuleOp module, const config::GalaxyConfig &c) {
  // The functions' positions T are the cache's (LlamaParts reads pad_size).
  config::GalaxyConfig sized = c;
  sized.pad_size = cacheSlots(c);
  LlamaInferenceBuilder(*module.getContext(), sized).build(module);
}

} // namespace galaxy
