//===- GalaxyOps.td - galaxy dialect ops -----------------------*- tablegen -*-===//
#ifndef GALAXY_OPS_TD
#define GALAXY_OPS_TD

include "galaxy/GalaxyDialect.td"
include "galaxy/GalaxyInterfaces.td"
include "mlir/IR/RegionKindInterface.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"

// An op that overrides an interface method says so with one of these.
defvar Galaxy_OwnCost =
    DeclareOpInterfaceMethods<CostOpInterface, ["cost", "costRule"]>;
defvar Galaxy_OwnPartition =
    DeclareOpInterfaceMethods<PartitionOpInterface, ["partition"]>;
defvar Galaxy_OwnRankLowering =
    DeclareOpInterfaceMethods<RankLoweringOpInterface, ["lowerForRank"]>;

def GF32Tensor : RankedTensorOf<[F32]>;
def GI32Tensor : RankedTensorOf<[I32]>;
def GF32OrI32Tensor : RankedTensorOf<[F32, I32]>;

class Galaxy_DiffOp<string mnemonic, list<Trait> traits = []>
    : Galaxy_Op<mnemonic, !listconcat(traits,
        [Pure, DeclareOpInterfaceMethods<GradientOpInterface>])>;

//===----------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------===//

def Galaxy_BlockOp : Galaxy_Op<"block", [Galaxy_NoFlops,
    SingleBlockImplicitTerminator<"YieldOp">, RecursiveMemoryEffects]> {
  let summary = "A model region of one layer: embedding, att, con, mlp, pooler or head";
  let description = [{
    Groups the ops of one block of the model. Values computed inside leave
    through `galaxy.yield`; the block may use any value defined above it.
    `layer` is the encoder layer index, -1 for blocks outside the layers.
  }];
  let arguments = (ins StrAttr:$kind, I64Attr:$layer);
  let results = (outs Variadic<AnyRankedTensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$kind `layer` $layer (`->` type($results)^)? attr-dict-with-keyword $body";
  let hasVerifier = 1;
  let kernel = ""; // flattened by annotate; lowers to no instruction
}

def Galaxy_YieldOp : Galaxy_Op<"yield", [Galaxy_NoFlops, Pure, Terminator,
    HasParent<"BlockOp">,
                                          ReturnLike]> {
  let summary = "Returns values from a galaxy.block";
  let arguments = (ins Variadic<AnyRankedTensor>:$values);
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
  let builders = [OpBuilder<(ins), [{ }]>];
  let kernel = "";
}

def Galaxy_ParamOp : Galaxy_Op<"param", [Galaxy_NoFlops, Pure]> {
  let summary = "A model parameter, by its Hugging Face name";
  let arguments = (ins StrAttr:$name, BoolAttr:$trainable, StrAttr:$init,
                       DefaultValuedAttr<F64Attr, "0.0">:$std);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
  let kernel = ""; // a PARAM buffer, not an instruction
}

//===----------------------------------------------------------------------===//
// Forward ops
//===----------------------------------------------------------------------===//

def Galaxy_IotaOp : Galaxy_Op<"iota", [Galaxy_NoFlops, Galaxy_OwnRankLowering, Pure]> {
  let summary = "Index along one dimension (position ids)";
  let arguments = (ins I64Attr:$dim, DefaultValuedAttr<I64Attr, "0">:$offset);
  let results = (outs GI32Tensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Galaxy_FillOp : Galaxy_Op<"fill", [Galaxy_NoFlops, Pure]> {
  let summary = "A tensor filled with one value";
  let arguments = (ins F64Attr:$value);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
}

def Galaxy_EmbeddingOp : Galaxy_DiffOp<"embedding", [Galaxy_NoFlops]> {
  let summary = "Row lookup: result[..., :] = table[ids[...], :]";
  let description = [{
    `padding_idx` (as torch.nn.Embedding's): the row of that id gets no gradient.
  }];
  let arguments = (ins GF32Tensor:$table, GI32Tensor:$ids,
                       DefaultValuedAttr<I64Attr, "-1">:$padding_idx);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$table `,` $ids attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let kernelAttrs = [KernelAttr<"vocab_offset", "int", "0",
      "first vocabulary row of this rank's table shard (vocab-parallel)">];
}

def Galaxy_AddOp : Galaxy_DiffOp<"add", [Galaxy_FlopsPerElement<1>,
    Galaxy_LinearInPartials, SameOperandsAndResultType]> {
  let summary = "Elementwise sum";
  let arguments = (ins GF32Tensor:$lhs, GF32Tensor:$rhs);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Galaxy_MulOp : Galaxy_DiffOp<"mul", [Galaxy_FlopsPerElement<1>,
    SameOperandsAndResultType]> {
  let summary = "Elementwise product";
  let arguments = (ins GF32Tensor:$lhs, GF32Tensor:$rhs);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

def Galaxy_ScaleOp : Galaxy_DiffOp<"scale", [Galaxy_FlopsPerElement<1>,
    Galaxy_LinearInPartials, SameOperandsAndResultType]> {
  let summary = "Multiply by a constant";
  let arguments = (ins GF32Tensor:$input, F64Attr:$alpha);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Galaxy_LinearOp : Galaxy_DiffOp<"linear", [Galaxy_OwnCost, Galaxy_OwnRankLowering]> {
  let summary = "y = x·wᵀ + b (transpose_w) or y = x·w + b";
  let description = [{
    `x` is [..., K]. With `transpose_w` (the default, Hugging Face layout) `w`
    is [N, K]; otherwise [K, N]. The optional bias is [N].
  }];
  let arguments = (ins GF32Tensor:$input, GF32Tensor:$weight,
                       Optional<GF32Tensor>:$bias,
                       DefaultValuedAttr<BoolAttr, "true">:$transpose_w);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Galaxy_MatmulOp : Galaxy_DiffOp<"matmul", [Galaxy_OwnCost]> {
  let summary = "Batched c = alpha·op(a)·op(b) over the last two dims";
  let arguments = (ins GF32Tensor:$lhs, GF32Tensor:$rhs,
                       DefaultValuedAttr<BoolAttr, "false">:$transpose_a,
                       DefaultValuedAttr<BoolAttr, "false">:$transpose_b,
                       DefaultValuedAttr<F64Attr, "1.0">:$alpha);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Galaxy_SplitHeadsOp : Galaxy_DiffOp<"split_heads", [Galaxy_NoFlops,
    Galaxy_LinearInPartials]> {
  let summary = "[B, S, n·d] -> [B, n, S, d]";
  let arguments = (ins GF32Tensor:$input);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Galaxy_MergeHeadsOp : Galaxy_DiffOp<"merge_heads", [Galaxy_NoFlops,
    Galaxy_LinearInPartials]> {
  let summary = "[B, n, S, d] -> [B, S, n·d]";
  let arguments = (ins GF32Tensor:$input);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Galaxy_RepeatKvOp : Galaxy_DiffOp<"repeat_kv", [Galaxy_NoFlops,
    Galaxy_OwnRankLowering]> {
  let summary = "[B, nkv, S, d] -> [B, nkv·groups, S, d]: output head h is input head h / groups";
  let description = [{
    Grouped-query attention's KV expansion, Hugging Face's `repeat_kv`
    (repeat_interleave order: each KV head serves `groups` consecutive query
    heads).
  }];
  let arguments = (ins GF32Tensor:$input, I64Attr:$groups);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let kernelAttrs = [KernelAttr<"head_offset", "int", "0",
      "local output head h reads local input head (h + head_offset) / groups: "
      "the output's first global head minus groups * the input's (a replicated "
      "input feeding head-sharded queries)">];
}

def Galaxy_RopeOp : Galaxy_DiffOp<"rope", [
    // Per element: x·cos and the partner·sin (2 multiplies) and their sum or
    // difference (1 add). The angles' sin/cos depend only on (position,
    // frequency), i.e. are shared by every batch row and head, and Hugging Face
    // computes them once per forward outside the layers: not counted.
    Galaxy_FlopsPerElement<3>, Galaxy_OwnRankLowering, SameOperandsAndResultType]> {
  let summary = "Rotary position embedding on [B, n, S, d], Hugging Face's rotate_half form";
  let description = [{
    With p = s + offset and a_i = p·theta^(−2i/d), i < d/2:
    y[..., i] = x[..., i]·cos a_i − x[..., i + d/2]·sin a_i,
    y[..., i + d/2] = x[..., i + d/2]·cos a_i + x[..., i]·sin a_i.
    `inverse` rotates by −a_i: the transpose, hence the gradient. Angles as
    Hugging Face's LlamaRotaryEmbedding computes them, in fp32. `offset` (a
    kernel attribute) is the global position of this rank's first row.
  }];
  let arguments = (ins GF32Tensor:$input, F64Attr:$theta,
                       DefaultValuedAttr<BoolAttr, "false">:$inverse);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
  let kernelAttrs = [KernelAttr<"offset", "int", "0",
      "global position of this rank's first sequence row (sequence parallel)">];
}

def Galaxy_MaskedSoftmaxOp : Galaxy_DiffOp<"masked_softmax", [
    Galaxy_FlopsPerElement<1>, Galaxy_OwnRankLowering]> {
  let summary = "softmax(x + (1 - mask)·-10000) over the last dim";
  let description = [{
    `x` is [B, n, Sq, Sk]; the optional `mask` is [B, Sk] of 0/1 and is
    broadcast over heads and queries. `causal` masks keys after the query.
  }];
  let arguments = (ins GF32Tensor:$input, Optional<GF32Tensor>:$mask,
                       DefaultValuedAttr<BoolAttr, "false">:$causal);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input (`,` $mask^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let kernelAttrs = [KernelAttr<"q_offset", "int", "0",
      "global index of this rank's first query row (causal mask under "
      "sequence sharding)">];
}

def Galaxy_LayerNormOp : Galaxy_DiffOp<"layer_norm", [Galaxy_FlopsPerElement<5>]> {
  let summary = "LayerNorm over the last dim (biased variance)";
  let arguments = (ins GF32Tensor:$input, GF32Tensor:$gamma, GF32Tensor:$beta, F64Attr:$eps);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input `,` $gamma `,` $beta attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Galaxy_RmsNormOp : Galaxy_DiffOp<"rms_norm", [Galaxy_FlopsPerElement<4>]> {
  let summary = "RMSNorm over the last dim: x·rsqrt(mean(x²) + eps)·weight";
  let description = [{
    Hugging Face's LlamaRMSNorm in fp32: no mean subtraction, no bias;
    `weight` is [H] for input [..., H].
  }];
  let arguments = (ins GF32Tensor:$input, GF32Tensor:$weight, F64Attr:$eps);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input `,` $weight attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Galaxy_GeluOp : Galaxy_DiffOp<"gelu", [Galaxy_FlopsPerElement<1>,
    SameOperandsAndResultType]> {
  let summary = "GELU, exact (erf) or tanh-approximated";
  let arguments = (ins GF32Tensor:$input, DefaultValuedAttr<StrAttr, "\"none\"">:$approximate);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Galaxy_ReluOp : Galaxy_DiffOp<"relu", [Galaxy_FlopsPerElement<1>,
    SameOperandsAndResultType]> {
  let summary = "Elementwise max(x, 0)";
  let arguments = (ins GF32Tensor:$input);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Galaxy_SiluOp : Galaxy_DiffOp<"silu", [Galaxy_FlopsPerElement<1>,
    SameOperandsAndResultType]> {
  let summary = "Elementwise swish / SiLU: x·sigmoid(x)";
  let arguments = (ins GF32Tensor:$input);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Galaxy_TanhOp : Galaxy_DiffOp<"tanh", [Galaxy_FlopsPerElement<1>,
    SameOperandsAndResultType]> {
  let summary = "Elementwise tanh";
  let arguments = (ins GF32Tensor:$input);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
}

def Galaxy_DropoutOp : Galaxy_DiffOp<"dropout", [Galaxy_NoFlops,
    Galaxy_LinearInPartials, Galaxy_OwnRankLowering, SameOperandsAndResultType]> {
  let summary = "Addressed dropout: the mask depends on (seed, step, op_id, global index)";
  let arguments = (ins GF32Tensor:$input, F64Attr:$p, I64Attr:$op_id);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let hasVerifier = 1;
  let kernelAttrs = [
    KernelAttr<"global_shape", "ints", "", "the unsharded shape the mask is addressed in">,
    KernelAttr<"offset", "ints", "", "this rank's block's offset in global_shape">,
    KernelAttr<"batch_dim", "int", "-1",
               "pipelines: the dim a microbatch's rows lie along in the global batch">];
}

def Galaxy_TakeTokenOp : Galaxy_DiffOp<"take_token", [Galaxy_NoFlops,
    DeclareOpInterfaceMethods<PartitionOpInterface, ["operandLayout"]>]> {
  let summary = "[B, S, H] -> [B, H]: the hidden state of one position per row";
  let description = [{
    result[b, :] = input[b, p_b, :] with p_b = `index` (one position for
    every row: BERT's [CLS]), or p_b = indices[b] when the optional `indices`
    [B] (i32) is given (LlamaForSequenceClassification's last non-padding
    token); `index` must then be 0. A position outside [0, S) is an error.
  }];
  let arguments = (ins GF32Tensor:$input, Optional<GI32Tensor>:$indices,
                       DefaultValuedAttr<I64Attr, "0">:$index);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = [{
    $input (`,` $indices^)? attr-dict `:` functional-type(operands, results)
  }];
  let builders = [
    // One position for every row (what the op was before `indices`).
    OpBuilder<(ins "::mlir::Type":$result, "::mlir::Value":$input,
                   "int64_t":$index), [{
      build($_builder, $_state, result, input, ::mlir::Value(),
            $_builder.getI64IntegerAttr(index));
    }]>];
  let hasVerifier = 1;
}

def Galaxy_CrossEntropyOp : Galaxy_DiffOp<"cross_entropy", [Galaxy_FlopsPerElement<1>,
    DeclareOpInterfaceMethods<PartitionOpInterface, ["operandLayout"]>]> {
  let summary = "Σ_i CE(logits[i], labels[i]) / (denominator·count) over every leading index i";
  let description = [{
    Logits [..., C] (classification [B, C]; token-level [B, S, V]) against
    labels of the leading shape [...]. A position whose label is
    `ignore_index` (Hugging Face's -100: padding) adds no loss and gets no
    gradient. `denominator` divides the sum (B for BERT's batch mean).

    The optional `count` (a 0-d f32 tensor, absent: 1) divides it too: the
    number of counted targets of the global batch, which only the data knows
    (a causal LM's token mean). It is replicated, so under data or sequence
    parallelism each rank divides its local sum by the global count and the
    partial losses add up to the serial one. A count <= 0 (no target in the
    batch) gives a loss of 0 and no gradient.
  }];
  let arguments = (ins GF32Tensor:$logits, GI32Tensor:$labels,
                       Optional<0DTensorOf<[F32]>>:$count, F64Attr:$denominator,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index);
  let results = (outs 0DTensorOf<[F32]>:$loss);
  let assemblyFormat = [{
    $logits `,` $labels (`,` $count^)? attr-dict `:` functional-type(operands, results)
  }];
  let builders = [
    // No count (a count of 1): the loss BERT builds.
    OpBuilder<(ins "::mlir::Type":$loss, "::mlir::Value":$logits,
                   "::mlir::Value":$labels, "::mlir::FloatAttr":$denominator,
                   "::mlir::IntegerAttr":$ignore_index), [{
      build($_builder, $_state, loss, logits, labels, ::mlir::Value(),
            denominator, ignore_index);
    }]>];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Gradient ops (produced by autodiff)
//===----------------------------------------------------------------------===//

class Galaxy_GradOp<string mnemonic, list<Trait> traits = []>
    : Galaxy_Op<mnemonic, !listconcat(traits, [Pure])>;

def Galaxy_EmbeddingGradOp : Galaxy_GradOp<"embedding_grad", [Galaxy_NoFlops]> {
  let summary = "Scatter-add of dy rows into a zeroed table gradient";
  let arguments = (ins GI32Tensor:$ids, GF32Tensor:$grad,
                       DefaultValuedAttr<I64Attr, "-1">:$padding_idx);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$ids `,` $grad attr-dict `:` functional-type(operands, results)";
  let kernelAttrs = [
    KernelAttr<"vocab_offset", "int", "0", "as embedding's">,
    KernelAttr<"alpha", "float", "1.0", "fused update: table = beta·table + alpha·grad">,
    KernelAttr<"beta", "float", "0.0", "fused update: see alpha">];
}

def Galaxy_LinearWeightGradOp : Galaxy_GradOp<"linear_weight_grad", [Galaxy_OwnCost]> {
  let summary = "dw[N, K] = Σ_rows dyᵀ·x";
  let arguments = (ins GF32Tensor:$grad, GF32Tensor:$input);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$grad `,` $input attr-dict `:` functional-type(operands, results)";
  let kernelAttrs = [
    KernelAttr<"alpha", "float", "1.0", "fused update: w = beta·w + alpha·dw">,
    KernelAttr<"beta", "float", "0.0", "fused update: see alpha">];
}

def Galaxy_BiasGradOp : Galaxy_GradOp<"bias_grad", [Galaxy_FlopsPerElement<1>]> {
  let summary = "db[N] = Σ_rows dy";
  let arguments = (ins GF32Tensor:$grad);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$grad attr-dict `:` functional-type(operands, results)";
}

def Galaxy_SoftmaxGradOp : Galaxy_GradOp<"softmax_grad", [Galaxy_FlopsPerElement<1>,
    AllTypesMatch<["output", "grad", "result"]>]> {
  let summary = "dx = y·(dy − Σ_last dy·y)";
  let arguments = (ins GF32Tensor:$output, GF32Tensor:$grad);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$output `,` $grad attr-dict `:` type($result)";
}

def Galaxy_RepeatKvGradOp : Galaxy_GradOp<"repeat_kv_grad", [
    Galaxy_FlopsPerElement<1>, Galaxy_OwnRankLowering]> {
  let summary = "[B, nkv·groups, S, d] -> [B, nkv, S, d]: the sum of each group's heads";
  let arguments = (ins GF32Tensor:$grad, I64Attr:$groups);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let kernelAttrs = [KernelAttr<"head_offset", "int", "0",
      "local input head h adds into local output head (h + head_offset) / "
      "groups: the input's first global head minus groups * the output's; "
      "output heads no input head maps to are 0 (a partial result)">];
}

def Galaxy_LayerNormGradOp : Galaxy_GradOp<"layer_norm_grad", [Galaxy_FlopsPerElement<5>]> {
  let summary = "dx, dgamma, dbeta of layer_norm";
  let description = [{
    With `param_grads = false` (gamma and beta frozen) only dx is computed;
    dgamma and dbeta are left undefined and must not be used.
  }];
  let arguments = (ins GF32Tensor:$input, GF32Tensor:$gamma, GF32Tensor:$grad, F64Attr:$eps,
                       DefaultValuedAttr<BoolAttr, "true">:$param_grads);
  let results = (outs GF32Tensor:$dx, GF32Tensor:$dgamma, GF32Tensor:$dbeta);
  let assemblyFormat = "$input `,` $gamma `,` $grad attr-dict `:` functional-type(operands, results)";
}

def Galaxy_RmsNormGradOp : Galaxy_GradOp<"rms_norm_grad", [Galaxy_FlopsPerElement<4>]> {
  let summary = "dx, dweight of rms_norm";
  let description = [{
    With r = rsqrt(mean(x²) + eps) and g = dy·weight per row:
    dx = r·g − x·r³·mean(g·x); dweight = Σ_rows dy·x·r. With
    `param_grads = false` (weight frozen) dweight is left undefined and must
    not be used.
  }];
  let arguments = (ins GF32Tensor:$input, GF32Tensor:$weight, GF32Tensor:$grad, F64Attr:$eps,
                       DefaultValuedAttr<BoolAttr, "true">:$param_grads);
  let results = (outs GF32Tensor:$dx, GF32Tensor:$dweight);
  let assemblyFormat = "$input `,` $weight `,` $grad attr-dict `:` functional-type(operands, results)";
}

def Galaxy_GeluGradOp : Galaxy_GradOp<"gelu_grad", [Galaxy_FlopsPerElement<1>,
    AllTypesMatch<["input", "grad", "result"]>]> {
  let summary = "dx = dy·gelu'(x)";
  let arguments = (ins GF32Tensor:$input, GF32Tensor:$grad,
                       DefaultValuedAttr<StrAttr, "\"none\"">:$approximate);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input `,` $grad attr-dict `:` type($result)";
}

def Galaxy_ReluGradOp : Galaxy_GradOp<"relu_grad", [Galaxy_FlopsPerElement<1>,
    AllTypesMatch<["input", "grad", "result"]>]> {
  let summary = "dx = dy where x > 0";
  let arguments = (ins GF32Tensor:$input, GF32Tensor:$grad);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input `,` $grad attr-dict `:` type($result)";
}

def Galaxy_SiluGradOp : Galaxy_GradOp<"silu_grad", [Galaxy_FlopsPerElement<1>,
    AllTypesMatch<["input", "grad", "result"]>]> {
  let summary = "dx = dy·σ(x)·(1 + x·(1 − σ(x)))";
  let arguments = (ins GF32Tensor:$input, GF32Tensor:$grad);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input `,` $grad attr-dict `:` type($result)";
}

def Galaxy_TanhGradOp : Galaxy_GradOp<"tanh_grad", [Galaxy_FlopsPerElement<1>,
    AllTypesMatch<["output", "grad", "result"]>]> {
  let summary = "dx = dy·(1 − y²)";
  let arguments = (ins GF32Tensor:$output, GF32Tensor:$grad);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$output `,` $grad attr-dict `:` type($result)";
}

def Galaxy_TakeTokenGradOp : Galaxy_GradOp<"take_token_grad", [Galaxy_NoFlops,
    DeclareOpInterfaceMethods<PartitionOpInterface, ["operandLayout", "partition"]>]> {
  let summary = "dx = 0 except dx[b, p_b] = dy[b] (p_b: index, or indices[b])";
  let arguments = (ins GF32Tensor:$grad, Optional<GI32Tensor>:$indices,
                       DefaultValuedAttr<I64Attr, "0">:$index);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = [{
    $grad (`,` $indices^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

def Galaxy_CrossEntropyGradOp : Galaxy_GradOp<"cross_entropy_grad", [
    Galaxy_FlopsPerElement<1>,
    DeclareOpInterfaceMethods<PartitionOpInterface, ["operandLayout"]>]> {
  let summary = "dlogits = (softmax − onehot)·dloss / (denominator·count); 0 where "
                "labels == ignore_index, and everywhere when count <= 0";
  let arguments = (ins GF32Tensor:$logits, GI32Tensor:$labels, GF32Tensor:$grad,
                       Optional<0DTensorOf<[F32]>>:$count, F64Attr:$denominator,
                       DefaultValuedAttr<I64Attr, "-100">:$ignore_index);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = [{
    $logits `,` $labels `,` $grad (`,` $count^)? attr-dict `:` functional-type(operands, results)
  }];
}

//===----------------------------------------------------------------------===//
// Optimizer updates (in place on the parameter at run time)
//===----------------------------------------------------------------------===//

def Galaxy_SgdUpdateOp : Galaxy_Op<"sgd_update", [Galaxy_OwnCost, Galaxy_OwnPartition,
    MemoryEffects<[MemWrite]>, AllTypesMatch<["param", "grad"]>]> {
  let summary = "param -= lr·(grad + weight_decay·param)";
  let arguments = (ins GF32Tensor:$param, GF32Tensor:$grad, F64Attr:$lr,
                       DefaultValuedAttr<F64Attr, "0.0">:$weight_decay);
  let assemblyFormat = "$param `,` $grad attr-dict `:` type($param)";
  let hasVerifier = 1;
}

def Galaxy_AdamwUpdateOp : Galaxy_Op<"adamw_update", [Galaxy_OwnCost,
    Galaxy_OwnPartition, MemoryEffects<[MemWrite]>, AllTypesMatch<["param", "grad"]>]> {
  let summary = "torch.optim.AdamW step; exp_avg / exp_avg_sq live in the runtime";
  let arguments = (ins GF32Tensor:$param, GF32Tensor:$grad, F64Attr:$lr, F64Attr:$beta1,
                       F64Attr:$beta2, F64Attr:$eps, F64Attr:$weight_decay);
  let assemblyFormat = "$param `,` $grad attr-dict `:` type($param)";
  let hasVerifier = 1;
  let kernelExtraInputs = [KernelOperand<"exp_avg", "f32">,
                           KernelOperand<"exp_avg_sq", "f32">];
}

// Gradient accumulation across pipeline microbatches: train_bwd adds each
// microbatch's gradient into a per-parameter accumulator that lives in the
// runtime (like AdamW's moments); @update reads it, applies the optimizer and
// zeroes it.
def Galaxy_GradAccumulateOp : Galaxy_Op<"grad_accumulate", [Galaxy_FlopsPerElement<1>,
    Galaxy_OwnPartition, MemoryEffects<[MemWrite]>,
    AllTypesMatch<["param", "grad"]>]> {
  let summary = "accumulator(param) += grad";
  let arguments = (ins GF32Tensor:$param, GF32Tensor:$grad);
  let assemblyFormat = "$param `,` $grad attr-dict `:` type($param)";
  let hasVerifier = 1;
  let kernel = "add"; // accumulator = accumulator + grad
}

def Galaxy_GradOfOp : Galaxy_Op<"grad_of", [Galaxy_NoFlops, Galaxy_OwnPartition,
    MemoryEffects<[MemRead]>, AllTypesMatch<["param", "result"]>]> {
  let summary = "The accumulated gradient of a parameter";
  let arguments = (ins GF32Tensor:$param);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$param attr-dict `:` type($param)";
  let hasVerifier = 1;
  let kernel = ""; // names the accumulator buffer
}

def Galaxy_ZeroGradOp : Galaxy_Op<"zero_grad", [Galaxy_NoFlops, Galaxy_OwnRankLowering,
    MemoryEffects<[MemWrite]>]> {
  let summary = "accumulator(param) = 0";
  let arguments = (ins GF32Tensor:$param);
  let assemblyFormat = "$param attr-dict `:` type($param)";
  let hasVerifier = 1;
  let kernel = "fill"; // value 0 into the accumulator
}

//===----------------------------------------------------------------------===//
// Fused kernels (inserted by galaxy-fuse after partitioning): each computes
// exactly what the ops it replaces computed, in one pass over the tensor.
//===----------------------------------------------------------------------===//

// The dropout kernel's addressing attributes, shared by the fused dropouts.
defvar Galaxy_DropoutKernelAttrs = [
    KernelAttr<"global_shape", "ints", "", "the unsharded shape the mask is addressed in">,
    KernelAttr<"offset", "ints", "", "this rank's block's offset in global_shape">,
    KernelAttr<"batch_dim", "int", "-1",
               "pipelines: the dim a microbatch's rows lie along in the global batch">];

def Galaxy_DropoutAddOp : Galaxy_Op<"dropout_add", [Galaxy_FlopsPerElement<1>,
    Galaxy_OwnRankLowering, Pure, AllTypesMatch<["input", "residual", "result"]>]> {
  let summary = "dropout(input) + residual: a residual connection's dropout and sum";
  let description = [{
    galaxy-fuse's rewrite of `add(dropout(x), r)` where the dropout feeds
    only the add: the same mask (p, op_id, global index), the same
    `x / (1 − p)` and the same sum, without writing and re-reading the
    dropped tensor.
  }];
  let arguments = (ins GF32Tensor:$input, GF32Tensor:$residual, F64Attr:$p,
                       I64Attr:$op_id);
  let results = (outs GF32Tensor:$result);
  let assemblyFormat = "$input `,` $residual attr-dict `:` type($result)";
  let hasVerifier = 1;
  let kernelAttrs = Galaxy_DropoutKernelAttrs;
}

def Galaxy_DropoutBiasGradOp : Galaxy_Op<"dropout_bias_grad", [Galaxy_FlopsPerElement<1>,
    Galaxy_OwnRankLowering, Pure, AllTypesMatch<["grad", "result"]>]> {
  let summary = "dy' = dropout(dy) and db = Σ_rows dy' (a linear's bias gradient)";
  let description = [{
    galaxy-fuse's rewrite of a backward dropout whose result a `bias_grad`
    reads: `result` is the dropout (every other reader keeps reading it),
    `bias_grad` the column sums, added row by row in order as `bias_grad`
    adds them, while the rows are still in cache.
  }];
  let arguments = (ins GF32Tensor:$grad, F64Attr:$p, I64Attr:$op_id);
  let results = (outs GF32Tensor:$result, GF32Tensor:$bias_grad);
  let assemblyFormat = "$grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
  let kernelAttrs = Galaxy_DropoutKernelAttrs;
}

// 2 FLOPs per element: gelu_grad's and bias_grad's (the pair's count).
def Galaxy_GeluGradBiasGradOp : Galaxy_Op<"gelu_grad_bias_grad", [
    Galaxy_FlopsPerElement<2>, Pure, AllTypesMatch<["input", "grad", "result"]>]> {
  let summary = "dx = dy·gelu'(x) and db = Σ_rows dx (a linear's bias gradient)";
  let description = [{
    galaxy-fuse's rewrite of a `gelu_grad` whose result a `bias_grad` reads
    (the MLP's first linear): `result` is gelu_grad's (every other reader
    keeps reading it), `bias_grad` its column sums, added row by row in order
    as `bias_grad` adds them, while the rows are still in cache.
  }];
  let arguments = (ins GF32Tensor:$input, GF32Tensor:$grad,
                       DefaultValuedAttr<StrAttr, "\"none\"">:$approximate);
  let results = (outs GF32Tensor:$result, GF32Tensor:$bias_grad);
  let assemblyFormat = "$input `,` $grad attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Galaxy_MergeHeadsBiasGradOp : Galaxy_Op<"merge_heads_bias_grad", [
    Galaxy_FlopsPerElement<1>, Pure]> {
  let summary = "merge_heads(dy) [B, S, n·d] and its column sums [n·d]";
  let description = [{
    galaxy-fuse's rewrite of a `merge_heads` whose result a `bias_grad`
    reads (the gradient of an attention projection's bias): `result` is the
    merged tensor (every other reader keeps reading it), `bias_grad` its
    column sums, added row by row in order as `bias_grad` adds them, in the
    pass that copies the heads.
  }];
  let arguments = (ins GF32Tensor:$input);
  let results = (outs GF32Tensor:$result, GF32Tensor:$bias_grad);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Redistribution (inserted by galaxy-partition). Types stay global; the
// layouts before and after are in the op's galaxy.layout annotations.
//===----------------------------------------------------------------------===//

class Galaxy_RedistOp<string mnemonic, string summaryText,
                      list<Trait> traits = []>
    : Galaxy_Op<mnemonic, !listconcat(traits, [Pure, SameOperandsAndResultType])> {
  let summary = summaryText;
  let results = (outs GF32OrI32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($result)";
  let kernelRunByExecutor = 1;
}

def Galaxy_AllReduceOp : Galaxy_RedistOp<"all_reduce", "P -> R: sum over ranks", [
    Galaxy_OwnCost]> {
  let arguments = (ins GF32OrI32Tensor:$input);
}

def Galaxy_AllGatherOp : Galaxy_RedistOp<"all_gather",
    "S(dim, sizes) -> R: concatenate the ranks' shards along dim", [Galaxy_OwnCost]> {
  let arguments = (ins GF32OrI32Tensor:$input, I64Attr:$dim, DenseI64ArrayAttr:$sizes);
  let hasVerifier = 1;
}

def Galaxy_ReduceScatterOp : Galaxy_RedistOp<"reduce_scatter",
    "P -> S(dim, sizes): sum over ranks, rank r keeps shard r along dim", [Galaxy_OwnCost]> {
  let arguments = (ins GF32OrI32Tensor:$input, I64Attr:$dim, DenseI64ArrayAttr:$sizes);
  let hasVerifier = 1;
}

def Galaxy_SliceOp : Galaxy_RedistOp<"slice",
    "R -> S(dim, sizes): each rank keeps its shard (no communication)", [Galaxy_NoFlops]> {
  let arguments = (ins GF32OrI32Tensor:$input, I64Attr:$dim, DenseI64ArrayAttr:$sizes);
  let hasVerifier = 1;
}

def Galaxy_ToPartialOp : Galaxy_RedistOp<"to_partial",
    "R -> P (rank 0 keeps the value, the others hold zeros) or S -> P (each rank "
    "zero-pads its shard to the full shape); no communication", [Galaxy_NoFlops, Galaxy_OwnRankLowering]> {
  let arguments = (ins GF32OrI32Tensor:$input);
  // Lowers to `pad` (from S) or `scale` by 1 / 0 (from R).
  let kernel = "";
}

// to_partial from S: each rank zero-pads its shard to the full shape.
def Galaxy_PadKernel : Galaxy_Kernel<"pad"> {
  let summary = "S(dim, sizes) -> P: zero-pad this rank's shard to the full shape";
  let inputs = [KernelOperand<"input", "f32|i32">];
  let outputs = [KernelOperand<"result", "f32|i32">];
  let kernelAttrs = [RequiredKernelAttr<"dim", "int", "the sharded dim">,
                     RequiredKernelAttr<"sizes", "ints", "every rank's shard size along dim">];
  let kernelRunByExecutor = 1;
}

#endif // GALAXY_OPS_TD
