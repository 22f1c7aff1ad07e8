//===- GalaxyInterfaces.td - autodiff interface ----------------*- tablegen -*-===//
#ifndef GALAXY_INTERFACES_TD
#define GALAXY_INTERFACES_TD

include "mlir/IR/OpBase.td"

def GradientOpInterface : OpInterface<"GradientOpInterface"> {
  let cppNamespace = "::galaxy";
  let description = [{
    The op's reverse-mode derivative rule. Given the gradient of every result
    (never null: autodiff materialises zeros), build ops computing the
    gradient of each operand for which `needGrad` is true; return a null
    Value for the others.
  }];
  let methods = [
    InterfaceMethod<"Builds the operand gradients.",
      "::llvm::SmallVector<::mlir::Value>", "buildGradients",
      (ins "::mlir::OpBuilder &":$b, "::mlir::ValueRange":$resultGrads,
           "::llvm::ArrayRef<bool>":$needGrad)>
  ];
}

#endif // GALAXY_INTERFACES_TD
