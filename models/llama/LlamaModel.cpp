// LLaMA's serial graph, as Hugging Face computes it (spec/llama-bart.md):
// pre-norm layers x + attn(rms(x)), h + down(silu(gate(n)) * up(n)); rotary
// positions (rotate_half); grouped-query attention; causal and padding masks;
// no biases unless attention_bias / mlp_bias.
#include "models/llama/LlamaModel.h"

#include <cmath>

#include "galaxy/GalaxyDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "models/llama/llama_parts.h"
#include "models/llama/spec.h"

using namespace mlir;

namespace galaxy {
namespace {

class LlamaBuilder : public LlamaParts {
public:
  LlamaBuilder(MLIRContext &ctx, const config::GalaxyConfig &c,
               int64_t stepRows)
      : LlamaParts(ctx, c), stepRows(stepRows) {}

  OwningOpRef<ModuleOp> build();

private:
  const int64_t stepRows;
};

OwningOpRef<ModuleOp> LlamaBuilder::build() {
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  const bool classify = c.task == "classification";
  Inputs arg = beginForward(
      *module, models::llamaSpec().inputs(c),
      {f32({}), classify ? f32({B, c.num_classes}) : f32({B, T, V})});
  Value mask = arg("attention_mask"), labels = arg("labels");

  // Rotary angles follow each value's own positions: the queries' (sharded
  // under SP) and the gathered keys'.
  Value h = embed(arg("input_ids"), T);
  for (int64_t i = 0; i < L; ++i)
    h = layer(h, i, [&](Value n, const std::string &a) -> SmallVector<Value> {
      auto [q, k, v] = qkv(n, T, a);
      // In sequence: argument evaluation order is the compiler's choice.
      Value qr = rope(q), kr = rope(k);
      return {
          attend(qr, kr, v, mask, /*causal=*/true, T, a, c.attention_dropout)};
    });

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
      return {rowLoss(logits, labels, B), logits};
    });
  } else {
    // Every position's logits against the next-token labels (tokenLoss):
    // per position, so the head shards by sequence like a CON block.
    head = block(
        "head", -1,
        [&]() -> SmallVector<Value> {
          Value n = rmsNorm(h, "model.norm");
          Value logits =
              dims(b.create<LinearOp>(loc, f32({B, T, V}), n, lmHeadWeight(),
                                      Value(), b.getBoolAttr(true)),
                   "B,S,V");
          return {tokenLoss(logits, labels, arg("num_targets"), B, stepRows),
                  logits};
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
