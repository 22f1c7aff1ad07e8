// A kernel attribute of a type the plan has no field for (kernel-schema.test).
include "galaxy/GalaxyDialect.td"

def Bad_Op : Galaxy_Op<"bad"> {
  let kernelAttrs = [KernelAttr<"window", "bool", "0", "no such plan type">];
}
