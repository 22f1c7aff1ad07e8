// RUN: galaxy-opt %s -split-input-file -verify-diagnostics
// Malformed ops are rejected with a located diagnostic.

func.func @linear_features(%x: tensor<2x8xf32>, %w: tensor<4x6xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{input has 8 features but weight [4, 6] (out, in) expects 6}}
  %y = galaxy.linear %x, %w : (tensor<2x8xf32>, tensor<4x6xf32>) -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

func.func @linear_bias(%x: tensor<2x6xf32>, %w: tensor<4x6xf32>, %b: tensor<3xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{bias has shape [3] but [4] was expected}}
  %y = galaxy.linear %x, %w, %b : (tensor<2x6xf32>, tensor<4x6xf32>, tensor<3xf32>) -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// -----

func.func @matmul_k(%a: tensor<2x3x4xf32>, %b: tensor<2x5x6xf32>) -> tensor<2x3x6xf32> {
  // expected-error @+1 {{contracting dims differ: 4 vs 5}}
  %c = galaxy.matmul %a, %b : (tensor<2x3x4xf32>, tensor<2x5x6xf32>) -> tensor<2x3x6xf32>
  return %c : tensor<2x3x6xf32>
}

// -----

// A block kind is the model's (any non-empty name); an empty one is an error.
func.func @block_kind(%x: tensor<2xf32>) -> tensor<2xf32> {
  %f = galaxy.block "ffn" layer 0 -> tensor<2xf32> {
    galaxy.yield %x : tensor<2xf32>
  }
  // expected-error @+1 {{needs a non-empty block kind}}
  %r = galaxy.block "" layer 0 -> tensor<2xf32> {
    galaxy.yield %f : tensor<2xf32>
  }
  return %r : tensor<2xf32>
}

// -----

func.func @dropout_p(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{must be in [0, 1)}}
  %y = galaxy.dropout %x {op_id = 1 : i64, p = 1.0 : f64} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

func.func @ln_gamma(%x: tensor<2x8xf32>, %g: tensor<4xf32>, %b: tensor<8xf32>) -> tensor<2x8xf32> {
  // expected-error @+1 {{gamma has shape [4] but [8] was expected}}
  %y = galaxy.layer_norm %x, %g, %b {eps = 1.0e-12 : f64} : (tensor<2x8xf32>, tensor<4xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

func.func @heads(%x: tensor<2x4x10xf32>) -> tensor<2x3x4x3xf32> {
  // expected-error @+1 {{hidden size 10 is not divisible into 3 heads}}
  %y = galaxy.split_heads %x : (tensor<2x4x10xf32>) -> tensor<2x3x4x3xf32>
  return %y : tensor<2x3x4x3xf32>
}

// -----

func.func @mask(%s: tensor<2x2x4x4xf32>, %m: tensor<2x5xf32>) -> tensor<2x2x4x4xf32> {
  // expected-error @+1 {{mask has shape [2, 5] but [2, 4] was expected}}
  %p = galaxy.masked_softmax %s, %m : (tensor<2x2x4x4xf32>, tensor<2x5xf32>) -> tensor<2x2x4x4xf32>
  return %p : tensor<2x2x4x4xf32>
}

// -----

func.func @token(%x: tensor<2x4x8xf32>) -> tensor<2x8xf32> {
  // expected-error @+1 {{index 4 is outside the sequence of 4}}
  %y = galaxy.take_token %x {index = 4 : i64} : (tensor<2x4x8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

func.func @ce(%l: tensor<2x3xf32>, %y: tensor<3xi32>) -> tensor<f32> {
  // expected-error @+1 {{expects logits [..., C] and labels [...] of the logits' leading shape, got [2, 3] and [3]}}
  %loss = galaxy.cross_entropy %l, %y {denominator = 2.0 : f64} : (tensor<2x3xf32>, tensor<3xi32>) -> tensor<f32>
  return %loss : tensor<f32>
}

// -----

func.func @init() -> tensor<4xf32> {
  // expected-error @+1 {{unknown initializer 'xavier'}}
  %p = galaxy.param "w" {init = "xavier", trainable = true} : tensor<4xf32>
  return %p : tensor<4xf32>
}

// -----

func.func @update(%g: tensor<4xf32>) {
  %p = galaxy.param "w" {init = "zeros", trainable = true} : tensor<4xf32>
  // expected-error @+1 {{updates a value that is not a galaxy.param}}
  galaxy.sgd_update %g, %g {lr = 0.1 : f64} : tensor<4xf32>
  return
}

// -----

// Token-level loss: logits [B, S, V], labels [B, S]; the labels must be the
// logits' leading shape.
func.func @ce_tokens(%l: tensor<2x4x5xf32>, %y: tensor<2x4xi32>, %z: tensor<2x5xi32>) -> tensor<f32> {
  %ok = galaxy.cross_entropy %l, %y {denominator = 8.0 : f64, ignore_index = -100 : i64} : (tensor<2x4x5xf32>, tensor<2x4xi32>) -> tensor<f32>
  // expected-error @+1 {{got [2, 4, 5] and [2, 5]}}
  %bad = galaxy.cross_entropy %l, %z {denominator = 8.0 : f64} : (tensor<2x4x5xf32>, tensor<2x5xi32>) -> tensor<f32>
  return %ok : tensor<f32>
}

// -----

func.func @rms_weight(%x: tensor<2x8xf32>, %w: tensor<4xf32>) -> tensor<2x8xf32> {
  // expected-error @+1 {{weight has shape [4] but [8] was expected}}
  %y = galaxy.rms_norm %x, %w {eps = 1.0e-06 : f64} : (tensor<2x8xf32>, tensor<4xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

func.func @rms_eps(%x: tensor<2x8xf32>, %w: tensor<8xf32>) -> tensor<2x8xf32> {
  // expected-error @+1 {{eps must be positive}}
  %y = galaxy.rms_norm %x, %w {eps = 0.0 : f64} : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return %y : tensor<2x8xf32>
}

// -----

func.func @rope_odd(%x: tensor<1x2x3x5xf32>) -> tensor<1x2x3x5xf32> {
  // expected-error @+1 {{head size 5 must be even (two halves rotate together)}}
  %y = galaxy.rope %x {theta = 1.0e+04 : f64} : tensor<1x2x3x5xf32>
  return %y : tensor<1x2x3x5xf32>
}

// -----

func.func @rope_rank(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  // expected-error @+1 {{expects [B, n, S, d], got [2, 3, 4]}}
  %y = galaxy.rope %x {theta = 1.0e+04 : f64} : tensor<2x3x4xf32>
  return %y : tensor<2x3x4xf32>
}

// -----

func.func @rope_theta(%x: tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32> {
  // expected-error @+1 {{theta must be positive}}
  %y = galaxy.rope %x {theta = 0.0 : f64} : tensor<1x2x3x4xf32>
  return %y : tensor<1x2x3x4xf32>
}

// -----

func.func @repeat_kv_result(%k: tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32> {
  // expected-error @+1 {{result has shape [1, 2, 3, 4] but [1, 4, 3, 4] was expected}}
  %y = galaxy.repeat_kv %k {groups = 2 : i64} : (tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32>
  return %y : tensor<1x2x3x4xf32>
}

// -----

func.func @repeat_kv_groups(%k: tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32> {
  // expected-error @+1 {{groups must be at least 1, got 0}}
  %y = galaxy.repeat_kv %k {groups = 0 : i64} : (tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32>
  return %y : tensor<1x2x3x4xf32>
}

// -----

func.func @repeat_kv_grad_heads(%g: tensor<1x3x2x2xf32>) -> tensor<1x1x2x2xf32> {
  // expected-error @+1 {{3 heads do not split into groups of 2}}
  %y = galaxy.repeat_kv_grad %g {groups = 2 : i64} : (tensor<1x3x2x2xf32>) -> tensor<1x1x2x2xf32>
  return %y : tensor<1x1x2x2xf32>
}

// -----

func.func @repeat_kv_grad_result(%g: tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32> {
  // expected-error @+1 {{result has shape [1, 4, 2, 2] but [1, 2, 2, 2] was expected}}
  %y = galaxy.repeat_kv_grad %g {groups = 2 : i64} : (tensor<1x4x2x2xf32>) -> tensor<1x4x2x2xf32>
  return %y : tensor<1x4x2x2xf32>
}
