// What `galaxy-run --calibrate` measures on one rank (tools/galaxy-run/
// calibrate.cpp gathers it into runtime/plan/devices.proto): GEMM and
// elementwise throughput through the rank's own Backend at the model's
// shapes, and latency and bandwidth through the real Communicator.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend.h"
#include "runtime/comm/communicator.h"
#include "runtime/cuda/device_memory.h"

namespace galaxy::rt {

// The shapes of one transformer layer's linears, from a galaxyc config's keys
// (BERT / LLaMA / BART names: hidden_size or d_model, intermediate_size or
// encoder_ffn_dim, num_attention_heads and num_key_value_heads, batch_size,
// pad_size, dtype, inference). Defaults: BERT-base at batch 4 x seq 32.
struct CalibrationShapes {
  std::string model = "bert";
  int64_t rows = 4 * 32; // batch_size x pad_size: every linear's M
  int64_t hidden = 768, intermediate = 3072;
  int64_t kvHidden = 768; // key/value projections' width (LLaMA's GQA)
  plan::MatmulDType matmul = plan::MATMUL_F32;
  bool training = true; // false: forward GEMMs only (inference configs)
};
absl::StatusOr<CalibrationShapes>
calibrationShapesFromConfig(const std::string &json, const std::string &origin);

// One GEMM of a layer as the plan runs it: `kernel` "linear" with
// transpose_w 1 (forward, y = x·Wᵀ) or 0 (dx = dy·W), or "linear_weight_grad"
// (dW = dyᵀ·x); C[m,n] += A[m,k]·B[k,n], `count` times per layer.
struct GemmCase {
  std::string label; // "fwd 128x768x3072" (M x K x N), "dx ...", "dW ..."
  std::string kernel;
  int transposeW = 1;
  int64_t m = 0, n = 0, k = 0;
  int count = 1;
  double flops() const { return 2.0 * double(m) * double(n) * double(k); }
};
// The GEMMs of one layer's linears (forward, and dx, dW when training).
std::vector<GemmCase> layerGemms(const CalibrationShapes &shapes);

// The row counts measureCompute times a layer's linears at: rows, and rows
// / 2, / 4, / 8 where whole and at least 1, ascending.
std::vector<int64_t> calibrationRows(int64_t rows);

struct MeasureOptions {
  double windowS = 0.15; // wall time each kernel is repeated for
  // Called before each timed window (a barrier), so co-located ranks contend
  // for the cores while measuring as they do while training.
  std::function<absl::Status()> together;
  // Progress, one line per measured case.
  std::function<void(const std::string &)> progress;
};

struct ComputeFigures {
  // Σ count·flops / Σ count·seconds over layerGemms: a layer's linears.
  double gflops = 0;
  std::vector<double> caseGflops; // per layerGemms() entry
  // A layer's linears at fewer rows too (a pipeline's microbatches: rows / 2,
  // / 4, / 8 where whole), with `gflops` at rows: (rows, GFLOP/s) by rows
  // ascending (Device.gemm_at_rows).
  std::vector<std::pair<int64_t, double>> gflopsByRows;
  // Bytes moved per second by `add` over [rows, intermediate] (two reads, one
  // write): the model's largest activation.
  double elementwiseGbps = 0;
};

// Times each case through `backend` (its real kernels: the CPU backend's
// per-shape GEMM choice, cuBLAS on CUDA), operands in `device` memory when
// given (the CUDA backend's), else in host memory.
absl::StatusOr<ComputeFigures> measureCompute(Backend &backend,
                                              DeviceMemory *device,
                                              const CalibrationShapes &shapes,
                                              const MeasureOptions &options);

// Every rank's `mine` (the same length on each), concatenated in rank order;
// through `device` memory when given (a communicator of device buffers).
absl::StatusOr<std::vector<float>> gatherFloats(comm::Communicator &comm,
                                                DeviceMemory *device,
                                                const std::vector<float> &mine);

// t(bytes) = latency + bytes / bandwidth, by least squares of the relative
// error over (bytes, seconds) points; a negative latency refits through the
// origin, and a non-positive slope (noise) is replaced by the largest point's
// bytes / seconds.
struct LinearFit {
  double latencyS = 0, bytesPerS = 0;
};
LinearFit
fitLatencyBandwidth(const std::vector<std::pair<double, double>> &pts);

// A collective's cost from its last rank's arrival, what a training step
// pays beyond its ranks' load imbalance: byRank[r][c] is call c as rank r
// timed it from its own arrival (every rank the same calls), the last to
// arrive times the shortest; the mean over the calls of that shortest (a
// step pays the sum of its collectives: on a shared core a call costs either
// about nothing or about a scheduler tick, and a median would pick one),
// less the highest and lowest eighth (a stall by other load).
double costFromLastArrival(const std::vector<std::vector<double>> &byRank);

struct PairFigures {
  int a = 0, b = 0; // world ranks, a < b
  double latencyUs = 0, bandwidthGbps = 0;
};
// All-reduces of several sizes (1 KiB .. 4 MiB), the ranks arriving
// staggered as in a step, each call's cost from its last arrival
// (costFromLastArrival), fitted under the ring model
// the planner prices collectives with: over g ranks t = 2(g-1)·latency +
// 2(g-1)/g · bytes/bandwidth, so latency_us is one step's fixed cost and
// bandwidth_gbps one rank's link (gigabits per second).
struct NetworkFigures {
  double latencyUs = 0, bandwidthGbps = 0; // over the whole communicator
  // Every pair's own all-reduces (a 2-rank split; with 2 ranks, the world's
  // figures). Filled on every rank.
  std::vector<PairFigures> links;
};

// Collective over `comm` (size >= 2): buffers in `device` memory when given
// (NCCL), else host memory (Gloo). Pairs are measured in rounds of disjoint
// pairs at once (the circle method), so N ranks take N-1 (or N) rounds, not
// N²/2.
absl::StatusOr<NetworkFigures> measureNetwork(comm::Communicator &comm,
                                              DeviceMemory *device,
                                              const MeasureOptions &options);

} // namespace galaxy::rt
