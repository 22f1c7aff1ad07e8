// The pieces of LLaMA's graph that training (@forward, LlamaModel.cpp) and
// inference (@prefill / @decode, LlamaInference.cpp) build alike: one place
// for the layer (RMSNorm, RoPE, grouped-query attention, SwiGLU), the
// embedding and the LM head, with Hugging Face's parameter names.
#pragma once

#include <array>
#include <cmath>
#include <string>

#include "compiler/config/galaxy_config.h"
#include "models/graph_builder.h"

namespace galaxy {

class LlamaParts : public GraphBuilder {
protected:
  LlamaParts(mlir::MLIRContext &ctx, const config::GalaxyConfig &c)
      : GraphBuilder(ctx, "llama", c.initializer_range), c(c), B(c.batch_size),
        T(c.pad_size), H(c.hidden_size), heads(c.num_attention_heads),
        kvHeads(c.num_key_value_heads ? c.num_key_value_heads : heads),
        hd(H / heads), I(c.intermediate_size), V(c.vocab_size),
        L(c.num_hidden_layers) {}

  mlir::Value rmsNorm(mlir::Value x, const std::string &name) {
    mlir::Value w = param(name + ".weight", {H}, "ones", "H");
    return dims(b.create<RmsNormOp>(loc, x.getType(), x, w,
                                    b.getF64FloatAttr(c.rms_norm_eps)),
                dimsOf(x));
  }
  // Rotary positions of a [B, n, s, D] value; a rank's slice of the
  // sequence starts at its offset (RopeOp::lowerForRank).
  mlir::Value rope(mlir::Value v) {
    return dims(b.create<RopeOp>(loc, v.getType(), v,
                                 b.getF64FloatAttr(c.rope_theta),
                                 b.getBoolAttr(false)),
                dimsOf(v));
  }
  mlir::Value matmul(mlir::Value a, mlir::Value x,
                     llvm::ArrayRef<int64_t> shape, llvm::StringRef names,
                     bool ta, bool tb, double alpha = 1.0) {
    return dims(b.create<MatmulOp>(loc, f32(shape), a, x, b.getBoolAttr(ta),
                                   b.getBoolAttr(tb), b.getF64FloatAttr(alpha)),
                names);
  }
  // q, k, v of n ([B, s, H]) split into heads: query heads N (hidden A), KV
  // heads NK (hidden AK). Keys and values of a whole sequence index key
  // positions K (gathered under sequence parallelism while the queries stay
  // sharded); a shorter step (decode) keeps its own positions S.
  std::array<mlir::Value, 3> qkv(mlir::Value n, int64_t s,
                                 const std::string &a) {
    const bool bias = c.attention_bias;
    auto split = [&](mlir::Value v, int64_t nh, llvm::StringRef names) {
      return dims(b.create<SplitHeadsOp>(loc, f32({B, nh, s, hd}), v), names);
    };
    const llvm::StringRef kvNames = s == T ? "B,NK,K,D" : "B,NK,S,D";
    return {split(linear(n, a + "q_proj", H, heads * hd, "H", "A", bias), heads,
                  "B,N,S,D"),
            split(linear(n, a + "k_proj", H, kvHeads * hd, "H", "AK", bias),
                  kvHeads, kvNames),
            split(linear(n, a + "v_proj", H, kvHeads * hd, "H", "AK", bias),
                  kvHeads, kvNames)};
  }
  // Grouped-query attention: each KV head serves heads / kvHeads query heads.
  mlir::Value repeatKv(mlir::Value x) {
    if (kvHeads == heads)
      return x;
    return dims(b.create<RepeatKvOp>(loc, f32({B, heads, T, hd}), x,
                                     b.getI64IntegerAttr(heads / kvHeads)),
                "B,N,K,D");
  }
  // softmax(q·kᵀ/√d, masked)·v over T keys for s queries, merged and
  // projected by o_proj. `causal` masks keys after each query.
  mlir::Value attend(mlir::Value q, mlir::Value k, mlir::Value v,
                     mlir::Value mask, bool causal, int64_t s,
                     const std::string &a, double dropoutP = 0.0) {
    mlir::Value scores = matmul(q, repeatKv(k), {B, heads, s, T}, "B,N,S,K",
                                false, true, 1.0 / std::sqrt(double(hd)));
    mlir::Value probs =
        dims(b.create<MaskedSoftmaxOp>(loc, scores.getType(), scores, mask,
                                       b.getBoolAttr(causal)),
             "B,N,S,K");
    probs = dropout(probs, dropoutP);
    mlir::Value ctxv =
        matmul(probs, repeatKv(v), {B, heads, s, hd}, "B,N,S,D", false, false);
    mlir::Value merged = dims(
        b.create<MergeHeadsOp>(loc, f32({B, s, heads * hd}), ctxv), "B,S,A");
    return linear(merged, a + "o_proj", heads * hd, H, "A", "H",
                  c.attention_bias);
  }
  // SwiGLU: down(silu(gate(n)) * up(n)).
  mlir::Value mlp(mlir::Value n, const std::string &p) {
    const bool bias = c.mlp_bias;
    mlir::Value gate = linear(n, p + "gate_proj", H, I, "H", "I", bias);
    mlir::Value up = linear(n, p + "up_proj", H, I, "H", "I", bias);
    mlir::Value act = dims(b.create<SiluOp>(loc, gate), "B,S,I");
    mlir::Value prod = dims(b.create<MulOp>(loc, act, up), "B,S,I");
    return linear(prod, p + "down_proj", I, H, "I", "H", bias);
  }
  // Decoder layer i: con (input norm), att, con (residual + post-attention
  // norm), mlp, con (residual). `att(n, prefix)` returns the attention output
  // first; its other results (a KV cache) are appended to `extra`.
  template <typename Att>
  mlir::Value layer(mlir::Value x, int64_t i, Att att,
                    llvm::SmallVectorImpl<mlir::Value> *extra = nullptr) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    mlir::Value n1 = block("con", i, [&]() -> llvm::SmallVector<mlir::Value> {
      return {rmsNorm(x, p + "input_layernorm")};
    })[0];
    llvm::SmallVector<mlir::Value> a =
        block("att", i, [&]() -> llvm::SmallVector<mlir::Value> {
          return att(n1, p + "self_attn.");
        });
    if (extra)
      extra->append(a.begin() + 1, a.end());
    llvm::SmallVector<mlir::Value> hn =
        block("con", i, [&]() -> llvm::SmallVector<mlir::Value> {
          mlir::Value h = dims(b.create<AddOp>(loc, x, a[0]), "B,S,H");
          return {h, rmsNorm(h, p + "post_attention_layernorm")};
        });
    mlir::Value m = block("mlp", i, [&]() -> llvm::SmallVector<mlir::Value> {
      return {mlp(hn[1], p + "mlp.")};
    })[0];
    return block("con", i, [&]() -> llvm::SmallVector<mlir::Value> {
      return {dims(b.create<AddOp>(loc, hn[0], m), "B,S,H")};
    })[0];
  }
  mlir::Value embedTable() {
    return param("model.embed_tokens.weight", {V, H}, "normal", "V,H");
  }
  // The embedding block of s positions; the pad row gets no gradient (HF's
  // padding_idx).
  mlir::Value embed(mlir::Value ids, int64_t s) {
    return block("embedding", -1, [&]() -> llvm::SmallVector<mlir::Value> {
      return {dims(b.create<EmbeddingOp>(loc, f32({B, s, H}), embedTable(), ids,
                                         b.getI64IntegerAttr(c.pad_token_id)),
                   "B,S,H")};
    })[0];
  }
  // The LM head's weight: the embedding table itself when tied.
  mlir::Value lmHeadWeight() {
    return c.tie_word_embeddings
               ? embedTable()
               : param("lm_head.weight", {V, H}, "normal", "V,H");
  }

  const config::GalaxyConfig &c;
  // T: positions of the whole sequence (pad_size; the cache's slots).
  const int64_t B, T, H, heads, kvHeads, hd, I, V, L;
};

} // namespace galaxy
