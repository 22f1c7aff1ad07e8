//===- GalaxyKernel.td - the plan's kernel schema --------------*- tablegen -*-===//
//
// What a plan instruction may name: every kernel, its operands and its typed
// attributes. Most kernels are ops (Galaxy_Op's `kernel` fields below); a
// kernel with no op of its own is a Galaxy_Kernel record. galaxy-tblgen
// (tools/galaxy-tblgen) turns these into kernel_schema.inc, which the lowering
// (attributes it writes), both backends (attribute defaults) and the executor
// (refusing a plan at load) read through runtime/plan/kernel_schema.h.
//
//===----------------------------------------------------------------------===//
#ifndef GALAXY_KERNEL_TD
#define GALAXY_KERNEL_TD

// An attribute the lowering writes beyond the op's own ODS attributes (rank
// offsets, fused-update coefficients, ...). `type` is the plan's Attr field:
// "int" (also booleans), "float", "string" or "ints". `defaultValue` is a C++
// literal of that type; ints attributes default to the empty list.
class KernelAttr<string attrName, string attrType, string dflt, string attrDoc> {
  string name = attrName;
  string type = attrType;
  string defaultValue = dflt;
  bit isRequired = 0;
  string doc = attrDoc;
}
class RequiredKernelAttr<string attrName, string attrType, string attrDoc>
    : KernelAttr<attrName, attrType, "", attrDoc> {
  let isRequired = 1;
}

// An operand of a kernel that is not an op operand: a Galaxy_Kernel's, or
// one the lowering appends (AdamW's moments). `type`: "f32", "i32" or
// "f32|i32".
class KernelOperand<string operandName, string operandType> {
  string name = operandName;
  string type = operandType;
}

// A kernel with no op of its own (to_partial lowers to `pad`).
class Galaxy_Kernel<string kernelName> {
  string kernel = kernelName;
  string summary = "";
  list<KernelOperand> inputs = [];
  list<KernelOperand> outputs = [];
  list<KernelAttr> kernelAttrs = [];
  // 1: the executor runs it (data movement, runtime/exec/collectives.cpp);
  // 0: every Backend must.
  bit kernelRunByExecutor = 0;
}

#endif // GALAXY_KERNEL_TD
