#include "runtime/exec/generate_seq2seq.h"

#include "absl/strings/str_format.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/trainer.h"
#include "runtime/io/dataset.h"
#include "runtime/plan/programs.h"

namespace galaxy::rt {
namespace {

// The sources of one group of B prompts from `first`, right-padded to S
// (spare rows of a last partial group repeat prompt `first`), with their mask.
void sources(const std::vector<std::vector<int32_t>> &prompts, int64_t first,
             const GenerateOptions &o, int64_t S, io::Batch *batch) {
  const int64_t B = o.batchSize, N = int64_t(prompts.size());
  std::vector<int32_t> &ids = batch->ints("input_ids");
  std::vector<float> &mask = batch->floats("attention_mask");
  ids.assign(B * S, int32_t(o.padId));
  mask.assign(B * S, 0.0f);
  for (int64_t r = 0; r < B; ++r) {
    const std::vector<int32_t> &p = prompts[first + r < N ? first + r : first];
    for (size_t s = 0; s < p.size(); ++s) {
      ids[r * S + s] = p[s];
      mask[r * S + s] = 1.0f;
    }
  }
}

// Chooses each live row's next token from its logits row (V each, `stride`
// apart) and records it; returns whether every row is done.
bool step(const float *logits, int64_t stride, int64_t first, int64_t t,
          const GenerateOptions &o, std::vector<int32_t> *next,
          std::vector<bool> *done,
          std::vector<std::vector<int32_t>> *generated) {
  const int64_t N = int64_t(generated->size());
  bool all = true;
  for (int64_t r = 0; r < o.batchSize; ++r) {
    if ((*done)[r])
      continue;
    (*next)[r] =
        nextToken(logits + r * stride, o.vocabSize, o.sampling, first + r, t);
    if (first + r < N)
      (*generated)[first + r].push_back((*next)[r]);
    (*done)[r] = (*next)[r] == o.eosId;
    all = all && (*done)[r];
  }
  return all;
}

} // namespace

absl::Status
checkSeq2SeqLengths(const std::vector<std::vector<int32_t>> &prompts,
                    const GenerateOptions &o, const Seq2SeqShape &shape) {
  for (size_t i = 0; i < prompts.size(); ++i)
    if (int64_t(prompts[i].size()) > shape.sourceLen)
      return absl::InvalidArgumentError(absl::StrFormat(
          "prompt %d has %d tokens, more than the plan's %d source positions "
          "(pad_size)",
          i + 1, prompts[i].size(), shape.sourceLen));
  if (o.maxNewTokens > o.seqLen)
    return absl::InvalidArgumentError(absl::StrFormat(
        "%d new tokens need %d decoder positions, the plan has %d "
        "(target_pad_size; compile with a larger one or ask for fewer tokens)",
        o.maxNewTokens, o.maxNewTokens, o.seqLen));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::vector<int32_t>>> generateSeq2SeqByRecompute(
    StepRunner &runner, const std::vector<std::vector<int32_t>> &prompts,
    const GenerateOptions &o, const Seq2SeqShape &shape) {
  if (absl::Status s = checkSeq2SeqLengths(prompts, o, shape); !s.ok())
    return s;
  const int64_t B = o.batchSize, S = shape.sourceLen, T = o.seqLen,
                V = o.vocabSize, N = int64_t(prompts.size());
  const io::Dataset noTaps;
  std::vector<std::vector<int32_t>> generated(N);
  for (int64_t first = 0; first < N; first += B) {
    io::Batch batch;
    batch.size = B;
    batch.seqLen = S;
    sources(prompts, first, o, S, &batch);
    std::vector<int32_t> &dec = batch.ints("decoder_input_ids");
    std::vector<float> &decMask = batch.floats("decoder_attention_mask");
    dec.assign(B * T, int32_t(o.padId));
    decMask.assign(B * T, 0.0f);
    // No targets: the loss is not read (one keeps its divisor finite).
    batch.ints("labels").assign(B * T, io::kIgnoreIndex);
    batch.floats("num_targets").assign(1, 1.0f);
    std::vector<int32_t> next(B);
    std::vector<bool> done(B);
    for (int64_t r = 0; r < B; ++r)
      done[r] = first + r >= N;
    for (int64_t t = 0; t < o.maxNewTokens; ++t) {
      // Decoder position t reads [start, tokens 0..t-1].
      for (int64_t r = 0; r < B; ++r) {
        dec[r * T + t] = t == 0 ? shape.decoderStartId : next[r];
        decMask[r * T + t] = 1.0f;
      }
      absl::StatusOr<std::vector<float>> logits =
          runner.evalLogits(noTaps, 0, batch, o.seed);
      if (!logits.ok())
        return logits.status();
      if (int64_t(logits->size()) != B * T * V)
        return absl::FailedPreconditionError(absl::StrFormat(
            "eval_step returned %d logits, not [%d, %d, %d] (generation "
            "needs every rank to hold the logits: pipeline plans are not "
            "supported yet)",
            logits->size(), B, T, V));
      if (step(logits->data() + t * V, T * V, first, t, o, &next, &done,
               &generated))
        break;
    }
  }
  return generated;
}

bool hasSeq2SeqPrograms(const Executor &ex) {
  return ex.hasProgram("encode") && ex.hasProgram("decode");
}

absl::StatusOr<std::vector<std::vector<int32_t>>>
generateSeq2SeqWithCache(Executor &ex,
                         const std::vector<std::vector<int32_t>> &prompts,
                         const GenerateOptions &o, const Seq2SeqShape &shape) {
  if (absl::Status s = checkSeq2SeqLengths(prompts, o, shape); !s.ok())
    return s;
  if (!hasSeq2SeqPrograms(ex))
    return absl::FailedPreconditionError(
        "the plan has no seq2seq generation programs (encode and decode)");
  const int64_t B = o.batchSize, S = shape.sourceLen, T = o.seqLen,
                V = o.vocabSize, N = int64_t(prompts.size());
  const KernelContext ctx{o.seed, 0, /*training=*/false};
  std::vector<std::vector<int32_t>> generated(N);
  for (int64_t first = 0; first < N; first += B) {
    io::Batch src;
    src.size = B;
    src.seqLen = S;
    sources(prompts, first, o, S, &src);
    absl::StatusOr<Outputs> enc = ex.run("encode", src, ctx);
    if (!enc.ok())
      return enc.status();
    // The self-attention caches start at zero: decode adds each step's key
    // and value at its slot. Their size: the cross caches' per position.
    std::map<std::string, std::vector<float>> caches;
    int64_t heads = 0;
    for (const auto &[name, values] : *enc) {
      if (name.rfind("cross.k.", 0) != 0)
        continue;
      const std::string layer = name.substr(8);
      for (const char *kv : {"k", "v"})
        caches[plan::cachePort(kv, std::stoll(layer))].assign(
            values.size() / S * T, 0.0f);
    }
    for (const plan::Program &p : ex.plan().programs())
      if (p.name() == "decode")
        for (const plan::Binding &in : p.inputs())
          if (in.name() == "slot")
            heads = ex.plan().buffers(in.buffer()).global_shape(1);
    if (heads <= 0)
      return absl::FailedPreconditionError(
          "the plan's decode program reads no slot [B, N, T, 1]");
    std::vector<int32_t> next(B, shape.decoderStartId);
    std::vector<bool> done(B);
    for (int64_t r = 0; r < B; ++r)
      done[r] = first + r >= N;
    for (int64_t t = 0; t < o.maxNewTokens; ++t) {
      io::Batch st;
      st.size = B;
      st.seqLen = 1;
      st.ints("decoder_input_ids") = next;
      st.ints("position_rows").assign(B, int32_t(t + 2));
      std::vector<float> &m = st.floats("decoder_attention_mask");
      std::vector<float> &slot = st.floats("slot");
      m.assign(B * T, 0.0f);
      slot.assign(B * heads * T, 0.0f);
      for (int64_t r = 0; r < B; ++r) {
        std::fill(m.begin() + r * T, m.begin() + r * T + t + 1, 1.0f);
        for (int64_t h = 0; h < heads; ++h)
          slot[(r * heads + h) * T + t] = 1.0f;
      }
      st.floats("attention_mask") = src.floats("attention_mask");
      for (auto &[name, values] : caches)
        st.floats(name) = std::move(values);
      for (const auto &[name, values] : *enc)
        st.floats(name) = values;
      absl::StatusOr<Outputs> out = ex.run("decode", st, ctx);
      if (!out.ok())
        return out.status();
      for (auto &[name, values] : caches)
        values = std::move((*out)[name]);
      const std::vector<float> &logits = (*out)["logits"];
      if (int64_t(logits.size()) != B * V)
        return absl::InternalError(absl::StrFormat(
            "decode returned %d logits, not [%d, %d]", logits.size(), B, V));
      if (step(logits.data(), V, first, t, o, &next, &done, &generated))
        break;
    }
  }
  return generated;
}

} // namespace galaxy::rt
