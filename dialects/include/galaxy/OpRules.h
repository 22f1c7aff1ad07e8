//===- OpRules.h - types the op interfaces speak in -------------*- C++ -*-===//
//
// The partition, cost and rank-lowering interfaces (GalaxyInterfaces.td) and
// the traits their defaults read. Included before the generated op classes.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "galaxy/Layout.h"
#include "mlir/IR/OpDefinition.h"
#include "llvm/ADT/SmallVector.h"

namespace galaxy {

// What one op costs on one rank (DeepSpeed flops-profiler conventions applied
// to local shapes).
struct OpCost {
  int64_t macs = 0, flops = 0;
  int64_t optFlops = 0;  // optimizer updates only
  int64_t commBytes = 0; // collectives: bytes this rank sends or receives
  int64_t memBytes = 0;  // bytes of the local operands read + results written
  bool known = true;     // false: not a galaxy op (counted as 0)
};

// What the lowering asks an op for one rank (RankLoweringOpInterface).
struct RankLowering {
  using Attr = std::variant<int64_t, double, std::string, std::vector<int64_t>>;
  std::string kernel;                  // preset to the op's kernel
  std::map<std::string, Attr> attrs;   // set or override kernel attributes
  llvm::SmallVector<bool> keepOperand; // preset to all true
  bool pipeline = false; // the program runs one microbatch of a global batch
};

// What the partition pass offers an op's partition rule.
class PartitionContext {
public:
  virtual ~PartitionContext() = default;
  // The layout `op`'s region method prefers for `v`, from v's named dims.
  virtual Layout preferred(mlir::Value v, mlir::Operation *op) = 0;
  // `v` in layout `to` for `user`: the redistribution (a collective, a local
  // slice or nothing) is inserted before `user`, once per (v, to).
  virtual mlir::Value convert(mlir::Value v, const Layout &to,
                              mlir::Operation *user) = 0;
  // The reduced copy of partial `v` another consumer already made, or null.
  virtual mlir::Value reducedCopy(mlir::Value v) = 0;
  // Pipeline gradient accumulators: the layout each parameter's holds.
  virtual void setAccumulatorLayout(llvm::StringRef param, const Layout &l) = 0;
  virtual std::optional<Layout> accumulatorLayout(llvm::StringRef param) = 0;
};

// PartitionOpInterface's default rule (GalaxyPartitionRules.cpp).
void partitionByDims(mlir::Operation *op, PartitionContext &ctx);

// This rank's extent of `v` (from its layout), where its slice starts, and its
// element count.
std::vector<int64_t> localShape(mlir::Value v, int rank);
std::vector<int64_t> localOffset(mlir::Value v, int rank);
int64_t localNumel(mlir::Value v, int rank);
// Bytes of the local operands and results (every element is 4 bytes).
int64_t localBytes(mlir::Operation *op, int rank);

template <typename ConcreteType>
class LinearInPartials
    : public mlir::OpTrait::TraitBase<ConcreteType, LinearInPartials> {};
template <typename ConcreteType>
class NoFlops : public mlir::OpTrait::TraitBase<ConcreteType, NoFlops> {};
template <int N> struct FlopsPerElement {
  template <typename ConcreteType>
  class Impl : public mlir::OpTrait::TraitBase<ConcreteType, Impl> {
  public:
    static constexpr int64_t kFlopsPerElement = N;
  };
};

// CostOpInterface's default, from the op's cost trait. An op with neither a
// trait nor its own `cost` does not compile: every op states its cost.
template <typename Op> OpCost traitCost(Op op, int rank) {
  OpCost c;
  c.memBytes = localBytes(op, rank);
  if constexpr (requires { Op::kFlopsPerElement; }) {
    // Operand 0 is the main input (x, dy, logits), shaped like the output but
    // for reductions (bias_grad reads dy, not db).
    c.flops = Op::kFlopsPerElement * localNumel(op->getOperand(0), rank);
  } else {
    static_assert(Op::template hasTrait<NoFlops>(),
                  "declare the op's cost: Galaxy_FlopsPerElement<n>, "
                  "Galaxy_NoFlops or its own CostOpInterface::cost");
  }
  return c;
}
template <typename Op> std::string traitCostRule() {
  if constexpr (requires { Op::kFlopsPerElement; })
    return Op::kFlopsPerElement == 1
               ? std::string("1 FLOP per element")
               : std::to_string(Op::kFlopsPerElement) + " FLOPs per element";
  else
    return "0 FLOPs";
}

} // namespace galaxy
