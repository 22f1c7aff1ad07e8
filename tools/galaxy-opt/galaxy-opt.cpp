// galaxy-opt: mlir-opt with the galaxy dialect and passes, for lit tests and
// for users who want to run one pass over a dumped module.
#include "galaxy/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  registry.insert<galaxy::GalaxyDialect, mlir::func::FuncDialect>();
  galaxy::registerGalaxyPasses();
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "galaxy-opt: the galaxy dialect's optimizer driver\n",
      registry));
}
