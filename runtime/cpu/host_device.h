// Header-only helpers shared with the CUDA backend are plain functions on the
// host and __host__ __device__ under nvcc.
#pragma once

#if defined(__CUDACC__)
#define GALAXY_HOST_DEVICE __host__ __device__
#else
#define GALAXY_HOST_DEVICE
#endif
