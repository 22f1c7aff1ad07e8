#include "runtime/cuda/cuda_backend.h"

#include <cstdlib>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "absl/strings/str_format.h"
#include "runtime/cuda/cuda_ops.h"
#include "runtime/cuda/cuda_status.h"

namespace galaxy::rt::cuda {
namespace {

const std::unordered_map<std::string_view, CudaKernelFn> &kernelTable() {
  static const auto *table =
      new std::unordered_map<std::string_view, CudaKernelFn>{
          {"fill", fillOp},
          {"iota", iotaOp},
          {"embedding", embeddingOp},
          {"embedding_grad", embeddingGradOp},
          {"add", addOp},
          {"mul", mulOp},
          {"scale", scaleOp},
          {"linear", linearOp},
          {"linear_weight_grad", linearWeightGradOp},
          {"bias_grad", biasGradOp},
          {"matmul", matmulOp},
          {"split_heads", splitHeadsOp},
          {"merge_heads", mergeHeadsOp},
          {"merge_heads_bias_grad", mergeHeadsBiasGradOp},
          {"repeat_kv", repeatKvOp},
          {"repeat_kv_grad", repeatKvGradOp},
          {"rope", ropeOp},
          {"masked_softmax", maskedSoftmaxOp},
          {"softmax_grad", softmaxGradOp},
          {"layer_norm", layerNormOp},
          {"layer_norm_grad", layerNormGradOp},
          {"rms_norm", rmsNormOp},
          {"rms_norm_grad", rmsNormGradOp},
          {"gelu", geluOp},
          {"gelu_grad", geluGradOp},
          {"gelu_grad_bias_grad", geluGradBiasGradOp},
          {"relu", reluOp},
          {"relu_grad", reluGradOp},
          {"silu", siluOp},
          {"silu_grad", siluGradOp},
          {"tanh", tanhOp},
          {"tanh_grad", tanhGradOp},
          {"dropout", dropoutOp},
          {"dropout_add", dropoutAddOp},
          {"dropout_bias_grad", dropoutBiasGradOp},
          {"take_token", takeTokenOp},
          {"take_token_grad", takeTokenGradOp},
          {"cross_entropy", crossEntropyOp},
          {"cross_entropy_grad", crossEntropyGradOp},
          {"sgd_update", sgdUpdateOp},
          {"adamw_update", adamwUpdateOp},
      };
  return *table;
}

class CudaBackend final : public Backend, public DeviceMemory {
public:
  ~CudaBackend() override {
    cudaSetDevice(device_);
    if (stream_)
      cudaStreamSynchronize(stream_);
    if (env_.badRow)
      cudaFree(env_.badRow);
    if (env_.blas)
      cublasDestroy(env_.blas);
    if (stream_)
      cudaStreamDestroy(stream_);
  }

  static absl::StatusOr<std::unique_ptr<CudaBackend>>
  create(const CudaBackendOptions &o) {
    absl::StatusOr<int> count = visibleDeviceCount();
    if (!count.ok())
      return count.status();
    if (o.device < 0 || o.device >= *count)
      return absl::InvalidArgumentError(absl::StrFormat(
          "CUDA device %d does not exist: %d visible (0..%d; check "
          "CUDA_VISIBLE_DEVICES and LOCAL_RANK)",
          o.device, *count, *count - 1));
    std::unique_ptr<CudaBackend> b(new CudaBackend(o.device));
    GALAXY_CUDA_RETURN_IF_ERROR(
        cudaStatus(cudaSetDevice(o.device), "cudaSetDevice"));
    // A blocking stream: work on the legacy default stream (a communicator
    // given no stream) stays ordered with the kernels.
    GALAXY_CUDA_RETURN_IF_ERROR(
        cudaStatus(cudaStreamCreate(&b->stream_), "cudaStreamCreate"));
    b->env_.stream = b->stream_;
    GALAXY_CUDA_RETURN_IF_ERROR(
        cublasStatus(cublasCreate(&b->env_.blas), "cublasCreate"));
    GALAXY_CUDA_RETURN_IF_ERROR(cublasStatus(
        cublasSetStream(b->env_.blas, b->stream_), "cublasSetStream"));
    bool tf32 = o.tf32 > 0;
    if (o.tf32 < 0) {
      const char *env = std::getenv("GALAXY_TF32");
      tf32 = env && std::string_view(env) == "1";
    }
    GALAXY_CUDA_RETURN_IF_ERROR(cublasStatus(
        cublasSetMathMode(b->env_.blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                             : CUBLAS_DEFAULT_MATH),
        "cublasSetMathMode"));
    GALAXY_CUDA_RETURN_IF_ERROR(cudaStatus(
        cudaMalloc(reinterpret_cast<void **>(&b->env_.badRow), sizeof(int32_t)),
        "cudaMalloc"));
    b->env_.scratch = &b->scratch_;
    cudaDeviceProp prop{};
    GALAXY_CUDA_RETURN_IF_ERROR(cudaStatus(
        cudaGetDeviceProperties(&prop, o.device), "cudaGetDeviceProperties"));
    b->description_ = absl::StrFormat(
        "cuBLAS sgemm on GPU %d (%s, sm_%d%d), %s", o.device, prop.name,
        prop.major, prop.minor,
        tf32 ? "TF32 tensor cores (GALAXY_TF32=1)" : "exact fp32");
    return b;
  }

  std::string name() const override { return "cuda"; }
  std::string gemmDescription() const override { return description_; }
  bool implements(std::string_view kernel) const override {
    return kernelTable().count(kernel) != 0;
  }

  absl::Status run(const plan::Instr &instr, const std::vector<Tensor> &in,
                   const std::vector<Tensor> &out,
                   const KernelContext &ctx) override {
    const auto &table = kernelTable();
    auto it = table.find(instr.kernel());
    if (it == table.end())
      return absl::InvalidArgumentError(absl::StrFormat(
          "unknown kernel '%s' (block '%s'): the CUDA backend runs the compute "
          "kernels of docs/kernels.md only (data movement is the "
          "executor's)",
          instr.kernel(), instr.block()));
    GALAXY_CUDA_RETURN_IF_ERROR(
        cudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
    static const cpu::CpuEnv kNoCpu; // the shared checks never read it
    const cpu::KernelCall call{
        instr, in, out, ctx, kNoCpu, schema::findKernel(instr.kernel())};
    return it->second(CudaOp{call, env_});
  }

  // --- DeviceMemory ---
  int device() const override { return device_; }
  void *stream() const override { return stream_; }

  absl::StatusOr<void *> allocate(size_t bytes) override {
    GALAXY_CUDA_RETURN_IF_ERROR(
        cudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
    void *p = nullptr;
    if (bytes == 0)
      return p;
    if (cudaError_t e = cudaMalloc(&p, bytes); e != cudaSuccess) {
      cudaGetLastError(); // clear the sticky-free out-of-memory error
      size_t freeB = 0, totalB = 0;
      cudaMemGetInfo(&freeB, &totalB);
      return absl::ResourceExhaustedError(absl::StrFormat(
          "cannot allocate %d bytes on GPU %d (%s); %d of %d bytes free: "
          "use a smaller batch_size or more ranks",
          bytes, device_, cudaGetErrorString(e), freeB, totalB));
    }
    GALAXY_CUDA_RETURN_IF_ERROR(fillZero(p, bytes));
    return p;
  }
  void release(void *p) override {
    if (!p)
      return;
    cudaSetDevice(device_);
    cudaFree(p);
  }
  absl::Status copyToDevice(void *dst, const void *src, size_t bytes) override {
    return copy(dst, src, bytes, cudaMemcpyHostToDevice, "copy to the GPU");
  }
  absl::Status copyToHost(void *dst, const void *src, size_t bytes) override {
    GALAXY_CUDA_RETURN_IF_ERROR(
        copy(dst, src, bytes, cudaMemcpyDeviceToHost, "copy from the GPU"));
    return synchronize();
  }
  absl::Status copyOnDevice(void *dst, const void *src, size_t bytes) override {
    return copy(dst, src, bytes, cudaMemcpyDeviceToDevice, "copy on the GPU");
  }
  absl::Status copy2D(void *dst, size_t dstPitch, const void *src,
                      size_t srcPitch, size_t rowBytes, size_t rows) override {
    if (rowBytes == 0 || rows == 0)
      return absl::OkStatus();
    return cudaStatus(cudaMemcpy2DAsync(dst, dstPitch, src, srcPitch, rowBytes,
                                        rows, cudaMemcpyDeviceToDevice,
                                        stream_),
                      "strided copy on the GPU");
  }
  absl::Status fillZero(void *dst, size_t bytes) override {
    if (bytes == 0)
      return absl::OkStatus();
    return cudaStatus(cudaMemsetAsync(dst, 0, bytes, stream_),
                      "zero-fill on the GPU");
  }
  absl::Status synchronize() override {
    GALAXY_CUDA_RETURN_IF_ERROR(
        cudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
    return cudaStatus(cudaStreamSynchronize(stream_),
                      "a GPU kernel failed (rerun with CUDA_LAUNCH_BLOCKING=1 "
                      "to name it)");
  }

private:
  explicit CudaBackend(int device) : device_(device) {}

  absl::Status copy(void *dst, const void *src, size_t bytes,
                    cudaMemcpyKind kind, const char *what) {
    if (bytes == 0)
      return absl::OkStatus();
    GALAXY_CUDA_RETURN_IF_ERROR(
        cudaStatus(cudaSetDevice(device_), "cudaSetDevice"));
    return cudaStatus(cudaMemcpyAsync(dst, src, bytes, kind, stream_), what);
  }

  int device_;
  cudaStream_t stream_ = nullptr;
  CudaEnv env_;
  DeviceScratch scratch_;
  std::string description_;
};

} // namespace

DeviceScratch::~DeviceScratch() {
  if (ptr_)
    cudaFree(ptr_);
}

absl::StatusOr<void *> DeviceScratch::get(size_t bytes) {
  if (bytes <= bytes_)
    return ptr_;
  // cudaFree waits for the kernels still reading the old buffer.
  if (ptr_)
    cudaFree(ptr_);
  ptr_ = nullptr;
  bytes_ = 0;
  const size_t want = bytes + bytes / 2; // room to grow without reallocating
  GALAXY_CUDA_RETURN_IF_ERROR(
      cudaStatus(cudaMalloc(&ptr_, want), "CUDA backend scratch"));
  bytes_ = want;
  return ptr_;
}

absl::Status launched(const CudaOp &op, int err) {
  if (err == 0)
    return absl::OkStatus();
  return cudaStatus(err,
                    absl::StrFormat("kernel '%s' (block '%s')",
                                    op.c.instr.kernel(), op.c.instr.block()));
}

absl::Status resetBadRow(const CudaOp &op, int64_t rows) {
  return launched(op, launchFillI32(op.env.badRow, 1,
                                    static_cast<int32_t>(rows), op.env.stream));
}

absl::StatusOr<int64_t> firstBadRow(const CudaOp &op, std::string_view what) {
  cudaStream_t st = static_cast<cudaStream_t>(op.env.stream);
  int32_t bad = 0;
  GALAXY_CUDA_RETURN_IF_ERROR(
      cudaStatus(cudaMemcpyAsync(&bad, op.env.badRow, sizeof bad,
                                 cudaMemcpyDeviceToHost, st),
                 what));
  GALAXY_CUDA_RETURN_IF_ERROR(cudaStatus(cudaStreamSynchronize(st), what));
  return bad;
}

absl::StatusOr<int32_t> deviceI32At(const CudaOp &op, const int32_t *data,
                                    int64_t at, std::string_view what) {
  int32_t v = 0;
  GALAXY_CUDA_RETURN_IF_ERROR(cudaStatus(
      cudaMemcpy(&v, data + at, sizeof v, cudaMemcpyDeviceToHost), what));
  return v;
}

absl::StatusOr<std::pair<int64_t, int64_t>> deviceMemoryInfo(int device) {
  GALAXY_CUDA_RETURN_IF_ERROR(
      cudaStatus(cudaSetDevice(device), "cudaSetDevice"));
  size_t freeB = 0, totalB = 0;
  GALAXY_CUDA_RETURN_IF_ERROR(
      cudaStatus(cudaMemGetInfo(&freeB, &totalB), "cudaMemGetInfo"));
  return std::pair<int64_t, int64_t>{int64_t(freeB), int64_t(totalB)};
}

absl::StatusOr<int> visibleDeviceCount() {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return absl::UnavailableError(
        absl::StrFormat("no usable GPU: cudaGetDeviceCount says %s (%s)",
                        cudaGetErrorName(e), cudaGetErrorString(e)));
  }
  if (n == 0)
    return absl::UnavailableError(
        "no usable GPU: cudaGetDeviceCount found 0 devices");
  return n;
}

absl::StatusOr<std::unique_ptr<Backend>>
createCudaBackend(const CudaBackendOptions &options) {
  absl::StatusOr<std::unique_ptr<CudaBackend>> b = CudaBackend::create(options);
  if (!b.ok())
    return b.status();
  return std::unique_ptr<Backend>(std::move(*b));
}

DeviceMemory *deviceMemoryOf(Backend &backend) {
  return dynamic_cast<DeviceMemory *>(&backend);
}

} // namespace galaxy::rt::cuda

namespace galaxy::rt {

std::unique_ptr<Backend> makeCudaBackend(int device) {
  cuda::CudaBackendOptions o;
  o.device = device;
  absl::StatusOr<std::unique_ptr<Backend>> b = cuda::createCudaBackend(o);
  return b.ok() ? std::move(*b) : nullptr;
}

} // namespace galaxy::rt
