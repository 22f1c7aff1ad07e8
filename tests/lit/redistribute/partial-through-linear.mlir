// RUN: galaxy-opt %s --galaxy-partition="world=2 mlp=tp inter-sizes=4,4" | FileCheck %s
// A partial sum flows unreduced through ops linear in it (scale, add of two
// partials): one all_reduce, at the end, not one per op.

// CHECK-LABEL: func.func @forward
func.func @forward(%h: tensor<2x8xf32> {galaxy.dims = [#galaxy.dims<B, I>]}) -> tensor<2x4xf32> {
  %w = galaxy.param "w" {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<H, I>], init = "normal", trainable = true} : tensor<4x8xf32>
  // CHECK: %[[Y:.*]] = galaxy.linear {{.*}}galaxy.layout = [#galaxy.layout<P>]
  %y = galaxy.linear %h, %w {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  // CHECK-NEXT: %[[S:.*]] = galaxy.scale %[[Y]] {{{.*}}galaxy.layout = [#galaxy.layout<P>]}
  %s = galaxy.scale %y {alpha = 0.5 : f64, galaxy.block = "con", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<2x4xf32>
  // CHECK-NEXT: %[[A:.*]] = galaxy.add %[[S]], %[[Y]] {{{.*}}galaxy.layout = [#galaxy.layout<P>]}
  %a = galaxy.add %s, %y {galaxy.block = "con", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<2x4xf32>
  // CHECK-NEXT: %[[R:.*]] = galaxy.all_reduce %[[A]] {{{.*}}galaxy.layout = [#galaxy.layout<R>]}
  // CHECK-NEXT: return %[[R]]
  return %a : tensor<2x4xf32>
}
