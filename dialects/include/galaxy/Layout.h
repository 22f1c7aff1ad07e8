//===- Layout.h - how a value is spread over the ranks ----------*- C++ -*-===//
//
// R: every rank holds the whole value. S(dim; n0, n1, ...): rank r holds the
// slice of `dim` of length n_r (uneven sizes allowed, in rank order).
// P: every rank holds a full-shape partial value; the true value is the sum.
//
// In IR a layout is a #galaxy.layout attribute (GalaxyAttrs.td:
// LayoutAttr::get(ctx, layout), LayoutAttr::getLayout()); the text form here
// is the plan's (Buffer.layout), read by the runtime, which has no MLIR.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mlir/IR/Value.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

namespace galaxy {

struct Layout {
  enum Kind { R, S, P } kind = R;
  int64_t dim = -1;
  std::vector<int64_t> sizes; // S only

  static Layout replicated() { return {}; }
  static Layout partial() { return {P, -1, {}}; }
  static Layout sharded(int64_t dim, llvm::ArrayRef<int64_t> sizes) {
    return {S, dim, std::vector<int64_t>(sizes.begin(), sizes.end())};
  }
  bool operator==(const Layout &o) const {
    return kind == o.kind && (kind != S || (dim == o.dim && sizes == o.sizes));
  }
  bool operator!=(const Layout &o) const { return !(*this == o); }

  // The plan's text form: "R", "P", "S(1;16,16)".
  std::string str() const;
  static std::optional<Layout> parse(llvm::StringRef text);

  // This rank's extent of `shape` and the offset of its slice, per axis.
  std::vector<int64_t> localShape(llvm::ArrayRef<int64_t> shape,
                                  int rank) const;
  std::vector<int64_t> localOffset(llvm::ArrayRef<int64_t> shape,
                                   int rank) const;
};

// The layout partitioning recorded for `v` in its galaxy.layout entry (R when
// none was recorded; a malformed entry is a verifier error).
Layout layoutOf(mlir::Value v);
// Records `l` as v's galaxy.layout entry (other results of the op: R unless
// already set).
void setLayout(mlir::Value v, const Layout &l);

} // namespace galaxy
