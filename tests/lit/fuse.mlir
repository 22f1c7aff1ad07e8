// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition --galaxy-fuse | FileCheck %s
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition="world=2 con=dp other=dp batch-sizes=1,1" --galaxy-fuse | FileCheck %s --check-prefix=DP
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition --galaxy-fuse="dropout-add=false dropout-bias-grad=false" | FileCheck %s --check-prefix=OFF
// galaxy-fuse: a residual connection's add(dropout(y), x) becomes dropout_add,
// and the backward dropout that a bias_grad reads becomes dropout_bias_grad
// (its first result replaces the dropout for the other readers). Under data
// parallelism the same pairs fuse and the fused op carries both results'
// layouts (the bias gradient stays a partial sum, reduced after).

func.func @forward(%x: tensor<2x4x8xf32> {galaxy.input = "x", galaxy.dims = [#galaxy.dims<B, S, H>]}) -> tensor<f32> {
  %loss = galaxy.block "con" layer 0 -> tensor<f32> {
    %w = galaxy.param "dense.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<H, H>]} : tensor<8x8xf32>
    %b = galaxy.param "dense.bias" {init = "zeros", trainable = true, galaxy.dims = [#galaxy.dims<H>]} : tensor<8xf32>
    %y = galaxy.linear %x, %w, %b {galaxy.dims = [#galaxy.dims<B, S, H>]} : (tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %d = galaxy.dropout %y {p = 0.1 : f64, op_id = 3 : i64, galaxy.dims = [#galaxy.dims<B, S, H>]} : tensor<2x4x8xf32>
    %s = galaxy.add %d, %x {galaxy.dims = [#galaxy.dims<B, S, H>]} : tensor<2x4x8xf32>
    %ids = galaxy.iota {dim = 1 : i64, galaxy.dims = [#galaxy.dims<B, S>]} : tensor<2x4xi32>
    %l = galaxy.cross_entropy %s, %ids {denominator = 8.0 : f64} : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
    galaxy.yield %l : tensor<f32>
  }
  return %loss : tensor<f32>
}

// CHECK-LABEL: func.func @forward
// CHECK-NOT: galaxy.dropout
// CHECK: %[[Y:.*]] = galaxy.linear
// CHECK-NEXT: galaxy.dropout_add %[[Y]], %arg0 {{.*}}op_id = 3 : i64, p = 1.000000e-01 : f64} : tensor<2x4x8xf32>
// CHECK-LABEL: func.func @train_step
// CHECK: galaxy.dropout_add
// CHECK-NOT: galaxy.add
// CHECK: %[[DY:.*]] = galaxy.cross_entropy_grad
// CHECK-NEXT: %[[D:.*]], %[[DB:.*]] = galaxy.dropout_bias_grad %[[DY]] {galaxy.backward, {{.*}}galaxy.dims = [#galaxy.dims<B, S, H>, #galaxy.dims<H>]{{.*}}galaxy.layout = [#galaxy.layout<R>, #galaxy.layout<R>], op_id = 3 : i64, p = 1.000000e-01 : f64} : (tensor<2x4x8xf32>) -> (tensor<2x4x8xf32>, tensor<8xf32>)
// CHECK-NEXT: galaxy.linear_weight_grad %[[D]], %arg0
// CHECK-NOT: galaxy.bias_grad
// CHECK: galaxy.sgd_update %{{.*}}, %[[DB]]

// DP-LABEL: func.func @train_step
// DP: galaxy.dropout_add {{.*}}galaxy.layout = [#galaxy.layout<S(0, [1, 1])>]
// DP: %{{.*}}, %[[DB:.*]] = galaxy.dropout_bias_grad {{.*}}galaxy.layout = [#galaxy.layout<S(0, [1, 1])>, #galaxy.layout<P>]
// DP: galaxy.all_reduce %[[DB]]

// OFF-LABEL: func.func @train_step
// OFF-NOT: galaxy.dropout_
// OFF: galaxy.dropout %{{.*}} {galaxy.block
// OFF-NEXT: galaxy.add
// OFF: galaxy.dropout %{{.*}} {galaxy.backward
// OFF: galaxy.bias_grad
