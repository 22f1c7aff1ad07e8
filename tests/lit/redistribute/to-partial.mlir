// RUN: galaxy-opt %s --galaxy-partition="world=2 other=dp batch-sizes=1,1 mlp=tp inter-sizes=4,4" | FileCheck %s
// R -> P and S -> P: a whole or sharded value added to a partial sum becomes
// partial locally (to_partial: rank 0 keeps it / each rank zero-pads its
// shard), so the sum is reduced once, at the end.

// CHECK-LABEL: func.func @forward
// CHECK-SAME: %[[H:[^:]*]]: tensor<2x8xf32> {galaxy.dims = [#galaxy.dims<T, I>], galaxy.layout = [#galaxy.layout<R>]}
// CHECK-SAME: %[[BR:[^:]*]]: tensor<2x4xf32> {galaxy.dims = [#galaxy.dims<T, H>], galaxy.layout = [#galaxy.layout<R>]}
// CHECK-SAME: %[[BS:[^:]*]]: tensor<2x4xf32> {galaxy.dims = [#galaxy.dims<B, H>], galaxy.layout = [#galaxy.layout<S(0, [1, 1])>]}
func.func @forward(%h: tensor<2x8xf32> {galaxy.dims = [#galaxy.dims<T, I>]},
                   %br: tensor<2x4xf32> {galaxy.dims = [#galaxy.dims<T, H>]},
                   %bs: tensor<2x4xf32> {galaxy.dims = [#galaxy.dims<B, H>]}) -> tensor<2x4xf32> {
  %w = galaxy.param "w" {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<H, I>], init = "normal", trainable = true} : tensor<4x8xf32>
  // CHECK: %[[Y:.*]] = galaxy.linear {{.*}}galaxy.layout = [#galaxy.layout<P>]
  %y = galaxy.linear %h, %w {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<T, H>]} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  // CHECK-NEXT: %[[PR:.*]] = galaxy.to_partial %[[BR]] {{{.*}}galaxy.layout = [#galaxy.layout<P>]}
  // CHECK-NEXT: %[[A:.*]] = galaxy.add %[[Y]], %[[PR]] {{{.*}}galaxy.layout = [#galaxy.layout<P>]}
  %a = galaxy.add %y, %br {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<T, H>]} : tensor<2x4xf32>
  // CHECK-NEXT: %[[PS:.*]] = galaxy.to_partial %[[BS]] {{{.*}}galaxy.layout = [#galaxy.layout<P>]}
  // CHECK-NEXT: %[[B:.*]] = galaxy.add %[[A]], %[[PS]] {{{.*}}galaxy.layout = [#galaxy.layout<P>]}
  %b = galaxy.add %a, %bs {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<T, H>]} : tensor<2x4xf32>
  // CHECK-NEXT: %[[R:.*]] = galaxy.all_reduce %[[B]] {{{.*}}galaxy.layout = [#galaxy.layout<R>]}
  // CHECK-NEXT: return %[[R]]
  return %b : tensor<2x4xf32>
}
