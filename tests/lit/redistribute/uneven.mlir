// RUN: galaxy-opt %s --galaxy-partition="world=3 mlp=dp batch-sizes=2,1,1" | FileCheck %s
// Uneven shards: 3 ranks with batch weights 2,1,1 over 8 rows hold 4, 2 and 2
// rows; slice and gather carry the per-rank sizes in rank order.

// CHECK: module attributes {galaxy.world = 3 : i64}
// CHECK-LABEL: func.func @forward
func.func @forward(%x: tensor<8x4xf32> {galaxy.dims = [#galaxy.dims<B, H>]}) -> tensor<8x4xf32> {
  // CHECK-NEXT: %[[S:.*]] = galaxy.slice %arg0 {dim = 0 : i64, {{.*}}galaxy.layout = [#galaxy.layout<S(0, [4, 2, 2])>], sizes = array<i64: 4, 2, 2>}
  // CHECK-NEXT: %[[Y:.*]] = galaxy.tanh %[[S]] {{{.*}}galaxy.layout = [#galaxy.layout<S(0, [4, 2, 2])>]}
  %y = galaxy.tanh %x {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<8x4xf32>
  // CHECK-NEXT: %[[G:.*]] = galaxy.all_gather %[[Y]] {dim = 0 : i64, {{.*}}galaxy.layout = [#galaxy.layout<R>], sizes = array<i64: 4, 2, 2>}
  // CHECK-NEXT: return %[[G]]
  return %y : tensor<8x4xf32>
}
