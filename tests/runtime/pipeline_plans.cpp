#include "tests/runtime/pipeline_plans.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "runtime/plan/schedule.h"
#include "tests/runtime/plan_builder.h"

namespace galaxy::rt::testing {

namespace {

int64_t layers(const ChainSpec &spec) { return int64_t(spec.dims.size()) - 1; }

void setModel(PlanBuilder &pb, const ChainSpec &spec) {
  plan::ModelInfo &m = *pb.plan().mutable_model();
  m.set_model("chain");
  m.set_batch_size(spec.batch);
  m.set_seq_len(spec.dims.front());
  m.set_num_classes(spec.dims.back());
  m.set_vocab_size(10);
}

// Parameters of layers [first, end): weight and bias buffer ids per layer.
struct LayerParams {
  std::vector<int> w, b, wIndex, bIndex;
};
LayerParams addParams(PlanBuilder &pb, const ChainSpec &spec, int first,
                      int end) {
  LayerParams p;
  for (int l = first; l < end; ++l) {
    p.wIndex.push_back(pb.plan().params_size());
    p.w.push_back(pb.param(absl::StrCat("l", l, ".weight"),
                           {spec.dims[l + 1], spec.dims[l]}));
    p.bIndex.push_back(pb.plan().params_size());
    p.b.push_back(pb.param(absl::StrCat("l", l, ".bias"), {spec.dims[l + 1]},
                           {}, {}, "normal", 0.1f));
  }
  return p;
}

std::string boundary(int stage) { return absl::StrCat("h", stage); }

// Dropout of layer l's activations: a `shape` box at `offset` of a batch
// whose row dim is placed in the global batch by the kernel context
// (batch_dim 0), so a microbatch draws the serial mask.
void setDropout(plan::Instr &i, const ChainSpec &spec, int layer,
                const Shape &shape, const Shape &offset) {
  setFloat(i, "p", spec.dropout);
  setInt(i, "op_id", 100 + layer);
  setInts(i, "global_shape", shape);
  setInts(i, "offset", offset);
  setInt(i, "batch_dim", 0);
}

} // namespace

int chainStages(const ChainSpec &spec) { return int(spec.stageStart.size()); }

plan::Plan chainSerialPlan(const ChainSpec &spec) {
  PlanBuilder pb(0, 1);
  setModel(pb, spec);
  const int L = int(layers(spec));
  const int64_t B = spec.batch;
  LayerParams p = addParams(pb, spec, 0, L);
  // xs[l]: the input of layer l (xs[L]: the logits); ys[l]: layer l's tanh
  // output before dropout.
  auto forward = [&](const std::string &prog) {
    std::vector<int> xs = {pb.input("attention_mask", {B, spec.dims[0]},
                                    plan::F32)},
                     ys;
    pb.bindInput(prog, "attention_mask", xs[0]);
    for (int l = 0; l < L; ++l) {
      const Shape shape = {B, spec.dims[l + 1]};
      const int z = pb.arena(absl::StrCat(prog, ".z", l), shape);
      pb.add(prog, "linear", {xs.back(), p.w[l], p.b[l]}, {z});
      if (l + 1 < L) {
        ys.push_back(pb.arena(absl::StrCat(prog, ".y", l), shape));
        pb.add(prog, "tanh", {z}, {ys.back()});
        xs.push_back(pb.arena(absl::StrCat(prog, ".d", l), shape));
        setDropout(pb.add(prog, "dropout", {ys.back()}, {xs.back()}), spec, l,
                   shape, {0, 0});
      } else {
        xs.push_back(z); // logits
      }
    }
    const int labels = pb.input("labels", {B}, plan::I32);
    pb.bindInput(prog, "labels", labels);
    const int loss = pb.arena(prog + ".loss", {1});
    setFloat(pb.add(prog, "cross_entropy", {xs.back(), labels}, {loss}),
             "denominator", double(B));
    pb.bindOutput(prog, "loss", loss);
    return std::tuple{xs, ys, labels};
  };
  auto [xs, ys, labels] = forward("train_step");
  const int dloss = pb.arena("dloss", {1});
  setFloat(pb.add("train_step", "fill", {}, {dloss}), "value", 1.0);
  int dz = pb.arena("dlogits", {B, spec.dims[L]});
  setFloat(pb.add("train_step", "cross_entropy_grad",
                  {xs.back(), labels, dloss}, {dz}),
           "denominator", double(B));
  for (int l = L - 1; l >= 0; --l) {
    const int dw =
        pb.arena(absl::StrCat("dw", l), {spec.dims[l + 1], spec.dims[l]});
    pb.add("train_step", "linear_weight_grad", {dz, xs[l]}, {dw});
    const int db = pb.arena(absl::StrCat("db", l), {spec.dims[l + 1]});
    pb.add("train_step", "bias_grad", {dz}, {db});
    if (l > 0) {
      const Shape shape = {B, spec.dims[l]};
      const int dx = pb.arena(absl::StrCat("dx", l), shape);
      setInt(pb.add("train_step", "linear", {dz, p.w[l]}, {dx}), "transpose_w",
             0);
      const int dy = pb.arena(absl::StrCat("dy", l - 1), shape);
      setDropout(pb.add("train_step", "dropout", {dx}, {dy}), spec, l - 1,
                 shape, {0, 0});
      const int dzPrev = pb.arena(absl::StrCat("dz", l - 1), shape);
      pb.add("train_step", "tanh_grad", {ys[l - 1], dy}, {dzPrev});
      dz = dzPrev;
    }
    // After the gradient propagated through the old weight.
    setFloat(pb.add("train_step", "sgd_update", {p.w[l], dw}, {}), "lr",
             spec.lr);
    setFloat(pb.add("train_step", "sgd_update", {p.b[l], db}, {}), "lr",
             spec.lr);
  }
  auto [exs, eys, elabels] = forward("eval_step");
  pb.bindOutput("eval_step", "logits", exs.back());
  return pb.finish();
}

plan::Plan chainStagePlan(const ChainSpec &spec, int stage, int groupRank) {
  const int stages = chainStages(spec), G = spec.groupSize;
  const int first = spec.stageStart[stage];
  const int end =
      stage + 1 < stages ? spec.stageStart[stage + 1] : int(layers(spec));
  const bool firstStage = stage == 0, lastStage = stage + 1 == stages;
  const int L = int(layers(spec));
  const int64_t B = spec.batch;
  PlanBuilder pb(groupRank, G);
  setModel(pb, spec);
  plan::Pipeline &pp = *pb.plan().mutable_pipeline();
  pp.set_stage(stage);
  pp.set_num_stages(stages);
  pp.set_group_size(G);
  pp.set_schedule(spec.schedule);
  for (int64_t n : spec.microbatches)
    pp.add_microbatch_sizes(n);
  const int m = int(spec.microbatches.size());
  pp.set_slots(spec.slots > 0
                   ? spec.slots
                   : plan::stashSlots(spec.schedule, stage, stages, m));
  pp.set_first_layer(first);
  pp.set_end_layer(end);
  pp.set_group_mode(G > 1 ? "dp" : "serial");
  if (!firstStage)
    pp.add_in_names("pp.in." + boundary(stage));
  if (!lastStage)
    pp.add_out_names("pp.out." + boundary(stage + 1));

  LayerParams p = addParams(pb, spec, first, end);
  std::vector<int> accW, accB;
  for (int l = first; l < end; ++l) {
    accW.push_back(pb.optState(absl::StrCat("l", l, ".weight.acc"),
                               p.wIndex[l - first], 2));
    accB.push_back(
        pb.optState(absl::StrCat("l", l, ".bias.acc"), p.bIndex[l - first], 2));
  }
  // Partial sums over this rank's rows become the group's sum.
  auto reduce = [&](const std::string &prog, int partial, const Shape &shape) {
    if (G == 1)
      return partial;
    const int full =
        pb.arena(pb.plan().buffers(partial).name() + ".sum", shape);
    pb.add(prog, "all_reduce", {partial}, {full});
    return full;
  };
  int64_t slotBytes = 0;
  for (int64_t n :
       std::set<int64_t>(spec.microbatches.begin(), spec.microbatches.end())) {
    const int64_t rows = n / G, r0 = groupRank * rows;
    int64_t stashAt = 0; // every microbatch size lays its stash out from 0
    auto stash = [&](int id) {
      pb.setStash(id, stashAt);
      int64_t bytes = 4;
      for (int64_t d : pb.plan().buffers(id).shape())
        bytes *= d;
      stashAt += (bytes + 63) / 64 * 64;
    };
    auto rowsOf = [&](int id, int64_t width) {
      pb.setGlobal(id, {n, width}, {r0, 0});
    };
    // The forward of layers [first, end). xs[i]: the input of layer
    // first+i (xs.back(): the stage's output, or the logits); ys[i]: its tanh
    // output before dropout. `keep`: what the backward reads is stashed.
    auto forward = [&](const std::string &prog, bool keep) {
      std::vector<int> xs, ys;
      const int64_t width = spec.dims[first];
      const std::string in =
          firstStage ? "attention_mask" : "pp.in." + boundary(stage);
      xs.push_back(pb.input(in, {rows, width}, plan::F32, {n, width}, {r0, 0}));
      pb.bindInput(prog, in, xs[0]);
      if (keep)
        stash(xs[0]);
      for (int l = first; l < end; ++l) {
        const Shape shape = {rows, spec.dims[l + 1]};
        const int z = pb.arena(absl::StrCat(prog, ".z", l), shape);
        pb.add(prog, "linear", {xs.back(), p.w[l - first], p.b[l - first]},
               {z});
        if (l + 1 < L) {
          ys.push_back(pb.arena(absl::StrCat(prog, ".y", l), shape));
          pb.add(prog, "tanh", {z}, {ys.back()});
          xs.push_back(pb.arena(absl::StrCat(prog, ".d", l), shape));
          setDropout(pb.add(prog, "dropout", {ys.back()}, {xs.back()}), spec, l,
                     {n, spec.dims[l + 1]}, {r0, 0});
          if (keep)
            stash(ys.back());
        } else {
          xs.push_back(z);
        }
        if (keep)
          stash(xs.back());
      }
      int labels = -1;
      if (lastStage) {
        labels = pb.input("labels", {rows}, plan::I32, {n}, {r0});
        pb.bindInput(prog, "labels", labels);
        if (keep)
          stash(labels);
        const int part = pb.arena(prog + ".loss.part", {1});
        setFloat(pb.add(prog, "cross_entropy", {xs.back(), labels}, {part}),
                 "denominator", double(n)); // the microbatch mean
        pb.bindOutput(prog, "loss", reduce(prog, part, {1}));
      } else {
        rowsOf(xs.back(), spec.dims[end]);
        pb.bindOutput(prog, "pp.out." + boundary(stage + 1), xs.back());
      }
      return std::tuple{xs, ys, labels};
    };
    const std::string fwd = absl::StrCat("train_fwd.b", n),
                      bwd = absl::StrCat("train_bwd.b", n),
                      eval = absl::StrCat("eval_step.b", n);
    auto [xs, ys, labels] = forward(fwd, true);
    // The gradient of the output of hidden layer l (after its dropout):
    // back through dropout and tanh.
    auto hiddenGrad = [&](int l, int gd) {
      const Shape shape = {rows, spec.dims[l + 1]};
      const int dy = pb.arena(absl::StrCat(bwd, ".dy", l), shape);
      setDropout(pb.add(bwd, "dropout", {gd}, {dy}), spec, l,
                 {n, spec.dims[l + 1]}, {r0, 0});
      const int dz = pb.arena(absl::StrCat(bwd, ".dz", l), shape);
      pb.add(bwd, "tanh_grad", {ys[l - first], dy}, {dz});
      return dz;
    };
    int dz;
    if (lastStage) {
      const int dloss = pb.arena(bwd + ".dloss", {1});
      setFloat(pb.add(bwd, "fill", {}, {dloss}), "value", 1.0);
      dz = pb.arena(bwd + ".dlogits", {rows, spec.dims[end]});
      // d(Σ n_i/B · loss_i)/dlogits: the serial gradient, summed over the
      // microbatches.
      setFloat(
          pb.add(bwd, "cross_entropy_grad", {xs.back(), labels, dloss}, {dz}),
          "denominator", double(B));
    } else {
      const std::string name = "pp.grad." + boundary(stage + 1);
      const int g = pb.input(name, {rows, spec.dims[end]}, plan::F32,
                             {n, spec.dims[end]}, {r0, 0});
      pb.bindInput(bwd, name, g);
      dz = hiddenGrad(end - 1, g);
    }
    for (int l = end - 1; l >= first; --l) {
      const int i = l - first;
      const int dwPart = pb.arena(absl::StrCat(bwd, ".dw", l),
                                  {spec.dims[l + 1], spec.dims[l]});
      pb.add(bwd, "linear_weight_grad", {dz, xs[i]}, {dwPart});
      const int dbPart =
          pb.arena(absl::StrCat(bwd, ".db", l), {spec.dims[l + 1]});
      pb.add(bwd, "bias_grad", {dz}, {dbPart});
      pb.add(bwd, "add",
             {accW[i], reduce(bwd, dwPart, {spec.dims[l + 1], spec.dims[l]})},
             {accW[i]});
      pb.add(bwd, "add", {accB[i], reduce(bwd, dbPart, {spec.dims[l + 1]})},
             {accB[i]});
      if (l == first && firstStage)
        break;
      const int dx =
          pb.arena(absl::StrCat(bwd, ".dx", l), {rows, spec.dims[l]});
      setInt(pb.add(bwd, "linear", {dz, p.w[i]}, {dx}), "transpose_w", 0);
      if (l == first) {
        rowsOf(dx, spec.dims[l]);
        pb.bindOutput(bwd, "pp.dgrad." + boundary(stage), dx);
      } else {
        dz = hiddenGrad(l - 1, dx);
      }
    }
    auto [exs, eys, elabels] = forward(eval, false);
    if (lastStage) {
      rowsOf(exs.back(), spec.dims[end]);
      pb.bindOutput(eval, "logits", exs.back());
    }
    slotBytes = std::max(slotBytes, stashAt);
  }
  for (int l = first; l < end; ++l) {
    const int i = l - first;
    for (auto [param, acc] :
         {std::pair{p.w[i], accW[i]}, std::pair{p.b[i], accB[i]}}) {
      setFloat(pb.add("update", "sgd_update", {param, acc}, {}), "lr", spec.lr);
      setFloat(pb.add("update", "fill", {}, {acc}), "value", 0.0);
    }
  }
  pp.set_stash_slot_bytes(slotBytes);
  return pb.finish();
}

bool writeChainPlans(const std::string &dir, const ChainSpec &spec) {
  std::filesystem::create_directories(dir);
  for (int s = 0; s < chainStages(spec); ++s)
    for (int r = 0; r < spec.groupSize; ++r) {
      std::ofstream out(
          absl::StrCat(dir, "/rank", s * spec.groupSize + r, ".plan.pb"),
          std::ios::binary);
      if (!chainStagePlan(spec, s, r).SerializeToOstream(&out))
        return false;
    }
  return true;
}

bool writeChainSerialPlan(const std::string &dir, const ChainSpec &spec) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir + "/rank0.plan.pb", std::ios::binary);
  return chainSerialPlan(spec).SerializeToOstream(&out);
}

} // namespace galaxy::rt::testing
