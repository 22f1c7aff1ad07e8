// RUN: galaxy-opt %s -split-input-file -verify-diagnostics
// A malformed galaxy.layout / galaxy.dims is a located error naming the
// problem, never read as R or as unnamed axes.

func.func @layout_not_array(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{galaxy.layout must be an array of 1 entry (one per result), got #galaxy.layout<R>}}
  %y = galaxy.tanh %x {galaxy.layout = #galaxy.layout<R>} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

func.func @layout_count(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{galaxy.layout must be an array of 1 entry (one per result)}}
  %y = galaxy.tanh %x {galaxy.layout = [#galaxy.layout<R>, #galaxy.layout<R>]} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

func.func @layout_string(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{galaxy.layout of result 0: expected a #galaxy.layout, got "S(0;2,2)"}}
  %y = galaxy.tanh %x {galaxy.layout = ["S(0;2,2)"]} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

func.func @layout_dim_range(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {
  // expected-error @+1 {{galaxy.layout of result 0: #galaxy.layout<S(2, [2, 2])> shards dim 2 of a value of type 'tensor<4x4xf32>'}}
  %y = galaxy.tanh %x {galaxy.layout = [#galaxy.layout<S(2, [2, 2])>]} : tensor<4x4xf32>
  return %y : tensor<4x4xf32>
}

// -----

func.func @layout_sizes_sum(%x: tensor<4x6xf32>) -> tensor<4x6xf32> {
  // expected-error @+1 {{#galaxy.layout<S(1, [3, 2])> sizes sum to 5 but dim 1 of 'tensor<4x6xf32>' has 6}}
  %y = galaxy.tanh %x {galaxy.layout = [#galaxy.layout<S(1, [3, 2])>]} : tensor<4x6xf32>
  return %y : tensor<4x6xf32>
}

// -----

module attributes {galaxy.world = 3 : i64} {
  func.func @layout_world(%x: tensor<4xf32>) -> tensor<4xf32> {
    // expected-error @+1 {{#galaxy.layout<S(0, [2, 2])> has 2 sizes but the module's galaxy.world is 3}}
    %y = galaxy.tanh %x {galaxy.layout = [#galaxy.layout<S(0, [2, 2])>]} : tensor<4xf32>
    return %y : tensor<4xf32>
  }
}

// -----

// expected-error @+1 {{galaxy.world must be a positive integer on the module}}
module attributes {galaxy.world = 0 : i64} {
}

// -----

// expected-error @+1 {{galaxy.layout of argument 1: #galaxy.layout<S(0, [3, 3])> sizes sum to 6 but dim 0 of 'tensor<4xf32>' has 4}}
func.func @arg_layout(%a: tensor<4xf32>, %x: tensor<4xf32> {galaxy.layout = [#galaxy.layout<S(0, [3, 3])>]}) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

// expected-error @+1 {{galaxy.layout must be an array of 1 entry (one per argument)}}
func.func @arg_layout_count(%x: tensor<4xf32> {galaxy.layout = [#galaxy.layout<R>, #galaxy.layout<P>]}) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

func.func @layout_unknown_kind(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{expected R, P or S(dim, [sizes]), got 'Q'}}
  %y = galaxy.tanh %x {galaxy.layout = [#galaxy.layout<Q>]} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

func.func @layout_no_sizes(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{S layout needs one size per rank, got none}}
  %y = galaxy.tanh %x {galaxy.layout = [#galaxy.layout<S(0, [])>]} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

func.func @layout_negative_dim(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{S layout dim -1 is negative}}
  %y = galaxy.tanh %x {galaxy.layout = [#galaxy.layout<S(-1, [4])>]} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

func.func @layout_negative_size(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{S layout sizes [5, -1] must be non-negative}}
  %y = galaxy.tanh %x {galaxy.layout = [#galaxy.layout<S(0, [5, -1])>]} : tensor<4xf32>
  return %y : tensor<4xf32>
}

// -----

func.func @dims_count(%x: tensor<2x3x4xf32>) -> tensor<2x3x4xf32> {
  // expected-error @+1 {{galaxy.dims of result 0: #galaxy.dims<B, S> names 2 axes but the value has rank 3}}
  %y = galaxy.tanh %x {galaxy.dims = [#galaxy.dims<B, S>]} : tensor<2x3x4xf32>
  return %y : tensor<2x3x4xf32>
}

// -----

func.func @dims_string(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{galaxy.dims of result 0: expected a #galaxy.dims, got "B,S"}}
  %y = galaxy.tanh %x {galaxy.dims = ["B,S"]} : tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}

// -----

// expected-error @+1 {{galaxy.dims of argument 0: #galaxy.dims<B> names 1 axes but the value has rank 2}}
func.func @arg_dims(%x: tensor<2x3xf32> {galaxy.dims = [#galaxy.dims<B>]}) -> tensor<2x3xf32> {
  return %x : tensor<2x3xf32>
}

// -----

func.func @dims_comma(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{dim name 'B,S' contains ','}}
  %y = galaxy.tanh %x {galaxy.dims = [#galaxy.dims<"B,S", H>]} : tensor<2x3xf32>
  return %y : tensor<2x3xf32>
}
