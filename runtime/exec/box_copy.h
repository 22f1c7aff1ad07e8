// Copies boxes (per-dim offset + extent) between a dense row-major array of a
// larger shape and a dense array of the box's own shape. Element size is a
// parameter: the data-movement paths treat f32 and i32 alike.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace galaxy::rt {

int64_t product(std::span<const int64_t> shape);

// dst[box] = src[offset + box index] where src has shape `full`.
void extractBox(const void *src, std::span<const int64_t> full,
                std::span<const int64_t> offset, std::span<const int64_t> box,
                void *dst, size_t elemSize);

// dst[offset + box index] = src[box index] where dst has shape `full`.
void insertBox(const void *src, std::span<const int64_t> box, void *dst,
               std::span<const int64_t> full, std::span<const int64_t> offset,
               size_t elemSize);

// True when the box lies inside `full` (same rank, non-negative offsets).
bool boxInside(std::span<const int64_t> full, std::span<const int64_t> offset,
               std::span<const int64_t> box);

} // namespace galaxy::rt
