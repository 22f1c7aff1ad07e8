//===- Peft.cpp - LoRA, adapters and freezing as a rewrite of @forward ----===//
#include "galaxy/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"

namespace galaxy {
#define GEN_PASS_DEF_PEFT
#include "galaxy/Passes.h.inc"
} // namespace galaxy

using namespace mlir;
using namespace galaxy;

namespace {

// The model's PEFT declarations, stamped on the module by its builder
// (models/build.cpp): target name -> the Hugging Face module suffixes it
// reaches, the module prefixes of its layers, the targets an adapter follows
// and the parameters every method trains.
struct ModelPeft {
  llvm::StringMap<SmallVector<std::string>> suffixes;
  SmallVector<std::string> targetNames; // declaration order, for messages
  SmallVector<std::string> layerPrefixes, adapterAfter, alwaysTrainable;

  static ModelPeft read(ModuleOp m) {
    ModelPeft p;
    if (auto targets = m->getAttrOfType<ArrayAttr>(kPeftTargetsAttr))
      for (Attribute a : targets) {
        auto entry = dyn_cast<ArrayAttr>(a); // [name, suffix, ...]
        if (!entry || entry.size() < 2)
          continue;
        StringRef name = cast<StringAttr>(entry[0]).getValue();
        p.targetNames.push_back(name.str());
        for (Attribute s : entry.getValue().drop_front())
          p.suffixes[name].push_back(cast<StringAttr>(s).getValue().str());
      }
    auto strings = [&](StringRef attr, SmallVector<std::string> &out) {
      if (auto arr = m->getAttrOfType<ArrayAttr>(attr))
        for (Attribute a : arr)
          out.push_back(cast<StringAttr>(a).getValue().str());
    };
    strings(kLayerPrefixesAttr, p.layerPrefixes);
    strings(kAdapterAfterAttr, p.adapterAfter);
    strings(kAlwaysTrainableAttr, p.alwaysTrainable);
    return p;
  }

  // "bert.encoder.layer.3.output.dense" is target "output": a layer prefix,
  // the layer number, then exactly one of the target's suffixes (so the
  // attention's "attention.output.dense" is not "output").
  bool matches(StringRef module, StringRef target) const {
    auto it = suffixes.find(target);
    if (it == suffixes.end())
      return false;
    for (const std::string &prefix : layerPrefixes) {
      if (!module.starts_with(prefix))
        continue;
      StringRef rest = module.drop_front(prefix.size());
      auto [number, tail] = rest.split('.');
      unsigned layer;
      if (!number.getAsInteger(10, layer) &&
          llvm::is_contained(it->second, tail))
        return true;
    }
    return false;
  }

  std::string names() const {
    if (targetNames.size() < 2)
      return llvm::join(targetNames, "");
    return llvm::join(ArrayRef(targetNames).drop_back(), ", ") + " or " +
           targetNames.back();
  }
};

StringRef lastDim(Value v) {
  return dimsOf(v).rsplit(',').second.empty() ? dimsOf(v)
                                              : dimsOf(v).rsplit(',').second;
}

std::string withLastDim(Value v, StringRef last) {
  StringRef d = dimsOf(v);
  auto [head, tail] = d.rsplit(',');
  return tail.empty() && !d.contains(',') ? last.str()
                                          : (head + "," + last).str();
}

struct PeftPass : galaxy::impl::PeftBase<PeftPass> {
  using PeftBase::PeftBase;

  void runOnOperation() override;
  // The method's branches and trainable flags in one function.
  LogicalResult rewrite(func::FuncOp fn, const ModelPeft &model);
  void addLora(LinearOp lin, StringRef module);
  void addAdapter(LinearOp lin, StringRef module);
  void flipToFanInFanOut(LinearOp lin);
  Value param(OpBuilder &b, Location loc, const std::string &name,
              ArrayRef<int64_t> shape, StringRef init, StringRef dims);
  Value stamp(Operation *from, Value v, StringRef dims, StringRef block = "");

  Operation *anchor = nullptr; // the forward op whose attributes new ops copy
  int64_t nextOpId = 1;
  double initStd = 0.02;
  bool inference = false; // rewriting a generation function: no dropout
};

Value PeftPass::stamp(Operation *from, Value v, StringRef dims,
                      StringRef block) {
  Operation *op = v.getDefiningOp();
  copyPlacement(from, op);
  if (!block.empty())
    op->setAttr(kBlockAttr, StringAttr::get(op->getContext(), block));
  setDims(v, dims);
  return v;
}

Value PeftPass::param(OpBuilder &b, Location loc, const std::string &name,
                      ArrayRef<int64_t> shape, StringRef init, StringRef dims) {
  auto t = RankedTensorType::get(shape, b.getF32Type());
  Value p = b.create<ParamOp>(
      loc, t, b.getStringAttr(name), b.getBoolAttr(true), b.getStringAttr(init),
      b.getF64FloatAttr(init == "normal" ? initStd : 0.0));
  return stamp(anchor, p, dims);
}

void PeftPass::addLora(LinearOp lin, StringRef module) {
  OpBuilder b(lin->getContext());
  b.setInsertionPointAfter(lin);
  Location loc = lin.getLoc();
  anchor = lin;
  Value x = lin.getInput(), y = lin.getResult();
  auto xs = cast<RankedTensorType>(x.getType()).getShape();
  auto ys = lin.getType().getShape();
  int64_t in = xs.back(), out = ys.back(), r = loraDim;
  StringRef inDim = lastDim(x), outDim = lastDim(y);
  Value a = param(b, loc, (module + ".lora_A.weight").str(), {r, in},
                  "kaiming_uniform", ("R," + inDim).str());
  Value bw = param(b, loc, (module + ".lora_B.weight").str(), {out, r}, "zeros",
                   (outDim + ",R").str());
  Value xd = x;
  if (loraDropout > 0 && !inference)
    xd = stamp(lin,
               b.create<DropoutOp>(loc, x, b.getF64FloatAttr(loraDropout),
                                   b.getI64IntegerAttr(nextOpId++)),
               dimsOf(x));
  SmallVector<int64_t> ts(xs.drop_back());
  ts.push_back(r);
  auto tt = RankedTensorType::get(ts, b.getF32Type());
  Value t = stamp(
      lin, b.create<LinearOp>(loc, tt, xd, a, Value(), b.getBoolAttr(true)),
      withLastDim(x, "R"));
  Value u = stamp(
      lin,
      b.create<LinearOp>(loc, y.getType(), t, bw, Value(), b.getBoolAttr(true)),
      dimsOf(y));
  Value s = stamp(
      lin, b.create<ScaleOp>(loc, u, b.getF64FloatAttr(loraAlpha / double(r))),
      dimsOf(y));
  Value sum = stamp(lin, b.create<AddOp>(loc, y, s), dimsOf(y));
  y.replaceAllUsesExcept(sum, sum.getDefiningOp());
}

void PeftPass::addAdapter(LinearOp lin, StringRef module) {
  OpBuilder b(lin->getContext());
  b.setInsertionPointAfter(lin);
  Location loc = lin.getLoc();
  anchor = lin;
  Value h = lin.getResult();
  int64_t hidden = lin.getType().getShape().back(), width = hidden / adapterDim;
  StringRef hDim = lastDim(h);
  // BERT's "attention.output.dense" gets "attention.output.adapter"; a
  // linear not named *.dense gets "<module>.adapter".
  std::string prefix =
      ((module.ends_with(".dense") ? module.drop_back(strlen(".dense"))
                                   : module) +
       ".adapter")
          .str();
  // The adapter runs in the con region that consumes it (sequence-parallel in
  // Galaxy mode, replicated in TP) rather than on the partial sums of ATT/MLP.
  auto linear = [&](Value x, const std::string &name, int64_t inN, int64_t outN,
                    StringRef inD, StringRef outD, StringRef wInit) {
    Value w = param(b, loc, name + ".weight", {outN, inN}, wInit,
                    (outD + "," + inD).str());
    Value bias = param(b, loc, name + ".bias", {outN}, "zeros", outD);
    for (Value p : {w, bias})
      p.getDefiningOp()->setAttr(kBlockAttr, b.getStringAttr("con"));
    auto xs = cast<RankedTensorType>(x.getType()).getShape();
    SmallVector<int64_t> ys(xs.drop_back());
    ys.push_back(outN);
    return stamp(lin,
                 b.create<LinearOp>(loc,
                                    RankedTensorType::get(ys, b.getF32Type()),
                                    x, w, bias, b.getBoolAttr(true)),
                 withLastDim(x, outD), "con");
  };
  Value down = linear(h, prefix + ".down", hidden, width, hDim, "Ad", "normal");
  Value actv = adapterAct == "relu" ? b.create<ReluOp>(loc, down).getResult()
               : adapterAct == "swish"
                   ? b.create<SiluOp>(loc, down).getResult()
                   : b.create<GeluOp>(
                          loc, down, adapterAct == "gelu_new" ? "tanh" : "none")
                         .getResult();
  Value act = stamp(lin, actv, dimsOf(down), "con");
  Value up = linear(act, prefix + ".up", width, hidden, "Ad", hDim, "zeros");
  Value sum = stamp(lin, b.create<AddOp>(loc, h, up), dimsOf(h), "con");
  h.replaceAllUsesExcept(sum, llvm::SmallPtrSet<Operation *, 2>{
                                  sum.getDefiningOp(), down.getDefiningOp()});
}

// fan_in_fan_out: the checkpoint stores this weight as [in, out]; use it as is.
void PeftPass::flipToFanInFanOut(LinearOp lin) {
  auto w = lin.getWeight().getDefiningOp<ParamOp>();
  auto shape = w.getType().getShape();
  OpBuilder b(w);
  auto t = RankedTensorType::get({shape[1], shape[0]}, b.getF32Type());
  auto flipped =
      b.create<ParamOp>(w.getLoc(), t, w.getNameAttr(), w.getTrainableAttr(),
                        w.getInitAttr(), w.getStdAttr());
  flipped->setAttrs(w->getDiscardableAttrDictionary());
  auto [outD, inD] = dimsOf(w.getResult()).split(',');
  setDims(flipped.getResult(), (inD + "," + outD).str());
  lin.getWeightMutable().assign(flipped);
  lin.setTransposeW(false);
  if (w->use_empty())
    w.erase();
}

void PeftPass::runOnOperation() {
  ModuleOp module = getOperation();
  auto fn = module.lookupSymbol<func::FuncOp>("forward");
  if (!fn) {
    module.emitError("galaxy-peft needs a func.func @forward");
    return signalPassFailure();
  }
  if (method != "full" && method != "lora" && method != "adapter" &&
      method != "side") {
    module.emitError() << "unknown PEFT method '" << method
                       << "'; expected full, lora, adapter or side";
    return signalPassFailure();
  }
  const ModelPeft model = ModelPeft::read(module);
  for (const std::string &t : loraTargets)
    if (!model.suffixes.count(t)) {
      module.emitError() << "unknown LoRA target '" << t << "'; expected "
                         << (model.targetNames.empty()
                                 ? std::string("a target the model declares "
                                               "(it declares none)")
                                 : model.names());
      return signalPassFailure();
    }
  if (adapterAct != "gelu_new" && adapterAct != "gelu" &&
      adapterAct != "relu" && adapterAct != "swish") {
    module.emitError() << "unknown adapter non_linearity '" << adapterAct
                       << "'; expected gelu_new, gelu, relu or swish";
    return signalPassFailure();
  }
  if (method == "lora" && loraDim <= 0) {
    module.emitError() << "LoRA rank must be positive, got " << loraDim;
    return signalPassFailure();
  }
  fn.walk([&](DropoutOp d) {
    nextOpId = std::max<int64_t>(nextOpId, d.getOpId() + 1);
  });
  fn.walk([&](ParamOp p) {
    if (p.getInit() == "normal")
      initStd = p.getStd().convertToDouble();
  });
  // The generation functions (a causal LM's @prefill / @decode,
  // models/llama/LlamaInference.h; a seq2seq's @encode / @decode,
  // models/bart/BartInference.h) use the same parameters: they get the same
  // branches (without dropout: they only run in eval mode) and the same
  // trainable flags.
  for (StringRef name : {"forward", "prefill", "encode", "decode"}) {
    auto f = module.lookupSymbol<func::FuncOp>(name);
    if (!f)
      continue;
    inference = name != "forward";
    if (failed(rewrite(f, model)))
      return signalPassFailure();
  }
}

LogicalResult PeftPass::rewrite(func::FuncOp fn, const ModelPeft &model) {
  SmallVector<std::pair<LinearOp, std::string>> linears;
  fn.walk([&](LinearOp lin) {
    if (auto w = lin.getWeight().getDefiningOp<ParamOp>())
      if (w.getName().ends_with(".weight"))
        linears.push_back(
            {lin, w.getName().drop_back(strlen(".weight")).str()});
  });
  for (auto &[lin, name] : linears) {
    StringRef mod = name;
    if (method == "lora") {
      bool target = llvm::any_of(loraTargets, [&](const std::string &t) {
        return model.matches(mod, t);
      });
      if (!target)
        continue;
      if (fanInFanOut)
        flipToFanInFanOut(lin);
      addLora(lin, mod);
    } else if (method == "adapter" &&
               llvm::any_of(model.adapterAfter, [&](const std::string &t) {
                 return model.matches(mod, t);
               })) {
      int64_t hidden = lin.getType().getShape().back();
      if (adapterDim <= 0 || hidden % adapterDim != 0)
        return lin.emitError() << "adapter_reduction_dim " << adapterDim
                               << " does not divide the hidden size " << hidden;
      addAdapter(lin, mod);
    }
  }

  // Freeze everything the method does not train; the model's task head
  // (alwaysTrainable) always trains.
  if (method == "full")
    return success();
  fn.walk([&](ParamOp p) {
    StringRef n = p.getName();
    bool trainable = llvm::any_of(model.alwaysTrainable,
                                  [&](const std::string &prefix) {
                                    return n.starts_with(prefix);
                                  }) ||
                     (method == "lora" && n.contains(".lora_")) ||
                     (method == "adapter" && n.contains(".adapter.")) ||
                     (method == "side" && n.starts_with("side."));
    p.setTrainable(trainable);
  });
  return success();
}

} // namespace

//===- galaxy-merge-lora: merge_weights for eval/inference ----------------===//
namespace galaxy {
#define GEN_PASS_DEF_MERGELORA
#include "galaxy/Passes.h.inc"
} // namespace galaxy

namespace {

// One LoRA branch as galaxy-peft built it:
//   sum = add(y, scale(linear(linear(dropout?(x), A), B)))  with y = linear(x,
//   W, b).
struct LoraBranch {
  LinearOp base, down, up;
  ParamOp a, b;
  ScaleOp scale;
  AddOp sum;
  DropoutOp dropout; // null without lora_dropout
};

template <typename T> T onlyUser(Value v) {
  return v.hasOneUse() ? dyn_cast<T>(*v.getUsers().begin()) : T();
}

std::optional<LoraBranch> matchBranch(ParamOp a) {
  LoraBranch br;
  br.a = a;
  br.down = onlyUser<LinearOp>(a.getResult());
  if (!br.down || br.down.getWeight() != a.getResult())
    return std::nullopt;
  br.up = onlyUser<LinearOp>(br.down.getResult());
  if (!br.up)
    return std::nullopt;
  br.b = br.up.getWeight().getDefiningOp<ParamOp>();
  br.scale = onlyUser<ScaleOp>(br.up.getResult());
  if (!br.b || !br.scale)
    return std::nullopt;
  br.sum = onlyUser<AddOp>(br.scale.getResult());
  if (!br.sum || br.sum.getRhs() != br.scale.getResult())
    return std::nullopt;
  br.base = br.sum.getLhs().getDefiningOp<LinearOp>();
  if (!br.base || !br.base.getWeight().getDefiningOp<ParamOp>())
    return std::nullopt;
  br.dropout = br.down.getInput().getDefiningOp<DropoutOp>();
  Value x = br.dropout ? br.dropout.getInput() : br.down.getInput();
  if (x != br.base.getInput())
    return std::nullopt;
  return br;
}

struct MergeLoraPass : galaxy::impl::MergeLoraBase<MergeLoraPass> {
  void runOnOperation() override {
    auto fn = getOperation().lookupSymbol<func::FuncOp>("forward");
    if (!fn) {
      getOperation().emitError("galaxy-merge-lora needs a func.func @forward");
      return signalPassFailure();
    }
    SmallVector<ParamOp> factorsA;
    fn.walk([&](ParamOp p) {
      if (p.getName().ends_with(".lora_A.weight"))
        factorsA.push_back(p);
    });
    for (ParamOp a : factorsA) {
      auto br = matchBranch(a);
      if (!br) {
        a.emitError("galaxy-merge-lora: ")
            << a.getName() << " is not used as galaxy-peft's LoRA branch "
            << "y + scale(linear(linear(x, A), B)); run it right after "
               "galaxy-peft/galaxy-autodiff";
        return signalPassFailure();
      }
      merge(*br);
    }
  }

  void merge(LoraBranch &br) {
    LinearOp base = br.base;
    Value w = base.getWeight();
    auto wt = cast<RankedTensorType>(w.getType());
    // The factors are used before the base linear now.
    br.a->moveBefore(base);
    br.b->moveBefore(base);
    OpBuilder b(base);
    Location loc = base.getLoc();
    auto stamp = [&](Value v) {
      copyPlacement(base, v.getDefiningOp());
      setDims(v, dimsOf(w));
      return v;
    };
    // transpose_w: W is [out, in] and B·A matches it; otherwise
    // (fan_in_fan_out) W is [in, out] and (B·A)ᵀ = Aᵀ·Bᵀ.
    bool outIn = base.getTransposeW();
    Value lhs = outIn ? br.b.getResult() : br.a.getResult();
    Value rhs = outIn ? br.a.getResult() : br.b.getResult();
    Value delta = stamp(
        b.create<MatmulOp>(loc, wt, lhs, rhs, b.getBoolAttr(!outIn),
                           b.getBoolAttr(!outIn), b.getF64FloatAttr(1.0)));
    Value scaled =
        stamp(b.create<ScaleOp>(loc, delta, br.scale.getAlphaAttr()));
    Value merged = stamp(b.create<AddOp>(loc, w, scaled));
    base.getWeightMutable().assign(merged);
    br.sum.getResult().replaceAllUsesWith(base.getResult());
    br.sum.erase();
    br.scale.erase();
    br.up.erase();
    br.down.erase();
    if (br.dropout && br.dropout->use_empty())
      br.dropout.erase();
  }
};

} // namespace
