#include "galaxy/Layout.h"

#include "galaxy/GalaxyDialect.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"

namespace galaxy {

std::string Layout::str() const {
  if (kind == R)
    return "R";
  if (kind == P)
    return "P";
  std::string s = "S(" + std::to_string(dim) + ";";
  for (size_t i = 0; i < sizes.size(); ++i)
    s += (i ? "," : "") + std::to_string(sizes[i]);
  return s + ")";
}

std::optional<Layout> Layout::parse(llvm::StringRef t) {
  if (t == "R" || t.empty())
    return replicated();
  if (t == "P")
    return partial();
  if (!t.consume_front("S(") || !t.consume_back(")"))
    return std::nullopt;
  auto [d, rest] = t.split(';');
  Layout l{S, 0, {}};
  if (d.getAsInteger(10, l.dim))
    return std::nullopt;
  llvm::SmallVector<llvm::StringRef> parts;
  rest.split(parts, ',');
  for (llvm::StringRef p : parts) {
    int64_t n;
    if (p.getAsInteger(10, n))
      return std::nullopt;
    l.sizes.push_back(n);
  }
  return l;
}

std::vector<int64_t> Layout::localShape(llvm::ArrayRef<int64_t> shape,
                                        int rank) const {
  std::vector<int64_t> s(shape.begin(), shape.end());
  if (kind == S)
    s[dim] = sizes[rank];
  return s;
}

std::vector<int64_t> Layout::localOffset(llvm::ArrayRef<int64_t> shape,
                                         int rank) const {
  std::vector<int64_t> o(shape.size(), 0);
  if (kind == S)
    for (int r = 0; r < rank; ++r)
      o[dim] += sizes[r];
  return o;
}

Layout layoutOf(mlir::Value v) {
  mlir::ArrayAttr a;
  unsigned idx = 0;
  if (auto arg = llvm::dyn_cast<mlir::BlockArgument>(v)) {
    if (auto fn = llvm::dyn_cast<mlir::FunctionOpInterface>(
            arg.getOwner()->getParentOp()))
      a = fn.getArgAttrOfType<mlir::ArrayAttr>(arg.getArgNumber(), kLayoutAttr);
  } else {
    auto r = llvm::cast<mlir::OpResult>(v);
    a = r.getOwner()->getAttrOfType<mlir::ArrayAttr>(kLayoutAttr);
    idx = r.getResultNumber();
  }
  if (!a || idx >= a.size())
    return Layout::replicated();
  return Layout::parse(llvm::cast<mlir::StringAttr>(a[idx]).getValue())
      .value_or(Layout::replicated());
}

void setLayout(mlir::Value v, const Layout &l) {
  mlir::Builder b(v.getContext());
  if (auto arg = llvm::dyn_cast<mlir::BlockArgument>(v)) {
    if (auto fn = llvm::dyn_cast<mlir::FunctionOpInterface>(
            arg.getOwner()->getParentOp()))
      fn.setArgAttr(arg.getArgNumber(), kLayoutAttr,
                    b.getStrArrayAttr({l.str()}));
    return;
  }
  auto r = llvm::cast<mlir::OpResult>(v);
  mlir::Operation *op = r.getOwner();
  llvm::SmallVector<mlir::Attribute> vals(op->getNumResults(),
                                          b.getStringAttr("R"));
  if (auto old = op->getAttrOfType<mlir::ArrayAttr>(kLayoutAttr))
    for (unsigned i = 0; i < std::min<size_t>(old.size(), vals.size()); ++i)
      vals[i] = old[i];
  vals[r.getResultNumber()] = b.getStringAttr(l.str());
  op->setAttr(kLayoutAttr, b.getArrayAttr(vals));
}

} // namespace galaxy
