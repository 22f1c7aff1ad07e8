// RUN: galaxy-opt %s --galaxy-partition="world=2 other=dp batch-sizes=1,1" | FileCheck %s
// S -> R: an argument sharded by batch (dp in "other") consumed by a region
// that shards nothing is gathered once.

// CHECK-LABEL: func.func @forward
// CHECK-SAME: %[[X:.*]]: tensor<4x8xf32> {galaxy.dims = [#galaxy.dims<B, H>], galaxy.layout = [#galaxy.layout<S(0, [2, 2])>]}
func.func @forward(%x: tensor<4x8xf32> {galaxy.dims = [#galaxy.dims<B, H>]}) -> tensor<4x8xf32> {
  // CHECK-NEXT: %[[G:.*]] = galaxy.all_gather %[[X]] {dim = 0 : i64, {{.*}}galaxy.layout = [#galaxy.layout<R>], sizes = array<i64: 2, 2>}
  // CHECK-NEXT: %[[Y:.*]] = galaxy.tanh %[[G]] {{{.*}}galaxy.layout = [#galaxy.layout<R>]}
  %y = galaxy.tanh %x {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<4x8xf32>
  // CHECK-NEXT: return %[[Y]]
  return %y : tensor<4x8xf32>
}
