// How one way of running an SPMD group costs, per layer and outside the
// layers, as a function of a rank's share: two small probe compiles (1 and 2
// layers, 2 ranks with shares of about 1/3 and 2/3) read with the ops' cost
// rules (work.h) and the lowered plans' sizes (plan_sizes.h). Per-rank work
// and memory are affine in the share (a + b * share), so the search can split
// analytically and only the winner needs a full compile.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compiler/config/galaxy_config.h"
#include "compiler/planner/work.h"

namespace galaxy::planner {

// How a group runs: serial (a group of one), dp, or Galaxy's region methods
// (tp is TP/None/TP, sp is SP/SP/SP).
struct Method {
  config::ParallelMode mode = config::ParallelMode::kSerial;
  config::BlockMethod att = config::BlockMethod::kNone,
                      con = config::BlockMethod::kNone,
                      mlp = config::BlockMethod::kNone;
  std::string name() const; // "serial", "dp", "tp", "sp", "galaxy TP/SP/TP"
  // Writes it as the config's parallel_mode (or, `asGroup`, its
  // pp_group_mode): tp and sp by their own names, else galaxy and the three
  // region methods.
  void applyTo(config::GalaxyConfig &c, bool asGroup) const;
};
// Every method for a group of `size` ranks: serial for 1, else dp and the
// eight Galaxy combinations (att TP|SP, con SP|None, mlp TP|SP).
std::vector<Method> methodsFor(int size);

// A split list the method fills: its key, total and the multiple each entry
// must be (parallel_modes.h splitsFor).
struct ListInfo {
  std::string key;
  int64_t total = 0, multiple = 1;
  int64_t units() const { return total / multiple; }
};

struct Affine {
  Work a, b;
  Work at(double share) const { return a + b.scaled(share); }
};
struct AffineBytes {
  double a = 0, b = 0;
  double at(double share) const { return a + b * share; }
};

struct MethodModel {
  Method method;
  std::vector<ListInfo> lists;
  // Block -> the list whose share drives it ("" = none: replicated work).
  std::map<std::string, std::string> driver;
  std::map<std::string, Affine> layer; // one layer ("layer.att", ...)
  // An encoder-decoder's (BART's) decoder layer, which costs more than an
  // encoder layer (its cross-attention): `layer` is then one encoder layer
  // (num_hidden_layers of them), `decoderLayer` one decoder layer
  // (decoder_layers). Empty for a single layer stack.
  std::map<std::string, Affine> decoderLayer;
  // Outside the layers ("embedding", "head", ...; "first.layer.att": what
  // the first layer costs beyond any other).
  std::map<std::string, Affine> fixed;
  AffineBytes memLayer, memFixed; // bytes the plan allocates
  AffineBytes memDecoderLayer;    // per decoder layer (BART)
  // The most ranks the lists can feed (every rank needs one unit of each).
  int64_t maxRanks() const;
};

// Whether `c`'s model has a decoder stack after its num_hidden_layers
// (BART: encoder_layers + decoder_layers).
bool hasDecoderStack(const config::GalaxyConfig &c);

// Probes `m` on `base` (the user's config; its parallel keys are replaced).
// An encoder-decoder is probed three times (1+1, 2+1 and 1+2 layers): its
// encoder and decoder layers are told apart.
// `forwardOnly`: the forward latency objective (walks @forward).
absl::StatusOr<MethodModel> probeMethod(const config::GalaxyConfig &base,
                                        const Method &m, bool forwardOnly);

} // namespace galaxy::planner
