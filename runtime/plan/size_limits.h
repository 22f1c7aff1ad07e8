// The size limits every stage agrees on (config checks, lowering, plan
// loading) and the overflow-checked arithmetic that turns shapes into bytes.
// Header-only and free of protobuf, so the config library can use it too.
//
// The limits are far above any model a user means to train (a 2^40-element
// tensor is 4 TiB in fp32) and far below where int64 products of shapes
// could wrap, so a size past them is a typo or an attack, never a model.
#pragma once

#include <cstdint>
#include <optional>

namespace galaxy::plan {

// One dimension of a model (vocab_size, hidden_size, ...): ids, labels and
// positions travel as i32, so a dimension must fit in one.
constexpr int64_t kMaxDimension = (int64_t{1} << 31) - 1;
// Elements of one tensor (4 TiB of f32).
constexpr int64_t kMaxTensorElements = int64_t{1} << 40;
// Bytes of all parameters of a model, and of everything one plan allocates
// (64 TiB): sums of a few thousand tensors under these stay far from 2^63.
constexpr int64_t kMaxModelBytes = int64_t{1} << 46;
constexpr int64_t kMaxPlanBytes = int64_t{1} << 46;
// Element size of every plan tensor (f32 and i32 alike).
constexpr int64_t kElementBytes = 4;

// a·b and a+b, or nullopt when the result does not fit int64.
inline std::optional<int64_t> checkedMul(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    return std::nullopt;
  return r;
}
inline std::optional<int64_t> checkedAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return std::nullopt;
  return r;
}

// Elements of a shape: nullopt when a dimension is negative or the product
// does not fit int64. Any range of int64_t (a vector, a protobuf field).
template <typename Range>
std::optional<int64_t> checkedNumel(const Range &shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return std::nullopt;
    std::optional<int64_t> m = checkedMul(n, d);
    if (!m)
      return std::nullopt;
    n = *m;
  }
  return n;
}

// Bytes of a plan tensor of `shape`: nullopt as checkedNumel, or when the
// tensor has more than kMaxTensorElements elements.
template <typename Range>
std::optional<int64_t> checkedTensorBytes(const Range &shape) {
  std::optional<int64_t> n = checkedNumel(shape);
  if (!n || *n > kMaxTensorElements)
    return std::nullopt;
  return *n * kElementBytes;
}

} // namespace galaxy::plan
