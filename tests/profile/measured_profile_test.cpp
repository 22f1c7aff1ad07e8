// The measured profile (galaxy-run --profile): a small BERT trained 3 steps
// with per-instruction timing, serial in-process and Galaxy over 2 forked
// ranks; every train_step instruction gets a time, region shares sum to 1,
// the measurement merges into galaxyc's static tree, and the SVG is
// well-formed XML. No timing thresholds.
#include <fstream>
#include <set>

#include <unistd.h>

#include "nlohmann/json.hpp"
#include "runtime/exec/executor.h"
#include "runtime/exec/profiling.h"
#include "tests/comm/multiprocess.h"
#include "tests/profile/profile_util.h"

#include "compiler/profile/report.h"

namespace galaxy::profile {
namespace {

using nlohmann::json;
namespace prof = rt::profiling;

std::string smallBert(const std::string &splits) {
  return R"({"vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 2,
    "num_attention_heads": 4, "intermediate_size": 128, "max_position_embeddings": 32,
    "num_classes": 3, "batch_size": 2, "pad_size": 16, "optimizer": "adamw")" +
         splits + "}";
}

io::Batch batchOf(int64_t step) {
  io::Batch b;
  b.size = 2;
  b.seqLen = 16;
  for (int64_t i = 0; i < 32; ++i) {
    b.ints("input_ids").push_back(int32_t(1 + (i * 7 + step) % 99));
    b.floats("attention_mask").push_back(i % 16 < 12 ? 1.0f : 0.0f);
    b.ints("token_type_ids").push_back(0);
  }
  b.ints("labels") = {int32_t(step % 3), int32_t((step + 1) % 3)};
  return b;
}

// What galaxy-run does: 3 steps, step 1 dropped as warm-up.
absl::StatusOr<prof::MeasuredRank> trainAndMeasure(const plan::Plan &plan,
                                                   comm::Communicator *comm) {
  auto backend = rt::makeCpuBackend();
  auto ex = rt::Executor::create(plan, *backend, comm);
  if (!ex.ok())
    return ex.status();
  (*ex)->initParams(7);
  (*ex)->setInstrTiming(true);
  for (int64_t s = 0; s < 3; ++s) {
    auto out = (*ex)->run("train_step", batchOf(s), {7, s + 1, true});
    if (!out.ok())
      return out.status();
    if (s == 0)
      (*ex)->resetInstrTimes();
  }
  return prof::measureRank(plan, "train_step",
                           (*ex)->instrSeconds("train_step"),
                           (*ex)->timedRuns("train_step"));
}

// Trains and measures every rank in forked children (the parent never starts
// OpenMP, which does not survive a fork) and returns the gathered ranks.
std::vector<prof::MeasuredRank>
measureForked(const std::vector<plan::Plan> &plans) {
  const int world = int(plans.size());
  const std::string out = ::testing::TempDir() + "/measured_profile_" +
                          std::to_string(getpid()) + ".json";
  std::remove(out.c_str());
  const int port = comm::testing::freePort();
  auto results = comm::testing::runRanks(world, [&](int rank) -> absl::Status {
    std::unique_ptr<comm::Communicator> c;
    if (world > 1) {
      comm::CommOptions o;
      o.rank = rank;
      o.world = world;
      o.masterPort = port;
      o.timeout = std::chrono::seconds(20);
      auto cc = comm::connectGloo(o);
      if (!cc.ok())
        return cc.status();
      c = std::move(*cc);
    }
    auto m = trainAndMeasure(plans[rank], c.get());
    if (!m.ok())
      return m.status();
    auto all = prof::gatherMeasured(c.get(), *m);
    if (!all.ok())
      return all.status();
    if (rank == 0) {
      json j = json::array();
      for (const prof::MeasuredRank &x : *all)
        j.push_back(prof::rankJson(x));
      std::ofstream(out) << j.dump();
    }
    return c ? c->barrier() : absl::OkStatus();
  });
  std::vector<prof::MeasuredRank> ms;
  for (const auto &r : results)
    EXPECT_EQ(r.exitCode, 0) << comm::testing::describe(results);
  std::ifstream in(out);
  json gathered = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (gathered.is_discarded())
    return ms;
  for (const json &j : gathered) {
    auto m = prof::rankFromJson(j);
    EXPECT_TRUE(m.ok()) << m.status();
    if (m.ok())
      ms.push_back(*m);
  }
  std::remove(out.c_str());
  return ms;
}

// Minimal XML well-formedness: balanced, properly nested tags, quoted
// attributes, and no raw '<' or stray '&' in text.
bool wellFormedXml(const std::string &x, std::string *why) {
  std::vector<std::string> stack;
  size_t i = 0;
  auto bad = [&](const std::string &m) {
    *why = m + " at offset " + std::to_string(i);
    return false;
  };
  while (i < x.size()) {
    if (x[i] == '&') {
      size_t semi = x.find(';', i);
      std::string ent =
          x.substr(i, semi == std::string::npos ? 0 : semi - i + 1);
      if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;")
        return bad("bad entity");
      i = semi + 1;
      continue;
    }
    if (x[i] != '<') {
      ++i;
      continue;
    }
    if (x.compare(i, 2, "<?") == 0) {
      size_t e = x.find("?>", i);
      if (e == std::string::npos)
        return bad("unterminated <?");
      i = e + 2;
      continue;
    }
    // Scan the tag, honouring quoted attribute values.
    size_t j = i + 1;
    bool quoted = false;
    for (; j < x.size() && (quoted || x[j] != '>'); ++j) {
      if (x[j] == '"')
        quoted = !quoted;
      else if (!quoted && x[j] == '<')
        return bad("'<' inside a tag");
    }
    if (j >= x.size())
      return bad("unterminated tag");
    std::string tag = x.substr(i + 1, j - i - 1);
    if (tag.empty())
      return bad("empty tag");
    if (tag[0] == '/') {
      if (stack.empty() || stack.back() != tag.substr(1))
        return bad("mismatched </" + tag.substr(1) + ">");
      stack.pop_back();
    } else if (tag.back() != '/') {
      stack.push_back(tag.substr(0, tag.find_first_of(" \n\t")));
    }
    i = j + 1;
  }
  if (!stack.empty())
    return bad("unclosed <" + stack.back() + ">");
  return true;
}

// Every instruction has a measured time and regions' shares sum to 1.
void expectComplete(const plan::Plan &plan, const prof::MeasuredRank &m) {
  const plan::Program *prog = nullptr;
  for (const plan::Program &p : plan.programs())
    if (p.name() == "train_step")
      prog = &p;
  ASSERT_NE(prog, nullptr);
  ASSERT_EQ(int(m.instrs.size()), prog->instrs_size());
  EXPECT_EQ(m.steps, 2); // 3 steps, the first one dropped
  for (size_t i = 0; i < m.instrs.size(); ++i) {
    EXPECT_GT(m.instrs[i].seconds, 0) << "instruction " << i;
    EXPECT_EQ(m.instrs[i].kernel, prog->instrs(int(i)).kernel());
  }
  double share = 0, regions = 0;
  const double total = prof::totalSeconds(m);
  for (const prof::Region &r : prof::regionsOf(m)) {
    share += r.seconds() / total;
    regions += r.seconds();
  }
  EXPECT_NEAR(share, 1.0, 1e-9);
  EXPECT_NEAR(regions, total, 1e-12);
  json mj = prof::measuredJson({m});
  double jsonShare = 0;
  for (const json &r : mj["ranks"][0]["regions"])
    jsonShare += r["share"].get<double>();
  EXPECT_NEAR(jsonShare, 1.0, 1e-9);
  EXPECT_NEAR(mj["ranks"][0]["tree"][0]["measured"]["share"].get<double>(), 1.0,
              1e-12);
}

// Block path ("model/layer.0/att") of every instruction in a tree.
void blockOfInstr(const json &node, std::map<int, std::string> &out,
                  const std::string &parentPath) {
  if (node.contains("instrs"))
    for (const json &i : node["instrs"])
      out[i.get<int>()] = parentPath;
  for (const json &c : node["children"])
    blockOfInstr(c, out, node["path"].get<std::string>());
}

// Checks the merged static tree: every op node with instrs has "measured",
// seconds add up, and galaxy-run's own tree files each instruction under the
// same block as galaxyc's.
void expectMerged(const json &merged,
                  const std::vector<prof::MeasuredRank> &ms) {
  ASSERT_EQ(merged["ranks"].size(), ms.size());
  json own = prof::measuredJson(ms);
  for (size_t r = 0; r < ms.size(); ++r) {
    SCOPED_TRACE(::testing::Message() << "rank " << r);
    const json &tree = merged["ranks"][r]["tree"][0];
    int opNodes = 0;
    std::function<void(const json &)> walk = [&](const json &n) {
      ASSERT_TRUE(n.contains("measured")) << n["path"];
      if (n["kind"] == "op" && !n["instrs"].empty()) {
        ++opNodes;
        double want = 0;
        for (const json &i : n["instrs"])
          want += ms[r].instrs[i.get<int>()].seconds;
        EXPECT_DOUBLE_EQ(n["measured"]["seconds"].get<double>(), want);
      }
      for (const json &c : n["children"])
        walk(c);
    };
    walk(tree);
    EXPECT_GT(opNodes, 10);
    EXPECT_NEAR(tree["measured"]["seconds"].get<double>(),
                prof::totalSeconds(ms[r]), 1e-12);
    EXPECT_NEAR(tree["measured"]["share"].get<double>(), 1.0, 1e-12);
    EXPECT_GT(tree["measured"]["flops_per_s"].get<double>(), 0);
    std::map<int, std::string> galaxyc, galaxyRun;
    blockOfInstr(tree, galaxyc, "");
    blockOfInstr(own["ranks"][r]["tree"][0], galaxyRun, "");
    EXPECT_EQ(galaxyc.size(), ms[r].instrs.size());
    EXPECT_EQ(galaxyc, galaxyRun);
  }
}

TEST(MeasuredProfile, SerialThreeStepsMergesIntoTheStaticTree) {
  auto [staticProf, plans] = testing::compileAndProfile(
      testing::makeConfig(smallBert(""), "serial", 1));
  ASSERT_EQ(plans.size(), 1u);
  std::vector<prof::MeasuredRank> ms = measureForked(plans);
  ASSERT_EQ(ms.size(), 1u);
  const prof::MeasuredRank *m = &ms[0];
  expectComplete(plans[0], *m);
  json merged = json::parse(profileJson(staticProf));
  ASSERT_TRUE(prof::mergeMeasured(merged, {*m}).ok());
  expectMerged(merged, {*m});

  std::string why;
  EXPECT_FALSE(wellFormedXml("<svg><rect></svg>", &why)); // the checker bites
  EXPECT_FALSE(wellFormedXml("<svg>a & b</svg>", &why));
  std::string svg = prof::profileSvg({*m}, "serial <tiny> & \"quoted\"");
  EXPECT_TRUE(wellFormedXml(svg, &why)) << why;
  EXPECT_NE(svg.find("att.1"), std::string::npos);
  EXPECT_NE(prof::measuredText({*m}).find("mlp.1"), std::string::npos);
}

TEST(MeasuredProfile, MismatchedPlanIsRefused) {
  auto [staticProf, plans] = testing::compileAndProfile(
      testing::makeConfig(smallBert(""), "serial", 1));
  std::vector<prof::MeasuredRank> ms = measureForked(plans);
  ASSERT_EQ(ms.size(), 1u);
  prof::MeasuredRank *m = &ms[0];
  m->instrs.pop_back();
  json merged = json::parse(profileJson(staticProf));
  absl::Status s = prof::mergeMeasured(merged, {*m});
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("same config"), std::string::npos) << s;
}

TEST(MeasuredProfile, GalaxyTwoRanksGatherAndMerge) {
  auto [staticProf, plans] = testing::compileAndProfile(
      testing::makeConfig(smallBert(R"(, "tp_num_attention_heads_list": [3, 1],
        "tp_intermediate_size_list": [96, 32], "seq_scatter_list": [10, 6])"),
                          "galaxy", 2));
  ASSERT_EQ(plans.size(), 2u);
  std::vector<prof::MeasuredRank> ms = measureForked(plans);
  ASSERT_EQ(ms.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    SCOPED_TRACE(r);
    EXPECT_EQ(ms[r].rank, r);
    expectComplete(plans[r], ms[r]);
    EXPECT_GT(prof::commSeconds(ms[r]), 0); // Galaxy talks every layer
  }
  json merged = json::parse(profileJson(staticProf));
  absl::Status s = prof::mergeMeasured(merged, ms);
  ASSERT_TRUE(s.ok()) << s;
  expectMerged(merged, ms);
  std::string why;
  EXPECT_TRUE(wellFormedXml(prof::profileSvg(ms, "galaxy, 2 ranks"), &why))
      << why;
  EXPECT_NE(prof::measuredText(ms).find("comm"), std::string::npos);
}

} // namespace
} // namespace galaxy::profile
