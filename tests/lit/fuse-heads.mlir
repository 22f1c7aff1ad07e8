// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition --galaxy-fuse | FileCheck %s
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition="world=2 att=tp head-sizes=1,1" --galaxy-fuse | FileCheck %s --check-prefix=TP
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition --galaxy-fuse="merge-heads-bias-grad=false" | FileCheck %s --check-prefix=OFF
// galaxy-fuse: an attention projection's bias gradient, bias_grad of the
// merge_heads that is split_heads' gradient, becomes merge_heads_bias_grad;
// the projection's other backward readers read its first result. Under tensor
// parallelism (heads sharded) both results keep their sharded layouts.

func.func @forward(%x: tensor<2x4x8xf32> {galaxy.input = "x", galaxy.dims = [#galaxy.dims<B, S, H>]}) -> tensor<f32> {
  %loss = galaxy.block "att" layer 0 -> tensor<f32> {
    %w = galaxy.param "q_proj.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<A, H>]} : tensor<8x8xf32>
    %b = galaxy.param "q_proj.bias" {init = "zeros", trainable = true, galaxy.dims = [#galaxy.dims<A>]} : tensor<8xf32>
    %q = galaxy.linear %x, %w, %b {galaxy.dims = [#galaxy.dims<B, S, A>]} : (tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %h = galaxy.split_heads %q {galaxy.dims = [#galaxy.dims<B, N, S, D>]} : (tensor<2x4x8xf32>) -> tensor<2x2x4x4xf32>
    %m = galaxy.merge_heads %h {galaxy.dims = [#galaxy.dims<B, S, A>]} : (tensor<2x2x4x4xf32>) -> tensor<2x4x8xf32>
    %ids = galaxy.iota {dim = 1 : i64, galaxy.dims = [#galaxy.dims<B, S>]} : tensor<2x4xi32>
    %l = galaxy.cross_entropy %m, %ids {denominator = 8.0 : f64} : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
    galaxy.yield %l : tensor<f32>
  }
  return %loss : tensor<f32>
}

// CHECK-LABEL: func.func @train_step
// CHECK: galaxy.merge_heads %{{.*}} {galaxy.block
// CHECK: %[[M:.*]], %[[DB:.*]] = galaxy.merge_heads_bias_grad %{{.*}} {galaxy.backward, {{.*}}galaxy.dims = [#galaxy.dims<B, S, A>, #galaxy.dims<A>]{{.*}} : (tensor<2x2x4x4xf32>) -> (tensor<2x4x8xf32>, tensor<8xf32>)
// CHECK-NOT: galaxy.bias_grad
// CHECK: galaxy.linear_weight_grad %[[M]], %arg0
// CHECK: galaxy.sgd_update %{{.*}}, %[[DB]]

// TP-LABEL: func.func @train_step
// TP: galaxy.merge_heads_bias_grad {{.*}}galaxy.layout = [#galaxy.layout<S(2, [4, 4])>, #galaxy.layout<S(0, [4, 4])>]

// OFF-LABEL: func.func @train_step
// OFF-NOT: merge_heads_bias_grad
// OFF: galaxy.bias_grad
