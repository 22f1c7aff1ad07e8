// The pieces of BART's graph that training (@forward, BartModel.cpp) and
// generation (@encode / @decode, BartInference.cpp) build alike, with Hugging
// Face's parameter names: embeddings, the attention (projections and the
// attending itself, apart, so a cache can stand between them), the FFN, the
// post-LN residual, the encoder and decoder layers and the LM head. Bodies
// are in BartModel.cpp; the decoder layer is a template over its two
// attentions.
#pragma once

#include <array>
#include <string>

#include "compiler/config/galaxy_config.h"
#include "models/graph_builder.h"

namespace galaxy {

class BartParts : public GraphBuilder {
protected:
  BartParts(mlir::MLIRContext &ctx, const config::GalaxyConfig &c);

  // A layer's width and model-dimension labels: the backbone's, or the side
  // network's (use_side: d_model / side_reduction_factor wide, its own labels
  // so no tensor-parallel split of the backbone applies to it).
  struct Width {
    int64_t h;
    std::string H, A, N, I;
  };
  Width backbone() const { return {H, "H", "A", "N", "I"}; }
  Width sideWidth() const {
    return {H / c.side_reduction_factor, "Hs", "As", "Ns", "Is"};
  }

  // The tied table: every reader emits a param op of this one name, and
  // autodiff sums their gradients.
  mlir::Value shared() {
    return param("model.shared.weight", {V, H}, "normal", "V,H");
  }
  mlir::Value layerNorm(mlir::Value x, const std::string &name,
                        const Width &w);
  mlir::Value layerNorm(mlir::Value x, const std::string &name) {
    return layerNorm(x, name, backbone());
  }
  // Token + position embeddings of `ids` ([B, len], positions `seq`) under
  // `prefix` (model.encoder / model.decoder). `positionRows` [B, len] i32:
  // the rows of embed_positions to read (position + 2); null: 0..len-1 + 2.
  mlir::Value embed(mlir::Value ids, int64_t len, llvm::StringRef seq,
                    const std::string &prefix,
                    mlir::Value positionRows = mlir::Value());
  // The heads of projection `p` + name of x ([B, len, H] -> [B, heads, len,
  // D], positions `seq`).
  mlir::Value project(mlir::Value x, const std::string &name, int64_t heads,
                      int64_t len, llvm::StringRef seq, const Width &w);
  mlir::Value project(mlir::Value x, const std::string &name, int64_t heads,
                      int64_t len, llvm::StringRef seq) {
    return project(x, name, heads, len, seq, backbone());
  }
  // softmax(q·kᵀ/√d, masked)·v, merged and projected by `p`out_proj.
  mlir::Value attend(mlir::Value q, mlir::Value k, mlir::Value v,
                     mlir::Value mask, bool causal, int64_t heads, int64_t qLen,
                     int64_t kLen, llvm::StringRef qSeq, llvm::StringRef kSeq,
                     const std::string &p, const Width &w);
  mlir::Value attend(mlir::Value q, mlir::Value k, mlir::Value v,
                     mlir::Value mask, bool causal, int64_t heads, int64_t qLen,
                     int64_t kLen, llvm::StringRef qSeq, llvm::StringRef kSeq,
                     const std::string &p) {
    return attend(q, k, v, mask, causal, heads, qLen, kLen, qSeq, kSeq, p,
                  backbone());
  }
  // Multi-head attention of queries from x (positions `qSeq`, length qLen)
  // over keys/values from kv (key positions `kSeq`, length kLen).
  mlir::Value attention(mlir::Value x, mlir::Value kv, mlir::Value mask,
                        bool causal, int64_t heads, int64_t qLen, int64_t kLen,
                        llvm::StringRef qSeq, llvm::StringRef kSeq,
                        const std::string &p, const Width &w) {
    // In this order (arguments' order is unspecified): q, k, v.
    mlir::Value q = project(x, p + "q_proj", heads, qLen, qSeq, w);
    mlir::Value k = project(kv, p + "k_proj", heads, kLen, kSeq, w);
    mlir::Value v = project(kv, p + "v_proj", heads, kLen, kSeq, w);
    return attend(q, k, v, mask, causal, heads, qLen, kLen, qSeq, kSeq, p, w);
  }
  mlir::Value attention(mlir::Value x, mlir::Value kv, mlir::Value mask,
                        bool causal, int64_t heads, int64_t qLen, int64_t kLen,
                        llvm::StringRef qSeq, llvm::StringRef kSeq,
                        const std::string &p) {
    return attention(x, kv, mask, causal, heads, qLen, kLen, qSeq, kSeq, p,
                     backbone());
  }
  mlir::Value ffn(mlir::Value x, int64_t inter, llvm::StringRef seq,
                  const std::string &p, const Width &w);
  mlir::Value ffn(mlir::Value x, int64_t inter, llvm::StringRef seq,
                  const std::string &p) {
    return ffn(x, inter, seq, p, backbone());
  }
  // x + dropout(y), then LayerNorm `name`: the post-LN residual.
  mlir::Value residualNorm(mlir::Value x, mlir::Value y,
                           const std::string &name, const Width &w) {
    mlir::Value r = dims(
        b.create<AddOp>(loc, x, dropout(y, c.hidden_dropout_prob)), dimsOf(x));
    return layerNorm(r, name, w);
  }
  mlir::Value residualNorm(mlir::Value x, mlir::Value y,
                           const std::string &name) {
    return residualNorm(x, y, name, backbone());
  }
  mlir::Value encoderLayer(mlir::Value x, mlir::Value mask, int64_t i);
  // Decoder layer i (block layer E + i): self-attention (att), con,
  // cross-attention (att: its keys are the encoder's positions), con, mlp,
  // con. `selfAtt(x, prefix)` and `crossAtt(h, prefix)` return the attention
  // output first; their other results (caches) are appended to `extra`.
  // `seq`: the positions of x ("T").
  template <typename SelfAtt, typename CrossAtt>
  mlir::Value
  decoderLayer(mlir::Value x, int64_t i, SelfAtt selfAtt, CrossAtt crossAtt,
               llvm::SmallVectorImpl<mlir::Value> *extra = nullptr) {
    const int64_t L = c.num_hidden_layers + i;
    const std::string p = "model.decoder.layers." + std::to_string(i) + ".";
    auto keep = [&](const llvm::SmallVector<mlir::Value> &a) {
      if (extra)
        extra->append(a.begin() + 1, a.end());
      return a[0];
    };
    mlir::Value att = keep(block("att", L, [&] {
      return llvm::SmallVector<mlir::Value>(selfAtt(x, p + "self_attn."));
    }));
    mlir::Value h = block("con", L, [&]() -> llvm::SmallVector<mlir::Value> {
      return {residualNorm(x, att, p + "self_attn_layer_norm")};
    })[0];
    mlir::Value cross = keep(block("att", L, [&] {
      return llvm::SmallVector<mlir::Value>(crossAtt(h, p + "encoder_attn."));
    }));
    mlir::Value h2 = block("con", L, [&]() -> llvm::SmallVector<mlir::Value> {
      return {residualNorm(h, cross, p + "encoder_attn_layer_norm")};
    })[0];
    mlir::Value m = block("mlp", L, [&]() -> llvm::SmallVector<mlir::Value> {
      return {ffn(h2, c.decoder_ffn_dim, dimsOfSeq(h2), p)};
    })[0];
    return block("con", L, [&]() -> llvm::SmallVector<mlir::Value> {
      return {residualNorm(h2, m, p + "final_layer_norm")};
    })[0];
  }
  // lm_head (the shared table) plus final_logits_bias, a saved buffer that
  // never trains: d [..., H] -> [..., V] (`names` its axes).
  mlir::Value lmLogits(mlir::Value d, llvm::ArrayRef<int64_t> shape,
                       llvm::StringRef names);

  const config::GalaxyConfig &c;
  // S source positions, T target positions.
  const int64_t B, S, T, H, V;

private:
  // The sequence axis name of a [B, seq, H] value.
  std::string dimsOfSeq(mlir::Value x) {
    llvm::SmallVector<llvm::StringRef> parts;
    llvm::StringRef(dimsOf(x)).split(parts, ',');
    return parts.size() > 1 ? parts[1].str() : "T";
  }
};

} // namespace galaxy
