// RUN: galaxy-opt %s | galaxy-opt | FileCheck %s --check-prefix=PRINT
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff | FileCheck %s --check-prefix=GRAD
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition="world=2 con=dp batch-sizes=1,1" | FileCheck %s --check-prefix=DP
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition="world=2 con=sp seq-sizes=3,1" | FileCheck %s --check-prefix=SP
// A causal LM's loss is the mean over every target of the global batch: the
// data loader counts them (num_targets, a 0-d program input) and
// cross_entropy divides its sum by denominator·count. The count is
// replicated in every region, so each rank divides its local sum by the
// global count and the partial losses add up to the serial loss.

func.func @forward(%x: tensor<2x4x8xf32> {galaxy.input = "x", galaxy.dims = [#galaxy.dims<B, S, H>]},
                   %y: tensor<2x4xi32> {galaxy.input = "labels", galaxy.dims = [#galaxy.dims<B, S>]},
                   %n: tensor<f32> {galaxy.input = "num_targets", galaxy.dims = [#galaxy.dims<>]}) -> tensor<f32> {
  %loss = galaxy.block "con" layer 0 -> tensor<f32> {
    %w = galaxy.param "lm_head.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<V, H>]} : tensor<16x8xf32>
    %l = galaxy.linear %x, %w {galaxy.dims = [#galaxy.dims<B, S, V>]} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
    %c = galaxy.cross_entropy %l, %y, %n {denominator = 1.0 : f64} : (tensor<2x4x16xf32>, tensor<2x4xi32>, tensor<f32>) -> tensor<f32>
    galaxy.yield %c : tensor<f32>
  }
  return %loss : tensor<f32>
}

// The optional operand prints back as written; absent, the op prints as before.
// PRINT: galaxy.cross_entropy %{{.*}}, %{{.*}}, %arg2 {denominator = 1.000000e+00 : f64} : (tensor<2x4x16xf32>, tensor<2x4xi32>, tensor<f32>) -> tensor<f32>

// Autodiff passes the count to the gradient, which scales by 1/(denominator·count).
// GRAD-LABEL: func.func @train_step
// GRAD: galaxy.cross_entropy_grad %{{.*}}, %arg1, %{{.*}}, %arg2 {denominator = 1.000000e+00 : f64, {{.*}}} : (tensor<2x4x16xf32>, tensor<2x4xi32>, tensor<f32>, tensor<f32>) -> tensor<2x4x16xf32>

// Data parallel: logits and labels split by rows, the count whole (the program input
// itself, never sliced); the loss is a partial sum, reduced once.
// DP-LABEL: func.func @train_step
// DP-NOT: galaxy.slice %arg2
// DP: %[[L:.*]] = galaxy.linear {{.*}}galaxy.layout = [#galaxy.layout<S(0, [1, 1])>]
// DP: %[[Y:.*]] = galaxy.slice %arg1 {dim = 0 : i64
// DP: %[[C:.*]] = galaxy.cross_entropy %[[L]], %[[Y]], %arg2 {{.*}}galaxy.layout = [#galaxy.layout<P>]
// DP: galaxy.cross_entropy_grad %[[L]], %[[Y]], %{{.*}}, %arg2 {{.*}}galaxy.layout = [#galaxy.layout<S(0, [1, 1])>]
// DP: galaxy.all_reduce %[[C]]

// Sequence parallel (uneven, 3 + 1 positions): the same along the sequence.
// SP-LABEL: func.func @train_step
// SP-NOT: galaxy.slice %arg2
// SP: %[[L:.*]] = galaxy.linear {{.*}}galaxy.layout = [#galaxy.layout<S(1, [3, 1])>]
// SP: %[[Y:.*]] = galaxy.slice %arg1 {dim = 1 : i64
// SP: %[[C:.*]] = galaxy.cross_entropy %[[L]], %[[Y]], %arg2 {{.*}}galaxy.layout = [#galaxy.layout<P>]
// SP: galaxy.cross_entropy_grad %[[L]], %[[Y]], %{{.*}}, %arg2 {{.*}}galaxy.layout = [#galaxy.layout<S(1, [3, 1])>]
// SP: galaxy.all_reduce %[[C]]
