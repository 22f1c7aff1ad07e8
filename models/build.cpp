#include "models/build.h"

#include "absl/strings/str_cat.h"
#include "galaxy/GalaxyDialect.h"
#include "mlir/IR/Builders.h"
#include "models/bart/BartModel.h"
#include "models/bert/BertModel.h"
#include "models/llama/LlamaModel.h"
#include "models/registry.h"

namespace galaxy::models {
namespace {

// A builder gets the config with batch_size = the rows of the built
// @forward, and the rows of the whole step's batch (they differ for a
// pipeline stage program, which sees one microbatch).
using BuilderFn = mlir::OwningOpRef<mlir::ModuleOp> (*)(
    mlir::MLIRContext &, const config::GalaxyConfig &, int64_t stepRows);

// One line per model: its model_type and its folder's builder.
BuilderFn builderFor(const std::string &modelType) {
  static const std::pair<const char *, BuilderFn> builders[] = {
      {"bert", buildBertModel},
      {"llama", buildLlamaModel},
      {"bart", buildBartModel},
  };
  for (const auto &[type, fn] : builders)
    if (modelType == type)
      return fn;
  return nullptr;
}

void stampDeclarations(mlir::ModuleOp m, const ModelSpec &spec,
                       const config::GalaxyConfig &cfg) {
  mlir::Builder b(m.getContext());
  llvm::SmallVector<mlir::Attribute> targets;
  auto strings = [&](const std::vector<std::string> &v) {
    llvm::SmallVector<llvm::StringRef> refs(v.begin(), v.end());
    return b.getStrArrayAttr(refs);
  };
  for (const PeftTarget &t : spec.peftTargets) {
    std::vector<std::string> entry = {t.name}; // [name, suffix, ...]
    entry.insert(entry.end(), t.moduleSuffixes.begin(), t.moduleSuffixes.end());
    targets.push_back(strings(entry));
  }
  m->setAttr(kPeftTargetsAttr, b.getArrayAttr(targets));
  m->setAttr(kLayerPrefixesAttr, strings(spec.layerPrefixes));
  m->setAttr(kAdapterAfterAttr, strings(spec.adapterAfter));
  m->setAttr(kAlwaysTrainableAttr, strings(spec.alwaysTrainable));
  m->setAttr(kNumLayersAttr, b.getI64IntegerAttr(layerCount(spec, cfg)));
}

} // namespace

absl::StatusOr<mlir::OwningOpRef<mlir::ModuleOp>>
buildModel(mlir::MLIRContext &ctx, const config::GalaxyConfig &cfg,
           const BuildOptions &opts) {
  const ModelSpec *spec = findModel(cfg.model_type);
  BuilderFn build = builderFor(cfg.model_type);
  if (!spec || !build)
    return noBuilderError(cfg.model_type);
  config::GalaxyConfig c = cfg;
  if (opts.batchRows > 0)
    c.batch_size = opts.batchRows;
  mlir::OwningOpRef<mlir::ModuleOp> module = build(ctx, c, cfg.batch_size);
  stampDeclarations(*module, *spec, c);
  return module;
}

} // namespace galaxy::models
