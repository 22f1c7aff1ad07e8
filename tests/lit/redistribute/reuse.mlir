// RUN: galaxy-opt %s --galaxy-partition="world=2 mlp=tp inter-sizes=4,4" | FileCheck %s
// One redistribution per (value, layout): the all_reduce made for the first
// consumer of a partial sum serves the later ones, including an op that could
// have taken the partial (scale) — it takes the reduced value instead.

// CHECK-LABEL: func.func @forward
func.func @forward(%h: tensor<2x8xf32> {galaxy.dims = [#galaxy.dims<B, I>]}) -> tensor<2x4xf32> {
  %w = galaxy.param "w" {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<H, I>], init = "normal", trainable = true} : tensor<4x8xf32>
  // CHECK: %[[Y:.*]] = galaxy.linear {{.*}}galaxy.layout = [#galaxy.layout<P>]
  %y = galaxy.linear %h, %w {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  // CHECK-NEXT: %[[R:.*]] = galaxy.all_reduce %[[Y]] {{{.*}}galaxy.layout = [#galaxy.layout<R>]}
  // CHECK-NEXT: %[[T:.*]] = galaxy.tanh %[[R]] {{{.*}}galaxy.layout = [#galaxy.layout<R>]}
  %t = galaxy.tanh %y {galaxy.block = "con", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<2x4xf32>
  // CHECK-NEXT: %[[U:.*]] = galaxy.tanh %[[R]] {{{.*}}galaxy.layout = [#galaxy.layout<R>]}
  %u = galaxy.tanh %y {galaxy.block = "con", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<2x4xf32>
  // CHECK-NEXT: %[[S:.*]] = galaxy.scale %[[R]] {{{.*}}galaxy.layout = [#galaxy.layout<R>]}
  %s = galaxy.scale %y {alpha = 0.5 : f64, galaxy.block = "con", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<2x4xf32>
  // CHECK-NEXT: %[[A:.*]] = galaxy.add %[[T]], %[[U]] {{{.*}}galaxy.layout = [#galaxy.layout<R>]}
  %a = galaxy.add %t, %u {galaxy.block = "con", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<2x4xf32>
  // CHECK-NEXT: %[[B:.*]] = galaxy.add %[[A]], %[[S]] {{{.*}}galaxy.layout = [#galaxy.layout<R>]}
  %b = galaxy.add %a, %s {galaxy.block = "con", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<2x4xf32>
  // CHECK-NEXT: return %[[B]]
  return %b : tensor<2x4xf32>
}
