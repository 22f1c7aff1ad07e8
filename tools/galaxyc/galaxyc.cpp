// galaxyc: compiles a model + parallel config into one execution plan per rank,
// and prints the IR after any stage so users can see what the compiler did.
#include <cstdio>
#include <malloc.h>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "compiler/LowerToPlan.h"
#include "compiler/Pipeline.h"
#include "compiler/PipelinePlans.h"
#include "compiler/config/enum_names.h"
#include "compiler/config/parse.h"
#include "compiler/config/validate.h"
#include "compiler/planner/planner.h"
#include "compiler/profile/report.h"
#include "google/protobuf/text_format.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "models/llama/LlamaInference.h"
#include "runtime/plan/devices_io.h"
#include "tools/galaxyc/plan_writer.h"
#include "tools/galaxyc/summary.h"
#include "llvm/Support/raw_ostream.h"

namespace fs = std::filesystem;
using namespace galaxy;

namespace {

constexpr const char *kUsage =
    R"(galaxyc - compile a transformer config into per-rank execution plans

Usage: galaxyc CONFIG.json [options]

Options:
  --mode=MODE      parallel mode: serial|dp|tp|sp|galaxy|pp, or a pipeline of
                   SPMD groups: pp+dp|pp+tp|pp+sp|pp+galaxy (world = stages x
                   group size; stages from stage_num_hidden_layers_list)
                   (default: the config's "parallel_mode", else serial)
  --world=N        number of ranks (default: the config's "world_size", else the
                   length of the mode's split lists)
  --emit=WHAT      what to print on stdout:
                     summary    a one-screen summary of the IR and plan (default)
                     ir         the MLIR module after the stage --after names
                     plan-text  the plan of --rank in protobuf text form
                     none       nothing
  --after=STAGE    with --emit=ir: model|annotate|peft|pipeline|autodiff|partition
                   (pipeline configs print every stage, each under a comment
                   naming its layers, ranks and the tensors it sends/receives)
                   (default: model; -o implies partition, what is lowered)
  --rank=R         with --emit=plan-text: the rank whose plan to print (default 0)
  -o DIR           write the plans to DIR/rank<R>.plan.pb (created if missing)
  --profile        print the static profile of every rank and in total: parameters,
                   forward/backward/optimizer FLOPs, bytes per collective, memory,
                   an aggregated profile by depth and the detailed tree (DeepSpeed
                   flops-profiler layout; rules in docs/profiler.md). Replaces the
                   default summary unless --emit is given.
  --profile-json=FILE
                   write the same profile as JSON to FILE ("-" = stdout)
  --profile-depth=D
                   deepest tree level printed: 0 model, 1 embedding/layer.N/pooler/
                   head, 2 blocks (att/con/mlp), 3 op kinds (default: all)
  --max-seq=N      positions of a causal LM's KV cache (its prefill/decode
                   programs: prompt + new tokens must fit), at most
                   max_position_embeddings (default: the config's "max_seq",
                   else pad_size)
  --inference      forward-only plans: eval_step (and a causal LM's prefill/
                   decode), no train_step, no gradients or optimizer state
                   (galaxy-run --predict/--generate/--eval; the config's
                   "inference": true does the same)
  --auto           choose the parallel configuration for the devices of
                   --devices (world = their number): block methods, splits,
                   pipeline stages and microbatches, predicted per rank; writes
                   the plans and DIR/chosen-config.json (compiler/planner/)
  --devices=FILE   DEVICES.json (galaxy-run --calibrate, or by hand); without
                   --auto: predict this config's time per rank on those devices
                   (one per rank) instead of the summary
  --objective=O    with --auto: step (training step time, default) | latency
                   (forward latency)
  --explain        with --auto: list every candidate considered
  --no-fuse        leave the op pairs galaxy-fuse would fuse apart (dropout+add,
                   the bias gradients; passes/README.md): the same results,
                   more kernel calls; for A/B benchmarks of the fusions
  -h, --help       this text

Exit status: 0 success, 2 bad command line or invalid config (nothing written),
1 compiler failure. --auto: 2 also when no configuration fits the devices'
memory (the message names the device and what it lacks).
)";

struct Args {
  std::string config, emit, after = "model", outDir, profileJson;
  std::string devices, objective = "step"; // --auto
  bool autoPlan = false, explain = false;
  std::optional<std::string> mode;
  int world = 0, rank = 0, profileDepth = -1, maxSeq = -1;
  bool profile = false, inference = false, noFuse = false;
};

[[noreturn]] void usageError(const std::string &msg) {
  std::cerr << "galaxyc: " << msg << "\n(run galaxyc --help for usage)\n";
  std::exit(2);
}

int parseInt(const std::string &flag, const std::string &v) {
  try {
    size_t used = 0;
    int n = std::stoi(v, &used);
    if (used == v.size() && n >= 0)
      return n;
  } catch (...) {
  }
  usageError(
      absl::StrCat(flag, " expects a non-negative integer, got '", v, "'"));
}

Args parseArgs(int argc, char **argv) {
  Args a;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i], value;
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    auto takeValue = [&](const std::string &flag) {
      if (arg.rfind(flag + "=", 0) == 0)
        return arg.substr(flag.size() + 1);
      if (arg == flag) {
        if (i + 1 >= args.size())
          usageError(flag + " needs a value");
        return args[++i];
      }
      return std::string("\x01");
    };
    if (arg == "--profile")
      a.profile = true;
    else if (arg == "--auto")
      a.autoPlan = true;
    else if (arg == "--explain")
      a.explain = true;
    else if ((value = takeValue("--devices")) != "\x01")
      a.devices = value;
    else if ((value = takeValue("--objective")) != "\x01")
      a.objective = value;
    else if (arg == "--inference")
      a.inference = true;
    else if (arg == "--no-fuse")
      a.noFuse = true;
    else if ((value = takeValue("--max-seq")) != "\x01")
      a.maxSeq = parseInt("--max-seq", value);
    else if ((value = takeValue("--profile-json")) != "\x01")
      a.profileJson = value;
    else if ((value = takeValue("--profile-depth")) != "\x01")
      a.profileDepth = parseInt("--profile-depth", value);
    else if ((value = takeValue("--mode")) != "\x01")
      a.mode = value;
    else if ((value = takeValue("--world")) != "\x01")
      a.world = parseInt("--world", value);
    else if ((value = takeValue("--emit")) != "\x01")
      a.emit = value;
    else if ((value = takeValue("--after")) != "\x01")
      a.after = value;
    else if ((value = takeValue("--rank")) != "\x01")
      a.rank = parseInt("--rank", value);
    else if ((value = takeValue("-o")) != "\x01")
      a.outDir = value;
    else if ((value = takeValue("--out")) != "\x01")
      a.outDir = value;
    else if (!arg.empty() && arg[0] == '-')
      usageError("unknown option '" + arg + "'");
    else if (a.config.empty())
      a.config = arg;
    else
      usageError("more than one config given ('" + a.config + "' and '" + arg +
                 "')");
  }
  if (a.config.empty())
    usageError("no config given");
  if (a.autoPlan && a.devices.empty())
    usageError("--auto needs --devices DEVICES.json");
  if (a.autoPlan && (a.mode || a.world))
    usageError("--auto chooses the mode and the world (the devices' number): "
               "drop --mode and --world");
  if (!a.autoPlan && a.explain)
    usageError("--explain goes with --auto");
  if (a.objective != "step" && a.objective != "latency")
    usageError("--objective must be step or latency, got '" + a.objective +
               "'");
  if (a.emit.empty())
    a.emit = a.profile || !a.profileJson.empty() ? "none" : "summary";
  if (a.emit != "summary" && a.emit != "ir" && a.emit != "plan-text" &&
      a.emit != "none")
    usageError("--emit must be summary, ir, plan-text or none, got '" + a.emit +
               "'");
  const auto &stages = pipelineStages();
  if (std::find(stages.begin(), stages.end(), a.after) == stages.end())
    usageError("--after must be one of model, annotate, peft, pipeline, "
               "autodiff, partition, got '" +
               a.after + "'");
  return a;
}

// Writes plans that are all held already (pipeline stages).
absl::Status writePlans(const std::string &dir,
                        const std::vector<plan::Plan> &plans) {
  auto writer = PlanWriter::open(dir, static_cast<int>(plans.size()));
  if (!writer.ok())
    return writer.status();
  for (const plan::Plan &p : plans)
    if (absl::Status s = (*writer)->add(p); !s.ok())
      return s;
  return (*writer)->commit();
}

// Pipeline configs: every stage is compiled on its own (per microbatch size).
int compilePipelineMain(const Args &args, const config::GalaxyConfig &cfg,
                        const std::string &stage, bool needPlan,
                        bool wantProfile) {
  if (wantProfile) {
    std::cerr << "galaxyc: --profile does not cover pipeline plans yet; "
                 "profile one stage's layers with a serial or SPMD config, or "
                 "measure with galaxy-run --profile\n";
    return 2;
  }
  const int world = cfg.world_size;
  const std::string mode =
      config::modeString(cfg.parallel_mode, cfg.pp_group_mode);
  mlir::MLIRContext ctx;
  if (args.emit == "ir") {
    auto c = compilePipeline(ctx, cfg, stage, false);
    if (!c.ok()) {
      std::cerr << "galaxyc: " << c.status().message() << "\n";
      return 1;
    }
    for (size_t s = 0; s < c->stageModules.size(); ++s) {
      llvm::outs() << stageBanner(cfg, s, *c->stageModules[s]);
      c->stageModules[s]->print(llvm::outs());
      llvm::outs() << "\n";
    }
  }
  std::vector<plan::Plan> plans;
  if (needPlan) {
    auto c = compilePipeline(ctx, cfg, "partition", true);
    if (!c.ok()) {
      std::cerr << "galaxyc: " << c.status().message() << "\n";
      return 1;
    }
    plans = std::move(c->plans);
  }
  if (args.emit == "summary") {
    std::cout << "config " << args.config << " (" << mode << ", world " << world
              << ")\n"
              << pipelineReport(cfg, plans);
    for (const plan::Plan &p : plans)
      std::cout << "stage " << p.pipeline().stage() << ", group rank "
                << p.rank() << ":\n"
                << summarizePlan(p);
  } else if (args.emit == "plan-text") {
    std::string text;
    google::protobuf::TextFormat::PrintToString(plans[args.rank], &text);
    std::cout << text;
  }
  if (!args.outDir.empty()) {
    if (absl::Status s = writePlans(args.outDir, plans); !s.ok()) {
      std::cerr << "galaxyc: " << s.message() << "\n";
      return 1;
    }
    std::cerr << "galaxyc: wrote " << plans.size() << " plan(s) to "
              << args.outDir << "\n";
    std::cerr << pipelineReport(cfg, plans);
  }
  return 0;
}

// --auto: the planner chooses and compiles; the plans and the chosen config
// go to -o. --devices alone: `config` is resolved, the planner predicts it.
int planAutoMain(const Args &args, const config::GalaxyConfig &loaded) {
  auto devices = plan::readDevicesFile(args.devices);
  if (!devices.ok()) {
    std::cerr << "galaxyc: " << devices.status().message() << "\n";
    return 2;
  }
  const planner::Options opts{args.objective == "latency", args.explain};
  auto res = args.autoPlan ? planner::planAuto(loaded, *devices, opts)
                           : planner::predictConfig(loaded, *devices, opts);
  if (!res.ok()) {
    std::cerr << "galaxyc: " << res.status().message() << "\n";
    return res.status().code() == absl::StatusCode::kInternal ? 1 : 2;
  }
  std::cout << res->report << std::flush;
  if (args.outDir.empty())
    return 0;
  if (absl::Status s = writePlans(args.outDir, std::move(res->plans));
      !s.ok()) {
    std::cerr << "galaxyc: " << s.message() << "\n";
    return 1;
  }
  if (!args.autoPlan) {
    std::cerr << "galaxyc: wrote " << res->chosen.world_size << " plan(s)\n";
    return 0;
  }
  const fs::path json = fs::path(args.outDir) / "chosen-config.json";
  std::ofstream out(json, std::ios::trunc);
  if (!out || !(out << res->chosenJson) || !out.flush()) {
    std::cerr << "galaxyc: cannot write '" << json.string() << "'\n";
    return 1;
  }
  std::cerr << "galaxyc: wrote " << res->chosen.world_size << " plan(s) and "
            << json.string() << "\n";
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  // Lowering ranks in parallel allocates and frees a few MB per rank (each
  // plan's serialized bytes, the arena placer's sets): with glibc's default
  // thresholds the worker threads' heaps gave those pages back and faulted
  // them in again, rank after rank (a 70B-shaped compile over 64 ranks: 141k
  // page faults and 0.7-0.8 s of system time, 18k and 0.3 s with this).
  // Freed memory is kept for the next rank instead; the peak grows a little
  // (109 -> ~120 MB there).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  Args args = parseArgs(argc, argv);

  auto loaded = config::loadConfig(args.config);
  if (!loaded.ok()) {
    std::cerr << "galaxyc: " << loaded.status().message() << "\n";
    return 2;
  }
  // Inference flags override the config's keys (checked with them).
  if (args.maxSeq >= 0)
    loaded->max_seq = args.maxSeq;
  if (args.inference)
    loaded->inference = true;
  if (args.noFuse)
    loaded->fuse = false;
  if (args.autoPlan)
    return planAutoMain(args, *loaded);
  config::ParallelChoice choice;
  if (args.mode) {
    auto mode = config::parseModeSpec(*args.mode);
    if (!mode.ok())
      usageError(absl::StrCat("--mode: ", mode.status().message()));
    choice.mode = mode->mode;
    choice.groupMode = mode->group;
  }
  choice.world = args.world;
  auto resolved = config::resolveConfig(*loaded, choice);
  if (!resolved.ok()) {
    std::cerr << "galaxyc: " << resolved.status().message() << "\n";
    return 2;
  }
  const config::GalaxyConfig &cfg = *resolved;
  for (const std::string &w : cfg.warnings)
    std::cerr << "galaxyc: warning: " << w << "\n";
  if (!args.devices.empty())
    return planAutoMain(args, cfg);
  if (cfg.max_seq > 0 && (!llamaInferenceApplies(cfg) ||
                          cfg.parallel_mode == config::ParallelMode::kPP))
    std::cerr << "galaxyc: warning: max_seq " << cfg.max_seq
              << " sizes the KV cache of a causal LLaMA in an SPMD mode; this "
                 "config compiles none (ignored)\n";

  int world = cfg.world_size > 0 ? cfg.world_size : 1;
  bool wantProfile = args.profile || !args.profileJson.empty();
  bool needPlan = !args.outDir.empty() || args.emit == "plan-text" ||
                  args.emit == "summary" || wantProfile;
  if (args.emit == "ir" && !args.outDir.empty() && args.after == "model")
    args.after = "partition"; // -o with --emit=ir prints what is lowered
  std::string stage = args.emit == "ir" ? args.after : "partition";
  if (needPlan && args.emit == "ir" && args.after != "partition")
    usageError(
        wantProfile
            ? "the profile reads the partitioned IR: use --after=partition "
              "with --profile"
            : "plans are lowered from the partitioned IR: use "
              "--after=partition with -o");
  if (args.emit == "plan-text" && args.rank >= world)
    usageError(
        absl::StrCat("--rank ", args.rank, " is outside the world of ", world));

  if (cfg.parallel_mode == config::ParallelMode::kPP)
    return compilePipelineMain(args, cfg, stage, needPlan, wantProfile);
  mlir::MLIRContext ctx;
  auto module = compileToStage(ctx, cfg, stage);
  if (!module.ok()) {
    std::cerr << "galaxyc: " << module.status().message() << "\n";
    return 1;
  }
  if (args.emit == "ir") {
    (**module)->print(llvm::outs());
    llvm::outs() << "\n";
  }
  // Each rank's plan is written (and summarized) as soon as it is lowered;
  // only the profile needs them all at once.
  std::unique_ptr<PlanWriter> writer;
  if (!args.outDir.empty()) {
    auto w = PlanWriter::open(args.outDir, world);
    if (!w.ok()) {
      std::cerr << "galaxyc: " << w.status().message() << "\n";
      return 1;
    }
    writer = std::move(*w);
  }
  std::vector<plan::Plan> plans;
  std::vector<std::string> summaries;
  std::string rankText;
  if (needPlan) {
    if (wantProfile)
      plans.resize(world);
    if (args.emit == "summary")
      summaries.resize(world);
    absl::Status s = lowerEachRank(
        **module, cfg, world, [&](plan::Plan &&p) -> absl::Status {
          const int r = p.rank();
          if (args.emit == "summary")
            summaries[r] = summarizePlan(p);
          else if (args.emit == "plan-text" && r == args.rank)
            google::protobuf::TextFormat::PrintToString(p, &rankText);
          if (writer)
            if (absl::Status w = writer->add(p); !w.ok())
              return w;
          if (wantProfile)
            plans[r] = std::move(p);
          return absl::OkStatus();
        });
    if (!s.ok()) {
      std::cerr << "galaxyc: " << s.message() << "\n";
      return 1;
    }
  }
  if (args.emit == "summary") {
    std::cout << "config " << args.config << " ("
              << config::toString(cfg.parallel_mode) << ", world " << world
              << ")\n"
              << summarizeModule(**module);
    for (const std::string &text : summaries)
      std::cout << text;
  } else if (args.emit == "plan-text") {
    std::cout << rankText;
  }
  if (wantProfile) {
    auto prof = profile::profileModule(**module, plans);
    if (!prof.ok()) {
      std::cerr << "galaxyc: " << prof.status().message() << "\n";
      return 1;
    }
    if (args.profile) {
      profile::ReportOptions ro;
      ro.title =
          absl::StrCat(args.config, " (", config::toString(cfg.parallel_mode),
                       ", world ", world, ")");
      ro.depth = args.profileDepth;
      std::cout << profile::profileText(*prof, ro);
    }
    if (!args.profileJson.empty()) {
      std::string json = profile::profileJson(*prof) + "\n";
      if (args.profileJson == "-") {
        std::cout << json;
      } else {
        std::ofstream out(args.profileJson, std::ios::trunc);
        if (!out || !(out << json) || !out.flush()) {
          std::cerr << "galaxyc: cannot write --profile-json file '"
                    << args.profileJson << "'\n";
          return 1;
        }
      }
    }
  }
  if (writer) {
    if (absl::Status s = writer->commit(); !s.ok()) {
      std::cerr << "galaxyc: " << s.message() << "\n";
      return 1;
    }
    std::cerr << "galaxyc: wrote " << world << " plan(s) to " << args.outDir
              << "\n";
  }
  return 0;
}
