//===- BertModel.h - BERT for sequence classification as galaxy IR -*- C++
//-*-===//
#pragma once

#include <cstdint>
#include <string>

#include "compiler/config/galaxy_config.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace galaxy {

// The sizes and hyper-parameters BERT's graph depends on (from the config).
struct BertDims {
  int64_t vocabSize = 21128, hidden = 768, layers = 12, heads = 12,
          intermediate = 3072;
  int64_t maxPositions = 512, typeVocab = 2, numClasses = 10;
  int64_t batch = 4, seq = 32, padId = 0;
  double layerNormEps = 1e-12, hiddenDropout = 0.1, attentionDropout = 0.1;
  double initializerRange = 0.02;
  std::string hiddenAct = "gelu"; // "gelu" (erf) or "gelu_new" (tanh)
  int64_t sideReduction =
      0; // side-tuning reduction factor f; 0 = no side network
  // Side-only ("forward free"): no backbone; its taps are inputs named
  // "tap.embeddings" and "tap.layer.{i}" ([B,S,H] each) after attention_mask
  // and labels. Needs sideReduction.
  bool sideOnly = false;
  // Side-tuning: @forward also returns the taps, after (loss, logits), in the
  // order embeddings, layer 0 .. layer L-1 (galaxy-run --dump-taps reads them).
  bool exposeTaps = false;
};

// BERT's sizes from a config (models/bert/spec.cc declares the rest).
BertDims bertDims(const config::GalaxyConfig &c);

// Builds `func.func @forward(<the inputs bertSpec() declares>)
// -> (loss, logits)`: the serial BertForSequenceClassification graph
// (reference-semantics §1) with Hugging Face parameter names, grouped into
// galaxy.block regions (embedding, per layer att/con/mlp/con, pooler, head).
mlir::OwningOpRef<mlir::ModuleOp> buildBert(mlir::MLIRContext &ctx,
                                            const BertDims &dims);
// The registry's builder (models/build.cpp): buildBert(bertDims(c)). BERT's
// loss is the mean over c.batch_size rows (a pipeline reweights
// microbatches), so the step's rows do not enter the graph.
mlir::OwningOpRef<mlir::ModuleOp> buildBertModel(mlir::MLIRContext &ctx,
                                                 const config::GalaxyConfig &c,
                                                 int64_t stepRows);

} // namespace galaxy
