//===- Annotate.cpp - flatten galaxy.block regions into attributes --------===//
#include "galaxy/Passes.h"

#include "mlir/IR/Builders.h"

namespace galaxy {
#define GEN_PASS_DEF_ANNOTATE
#include "galaxy/Passes.h.inc"
} // namespace galaxy

using namespace mlir;
using namespace galaxy;

namespace {
struct AnnotatePass : galaxy::impl::AnnotateBase<AnnotatePass> {
  void runOnOperation() override {
    SmallVector<BlockOp> blocks;
    getOperation().walk([&](BlockOp op) { blocks.push_back(op); });
    for (BlockOp blk : blocks) {
      Builder b(blk);
      auto kind = b.getStringAttr(blk.getKind());
      auto layer = b.getI64IntegerAttr(blk.getLayer());
      // The partition region the model declared for this block, if any.
      Attribute region = blk->getAttr(kRegionAttr);
      Block &body = blk.getBody().front();
      auto yield = cast<YieldOp>(body.getTerminator());
      for (Operation &op : body.without_terminator()) {
        // A nested block keeps its own kind; only stamp ops that have none.
        if (!op.hasAttr(kBlockAttr)) {
          op.setAttr(kBlockAttr, kind);
          op.setAttr(kLayerAttr, layer);
          if (region)
            op.setAttr(kRegionAttr, region);
        }
      }
      blk.replaceAllUsesWith(yield.getValues());
      Block *parent = blk->getBlock();
      parent->getOperations().splice(Block::iterator(blk), body.getOperations(),
                                     body.begin(), Block::iterator(yield));
      blk.erase();
    }
  }
};
} // namespace
