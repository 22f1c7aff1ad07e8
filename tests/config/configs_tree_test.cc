// Every config checked into configs/ (except configs/data/, which holds data
// descriptions) loads without warnings and validates under its own
// parallel_mode; files under configs/<model>/<mode>/ declare that mode.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "compiler/config/enum_names.h"
#include "compiler/config/parse.h"
#include "compiler/config/validate.h"
#include "gtest/gtest.h"

namespace galaxy::config {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> treeConfigs() {
  const fs::path root = GALAXY_CONFIGS_DIR;
  std::vector<fs::path> out;
  for (auto it = fs::recursive_directory_iterator(root);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory() && it->path() == root / "data") {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && it->path().extension() == ".json")
      out.push_back(it->path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ConfigsTree, EveryConfigLoadsAndValidates) {
  std::vector<fs::path> files = treeConfigs();
  // bert: 4 serial + tiny, dp 4, tp 2, sp 2, pp 3, galaxy 3.
  EXPECT_GE(files.size(), 19u);
  for (const fs::path &p : files) {
    SCOPED_TRACE(p.string());
    absl::StatusOr<GalaxyConfig> c = loadConfig(p.string());
    ASSERT_TRUE(c.ok()) << c.status();
    EXPECT_TRUE(c->warnings.empty()) << c->warnings.front();
    absl::StatusOr<GalaxyConfig> r = resolveConfig(*c, {});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(r->warnings.empty()) << r->warnings.front();

    // configs/bert/tp/full.json must say parallel_mode "tp".
    std::string dir = p.parent_path().filename().string();
    if (parseParallelMode(dir).ok()) {
      EXPECT_EQ(toString(c->parallel_mode), dir);
    }
  }
}

TEST(ConfigsTree, ExpectedFilesExist) {
  const fs::path bert = fs::path(GALAXY_CONFIGS_DIR) / "bert";
  for (const char *f :
       {"full.json", "lora.json", "adapter.json", "side.json", "tiny.json",
        "dp/full.json", "dp/lora.json", "dp/adapter.json", "dp/side.json",
        "tp/full.json", "tp/lora.json", "sp/full.json", "sp/lora.json",
        "pp/full.json", "pp/lora.json", "pp/side.json", "galaxy/full.json",
        "galaxy/lora.json", "galaxy/galaxy2.json"})
    EXPECT_TRUE(fs::exists(bert / f)) << (bert / f);
}

TEST(ConfigsTree, GalaxyConfigsUseTheirSchedules) {
  const fs::path dir = fs::path(GALAXY_CONFIGS_DIR) / "bert" / "galaxy";
  absl::StatusOr<GalaxyConfig> g = loadConfig((dir / "full.json").string());
  absl::StatusOr<GalaxyConfig> g2 = loadConfig((dir / "galaxy2.json").string());
  ASSERT_TRUE(g.ok() && g2.ok());
  RegionMethods m = regionMethods(*g);
  EXPECT_EQ(m.att, BlockMethod::kTP);
  EXPECT_EQ(m.con, BlockMethod::kSP);
  EXPECT_EQ(m.mlp, BlockMethod::kTP);
  m = regionMethods(*g2);
  EXPECT_EQ(m.att, BlockMethod::kTP);
  EXPECT_EQ(m.con, BlockMethod::kSP);
  EXPECT_EQ(m.mlp, BlockMethod::kSP);
}

} // namespace
} // namespace galaxy::config
