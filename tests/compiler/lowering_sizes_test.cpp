// The lowering's own size checks (issue 19, finding 3), behind the config
// limits: a config that skipped validation, with shapes whose byte counts
// wrap int64, is an error naming the buffer, never a plan with a wrapped
// arena.
#include "compiler/LowerToPlan.h"
#include "compiler/Pipeline.h"
#include "compiler/config/parse.h"

#include <gtest/gtest.h>

namespace galaxy {
namespace {

TEST(LoweringSizes, ShapesPastTheLimitAreErrors) {
  auto c = config::parseConfig(R"({
    "vocab_size": 64, "hidden_size": 32, "num_hidden_layers": 1,
    "num_attention_heads": 4, "intermediate_size": 64,
    "max_position_embeddings": 65536, "num_classes": 3, "batch_size": 3,
    "pad_size": 8})",
                               "sizes");
  ASSERT_TRUE(c.ok()) << c.status();
  // Attention scores of 2^31-1 x 4 x 2^16 x 2^16 elements: 2^65 bytes and
  // more, which the old bytesOf wrapped.
  c->batch_size = 2147483647;
  c->pad_size = 65536;
  mlir::MLIRContext ctx;
  auto module = compileToStage(ctx, *c, "partition");
  ASSERT_TRUE(module.ok()) << module.status();
  auto p = lowerToPlan(**module, *c, {0, 1});
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("elements (2^40); lower the sizes in "
                                      "the config"),
            std::string::npos)
      << p.status();
}

} // namespace
} // namespace galaxy
