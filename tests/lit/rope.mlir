// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition="world=2 att=sp seq-sizes=2,2" | FileCheck %s
// rope under sequence parallelism: the default partition rule (named dims)
// keeps the query positions sharded through rope, forward and backward, with
// no collective around it; each rank's kernel offsets its positions by its
// slice start (RopeOp::lowerForRank; checked on the plans in
// tests/compiler/lowering_test.cpp). The gradient is rope with inverse = true.

func.func @forward(%x: tensor<2x4x8xf32> {galaxy.input = "x", galaxy.dims = [#galaxy.dims<B, S, H>]}) -> tensor<f32> {
  %loss = galaxy.block "att" layer 0 -> tensor<f32> {
    %w = galaxy.param "q_proj.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<A, H>]} : tensor<8x8xf32>
    %q = galaxy.linear %x, %w {galaxy.dims = [#galaxy.dims<B, S, A>]} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %h = galaxy.split_heads %q {galaxy.dims = [#galaxy.dims<B, N, S, D>]} : (tensor<2x4x8xf32>) -> tensor<2x2x4x4xf32>
    %r = galaxy.rope %h {theta = 1.0e+04 : f64, galaxy.dims = [#galaxy.dims<B, N, S, D>]} : tensor<2x2x4x4xf32>
    %m = galaxy.merge_heads %r {galaxy.dims = [#galaxy.dims<B, S, A>]} : (tensor<2x2x4x4xf32>) -> tensor<2x4x8xf32>
    %ids = galaxy.iota {dim = 1 : i64, galaxy.dims = [#galaxy.dims<B, S>]} : tensor<2x4xi32>
    %l = galaxy.cross_entropy %m, %ids {denominator = 8.0 : f64} : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
    galaxy.yield %l : tensor<f32>
  }
  return %loss : tensor<f32>
}

// CHECK-LABEL: func.func @train_step
// CHECK: %[[H:.*]] = galaxy.split_heads {{.*}}galaxy.layout = [#galaxy.layout<S(2, [2, 2])>]
// CHECK-NEXT: %[[R:.*]] = galaxy.rope %[[H]] {{.*}}galaxy.layout = [#galaxy.layout<S(2, [2, 2])>]{{.*}}theta = 1.000000e+04
// CHECK-NEXT: galaxy.merge_heads %[[R]] {{.*}}galaxy.layout = [#galaxy.layout<S(1, [2, 2])>]
// CHECK: %[[DM:.*]] = galaxy.split_heads {{.*}}galaxy.backward{{.*}}galaxy.layout = [#galaxy.layout<S(2, [2, 2])>]
// CHECK-NEXT: %[[DH:.*]] = galaxy.rope %[[DM]] {{.*}}galaxy.backward{{.*}}galaxy.layout = [#galaxy.layout<S(2, [2, 2])>], inverse = true, theta = 1.000000e+04
// CHECK-NEXT: galaxy.merge_heads %[[DH]] {{.*}}galaxy.backward{{.*}}galaxy.layout = [#galaxy.layout<S(1, [2, 2])>]
