// RUN: galaxy-opt %s --galaxy-partition="world=2 other=dp batch-sizes=1,1 mlp=tp inter-sizes=4,4" | FileCheck %s
// Function results end R: a sharded result is gathered, a partial one reduced,
// a replicated one returned as is; each collective belongs to the block that
// produced the value.

// CHECK-LABEL: func.func @forward
func.func @forward(%x: tensor<4x8xf32> {galaxy.dims = [#galaxy.dims<B, H>]},
                   %h: tensor<2x8xf32> {galaxy.dims = [#galaxy.dims<T, I>]},
                   %r: tensor<2x4xf32> {galaxy.dims = [#galaxy.dims<T, H>]})
    -> (tensor<4x8xf32>, tensor<2x4xf32>, tensor<2x4xf32>) {
  // CHECK: %[[T:.*]] = galaxy.tanh %arg0 {{{.*}}galaxy.layout = [#galaxy.layout<S(0, [2, 2])>]}
  %t = galaxy.tanh %x {galaxy.block = "embedding", galaxy.layer = -1 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<4x8xf32>
  %w = galaxy.param "w" {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<H, I>], init = "normal", trainable = true} : tensor<4x8xf32>
  // CHECK: %[[Y:.*]] = galaxy.linear {{.*}}galaxy.layout = [#galaxy.layout<P>]
  %y = galaxy.linear %h, %w {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<T, H>]} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  // CHECK-NEXT: %[[G:.*]] = galaxy.all_gather %[[T]] {dim = 0 : i64, galaxy.block = "embedding", {{.*}}galaxy.layout = [#galaxy.layout<R>], sizes = array<i64: 2, 2>}
  // CHECK-NEXT: %[[R:.*]] = galaxy.all_reduce %[[Y]] {galaxy.block = "mlp", {{.*}}galaxy.layout = [#galaxy.layout<R>]}
  // CHECK-NEXT: return %[[G]], %[[R]], %arg2
  return %t, %y, %r : tensor<4x8xf32>, tensor<2x4xf32>, tensor<2x4xf32>
}
