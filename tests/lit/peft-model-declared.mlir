// RUN: galaxy-opt %s --galaxy-annotate --galaxy-peft="method=lora lora-dim=2 lora-targets=q_proj" | FileCheck %s
// RUN: not galaxy-opt %s --galaxy-annotate --galaxy-peft="method=lora lora-targets=query" 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: galaxy-opt %s --galaxy-annotate --galaxy-partition="world=2 att=dp batch-sizes=1,1" | FileCheck %s --check-prefix=REGION
// PEFT targets come from the model's declarations on the module (LLaMA-style
// names here, nothing BERT): q_proj of every layer under model.layers.N gets
// LoRA, the head named by galaxy.always_trainable stays trainable, the rest
// freezes. A block kind ("attn") is the model's; galaxy.region maps it to a
// partition region and annotate stamps it on the block's ops.

module attributes {galaxy.peft_targets = [["q_proj", "self_attn.q_proj"], ["o_proj", "self_attn.o_proj"]], galaxy.layer_prefixes = ["model.layers."], galaxy.adapter_after = [], galaxy.always_trainable = ["score."], galaxy.num_layers = 1 : i64} {
  func.func @forward(%x: tensor<2x4xf32> {galaxy.input = "x", galaxy.dims = [#galaxy.dims<B, H>]}, %y: tensor<2xi32> {galaxy.input = "labels", galaxy.dims = [#galaxy.dims<B>]}) -> (tensor<f32>, tensor<2x3xf32>) {
    %h = galaxy.block "attn" layer 0 -> tensor<2x4xf32> attributes {galaxy.region = "att"} {
      %w = galaxy.param "model.layers.0.self_attn.q_proj.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<A, H>]} : tensor<4x4xf32>
      %q = galaxy.linear %x, %w {galaxy.dims = [#galaxy.dims<B, A>]} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
      %v = galaxy.param "model.layers.0.self_attn.v_proj.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<A, H>]} : tensor<4x4xf32>
      %o = galaxy.linear %q, %v {galaxy.dims = [#galaxy.dims<B, A>]} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
      galaxy.yield %o : tensor<2x4xf32>
    }
    %logits, %loss = galaxy.block "head" layer -1 -> tensor<2x3xf32>, tensor<f32> {
      %w = galaxy.param "score.weight" {init = "normal", std = 0.02 : f64, trainable = true, galaxy.dims = [#galaxy.dims<C, A>]} : tensor<3x4xf32>
      %l = galaxy.linear %h, %w {galaxy.dims = [#galaxy.dims<B, C>]} : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<2x3xf32>
      %c = galaxy.cross_entropy %l, %y {denominator = 2.0 : f64} : (tensor<2x3xf32>, tensor<2xi32>) -> tensor<f32>
      galaxy.yield %l, %c : tensor<2x3xf32>, tensor<f32>
    }
    return %loss, %logits : tensor<f32>, tensor<2x3xf32>
  }
}

// CHECK: galaxy.param "model.layers.0.self_attn.q_proj.weight" {{.*}}trainable = false
// CHECK: galaxy.param "model.layers.0.self_attn.q_proj.lora_A.weight" {{.*}}galaxy.region = "att"{{.*}}trainable = true} : tensor<2x4xf32>
// CHECK: galaxy.param "model.layers.0.self_attn.q_proj.lora_B.weight" {{.*}}trainable = true} : tensor<4x2xf32>
// CHECK-NOT: v_proj.lora_A
// CHECK: galaxy.param "model.layers.0.self_attn.v_proj.weight" {{.*}}trainable = false
// CHECK: galaxy.param "score.weight" {{.*}}trainable = true

// BAD: unknown LoRA target 'query'; expected q_proj or o_proj

// The "attn" block partitions as the att region it declares (dp over B here);
// the head stays replicated.
// REGION: galaxy.slice %arg0 {dim = 0 : i64, galaxy.block = "attn"
// REGION: galaxy.linear {{.*}}galaxy.block = "attn"{{.*}}galaxy.layout = [#galaxy.layout<S(0, [1, 1])>], galaxy.region = "att"
// REGION: galaxy.all_gather {{.*}}galaxy.block = "head"
