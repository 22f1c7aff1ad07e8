// galaxy-run: executes a compiled plan — trains, evaluates, saves weights.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "runtime/exec/executor.h"
#include "runtime/io/dataset.h"
#include "runtime/io/safetensors.h"

namespace fs = std::filesystem;
using namespace galaxy;

namespace {

constexpr const char *kUsage = R"(galaxy-run - execute a Galaxy plan (train, evaluate, save)

Usage: galaxy-run PLAN_DIR --data FILE [options]

PLAN_DIR is what `galaxyc CONFIG -o PLAN_DIR` wrote (or one .plan.pb file).

Data:
  --data FILE        training data: text<TAB>label lines (needs --vocab) or
                     pre-tokenized .jsonl rows {"input_ids": [...], "label": k, ...}
  --vocab FILE       vocab.txt for text data
  --shuffle          reshuffle the rows every epoch (seeded by --seed)
  --eval FILE        evaluate on FILE after training: loss and accuracy
  --eval-out FILE    write {"loss", "accuracy", "logits"} of the evaluation as JSON
Run:
  --steps N          optimizer steps (default: one epoch)
  --epochs E         epochs instead of steps
  --seed S           seed of initialisation, dropout and shuffling (default 42)
  --log-every K      progress line every K steps (default: about 20 lines a run)
Weights:
  --init FILE        start from a safetensors checkpoint (Hugging Face names);
                     default: seeded random initialisation
  --save FILE        write the final weights as safetensors (atomically)
  --metrics FILE     one JSON object per step: {"step", "loss", "samples_per_s"}
  -h, --help         this text

Exit status: 0 success, 2 bad command line or input, 1 run failure.
)";

struct Args {
  std::string plan, data, vocab, eval, evalOut, init, save, metrics;
  int64_t steps = -1, epochs = -1, logEvery = 0;
  uint64_t seed = 42;
  bool shuffle = false;
};

[[noreturn]] void fail(int code, const std::string &msg) {
  std::cerr << "galaxy-run: " << msg << "\n";
  std::exit(code);
}

int64_t parseInt(const std::string &flag, const std::string &v) {
  try {
    size_t used = 0;
    long long n = std::stoll(v, &used);
    if (used == v.size() && n >= 0)
      return n;
  } catch (...) {
  }
  fail(2, absl::StrCat(flag, " expects a non-negative integer, got '", v, "'"));
}

Args parseArgs(int argc, char **argv) {
  Args a;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &arg = args[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    std::string flag = arg, value;
    bool hasValue = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      hasValue = true;
    }
    auto val = [&]() -> std::string {
      if (hasValue)
        return value;
      if (i + 1 >= args.size())
        fail(2, flag + " needs a value");
      return args[++i];
    };
    if (flag == "--data") a.data = val();
    else if (flag == "--vocab") a.vocab = val();
    else if (flag == "--eval") a.eval = val();
    else if (flag == "--eval-out") a.evalOut = val();
    else if (flag == "--init") a.init = val();
    else if (flag == "--save") a.save = val();
    else if (flag == "--metrics") a.metrics = val();
    else if (flag == "--steps") a.steps = parseInt(flag, val());
    else if (flag == "--epochs") a.epochs = parseInt(flag, val());
    else if (flag == "--seed") a.seed = parseInt(flag, val());
    else if (flag == "--log-every") a.logEvery = parseInt(flag, val());
    else if (flag == "--shuffle") a.shuffle = true;
    else if (!arg.empty() && arg[0] == '-') fail(2, "unknown option '" + arg + "' (see --help)");
    else if (a.plan.empty()) a.plan = arg;
    else fail(2, "more than one plan given ('" + a.plan + "' and '" + arg + "')");
  }
  if (a.plan.empty())
    fail(2, "no plan given (see --help)");
  if (a.data.empty() && a.eval.empty())
    fail(2, "nothing to do: give --data to train and/or --eval to evaluate");
  if (a.steps >= 0 && a.epochs >= 0)
    fail(2, "give either --steps or --epochs, not both");
  if (!a.evalOut.empty() && a.eval.empty())
    fail(2, "--eval-out needs --eval");
  return a;
}

absl::StatusOr<plan::Plan> readPlan(const std::string &where, int rank) {
  fs::path path = where;
  if (fs::is_directory(path))
    path /= absl::StrCat("rank", rank, ".plan.pb");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read plan '", path.string(),
                                            "' (compile one with galaxyc CONFIG -o DIR)"));
  plan::Plan p;
  if (!p.ParseFromIstream(&in))
    return absl::InvalidArgumentError(
        absl::StrCat("'", path.string(), "' is not a Galaxy plan (protobuf parse failed)"));
  return p;
}

std::string hms(double s) {
  int64_t t = int64_t(s + 0.5);
  return absl::StrFormat("%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
}

// Cross-entropy and argmax of one row of logits.
std::pair<double, bool> scoreRow(const float *logits, int64_t classes, int32_t label) {
  double mx = logits[0];
  int64_t arg = 0;
  for (int64_t c = 1; c < classes; ++c)
    if (logits[c] > mx) {
      mx = logits[c];
      arg = c;
    }
  double sum = 0;
  for (int64_t c = 0; c < classes; ++c)
    sum += std::exp(logits[c] - mx);
  return {std::log(sum) + mx - logits[label], arg == label};
}

int evaluate(rt::Executor &ex, const io::Dataset &data, const Args &args, uint64_t seed) {
  const plan::ModelInfo &m = ex.plan().model();
  const int64_t B = m.batch_size(), C = m.num_classes(), N = data.size();
  double loss = 0;
  int64_t correct = 0;
  std::vector<std::vector<float>> logits;
  rt::KernelContext ctx{seed, 0, /*training=*/false};
  for (int64_t start = 0; start < N; start += B) {
    // The plan's batch is fixed: the last partial batch wraps and the extra rows are ignored.
    io::Batch batch = data.batch(start / B, B);
    auto out = ex.run("eval_step", batch, ctx);
    if (!out.ok())
      fail(1, std::string(out.status().message()));
    const std::vector<float> &lg = (*out)["logits"];
    for (int64_t r = 0; r < B && start + r < N; ++r) {
      auto [l, ok] = scoreRow(&lg[r * C], C, batch.labels[r]);
      loss += l;
      correct += ok;
      logits.emplace_back(lg.begin() + r * C, lg.begin() + (r + 1) * C);
    }
  }
  std::cerr << absl::StrFormat("eval: %d rows, loss %.6f, accuracy %.4f\n", N, loss / N,
                               double(correct) / N);
  if (!args.evalOut.empty()) {
    std::string tmp = args.evalOut + ".tmp";
    std::ofstream o(tmp);
    o << absl::StrFormat("{\"loss\": %.9g, \"accuracy\": %.9g, \"rows\": %d, \"logits\": [",
                         loss / N, double(correct) / N, N);
    for (size_t r = 0; r < logits.size(); ++r) {
      o << (r ? ",\n" : "\n") << "[";
      for (size_t c = 0; c < logits[r].size(); ++c)
        o << (c ? ", " : "") << absl::StrFormat("%.9g", logits[r][c]);
      o << "]";
    }
    o << "]}\n";
    o.close();
    if (!o || std::rename(tmp.c_str(), args.evalOut.c_str()) != 0)
      fail(1, "cannot write '" + args.evalOut + "'");
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  Args args = parseArgs(argc, argv);
  auto planOr = readPlan(args.plan, 0);
  if (!planOr.ok())
    fail(2, std::string(planOr.status().message()));
  const plan::ModelInfo model = planOr->model();

  // Validate every input before anything is written.
  io::DatasetOptions dopts;
  dopts.padSize = model.seq_len();
  dopts.numClasses = model.num_classes();
  dopts.vocabSize = model.vocab_size();
  dopts.vocabPath = args.vocab;
  std::optional<io::Dataset> train, eval;
  if (!args.data.empty()) {
    auto d = io::Dataset::load(args.data, dopts);
    if (!d.ok())
      fail(2, std::string(d.status().message()));
    train = std::move(*d);
    if (args.shuffle)
      train->setShuffle(args.seed);
  }
  if (!args.eval.empty()) {
    auto d = io::Dataset::load(args.eval, dopts);
    if (!d.ok())
      fail(2, std::string(d.status().message()));
    eval = std::move(*d);
  }
  std::optional<io::SafetensorsFile> init;
  if (!args.init.empty()) {
    auto f = io::readSafetensors(args.init);
    if (!f.ok())
      fail(2, std::string(f.status().message()));
    init = std::move(*f);
  }

  auto backend = rt::makeCpuBackend();
  std::cerr << "galaxy-run: backend " << backend->name() << "; " << backend->gemmDescription()
            << "\n";
  auto exOr = rt::Executor::create(std::move(*planOr), *backend);
  if (!exOr.ok())
    fail(2, std::string(exOr.status().message()));
  rt::Executor &ex = **exOr;
  if (init) {
    if (absl::Status s = ex.loadParams(*init); !s.ok())
      fail(2, std::string(s.message()));
  } else {
    ex.initParams(args.seed);
  }

  if (train) {
    if (!ex.hasProgram("train_step"))
      fail(2, "the plan has no train_step program (it was compiled for inference)");
    const int64_t B = model.batch_size();
    int64_t steps = args.steps >= 0 ? args.steps
                    : args.epochs >= 0 ? (args.epochs * train->size() + B - 1) / B
                                       : (train->size() + B - 1) / B;
    int64_t logEvery = args.logEvery > 0 ? args.logEvery : std::max<int64_t>(1, steps / 20);
    std::ofstream metrics;
    if (!args.metrics.empty()) {
      metrics.open(args.metrics, std::ios::trunc);
      if (!metrics)
        fail(2, "cannot write metrics file '" + args.metrics + "'");
    }
    std::cerr << absl::StrFormat("galaxy-run: training %d steps, batch %d, %d rows in %s\n",
                                 steps, B, train->size(), args.data);
    auto t0 = std::chrono::steady_clock::now();
    double windowLoss = 0;
    int64_t windowSteps = 0;
    for (int64_t s = 0; s < steps; ++s) {
      io::Batch batch = train->batch(s, B);
      auto ts = std::chrono::steady_clock::now();
      auto out = ex.run("train_step", batch, rt::KernelContext{args.seed, s + 1, true});
      if (!out.ok())
        fail(1, std::string(out.status().message()));
      double loss = (*out)["loss"][0];
      if (!std::isfinite(loss))
        fail(1, absl::StrFormat("loss became %f at step %d; lower the learning rate", loss, s + 1));
      auto now = std::chrono::steady_clock::now();
      double stepS = std::chrono::duration<double>(now - ts).count();
      double total = std::chrono::duration<double>(now - t0).count();
      windowLoss += loss;
      ++windowSteps;
      if (metrics.is_open())
        metrics << absl::StrFormat("{\"step\": %d, \"loss\": %.9g, \"samples_per_s\": %.3f}\n",
                                   s + 1, loss, B / stepS)
                << std::flush;
      if ((s + 1) % logEvery == 0 || s + 1 == steps) {
        double rate = (s + 1) * B / total;
        std::cerr << absl::StrFormat("step %*d/%d  loss %.4f  %.1f samples/s  ETA %s\n",
                                     int(std::to_string(steps).size()), s + 1, steps,
                                     windowLoss / windowSteps, rate,
                                     hms((steps - s - 1) * B / rate));
        windowLoss = 0;
        windowSteps = 0;
      }
    }
  }
  if (!args.save.empty()) {
    if (absl::Status s = ex.saveParams(args.save); !s.ok())
      fail(1, std::string(s.message()));
    std::cerr << "galaxy-run: saved weights to " << args.save << "\n";
  }
  if (eval)
    return evaluate(ex, *eval, args, args.seed);
  return 0;
}
