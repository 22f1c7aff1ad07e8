// RUN: galaxy-opt %s -split-input-file -verify-diagnostics
// take_token's per-row indices and cross_entropy's count, malformed.

func.func @indices_with_index(%x: tensor<2x4x8xf32>, %i: tensor<2xi32>) -> tensor<2x8xf32> {
  // expected-error @+1 {{takes per-row indices, so index must be 0, got 2}}
  %y = galaxy.take_token %x, %i {index = 2 : i64} : (tensor<2x4x8xf32>, tensor<2xi32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

func.func @indices_shape(%x: tensor<2x4x8xf32>, %i: tensor<3xi32>) -> tensor<2x8xf32> {
  // expected-error @+1 {{indices has shape [3] but [2] was expected}}
  %y = galaxy.take_token %x, %i : (tensor<2x4x8xf32>, tensor<3xi32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

func.func @indices_type(%x: tensor<2x4x8xf32>, %i: tensor<2xf32>) -> tensor<2x8xf32> {
  // expected-error @+1 {{operand #1 must be ranked tensor of 32-bit signless integer values}}
  %y = galaxy.take_token %x, %i : (tensor<2x4x8xf32>, tensor<2xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

func.func @grad_indices_with_index(%dy: tensor<2x8xf32>, %i: tensor<2xi32>) -> tensor<2x4x8xf32> {
  // expected-error @+1 {{takes per-row indices, so index must be 0, got 1}}
  %dx = galaxy.take_token_grad %dy, %i {index = 1 : i64} : (tensor<2x8xf32>, tensor<2xi32>) -> tensor<2x4x8xf32>
  return %dx : tensor<2x4x8xf32>
}

// -----

func.func @grad_shape(%dy: tensor<2x8xf32>, %i: tensor<2xi32>) -> tensor<2x4x6xf32> {
  // expected-error @+1 {{grad has shape [2, 8] but [2, 6] was expected}}
  %dx = galaxy.take_token_grad %dy, %i : (tensor<2x8xf32>, tensor<2xi32>) -> tensor<2x4x6xf32>
  return %dx : tensor<2x4x6xf32>
}

// -----

func.func @grad_index(%dy: tensor<2x8xf32>) -> tensor<2x4x8xf32> {
  // expected-error @+1 {{index 4 is outside the sequence of 4}}
  %dx = galaxy.take_token_grad %dy {index = 4 : i64} : (tensor<2x8xf32>) -> tensor<2x4x8xf32>
  return %dx : tensor<2x4x8xf32>
}

// -----

// The count is one number: a 0-d f32 tensor.
func.func @count_shape(%l: tensor<2x4x5xf32>, %y: tensor<2x4xi32>, %n: tensor<1xf32>) -> tensor<f32> {
  // expected-error @+1 {{operand #2 must be 0D tensor of 32-bit float values}}
  %c = galaxy.cross_entropy %l, %y, %n {denominator = 1.0 : f64} : (tensor<2x4x5xf32>, tensor<2x4xi32>, tensor<1xf32>) -> tensor<f32>
  return %c : tensor<f32>
}

// -----

func.func @count_type(%l: tensor<2x4x5xf32>, %y: tensor<2x4xi32>, %n: tensor<i32>) -> tensor<f32> {
  // expected-error @+1 {{operand #2 must be 0D tensor of 32-bit float values}}
  %c = galaxy.cross_entropy %l, %y, %n {denominator = 1.0 : f64} : (tensor<2x4x5xf32>, tensor<2x4xi32>, tensor<i32>) -> tensor<f32>
  return %c : tensor<f32>
}

// -----

func.func @grad_count_shape(%l: tensor<2x4x5xf32>, %y: tensor<2x4xi32>, %d: tensor<f32>, %n: tensor<2xf32>) -> tensor<2x4x5xf32> {
  // expected-error @+1 {{operand #3 must be 0D tensor of 32-bit float values}}
  %g = galaxy.cross_entropy_grad %l, %y, %d, %n {denominator = 1.0 : f64} : (tensor<2x4x5xf32>, tensor<2x4xi32>, tensor<f32>, tensor<2xf32>) -> tensor<2x4x5xf32>
  return %g : tensor<2x4x5xf32>
}

// -----

// The count does not relax the other checks.
func.func @count_labels(%l: tensor<2x4x5xf32>, %y: tensor<2x5xi32>, %n: tensor<f32>) -> tensor<f32> {
  // expected-error @+1 {{got [2, 4, 5] and [2, 5]}}
  %c = galaxy.cross_entropy %l, %y, %n {denominator = 1.0 : f64} : (tensor<2x4x5xf32>, tensor<2x5xi32>, tensor<f32>) -> tensor<f32>
  return %c : tensor<f32>
}
