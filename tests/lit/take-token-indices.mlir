// RUN: galaxy-opt %s | galaxy-opt | FileCheck %s --check-prefix=PRINT
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff | FileCheck %s --check-prefix=GRAD
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition="world=2 con=dp batch-sizes=1,1" | FileCheck %s --check-prefix=DP
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff --galaxy-partition="world=2 con=sp seq-sizes=3,1" | FileCheck %s --check-prefix=SP
// LlamaForSequenceClassification scores each row's last non-padding token:
// take_token with per-row positions (indices [B], i32) instead of one index.
// The positions are global: the indices split by rows exactly as the input
// does, and a sequence-split input is gathered first (and the gradient is
// never split along the sequence). The indices carry no named dims here:
// their layout follows the input's rows, not names of their own.

func.func @forward(%x: tensor<2x4x8xf32> {galaxy.input = "x", galaxy.dims = [#galaxy.dims<B, S, H>]},
                   %last: tensor<2xi32> {galaxy.input = "last_token"},
                   %y: tensor<2xi32> {galaxy.input = "labels", galaxy.dims = [#galaxy.dims<B>]}) -> tensor<f32> {
  %loss = galaxy.block "con" layer 0 -> tensor<f32> {
    %w = galaxy.param "score.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<C, H>]} : tensor<3x8xf32>
    %h = galaxy.linear %x, %w {galaxy.dims = [#galaxy.dims<B, S, C>]} : (tensor<2x4x8xf32>, tensor<3x8xf32>) -> tensor<2x4x3xf32>
    %t = galaxy.take_token %h, %last {galaxy.dims = [#galaxy.dims<B, C>]} : (tensor<2x4x3xf32>, tensor<2xi32>) -> tensor<2x3xf32>
    %c = galaxy.cross_entropy %t, %y {denominator = 2.0 : f64} : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<f32>
    galaxy.yield %c : tensor<f32>
  }
  return %loss : tensor<f32>
}

// PRINT: galaxy.take_token %{{.*}}, %arg1 {galaxy.dims = [#galaxy.dims<B, C>]} : (tensor<2x4x3xf32>, tensor<2xi32>) -> tensor<2x3xf32>

// Autodiff passes the positions to the gradient.
// GRAD-LABEL: func.func @train_step
// GRAD: galaxy.take_token_grad %{{.*}}, %arg1 {{{.*}}galaxy.backward{{.*}}} : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<2x4x3xf32>

// Data parallel: the input's rows and their positions split alike.
// DP-LABEL: func.func @train_step
// DP: %[[H:.*]] = galaxy.linear {{.*}}galaxy.layout = [#galaxy.layout<S(0, [1, 1])>]
// DP: %[[I:.*]] = galaxy.slice %arg1 {dim = 0 : i64{{.*}}galaxy.layout = [#galaxy.layout<S(0, [1, 1])>], sizes = array<i64: 1, 1>}
// DP: galaxy.take_token %[[H]], %[[I]] {{.*}}galaxy.layout = [#galaxy.layout<S(0, [1, 1])>]
// DP: galaxy.take_token_grad %{{.*}}, %[[I]] {{.*}}galaxy.layout = [#galaxy.layout<S(0, [1, 1])>]

// Sequence parallel (3 + 1 positions): the input is gathered, the positions
// stay whole, and dx is whole on every rank (then sliced for the linear).
// SP-LABEL: func.func @train_step
// SP-NOT: galaxy.slice %arg1
// SP: %[[H:.*]] = galaxy.linear {{.*}}galaxy.layout = [#galaxy.layout<S(1, [3, 1])>]
// SP: %[[G:.*]] = galaxy.all_gather %[[H]] {{.*}}galaxy.layout = [#galaxy.layout<R>]
// SP: galaxy.take_token %[[G]], %arg1 {{.*}}galaxy.layout = [#galaxy.layout<R>]
// SP: %[[DX:.*]] = galaxy.take_token_grad %{{.*}}, %arg1 {{.*}}galaxy.layout = [#galaxy.layout<R>]
// SP: galaxy.slice %[[DX]] {dim = 1 : i64
