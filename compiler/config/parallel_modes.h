// What each parallel mode means, in one place: which split lists it reads,
// the method each region (att, con, mlp) runs under, and what the partition
// pass is told for a resolved config (a pipeline stage partitioned as its
// group). resolve_parallel.cc fills and checks the lists; compiler/Pipeline
// only copies partitionSpec() into the pass options.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/config/galaxy_config.h"

namespace galaxy::config {

// The method each region runs under the config's parallel_mode: serial, dp
// and pp replicate all three (None); tp is TP/None/TP; sp is SP/SP/SP; galaxy
// takes att/con/mlp_parallel_method from the config. A hybrid pipeline's
// stages run its group mode.
struct RegionMethods {
  BlockMethod att, con, mlp;
};
RegionMethods regionMethods(const GalaxyConfig &c);

// One per-rank split list of a config and what it splits.
struct Split {
  const char *list;
  std::vector<int64_t> *values;
  const char *totalKey; // the config file's name (BART: encoder_ffn_dim)
  int64_t total;
  const char *unit; // singular: "head"
  // Every entry must be a multiple of this (grouped-query attention: a rank's
  // query heads hold whole KV groups; an encoder-decoder: a rank's share of
  // the decoder's heads or FFN columns, which follow the list in proportion,
  // is whole); `multipleWhy` says why.
  int64_t multiple = 1;
  std::string multipleWhy;
};

// The split lists `mode` reads, pointing into `c`: dp splits the batch, tp
// heads and intermediate columns, sp positions, galaxy what its region
// methods shard; pp splits layers into stages (first), then its group mode's
// lists, except dp's (a pipeline splits each microbatch's rows evenly over
// the group, see partitionSpec).
std::vector<Split> splitsFor(GalaxyConfig &c, ParallelMode mode);

// The partition pass's view of a resolved config (resolveConfig): the world
// it partitions over, a method per region ("none", "dp", "tp", "sp"; `other`
// is everything outside att/con/mlp) and the per-rank split lists. Field
// names are the pass options'.
struct PartitionSpec {
  int world = 1;
  std::string att = "none", con = "none", mlp = "none", other = "none";
  std::vector<int64_t> batchSizes, seqSizes, headSizes, interSizes;
};
// For a pipeline config, the spec of one stage compiled for microbatches of
// `rows` rows: its group mode over pp_group_size ranks (a dp group splits
// the rows evenly). `rows` is ignored otherwise.
PartitionSpec partitionSpec(const GalaxyConfig &c, int64_t rows = 0);

} // namespace galaxy::config
