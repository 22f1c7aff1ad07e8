#include "compiler/config/resolve_parallel.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "compiler/config/enum_names.h"
#include "compiler/config/error_text.h"
#include "compiler/config/parallel_modes.h"
#include "compiler/config/split.h"
#include "runtime/plan/size_limits.h"

namespace galaxy::config {
namespace {

// What would work instead of `v`, whose entries are not all multiples of
// s.multiple: the nearest list of multiples in v's proportion (an even one
// where that leaves a part empty), or the most parts any list can have.
std::string multiplesHint(const Split &s, const std::vector<int64_t> &v,
                          const std::string &partsName) {
  const int64_t units = s.total / s.multiple;
  if (units < static_cast<int64_t>(v.size()))
    return absl::StrCat("no list of ", v.size(), " multiples of ", s.multiple,
                        " sums to ", s.totalKey, " = ", s.total,
                        "; use at most ", units, " ", partsName);
  // Entries past the total are no proportion worth keeping (and their sum
  // could overflow).
  const bool sane =
      std::all_of(v.begin(), v.end(), [&](int64_t x) { return x <= s.total; });
  std::vector<int64_t> near =
      sane ? proportionalSplit(v, units) : std::vector<int64_t>{0};
  if (std::count(near.begin(), near.end(), 0))
    near = evenSplit(units, static_cast<int64_t>(v.size()));
  for (int64_t &x : near)
    x *= s.multiple;
  return absl::StrCat("use multiples of ", s.multiple, ", e.g. ", s.list, " = ",
                      listText(near));
}

// Fills an absent list with an even split, then checks it: `parts` entries
// (`partsWhat` says why that many), each >= 1, summing to the total. `part` is
// "rank" or "microbatch".
absl::Status resolveSplit(const GalaxyConfig &c, const Split &s, int64_t parts,
                          const std::string &part,
                          const std::string &partsWhat) {
  const std::string work = part == "rank" ? " (ranks must get work)" : "";
  const std::string partsName = part == "rank"    ? "ranks"
                                : part == "stage" ? "stages"
                                                  : "microbatches";
  std::vector<int64_t> &v = *s.values;
  if (v.empty() && s.multiple > 1) {
    const int64_t units = s.total / s.multiple;
    if (units < parts)
      return bad(c, absl::StrCat(s.totalKey, " = ", s.total,
                                 " cannot be split over ", parts, " ",
                                 partsName, " (", s.list, "): ", s.multipleWhy,
                                 "; use at most ", units, " ", partsName));
    v = evenSplit(units, parts);
    for (int64_t &x : v)
      x *= s.multiple;
    return absl::OkStatus();
  }
  if (v.empty()) {
    if (s.total < parts)
      return bad(c, absl::StrCat(s.totalKey, " = ", s.total,
                                 " cannot be split over ", parts, " ",
                                 partsName, " (", s.list, "): every ", part,
                                 " needs at least one ", s.unit, work,
                                 "; use at most ", s.total, " ", partsName));
    v = evenSplit(s.total, parts);
    return absl::OkStatus();
  }
  if (static_cast<int64_t>(v.size()) != parts)
    return bad(c, absl::StrCat(s.list, " = ", listText(v), " has ", v.size(),
                               " entries but ", partsWhat));
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] <= 0)
      return bad(c,
                 absl::StrCat(s.list, " = ", listText(v), " gives ", part, " ",
                              i, " ", v[i], " ", s.unit, "s; every ", part,
                              " must get at least one ", s.unit, work));
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] % s.multiple != 0)
      return bad(c, absl::StrCat(s.list, " = ", listText(v), " gives ", part,
                                 " ", i, " ", v[i], " ", s.unit,
                                 "s, not a "
                                 "multiple of ",
                                 s.multiple, ": ", s.multipleWhy, "; ",
                                 multiplesHint(s, v, partsName)));
  // Checked: entries near 2^63 could otherwise wrap to the total.
  std::optional<int64_t> sum = 0;
  for (int64_t x : v)
    if (sum)
      sum = plan::checkedAdd(*sum, x);
  if (sum != s.total)
    return bad(c, absl::StrCat(s.list, " = ", listText(v), " sums to ",
                               sum ? absl::StrCat(*sum) : "more than 2^63",
                               " but ", s.totalKey, " is ", s.total));
  return absl::OkStatus();
}

// Pipeline world: stages (p, stage_num_hidden_layers_list) x group size (G,
// the group mode's split lists; 1 for a plain pipeline). Any two of world, p
// and G fix the third. Resolves the stage list and the group's lists.
absl::Status resolvePipelineWorld(GalaxyConfig &c, const ParallelChoice &choice,
                                  const std::vector<Split> &splits,
                                  const std::string &file) {
  const Split &stages = splits.front();
  int64_t p = c.stage_num_hidden_layers_list.size(), g = 0;
  std::string gFrom;
  for (size_t i = 1; i < splits.size() && !g; ++i)
    if (!splits[i].values->empty()) {
      g = splits[i].values->size();
      gFrom = splits[i].list;
    }
  const bool plain = c.pp_group_mode == ParallelMode::kSerial;
  if (plain)
    g = 1;
  int64_t world = choice.world > 0   ? choice.world
                  : c.world_size > 0 ? c.world_size
                                     : 0;
  if (choice.world > 0 && c.world_size > 0 && c.world_size != choice.world)
    c.warnings.push_back(absl::StrCat(
        "world_size = ", c.world_size, " in ", file,
        " is overridden by the command line (", choice.world, ")"));
  const std::string mode = modeString(c.parallel_mode, c.pp_group_mode);
  if (!world) {
    if (!p)
      return bad(
          c,
          absl::StrCat("parallel_mode \"", mode,
                       "\" needs the stages: give stage_num_hidden_layers_list "
                       "(layers per stage), or a world size (--world N or "
                       "world_size)",
                       plain ? "" : " and the group's split list"));
    if (!g)
      return bad(c, absl::StrCat(
                        "parallel_mode \"", mode,
                        "\" needs the group size of each stage: pass --world N "
                        "(stages x group size), set world_size, or give the ",
                        toString(c.pp_group_mode), " split lists"));
    world = p * g;
  }
  if (!p && g) {
    if (world % g)
      return bad(c, absl::StrCat("world size ", world,
                                 " is not a multiple of the group size ", g,
                                 " (from ", gFrom, ")"));
    p = world / g;
  }
  if (p && !g) {
    if (world % p)
      return bad(c, absl::StrCat("world size ", world,
                                 " is not a multiple of the ", p,
                                 " stages of stage_num_hidden_layers_list"));
    g = world / p;
  }
  if (!p)
    return bad(c,
               absl::StrCat("parallel_mode \"", mode, "\" with world ", world,
                            " needs stage_num_hidden_layers_list or the ",
                            toString(c.pp_group_mode),
                            " split lists to tell stages from group ranks"));
  if (p * g != world)
    return bad(c,
               absl::StrCat(
                   "world size ", world,
                   " must be stages x group size, but "
                   "stage_num_hidden_layers_list gives ",
                   p, " stages and ",
                   plain ? std::string("a plain pipeline has 1 rank per stage")
                         : absl::StrCat("the group has ", g, " ranks"),
                   "; use --world ", p * g));
  if (p < 2)
    c.warnings.push_back(absl::StrCat("a pipeline of one stage (", mode,
                                      ") runs like its group mode alone"));
  GALAXY_CONFIG_TRY(resolveSplit(
      c, stages, p, "stage",
      absl::StrCat("the pipeline has ", p, " stages (world ", world, " = ", p,
                   " stages x ", g, " ranks per stage)")));
  for (size_t i = 1; i < splits.size(); ++i)
    GALAXY_CONFIG_TRY(resolveSplit(c, splits[i], g, "rank",
                                   absl::StrCat("each stage is a group of ", g,
                                                " ranks (world ", world, " = ",
                                                p, " stages x ", g, ")")));
  c.world_size = static_cast<int>(world);
  c.pp_group_size = static_cast<int>(g);
  return absl::OkStatus();
}

} // namespace

absl::Status resolveParallel(GalaxyConfig &c, const ParallelChoice &choice) {
  const std::string file = c.source.empty() ? "the config" : c.source;
  // Prototype configs carry no parallel_mode (the script chose it), so only a
  // file that names a parallel mode is worth a warning when overridden.
  if (choice.mode && *choice.mode != c.parallel_mode &&
      c.parallel_mode != ParallelMode::kSerial)
    c.warnings.push_back(absl::StrCat(
        "parallel_mode ", quoted(toString(c.parallel_mode)), " in ", file,
        " is overridden by the command line (", toString(*choice.mode), ")"));
  if (choice.mode) {
    c.parallel_mode = *choice.mode;
    c.pp_group_mode = choice.groupMode;
  }
  if (c.parallel_mode != ParallelMode::kPP)
    c.pp_group_mode = ParallelMode::kSerial;
  if (choice.world < 0)
    return bad(c, absl::StrCat("the command line asks for world size ",
                               choice.world, "; it must be positive"));
  if (c.world_size < 0)
    return bad(c, absl::StrCat("world_size = ", c.world_size,
                               " must be positive (or leave it out to infer "
                               "it from the split lists)"));

  std::vector<Split> splits = splitsFor(c, c.parallel_mode);
  // Clear lists this mode does not read, so the resolved config says exactly
  // what the compiler uses.
  auto used = [&](const std::vector<int64_t> *list) {
    for (const Split &s : splits)
      if (s.values == list)
        return true;
    return false;
  };
  for (auto [name, list] :
       {std::pair{"tp_num_attention_heads_list",
                  &c.tp_num_attention_heads_list},
        std::pair{"tp_intermediate_size_list", &c.tp_intermediate_size_list},
        std::pair{"seq_scatter_list", &c.seq_scatter_list},
        std::pair{"stage_num_hidden_layers_list",
                  &c.stage_num_hidden_layers_list},
        std::pair{"dp_batch_list", &c.dp_batch_list}})
    if (!used(list) && !list->empty()) {
      c.warnings.push_back(absl::StrCat(name, " in ", file, " is not used in ",
                                        toString(c.parallel_mode),
                                        " mode; ignored"));
      list->clear();
    }

  // The world size: command line, then world_size, then the first list given.
  int world = 0;
  std::string worldFrom;
  if (c.parallel_mode == ParallelMode::kPP) {
    GALAXY_CONFIG_TRY(resolvePipelineWorld(c, choice, splits, file));
    world = c.world_size;
  } else if (c.parallel_mode == ParallelMode::kSerial) {
    if (choice.world > 1)
      return bad(c, absl::StrCat("parallel_mode is \"serial\" (one rank) but "
                                 "the command line asks for world size ",
                                 choice.world,
                                 "; choose a parallel mode or world size 1"));
    if (c.world_size > 1)
      c.warnings.push_back(absl::StrCat("world_size = ", c.world_size, " in ",
                                        file,
                                        " ignored: serial mode runs one rank"));
    world = 1;
  } else if (choice.world > 0) {
    world = choice.world;
    worldFrom = "the command line";
    if (c.world_size > 0 && c.world_size != world)
      c.warnings.push_back(
          absl::StrCat("world_size = ", c.world_size, " in ", file,
                       " is overridden by the command line (", world, ")"));
  } else if (c.world_size > 0) {
    world = c.world_size;
    worldFrom = "world_size";
  } else {
    for (const Split &s : splits)
      if (!s.values->empty()) {
        world = static_cast<int>(s.values->size());
        worldFrom = s.list;
        break;
      }
    if (world == 0) {
      std::vector<std::string> lists;
      for (const Split &s : splits)
        lists.push_back(s.list);
      return bad(
          c, absl::StrCat("parallel_mode ", quoted(toString(c.parallel_mode)),
                          " needs a world size: pass --world N, set world_size",
                          lists.empty() ? "" : ", or give ",
                          absl::StrJoin(lists, " or ")));
    }
  }
  c.world_size = world;

  for (const Split &s : splits)
    if (c.parallel_mode != ParallelMode::kPP)
      GALAXY_CONFIG_TRY(resolveSplit(
          c, s, world, "rank",
          absl::StrCat("world size is ", world,
                       " (one entry per rank); the world size comes from ",
                       worldFrom)));

  if (c.parallel_mode == ParallelMode::kPP) {
    Split micro{"pp_microbatch_list", &c.pp_microbatch_list, "batch_size",
                c.batch_size, "sample"};
    GALAXY_CONFIG_TRY(
        resolveSplit(c, micro, c.num_microbatches, "microbatch",
                     absl::StrCat("num_microbatches is ", c.num_microbatches,
                                  " (one entry per microbatch)")));
    const size_t stages = c.stage_num_hidden_layers_list.size();
    if (c.pp_microbatch_list.size() < stages)
      c.warnings.push_back(absl::StrCat(
          c.pp_microbatch_list.size(), " microbatch",
          c.pp_microbatch_list.size() == 1 ? "" : "es", " for ", stages,
          " pipeline stages: at most ", c.pp_microbatch_list.size(),
          " stage(s) work at a time; set num_microbatches to ", stages,
          " or more to keep every stage busy"));
    if (c.pp_group_mode == ParallelMode::kDP)
      for (int64_t rows : c.pp_microbatch_list)
        if (rows < c.pp_group_size)
          return bad(
              c, absl::StrCat(
                     "pp_microbatch_list = ", listText(c.pp_microbatch_list),
                     " has a microbatch of ", rows,
                     " rows, but pp+dp splits every microbatch over its ",
                     c.pp_group_size,
                     " group ranks; make each microbatch at least that "
                     "big (fewer microbatches or a larger batch_size)"));
  } else if (!c.pp_microbatch_list.empty()) {
    c.warnings.push_back(
        absl::StrCat("pp_microbatch_list in ", file, " is not used in ",
                     toString(c.parallel_mode), " mode; ignored"));
    c.pp_microbatch_list.clear();
  }
  return absl::OkStatus();
}

} // namespace galaxy::config
