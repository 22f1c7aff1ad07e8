#include "runtime/io/plan_data.h"

#include "absl/strings/str_format.h"
#include "runtime/plan/programs.h"

namespace galaxy::io {

absl::StatusOr<DatasetOptions> datasetOptionsFor(const plan::Plan &plan) {
  const plan::ModelInfo &m = plan.model();
  DatasetOptions o;
  if (m.task().empty() || m.task() == "classification")
    o.task = Task::kClassification;
  else if (m.task() == "causal_lm")
    o.task = Task::kCausalLm;
  else if (m.task() == "seq2seq")
    o.task = Task::kSeq2Seq;
  else
    return absl::FailedPreconditionError(absl::StrFormat(
        "the plan's task '%s' is unknown to this galaxy-run (it reads "
        "classification, causal_lm and seq2seq data); use the galaxy-run of "
        "the "
        "galaxyc that compiled it",
        m.task()));
  o.padSize = m.seq_len();
  o.numClasses = m.num_classes();
  o.vocabSize = m.vocab_size();
  o.padId = m.pad_id();
  o.targetPadSize = m.target_seq_len();
  o.decoderStartId = m.decoder_start_id();
  o.eosId = m.eos_id();
  o.encoderDecoder = o.task == Task::kSeq2Seq;
  // Token-level labels [B, S] and a num_targets: causal LM and seq2seq.
  const bool causal = o.task != Task::kClassification;
  const char *task = o.task == Task::kCausalLm  ? "causal_lm"
                     : o.task == Task::kSeq2Seq ? "seq2seq"
                                                : "classification";
  // A pipeline stage reads only its own inputs (the first stage no labels):
  // the task, not the inputs, decides what a row holds; the inputs read must
  // agree with it.
  for (const plan::Program &p : plan.programs())
    for (const plan::Binding &in : p.inputs()) {
      if (plan::isGenerationProgram(p.name()))
        break;
      // Read before Executor::create checks the bindings: a damaged plan's
      // index must not reach buffers() (a protobuf CHECK, or a read past the
      // array in a release build).
      if (in.buffer() < 0 || in.buffer() >= plan.buffers_size())
        return absl::InvalidArgumentError(absl::StrFormat(
            "the plan's program '%s' binds input '%s' to buffer %d, but the "
            "plan has %d buffers; the plan is damaged: recompile it",
            p.name(), in.name(), in.buffer(), plan.buffers_size()));
      const plan::Buffer &b = plan.buffers(in.buffer());
      const int rank =
          b.global_shape_size() > 0 ? b.global_shape_size() : b.shape_size();
      if (in.name() == "labels" && rank != (causal ? 2 : 1))
        return absl::FailedPreconditionError(absl::StrFormat(
            "the plan's program '%s' reads labels of rank %d, but its task "
            "%s has labels %s; recompile with a galaxyc that writes the task",
            p.name(), rank, task, causal ? "[batch, seq]" : "[batch]"));
      if (in.name() == "num_targets" && !causal)
        return absl::FailedPreconditionError(absl::StrFormat(
            "the plan's program '%s' reads num_targets, which only causal_lm "
            "and seq2seq data provide, but its task is %s",
            p.name(), task));
      // A BART side-only plan reads the decoder's mask but not its ids.
      if (in.name() == "decoder_input_ids" ||
          in.name() == "decoder_attention_mask") {
        if (o.targetPadSize <= 0)
          return absl::FailedPreconditionError(absl::StrFormat(
              "the plan's program '%s' reads %s but the plan has no "
              "target_seq_len; recompile with this galaxyc",
              p.name(), in.name()));
        o.encoderDecoder = true;
      }
      if (in.name() == "eos_index" && causal)
        return absl::FailedPreconditionError(absl::StrFormat(
            "the plan's program '%s' reads eos_index, which only "
            "classification data provides, but its task is %s",
            p.name(), task));
      if (in.name() == "last_index") {
        if (causal)
          return absl::FailedPreconditionError(absl::StrFormat(
              "the plan's program '%s' reads last_index, which only "
              "classification data provides, but its task is %s",
              p.name(), task));
        o.lastIndex = true;
      }
    }
  return o;
}

} // namespace galaxy::io
