// RUN: galaxy-opt %s --galaxy-partition="world=2 mlp=dp batch-sizes=1,1" | FileCheck %s
// R -> S: a replicated argument consumed by a dp region is sliced (no
// communication); the sharded result is gathered back for the return.

// CHECK: module attributes {galaxy.world = 2 : i64}
// CHECK-LABEL: func.func @forward
// CHECK-SAME: %[[X:.*]]: tensor<4x8xf32> {galaxy.dims = [#galaxy.dims<B, H>], galaxy.layout = [#galaxy.layout<R>]}
func.func @forward(%x: tensor<4x8xf32> {galaxy.dims = [#galaxy.dims<B, H>]}) -> tensor<4x8xf32> {
  // CHECK-NEXT: %[[S:.*]] = galaxy.slice %[[X]] {dim = 0 : i64, {{.*}}galaxy.layout = [#galaxy.layout<S(0, [2, 2])>], sizes = array<i64: 2, 2>}
  // CHECK-NEXT: %[[Y:.*]] = galaxy.tanh %[[S]] {{{.*}}galaxy.layout = [#galaxy.layout<S(0, [2, 2])>]}
  %y = galaxy.tanh %x {galaxy.block = "mlp", galaxy.layer = 0 : i64, galaxy.dims = [#galaxy.dims<B, H>]} : tensor<4x8xf32>
  // CHECK-NEXT: %[[G:.*]] = galaxy.all_gather %[[Y]] {dim = 0 : i64, {{.*}}galaxy.layout = [#galaxy.layout<R>], sizes = array<i64: 2, 2>}
  // CHECK-NEXT: return %[[G]]
  return %y : tensor<4x8xf32>
}
