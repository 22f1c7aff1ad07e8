// The GEMM part of a BERT-base bf16 training step (12 layers of 4 x [768,768],
// [3072,768], [768,3072] parameters, 128 rows), phase by phase in process CPU
// time (steadier than wall time on a shared machine): forward x·wT, input
// gradient dy·w, fused-SGD weight gradient, and the refresh of the parameter's
// bf16 copies; "plain" (toBf16 copies, the primitive repacks B on every call)
// against "packed" (packBf16, B already in oneDNN's layout). A benchmark that
// prints figures, not a test; not built by CMake:
//   g++ -O3 -fopenmp -I. -o /tmp/bf16_linear bench/bert_step_bf16_linear.cc \
//     runtime/cpu/bf16_copies.cc -ldnnl && OMP_NUM_THREADS=2
//     OMP_WAIT_POLICY=PASSIVE /tmp/bf16_linear
#include "oneapi/dnnl/dnnl.hpp"
#include "runtime/cpu/bf16_copies.h"
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <vector>
using namespace dnnl;
using dt = memory::data_type;
using namespace galaxy::rt::cpu;
double cpu() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}
double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
engine eng(engine::kind::cpu, 0);
stream st(eng);
memory::desc mat(bool trans, int64_t r, int64_t c, int64_t ld, dt t) {
  memory::dims s = trans ? memory::dims{1, ld} : memory::dims{ld, 1};
  return memory::desc({r, c}, t, s);
}
struct W {
  int64_t N, K;
  std::vector<float> f;
  std::vector<uint16_t> plain;
  uint16_t *pk;
};
struct Mm {
  matmul p;
  memory::desc a, b, c;
};
Mm mk(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
      float beta, bool packed) {
  auto a = mat(ta, m, k, ta ? m : k, dt::bf16),
       c = mat(false, m, n, n, dt::f32);
  auto b = packed ? memory::desc({k, n}, dt::bf16, memory::format_tag::any)
                  : mat(tb, k, n, tb ? k : n, dt::bf16);
  primitive_attr attr;
  if (alpha != 1)
    attr.set_output_scales(0, {alpha});
  if (beta != 0) {
    post_ops po;
    po.append_sum(beta);
    attr.set_post_ops(po);
  }
  matmul::primitive_desc pd(matmul::desc(a, b, c), attr, eng);
  return {matmul(pd), a, pd.weights_desc(), c};
}
void ex(Mm &m, const void *a, const void *b, float *c) {
  memory am(m.a, eng, (void *)a), bm(m.b, eng, (void *)b), cm(m.c, eng, c);
  m.p.execute(st,
              {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
  st.wait();
}
int main(int argc, char **argv) {
  const int64_t M = 128;
  const int th = 2;
  std::vector<W> ws;
  for (int l = 0; l < 12; ++l)
    for (auto nk : {std::pair<int64_t, int64_t>{768, 768},
                    {768, 768},
                    {768, 768},
                    {768, 768},
                    {3072, 768},
                    {768, 3072}}) {
      W w{nk.first, nk.second};
      w.f.assign(w.N * w.K, 0.01f);
      w.plain.resize(w.N * w.K);
      w.pk = (uint16_t *)aligned_alloc(64, 4 * w.N * w.K);
      ws.push_back(std::move(w));
    }
  std::vector<uint16_t> xa(M * 3072, 0x3c00), dya(M * 3072, 0x3c00);
  std::vector<float> y(M * 3072);
  for (int round = 0; round < 4; ++round)
    for (int packed : {0, 1}) {
      std::map<std::tuple<int64_t, int64_t, int>, Mm> fw, bw, gw;
      double ph[4] = {0, 0, 0, 0};
      auto tick = [&](int i, double &c) {
        double n = cpu();
        ph[i] += n - c;
        c = n;
      };
      auto run = [&] {
        double c = cpu();
        for (auto &w : ws) { // forward
          auto key = std::make_tuple(w.N, w.K, 0);
          if (!fw.count(key))
            fw.emplace(key, mk(false, true, M, w.N, w.K, 1, 1, packed));
          ex(fw.at(key), xa.data(), packed ? w.pk : w.plain.data(), y.data());
          tick(0, c);
        }
        for (int i = ws.size() - 1; i >= 0; --i) {
          auto &w = ws[i];
          auto key = std::make_tuple(w.N, w.K, 0);
          if (!bw.count(key))
            bw.emplace(key, mk(false, false, M, w.K, w.N, 1, 0, packed));
          ex(bw.at(key), dya.data(), packed ? w.pk + w.N * w.K : w.plain.data(),
             y.data());
          tick(1, c);
          if (!gw.count(key))
            gw.emplace(key, mk(true, false, w.N, w.K, M, -1e-5f, 1, false));
          ex(gw.at(key), dya.data(), xa.data(), w.f.data());
          tick(2, c);
          if (packed)
            packBf16(w.f.data(), w.N, w.K, w.pk, w.pk + w.N * w.K, th);
          else
            toBf16(w.f.data(), w.plain.data(), w.N * w.K, th);
          tick(3, c);
        }
      };
      run();
      for (double &p : ph)
        p = 0;
      double c0 = cpu(), t0 = now();
      for (int s = 0; s < 3; ++s)
        run();
      printf("%s: %.1f ms wall %.1f ms cpu per step-linear-part\n",
             packed ? "packed" : "plain ", (now() - t0) / 3 * 1e3,
             (cpu() - c0) / 3 * 1e3);
      printf("   fwd %.1f dX %.1f dW %.1f refresh %.1f (cpu ms)\n",
             ph[0] / 3 * 1e3, ph[1] / 3 * 1e3, ph[2] / 3 * 1e3,
             ph[3] / 3 * 1e3);
    }
}
