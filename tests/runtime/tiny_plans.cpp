#include "tests/runtime/tiny_plans.h"

#include <filesystem>
#include <fstream>

#include "tests/runtime/plan_builder.h"

namespace galaxy::rt::testing {

plan::Plan tinyDataParallelPlan(int rank,
                                const std::vector<int64_t> &batchSizes) {
  const int world = static_cast<int>(batchSizes.size());
  const int64_t b = batchSizes[rank], off = offsetsOf(batchSizes)[rank];
  const int64_t B = kTinyBatch, S = kTinySeq, C = kTinyClasses;
  PlanBuilder pb(rank, world);
  plan::ModelInfo &m = *pb.plan().mutable_model();
  m.set_model("tiny");
  m.set_batch_size(B);
  m.set_seq_len(S);
  m.set_num_classes(C);
  m.set_vocab_size(kTinyVocab);

  const int w = pb.param("classifier.weight", {C, S});
  const int bias = pb.param("classifier.bias", {C}, {}, {}, "normal", 0.1f);
  // Built per program so each binds its own input buffers.
  auto forward = [&](const std::string &prog) {
    const int x =
        pb.input("attention_mask", {b, S}, plan::F32, {B, S}, {off, 0});
    const int logits = pb.arena(prog + ".logits", {b, C});
    pb.bindInput(prog, "attention_mask", x);
    pb.add(prog, "linear", {x, w, bias}, {logits});
    return std::pair{x, logits};
  };
  // Every partial sum is all-reduced; the serial plan needs none.
  auto reduce = [&](const std::string &prog, int partial, const Shape &shape) {
    if (world == 1)
      return partial;
    const int full =
        pb.arena(pb.plan().buffers(partial).name() + ".sum", shape);
    pb.add(prog, "all_reduce", {partial}, {full});
    return full;
  };

  auto [x, logits] = forward("train_step");
  const int labels = pb.input("labels", {b}, plan::I32, {B}, {off});
  pb.bindInput("train_step", "labels", labels);
  const int lossPart = pb.arena("loss.partial", {1});
  setFloat(pb.add("train_step", "cross_entropy", {logits, labels}, {lossPart}),
           "denominator", double(B));
  const int loss = reduce("train_step", lossPart, {1});
  const int dloss = pb.arena("dloss", {1});
  setFloat(pb.add("train_step", "fill", {}, {dloss}), "value", 1.0);
  const int dlogits = pb.arena("dlogits", {b, C});
  setFloat(pb.add("train_step", "cross_entropy_grad", {logits, labels, dloss},
                  {dlogits}),
           "denominator", double(B));
  const int dwPart = pb.arena("dw.partial", {C, S});
  pb.add("train_step", "linear_weight_grad", {dlogits, x}, {dwPart});
  const int dbPart = pb.arena("db.partial", {C});
  pb.add("train_step", "bias_grad", {dlogits}, {dbPart});
  const int dw = reduce("train_step", dwPart, {C, S});
  const int db = reduce("train_step", dbPart, {C});
  setFloat(pb.add("train_step", "sgd_update", {w, dw}, {}), "lr", 0.5);
  setFloat(pb.add("train_step", "sgd_update", {bias, db}, {}), "lr", 0.5);
  pb.bindOutput("train_step", "loss", loss);

  auto [ex, elogits] = forward("eval_step");
  (void)ex;
  pb.setGlobal(elogits, {B, C}, {off, 0}); // gathered by the executor
  pb.bindOutput("eval_step", "logits", elogits);
  return pb.finish();
}

bool writeTinyPlans(const std::string &dir,
                    const std::vector<int64_t> &batchSizes) {
  std::filesystem::create_directories(dir);
  for (int r = 0; r < static_cast<int>(batchSizes.size()); ++r) {
    std::ofstream out(dir + "/rank" + std::to_string(r) + ".plan.pb",
                      std::ios::binary);
    if (!tinyDataParallelPlan(r, batchSizes).SerializeToOstream(&out))
      return false;
  }
  return true;
}

bool writeTinyData(const std::string &path, int rows) {
  std::ofstream out(path);
  for (int i = 0; i < rows; ++i) {
    const int len = 1 + (i * 7 + 3) % kTinySeq;
    out << "{\"input_ids\": [";
    for (int t = 0; t < len; ++t)
      out << (t ? ", " : "") << 1 + (i + t) % (kTinyVocab - 1);
    out << "], \"label\": " << (i * 5 + 1) % kTinyClasses << "}\n";
  }
  return bool(out);
}

} // namespace galaxy::rt::testing
