// RUN: galaxy-opt %s --galaxy-annotate --galaxy-autodiff="optimizer=adamw lr=0.01" | FileCheck %s
// Frozen parameters get no gradient work; backward ops inherit the forward
// op's block; each trainable parameter is updated once.

func.func @forward(%x: tensor<2x4xf32> {galaxy.input = "input_ids"}, %y: tensor<2xi32> {galaxy.input = "labels"}) -> (tensor<f32>, tensor<2x3xf32>) {
  %h = galaxy.block "mlp" layer 0 -> tensor<2x4xf32> {
    %w = galaxy.param "frozen.weight" {init = "normal", std = 0.02 : f64, trainable = false} : tensor<4x4xf32>
    %b = galaxy.param "frozen.bias" {init = "zeros", trainable = true} : tensor<4xf32>
    %o = galaxy.linear %x, %w, %b : (tensor<2x4xf32>, tensor<4x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
    %a = galaxy.tanh %o : tensor<2x4xf32>
    galaxy.yield %a : tensor<2x4xf32>
  }
  %logits, %loss = galaxy.block "head" layer -1 -> tensor<2x3xf32>, tensor<f32> {
    %w = galaxy.param "classifier.weight" {init = "normal", std = 0.02 : f64, trainable = true} : tensor<3x4xf32>
    %l = galaxy.linear %h, %w : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<2x3xf32>
    %c = galaxy.cross_entropy %l, %y {denominator = 2.0 : f64} : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<f32>
    galaxy.yield %l, %c : tensor<2x3xf32>, tensor<f32>
  }
  return %loss, %logits : tensor<f32>, tensor<2x3xf32>
}

// CHECK-LABEL: func.func @forward
// CHECK-NOT: galaxy.block "
// CHECK: galaxy.linear {{.*}}galaxy.block = "mlp", galaxy.layer = 0
// CHECK-LABEL: func.func @train_step
// CHECK-SAME: -> tensor<f32>
// CHECK: galaxy.fill {{.*}}value = 1.000000e+00
// CHECK: galaxy.cross_entropy_grad {{.*}}galaxy.backward, galaxy.block = "head"
// CHECK: %[[DW:.*]] = galaxy.linear_weight_grad {{.*}}galaxy.block = "head"
// CHECK: galaxy.adamw_update %{{.*}}, %[[DW]] {{{.*}}lr = 1.000000e-02
// CHECK: galaxy.tanh_grad {{.*}}galaxy.block = "mlp"
// CHECK: %[[DB:.*]] = galaxy.bias_grad
// CHECK: galaxy.adamw_update %{{.*}}, %[[DB]]
// The frozen weight: no weight gradient, no update, and no input gradient
// (the input does not depend on a trainable parameter).
// CHECK-NOT: galaxy.linear_weight_grad
// CHECK-NOT: galaxy.adamw_update
// CHECK: return %{{.*}} : tensor<f32>
