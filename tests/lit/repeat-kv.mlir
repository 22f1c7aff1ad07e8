// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition="world=2 att=tp head-sizes=2,2" | FileCheck %s --check-prefix=EVEN
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition="world=2 att=tp head-sizes=3,1" | FileCheck %s --check-prefix=UNEVEN
// Grouped-query attention under tensor parallelism: 4 query heads (N, hidden
// A), 2 KV heads (NK, hidden AK), head_dim 4. The KV axes take the query
// heads' split where every rank's share is whole.

func.func @forward(%x: tensor<2x4x16xf32> {galaxy.input = "x", galaxy.dims = [#galaxy.dims<B, S, H>]}) -> tensor<f32> {
  %o = galaxy.block "att" layer 0 -> tensor<2x4x16xf32> {
    %wq = galaxy.param "q_proj.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<A, H>]} : tensor<16x16xf32>
    %wk = galaxy.param "k_proj.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<AK, H>]} : tensor<8x16xf32>
    %wv = galaxy.param "v_proj.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<AK, H>]} : tensor<8x16xf32>
    %wo = galaxy.param "o_proj.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<H, A>]} : tensor<16x16xf32>
    %q = galaxy.linear %x, %wq {galaxy.dims = [#galaxy.dims<B, S, A>]} : (tensor<2x4x16xf32>, tensor<16x16xf32>) -> tensor<2x4x16xf32>
    %k = galaxy.linear %x, %wk {galaxy.dims = [#galaxy.dims<B, S, AK>]} : (tensor<2x4x16xf32>, tensor<8x16xf32>) -> tensor<2x4x8xf32>
    %v = galaxy.linear %x, %wv {galaxy.dims = [#galaxy.dims<B, S, AK>]} : (tensor<2x4x16xf32>, tensor<8x16xf32>) -> tensor<2x4x8xf32>
    %qh = galaxy.split_heads %q {galaxy.dims = [#galaxy.dims<B, N, S, D>]} : (tensor<2x4x16xf32>) -> tensor<2x4x4x4xf32>
    %kh = galaxy.split_heads %k {galaxy.dims = [#galaxy.dims<B, NK, K, D>]} : (tensor<2x4x8xf32>) -> tensor<2x2x4x4xf32>
    %vh = galaxy.split_heads %v {galaxy.dims = [#galaxy.dims<B, NK, K, D>]} : (tensor<2x4x8xf32>) -> tensor<2x2x4x4xf32>
    %kr = galaxy.repeat_kv %kh {groups = 2 : i64, galaxy.dims = [#galaxy.dims<B, N, K, D>]} : (tensor<2x2x4x4xf32>) -> tensor<2x4x4x4xf32>
    %vr = galaxy.repeat_kv %vh {groups = 2 : i64, galaxy.dims = [#galaxy.dims<B, N, K, D>]} : (tensor<2x2x4x4xf32>) -> tensor<2x4x4x4xf32>
    %s = galaxy.matmul %qh, %kr {transpose_b = true, alpha = 0.5 : f64, galaxy.dims = [#galaxy.dims<B, N, S, K>]} : (tensor<2x4x4x4xf32>, tensor<2x4x4x4xf32>) -> tensor<2x4x4x4xf32>
    %p = galaxy.masked_softmax %s {causal = true, galaxy.dims = [#galaxy.dims<B, N, S, K>]} : (tensor<2x4x4x4xf32>) -> tensor<2x4x4x4xf32>
    %c = galaxy.matmul %p, %vr {galaxy.dims = [#galaxy.dims<B, N, S, D>]} : (tensor<2x4x4x4xf32>, tensor<2x4x4x4xf32>) -> tensor<2x4x4x4xf32>
    %m = galaxy.merge_heads %c {galaxy.dims = [#galaxy.dims<B, S, A>]} : (tensor<2x4x4x4xf32>) -> tensor<2x4x16xf32>
    %y = galaxy.linear %m, %wo {galaxy.dims = [#galaxy.dims<B, S, H>]} : (tensor<2x4x16xf32>, tensor<16x16xf32>) -> tensor<2x4x16xf32>
    galaxy.yield %y : tensor<2x4x16xf32>
  }
  %loss = galaxy.block "head" layer -1 -> tensor<f32> {
    %ids = galaxy.iota {dim = 1 : i64, galaxy.dims = [#galaxy.dims<B, S>]} : tensor<2x4xi32>
    %l = galaxy.cross_entropy %o, %ids {denominator = 8.0 : f64} : (tensor<2x4x16xf32>, tensor<2x4xi32>) -> tensor<f32>
    galaxy.yield %l : tensor<f32>
  }
  return %loss : tensor<f32>
}

// Head sizes 2,2: each rank holds 2 query heads and their 1 KV head; k's
// projection is split by rows [4, 4] (one head_dim each); nothing is
// communicated between the projections and the scores, or back.
// EVEN-LABEL: func.func @train_step
// EVEN: galaxy.param "k_proj.weight" {{.*}}galaxy.layout = [#galaxy.layout<S(0, [4, 4])>]
// EVEN: %[[K:.*]] = galaxy.linear {{.*}}galaxy.layout = [#galaxy.layout<S(2, [4, 4])>]
// EVEN-NOT: galaxy.all_
// EVEN: %[[KH:.*]] = galaxy.split_heads %[[K]] {{.*}}galaxy.layout = [#galaxy.layout<S(1, [1, 1])>]
// EVEN-NOT: galaxy.all_
// EVEN: %[[KR:.*]] = galaxy.repeat_kv %[[KH]] {{.*}}galaxy.layout = [#galaxy.layout<S(1, [2, 2])>]
// EVEN-NOT: galaxy.all_
// EVEN: galaxy.matmul %{{.*}}, %[[KR]] {{.*}}galaxy.layout = [#galaxy.layout<S(1, [2, 2])>]
// EVEN: %[[DK:.*]] = galaxy.repeat_kv_grad {{.*}}galaxy.backward{{.*}}galaxy.layout = [#galaxy.layout<S(1, [1, 1])>]
// EVEN-NOT: galaxy.all_
// EVEN: galaxy.merge_heads %[[DK]] {{.*}}galaxy.layout = [#galaxy.layout<S(2, [4, 4])>]

// Head sizes 3,1: 2 KV heads do not split 3:1, so they stay whole (the
// projection's output is gathered) and each rank expands them into its own
// query heads; the KV gradient is then a partial sum, reduced.
// UNEVEN-LABEL: func.func @train_step
// UNEVEN: %[[KH:.*]] = galaxy.split_heads {{.*}}galaxy.layout = [#galaxy.layout<R>]
// UNEVEN: galaxy.repeat_kv %[[KH]] {{.*}}galaxy.layout = [#galaxy.layout<S(1, [3, 1])>]
// UNEVEN: %[[DK:.*]] = galaxy.repeat_kv_grad {{.*}}galaxy.backward{{.*}}galaxy.layout = [#galaxy.layout<P>]
