// The static profile against hand-derived formulas: BERT-base's parameter count
// and GEMM work, tensor-parallel shares per rank, and Galaxy's traffic per
// rank.
#include "tests/profile/profile_util.h"

namespace galaxy::profile {
namespace {

using testing::at;
using testing::makeConfig;
using testing::profileOf;

// Hugging Face BertForSequenceClassification at bert-base-chinese sizes.
constexpr int64_t V = 21128, P = 512, T = 2, H = 768, I = 3072, L = 12, NH = 12,
                  C = 10;
constexpr int64_t B = 4, S = 32;

const char *kBertBase =
    R"({"vocab_size": 21128, "hidden_size": 768, "num_hidden_layers": 12,
  "num_attention_heads": 12, "intermediate_size": 3072, "max_position_embeddings": 512,
  "type_vocab_size": 2, "num_classes": 10, "batch_size": 4, "pad_size": 32})";

const Profile &bertBaseSerial() {
  static const Profile p = profileOf(makeConfig(kBertBase, "serial", 1));
  return p;
}

TEST(ProfileBertBase, ParameterCountIsExact) {
  const int64_t embeddings =
      V * H + P * H + T * H + 2 * H;            // tables + LayerNorm
  const int64_t layer = 4 * (H * H + H) + 2 * H // Q, K, V, O + LayerNorm
                        + (H * I + I) + (I * H + H) + 2 * H; // MLP + LayerNorm
  const int64_t pooler = H * H + H, classifier = H * C + C;
  const int64_t total = embeddings + L * layer + pooler + classifier;
  EXPECT_EQ(total, 102275338);

  const Profile &p = bertBaseSerial();
  EXPECT_EQ(p.total.fig.params, total);
  EXPECT_EQ(p.total.fig.trainable, total);
  EXPECT_EQ(p.ranks[0].fig.params, total);
  EXPECT_EQ(at(p.ranks[0], {"embedding"}).params, embeddings);
  EXPECT_EQ(at(p.ranks[0], {"layer.7"}).params, layer);
  EXPECT_EQ(at(p.ranks[0], {"layer.7", "att"}).params, 4 * (H * H + H));
  EXPECT_EQ(at(p.ranks[0], {"pooler"}).params, pooler);
  EXPECT_EQ(at(p.ranks[0], {"head"}).params, classifier);
}

TEST(ProfileBertBase, MatmulMacsMatchTheAnalyticFormula) {
  // Per layer: Q, K, V, O projections; scores Q·Kᵀ and context P·V (B·NH·S·S·d
  // each, d = H/NH); the two MLP linears. Then pooler and classifier on [B, H].
  const int64_t attMacs = 4 * B * S * H * H + 2 * B * S * S * H;
  const int64_t mlpMacs = 2 * B * S * H * I;
  const int64_t fwdMacs = L * (attMacs + mlpMacs) + B * H * H + B * H * C;
  const RankProfile &r = bertBaseSerial().ranks[0];
  EXPECT_EQ(r.fig.fwdMacs, fwdMacs);
  EXPECT_EQ(at(r, {"layer.3", "att"}).fwdMacs, attMacs);
  EXPECT_EQ(at(r, {"layer.3", "mlp"}).fwdMacs, mlpMacs);
  EXPECT_EQ(at(r, {"layer.3", "con"}).fwdMacs, 0);
  // Every linear has a dx and a dw GEMM of its own size and every attention
  // matmul two gradient matmuls: backward GEMM work is exactly twice forward.
  EXPECT_EQ(r.fig.bwdMacs, 2 * fwdMacs);

  // FLOPs: 2·MACs, LayerNorm 5/element (2 per layer + embeddings), softmax over
  // the scores, GELU over [B,S,I], tanh in the pooler, the embedding sum (2
  // adds) and two residual adds per layer, cross-entropy over the logits.
  const int64_t fwdFlops = 2 * fwdMacs + 5 * (2 * L + 1) * B * S * H +
                           L * B * NH * S * S + L * B * S * I + B * H +
                           (2 + 2 * L) * B * S * H + B * C;
  EXPECT_EQ(r.fig.fwdFlops, fwdFlops);
  // Backward: the GEMMs (2·MACs), each forward rule applied to its grad op
  // (LayerNorm 5, softmax, GELU, tanh and cross-entropy 1 per element),
  // bias_grad 1 per dy element (Q, K, V, O, both MLP linears, pooler,
  // classifier), and the gradient sums where a value has several consumers: Q,
  // K, V and the residual at each layer input (3 adds), the MLP input and the
  // residual (1 add).
  const int64_t bwdFlops = 2 * r.fig.bwdMacs + 5 * (2 * L + 1) * B * S * H +
                           L * B * NH * S * S + L * B * S * I + B * H + B * C +
                           L * (5 * B * S * H + B * S * I) + B * H + B * C +
                           L * 4 * B * S * H;
  EXPECT_EQ(r.fig.bwdFlops, bwdFlops);
  // SGD: 2 FLOPs per trainable element.
  EXPECT_EQ(r.fig.optFlops, 2 * 102275338);
  EXPECT_TRUE(r.comm.empty());
  EXPECT_EQ(r.fig.commBytes, 0);
  EXPECT_TRUE(r.uncounted.empty());
}

// A small BERT where tensor-parallel splits are easy to read.
std::string smallBert(const std::string &splits) {
  return R"({"vocab_size": 100, "hidden_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "intermediate_size": 256, "max_position_embeddings": 32,
    "num_classes": 3, "batch_size": 2, "pad_size": 16, "optimizer": "adamw")" +
         splits + "}";
}

// rank's work * den == serial work * num, for the forward FLOPs and for all
// GEMM work (forward and backward) of ATT and MLP in every layer.
void expectShare(const Profile &serial, const Profile &tp, int rank,
                 int64_t num, int64_t den) {
  for (const char *layer : {"layer.0", "layer.1"})
    for (const char *block : {"att", "mlp"}) {
      SCOPED_TRACE(::testing::Message()
                   << "rank " << rank << " " << layer << "/" << block);
      Figures s = at(serial.ranks[0], {layer, block});
      Figures t = at(tp.ranks[rank], {layer, block});
      EXPECT_GT(s.fwdFlops, 0);
      EXPECT_EQ(t.fwdFlops * den, s.fwdFlops * num);
      EXPECT_EQ((t.fwdMacs + t.bwdMacs) * den, (s.fwdMacs + s.bwdMacs) * num);
    }
}

TEST(ProfileTensorParallel, TwoRanksHalveAttentionAndMlpWork) {
  Profile serial = profileOf(makeConfig(smallBert(""), "serial", 1));
  Profile tp =
      profileOf(makeConfig(smallBert(R"(, "tp_num_attention_heads_list": [2, 2],
                   "tp_intermediate_size_list": [128, 128])"),
                           "tp", 2));
  ASSERT_EQ(tp.ranks.size(), 2u);
  expectShare(serial, tp, 0, 1, 2);
  expectShare(serial, tp, 1, 1, 2);
  // CON is replicated in TP: every rank does all of it.
  EXPECT_EQ(at(tp.ranks[1], {"layer.0", "con"}).fwdFlops,
            at(serial.ranks[0], {"layer.0", "con"}).fwdFlops);
}

TEST(ProfileTensorParallel, UnevenSplitsGiveProportionalShares) {
  Profile serial = profileOf(makeConfig(smallBert(""), "serial", 1));
  Profile tp =
      profileOf(makeConfig(smallBert(R"(, "tp_num_attention_heads_list": [3, 1],
                   "tp_intermediate_size_list": [192, 64])"),
                           "tp", 2));
  expectShare(serial, tp, 0, 3, 4);
  expectShare(serial, tp, 1, 1, 4);
}

TEST(ProfileTensorParallel, ParamSlicesAndReplicasPerRank) {
  Profile tp =
      profileOf(makeConfig(smallBert(R"(, "tp_num_attention_heads_list": [3, 1],
                   "tp_intermediate_size_list": [192, 64])"),
                           "tp", 2));
  const int64_t h = 128, i = 256;
  // MLP: intermediate.dense [I,H]+[I] split by rows, output.dense [H,I] by
  // columns, its bias [H] replicated (added once, on rank 0).
  EXPECT_EQ(at(tp.ranks[0], {"layer.1", "mlp"}).params,
            192 * h + 192 + h * 192 + h);
  EXPECT_EQ(at(tp.ranks[1], {"layer.1", "mlp"}).params,
            64 * h + 64 + h * 64 + h);
  EXPECT_EQ(at(tp.total, {"layer.1", "mlp"}).params, 2 * h * i + i + h);
}

// TP per rank and layer: all-reduce after ATT and after MLP forward; backward,
// the gradient of each block's (replicated) input is all-reduced.
TEST(ProfileComm, TensorParallelAllReducesFullActivations) {
  Profile tp =
      profileOf(makeConfig(smallBert(R"(, "tp_num_attention_heads_list": [3, 1],
                   "tp_intermediate_size_list": [192, 64])"),
                           "tp", 2));
  const int64_t act = 2 * 16 * 128 * 4, layers = 2; // B·S·H·4 bytes
  for (const RankProfile &r : tp.ranks) {
    ASSERT_EQ(r.comm.size(), 2u);
    EXPECT_EQ(r.comm[0].kind, "all_reduce");
    EXPECT_FALSE(r.comm[0].backward);
    EXPECT_EQ(r.comm[0].count, 2 * layers);
    EXPECT_EQ(r.comm[0].bytes, 2 * layers * act);
    EXPECT_EQ(r.comm[1].kind, "all_reduce");
    EXPECT_TRUE(r.comm[1].backward);
    EXPECT_EQ(r.comm[1].count, 2 * layers);
    EXPECT_EQ(r.comm[1].bytes, 2 * layers * act);
  }
}

int64_t bytesOf(const RankProfile &r, const std::string &kind, bool backward) {
  for (const CommOp &c : r.comm)
    if (c.kind == kind && c.backward == backward)
      return c.bytes;
  return 0;
}

// Galaxy (ATT TP, CON SP, MLP TP), per rank, L layers, X = B·S·H·4 bytes:
//   forward:  reduce-scatter after ATT and after MLP          2L x X
//             all-gather before MLP, before ATT of layers 1.., and before the
//             pooler (layer 0's input is sliced, no traffic)  2L x X
//   backward: all-gather (conjugate of each reduce-scatter)    2L x X
//             reduce-scatter (conjugate of the all-gathers that feed TP work;
//             the pooler's gather turns into a slice)         (2L-1) x X
//             all-reduce of layer 0's input gradient into the replicated
//             embeddings, X, and of the CON LayerNorms' gamma/beta gradients
//             (partial over the sequence shards), 4L x H·4.
// Under the convention (a rank moves the full tensor it hands over or gets
// back) the uneven sequence split changes none of these figures.
TEST(ProfileComm, GalaxyBytesMatchTheScheduleFormula) {
  for (const char *seq : {"[8, 8]", "[10, 6]"}) {
    SCOPED_TRACE(seq);
    Profile g = profileOf(makeConfig(
        smallBert(std::string(R"(, "tp_num_attention_heads_list": [3, 1],
                     "tp_intermediate_size_list": [192, 64], "seq_scatter_list": )") +
                  seq),
        "galaxy", 2));
    const int64_t h = 128, l = 2, x = 2 * 16 * h * 4;
    for (const RankProfile &r : g.ranks) {
      SCOPED_TRACE(r.rank);
      EXPECT_EQ(bytesOf(r, "reduce_scatter", false), 2 * l * x);
      EXPECT_EQ(bytesOf(r, "all_gather", false), 2 * l * x);
      EXPECT_EQ(bytesOf(r, "all_reduce", false), 0);
      EXPECT_EQ(bytesOf(r, "all_gather", true), 2 * l * x);
      EXPECT_EQ(bytesOf(r, "reduce_scatter", true), (2 * l - 1) * x);
      EXPECT_EQ(bytesOf(r, "all_reduce", true), x + 4 * l * h * 4);
      EXPECT_EQ(r.fig.commBytes, (8 * l - 1) * x + x + 4 * l * h * 4);
    }
    EXPECT_EQ(g.total.fig.commBytes, 2 * g.ranks[0].fig.commBytes);
    // CON (SP) work follows the sequence split: rank 0 holds 8 or 10 of 16.
    int64_t s0 = std::string(seq) == "[8, 8]" ? 8 : 10;
    Figures con0 = at(g.ranks[0], {"layer.1", "con"}),
            con1 = at(g.ranks[1], {"layer.1", "con"});
    EXPECT_EQ(con0.fwdFlops * (16 - s0), con1.fwdFlops * s0);
  }
}

TEST(ProfileDataParallel, ForwardWorkIsConservedAcrossRanks) {
  Profile serial = profileOf(makeConfig(smallBert(""), "serial", 1));
  Profile dp =
      profileOf(makeConfig(smallBert(R"(, "dp_batch_list": [1, 1])"), "dp", 2));
  EXPECT_EQ(dp.total.fig.fwdFlops, serial.total.fig.fwdFlops);
  EXPECT_EQ(dp.total.fig.fwdMacs, serial.total.fig.fwdMacs);
  EXPECT_EQ(dp.ranks[0].fig.fwdMacs * 2, serial.ranks[0].fig.fwdMacs);
  // Every trainable gradient is all-reduced once, at full size.
  EXPECT_EQ(bytesOf(dp.ranks[0], "all_reduce", true),
            4 * serial.total.fig.trainable);
}

TEST(ProfileMemory, WeightsGradientsAndAdamState) {
  Profile tp =
      profileOf(makeConfig(smallBert(R"(, "tp_num_attention_heads_list": [3, 1],
                   "tp_intermediate_size_list": [192, 64])"),
                           "tp", 2));
  for (const RankProfile &r : tp.ranks) {
    const Memory &m = r.memory;
    EXPECT_EQ(m.weights, 4 * r.fig.params);
    EXPECT_EQ(m.gradients, 4 * r.fig.trainable);
    EXPECT_EQ(m.optimizerState,
              2 * 4 * r.fig.trainable); // AdamW: exp_avg, exp_avg_sq
    EXPECT_GT(m.gradientsLive, 0);
    EXPECT_LT(m.gradientsLive,
              m.gradients); // updates free gradients as they go
    EXPECT_EQ(m.inputs,
              4 * (2 * 16 * 3 + 2)); // ids, mask, types [B,S]; labels [B]
    EXPECT_GT(m.activationArena, 0);
    EXPECT_EQ(m.peak,
              m.weights + m.optimizerState + m.inputs + m.activationArena);
  }
  EXPECT_EQ(tp.total.memory.weights,
            tp.ranks[0].memory.weights + tp.ranks[1].memory.weights);
}

} // namespace
} // namespace galaxy::profile
