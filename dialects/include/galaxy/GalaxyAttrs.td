//===- GalaxyAttrs.td - layout and dims attributes -------------*- tablegen -*-===//
//
// The per-value annotations partitioning reads and writes. Both live in
// discardable array attributes, one entry per op result (`galaxy.layout`,
// `galaxy.dims` on the defining op) or one entry in a function argument's
// attributes; GalaxyDialect::verify{Operation,RegionArg}Attribute checks them
// against the value's type.
//
//===----------------------------------------------------------------------===//
#ifndef GALAXY_ATTRS_TD
#define GALAXY_ATTRS_TD

include "galaxy/GalaxyDialect.td"
include "mlir/IR/AttrTypeBase.td"

class Galaxy_Attr<string name, string attrMnemonic>
    : AttrDef<Galaxy_Dialect, name> {
  let mnemonic = attrMnemonic;
}

def Galaxy_LayoutAttr : Galaxy_Attr<"Layout", "layout"> {
  let summary = "How a value is spread over the ranks";
  let description = [{
    `#galaxy.layout<R>`: every rank holds the whole value.
    `#galaxy.layout<P>`: every rank holds a full-shape partial value; the true
    value is the sum over ranks.
    `#galaxy.layout<S(dim, [n0, n1, ...])>`: rank r holds the slice of axis
    `dim` of length n_r (uneven sizes allowed, in rank order).
    The C++ view is `galaxy::Layout` (Layout.h); the plan's text form of the
    same layout ("S(1;16,16)") is `Layout::str()`.
  }];
  let parameters = (ins "::galaxy::Layout::Kind":$kind, "int64_t":$dim,
                        ArrayRefParameter<"int64_t">:$sizes);
  let builders = [
    AttrBuilder<(ins "const ::galaxy::Layout &":$layout), [{
      return $_get($_ctxt, layout.kind,
                   layout.kind == ::galaxy::Layout::S ? layout.dim : -1,
                   layout.kind == ::galaxy::Layout::S
                       ? ::llvm::ArrayRef<int64_t>(layout.sizes)
                       : ::llvm::ArrayRef<int64_t>());
    }]>
  ];
  let extraClassDeclaration = [{
    ::galaxy::Layout getLayout() const;
  }];
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

def Galaxy_DimsAttr : Galaxy_Attr<"Dims", "dims"> {
  let summary = "The model-dimension names of a value's axes";
  let description = [{
    `#galaxy.dims<B, S, H>`: one name per axis (B batch, S query positions,
    H hidden, ...). `#galaxy.dims<>` names nothing: a scalar, or a value whose
    axes are not named (never sharded). Partitioning shards axes by these
    names. A name that is not a bare identifier is written quoted.
    Stored as the names joined by ',' ("B,S,H"), the form `galaxy::dimsOf`
    hands out.
  }];
  let parameters = (ins StringRefParameter<"names joined by ','">:$joined);
  let extraClassDeclaration = [{
    ::llvm::SmallVector<::llvm::StringRef> getNames() const;
  }];
  let hasCustomAssemblyFormat = 1;
  let genVerifyDecl = 1;
}

#endif // GALAXY_ATTRS_TD
