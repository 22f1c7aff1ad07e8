// RUN: galaxy-opt %s --galaxy-partition="world=2 other=dp batch-sizes=1,1 con=sp seq-sizes=1,1" | FileCheck %s
// S -> S': a value sharded by batch consumed by a region sharding the
// sequence goes through R: all_gather along B, then slice along S.

// CHECK-LABEL: func.func @forward
// CHECK-SAME: %[[X:.*]]: tensor<2x4x8xf32> {galaxy.dims = [#galaxy.dims<B, S, H>], galaxy.layout = [#galaxy.layout<S(0, [1, 1])>]}
func.func @forward(%x: tensor<2x4x8xf32> {galaxy.dims = [#galaxy.dims<B, S, H>]}) -> tensor<2x4x8xf32> {
  // CHECK-NEXT: %[[G:.*]] = galaxy.all_gather %[[X]] {dim = 0 : i64, {{.*}}galaxy.layout = [#galaxy.layout<R>], sizes = array<i64: 1, 1>}
  // CHECK-NEXT: %[[S:.*]] = galaxy.slice %[[G]] {dim = 1 : i64, {{.*}}galaxy.layout = [#galaxy.layout<S(1, [2, 2])>], sizes = array<i64: 2, 2>}
  // CHECK-NEXT: %[[Y:.*]] = galaxy.tanh %[[S]] {{{.*}}galaxy.layout = [#galaxy.layout<S(1, [2, 2])>]}
  %y = galaxy.tanh %x {galaxy.block = "con", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, S, H>]} : tensor<2x4x8xf32>
  // CHECK-NEXT: %[[R:.*]] = galaxy.all_gather %[[Y]] {dim = 1 : i64, {{.*}}galaxy.layout = [#galaxy.layout<R>], sizes = array<i64: 2, 2>}
  // CHECK-NEXT: return %[[R]]
  return %y : tensor<2x4x8xf32>
}
