// Prints the time of each CPU kernel on BERT-base shapes (batch 4, seq 32). A
// benchmark, not a test: run `cpu_kernels_bench` and read the figures
// (GALAXY_THREADS / GALAXY_GEMM apply). `--sgemm-peak` prints the machine's
// best sgemm GFLOP/s instead; `--fused [ROUNDS]` times galaxy-fuse's kernels
// against the pairs they replace; `--gemm-step [ROUNDS]` the step's GEMMs alone
// and in sequence (gemmStep; `--bf16` as a bf16 plan runs them).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/backend.h"
#include "runtime/cpu/gemm.h"
#include "runtime/cpu/library_env.h"

namespace {

using galaxy::plan::Instr;
using galaxy::rt::Backend;
using galaxy::rt::KernelContext;
using galaxy::rt::Tensor;

struct Owned {
  std::vector<float> data;
  Tensor t;
  Owned(std::vector<int64_t> shape,
        galaxy::plan::DType dtype = galaxy::plan::F32) {
    t.shape = std::move(shape);
    t.dtype = dtype;
    data.assign(t.numel(),
                dtype == galaxy::plan::F32 ? 0.01f : 0.f); // i32 zeros = id 0
    t.data = data.data();
  }
};

Instr op(const std::string &kernel) {
  Instr i;
  i.set_kernel(kernel);
  return i;
}
Instr withF(Instr i, const std::string &k, double v) {
  (*i.mutable_attrs())[k].set_f(v);
  return i;
}
Instr withI(Instr i, const std::string &k, int64_t v) {
  (*i.mutable_attrs())[k].set_i(v);
  return i;
}

void bench(Backend &be, const char *label, const Instr &instr,
           std::vector<Owned *> in, std::vector<Owned *> out,
           double flops = 0) {
  std::vector<Tensor> ti, to;
  for (Owned *o : in)
    ti.push_back(o->t);
  for (Owned *o : out)
    to.push_back(o->t);
  KernelContext ctx{.seed = 1, .step = 1, .training = true};
  if (absl::Status st = be.run(instr, ti, to, ctx); !st.ok()) {
    std::printf("%-34s error: %s\n", label, std::string(st.message()).c_str());
    return;
  }
  int reps = 0;
  auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (elapsed < 0.05 || reps < 3) {
    (void)be.run(instr, ti, to, ctx);
    ++reps;
    elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
  }
  const double us = elapsed / reps * 1e6;
  if (flops > 0)
    std::printf("%-34s %9.1f us  %6.1f GFLOP/s\n", label, us,
                flops / us * 1e-3);
  else
    std::printf("%-34s %9.1f us\n", label, us);
}

} // namespace

// The machine's sgemm ceiling: the best GFLOP/s of any library on 1024³ and
// the BERT-base shapes (the reference for "% of peak" in bench/bert_step.sh).
int sgemmPeak() {
  using namespace galaxy::rt::cpu;
  const int threads = threadsFromEnv().threads;
  setGemmThreads(threads);
  struct Shape {
    int64_t m, n, k;
  };
  const Shape shapes[] = {
      {1024, 1024, 1024}, {128, 3072, 768}, {128, 768, 3072}, {128, 768, 768}};
  double best = 0;
  std::string best_what;
  for (GemmKind kind : {GemmKind::kOneDnn, GemmKind::kOpenBlas})
    for (const Shape &sh : shapes) {
      std::vector<float> a(sh.m * sh.k, 0.01f), b(sh.k * sh.n, 0.02f),
          c(sh.m * sh.n);
      SgemmFn fn = sgemmFor(kind);
      auto once = [&] {
        (void)fn(false, false, sh.m, sh.n, sh.k, 1.f, a.data(), sh.k, b.data(),
                 sh.n, 0.f, c.data(), sh.n);
      };
      once();
      double fastest = 1e30;
      for (int r = 0; r < 20; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        once();
        fastest = std::min(fastest, std::chrono::duration<double>(
                                        std::chrono::steady_clock::now() - t0)
                                        .count());
      }
      const double gflops = 2.0 * sh.m * sh.n * sh.k / fastest * 1e-9;
      std::printf("sgemm %-8s %5lldx%5lldx%5lld %7.1f GFLOP/s\n",
                  std::string(gemmKindName(kind)).c_str(), (long long)sh.m,
                  (long long)sh.n, (long long)sh.k, gflops);
      if (gflops > best) {
        best = gflops;
        best_what = std::string(gemmKindName(kind));
      }
    }
  std::printf("sgemm_peak_gflops %.1f (%s, %d threads)\n", best,
              best_what.c_str(), threads);
  return 0;
}

// Wall time of one call of each of `calls` in sequence (the mean over >= 50
// ms).
double timeCalls(
    Backend &be,
    const std::vector<
        std::pair<Instr, std::pair<std::vector<Owned *>, std::vector<Owned *>>>>
        &calls) {
  KernelContext ctx{.seed = 1, .step = 1, .training = true};
  std::vector<std::vector<Tensor>> ins, outs;
  for (const auto &[instr, io] : calls) {
    ins.emplace_back();
    outs.emplace_back();
    for (Owned *o : io.first)
      ins.back().push_back(o->t);
    for (Owned *o : io.second)
      outs.back().push_back(o->t);
  }
  int reps = 0;
  double elapsed = 0;
  auto t0 = std::chrono::steady_clock::now();
  while (elapsed < 0.05 || reps < 3) {
    for (size_t i = 0; i < calls.size(); ++i)
      (void)be.run(calls[i].first, ins[i], outs[i], ctx);
    ++reps;
    elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
  }
  return elapsed / reps * 1e6;
}

// galaxy-fuse's kernels against the pairs they replace, on BERT-base shapes:
// ROUNDS alternating rounds, the fastest round of each printed.
int fusedAB(int rounds) {
  std::unique_ptr<Backend> be = galaxy::rt::makeCpuBackend();
  const int64_t b = 4, s = 32, h = 768, inter = 3072, heads = 12, d = 64;
  Owned x({b, s, h}), r({b, s, h}), t({b, s, h}), y({b, s, h}), db({h});
  Owned gx({b, s, inter}), gdy({b, s, inter}), gdx({b, s, inter}), gdb({inter});
  Owned dh({b, heads, s, d});
  const Instr drop = withI(withF(op("dropout"), "p", 0.1), "op_id", 1);
  const Instr dropAdd = withI(withF(op("dropout_add"), "p", 0.1), "op_id", 1);
  const Instr dropBias =
      withI(withF(op("dropout_bias_grad"), "p", 0.1), "op_id", 1);
  using Calls = std::vector<
      std::pair<Instr, std::pair<std::vector<Owned *>, std::vector<Owned *>>>>;
  struct Case {
    const char *label;
    Calls pair, fused;
  };
  const Case cases[] = {
      {"dropout + add 128x768",
       {{drop, {{&x}, {&t}}}, {op("add"), {{&t, &r}, {&y}}}},
       {{dropAdd, {{&x, &r}, {&y}}}}},
      {"dropout + bias_grad 128x768",
       {{drop, {{&x}, {&t}}}, {op("bias_grad"), {{&t}, {&db}}}},
       {{dropBias, {{&x}, {&t, &db}}}}},
      {"gelu_grad + bias_grad 128x3072",
       {{op("gelu_grad"), {{&gx, &gdy}, {&gdx}}},
        {op("bias_grad"), {{&gdx}, {&gdb}}}},
       {{op("gelu_grad_bias_grad"), {{&gx, &gdy}, {&gdx, &gdb}}}}},
      {"merge_heads + bias_grad 4x12x32x64",
       {{op("merge_heads"), {{&dh}, {&t}}}, {op("bias_grad"), {{&t}, {&db}}}},
       {{op("merge_heads_bias_grad"), {{&dh}, {&t, &db}}}}},
  };
  std::printf("%s\n%-36s %10s %10s %6s  (fastest of %d alternating rounds)\n",
              be->gemmDescription().c_str(), "", "pair us", "fused us", "ratio",
              rounds);
  for (const Case &c : cases) {
    double pair = 1e30, fused = 1e30;
    for (int i = 0; i < rounds; ++i) {
      pair = std::min(pair, timeCalls(*be, c.pair));
      fused = std::min(fused, timeCalls(*be, c.fused));
    }
    std::printf("%-36s %10.1f %10.1f %6.2f\n", c.label, pair, fused,
                fused / pair);
  }
  return 0;
}

// The step's GEMMs (BERT-base, batch 4, seq 32) three ways, through the
// backend (per-shape library choice, bias copy): "alone", each GEMM repeated on
// the same operands (hot caches); "sequence", the 12 layers' GEMMs in the
// step's order over each layer's own weights (cold: 340 MB of weights);
// "sequence+gaps", the same with a one-thread pass over a 128x3072 activation
// between GEMMs (what the step's elementwise kernels do: the second thread
// sleeps in between, under OMP_WAIT_POLICY=PASSIVE). ROUNDS alternating rounds,
// the fastest of each printed per GEMM kind. Separates cold weights and thread
// wake-ups from the GEMM's own speed (issue 18, "fp32 step"). `bf16`: a bf16
// plan's GEMMs (weights are parameters with bf16 copies, fused SGD refreshes
// them), as galaxy-run runs them on this CPU.
int gemmStep(int rounds, bool bf16) {
  std::unique_ptr<Backend> be = galaxy::rt::makeCpuBackend();
  const int64_t b = 4, s = 32, h = 768, inter = 3072, layers = 12;
  const int64_t rows = b * s;
  struct Layer {
    Owned wq{{h, h}}, wk{{h, h}}, wv{{h, h}}, wo{{h, h}}, w1{{inter, h}},
        w2{{h, inter}}, bh{{h}}, bi{{inter}};
  };
  std::vector<std::unique_ptr<Layer>> ls;
  for (int i = 0; i < layers; ++i)
    ls.push_back(std::make_unique<Layer>());
  Owned x({b, s, h}), y({b, s, h}), hid({b, s, inter}), dhid({b, s, inter}),
      dy({b, s, h}), dx({b, s, h}), scratch({b, s, inter});
  const Instr lin = op("linear"), linN = withI(op("linear"), "transpose_w", 0);
  const Instr wgrad =
      withF(withF(op("linear_weight_grad"), "alpha", -1e-9), "beta", 1.0);
  struct Call {
    int kind;
    Instr instr;
    std::vector<Owned *> in, out;
  };
  const char *kinds[] = {"fwd x.Wt 768x768 +bias",  "fwd x.Wt 3072x768 +bias",
                         "fwd x.Wt 768x3072 +bias", "dx dy.W 768x768",
                         "dx dy.W 768x3072",        "dx dy.W 3072x768",
                         "dW 768x768 (SGD fused)",  "dW 3072x768 (SGD fused)",
                         "dW 768x3072 (SGD fused)"};
  const double flops[] = {2.0 * rows * h * h, 2.0 * rows * inter * h,
                          2.0 * rows * inter * h};
  std::vector<Call> seq;
  for (auto &l : ls) {
    for (Owned *w : {&l->wq, &l->wk, &l->wv, &l->wo})
      seq.push_back({0, lin, {&x, w, &l->bh}, {&y}});
    seq.push_back({1, lin, {&x, &l->w1, &l->bi}, {&hid}});
    seq.push_back({2, lin, {&hid, &l->w2, &l->bh}, {&y}});
  }
  for (auto it = ls.rbegin(); it != ls.rend(); ++it) {
    Layer &l = **it;
    seq.push_back({4, linN, {&dy, &l.w2}, {&dhid}});
    seq.push_back({8, wgrad, {&dy, &hid}, {&l.w2}});
    seq.push_back({5, linN, {&dhid, &l.w1}, {&dx}});
    seq.push_back({7, wgrad, {&dhid, &x}, {&l.w1}});
    for (Owned *w : {&l.wo, &l.wv, &l.wk, &l.wq}) {
      seq.push_back({3, linN, {&dy, w}, {&dx}});
      seq.push_back({6, wgrad, {&dy, &x}, {w}});
    }
  }
  KernelContext ctx{.seed = 1, .step = 1, .training = true};
  if (bf16) {
    ctx.matmulDType = galaxy::plan::MATMUL_BF16;
    ctx.weightsVersion = 1;
    for (auto &l : ls)
      for (Owned *w : {&l->wq, &l->wk, &l->wv, &l->wo, &l->w1, &l->w2})
        w->t.param = true;
  }
  auto run = [&](const Call &c) {
    std::vector<Tensor> ti, to;
    for (Owned *o : c.in)
      ti.push_back(o->t);
    for (Owned *o : c.out)
      to.push_back(o->t);
    (void)be->run(c.instr, ti, to, ctx);
  };
  constexpr int kKinds = 9;
  // best[way][kind]: fastest round's mean us per call.
  double best[3][kKinds];
  for (auto &w : best)
    std::fill(w, w + kKinds, 1e30);
  using clock = std::chrono::steady_clock;
  for (const Call &c : seq) // first use: JIT, per-shape choice
    run(c);
  for (int r = 0; r < rounds; ++r) {
    // alone: the first call of each kind, repeated
    for (int k = 0; k < kKinds; ++k) {
      const Call *c = nullptr;
      for (const Call &cc : seq)
        if (cc.kind == k && !c)
          c = &cc;
      run(*c);
      const int reps = 10;
      auto t0 = clock::now();
      for (int i = 0; i < reps; ++i)
        run(*c);
      best[0][k] = std::min(
          best[0][k], std::chrono::duration<double>(clock::now() - t0).count() /
                          reps * 1e6);
    }
    for (int way = 1; way < 3; ++way) {
      double sum[kKinds] = {}, n[kKinds] = {};
      for (const Call &c : seq) {
        if (way == 2) {
          float *p = scratch.t.f32();
          for (int64_t i = 0; i < scratch.t.numel(); ++i)
            p[i] = p[i] * 0.5f + 0.25f;
        }
        auto t0 = clock::now();
        run(c);
        sum[c.kind] += std::chrono::duration<double>(clock::now() - t0).count();
        ++n[c.kind];
      }
      for (int k = 0; k < kKinds; ++k)
        best[way][k] = std::min(best[way][k], sum[k] / n[k] * 1e6);
    }
  }
  std::printf("%s%s\n%-28s %10s %10s %14s   us per call, GFLOP/s (fastest "
              "of %d rounds)\n",
              be->gemmDescription().c_str(), bf16 ? " [bf16 plan]" : "", "",
              "alone", "sequence", "sequence+gaps", rounds);
  for (int k = 0; k < kKinds; ++k) {
    const double f = flops[k % 3 == 0 ? 0 : 1];
    std::printf("%-28s %6.0f %5.0f %6.0f %5.0f %8.0f %5.0f\n", kinds[k],
                best[0][k], f / best[0][k] * 1e-3, best[1][k],
                f / best[1][k] * 1e-3, best[2][k], f / best[2][k] * 1e-3);
  }
  double tot[3] = {}, fl = 0;
  for (const Call &c : seq) {
    const double f = flops[c.kind % 3 == 0 ? 0 : 1];
    fl += f;
    for (int w = 0; w < 3; ++w)
      tot[w] += best[w][c.kind];
  }
  std::printf("%-28s %6.1f ms %5.0f %6.1f ms %5.0f %6.1f ms %5.0f  (the "
              "step's 216 layer GEMMs)\n",
              "total", tot[0] * 1e-3, fl / tot[0] * 1e-3, tot[1] * 1e-3,
              fl / tot[1] * 1e-3, tot[2] * 1e-3, fl / tot[2] * 1e-3);
  return 0;
}

int main(int argc, char **argv) {
  galaxy::rt::cpu::prepareCpuLibraries(argv);
  if (argc > 1 && std::string(argv[1]) == "--sgemm-peak")
    return sgemmPeak();
  if (argc > 1 && std::string(argv[1]) == "--fused")
    return fusedAB(argc > 2 ? std::atoi(argv[2]) : 5);
  if (argc > 1 && std::string(argv[1]) == "--gemm-step") {
    const bool bf16 = std::string(argv[argc - 1]) == "--bf16";
    const int rest = argc - 2 - (bf16 ? 1 : 0);
    return gemmStep(rest > 0 ? std::atoi(argv[2]) : 3, bf16);
  }
  if (argc > 1) {
    std::fprintf(stderr, "usage: cpu_kernels_bench [--sgemm-peak | --fused "
                         "[ROUNDS] | --gemm-step [ROUNDS] [--bf16]]\n");
    return 2;
  }
  std::unique_ptr<Backend> be = galaxy::rt::makeCpuBackend();
  std::printf("%s\n", be->gemmDescription().c_str());
  const int64_t b = 4, s = 32, h = 768, inter = 3072, heads = 12, d = 64,
                v = 21128;
  const int64_t rows = b * s;
  Owned x({b, s, h}), y({b, s, h}), wqkv({h, h}), bias({h}), w1({inter, h}),
      b1({inter});
  Owned hidden({b, s, inter}), hidden2({b, s, inter}), dw({inter, h}),
      db({inter});
  Owned q({b, heads, s, d}), k({b, heads, s, d}), scores({b, heads, s, s}),
      probs({b, heads, s, s});
  Owned mask({b, s}), gamma({h}), beta({h}), dgamma({h}), dbeta({h}),
      dx({b, s, h});
  Owned ids({b, s}, galaxy::plan::I32), table({v, h}), dtable({v, h});
  bench(*be, "linear 128x768x768 +bias", op("linear"), {&x, &wqkv, &bias}, {&y},
        2.0 * rows * h * h);
  bench(*be, "linear 128x3072x768 +bias", op("linear"), {&x, &w1, &b1},
        {&hidden}, 2.0 * rows * inter * h);
  bench(*be, "linear dx 128x768x3072 (tw=0)",
        withI(op("linear"), "transpose_w", 0), {&hidden, &w1}, {&y},
        2.0 * rows * inter * h);
  bench(*be, "linear_weight_grad 3072x768 (128)", op("linear_weight_grad"),
        {&hidden, &x}, {&dw}, 2.0 * rows * inter * h);
  bench(*be, "bias_grad 128x3072", op("bias_grad"), {&hidden}, {&db});
  bench(*be, "matmul QK^T 48x32x32x64", withI(op("matmul"), "transpose_b", 1),
        {&q, &k}, {&scores}, 2.0 * b * heads * s * s * d);
  bench(*be, "matmul PV 48x32x64x32", op("matmul"), {&probs, &k}, {&q},
        2.0 * b * heads * s * s * d);
  bench(*be, "masked_softmax 4x12x32x32", op("masked_softmax"),
        {&scores, &mask}, {&probs});
  bench(*be, "softmax_grad 4x12x32x32", op("softmax_grad"), {&probs, &scores},
        {&probs});
  bench(*be, "split_heads 4x32x768", op("split_heads"), {&x}, {&q});
  bench(*be, "gelu 128x3072", op("gelu"), {&hidden}, {&hidden2});
  bench(*be, "gelu_grad 128x3072", op("gelu_grad"), {&hidden, &hidden},
        {&hidden2});
  bench(*be, "dropout p=0.1 128x3072",
        withI(withF(op("dropout"), "p", 0.1), "op_id", 1), {&hidden},
        {&hidden2});
  bench(*be, "layer_norm 128x768", withF(op("layer_norm"), "eps", 1e-12),
        {&x, &gamma, &beta}, {&y});
  bench(*be, "layer_norm_grad 128x768",
        withF(op("layer_norm_grad"), "eps", 1e-12), {&x, &gamma, &y},
        {&dx, &dgamma, &dbeta});
  bench(*be, "add 128x768", op("add"), {&x, &y}, {&dx});
  bench(*be, "embedding 128 rows of 21128x768", op("embedding"), {&table, &ids},
        {&x});
  bench(*be, "embedding_grad 21128x768", op("embedding_grad"), {&ids, &x},
        {&dtable});
  Instr adam = op("adamw_update");
  for (auto [key, val] : {std::pair<const char *, double>{"lr", 1e-4},
                          {"beta1", 0.9},
                          {"beta2", 0.999},
                          {"eps", 1e-8},
                          {"weight_decay", 0.01}})
    adam = withF(adam, key, val);
  Owned m({v, h}), vv({v, h});
  bench(*be, "adamw_update 21128x768", adam, {&table, &dtable, &m, &vv}, {});
  return 0;
}
