//===- galaxy-tblgen.cpp - the plan's kernel schema from ODS --------------===//
//
// A TableGen backend: reads the galaxy ops (GalaxyOps.td) and Galaxy_Kernel
// records (GalaxyKernel.td) and writes kernel_schema.inc, the table behind
// runtime/plan/kernel_schema.h: per kernel its name, who runs it, operands,
// results and typed attributes with their defaults. The runtime includes the
// table, never MLIR.
//
//   galaxy-tblgen -I <include dirs> GalaxyOps.td -o kernel_schema.inc
//
//===----------------------------------------------------------------------===//
#include <cctype>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mlir/TableGen/Attribute.h"
#include "mlir/TableGen/Operator.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TableGen/Error.h"
#include "llvm/TableGen/Main.h"
#include "llvm/TableGen/Record.h"
#include "llvm/TableGen/TableGenBackend.h"

using llvm::Record;
using llvm::RecordKeeper;
using llvm::StringRef;

namespace {

struct Operand {
  std::string name, type; // type: "f32", "i32", "f32|i32" or "any"
  bool optional = false, variadic = false;
};

struct Attr {
  std::string name, type; // "int" | "float" | "string" | "ints"
  bool required = false, fromOp = false;
  std::string dflt; // a C++ literal of the type's default; "" for ints
  std::string doc;
};

struct Kernel {
  std::string name, summary;
  bool executor = false;
  std::vector<Operand> inputs, outputs;
  std::vector<Attr> attrs;
  const Record *def = nullptr;
};

// The element type an ODS tensor constraint allows, from its summary
// ("ranked tensor of 32-bit float or 32-bit signless integer values").
std::string elementType(const mlir::tblgen::NamedTypeConstraint &c) {
  StringRef s = c.constraint.getSummary();
  bool f = s.contains("32-bit float"),
       i = s.contains("32-bit signless integer");
  return f && i ? "f32|i32" : f ? "f32" : i ? "i32" : "any";
}

Operand operandOf(const mlir::tblgen::NamedTypeConstraint &c) {
  return {c.name.str(), elementType(c), c.isOptional(), c.isVariadic()};
}

// An ODS attribute as the plan carries it (compiler/LowerToPlan.cpp
// lowerAttrs): booleans and integers as Attr.i, floats as Attr.f, strings as
// Attr.s, i64 arrays as Attr.ints. Attributes of other kinds (structured ones
// the compiler alone reads) are no kernel attributes: nullopt.
std::optional<Attr> attrOf(const Record *op,
                           const mlir::tblgen::NamedAttribute &na) {
  Attr a;
  a.name = na.name.str();
  a.fromOp = true;
  mlir::tblgen::Attribute base = na.attr.getBaseAttr();
  StringRef storage = base.getStorageType();
  std::string dflt =
      na.attr.hasDefaultValue() ? na.attr.getDefaultValue().str() : "";
  a.required = !na.attr.hasDefaultValue() && !na.attr.isOptional();
  if (storage == "::mlir::BoolAttr") {
    a.type = "int";
    if (!dflt.empty())
      dflt = dflt == "true" ? "1" : "0";
  } else if (storage == "::mlir::IntegerAttr") {
    a.type = "int";
  } else if (storage == "::mlir::FloatAttr") {
    a.type = "float";
  } else if (storage == "::mlir::StringAttr") {
    a.type = "string";
  } else if (storage == "::mlir::DenseI64ArrayAttr") {
    a.type = "ints";
    if (!dflt.empty())
      llvm::PrintFatalError(op, "ints attribute '" + a.name +
                                    "' has a default; the plan cannot say it");
  } else {
    return std::nullopt;
  }
  if (na.attr.isOptional() && !na.attr.hasDefaultValue() && a.type != "ints")
    llvm::PrintFatalError(op, "optional attribute '" + a.name +
                                  "' has no default a kernel could use when "
                                  "the plan omits it; make it a "
                                  "DefaultValuedAttr");
  a.dflt = dflt;
  a.doc = na.attr.getSummary().str();
  return a;
}

Attr kernelAttrOf(const Record *owner, const Record *r) {
  Attr a;
  a.name = r->getValueAsString("name").str();
  a.type = r->getValueAsString("type").str();
  a.required = r->getValueAsBit("isRequired");
  a.dflt = r->getValueAsString("defaultValue").str();
  a.doc = r->getValueAsString("doc").str();
  static const std::set<std::string> kTypes = {"int", "float", "string",
                                               "ints"};
  if (!kTypes.count(a.type))
    llvm::PrintFatalError(owner, "kernel attribute '" + a.name +
                                     "' has type '" + a.type +
                                     "'; want int, float, string or ints");
  if (!a.required && a.type != "ints" && a.dflt.empty())
    llvm::PrintFatalError(owner, "kernel attribute '" + a.name +
                                     "' needs a default or RequiredKernelAttr");
  return a;
}

std::vector<Operand> kernelOperands(const Record *r, StringRef field) {
  std::vector<Operand> out;
  for (const Record *o : r->getValueAsListOfDefs(field))
    out.push_back({o->getValueAsString("name").str(),
                   o->getValueAsString("type").str(), false, false});
  return out;
}

void addAttrs(Kernel &k, const Record *r) {
  for (const Record *a : r->getValueAsListOfDefs("kernelAttrs"))
    k.attrs.push_back(kernelAttrOf(r, a));
  std::set<std::string> seen;
  for (const Attr &a : k.attrs)
    if (!seen.insert(a.name).second)
      llvm::PrintFatalError(r, "kernel '" + k.name + "' declares attribute '" +
                                   a.name + "' twice");
}

std::string quoted(StringRef s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (c == '\n') {
      out += ' ';
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::string cIdent(StringRef s) {
  std::string out;
  for (char c : s)
    out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

void emitOperands(llvm::raw_ostream &os, StringRef array,
                  const std::vector<Operand> &ops) {
  if (ops.empty())
    return;
  os << "inline constexpr OperandSchema " << array << "[] = {\n";
  for (const Operand &o : ops)
    os << llvm::formatv("    {{{0}, {1}, {2}, {3}},\n", quoted(o.name),
                        quoted(o.type), o.optional ? "true" : "false",
                        o.variadic ? "true" : "false");
  os << "};\n";
}

void emitAttrs(llvm::raw_ostream &os, StringRef array,
               const std::vector<Attr> &attrs) {
  if (attrs.empty())
    return;
  os << "inline constexpr AttrSchema " << array << "[] = {\n";
  for (const Attr &a : attrs) {
    std::string type = a.type == "int"      ? "AttrType::kInt"
                       : a.type == "float"  ? "AttrType::kFloat"
                       : a.type == "string" ? "AttrType::kString"
                                            : "AttrType::kInts";
    bool has = !a.required && !a.dflt.empty();
    std::string i = has && a.type == "int" ? a.dflt : "0";
    std::string f = has && a.type == "float" ? a.dflt : "0.0";
    std::string s = has && a.type == "string" ? a.dflt : "\"\"";
    os << llvm::formatv("    {{{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}},\n",
                        quoted(a.name), type, a.required ? "true" : "false",
                        a.fromOp ? "true" : "false", i, f, s, quoted(a.doc));
  }
  os << "};\n";
}

bool emitSchema(llvm::raw_ostream &os, RecordKeeper &records) {
  std::map<std::string, Kernel> kernels;
  std::map<std::string, std::string> opKernel; // mnemonic -> kernel
  std::vector<const Record *> aliases;
  auto own = [&](Kernel k) {
    if (kernels.count(k.name))
      llvm::PrintFatalError(k.def, "kernel '" + k.name + "' defined twice");
    kernels[k.name] = std::move(k);
  };
  for (const Record *def : records.getAllDerivedDefinitions("Galaxy_Op")) {
    mlir::tblgen::Operator op(def);
    std::string mnemonic = op.getOperationName();
    mnemonic = mnemonic.substr(mnemonic.find('.') + 1);
    std::string kernel = def->getValueAsString("kernel").str();
    opKernel[mnemonic] = kernel;
    if (kernel.empty())
      continue;
    if (kernel != mnemonic) {
      aliases.push_back(def);
      continue;
    }
    Kernel k;
    k.name = kernel;
    k.def = def;
    k.summary = op.getSummary().str();
    k.executor = def->getValueAsBit("kernelRunByExecutor");
    for (int i = 0; i < op.getNumOperands(); ++i)
      k.inputs.push_back(operandOf(op.getOperand(i)));
    for (Operand &o : kernelOperands(def, "kernelExtraInputs"))
      k.inputs.push_back(o);
    for (int i = 0; i < op.getNumResults(); ++i)
      k.outputs.push_back(operandOf(op.getResult(i)));
    for (int i = 0; i < op.getNumNativeAttributes(); ++i)
      if (!op.getAttribute(i).attr.isDerivedAttr())
        if (std::optional<Attr> a = attrOf(def, op.getAttribute(i)))
          k.attrs.push_back(*a);
    addAttrs(k, def);
    own(std::move(k));
  }
  for (const Record *def : records.getAllDerivedDefinitions("Galaxy_Kernel")) {
    Kernel k;
    k.name = def->getValueAsString("kernel").str();
    k.def = def;
    k.summary = def->getValueAsString("summary").str();
    k.executor = def->getValueAsBit("kernelRunByExecutor");
    k.inputs = kernelOperands(def, "inputs");
    k.outputs = kernelOperands(def, "outputs");
    addAttrs(k, def);
    own(std::move(k));
  }
  // An op lowered to another op's kernel brings no attribute that kernel
  // does not declare.
  for (const Record *def : aliases) {
    mlir::tblgen::Operator op(def);
    std::string kernel = def->getValueAsString("kernel").str();
    auto it = kernels.find(kernel);
    if (it == kernels.end())
      llvm::PrintFatalError(def, "lowers to kernel '" + kernel +
                                     "', which no op or Galaxy_Kernel defines");
    if (!def->getValueAsListOfDefs("kernelAttrs").empty())
      llvm::PrintFatalError(def, "declares kernelAttrs but lowers to '" +
                                     kernel + "'; declare them there");
    for (int i = 0; i < op.getNumNativeAttributes(); ++i) {
      std::optional<Attr> a = attrOf(def, op.getAttribute(i));
      if (!a)
        continue;
      bool found = false;
      for (const Attr &b : it->second.attrs)
        found |= b.name == a->name && b.type == a->type;
      if (!found)
        llvm::PrintFatalError(def, "attribute '" + a->name +
                                       "' is not one of "
                                       "kernel '" +
                                       kernel + "''s");
    }
  }

  llvm::emitSourceFileHeader("The plan's kernel schema (galaxy-tblgen)", os,
                             records);
  for (const auto &[name, k] : kernels) {
    emitOperands(os, "kIn_" + cIdent(name), k.inputs);
    emitOperands(os, "kOut_" + cIdent(name), k.outputs);
    emitAttrs(os, "kAttr_" + cIdent(name), k.attrs);
  }
  os << "\n// Sorted by name.\ninline constexpr KernelSchema kKernels[] = {\n";
  for (const auto &[name, k] : kernels) {
    auto span = [&](StringRef prefix, bool empty) {
      return empty ? std::string("{}") : (prefix + cIdent(name)).str();
    };
    os << llvm::formatv("    {{{0}, {1}, {2}, {3}, {4}, {5}},\n", quoted(name),
                        k.executor ? "Runner::kExecutor" : "Runner::kBackend",
                        quoted(k.summary), span("kIn_", k.inputs.empty()),
                        span("kOut_", k.outputs.empty()),
                        span("kAttr_", k.attrs.empty()));
  }
  os << "};\n\n// Op mnemonic -> kernel (\"\": no instruction of its own), "
        "sorted.\ninline constexpr OpKernel kOpKernels[] = {\n";
  for (const auto &[op, kernel] : opKernel)
    os << "    {" << quoted(op) << ", " << quoted(kernel) << "},\n";
  os << "};\n";
  return false;
}

} // namespace

int main(int argc, char **argv) {
  llvm::cl::ParseCommandLineOptions(argc, argv);
  return llvm::TableGenMain(argv[0], &emitSchema);
}
