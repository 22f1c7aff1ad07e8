// RUN: galaxy-opt %s --galaxy-partition="world=2 mlp=tp inter-sizes=4,4" | FileCheck %s
// P -> R: a row-parallel linear (contracting the sharded I) yields a partial
// sum; a consumer that needs the whole value gets one all_reduce.

// CHECK-LABEL: func.func @forward
// CHECK-SAME: %[[H:.*]]: tensor<2x8xf32> {galaxy.dims = [#galaxy.dims<B, I>], galaxy.layout = [#galaxy.layout<R>]}
func.func @forward(%h: tensor<2x8xf32> {galaxy.dims = [#galaxy.dims<B, I>]}) -> tensor<2x4xf32> {
  // CHECK-NEXT: %[[W:.*]] = galaxy.param "w" {{{.*}}galaxy.layout = [#galaxy.layout<S(1, [4, 4])>]
  %w = galaxy.param "w" {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<H, I>], init = "normal", trainable = true} : tensor<4x8xf32>
  // CHECK-NEXT: %[[HS:.*]] = galaxy.slice %[[H]] {dim = 1 : i64, {{.*}}galaxy.layout = [#galaxy.layout<S(1, [4, 4])>], sizes = array<i64: 4, 4>}
  // CHECK-NEXT: %[[Y:.*]] = galaxy.linear %[[HS]], %[[W]] {{{.*}}galaxy.layout = [#galaxy.layout<P>]}
  %y = galaxy.linear %h, %w {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  // CHECK-NEXT: %[[R:.*]] = galaxy.all_reduce %[[Y]] {{{.*}}galaxy.layout = [#galaxy.layout<R>]}
  // CHECK-NEXT: %[[Z:.*]] = galaxy.tanh %[[R]] {{{.*}}galaxy.layout = [#galaxy.layout<R>]}
  %z = galaxy.tanh %y {galaxy.block = "con", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<2x4xf32>
  // CHECK-NEXT: return %[[Z]]
  return %z : tensor<2x4xf32>
}
