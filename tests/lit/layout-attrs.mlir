// RUN: galaxy-opt %s | galaxy-opt | FileCheck %s
// #galaxy.layout and #galaxy.dims print as they are written and survive a
// round trip; a module without galaxy.world takes any number of shard sizes.

// CHECK-LABEL: func.func @annotated
// CHECK-SAME: (%arg0: tensor<4x6xf32> {galaxy.dims = [#galaxy.dims<B, H>], galaxy.layout = [#galaxy.layout<S(0, [2, 1, 1])>]}
// CHECK-SAME: %arg1: tensor<f32> {galaxy.dims = [#galaxy.dims<>], galaxy.layout = [#galaxy.layout<P>]}
func.func @annotated(%x: tensor<4x6xf32> {galaxy.dims = [#galaxy.dims<B, H>], galaxy.layout = [#galaxy.layout<S(0, [2, 1, 1])>]},
                     %s: tensor<f32> {galaxy.dims = [#galaxy.dims<>], galaxy.layout = [#galaxy.layout<P>]}) -> tensor<4x6xf32> {
  // CHECK: galaxy.scale {{.*}}galaxy.dims = [#galaxy.dims<B, H>], galaxy.layout = [#galaxy.layout<S(1, [0, 6])>]
  %y = galaxy.scale %x {alpha = 2.0 : f64, galaxy.dims = [#galaxy.dims<B, H>], galaxy.layout = [#galaxy.layout<S(1, [0, 6])>]} : tensor<4x6xf32>
  // A name that is not a bare identifier is quoted.
  // CHECK: galaxy.tanh {{.*}}galaxy.dims = [#galaxy.dims<"2nd", H>], galaxy.layout = [#galaxy.layout<R>]
  %z = galaxy.tanh %y {galaxy.dims = [#galaxy.dims<"2nd", H>], galaxy.layout = [#galaxy.layout<R>]} : tensor<4x6xf32>
  return %z : tensor<4x6xf32>
}
