// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition="world=2 con=sp seq-sizes=2,2" | FileCheck %s
// rms_norm needs nothing beyond its ODS definition, verifier, gradient rule
// and kernels: autodiff derives rms_norm_grad, and the default partition rule
// (from the named dims) keeps a sequence-sharded input sharded and reduces the
// weight's gradient, which sums over the sharded positions.

func.func @forward(%x: tensor<2x4x8xf32> {galaxy.input = "x", galaxy.dims = [#galaxy.dims<B, S, H>]}) -> tensor<f32> {
  %loss = galaxy.block "con" layer 0 -> tensor<f32> {
    %w = galaxy.param "model.norm.weight" {init = "ones", trainable = true, galaxy.dims = [#galaxy.dims<H>]} : tensor<8xf32>
    %y = galaxy.rms_norm %x, %w {eps = 1.0e-06 : f64, galaxy.dims = [#galaxy.dims<B, S, H>]} : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %ids = galaxy.iota {dim = 1 : i64, galaxy.dims = [#galaxy.dims<B, S>]} : tensor<2x4xi32>
    %l = galaxy.cross_entropy %y, %ids {denominator = 8.0 : f64} : (tensor<2x4x8xf32>, tensor<2x4xi32>) -> tensor<f32>
    galaxy.yield %l : tensor<f32>
  }
  return %loss : tensor<f32>
}

// CHECK-LABEL: func.func @train_step
// CHECK: %[[Y:.*]] = galaxy.rms_norm {{.*}}galaxy.layout = [#galaxy.layout<S(1, [2, 2])>]
// CHECK: %[[DX:.*]], %[[DW:.*]] = galaxy.rms_norm_grad {{.*}}galaxy.backward{{.*}}galaxy.layout = [#galaxy.layout<S(1, [2, 2])>, #galaxy.layout<P>]
// CHECK: %[[R:.*]] = galaxy.all_reduce %[[DW]]
// CHECK: galaxy.sgd_update %{{.*}}, %[[R]]
