//===- Layout.cpp - the Layout struct: plan text form, per-rank shapes ----===//
// (The IR side, #galaxy.layout and layoutOf/setLayout, is in GalaxyAttrs.cpp.)
#include "galaxy/Layout.h"

#include "llvm/ADT/SmallVector.h"

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

} // namespace galaxy
