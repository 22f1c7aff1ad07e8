//===- GalaxyDialect.td - the galaxy dialect -------------------*- tablegen -*-===//
//
// The galaxy dialect: transformer dataflow graphs on global (serial) shapes,
// later annotated with blocks, methods and layouts and lowered to per-rank plans.
//
//===----------------------------------------------------------------------===//
#ifndef GALAXY_DIALECT_TD
#define GALAXY_DIALECT_TD

include "mlir/IR/OpBase.td"
include "galaxy/GalaxyInterfaces.td"
include "galaxy/GalaxyKernel.td"

def Galaxy_Dialect : Dialect {
  let name = "galaxy";
  let cppNamespace = "::galaxy";
  let summary = "Transformer dataflow graphs for ahead-of-time partitioning";
  let description = [{
    Ops work on ranked f32 / i32 tensors with global shapes. A `galaxy.block`
    marks a model region (embedding, att, con, mlp, pooler, head) of a layer;
    the annotate pass flattens blocks into `galaxy.block` / `galaxy.layer`
    attributes on each op so that autodiff and partitioning see one list.
  }];
  // #galaxy.layout / #galaxy.dims (GalaxyAttrs.td), checked where they are
  // attached: on op results and function arguments.
  let useDefaultAttributePrinterParser = 1;
  let hasOperationAttrVerify = 1;
  let hasRegionArgAttrVerify = 1;
  let extraClassDeclaration = [{
    void registerAttributes();
  }];
}

// Partial (P) operands may flow through the op unreduced: it is linear in
// each of them (add, scale, dropout, head reshapes).
def Galaxy_LinearInPartials : NativeOpTrait<"LinearInPartials"> {
  let cppNamespace = "::galaxy";
}
// Cost traits (CostOpInterface's default): n FLOPs per element of operand 0,
// or none.
class Galaxy_FlopsPerElement<int n>
    : ParamNativeOpTrait<"FlopsPerElement", !cast<string>(n)> {
  let cppNamespace = "::galaxy";
}
def Galaxy_NoFlops : NativeOpTrait<"NoFlops"> { let cppNamespace = "::galaxy"; }

// Every op answers the partition, cost and rank-lowering questions; the
// interfaces' defaults are derived from its named dims and traits, and an op
// overrides a method by listing it in DeclareOpInterfaceMethods.
class Galaxy_Op<string mnemonic, list<Trait> traits = []>
    : Op<Galaxy_Dialect, mnemonic, !listconcat(traits,
        [PartitionOpInterface, CostOpInterface, RankLoweringOpInterface])> {
  // The plan kernel this op lowers to (GalaxyKernel.td): its mnemonic unless
  // said otherwise; "" for ops that lower to no instruction. A kernel named
  // by an op of another mnemonic is defined by that op (or Galaxy_Kernel).
  string kernel = mnemonic;
  // Attributes the lowering adds to the op's own (rank offsets, fusion).
  list<KernelAttr> kernelAttrs = [];
  // Inputs the lowering appends after the op's operands.
  list<KernelOperand> kernelExtraInputs = [];
  // 1: the executor runs the kernel (data movement); 0: the backend does.
  bit kernelRunByExecutor = 0;
}

#endif // GALAXY_DIALECT_TD
