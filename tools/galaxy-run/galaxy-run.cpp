// galaxy-run: executes a compiled plan — trains, evaluates, saves weights.
// The command line: flags, plans, inputs, backend and ranks; the loop itself
// is rt::Trainer (runtime/exec/trainer.h).
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "runtime/comm/communicator.h"
#include "runtime/comm/job_token.h"
#include "runtime/cpu/library_env.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/launch.h"
#include "runtime/exec/taps.h"
#include "runtime/exec/trainer.h"
#include "runtime/io/dataset.h"
#include "runtime/io/safetensors.h"
#include "runtime/io/temp_file.h"
#include "runtime/plan/plan_sizes.h"
#include "runtime/plan/version.h"
#include "tools/galaxy-run/calibrate.h"
#include "tools/galaxy-run/checkpoints.h"
#include "tools/galaxy-run/common.h"
#include "tools/galaxy-run/job_agreement.h"
#include "tools/galaxy-run/memory_check.h"
#include "tools/galaxy-run/outputs.h"
#include "tools/galaxy-run/predict.h"
#include "tools/galaxy-run/profile_report.h"
#include "tools/galaxy-run/run_pipeline.h"

#ifdef GALAXY_EXECUTOR_DEVICE_MEMORY
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/nccl_communicator.h"
#endif

using namespace galaxy;
using namespace galaxy::run;

namespace {

constexpr const char *kUsage =
    R"(galaxy-run - execute a Galaxy plan (train, evaluate, predict, generate)

Usage: galaxy-run PLAN_DIR --data FILE [options]
       galaxy-run PLAN_DIR --init W.safetensors --predict FILE --output OUT.jsonl
       galaxy-run PLAN_DIR --init W.safetensors --generate PROMPTS.jsonl --output OUT.jsonl
       galaxy-run PLAN_DIR --init W.safetensors --tokenizer tokenizer.model --prompt TEXT

PLAN_DIR is what `galaxyc CONFIG -o PLAN_DIR` wrote (or one .plan.pb file).
Rank R runs PLAN_DIR/rank<R>.plan.pb; a plan compiled for W ranks runs on W ranks.
Every rank reads the same (global) data and takes its own slice of each batch.

Data:
  --data FILE        training data: text<TAB>label lines (classification; needs
                     --vocab or --tokenizer) or .jsonl rows, pre-tokenized
                     {"input_ids": [...], "attention_mask": [...], "label": k}
                     or {"text": "...", "label": k} (needs --tokenizer); causal-LM
                     plans: no "label", optional "labels": [...] (one per id,
                     -100 = no target; default: the ids); seq2seq plans (BART):
                     {"input_ids": [...], "labels": [...]} or {"text": "...",
                     "target_text": "..."}; rows are cut or padded
                     (pad_token_id) to pad_size (labels: target_pad_size)
  --vocab FILE       BERT: vocab.txt (WordPiece) for text data
  --tokenizer PATH   the model's own tokenizer for text data, by its files:
                     LLaMA's SentencePiece tokenizer.model (BOS first, no EOS,
                     as Hugging Face's LlamaTokenizer); BART's byte-level BPE
                     tokenizer.json, or vocab.json with merges.txt beside it
                     (<s> text </s>, as BartTokenizer); or the model's folder
  --shuffle          reshuffle the rows every epoch (seeded by --seed)
  --eval FILE        evaluate on FILE after training: loss and accuracy;
                     causal LM and seq2seq: mean loss over every target token
                     of FILE, perplexity exp(loss) and token accuracy
  --eval-out FILE    write {"loss", "accuracy", "logits"} of the evaluation as JSON
                     (causal LM, seq2seq: "loss", "perplexity", "accuracy", "targets",
                     "token_losses" per row and position)
Predict (classification plans, every model and parallel mode; docs/inference.md):
  --predict FILE     rows to classify: .jsonl ({"input_ids": [...]} or {"text":
                     "..."}, "label" optional, "id" copied to the output) or
                     text lines (a "<TAB>label" is optional); runs eval_step
                     only (galaxyc --inference plans hold nothing else)
  --output FILE      with --predict: one {"id", "label": k, "probs": [...]} a
                     row, in file order (probs: softmax of the logits)
Generate (causal-LM plans; after any training and evaluation):
  --generate FILE    prompts, one {"input_ids": [...]} a line; decoding
                     (greedy unless --temperature) with the plan's KV-cache
                     programs (prefill, decode: causal LLaMA plans of every
                     SPMD mode, with their LoRA or adapter branches), else
                     recomputing the prefix with eval_step for each new token
                     (GALAXY_GENERATE_RECOMPUTE=1 forces it); pipeline plans
                     refuse it (compile them in an SPMD mode)
  --prompt TEXT      instead of --generate: a prompt as text (repeatable),
                     encoded with --tokenizer (BOS first); prints each prompt
                     with its continuation, decoded, one a line on stdout.
                     Seq2seq (BART) plans: a source, <s> text </s>; with
                     --tokenizer, --generate and --prompt print each row's
                     generated text (special tokens skipped), one a line.
                     A row is always one line: \ and line breaks print
                     escaped (\\ \n \r \t \uXXXX; docs/inference.md)
  --max-new-tokens N new tokens per prompt (default 16); prompt + N must fit the
                     plan's KV cache (galaxyc --max-seq; default pad_size)
  --eos-id ID        a prompt stops after generating ID
  --temperature T    sample from softmax(logits / T) (default 0: greedy, and
                     --top-k/--top-p are ignored); draws are seeded by --seed,
                     the prompt's index and the step, so every rank, mode and
                     batch grouping picks the same tokens
  --top-k K          sample among the K most likely tokens (default 0: all)
  --top-p P          sample among the fewest most likely tokens whose
                     probability reaches P, at least one (default 1: all)
  --output FILE      write {"input_ids": [...], "generated_ids": [...]} per prompt
                     (needed with --generate, optional with --prompt), and
                     "text" (unescaped) where a --tokenizer decodes it
Run:
  --backend cpu|cuda where the kernels run (default cpu); cuda: one GPU per
                     rank (its local rank modulo the visible GPUs: Ranks below),
                     NCCL between ranks
  --steps N          optimizer steps (default: one epoch)
  --epochs E         epochs instead of steps
  --seed S           seed of initialisation, dropout, shuffling and sampling
                     (default 42)
  --log-every K      progress line every K steps (default: about 20 lines a run)
Weights:
  --init FILE        start from a safetensors checkpoint (Hugging Face names);
                     default: seeded random initialisation
  --save FILE        write the final weights as safetensors (atomically)
  --metrics FILE     one JSON object per step: {"step", "loss", "samples_per_s"}
  --save-merged FILE LoRA plans: write the final weights with every LoRA pair
                     folded into its base weight (W + (alpha/r)·B·A) and the
                     lora_A/lora_B tensors left out, for a plan without LoRA
PEFT adapter folders (LoRA plans; docs/peft-adapters.md):
  --save-adapter DIR write DIR/adapter_model.safetensors (the LoRA factors and
                     the trained task head, PEFT's names
                     base_model.model.<name>) and DIR/adapter_config.json, so
                     PeftModel.from_pretrained(base, DIR) opens it; DIR is
                     created when absent
  --init-adapter DIR start from the base weights of --init (needed) with the
                     LoRA factors and task head of a PEFT adapter folder; a
                     folder whose r, lora_alpha, target modules or shapes
                     differ from the plan's is refused naming the key
Checkpoints (docs/reliability.md "Checkpoints and resume"):
  --checkpoint-dir D save D/step-<N> every --checkpoint-every steps, after the
                     last step and on SIGINT/SIGTERM (the step in flight
                     finishes, the checkpoint is written, then galaxy-run
                     exits 128 + the signal): the parameters (global tensors,
                     Hugging Face names: model.safetensors, usable as --init),
                     AdamW's moments, the step (dropout, bias correction), the
                     data position and shuffle, the config; written under a
                     temporary name and renamed, a MANIFEST.json last, so a
                     killed write leaves the previous checkpoint in use; D is
                     created when absent (its parent must exist)
  --checkpoint-every N  a checkpoint every N steps (default 0: only after the
                     last step and on a signal)
  --keep K           keep the newest K checkpoints (default 0: all)
  --resume D         continue from D's newest complete checkpoint (or from one
                     D/step-<N>) up to --steps / --epochs: the losses are
                     bit-identical to a run never stopped (same plan, flags
                     and machine); a plan of another parallel layout (mode,
                     world, splits, pipeline stages) reads its slices of the
                     same global tensors (reported as resharding); a config
                     that changes anything else, another --seed, --shuffle or
                     data row count is refused naming the difference
Outputs (--save, --save-merged, --save-adapter, --metrics, --eval-out,
  --dump-taps, --profile-*):
                     checked before the first step: the directory must exist
                     and be writable (--save-adapter: DIR or its parent), the
                     file be absent or regular (a symlink, device, FIFO or
                     directory is refused); a failed or interrupted
                     (SIGINT/SIGTERM) write leaves no temporary file
Side-only (forward-free side tuning):
  --dump-taps FILE   with a side-tuning plan (use_side): run the backbone in eval
                     mode over the --data rows (else the --eval rows), in file
                     order, and write its taps (taps.embeddings, taps.layer.{i},
                     [rows, S, H] each) as safetensors; nothing is trained
  --taps FILE        a side-only plan (use_side_only) reads the taps of the --data
                     rows from FILE (what --dump-taps wrote for the same file)
  --eval-taps FILE   the same for the --eval rows
Profiling (docs/profiler.md; every rank measures, rank 0 reports all):
  --profile          time every train_step instruction (step 1 is warm-up when
                     there are more than 2 steps) and print time, share and
                     GFLOP/s per region (embedding, att.i, con.i, mlp.i, ...)
                     with --generate: the decode step's time per kernel
  --profile-json FILE  measured profile as JSON in galaxyc's tree layout
  --profile-static FILE  merge into this `galaxyc --profile-json` output instead
                     (--profile-json then writes galaxyc's tree + "measured")
  --profile-svg FILE time per region per rank as stacked bars
Pipeline plans (galaxyc with pipeline stages: rank<W>.plan.pb per world rank
W = stage * ranks_per_stage + rank within the stage):
                     run on stages x ranks_per_stage ranks; every step runs the
                     plan's microbatches in its schedule (gpipe or 1f1b) and
                     reports the mean loss over the whole batch; --save,
                     --save-merged and --save-adapter write every stage's
                     weights from rank 0;
                     --profile prints per rank the busy time, the idle time
                     (waiting on neighbour stages), the step time and the
                     activation memory (stash slots x slot bytes + arena);
                     --profile-json/-svg/-static, --dump-taps, --taps,
                     --eval-taps and --backend cuda are refused
Ranks (progress, --metrics, --eval-out and --save come from rank 0):
  --nproc N          spawn N local ranks (N must be the plan's world size); their
                     output lines are prefixed "[rank r] "; if one fails, the
                     others are stopped
  --rank R --world W --master HOST:PORT
                     run one rank by hand (rank 0 hosts the rendezvous on PORT);
                     without these flags the rank and world come from torchrun's
                     RANK/WORLD_SIZE/LOCAL_RANK, else Open MPI's OMPI_COMM_WORLD_*,
                     MPICH's PMI_RANK/PMI_SIZE, or Slurm's SLURM_PROCID/
                     SLURM_NTASKS/SLURM_LOCALID, and the rendezvous from
                     MASTER_ADDR and MASTER_PORT (docs/launching.md)
  --job-token-file FILE
                     the job's secret (else the environment's GALAXY_JOB_TOKEN):
                     every connection to rank 0's rendezvous must prove it
                     knows it, so only the job's ranks can join; give every
                     rank the same one. --nproc makes one per run when neither
                     is given; a multi-rank job without one warns
                     (docs/launching.md)
  --timeout SECONDS  bound on joining and on every collective (default 60,
                     at most 604800 = 7 days): a rank that dies or hangs makes
                     the others fail naming it; a rank that is stopped
                     (SIGSTOP) is told apart by its heartbeat
At join, ranks compare their plans' compile id and config, their data files
(size and first MiB) and the flags that change the computation (--steps,
--epochs, --seed, ...): a rank that differs from rank 0 is refused, naming
each difference. --save, --save-merged, --save-adapter and --dump-taps are
rank 0's: the other ranks take part in rank 0's writes whatever they were given.
  -h, --help         this text

Environment (CPU backend):
  GALAXY_THREADS=N   threads per rank (default: all cores)
  GALAXY_GEMM=...    onednn | onednn-matmul | openblas | galaxy force one GEMM;
                     measure re-times every shape (default: per shape, timed at first use and
                     remembered in ~/.cache/galaxy/gemm-shapes.txt)
  OMP_WAIT_POLICY / GOMP_SPINCOUNT  how idle OpenMP threads wait; unset: a
                     single rank with a core per thread spins briefly, then
                     sleeps; ranks that may share a host (--nproc, --rank, a
                     launcher's variables) sleep (the start-up line says which)
  GALAXY_PROFILE=1   print every kernel's calls and time when the run ends
  GALAXY_HUGEPAGES=0 do not ask for transparent huge pages for big buffers
  GALAXY_DENORMALS=keep  compute with denormal floats (default: flushed to
                     zero; they made BERT training 40x slower on padded data)
Exit status: 0 success, 2 bad command line or input, 1 run failure.
  GALAXY_SKIP_MEMORY_CHECK=1  start even when the plan's buffers exceed the
                     machine's available memory (MemAvailable)
Test hooks: GALAXY_TEST_DIE_AT_STEP=K makes rank GALAXY_TEST_FAULT_RANK (default 1)
_exit(9) at the start of step K; GALAXY_TEST_HANG_AT_STEP=K makes it hang there;
GALAXY_TEST_PAUSE_IN_SAVE=1 pauses every safetensors write once its temporary
file exists (to test that a signal removes it);
GALAXY_TEST_SIGNAL_AT_STEP=K makes rank GALAXY_TEST_FAULT_RANK (default: the
last) raise SIGTERM at the start of step K (with --checkpoint-dir);
GALAXY_TEST_PAUSE_IN_CHECKPOINT=K pauses rank 0 in the checkpoint of step K
once its tensors are written, before its manifest (to test a killed write);
GALAXY_TEST_WAIT_SIGNAL_AFTER_STEP=K makes every rank wait after step K (up to
30 s) for a stop signal (with --checkpoint-dir).
)";

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

double parseDouble(const std::string &flag, const std::string &v) {
  try {
    size_t used = 0;
    double x = std::stod(v, &used);
    if (used == v.size())
      return x;
  } catch (...) {
  }
  fail(2, absl::StrCat(flag, " expects a number, got '", v, "'"));
}

double parseSeconds(const std::string &flag, const std::string &v) {
  try {
    size_t used = 0;
    double x = std::stod(v, &used);
    if (used == v.size() && x > 0 && std::isfinite(x))
      return x;
  } catch (...) {
  }
  fail(2, absl::StrCat(flag, " expects a positive number of seconds, got '", v,
                       "'"));
}

Args parseArgs(int argc, char **argv) {
  Args a;
  FlagReader args(argc, argv);
  while (args.next()) {
    const std::string &arg = args.arg(), &flag = args.flag();
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage << "\n" << kCalibrateUsage;
      std::exit(0);
    }
    auto val = [&] { return args.value(); };
    if (flag == "--data")
      a.data = val();
    else if (flag == "--vocab")
      a.vocab = val();
    else if (flag == "--tokenizer")
      a.tokenizer = val();
    else if (flag == "--eval")
      a.eval = val();
    else if (flag == "--eval-out")
      a.evalOut = val();
    else if (flag == "--generate")
      a.generate = val();
    else if (flag == "--prompt")
      a.prompts.push_back(val());
    else if (flag == "--predict")
      a.predict = val();
    else if (flag == "--output")
      a.output = val();
    else if (flag == "--max-new-tokens")
      a.maxNewTokens = parseInt(flag, val());
    else if (flag == "--eos-id")
      a.eosId = parseInt(flag, val());
    else if (flag == "--temperature")
      a.sampling.temperature = parseDouble(flag, val());
    else if (flag == "--top-k")
      a.sampling.topK = parseInt(flag, val());
    else if (flag == "--top-p")
      a.sampling.topP = parseDouble(flag, val());
    else if (flag == "--init")
      a.init = val();
    else if (flag == "--save")
      a.save = val();
    else if (flag == "--metrics")
      a.metrics = val();
    else if (flag == "--save-merged")
      a.saveMerged = val();
    else if (flag == "--save-adapter")
      a.saveAdapter = val();
    else if (flag == "--init-adapter")
      a.initAdapter = val();
    else if (flag == "--dump-taps")
      a.dumpTaps = val();
    else if (flag == "--taps")
      a.taps = val();
    else if (flag == "--eval-taps")
      a.evalTaps = val();
    else if (flag == "--profile")
      a.profile = true;
    else if (flag == "--profile-json")
      a.profileJson = val();
    else if (flag == "--profile-static")
      a.profileStatic = val();
    else if (flag == "--profile-svg")
      a.profileSvg = val();
    else if (flag == "--backend") {
      a.backend = val();
      if (a.backend != "cpu" && a.backend != "cuda")
        fail(2, "--backend expects cpu or cuda, got '" + a.backend + "'");
    } else if (flag == "--steps")
      a.steps = parseInt(flag, val());
    else if (flag == "--epochs")
      a.epochs = parseInt(flag, val());
    else if (flag == "--seed")
      a.seed = parseInt(flag, val());
    else if (flag == "--log-every")
      a.logEvery = parseInt(flag, val());
    else if (flag == "--checkpoint-dir")
      a.checkpointDir = val();
    else if (flag == "--checkpoint-every")
      a.checkpointEvery = parseInt(flag, val());
    else if (flag == "--keep")
      a.keep = parseInt(flag, val());
    else if (flag == "--resume")
      a.resume = val();
    else if (flag == "--shuffle")
      a.shuffle = true;
    else if (flag == "--nproc")
      a.nproc = parseInt(flag, val());
    else if (flag == "--rank")
      a.launch.rank = int(parseInt(flag, val()));
    else if (flag == "--world")
      a.launch.world = int(parseInt(flag, val()));
    else if (flag == "--master")
      a.launch.master = val();
    else if (flag == "--job-token-file")
      a.jobTokenFile = val();
    else if (flag == "--timeout") {
      const std::string v = val();
      a.timeoutS = parseSeconds(flag, v);
      if (a.timeoutS < kMinTimeoutS || a.timeoutS > kMaxTimeoutS)
        fail(2,
             absl::StrCat("--timeout expects seconds in [", kMinTimeoutS, ", ",
                          kMaxTimeoutS, "] (1 ms to 7 days), got '", v, "'"));
    } else if (!arg.empty() && arg[0] == '-')
      fail(2, "unknown option '" + arg + "' (see --help)");
    else if (a.plan.empty())
      a.plan = arg;
    else
      fail(2, "more than one plan given ('" + a.plan + "' and '" + arg + "')");
    if (flag != "--nproc")
      args.passOn(a.childArgs);
  }
  if (a.plan.empty())
    fail(2, "no plan given (see --help)");
  if (a.data.empty() && a.eval.empty() && a.generate.empty() &&
      a.prompts.empty() && a.predict.empty())
    fail(2, "nothing to do: give --data to train, --eval to evaluate, "
            "--predict to classify and/or --generate or --prompt to generate");
  if (!a.generate.empty() && !a.prompts.empty())
    fail(2, "give the prompts as --generate FILE or as --prompt TEXT, not "
            "both");
  if (!a.predict.empty() && (!a.generate.empty() || !a.prompts.empty()))
    fail(2, "--predict and --generate/--prompt both write --output: run them "
            "one at a time");
  if (!a.prompts.empty() && a.tokenizer.empty())
    fail(2, "--prompt encodes text with the model's tokenizer: give "
            "--tokenizer tokenizer.model");
  if (!a.generate.empty() && a.output.empty())
    fail(2, "--generate needs --output FILE for the generated ids");
  if (!a.predict.empty() && a.output.empty())
    fail(2, "--predict needs --output FILE for the labels and probabilities");
  if (!a.output.empty() && a.generate.empty() && a.prompts.empty() &&
      a.predict.empty())
    fail(2, "--output needs --generate, --prompt or --predict");
  if (a.maxNewTokens < 1)
    fail(2, "--max-new-tokens must be at least 1");
  if (absl::Status s = rt::checkSamplingOptions(a.sampling); !s.ok())
    fail(2, std::string(s.message()));
  if (a.steps >= 0 && a.epochs >= 0)
    fail(2, "give either --steps or --epochs, not both");
  if (!a.evalOut.empty() && a.eval.empty())
    fail(2, "--eval-out needs --eval");
  if (!a.evalTaps.empty() && a.eval.empty())
    fail(2, "--eval-taps needs --eval");
  if (!a.taps.empty() && a.data.empty())
    fail(2, "--taps needs --data (the rows the taps belong to)");
  if (!a.dumpTaps.empty() &&
      (!a.taps.empty() || !a.save.empty() || !a.saveMerged.empty() ||
       !a.saveAdapter.empty() || !a.evalOut.empty()))
    fail(2, "--dump-taps only records taps: drop --taps, --save, "
            "--save-merged, --save-adapter and --eval-out");
  if (!a.initAdapter.empty() && a.init.empty())
    fail(2, "--init-adapter takes the LoRA factors (and the task head it "
            "trained) from the adapter folder; give the base model's weights "
            "with --init FILE");
  // Any profile output implies --profile; it measures training steps.
  a.profile = a.profile || !a.profileJson.empty() || !a.profileSvg.empty() ||
              !a.profileStatic.empty();
  if (a.profile && a.data.empty() && a.generate.empty())
    fail(2, "--profile measures training steps (--data) or decode steps "
            "(--generate with a KV-cache plan)");
  if (a.nproc > 0 && (a.launch.rank || a.launch.world || a.launch.master))
    fail(2, "--nproc launches the ranks itself; drop --rank/--world/--master");
  if (a.timeoutS <= 0)
    fail(2, "--timeout must be positive");
  checkCheckpointFlags(a);
  return a;
}

// --dump-taps: the side-tuning backbone's taps of every row of `data`, in file
// order (eval mode: no dropout), written by rank 0.
int dumpTaps(rt::Executor &ex, const io::Dataset &data, const Args &args,
             bool lead) {
  if (rt::evalStepTaps(ex.plan()).empty())
    fail(2, "--dump-taps: this plan's eval_step returns no taps; compile the "
            "side-tuning config (use_side: true, not use_side_only) and dump "
            "with that plan");
  auto rec = rt::recordTaps(ex, data, args.seed);
  if (!rec.ok())
    fail(1, std::string(rec.status().message()));
  if (lead) {
    if (absl::Status s = rec->write(args.dumpTaps); !s.ok())
      fail(1, std::string(s.message()));
    std::cerr << absl::StrFormat(
        "galaxy-run: wrote %d taps of %d rows of %s to %s\n", rec->size(),
        data.size(), data.path(), args.dumpTaps);
  }
  return 0;
}

// The taps file of `data` for a side-only plan; none when the plan reads none.
std::optional<rt::TapsFile> openTaps(const plan::Plan &plan,
                                     const std::string &path,
                                     const io::Dataset &data,
                                     const char *flag) {
  std::vector<rt::Tap> inputs = rt::tapInputs(plan);
  if (inputs.empty()) {
    if (!path.empty())
      fail(2, absl::StrCat(flag, " given but the plan reads no taps (it was "
                                 "not compiled with use_side_only)"));
    return std::nullopt;
  }
  if (path.empty())
    fail(2, absl::StrCat("this side-only plan reads the backbone's taps of ",
                         data.path(), ": give ", flag,
                         " FILE (galaxy-run SIDE_TUNING_PLAN --data ",
                         data.path(), " --dump-taps FILE writes it)"));
  auto t = rt::TapsFile::open(path, inputs, data.size());
  if (!t.ok())
    fail(2, std::string(t.status().message()));
  return std::move(*t);
}

// --nproc N: check the plan's world, then run N copies of this program.
int launchLocal(const Args &args) {
  std::string file;
  auto planOr = readPlan(args.plan, 0, &file);
  if (!planOr.ok())
    fail(2, std::string(planOr.status().message()));
  const int world = planWorldSize(*planOr);
  const plan::Pipeline &pp = planOr->pipeline();
  if (args.nproc != world)
    fail(2,
         absl::StrCat(
             "--nproc ", args.nproc, " does not match the plan: ", file,
             " was compiled for ", world, world == 1 ? " rank" : " ranks",
             pp.num_stages() > 0
                 ? absl::StrCat(" (", pp.num_stages(), " pipeline stages of ",
                                std::max(pp.group_size(), 1), ")")
                 : std::string(),
             "; use --nproc ", world, " or recompile with --world ",
             args.nproc));
  // The ranks share this machine's memory and write from rank 0: check both
  // before any rank starts.
  plan::PlanMemory need;
  for (int r = 0; r < world; ++r) {
    std::string rankFile;
    auto p = readPlan(args.plan, r, &rankFile);
    if (!p.ok())
      break; // the rank that cannot read it says why
    auto m = plan::checkPlanSizes(*p, "plan " + rankFile);
    if (!m.ok())
      break; // likewise
    need += *m;
  }
  if (args.backend == "cpu")
    checkMemory(need, args.plan, world);
  checkOutputs(args);
  checkCheckpointDir(args);
  rt::LocalRanksOptions o;
  o.exe = "/proc/self/exe";
  o.args = args.childArgs;
  o.nproc = int(args.nproc);
  // Stopped ranks first finish their step and write a checkpoint: give them
  // as long as a collective may take before killing them.
  if (!args.checkpointDir.empty())
    o.killGrace = std::max(
        o.killGrace, std::chrono::milliseconds(int64_t(args.timeoutS * 1000)));
  o.jobToken = launcherJobToken(args);
  return rt::runLocalRanks(o);
}

// --backend cuda: the GPU of this rank (its local rank) and the
// CUDA backend on it; `stream`/`device` are for connecting NCCL.
std::unique_ptr<rt::Backend> cudaBackendFor(const rt::LaunchInfo &launch,
                                            void **stream, int *device) {
#ifdef GALAXY_EXECUTOR_DEVICE_MEMORY
  absl::StatusOr<int> visible = rt::cuda::visibleDeviceCount();
  if (!visible.ok()) {
    absl::string_view why = visible.status().message();
    absl::ConsumePrefix(&why, "no usable GPU: "); // said once, below
    fail(2, absl::StrCat("--backend cuda: no usable GPU: ", why));
  }
  if (*visible <= 0)
    fail(2, "--backend cuda: no usable GPU: no CUDA device is visible");
  // The launcher's local rank (LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_RANK,
  // SLURM_LOCALID, ...; the rank itself when none is set).
  *device = comm::deviceForLocalRank(launch.localRank, *visible);
  auto b = rt::cuda::createCudaBackend({.device = *device});
  if (!b.ok())
    fail(2,
         absl::StrCat("--backend cuda: no usable GPU: ", b.status().message()));
  rt::DeviceMemory *mem = rt::cuda::deviceMemoryOf(**b);
  if (!mem)
    fail(1, "--backend cuda: the CUDA backend has no device memory");
  *stream = mem->stream();
  return std::move(*b);
#else
  (void)launch, (void)stream, (void)device;
  fail(2, "--backend cuda: this galaxy-run was built without CUDA (no nvcc "
          "when configured, or -DGALAXY_CUDA=OFF); rebuild with the CUDA "
          "toolkit or use --backend cpu");
#endif
}

// What the plan allocates against GPU `device`'s free memory (the host's is
// checked in loadInputs for --backend cpu).
void checkGpuMemory(const plan::Plan &plan, const std::string &path,
                    int device) {
#ifdef GALAXY_EXECUTOR_DEVICE_MEMORY
  absl::StatusOr<plan::PlanMemory> need =
      plan::checkLoadedPlanSizes(plan, "plan " + path);
  absl::StatusOr<std::pair<int64_t, int64_t>> info =
      rt::cuda::deviceMemoryInfo(device);
  if (need.ok() && info.ok())
    checkDeviceMemory(*need, path, device, info->first, info->second);
#else
  (void)plan, (void)path, (void)device;
#endif
}

// Gloo for the CPU; NCCL on `device` (>= 0) for the CUDA backend, through
// the same TCP store rendezvous.
absl::StatusOr<std::unique_ptr<comm::Communicator>>
connectRanks(const comm::CommOptions &co, int device, void *stream) {
#ifdef GALAXY_EXECUTOR_DEVICE_MEMORY
  if (device >= 0)
    return comm::connectNccl(co, device, stream);
#else
  (void)device, (void)stream;
#endif
  return comm::connectGloo(co);
}

int runRank(Args args) {
  auto launch = rt::resolveLaunch(args.launch);
  if (!launch.ok())
    fail(2, std::string(launch.status().message()));
  const int rank = launch->rank, world = launch->world;
  const bool lead = rank == 0;
  std::string planFile;
  auto planOr = readPlan(args.plan, rank, &planFile);
  if (!planOr.ok())
    fail(2, std::string(planOr.status().message()));
  if (planOr->pipeline().num_stages() > 0)
    return runPipelineRank(args, *launch, planFile, std::move(*planOr));
  // Refuse a mismatched plan before anyone waits on a rendezvous.
  const int planWorld = std::max(planOr->world(), 1);
  if (planWorld > 1 && launch->source == "default")
    fail(2,
         absl::StrCat(
             planFile, " is for rank ", planOr->rank(), " of ", planWorld,
             "; run the plan with --nproc ", planWorld,
             ", or start each rank with --rank R --world ", planWorld,
             " --master HOST:PORT (or torchrun's RANK/WORLD_SIZE/MASTER_ADDR/"
             "MASTER_PORT)"));
  if (planOr->rank() != rank || planWorld != world)
    fail(2, absl::StrCat("plan ", planFile, " is for rank ", planOr->rank(),
                         " of ", planWorld, " but this process is rank ", rank,
                         " of ", world,
                         planWorld != world
                             ? absl::StrCat("; recompile with --world ", world)
                             : std::string()));
  const plan::ModelInfo model = planOr->model();

  // Validate every input before anything is written.
  RunInputs inputs = loadInputs(args, *planOr, lead);
  std::optional<io::Dataset> &train = inputs.train, &eval = inputs.eval;
  if (lead)
    checkCheckpointDir(args);
  RunCheckpoints checkpoints(args, *planOr, train ? &*train : nullptr, lead);

  // Declared before the communicator, which may use the backend's stream.
  std::unique_ptr<rt::Backend> backend;
  void *stream = nullptr;
  int device = -1;
  if (args.backend == "cuda") {
    backend = cudaBackendFor(*launch, &stream, &device);
    checkGpuMemory(*planOr, args.plan, device);
  }
  std::unique_ptr<comm::Communicator> comm;
  if (world > 1) {
    comm::CommOptions co;
    co.rank = rank;
    co.world = world;
    co.masterHost = launch->masterHost;
    co.masterPort = launch->masterPort;
    co.timeout = std::chrono::milliseconds(int64_t(args.timeoutS * 1000));
    co.token = jobToken(args);
    if (co.token.empty() && lead)
      warnWithoutToken(
          absl::StrCat(launch->masterHost, ":", launch->masterPort));
    co.facts = jobFacts(args, *planOr);
    comm::JoinFacts leadFacts;
    co.leadFacts = &leadFacts;
    auto c = connectRanks(co, device, stream);
    if (!c.ok())
      fail(joinExitCode(c.status()),
           absl::StrCat("rank ", rank, " of ", world,
                        " cannot join the group at ", launch->masterHost, ":",
                        launch->masterPort, ": ", c.status().message()));
    comm = std::move(*c);
    adoptLeadRoles(args, leadFacts, rank);
  }

  if (!backend)
    backend = rt::makeCpuBackend();
  if (lead)
    std::cerr << "galaxy-run: backend " << backend->name() << "; "
              << backend->gemmDescription()
              << (world > 1 ? absl::StrCat("; ", world, " ranks") : "") << "\n";
  auto exOr = rt::Executor::create(
      std::move(*planOr), *backend, comm.get(), "plan " + planFile,
      device >= 0 ? rt::CommBuffers::kDevice : rt::CommBuffers::kHost);
  if (!exOr.ok())
    fail(2, std::string(exOr.status().message()));
  rt::Executor &ex = **exOr;
  if (checkpoints.resuming())
    checkpoints.load(ex);
  else
    initWeights(ex, inputs, args);
  if (!args.dumpTaps.empty()) {
    int code = dumpTaps(ex, train ? *train : *eval, args, lead);
    if (comm)
      if (absl::Status s = comm->barrier(); !s.ok())
        fail(1, absl::StrCat("rank ", rank, ": final barrier: ", s.message()));
    return code;
  }
  std::optional<rt::TapsFile> trainTaps, evalTaps;
  if (train)
    trainTaps = openTaps(ex.plan(), args.taps, *train, "--taps");
  if (eval)
    evalTaps = openTaps(ex.plan(), args.evalTaps, *eval, "--eval-taps");

  ex.setInstrTiming(args.profile);
  rt::ExecutorSteps steps(ex);
  steps.setTaps(trainTaps ? &*trainTaps : nullptr,
                evalTaps ? &*evalTaps : nullptr);
  rt::TrainerOptions topts = trainerOptions(args, model, rank);
  checkpoints.attach(topts, steps, ex.hostComm());
  rt::Trainer trainer(steps, std::move(topts));
  if (train) {
    if (!ex.hasProgram("train_step"))
      fail(2,
           "the plan has no train_step program (galaxyc --inference compiled "
           "it forward-only); compile the config without --inference to train");
    trainWithLog(trainer, args, model, *train, lead, inputs.metrics);
  }
  checkpoints.finish();
  if (args.profile && train)
    reportProfile(ex, args, ex.hostComm(), trainer.measuredSeconds(), lead);
  saveWeights(trainer, args, ex.plan(), inputs.peft, lead);
  if (eval)
    evaluateWithReport(trainer, args, *eval, lead);
  if (inputs.predict)
    predictWithReport(trainer, args, *inputs.predict, lead);
  if (!args.generate.empty() || !args.prompts.empty())
    generateWithReport(steps, &ex, args, model, lead);
  // Leave together, so no rank tears down a connection a peer still reads.
  if (comm)
    if (absl::Status s = comm->barrier(); !s.ok())
      fail(1, absl::StrCat("rank ", rank, ": final barrier: ", s.message()));
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  // libgomp fixes its wait policy at load: re-exec with a bounded spin (a
  // single rank) or PASSIVE (ranks sharing the host) unless the user chose
  // (runtime/cpu/library_env.h).
  rt::cpu::prepareCpuLibraries(argv);
  if (const char *p = std::getenv("GALAXY_TEST_PAUSE_IN_SAVE"); p && *p)
    io::setTempFileHookForTesting([](const std::string &tmp) {
      std::cerr << "galaxy-run: test hook: paused writing " << tmp << "\n";
      while (true)
        pause(); // until a signal ends the process
    });
  try {
    if (isCalibrate(argc, argv))
      return runCalibrate(argc, argv, {cudaBackendFor, connectRanks});
    Args args = parseArgs(argc, argv);
    return args.nproc > 0 ? launchLocal(args) : runRank(args);
  } catch (const Exit &e) {
    return e.code;
  }
}
