//===- GalaxyInterfaces.td - what each op says about itself ----*- tablegen -*-===//
//
// DESIGN.md idea 5: an op states its gradient, its partition rule, its cost
// and its rank-dependent kernel attributes beside its ODS definition, so the
// passes, the lowering and the profiler need no per-op tables.
//
//===----------------------------------------------------------------------===//
#ifndef GALAXY_INTERFACES_TD
#define GALAXY_INTERFACES_TD

include "mlir/IR/OpBase.td"

def GradientOpInterface : OpInterface<"GradientOpInterface"> {
  let cppNamespace = "::galaxy";
  let description = [{
    The op's reverse-mode derivative rule. Given the gradient of every result
    (never null: autodiff materialises zeros), build ops computing the
    gradient of each operand for which `needGrad` is true; return a null
    Value for the others.
  }];
  let methods = [
    InterfaceMethod<"Builds the operand gradients.",
      "::llvm::SmallVector<::mlir::Value>", "buildGradients",
      (ins "::mlir::OpBuilder &":$b, "::mlir::ValueRange":$resultGrads,
           "::llvm::ArrayRef<bool>":$needGrad)>
  ];
}

def PartitionOpInterface : OpInterface<"PartitionOpInterface"> {
  let cppNamespace = "::galaxy";
  let description = [{
    How the op is partitioned (DESIGN.md idea 2). The default rule is derived
    from the named dims (`galaxy.dims`): every operand is converted to the
    layout its region's method prefers for its axis names; a result keeps a
    sharded axis it names, and is partial (P) when an operand's sharded axis
    is summed away. Ops with the `LinearInPartials` trait let partial operands
    flow through unreduced. An op overrides `operandLayout` to adjust one
    operand's layout, or `partition` for a rule of its own.
  }];
  let methods = [
    InterfaceMethod<[{
        The layout operand `index` must have, given the layout `preferred`
        its named dims ask for.
      }],
      "::galaxy::Layout", "operandLayout",
      (ins "unsigned":$index, "const ::galaxy::Layout &":$preferred), [{}],
      [{ return preferred; }]>,
    InterfaceMethod<[{
        Converts the operands into the layouts the op needs (through
        `ctx.convert`, which inserts the collectives) and records the layout of
        every result.
      }],
      "void", "partition", (ins "::galaxy::PartitionContext &":$ctx), [{}],
      [{ ::galaxy::partitionByDims($_op, ctx); }]>
  ];
}

def CostOpInterface : OpInterface<"CostOpInterface"> {
  let cppNamespace = "::galaxy";
  let description = [{
    What the op costs on one rank, from its local (per-rank) shapes: FLOPs
    under DeepSpeed's flops-profiler conventions, bytes read and written,
    bytes a collective moves. Ops declare it with a trait
    (`Galaxy_FlopsPerElement<n>`, `Galaxy_NoFlops`) or override `cost`; an op
    that does neither does not compile.
  }];
  let methods = [
    InterfaceMethod<"The op's cost on `rank`.",
      "::galaxy::OpCost", "cost", (ins "int":$rank), [{}],
      [{ return ::galaxy::traitCost<ConcreteOp>($_op, rank); }]>,
    StaticInterfaceMethod<"The counting rule in words, for reports.",
      "std::string", "costRule", (ins), [{}],
      [{ return ::galaxy::traitCostRule<ConcreteOp>(); }]>
  ];
}

def RankLoweringOpInterface : OpInterface<"RankLoweringOpInterface"> {
  let cppNamespace = "::galaxy";
  let description = [{
    The one hook through which the lowering asks an op for what depends on
    the rank that runs it: kernel attributes such as slice offsets (dropout's
    global element index, iota's and attention's sequence offsets), the
    kernel itself where the layout decides it (to_partial), and operands that
    only one rank applies (a partial linear's bias). The attributes it sets
    are declared in the op's kernel schema.
  }];
  let methods = [
    InterfaceMethod<"Adjusts `k` (kernel, attributes, operands) for `rank`.",
      "void", "lowerForRank",
      (ins "int":$rank, "::galaxy::RankLowering &":$k), [{}],
      [{ /* nothing depends on the rank */ }]>
  ];
}

#endif // GALAXY_INTERFACES_TD
