#include "models/registry.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/bart/spec.h"
#include "models/bert/spec.h"
#include "models/llama/spec.h"

namespace galaxy::models {
namespace {

// Model families whose configs Galaxy recognises but cannot build yet: a
// config of theirs must be refused, never compiled as the default family.
// A family moves from here into registeredModels() when its builder lands.
struct Family {
  std::string modelType;
  std::vector<std::string> recognisingKeys;
};
const std::vector<Family> &notYetBuilt() {
  static const std::vector<Family> families = {};
  return families;
}

std::vector<std::string> present(const std::vector<std::string> &wanted,
                                 const std::vector<std::string> &keys) {
  std::vector<std::string> out;
  for (const std::string &k : wanted)
    if (std::find(keys.begin(), keys.end(), k) != keys.end())
      out.push_back(k);
  return out;
}

} // namespace

const std::vector<const ModelSpec *> &registeredModels() {
  static const std::vector<const ModelSpec *> all = {&bertSpec(), &llamaSpec(),
                                                     &bartSpec()};
  return all;
}

const ModelSpec *findModel(const std::string &modelType) {
  for (const ModelSpec *m : registeredModels())
    if (m->modelType == modelType)
      return m;
  return nullptr;
}

std::string availableModels() {
  std::vector<std::string> names;
  for (const ModelSpec *m : registeredModels())
    names.push_back(m->modelType);
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<std::string> identifyModel(const std::vector<std::string> &keys,
                                          const std::string *modelType) {
  if (modelType) {
    if (findModel(*modelType))
      return *modelType;
    for (const Family &f : notYetBuilt())
      if (f.modelType == *modelType)
        return noBuilderError(*modelType, "");
    return absl::InvalidArgumentError(absl::StrCat(
        "model_type '", *modelType,
        "' is not a model Galaxy knows: available: ", availableModels()));
  }
  // Which families' keys the file uses.
  std::vector<std::pair<std::string, std::vector<std::string>>> hits;
  for (const ModelSpec *m : registeredModels())
    if (auto k = present(m->recognisingKeys, keys); !k.empty())
      hits.push_back({m->modelType, k});
  for (const Family &f : notYetBuilt())
    if (auto k = present(f.recognisingKeys, keys); !k.empty())
      hits.push_back({f.modelType, k});
  if (hits.size() > 1) {
    std::vector<std::string> parts;
    for (const auto &[type, k] : hits)
      parts.push_back(absl::StrCat(type, " (", absl::StrJoin(k, ", "), ")"));
    return absl::InvalidArgumentError(
        absl::StrCat("model_type is not given and the keys belong to ",
                     absl::StrJoin(parts, " and "), "; set model_type"));
  }
  if (hits.empty())
    return registeredModels().front()->modelType;
  const auto &[type, k] = hits.front();
  if (!findModel(type))
    return noBuilderError(type, absl::StrCat(" (recognised from its keys ",
                                             absl::StrJoin(k, ", "), ")"));
  return type;
}

int64_t layerCount(const ModelSpec &spec, const config::GalaxyConfig &c) {
  int64_t n = 0;
  for (const LayerGroup &g : spec.layers(c))
    n += g.count;
  return n;
}

absl::Status noBuilderError(const std::string &modelType,
                            const std::string &recognisedBy) {
  return absl::InvalidArgumentError(
      absl::StrCat("model_type '", modelType, "'", recognisedBy,
                   " has no builder yet: available: ", availableModels()));
}

} // namespace galaxy::models
