#include "compiler/config/parallel_modes.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "compiler/config/split.h"
#include "models/registry.h"

namespace galaxy::config {

RegionMethods regionMethods(const GalaxyConfig &c) {
  // A hybrid pipeline's stages run the group mode.
  switch (c.parallel_mode == ParallelMode::kPP ? c.pp_group_mode
                                               : c.parallel_mode) {
  case ParallelMode::kTP:
    return {BlockMethod::kTP, BlockMethod::kNone, BlockMethod::kTP};
  case ParallelMode::kSP:
    return {BlockMethod::kSP, BlockMethod::kSP, BlockMethod::kSP};
  case ParallelMode::kGalaxy:
    return {c.att_parallel_method, c.con_parallel_method,
            c.mlp_parallel_method};
  default:
    return {BlockMethod::kNone, BlockMethod::kNone, BlockMethod::kNone};
  }
}

namespace {

// The config file's name of a shared key: the family's alias (BART's
// "encoder_attention_heads" for num_attention_heads), else the key itself.
// Points into the static registry or at `key`.
const char *keyName(const models::ModelSpec *model, const char *key) {
  if (model)
    for (const auto &[shared, own] : model->keyAliases)
      if (shared == key)
        return own.c_str();
  return key;
}

// Adds a reason every entry of `s` must be a multiple of `m`.
void requireMultiple(Split &s, int64_t m, const std::string &why) {
  if (m <= 1)
    return;
  s.multiple = std::lcm(s.multiple, m);
  s.multipleWhy =
      s.multipleWhy.empty() ? why : absl::StrCat(s.multipleWhy, "; and ", why);
}

// An encoder-decoder's decoder heads (FFN columns) follow the encoder's list
// in proportion (the partition pass reads the list as weights): rank r holds
// list[r] * dec / total of them, which is whole for every rank only when each
// entry is a multiple of total / gcd(total, dec).
void followDecoder(Split &s, const char *decKey, int64_t dec) {
  if (dec <= 0 || s.total <= 0)
    return;
  const int64_t g = std::gcd(s.total, dec);
  requireMultiple(
      s, s.total / g,
      absl::StrCat("the decoder's ", dec, " ", s.unit, "s (", decKey, " = ",
                   dec, ") follow the list in proportion, ", dec / g,
                   " for every ", s.total / g, " of ", s.totalKey, " = ",
                   s.total, ", and a rank's share must be whole ", s.unit,
                   "s"));
}

} // namespace

std::vector<Split> splitsFor(GalaxyConfig &c, ParallelMode mode) {
  const models::ModelSpec *model = models::findModel(c.model_type);
  Split heads{"tp_num_attention_heads_list", &c.tp_num_attention_heads_list,
              keyName(model, "num_attention_heads"), c.num_attention_heads,
              "head"};
  if (c.num_key_value_heads > 0 &&
      c.num_attention_heads > c.num_key_value_heads) {
    const int64_t group = c.num_attention_heads / c.num_key_value_heads;
    requireMultiple(
        heads, group,
        absl::StrCat("grouped-query attention: each KV head serves ", group,
                     " query heads (num_attention_heads ",
                     c.num_attention_heads, " / num_key_value_heads ",
                     c.num_key_value_heads,
                     "), and a rank's query heads must hold whole groups"));
  }
  Split inter{"tp_intermediate_size_list", &c.tp_intermediate_size_list,
              keyName(model, "intermediate_size"), c.intermediate_size,
              "column"};
  // Only an encoder-decoder (BART) sets the decoder's sizes.
  followDecoder(heads, "decoder_attention_heads", c.decoder_attention_heads);
  followDecoder(inter, "decoder_ffn_dim", c.decoder_ffn_dim);
  Split seq{"seq_scatter_list", &c.seq_scatter_list, "pad_size", c.pad_size,
            "position"};
  // Stages cut the model's layer sequence (BART: encoder then decoder).
  Split stages{"stage_num_hidden_layers_list", &c.stage_num_hidden_layers_list,
               model ? model->layerCountKey.c_str() : "num_hidden_layers",
               model ? models::layerCount(*model, c) : c.num_hidden_layers,
               "layer"};
  Split batch{"dp_batch_list", &c.dp_batch_list, "batch_size", c.batch_size,
              "sample"};
  switch (mode) {
  case ParallelMode::kSerial:
    return {};
  case ParallelMode::kDP:
    return {batch};
  case ParallelMode::kTP:
    return {heads, inter};
  case ParallelMode::kSP:
    return {seq};
  case ParallelMode::kPP: {
    // A stage group's splits, but not dp's: a pipeline splits each
    // microbatch's rows evenly over the group (its size is only known per
    // microbatch).
    std::vector<Split> out;
    if (c.pp_group_mode != ParallelMode::kDP)
      out = splitsFor(c, c.pp_group_mode);
    out.insert(out.begin(), stages);
    return out;
  }
  case ParallelMode::kGalaxy: {
    RegionMethods m = regionMethods(c);
    std::vector<Split> out;
    if (m.att == BlockMethod::kTP)
      out.push_back(heads);
    if (m.mlp == BlockMethod::kTP)
      out.push_back(inter);
    if (m.att == BlockMethod::kSP || m.con == BlockMethod::kSP ||
        m.mlp == BlockMethod::kSP)
      out.push_back(seq);
    return out;
  }
  }
  return {};
}

namespace {
// The partition pass's name of a region method.
std::string methodName(BlockMethod m) {
  return m == BlockMethod::kTP ? "tp" : m == BlockMethod::kSP ? "sp" : "none";
}
} // namespace

PartitionSpec partitionSpec(const GalaxyConfig &c, int64_t rows) {
  // A pipeline stage is partitioned as its group: the group mode over
  // pp_group_size ranks, a dp group splitting the microbatch's rows evenly.
  const bool pp = c.parallel_mode == ParallelMode::kPP;
  const ParallelMode mode = pp ? c.pp_group_mode : c.parallel_mode;
  PartitionSpec s;
  s.world = std::max(pp ? c.pp_group_size : c.world_size, 1);
  switch (mode) {
  case ParallelMode::kSerial:
  case ParallelMode::kPP: // not a group mode
    return s;
  case ParallelMode::kDP:
    s.att = s.con = s.mlp = s.other = "dp";
    break;
  default: {
    RegionMethods m = regionMethods(c);
    s.att = methodName(m.att);
    s.con = methodName(m.con);
    s.mlp = methodName(m.mlp);
  }
  }
  s.batchSizes = pp && mode == ParallelMode::kDP
                     ? evenSplit(rows, c.pp_group_size)
                     : c.dp_batch_list;
  s.seqSizes = c.seq_scatter_list;
  s.headSizes = c.tp_num_attention_heads_list;
  s.interSizes = c.tp_intermediate_size_list;
  return s;
}

} // namespace galaxy::config
