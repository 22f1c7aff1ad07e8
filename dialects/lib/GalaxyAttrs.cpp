//===- GalaxyAttrs.cpp - #galaxy.layout, #galaxy.dims and their checks ----===//
//
// The attributes' syntax, where they are attached (one array entry per op
// result, one for a function argument), the accessors passes use, and the
// dialect hooks that check an attached entry against its value's type.
//
//===----------------------------------------------------------------------===//
#include "galaxy/GalaxyDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h" // the generated attribute printer uses it

using namespace mlir;
using namespace galaxy;

#define GET_ATTRDEF_CLASSES
#include "galaxy/GalaxyAttrs.cpp.inc"

void GalaxyDialect::registerAttributes() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "galaxy/GalaxyAttrs.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// #galaxy.layout<R> | <P> | <S(dim, [n0, n1, ...])>
//===----------------------------------------------------------------------===//

Layout LayoutAttr::getLayout() const {
  if (getKind() == Layout::S)
    return Layout::sharded(getDim(), getSizes());
  return getKind() == Layout::P ? Layout::partial() : Layout::replicated();
}

LogicalResult LayoutAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                                 Layout::Kind kind, int64_t dim,
                                 ArrayRef<int64_t> sizes) {
  if (kind != Layout::S)
    return dim == -1 && sizes.empty()
               ? success()
               : emitError() << "R and P layouts take no dim or sizes";
  if (dim < 0)
    return emitError() << "S layout dim " << dim << " is negative";
  if (sizes.empty())
    return emitError() << "S layout needs one size per rank, got none";
  if (llvm::any_of(sizes, [](int64_t n) { return n < 0; }))
    return emitError() << "S layout sizes [" << sizes
                       << "] must be non-negative";
  return success();
}

Attribute LayoutAttr::parse(AsmParser &p, Type) {
  SMLoc loc = p.getCurrentLocation();
  StringRef kind;
  if (p.parseLess() || p.parseKeyword(&kind))
    return {};
  auto checked = [&](Layout::Kind k, int64_t dim, ArrayRef<int64_t> sizes) {
    return getChecked([&] { return p.emitError(loc); }, p.getContext(), k, dim,
                      sizes);
  };
  if (kind == "R" || kind == "P")
    return p.parseGreater()
               ? LayoutAttr()
               : checked(kind == "R" ? Layout::R : Layout::P, -1, {});
  if (kind != "S") {
    p.emitError(loc) << "expected R, P or S(dim, [sizes]), got '" << kind
                     << "'";
    return {};
  }
  int64_t dim;
  SmallVector<int64_t> sizes;
  if (p.parseLParen() || p.parseInteger(dim) || p.parseComma() ||
      p.parseCommaSeparatedList(
          AsmParser::Delimiter::Square,
          [&] { return p.parseInteger(sizes.emplace_back()); }) ||
      p.parseRParen() || p.parseGreater())
    return {};
  return checked(Layout::S, dim, sizes);
}

void LayoutAttr::print(AsmPrinter &p) const {
  if (getKind() != Layout::S) {
    p << (getKind() == Layout::R ? "<R>" : "<P>");
    return;
  }
  p << "<S(" << getDim() << ", [";
  llvm::interleaveComma(getSizes(), p);
  p << "])>";
}

//===----------------------------------------------------------------------===//
// #galaxy.dims<B, S, H>
//===----------------------------------------------------------------------===//

SmallVector<StringRef> DimsAttr::getNames() const {
  SmallVector<StringRef> names;
  if (!getJoined().empty())
    getJoined().split(names, ',');
  return names;
}

LogicalResult DimsAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                               StringRef joined) {
  if (joined.empty())
    return success();
  SmallVector<StringRef> names;
  joined.split(names, ',');
  for (StringRef n : names)
    if (n.empty() || n.trim() != n)
      return emitError() << "dims '" << joined
                         << "' has an empty or space-padded name";
  return success();
}

Attribute DimsAttr::parse(AsmParser &p, Type) {
  SMLoc loc = p.getCurrentLocation();
  SmallVector<std::string> names;
  if (p.parseCommaSeparatedList(AsmParser::Delimiter::LessGreater, [&] {
        return p.parseKeywordOrString(&names.emplace_back());
      }))
    return {};
  for (const std::string &n : names)
    if (n.find(',') != std::string::npos) {
      p.emitError(loc) << "dim name '" << n << "' contains ','";
      return {};
    }
  return getChecked([&] { return p.emitError(loc); }, p.getContext(),
                    llvm::join(names, ","));
}

void DimsAttr::print(AsmPrinter &p) const {
  p << "<";
  llvm::interleaveComma(getNames(), p,
                        [&](StringRef n) { p.printKeywordOrString(n); });
  p << ">";
}

//===----------------------------------------------------------------------===//
// Where the entries live, and the accessors
//===----------------------------------------------------------------------===//

// The entry of the per-value array attribute `name` for `v`: on its defining
// op (one entry per result) or in its function argument's attributes (one).
static Attribute perValue(Value v, StringRef name) {
  ArrayAttr a;
  unsigned idx = 0;
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    if (auto fn = dyn_cast<FunctionOpInterface>(arg.getOwner()->getParentOp()))
      a = fn.getArgAttrOfType<ArrayAttr>(arg.getArgNumber(), name);
  } else {
    auto r = cast<OpResult>(v);
    a = r.getOwner()->getAttrOfType<ArrayAttr>(name);
    idx = r.getResultNumber();
  }
  return a && idx < a.size() ? a[idx] : Attribute();
}

// Sets v's entry of `name` to `value`; the op's other results get `filler`
// unless they already have an entry.
static void setPerValue(Value v, StringRef name, Attribute value,
                        Attribute filler) {
  Builder b(v.getContext());
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    if (auto fn = dyn_cast<FunctionOpInterface>(arg.getOwner()->getParentOp()))
      fn.setArgAttr(arg.getArgNumber(), name, b.getArrayAttr({value}));
    return;
  }
  auto r = cast<OpResult>(v);
  Operation *op = r.getOwner();
  SmallVector<Attribute> vals(op->getNumResults(), filler);
  if (auto old = op->getAttrOfType<ArrayAttr>(name))
    for (unsigned i = 0; i < std::min<size_t>(old.size(), vals.size()); ++i)
      vals[i] = old[i];
  vals[r.getResultNumber()] = value;
  op->setAttr(name, b.getArrayAttr(vals));
}

Layout galaxy::layoutOf(Value v) {
  auto l = dyn_cast_or_null<LayoutAttr>(perValue(v, kLayoutAttr));
  return l ? l.getLayout() : Layout::replicated();
}

void galaxy::setLayout(Value v, const Layout &l) {
  MLIRContext *ctx = v.getContext();
  setPerValue(v, kLayoutAttr, LayoutAttr::get(ctx, l),
              LayoutAttr::get(ctx, Layout::replicated()));
}

StringRef galaxy::dimsOf(Value v) {
  auto d = dyn_cast_or_null<DimsAttr>(perValue(v, kDimsAttr));
  return d ? d.getJoined() : "";
}

SmallVector<StringRef> galaxy::dimNamesOf(Value v) {
  auto d = dyn_cast_or_null<DimsAttr>(perValue(v, kDimsAttr));
  return d ? d.getNames() : SmallVector<StringRef>();
}

void galaxy::setDims(Value v, StringRef names) {
  MLIRContext *ctx = v.getContext();
  setPerValue(v, kDimsAttr, DimsAttr::get(ctx, names), DimsAttr::get(ctx, ""));
}

ArrayAttr galaxy::argDimsAttr(MLIRContext *ctx, StringRef names) {
  return ArrayAttr::get(ctx, {DimsAttr::get(ctx, names)});
}

//===----------------------------------------------------------------------===//
// Verification of attached entries
//===----------------------------------------------------------------------===//

namespace {
// Checks one entry of `attrName` against the type of the value it describes.
// `where` names the value in diagnostics ("result 1", "argument 0").
LogicalResult verifyEntry(Operation *op, StringRef attrName, Attribute entry,
                          Type type, const Twine &where) {
  auto fail = [&]() {
    return op->emitOpError() << attrName << " of " << where << ": ";
  };
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (attrName == kDimsAttr) {
    auto dims = dyn_cast<DimsAttr>(entry);
    if (!dims)
      return fail() << "expected a #galaxy.dims, got " << entry;
    // No names at all means "not named" (hand-written IR, values whose
    // primal had none); names, when given, must cover every axis.
    size_t rank = tensor ? tensor.getRank() : 0;
    if (!dims.getJoined().empty() && dims.getNames().size() != rank)
      return fail() << entry << " names " << dims.getNames().size()
                    << " axes but the value has rank " << rank;
    return success();
  }
  auto layout = dyn_cast<LayoutAttr>(entry);
  if (!layout)
    return fail() << "expected a #galaxy.layout, got " << entry;
  if (layout.getKind() != Layout::S)
    return success();
  if (!tensor || layout.getDim() >= tensor.getRank())
    return fail() << entry << " shards dim " << layout.getDim()
                  << " of a value of type " << type;
  int64_t sum = 0;
  for (int64_t n : layout.getSizes())
    sum += n;
  int64_t extent = tensor.getDimSize(layout.getDim());
  if (sum != extent)
    return fail() << entry << " sizes sum to " << sum << " but dim "
                  << layout.getDim() << " of " << type << " has " << extent;
  auto module = op->getParentOfType<ModuleOp>();
  if (auto world = module ? module->getAttrOfType<IntegerAttr>(kWorldAttr)
                          : IntegerAttr())
    if (int64_t(layout.getSizes().size()) != world.getInt())
      return fail() << entry << " has " << layout.getSizes().size()
                    << " sizes but the module's galaxy.world is "
                    << world.getInt();
  return success();
}

// `attr` must be an array with `types.size()` entries, each valid for its
// type.
LogicalResult verifyArray(Operation *op, NamedAttribute attr, TypeRange types,
                          StringRef valueKind, unsigned firstIndex) {
  StringRef name = attr.getName().getValue();
  auto array = dyn_cast<ArrayAttr>(attr.getValue());
  if (!array || array.size() != types.size())
    return op->emitOpError()
           << name << " must be an array of " << types.size() << " entr"
           << (types.size() == 1 ? "y" : "ies") << " (one per " << valueKind
           << "), got " << attr.getValue();
  for (auto [i, entry, type] : llvm::enumerate(array, types))
    if (failed(verifyEntry(op, name, entry, type,
                           valueKind + Twine(" ") + Twine(firstIndex + i))))
      return failure();
  return success();
}
} // namespace

LogicalResult GalaxyDialect::verifyOperationAttribute(Operation *op,
                                                      NamedAttribute attr) {
  StringRef name = attr.getName().getValue();
  if (name == kLayoutAttr || name == kDimsAttr)
    return verifyArray(op, attr, op->getResultTypes(), "result", 0);
  if (name == kWorldAttr) {
    auto world = dyn_cast<IntegerAttr>(attr.getValue());
    if (!isa<ModuleOp>(op) || !world || world.getInt() < 1)
      return op->emitOpError()
             << name << " must be a positive integer on the module";
  }
  return success();
}

LogicalResult GalaxyDialect::verifyRegionArgAttribute(Operation *op,
                                                      unsigned regionIndex,
                                                      unsigned argIndex,
                                                      NamedAttribute attr) {
  StringRef name = attr.getName().getValue();
  if (name != kLayoutAttr && name != kDimsAttr)
    return success();
  Type type;
  if (auto fn = dyn_cast<FunctionOpInterface>(op))
    type = fn.getArgumentTypes()[argIndex];
  else
    type = op->getRegion(regionIndex).getArgument(argIndex).getType();
  return verifyArray(op, attr, ArrayRef<Type>(type), "argument", argIndex);
}
