#include "runtime/exec/generate.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "runtime/exec/executor.h"
#include "runtime/exec/trainer.h"
#include "runtime/io/dataset.h"
#include "runtime/io/text_file.h"
#include "runtime/plan/programs.h"

namespace galaxy::rt {

absl::StatusOr<std::vector<std::vector<int32_t>>>
readPrompts(const std::string &path, int64_t vocabSize) {
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(absl::StrFormat("cannot read prompts %s", path));
  std::vector<std::vector<int32_t>> prompts;
  std::string line;
  for (int64_t lineno = 1; std::getline(in, line); ++lineno) {
    if (line.find_first_not_of(" \t\r") == std::string::npos)
      continue;
    const std::string where = absl::StrFormat("%s:%d", path, lineno);
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("input_ids") ||
        !j["input_ids"].is_array() || j["input_ids"].empty())
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: a prompt is {\"input_ids\": [at least one id]}", where));
    std::vector<int32_t> ids;
    for (const nlohmann::json &v : j["input_ids"]) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
          v.get<int64_t>() >= vocabSize)
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: input id %s is not an integer in [0, %d)",
                            where, v.dump(), vocabSize));
      ids.push_back(int32_t(v.get<int64_t>()));
    }
    prompts.push_back(std::move(ids));
  }
  if (prompts.empty())
    return absl::InvalidArgumentError(
        absl::StrFormat("prompts %s hold no rows", path));
  return prompts;
}

absl::Status
checkPromptLengths(const std::vector<std::vector<int32_t>> &prompts,
                   const GenerateOptions &o) {
  for (size_t i = 0; i < prompts.size(); ++i)
    if (int64_t(prompts[i].size()) + o.maxNewTokens > o.seqLen)
      return absl::InvalidArgumentError(absl::StrFormat(
          "prompt %d has %d tokens: with %d new ones it needs %d positions, "
          "the plan has %d (compile with a larger pad_size or ask for fewer "
          "tokens)",
          i + 1, prompts[i].size(), o.maxNewTokens,
          int64_t(prompts[i].size()) + o.maxNewTokens, o.seqLen));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<int32_t>>>
generateByRecompute(StepRunner &runner,
                    const std::vector<std::vector<int32_t>> &prompts,
                    const GenerateOptions &o) {
  if (absl::Status s = checkPromptLengths(prompts, o); !s.ok())
    return s;
  const int64_t B = o.batchSize, S = o.seqLen, N = int64_t(prompts.size());
  const io::Dataset noTaps; // generation reads no taps files
  std::vector<std::vector<int32_t>> generated(N);
  for (int64_t first = 0; first < N; first += B) {
    // Each row's tokens so far; spare rows of a last partial group repeat
    // prompt `first` and are dropped.
    std::vector<std::vector<int32_t>> rows(B);
    std::vector<bool> done(B, false);
    for (int64_t r = 0; r < B; ++r) {
      rows[r] = prompts[first + r < N ? first + r : first];
      done[r] = first + r >= N;
    }
    for (int64_t t = 0; t < o.maxNewTokens; ++t) {
      io::Batch batch;
      batch.size = B;
      batch.seqLen = S;
      std::vector<int32_t> &ids = batch.ints("input_ids");
      std::vector<float> &mask = batch.floats("attention_mask");
      ids.assign(B * S, int32_t(o.padId));
      mask.assign(B * S, 0.0f);
      // No targets: the loss is not read (one keeps its divisor finite).
      batch.ints("labels").assign(B * S, io::kIgnoreIndex);
      batch.floats("num_targets").assign(1, 1.0f);
      for (int64_t r = 0; r < B; ++r)
        for (size_t s = 0; s < rows[r].size(); ++s) {
          ids[r * S + s] = rows[r][s];
          mask[r * S + s] = 1.0f;
        }
      absl::StatusOr<std::vector<float>> logits =
          runner.evalLogits(noTaps, 0, batch, o.seed);
      if (!logits.ok())
        return logits.status();
      if (int64_t(logits->size()) != B * S * o.vocabSize)
        return absl::FailedPreconditionError(absl::StrFormat(
            "eval_step returned %d logits, not [%d, %d, %d] (generation "
            "needs every rank to hold the logits: pipeline plans are not "
            "supported yet)",
            logits->size(), B, S, o.vocabSize));
      bool all = true;
      for (int64_t r = 0; r < B; ++r) {
        if (done[r])
          continue;
        const float *l =
            &(*logits)[(r * S + int64_t(rows[r].size()) - 1) * o.vocabSize];
        const int32_t arg = nextToken(l, o.vocabSize, o.sampling, first + r, t);
        rows[r].push_back(arg);
        if (first + r < N)
          generated[first + r].push_back(arg);
        done[r] = arg == o.eosId;
        all = all && done[r];
      }
      if (all)
        break;
    }
  }
  return generated;
}

namespace {

// The global shape of `program`'s input `name` (empty when it has none).
std::vector<int64_t> inputShape(const plan::Plan &plan,
                                const std::string &program,
                                const std::string &name) {
  for (const plan::Program &p : plan.programs())
    if (p.name() == program)
      for (const plan::Binding &in : p.inputs())
        if (in.name() == name) {
          const plan::Buffer &b = plan.buffers(in.buffer());
          return {b.global_shape().begin(), b.global_shape().end()};
        }
  return {};
}

} // namespace

bool hasCachePrograms(const Executor &ex) {
  return ex.hasProgram("prefill") && ex.hasProgram("decode");
}

absl::StatusOr<std::vector<std::vector<int32_t>>>
generateWithCache(Executor &ex,
                  const std::vector<std::vector<int32_t>> &prompts,
                  const GenerateOptions &o, GenerateStats *stats) {
  if (absl::Status s = checkPromptLengths(prompts, o); !s.ok())
    return s;
  const plan::Plan &plan = ex.plan();
  const std::vector<int64_t> slotQ = inputShape(plan, "decode", "slot_q"),
                             slotKv = inputShape(plan, "decode", "slot_kv");
  if (!hasCachePrograms(ex) || slotQ.size() != 4 || slotKv.size() != 4)
    return absl::FailedPreconditionError(
        "the plan has no KV-cache programs (prefill and decode with slot_q "
        "and slot_kv)");
  const int64_t B = o.batchSize, T = o.seqLen, V = o.vocabSize,
                N = int64_t(prompts.size());
  const int64_t heads = slotQ[1], kvHeads = slotKv[1];
  const KernelContext ctx{o.seed, 0, /*training=*/false};
  // The caches stay on each rank's backend, in the layout the partitioner
  // gave them: prefill's outputs are carried into decode's inputs, and each
  // decode's outputs into the next one's, never through the host.
  std::set<std::string> caches;
  for (const plan::Program &p : plan.programs())
    if (p.name() == "decode")
      for (const plan::Binding &in : p.inputs())
        if (plan::isCachePort(in.name()))
          caches.insert(in.name());
  ex.setKeptPorts("prefill", caches);
  ex.setKeptPorts("decode", caches);
  auto carryAll = [&](const std::string &from) -> absl::Status {
    for (const std::string &c : caches)
      if (absl::Status s = ex.carry(from, c, "decode", c); !s.ok())
        return s;
    return absl::OkStatus();
  };
  GenerateStats st;
  using Clock = std::chrono::steady_clock;
  std::vector<std::vector<int32_t>> generated(N);
  // Per step: the batch is reused, so the decode loop allocates nothing.
  io::Batch step;
  step.size = B;
  step.seqLen = 1;
  std::vector<int32_t> &next = step.ints("input_ids");
  std::vector<float> &m = step.floats("attention_mask");
  std::vector<float> &sq = step.floats("slot_q");
  std::vector<float> &skv = step.floats("slot_kv");
  next.assign(B, 0);
  m.assign(B * T, 0.0f);
  sq.assign(B * heads * T, 0.0f);
  skv.assign(B * kvHeads * T, 0.0f);
  for (int64_t first = 0; first < N; first += B) {
    std::vector<int64_t> len(B);
    std::vector<bool> done(B, false);
    io::Batch pre;
    pre.size = B;
    pre.seqLen = T;
    std::vector<int32_t> &ids = pre.ints("input_ids");
    std::vector<float> &mask = pre.floats("attention_mask");
    std::vector<int32_t> &lastIndex = pre.ints("last_index");
    ids.assign(B * T, int32_t(o.padId));
    mask.assign(B * T, 0.0f);
    lastIndex.assign(B, 0);
    for (int64_t r = 0; r < B; ++r) {
      const std::vector<int32_t> &p =
          prompts[first + r < N ? first + r : first];
      done[r] = first + r >= N;
      len[r] = int64_t(p.size());
      lastIndex[r] = int32_t(len[r] - 1);
      for (int64_t s = 0; s < len[r]; ++s) {
        ids[r * T + s] = p[s];
        mask[r * T + s] = 1.0f;
      }
    }
    const Clock::time_point t0 = Clock::now();
    absl::StatusOr<Outputs> out = ex.run("prefill", pre, ctx);
    if (!out.ok())
      return out.status();
    if (absl::Status s = carryAll("prefill"); !s.ok())
      return s;
    // Decode reads the slots from each row's length on as zeros (prefill
    // filled them from padding): zero this rank's part of them.
    for (const std::string &c : caches)
      if (absl::Status s = ex.editInput(
              "decode", c,
              [&](float *data, const Executor::PortBox &box) {
                // [B, NK, T, D]: this rank's rows, heads and slots.
                const int64_t b0 = box.offset[0], nb = box.shape[0],
                              nh = box.shape[1], t0 = box.offset[2],
                              nt = box.shape[2], D = box.shape[3];
                for (int64_t r = 0; r < nb; ++r) {
                  const int64_t from =
                      std::clamp<int64_t>(len[b0 + r] - t0, 0, nt);
                  for (int64_t h = 0; h < nh; ++h)
                    std::fill(data + ((r * nh + h) * nt + from) * D,
                              data + ((r * nh + h) * nt + nt) * D, 0.0f);
                }
              });
          !s.ok())
        return s;
    GenerateStats::Group &g = st.groups.emplace_back();
    g.prefillSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const Clock::time_point d0 = Clock::now();
    for (int64_t t = 0;; ++t) {
      const std::vector<float> &logits = (*out)["logits"];
      if (int64_t(logits.size()) != B * V)
        return absl::InternalError(absl::StrFormat(
            "a generation program returned %d logits, not [%d, %d]",
            logits.size(), B, V));
      bool all = true;
      for (int64_t r = 0; r < B; ++r) {
        if (done[r])
          continue;
        next[r] = nextToken(&logits[r * V], V, o.sampling, first + r, t);
        generated[first + r].push_back(next[r]);
        done[r] = next[r] == o.eosId;
        all = all && done[r];
      }
      if (all || t + 1 == o.maxNewTokens)
        break;
      // Token t of each row goes to slot len + t (the previous step's slot
      // is cleared first: one-hot rows).
      for (int64_t r = 0; r < B; ++r) {
        const int64_t slot = len[r] + t;
        if (t == 0)
          std::fill(m.begin() + r * T, m.begin() + r * T + T, 0.0f);
        std::fill(m.begin() + r * T, m.begin() + r * T + slot + 1, 1.0f);
        for (int64_t h = 0; h < heads; ++h) {
          float *row = &sq[(r * heads + h) * T];
          std::fill(row, row + T, 0.0f);
          row[slot] = 1.0f;
        }
        for (int64_t h = 0; h < kvHeads; ++h) {
          float *row = &skv[(r * kvHeads + h) * T];
          std::fill(row, row + T, 0.0f);
          row[slot] = 1.0f;
        }
      }
      out = ex.run("decode", step, ctx);
      if (!out.ok())
        return out.status();
      if (absl::Status s = carryAll("decode"); !s.ok())
        return s;
      // A profile (Executor::setInstrTiming) leaves out the first step:
      // first-use costs (repacked weights, GEMM choices, rope tables).
      if (++g.decodeSteps == 1 && st.groups.size() == 1)
        ex.resetInstrTimes();
    }
    g.decodeSeconds = std::chrono::duration<double>(Clock::now() - d0).count();
  }
  if (stats)
    *stats = st;
  return generated;
}

absl::Status
writeGenerations(const std::string &path,
                 const std::vector<std::vector<int32_t>> &prompts,
                 const std::vector<std::vector<int32_t>> &generated,
                 const std::vector<std::string> &texts) {
  std::ostringstream o;
  for (size_t i = 0; i < prompts.size(); ++i) {
    o << "{\"input_ids\": [" << absl::StrJoin(prompts[i], ", ")
      << "], \"generated_ids\": [" << absl::StrJoin(generated[i], ", ") << "]";
    if (i < texts.size())
      o << ", \"text\": "
        << nlohmann::json(texts[i]).dump(
               -1, ' ', false, nlohmann::json::error_handler_t::replace);
    o << "}\n";
  }
  return io::writeTextAtomically(path, o.str());
}

} // namespace galaxy::rt
