#include "tools/galaxyc/summary.h"

#include <limits>
#include <map>
#include <optional>

#include "absl/strings/str_format.h"
#include "galaxy/GalaxyDialect.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "runtime/plan/size_limits.h"

namespace galaxy {

namespace {
std::string mib(int64_t bytes) {
  return absl::StrFormat("%.2f MiB", bytes / 1048576.0);
}

// Sums and products of sizes, saturating instead of wrapping: the plans
// summarized here passed plan::checkPlanSizes, so saturation is a
// safeguard, never a figure a user sees.
int64_t sat(std::optional<int64_t> v) {
  return v ? *v : std::numeric_limits<int64_t>::max();
}
int64_t add(int64_t a, int64_t b) { return sat(plan::checkedAdd(a, b)); }
template <typename Range> int64_t elements(const Range &shape) {
  return sat(plan::checkedNumel(shape));
}
} // namespace

std::string summarizeModule(mlir::ModuleOp module) {
  std::string out;
  for (auto fn : module.getOps<mlir::func::FuncOp>()) {
    std::map<std::string, int> blocks, ops;
    std::map<std::string, int64_t> params; // name -> elements (dedup by name)
    int64_t trainable = 0, backward = 0;
    fn.walk([&](mlir::Operation *op) {
      if (auto b = llvm::dyn_cast<BlockOp>(op)) {
        ++blocks[b.getKind().str()];
      } else if (auto p = llvm::dyn_cast<ParamOp>(op)) {
        const int64_t n = elements(p.getType().getShape());
        if (params.emplace(p.getName().str(), n).second && p.getTrainable())
          trainable = add(trainable, n);
      } else if (op->getDialect() &&
                 op->getDialect()->getNamespace() == "galaxy" &&
                 !llvm::isa<YieldOp>(op)) {
        ++ops[op->getName().getStringRef().drop_front(7).str()];
        if (op->hasAttr(kBackwardAttr))
          ++backward;
      }
    });
    int64_t total = 0;
    for (auto &[n, e] : params)
      total = add(total, e);
    out +=
        absl::StrFormat("@%s: %d parameters (%d tensors), %d trainable\n",
                        fn.getSymName().str(), total, params.size(), trainable);
    if (!blocks.empty()) {
      out += "  blocks:";
      for (auto &[k, n] : blocks)
        out += absl::StrFormat(" %s=%d", k, n);
      out += "\n";
    }
    int total_ops = 0;
    for (auto &[k, n] : ops)
      total_ops += n;
    out += absl::StrFormat("  ops: %d (%d backward):", total_ops, backward);
    for (auto &[k, n] : ops)
      out += absl::StrFormat(" %s=%d", k, n);
    out += "\n";
  }
  return out;
}

std::string summarizePlan(const plan::Plan &p) {
  // The task's head: a causal LM predicts the vocabulary; an empty task is
  // a classifier (plans before tasks existed).
  const std::string head =
      p.model().task() == "causal_lm"
          ? absl::StrFormat("causal LM over %d tokens", p.model().vocab_size())
          : absl::StrFormat("%d classes", p.model().num_classes());
  std::string out = absl::StrFormat(
      "plan v%d rank %d/%d: %s, batch %d, seq %d, %s, optimizer %s (lr "
      "%g), matmuls %s\n",
      p.format_version(), p.rank(), p.world(), p.model().model(),
      p.model().batch_size(), p.model().seq_len(), head, p.optimizer().kind(),
      p.optimizer().learning_rate(),
      p.matmul_dtype() == plan::MATMUL_BF16 ? "bf16 (fp32 accumulation)"
                                            : "fp32");
  int64_t paramElems = 0, trainable = 0;
  for (const auto &pp : p.params()) {
    const int64_t n = elements(pp.slice_shape());
    paramElems = add(paramElems, n);
    if (pp.trainable())
      trainable = add(trainable, n);
  }
  out += absl::StrFormat(
      "  parameters: %d tensors, %d elements (%s), %d trainable\n",
      p.params_size(), paramElems,
      mib(sat(plan::checkedMul(paramElems, plan::kElementBytes))), trainable);
  for (const auto &prog : p.programs()) {
    out += absl::StrFormat("  %-10s %5d instructions, arena %s\n", prog.name(),
                           prog.instrs_size(), mib(prog.arena_bytes()));
    // Bytes each collective moves per step, from this rank's point of view
    // (the full local tensor it contributes or receives).
    std::map<std::string, std::pair<int, int64_t>> comm;
    for (const auto &in : prog.instrs()) {
      const std::string &k = in.kernel();
      if (k != "all_reduce" && k != "all_gather" && k != "reduce_scatter")
        continue;
      const auto &buf =
          p.buffers(k == "all_gather" ? in.outputs(0) : in.inputs(0));
      int64_t n =
          sat(plan::checkedMul(elements(buf.shape()), plan::kElementBytes));
      if (in.has_tile() && buf.shape_size() > 0 && buf.shape(0) > 0)
        n = n / buf.shape(0) * in.tile().count(); // one batch tile's rows
      auto &[count, bytes] = comm[k + (in.backward() ? " (bwd)" : " (fwd)")];
      ++count;
      bytes = add(bytes, n);
    }
    for (const auto &[k, cb] : comm)
      out += absl::StrFormat("    %-22s x%-4d %s per step\n", k, cb.first,
                             mib(cb.second));
  }
  out += absl::StrFormat(
      "  activation arena %s with liveness reuse vs %s unshared (%.1fx less)\n",
      mib(p.arena_bytes()), mib(p.unshared_bytes()),
      p.arena_bytes() ? double(p.unshared_bytes()) / p.arena_bytes() : 0.0);
  return out;
}

} // namespace galaxy
