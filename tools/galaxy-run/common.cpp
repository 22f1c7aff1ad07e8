#include "tools/galaxy-run/common.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/generate.h"
#include "runtime/exec/generate_seq2seq.h"
#include "runtime/exec/taps.h"
#include "runtime/io/plan_data.h"
#include "runtime/io/sentencepiece.h"
#include "runtime/io/temp_file.h"
#include "runtime/io/tensor_source.h"
#include "runtime/io/text_tokenizer.h"
#include "runtime/plan/plan_sizes.h"
#include "runtime/plan/version.h"
#include "tools/galaxy-run/memory_check.h"
#include "tools/galaxy-run/outputs.h"
#include "tools/galaxy-run/text_line.h"

namespace fs = std::filesystem;

namespace galaxy::run {

void fail(int code, const std::string &msg) {
  std::cerr << "galaxy-run: " << msg << "\n";
  throw Exit{code};
}

absl::StatusOr<plan::Plan> readPlan(const std::string &where, int rank,
                                    std::string *file) {
  fs::path path = where;
  if (fs::is_directory(path))
    path /= absl::StrCat("rank", rank, ".plan.pb");
  *file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(
        absl::StrCat("cannot read plan '", path.string(),
                     "' (compile one with galaxyc CONFIG -o DIR)"));
  plan::Plan p;
  if (!p.ParseFromIstream(&in))
    return absl::InvalidArgumentError(absl::StrCat(
        "'", path.string(), "' is not a Galaxy plan (protobuf parse failed)"));
  // Before anything reads the plan's contents: another version may mean
  // anything.
  if (p.format_version() != plan::kPlanFormatVersion)
    return absl::FailedPreconditionError(absl::StrCat(
        "'", path.string(), "' has format version ", p.format_version(),
        " but this galaxy-run reads version ", plan::kPlanFormatVersion,
        "; recompile it with the matching galaxyc"));
  return p;
}

int planWorldSize(const plan::Plan &plan) {
  const int group = std::max(plan.world(), 1);
  return plan.pipeline().num_stages() > 0 ? plan.pipeline().num_stages() * group
                                          : group;
}

std::string hms(double s) {
  int64_t t = int64_t(s + 0.5);
  return absl::StrFormat("%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
}

int64_t envInt(const char *name, int64_t otherwise) {
  const char *v = std::getenv(name);
  return v && *v ? std::atoll(v) : otherwise;
}

namespace {
// --init tensors no plan parameter reads: a warning, not an error, because
// Hugging Face checkpoints routinely hold tensors a fine-tuning plan has no
// use for (a pre-training head, a pooler); naming them shows a misspelled or
// mis-prefixed name. Pipeline plans split the parameters over stages: the
// names of every rank's plan count.
void reportUnusedInit(const Args &args, const io::SafetensorsFile &init,
                      int world) {
  std::set<std::string> used;
  for (int r = 0; r < world; ++r) {
    std::string file;
    absl::StatusOr<plan::Plan> p = readPlan(args.plan, r, &file);
    if (!p.ok())
      return; // a single plan file, or one missing: say nothing uncertain
    for (const plan::Param &q : p->params())
      used.insert(q.name());
  }
  std::vector<std::string> unused;
  for (const io::TensorEntry &t : init.tensors())
    if (!used.count(t.name))
      unused.push_back(t.name);
  if (unused.empty())
    return;
  constexpr size_t kShown = 8;
  std::cerr << "galaxy-run: warning: --init " << args.init << " holds "
            << unused.size() << " tensor" << (unused.size() == 1 ? "" : "s")
            << " the plan does not use (ignored): "
            << absl::StrJoin(unused.begin(),
                             unused.begin() + std::min(kShown, unused.size()),
                             ", ")
            << (unused.size() > kShown
                    ? absl::StrCat(" and ", unused.size() - kShown, " more")
                    : "")
            << "\n";
}

// Every parameter of the model, from the plans of every rank (a pipeline
// stage's plan holds only its own), and the rank of the "labels" input.
std::vector<rt::ModelParam>
modelParams(const Args &args, const plan::Plan &plan, int *labelsRank) {
  std::vector<plan::Plan> plans;
  if (plan.pipeline().num_stages() > 0)
    for (int r = 0; r < planWorldSize(plan); ++r) {
      std::string file;
      absl::StatusOr<plan::Plan> p = readPlan(args.plan, r, &file);
      if (!p.ok())
        fail(2, std::string(p.status().message()));
      plans.push_back(std::move(*p));
    }
  else
    plans.push_back(plan);
  std::vector<rt::ModelParam> out;
  std::set<std::string> seen;
  *labelsRank = 0;
  for (const plan::Plan &p : plans) {
    for (const plan::Param &q : p.params())
      if (seen.insert(q.name()).second)
        out.push_back({q.name(),
                       {q.global_shape().begin(), q.global_shape().end()},
                       q.trainable()});
    for (const plan::Buffer &b : p.buffers())
      if (b.kind() == plan::Buffer::INPUT && b.input() == "labels")
        *labelsRank =
            b.global_shape_size() ? b.global_shape_size() : b.shape_size();
  }
  return out;
}

// --save-adapter / --init-adapter: the plan as PEFT sees it, and the adapter
// folder checked against it, before anything runs.
void loadPeft(const Args &args, const plan::Plan &plan, bool lead,
              RunInputs &in) {
  if (args.saveAdapter.empty() && args.initAdapter.empty())
    return;
  int labelsRank = 0;
  std::vector<rt::ModelParam> params = modelParams(args, plan, &labelsRank);
  auto info =
      rt::peftPlanInfo(plan.config_json(), std::move(params), labelsRank);
  if (!info.ok())
    fail(2, absl::StrCat(args.saveAdapter.empty() ? "--init-adapter"
                                                  : "--save-adapter",
                         ": ", info.status().message()));
  in.peft = std::move(*info);
  if (args.initAdapter.empty())
    return;
  auto adapter = rt::readPeftAdapter(args.initAdapter, *in.peft);
  if (!adapter.ok())
    fail(2, std::string(adapter.status().message()));
  if (lead)
    for (const std::string &w : adapter->warnings)
      std::cerr << "galaxy-run: warning: --init-adapter " << args.initAdapter
                << ": " << w << "\n";
  in.adapter = std::move(*adapter);
}

// --vocab is BERT's WordPiece vocab.txt, --tokenizer a LLaMA SentencePiece
// or BART byte-level BPE model: the wrong one for the plan's model would
// encode text into another model's ids.
void checkTokenizerFlags(const Args &args, const plan::ModelInfo &model) {
  if (!args.vocab.empty() && !args.tokenizer.empty())
    fail(2, "give --vocab (BERT's WordPiece vocab.txt) or --tokenizer (the "
            "model's tokenizer files), not both");
  if (!args.tokenizer.empty() && model.model() == "bert")
    fail(2, "--tokenizer is for LLaMA (tokenizer.model) and BART "
            "(tokenizer.json, vocab.json + merges.txt); this bert plan "
            "reads text with --vocab vocab.txt");
  if (!args.vocab.empty() && model.model() != "bert")
    fail(2, "--vocab is BERT's WordPiece vocab.txt; this " + model.model() +
                " plan reads text with --tokenizer (" +
                (model.model() == "bart" ? "tokenizer.json or vocab.json"
                                         : "tokenizer.model") +
                ")");
}
} // namespace

RunInputs loadInputs(const Args &args, const plan::Plan &plan, bool lead) {
  // Before any data is read: the plan's sizes (a wrapped or negative one is
  // refused), what it will allocate against what the machine has (device
  // memory: after the CUDA backend is made, checkGpuMemory), and where the run
  // will write.
  absl::StatusOr<plan::PlanMemory> need =
      plan::checkLoadedPlanSizes(plan, "plan " + args.plan);
  if (!need.ok())
    fail(2, std::string(need.status().message()));
  if (args.backend == "cpu")
    checkMemory(*need, args.plan, 1);
  if (lead)
    checkOutputs(args);
  RunInputs in;
  absl::StatusOr<io::DatasetOptions> dopts = io::datasetOptionsFor(plan);
  if (!dopts.ok())
    fail(2, std::string(dopts.status().message()));
  checkTokenizerFlags(args, plan.model());
  dopts->vocabPath = args.vocab;
  dopts->tokenizerPath = args.tokenizer;
  if (!args.data.empty()) {
    auto d = io::Dataset::load(args.data, *dopts);
    if (!d.ok())
      fail(2, std::string(d.status().message()));
    in.train = std::move(*d);
    if (args.shuffle && args.dumpTaps.empty()) // taps are in file order
      in.train->setShuffle(args.seed);
  }
  if (!args.eval.empty()) {
    auto d = io::Dataset::load(args.eval, *dopts);
    if (!d.ok())
      fail(2, std::string(d.status().message()));
    in.eval = std::move(*d);
  }
  if (!args.predict.empty()) {
    if (dopts->task != io::Task::kClassification)
      fail(2, absl::StrCat("--predict classifies rows: it needs a "
                           "classification plan; this one is ",
                           plan.model().task(),
                           dopts->task == io::Task::kCausalLm
                               ? " (use --eval for loss and perplexity, "
                                 "--generate or --prompt for text)"
                               : ""));
    io::DatasetOptions popts = *dopts;
    popts.labelsOptional = true;
    auto d = io::Dataset::load(args.predict, popts);
    if (!d.ok())
      fail(2, std::string(d.status().message()));
    in.predict = std::move(*d);
  }
  // The plan binds its inputs by the names the model declared; the data must
  // hold every one of them.
  for (const std::optional<io::Dataset> *d : {&in.train, &in.eval, &in.predict})
    if (*d)
      if (absl::Status s = rt::checkPlanInputs(plan, (*d)->fieldNames());
          !s.ok())
        fail(2, std::string(s.message()));
  if (!args.init.empty()) {
    auto f = io::readSafetensors(args.init);
    if (!f.ok())
      fail(2, std::string(f.status().message()));
    in.init = std::move(*f);
    if (lead)
      reportUnusedInit(args, *in.init, planWorldSize(plan));
  }
  loadPeft(args, plan, lead, in);
  if (lead && !args.metrics.empty() && in.train) {
    in.metrics.open(args.metrics, std::ios::trunc);
    if (!in.metrics)
      fail(2, "cannot write metrics file '" + args.metrics + "'");
  }
  return in;
}

void initWeights(rt::Executor &ex, RunInputs &in, const Args &args) {
  if (!in.init) {
    ex.initParams(args.seed);
    return;
  }
  // The adapter's tensors first: its LoRA factors and task head replace any
  // in --init.
  io::TensorSource source;
  if (in.adapter)
    source.add(in.adapter->weights, std::string(rt::kPeftPrefix));
  source.add(*in.init);
  if (absl::Status s = ex.loadParams(source); !s.ok())
    fail(2, std::string(s.message()));
  in.init.reset();
  in.adapter.reset();
}

int64_t trainingSteps(const Args &args, int64_t B, int64_t rows) {
  return args.steps >= 0    ? args.steps
         : args.epochs >= 0 ? (args.epochs * rows + B - 1) / B
                            : (rows + B - 1) / B;
}

rt::TrainerOptions trainerOptions(const Args &args,
                                  const plan::ModelInfo &model, int rank) {
  rt::TrainerOptions o;
  o.batchSize = model.batch_size();
  o.numClasses = model.num_classes();
  o.causalLm = model.task() == "causal_lm" || model.task() == "seq2seq";
  o.seed = args.seed;
  o.profile = args.profile;
  o.lead = rank == 0;
  const int64_t faultRank = envInt("GALAXY_TEST_FAULT_RANK", 1);
  const int64_t dieAt = envInt("GALAXY_TEST_DIE_AT_STEP", -1);
  const int64_t hangAt = envInt("GALAXY_TEST_HANG_AT_STEP", -1);
  if (rank == faultRank && (dieAt > 0 || hangAt > 0))
    o.beforeStep = [dieAt, hangAt](int64_t step) {
      if (step == dieAt)
        _exit(9); // test hook: a crash without any goodbye
      while (step == hangAt)
        pause(); // test hook: alive but silent
    };
  return o;
}

StepLog::StepLog(const Args &args, int64_t steps, int64_t batchSize,
                 int64_t rows, bool lead, std::ofstream &metrics,
                 int64_t firstStep)
    : steps_(steps), batch_(batchSize),
      logEvery_(args.logEvery > 0 ? args.logEvery
                                  : std::max<int64_t>(1, steps / 20)),
      firstStep_(firstStep), lead_(lead), metrics_(metrics),
      t0_(std::chrono::steady_clock::now()) {
  if (lead)
    std::cerr << absl::StrFormat(
        "galaxy-run: training %d steps%s, batch %d, %d rows in %s\n", steps,
        firstStep > 0 ? absl::StrFormat(" (from step %d)", firstStep + 1)
                      : std::string(),
        batchSize, rows, args.data);
}

void StepLog::record(const rt::StepRecord &step) {
  const int64_t s = step.step - 1;
  const double loss = step.loss, stepS = step.seconds;
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_)
          .count();
  windowLoss_ += loss;
  ++windowSteps_;
  if (metrics_.is_open())
    metrics_ << absl::StrFormat(
                    "{\"step\": %d, \"loss\": %.9g, \"samples_per_s\": %.3f}\n",
                    s + 1, loss, batch_ / stepS)
             << std::flush;
  const bool logNow = (s + 1) % logEvery_ == 0 || s + 1 == steps_;
  if (lead_ && logNow) {
    double rate = (s + 1 - firstStep_) * batch_ / total;
    std::cerr << absl::StrFormat(
        "step %*d/%d  loss %.4f  %.1f samples/s  ETA %s\n",
        int(std::to_string(steps_).size()), s + 1, steps_,
        windowLoss_ / windowSteps_, rate,
        hms((steps_ - s - 1) * batch_ / rate));
  }
  if (logNow) {
    windowLoss_ = 0;
    windowSteps_ = 0;
  }
}

void trainWithLog(rt::Trainer &trainer, const Args &args,
                  const plan::ModelInfo &model, const io::Dataset &train,
                  bool lead, std::ofstream &metrics) {
  const int64_t B = model.batch_size();
  const int64_t steps = trainingSteps(args, B, train.size());
  StepLog log(args, steps, B, train.size(), lead, metrics, trainer.firstStep());
  if (absl::Status s = trainer.train(
          train, steps, [&](const rt::StepRecord &r) { log.record(r); });
      !s.ok())
    fail(1, std::string(s.message()));
}

void saveWeights(rt::Trainer &trainer, const Args &args, const plan::Plan &plan,
                 const std::optional<rt::PeftPlanInfo> &peft, bool lead) {
  if (!args.save.empty()) {
    if (absl::Status s = trainer.save(args.save); !s.ok())
      fail(1, std::string(s.message()));
    if (lead)
      std::cerr << "galaxy-run: saved weights to " << args.save << "\n";
  }
  if (!args.saveMerged.empty()) {
    if (absl::Status s =
            trainer.saveMerged(args.saveMerged, plan.config_json());
        !s.ok())
      fail(1, std::string(s.message()));
    if (lead)
      std::cerr << "galaxy-run: saved merged weights to " << args.saveMerged
                << "\n";
  }
  if (!args.saveAdapter.empty()) {
    // Gathered like --save into a temporary inside the folder (only the lead
    // creates the folder and writes, and removes, the temporary), then the
    // adapter's share written.
    const std::string full =
        (fs::path(args.saveAdapter) / ".adapter_full.tmp").string();
    std::optional<io::TempFileGuard> guard;
    if (lead) {
      std::error_code ec;
      fs::create_directory(args.saveAdapter, ec);
      if (ec)
        fail(1, absl::StrCat("--save-adapter: cannot create ", args.saveAdapter,
                             ": ", ec.message()));
      guard.emplace(full);
    }
    if (absl::Status s = trainer.save(full); !s.ok())
      fail(1, std::string(s.message()));
    if (lead) {
      if (absl::Status s = rt::writePeftAdapter(full, *peft, args.saveAdapter);
          !s.ok())
        fail(1, std::string(s.message()));
      std::cerr << "galaxy-run: saved the PEFT adapter to " << args.saveAdapter
                << "\n";
    }
  }
}

namespace {
// The "eval:" line and --eval-out.
// Causal LM: mean token loss, perplexity and token accuracy; --eval-out
// holds each row's per-position losses.
void reportTokenEval(const rt::EvalResult &eval, const Args &args) {
  std::cerr << absl::StrFormat("eval: %d rows, %d targets, loss %.6f, "
                               "perplexity %.4f, token accuracy %.4f\n",
                               eval.rows, eval.targets, eval.loss,
                               eval.perplexity, eval.accuracy);
  if (args.evalOut.empty())
    return;
  std::ostringstream o;
  o << absl::StrFormat("{\"loss\": %.9g, \"perplexity\": %.9g, "
                       "\"accuracy\": %.9g, \"rows\": %d, \"targets\": %d, "
                       "\"token_losses\": [",
                       eval.loss, eval.perplexity, eval.accuracy, eval.rows,
                       eval.targets);
  for (size_t r = 0; r < eval.tokenLosses.size(); ++r) {
    o << (r ? ",\n" : "\n") << "[";
    for (size_t s = 0; s < eval.tokenLosses[r].size(); ++s)
      o << (s ? ", " : "") << absl::StrFormat("%.9g", eval.tokenLosses[r][s]);
    o << "]";
  }
  o << "]}\n";
  if (absl::Status s = writeTextAtomically(args.evalOut, o.str()); !s.ok())
    fail(1, std::string(s.message()));
}

void reportEval(const rt::EvalResult &eval, const Args &args) {
  if (!eval.tokenLosses.empty())
    return reportTokenEval(eval, args);
  const int64_t N = eval.rows;
  std::cerr << absl::StrFormat("eval: %d rows, loss %.6f, accuracy %.4f\n", N,
                               eval.loss, eval.accuracy);
  if (args.evalOut.empty())
    return;
  std::ostringstream o;
  o << absl::StrFormat(
      "{\"loss\": %.9g, \"accuracy\": %.9g, \"rows\": %d, \"logits\": [",
      eval.loss, eval.accuracy, N);
  for (size_t r = 0; r < eval.logits.size(); ++r) {
    o << (r ? ",\n" : "\n") << "[";
    for (size_t c = 0; c < eval.logits[r].size(); ++c)
      o << (c ? ", " : "") << absl::StrFormat("%.9g", eval.logits[r][c]);
    o << "]";
  }
  o << "]}\n";
  if (absl::Status s = writeTextAtomically(args.evalOut, o.str()); !s.ok())
    fail(1, std::string(s.message()));
}
} // namespace

namespace {
// The positions of the plan's KV cache: its prefill's input_ids [B, T]
// (galaxyc --max-seq); 0 without one.
int64_t cacheSlots(const plan::Plan &plan) {
  for (const plan::Program &p : plan.programs())
    if (p.name() == "prefill")
      for (const plan::Binding &in : p.inputs())
        if (in.name() == "input_ids") {
          const plan::Buffer &b = plan.buffers(in.buffer());
          if (b.global_shape_size() == 2)
            return b.global_shape(1);
        }
  return 0;
}

// --prompt texts as ids: the tokenizer's BOS + pieces, each id checked
// against the plan's vocabulary.
std::vector<std::vector<int32_t>>
encodePrompts(const io::SentencePieceTokenizer &tok, const Args &args,
              int64_t vocabSize) {
  std::vector<std::vector<int32_t>> prompts;
  for (const std::string &text : args.prompts) {
    auto ids = tok.encode(text, -1);
    if (!ids.ok())
      fail(2, absl::StrCat("--prompt: ", ids.status().message()));
    for (int32_t id : *ids)
      if (id >= vocabSize)
        fail(2, absl::StrCat("--prompt \"", text, "\": ", tok.path(),
                             " encodes piece '", tok.piece(id), "' as id ", id,
                             ", past the plan's vocab_size ", vocabSize,
                             " (give the model's own tokenizer)"));
    prompts.push_back(std::move(*ids));
  }
  return prompts;
}

// A seq2seq plan's --prompt texts as sources: the model tokenizer's ids, cut
// to the plan's source length.
std::vector<std::vector<int32_t>> encodeSources(const io::TextTokenizer &tok,
                                                const Args &args,
                                                int64_t sourceLen,
                                                int64_t vocabSize) {
  std::vector<std::vector<int32_t>> sources;
  for (const std::string &t : args.prompts) {
    auto ids = tok.encode(t, sourceLen);
    if (!ids.ok())
      fail(2, absl::StrCat("--prompt: ", ids.status().message()));
    for (int32_t id : *ids)
      if (id >= vocabSize)
        fail(2, absl::StrCat("--prompt \"", t, "\": ", tok.path(),
                             " encodes piece '", tok.piece(id), "' as id ", id,
                             ", past the plan's vocab_size ", vocabSize,
                             " (give the model's own tokenizer)"));
    sources.push_back(std::move(*ids));
  }
  return sources;
}

// --profile with --generate: this rank's decode step, time per kernel (the
// first step is warm-up: generateWithCache resets the times after it).
void reportDecodeProfile(const rt::Executor &ex) {
  const int64_t runs = ex.timedRuns("decode");
  const std::vector<double> secs = ex.instrSeconds("decode");
  if (runs == 0)
    return;
  std::map<std::string, std::pair<int64_t, double>> byKernel;
  double total = 0;
  for (const plan::Program &p : ex.plan().programs())
    if (p.name() == "decode")
      for (int i = 0; i < p.instrs_size() && i < int(secs.size()); ++i) {
        auto &[calls, s] = byKernel[p.instrs(i).kernel()];
        ++calls;
        s += secs[i];
        total += secs[i];
      }
  std::vector<std::pair<double, std::string>> order;
  for (const auto &[k, v] : byKernel)
    order.push_back({v.second, k});
  std::sort(order.rbegin(), order.rend());
  std::cerr << absl::StrFormat(
      "decode profile: %d steps, %.3f ms/step in kernels\n", runs,
      1e3 * total / runs);
  for (const auto &[s, k] : order)
    std::cerr << absl::StrFormat("  %-16s %4d calls %9.3f ms/step %5.1f%%\n", k,
                                 byKernel[k].first, 1e3 * s / runs,
                                 total > 0 ? 100 * s / total : 0.0);
}
} // namespace

void generateWithReport(rt::StepRunner &runner, rt::Executor *ex,
                        const Args &args, const plan::ModelInfo &model,
                        bool lead) {
  const char *flag = args.prompts.empty() ? "--generate" : "--prompt";
  const bool seq2seq = model.task() == "seq2seq";
  if (model.task() != "causal_lm" && !seq2seq)
    fail(2, absl::StrCat(flag, " needs a causal-LM or seq2seq plan (task "
                               "\"causal_lm\" or \"seq2seq\")"));
  if (ex && !rt::tapInputs(ex->plan()).empty())
    fail(2, absl::StrCat(flag,
                         ": a side-only plan (use_side_only) has no backbone: "
                         "its taps are inputs precomputed for a data file; "
                         "generate with the side-tuning plan (use_side) from "
                         "the backbone's weights and the trained side.* "
                         "weights"));
  rt::GenerateOptions o;
  o.batchSize = model.batch_size();
  // Seq2seq: the prompts are sources; the decoder's slots bound the tokens.
  o.seqLen = seq2seq ? model.target_seq_len() : model.seq_len();
  const rt::Seq2SeqShape shape{model.seq_len(),
                               int32_t(model.decoder_start_id())};
  o.padId = model.pad_id();
  o.vocabSize = model.vocab_size();
  o.maxNewTokens = args.maxNewTokens;
  // BART stops at its </s> unless told otherwise, as Hugging Face's generate.
  o.eosId = seq2seq && args.eosId < 0 ? model.eos_id() : args.eosId;
  o.seed = args.seed;
  o.sampling = args.sampling;
  o.sampling.seed = args.seed;
  const bool cached =
      ex &&
      (seq2seq ? rt::hasSeq2SeqPrograms(*ex) : rt::hasCachePrograms(*ex)) &&
      envInt("GALAXY_GENERATE_RECOMPUTE", 0) == 0;
  // A causal LM's cache positions bound prompt + new tokens (the recomputing
  // baseline's: pad_size).
  if (cached && !seq2seq)
    o.seqLen = cacheSlots(ex->plan());
  std::optional<io::SentencePieceTokenizer> tok;
  // Seq2seq (BART) with --tokenizer (the model's own: byte-level BPE, or
  // SentencePiece): a --prompt is a source encoded as its Hugging Face
  // tokenizer does (<s> pieces </s>, cut to the source length), and each
  // row's generated ids print as text, as
  // tokenizer.batch_decode(generated, skip_special_tokens=True).
  std::optional<io::TextTokenizer> text;
  if (seq2seq && !args.tokenizer.empty()) {
    auto t = io::TextTokenizer::fromPath(args.tokenizer);
    if (!t.ok())
      fail(2, std::string(t.status().message()));
    text.emplace(std::move(*t));
  }
  absl::StatusOr<std::vector<std::vector<int32_t>>> prompts;
  if (text && !args.prompts.empty()) {
    prompts = encodeSources(*text, args, shape.sourceLen, o.vocabSize);
  } else if (!args.prompts.empty()) {
    if (args.tokenizer.empty())
      fail(2, "--prompt encodes text with the model's tokenizer: give "
              "--tokenizer tokenizer.model");
    auto t = io::SentencePieceTokenizer::fromFile(args.tokenizer);
    if (!t.ok())
      fail(2, std::string(t.status().message()));
    tok.emplace(std::move(*t));
    prompts = encodePrompts(*tok, args, o.vocabSize);
  } else {
    prompts = rt::readPrompts(args.generate, o.vocabSize);
  }
  if (!prompts.ok())
    fail(2, std::string(prompts.status().message()));
  if (seq2seq)
    if (absl::Status s = rt::checkSeq2SeqLengths(*prompts, o, shape); !s.ok())
      fail(2, absl::StrCat(args.generate, ": ", s.message()));
  for (size_t i = 0; !seq2seq && i < prompts->size(); ++i) {
    const int64_t n = int64_t((*prompts)[i].size());
    if (n + o.maxNewTokens > o.seqLen)
      fail(2,
           absl::StrCat(
               flag, ": prompt ", i + 1, " has ", n,
               " tokens; with --max-new-tokens ", o.maxNewTokens, " it needs ",
               n + o.maxNewTokens, " positions, past the ",
               cached ? "plan's KV cache of " : "plan's pad_size of ", o.seqLen,
               cached ? " positions (recompile with galaxyc --max-seq N, "
                        "at most max_position_embeddings, or ask for fewer "
                        "tokens)"
                      : " positions (recompile with a larger pad_size or "
                        "ask for fewer tokens)"));
  }
  const auto t0 = std::chrono::steady_clock::now();
  rt::GenerateStats stats;
  auto generated =
      seq2seq
          ? (cached
                 ? rt::generateSeq2SeqWithCache(*ex, *prompts, o, shape)
                 : rt::generateSeq2SeqByRecompute(runner, *prompts, o, shape))
      : cached ? rt::generateWithCache(*ex, *prompts, o, &stats)
               : rt::generateByRecompute(runner, *prompts, o);
  if (!generated.ok())
    fail(1, std::string(generated.status().message()));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  if (!lead)
    return;
  int64_t tokens = 0;
  for (const auto &g : *generated)
    tokens += int64_t(g.size());
  std::cerr << absl::StrFormat(
      "generate: %d prompts, %d new tokens in %.3f s (%s, %s)\n",
      prompts->size(), tokens, seconds,
      o.sampling.temperature == 0
          ? std::string("greedy")
          : absl::StrFormat("sampling: temperature %g, top-k %d, top-p %g, "
                            "seed %d",
                            o.sampling.temperature, o.sampling.topK,
                            o.sampling.topP, o.sampling.seed),
      cached ? absl::StrCat("KV cache of ", o.seqLen, " positions")
             : std::string("no KV cache: eval_step over the prefix"));
  // Per group of the plan's batch: tokens/s counts every row of a step.
  if (cached)
    for (size_t i = 0; i < stats.groups.size(); ++i) {
      const rt::GenerateStats::Group &g = stats.groups[i];
      std::cerr << absl::StrFormat(
          "generate: group %d: prefill %.4f s, decode %d steps of %d rows in "
          "%.4f s (%.2f tokens/s)\n",
          i + 1, g.prefillSeconds, g.decodeSteps, o.batchSize, g.decodeSeconds,
          g.decodeSeconds > 0 ? g.decodeSteps * o.batchSize / g.decodeSeconds
                              : 0.0);
    }
  if (cached && args.profile)
    reportDecodeProfile(*ex);
  // The texts: seq2seq, each row's generated ids, as Hugging Face's
  // tokenizer.batch_decode(generated, skip_special_tokens=True); a causal LM,
  // prompt and continuation decoded together, as
  // tokenizer.decode(output_ids, skip_special_tokens=True).
  std::vector<std::string> texts;
  for (size_t i = 0; (text || tok) && i < generated->size(); ++i) {
    absl::StatusOr<std::string> decoded;
    if (text) {
      decoded = text->decode((*generated)[i], /*skipSpecial=*/true);
    } else {
      std::vector<int32_t> ids = (*prompts)[i];
      ids.insert(ids.end(), (*generated)[i].begin(), (*generated)[i].end());
      decoded = tok->decode(ids);
    }
    if (!decoded.ok())
      fail(1, absl::StrCat(flag, ": row ", i + 1, ": ",
                           decoded.status().message()));
    texts.push_back(std::move(*decoded));
  }
  // One row a line, whatever the model generated: line breaks escaped
  // (text_line.h); --output holds each text as it is.
  for (const std::string &t : texts)
    std::cout << escapeLine(t) << "\n";
  if (!args.output.empty())
    if (absl::Status s =
            rt::writeGenerations(args.output, *prompts, *generated, texts);
        !s.ok())
      fail(1, std::string(s.message()));
}

void evaluateWithReport(rt::Trainer &trainer, const Args &args,
                        const io::Dataset &data, bool lead) {
  absl::StatusOr<rt::EvalResult> result = trainer.evaluate(data);
  if (!result.ok())
    fail(1, std::string(result.status().message()));
  if (lead)
    reportEval(*result, args);
}

bool FlagReader::next() {
  first_ = started_ ? last_ + 1 : 0;
  started_ = true;
  if (first_ >= args_.size())
    return false;
  last_ = first_;
  flag_ = args_[first_];
  value_.clear();
  hasValue_ = false;
  if (auto eq = flag_.find('=');
      flag_.rfind("--", 0) == 0 && eq != std::string::npos) {
    value_ = flag_.substr(eq + 1);
    flag_.resize(eq);
    hasValue_ = true;
  }
  return true;
}

std::string FlagReader::value() {
  if (hasValue_)
    return value_;
  if (last_ + 1 >= args_.size())
    fail(2, flag_ + " needs a value");
  return args_[++last_];
}

void FlagReader::passOn(std::vector<std::string> &out) const {
  out.insert(out.end(), args_.begin() + first_, args_.begin() + last_ + 1);
}

} // namespace galaxy::run
