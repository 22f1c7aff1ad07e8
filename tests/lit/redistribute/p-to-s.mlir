// RUN: galaxy-opt %s --galaxy-partition="world=2 mlp=tp inter-sizes=4,4 con=sp seq-sizes=1,1" | FileCheck %s
// P -> S: a partial sum consumed by a sequence-parallel region is reduced and
// scattered along S in one reduce_scatter (never all_reduce then slice).

// CHECK-LABEL: func.func @forward
func.func @forward(%h: tensor<2x4x8xf32> {galaxy.dims = [#galaxy.dims<B, S, I>]}) -> tensor<2x4x4xf32> {
  %w = galaxy.param "w" {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<H, I>], init = "normal", trainable = true} : tensor<4x8xf32>
  // CHECK: %[[Y:.*]] = galaxy.linear {{.*}}galaxy.layout = [#galaxy.layout<P>]
  %y = galaxy.linear %h, %w {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, S, H>]} : (tensor<2x4x8xf32>, tensor<4x8xf32>) -> tensor<2x4x4xf32>
  // CHECK-NEXT: %[[RS:.*]] = galaxy.reduce_scatter %[[Y]] {dim = 1 : i64, {{.*}}galaxy.layout = [#galaxy.layout<S(1, [2, 2])>], sizes = array<i64: 2, 2>}
  // CHECK-NEXT: %[[Z:.*]] = galaxy.tanh %[[RS]] {{{.*}}galaxy.layout = [#galaxy.layout<S(1, [2, 2])>]}
  %z = galaxy.tanh %y {galaxy.block = "con", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, S, H>]} : tensor<2x4x4xf32>
  // CHECK-NEXT: %[[G:.*]] = galaxy.all_gather %[[Z]] {dim = 1 : i64, {{.*}}galaxy.layout = [#galaxy.layout<R>], sizes = array<i64: 2, 2>}
  // CHECK-NEXT: return %[[G]]
  return %z : tensor<2x4x4xf32>
}
