//===- GalaxyDialect.td - the galaxy dialect -------------------*- tablegen -*-===//
//
// The galaxy dialect: transformer dataflow graphs on global (serial) shapes,
// later annotated with blocks, methods and layouts and lowered to per-rank plans.
//
//===----------------------------------------------------------------------===//
#ifndef GALAXY_DIALECT_TD
#define GALAXY_DIALECT_TD

include "mlir/IR/OpBase.td"

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

class Galaxy_Op<string mnemonic, list<Trait> traits = []>
    : Op<Galaxy_Dialect, mnemonic, traits>;

#endif // GALAXY_DIALECT_TD
