#include "runtime/exec/executor.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "runtime/cpu/philox.h"
#include "runtime/exec/box_copy.h"
#include "runtime/exec/gather_boxes.h"
#include "runtime/exec/plan_kernels.h"
#include "runtime/exec/staged_communicator.h"
#include "runtime/plan/plan_sizes.h"
#include "runtime/plan/programs.h"
#include "runtime/plan/version.h"

namespace galaxy::rt {

namespace {
int64_t numel(const google::protobuf::RepeatedField<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

uint32_t fnv1a(const std::string &s) {
  uint32_t h = 2166136261u;
  for (unsigned char c : s)
    h = (h ^ c) * 16777619u;
  return h;
}

std::string shapeStr(const google::protobuf::RepeatedField<int64_t> &s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

std::vector<int64_t> vec(const google::protobuf::RepeatedField<int64_t> &s) {
  return {s.begin(), s.end()};
}

// Instr.tile: the listed operands as rows [begin, begin + count) of their
// dim 0, one contiguous slab of their buffer.
absl::Status applyTile(const plan::Instr &instr, std::vector<Tensor> &in,
                       std::vector<Tensor> &out, const std::string &where) {
  const plan::Tile &tile = instr.tile();
  auto view = [&](std::vector<Tensor> &ts, int32_t k,
                  const char *what) -> absl::Status {
    if (k < 0 || k >= int32_t(ts.size()))
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": tile names ", what, " ", k, " of ", ts.size(),
                       "; recompile the plan"));
    Tensor &t = ts[k];
    if (t.shape.empty() || tile.begin() < 0 || tile.count() < 1 ||
        tile.begin() > t.shape[0] - tile.count())
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": tile rows [", tile.begin(), ", +", tile.count(), ") of ",
          what, " ", k, " of shape ", absl::StrJoin(t.shape, "x"),
          " are outside its dim 0; recompile the plan"));
    const int64_t row = t.numel() / t.shape[0]; // elements of one row
    t.data = static_cast<char *>(t.data) + 4 * row * tile.begin();
    t.shape[0] = tile.count();
    return absl::OkStatus();
  };
  for (int32_t k : tile.inputs())
    if (absl::Status s = view(in, k, "input"); !s.ok())
      return s;
  for (int32_t k : tile.outputs())
    if (absl::Status s = view(out, k, "output"); !s.ok())
      return s;
  return absl::OkStatus();
}

// Unique in the process, so kernels' copies keyed by a parameter's address
// cannot outlive an executor whose memory another one reuses.
uint64_t freshParamsVersion() {
  static std::atomic<uint64_t> last{0};
  return ++last;
}
} // namespace

absl::StatusOr<std::unique_ptr<Executor>>
Executor::create(plan::Plan plan, Backend &backend, comm::Communicator *comm,
                 std::string origin, CommBuffers commBuffers) {
  if (plan.format_version() != plan::kPlanFormatVersion)
    return absl::FailedPreconditionError(absl::StrCat(
        origin, " has format version ", plan.format_version(),
        " but this galaxy-run reads version ", plan::kPlanFormatVersion,
        "; recompile it with the matching galaxyc"));
  // A hand-edited plan, or one from a mismatched build, may carry a value
  // this runtime does not know.
  if (!plan::MatmulDType_IsValid(plan.matmul_dtype()))
    return absl::FailedPreconditionError(absl::StrCat(
        origin, " asks for matmul_dtype ", plan.matmul_dtype(),
        ", which this galaxy-run does not know (it runs MATMUL_F32 and "
        "MATMUL_BF16); recompile it with the matching galaxyc"));
  // Sizes before anything is allocated from them: a wrapped or negative size
  // would allocate too little and let kernels write past it.
  if (absl::StatusOr<plan::PlanMemory> mem =
          plan::checkLoadedPlanSizes(plan, origin);
      !mem.ok())
    return mem.status();
  if (absl::Status s = checkPlanKernels(plan, backend, origin); !s.ok())
    return s;
  std::unique_ptr<Executor> ex(new Executor(std::move(plan), backend, comm));
  DeviceMemory *mem = deviceMemoryOfBackend(backend);
  const bool commOnDevice = comm && commBuffers == CommBuffers::kDevice;
  if (commOnDevice && !mem)
    return absl::InvalidArgumentError(absl::StrCat(
        "the communicator takes device buffers but backend ", backend.name(),
        " keeps its tensors in host memory; connect Gloo for it"));
  ex->store_ = std::make_unique<BufferStore>(mem);
  if (mem) {
    ex->mover_ = std::make_unique<DeviceMover>(*mem, comm, commOnDevice);
    if (commOnDevice) {
      ex->stagedComm_ = comm::makeHostStagedCommunicator(*comm, *mem);
      ex->hostComm_ = ex->stagedComm_.get();
    }
  }
  if (absl::Status s = ex->checkWorld(origin); !s.ok())
    return s;
  if (const char *e = std::getenv("GALAXY_COMM_OVERLAP"); e && *e)
    ex->overlap_ = std::string_view(e) != "0";
  if (absl::Status s = ex->bind(); !s.ok())
    return s;
  if (absl::Status s = ex->agreeOnGatheredOutputs(); !s.ok())
    return s;
  return ex;
}

// Gathering an output is collective, so every rank must decide alike even
// where its own slice happens to be the whole tensor or empty: sum the flags.
absl::Status Executor::agreeOnGatheredOutputs() {
  std::vector<int32_t> flags;
  for (const plan::Program &prog : plan_.programs())
    for (const plan::Binding &o : prog.outputs()) {
      const plan::Buffer &b = plan_.buffers(o.buffer());
      flags.push_back(b.global_shape_size() > 0 &&
                      numel(b.global_shape()) != numel(b.shape()));
    }
  if (hostComm_ && world_ > 1 && !flags.empty())
    if (absl::Status s = hostComm_->allReduceSum(flags.data(), flags.size());
        !s.ok())
      return s;
  size_t i = 0;
  for (const plan::Program &prog : plan_.programs()) {
    BoundProgram &bp = programs_[prog.name()];
    bp.gatherOutput.clear();
    for (int k = 0; k < prog.outputs_size(); ++k)
      bp.gatherOutput.push_back(flags[i++] > 0);
  }
  return absl::OkStatus();
}

absl::Status Executor::checkWorld(const std::string &origin) {
  const int world = std::max(plan_.world(), 1), rank = plan_.rank();
  if (rank < 0 || rank >= world)
    return absl::InvalidArgumentError(
        absl::StrCat(origin, " says rank ", rank, " of ", world,
                     ", which is out of range; recompile it"));
  const int commRank = comm_ ? comm_->rank() : 0,
            commWorld = comm_ ? comm_->size() : 1;
  if (rank != commRank || world != commWorld)
    return absl::FailedPreconditionError(absl::StrCat(
        origin, " is for rank ", rank, " of ", world,
        " but this process is rank ", commRank, " of ", commWorld,
        world != commWorld
            ? absl::StrCat("; recompile with --world ", commWorld, " or run ",
                           world, " ranks")
            : absl::StrCat("; load rank", commRank, ".plan.pb instead")));
  rank_ = rank;
  world_ = world;
  return absl::OkStatus();
}

absl::Status Executor::bind() {
  const int nb = plan_.buffers_size();
  absl::StatusOr<void *> arena = store_->allocate(
      std::max<int64_t>(plan_.arena_bytes(), 64), "the activation arena");
  if (!arena.ok())
    return arena.status();
  arena_ = static_cast<char *>(*arena);
  // Coalesced groups (Instr.coalesce): consecutive untiled f32 all-reduces.
  // On a device the members run one by one in the stream, as do those of a
  // plan run without a communicator.
  auto bindGroups = [&](const plan::Program &prog,
                        std::vector<BoundInstr> &bound) -> absl::Status {
    const bool host = !mover_ && comm_ && world_ > 1;
    for (int i = 0; i < int(bound.size()); ++i) {
      const int n = bound[i].instr->coalesce();
      if (n == 0)
        continue;
      auto bad = [&](const std::string &why) {
        return absl::InvalidArgumentError(absl::StrCat(
            prog.name(), " instruction ", i, " (", bound[i].instr->block(),
            "): coalesce ", n, ": ", why));
      };
      if (n < 1 || n > int(bound.size()) - i)
        return bad(absl::StrCat("the program has ", bound.size() - i,
                                " instructions from here"));
      for (int j = i; j < i + n; ++j) {
        const BoundInstr &m = bound[j];
        if (!m.move || m.move->kind != MoveKind::kAllReduce ||
            m.move->dtype != plan::F32 || m.instr->has_tile())
          return bad(absl::StrCat("member ", j - i, " (", m.instr->kernel(),
                                  ") is not an untiled f32 all_reduce"));
        if (j > i && m.instr->coalesce() != 0)
          return bad(absl::StrCat("member ", j - i, " starts a group itself"));
      }
      if (host && n > 1)
        bound[i].group = n;
      i += n - 1;
    }
    return absl::OkStatus();
  };
  if (const plan::Pipeline &pp = plan_.pipeline(); pp.num_stages() > 0) {
    if (pp.slots() < 1 || pp.stash_slot_bytes() < 0)
      return absl::InvalidArgumentError(absl::StrCat(
          "the plan's pipeline has ", pp.slots(), " stash slots of ",
          pp.stash_slot_bytes(),
          " bytes; it needs at least 1 slot of >= 0 bytes (recompile it)"));
    slots_ = pp.slots();
    slotBytes_ = pp.stash_slot_bytes();
    absl::StatusOr<void *> stash = store_->allocate(
        std::max<int64_t>(slots_ * slotBytes_, 64), "the stash slots");
    if (!stash.ok())
      return stash.status();
    stash_ = static_cast<char *>(*stash);
  }

  params_.resize(plan_.params_size());
  paramNumel_.resize(plan_.params_size());
  for (int i = 0; i < plan_.params_size(); ++i) {
    paramNumel_[i] = numel(plan_.params(i).slice_shape());
    absl::StatusOr<void *> p =
        store_->allocate(4 * paramNumel_[i], "a parameter slice");
    if (!p.ok())
      return absl::Status(p.status().code(),
                          absl::StrCat("parameter ", plan_.params(i).name(),
                                       ": ", p.status().message()));
    params_[i] = static_cast<float *>(*p);
  }

  tensors_.resize(nb);
  stashTensors_.assign(nb, {});
  for (int id = 0; id < nb; ++id) {
    const plan::Buffer &b = plan_.buffers(id);
    if (b.id() != id)
      return absl::InvalidArgumentError(
          absl::StrCat("plan buffer ", id, " has id ", b.id()));
    Tensor &t = tensors_[id];
    t.dtype = b.dtype();
    t.shape.assign(b.shape().begin(), b.shape().end());
    int64_t n = numel(b.shape());
    if (b.stash()) {
      if (absl::Status s = bindStash(b, 4 * n); !s.ok())
        return s;
      continue;
    }
    switch (b.kind()) {
    case plan::Buffer::ARENA:
      if (b.offset() < 0 || b.offset() + 4 * n > plan_.arena_bytes())
        return absl::InvalidArgumentError(
            absl::StrCat("buffer ", b.name(), " lies outside the arena"));
      t.data = arena_ + b.offset();
      break;
    case plan::Buffer::PARAM:
    case plan::Buffer::OPT_STATE: {
      if (b.param() < 0 || b.param() >= plan_.params_size() ||
          paramNumel_[b.param()] != n)
        return absl::InvalidArgumentError(absl::StrCat(
            "buffer ", b.name(), " does not match its parameter's slice"));
      if (b.kind() == plan::Buffer::PARAM) {
        t.data = params_[b.param()];
        t.param = true;
      } else {
        absl::StatusOr<void *> s = store_->allocate(4 * n, "optimizer state");
        if (!s.ok())
          return s.status();
        t.data = state_[id] = static_cast<float *>(*s);
      }
      break;
    }
    case plan::Buffer::INPUT:
      if (b.global_shape_size() > 0 &&
          !boxInside(vec(b.global_shape()),
                     b.slice_offset_size()
                         ? vec(b.slice_offset())
                         : std::vector<int64_t>(b.shape_size(), 0),
                     vec(b.shape())))
        return absl::InvalidArgumentError(absl::StrCat(
            "input buffer ", b.name(), " of shape ", shapeStr(b.shape()),
            " at offset ", shapeStr(b.slice_offset()),
            " does not fit its global shape ", shapeStr(b.global_shape())));
      if (absl::StatusOr<void *> in = store_->allocate(4 * n, "an input");
          in.ok())
        t.data = *in;
      else
        return in.status();
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("buffer ", b.name(), " has unknown kind"));
    }
  }
  for (const plan::Program &prog : plan_.programs()) {
    BoundProgram &bp = programs_[prog.name()];
    bp.program = &prog;
    bool touchesStash = false;
    auto check = [&](int32_t id, const char *what) -> absl::Status {
      if (id < 0 || id >= nb)
        return absl::InvalidArgumentError(
            absl::StrCat(prog.name(), ": ", what, " buffer ", id,
                         " which the plan does not have"));
      touchesStash = touchesStash || plan_.buffers(id).stash();
      return absl::OkStatus();
    };
    for (const plan::Instr &instr : prog.instrs()) {
      for (int32_t id : instr.inputs())
        if (absl::Status s = check(id, (instr.kernel() + " reads").c_str());
            !s.ok())
          return s;
      for (int32_t id : instr.outputs())
        if (absl::Status s = check(id, (instr.kernel() + " writes").c_str());
            !s.ok())
          return s;
    }
    for (const auto *bindings : {&prog.inputs(), &prog.outputs()})
      for (const plan::Binding &bd : *bindings)
        if (absl::Status s =
                check(bd.buffer(), ("'" + bd.name() + "' binds").c_str());
            !s.ok())
          return s;
    bp.bySlot.resize(touchesStash ? slots_ : 1);
    for (int slot = 0; slot < int(bp.bySlot.size()); ++slot) {
      for (const plan::Instr &instr : prog.instrs()) {
        BoundInstr bi{&instr, {}, {}, std::nullopt};
        for (int32_t id : instr.inputs())
          bi.in.push_back(tensorAt(id, slot));
        for (int32_t id : instr.outputs())
          bi.out.push_back(tensorAt(id, slot));
        if (instr.has_tile())
          if (absl::Status s = applyTile(
                  instr, bi.in, bi.out,
                  absl::StrCat(prog.name(), " instruction ",
                               bp.bySlot[slot].size(), " (", instr.kernel(),
                               " in ", instr.block(), ")"));
              !s.ok())
            return s;
        if (isDataMovement(instr.kernel())) {
          auto move = bindDataMove(instr, bi.in, bi.out, rank_, world_,
                                   absl::StrCat(prog.name(), " instruction ",
                                                bp.bySlot[slot].size(), " (",
                                                instr.block(), ")"));
          if (!move.ok())
            return move.status();
          bi.move = std::move(*move);
          // Collectives over a host communicator may run behind the
          // computation; a device's (mover_) stay in its stream order.
          const MoveKind k = bi.move->kind;
          bi.async = !mover_ && comm_ && world_ > 1 &&
                     (k == MoveKind::kAllReduce || k == MoveKind::kAllGather ||
                      k == MoveKind::kReduceScatter);
        }
        bp.bySlot[slot].push_back(std::move(bi));
      }
      if (absl::Status s = bindGroups(prog, bp.bySlot[slot]); !s.ok())
        return s;
      std::vector<MemoryAccess> access;
      std::vector<bool> async;
      for (const BoundInstr &bi : bp.bySlot[slot]) {
        access.push_back(accessOf(bi.in, bi.out));
        async.push_back(bi.async);
      }
      bp.waitsBySlot.push_back(completionPoints(access, async));
    }
  }
  return absl::OkStatus();
}

// A stash buffer lives in every slot at the same offset: bind one tensor per
// slot. Only pipeline plans have slots, and only transient values (ARENA) and
// batch inputs (INPUT) belong there.
absl::Status Executor::bindStash(const plan::Buffer &b, int64_t bytes) {
  if (!stash_)
    return absl::InvalidArgumentError(absl::StrCat(
        "buffer ", b.name(),
        " is marked stash but the plan has no pipeline (Plan.pipeline."
        "num_stages is 0); recompile the plan"));
  if (b.kind() != plan::Buffer::ARENA && b.kind() != plan::Buffer::INPUT)
    return absl::InvalidArgumentError(
        absl::StrCat("buffer ", b.name(),
                     " is marked stash but is a parameter or optimizer "
                     "state; only ARENA and INPUT buffers live in stash "
                     "slots (recompile the plan)"));
  if (b.offset() < 0 || b.offset() + bytes > slotBytes_)
    return absl::InvalidArgumentError(absl::StrCat(
        "stash buffer ", b.name(), " (", bytes, " bytes at byte ", b.offset(),
        ") lies outside the stash slot of ", slotBytes_,
        " bytes (Pipeline.stash_slot_bytes); recompile the plan"));
  if (b.kind() == plan::Buffer::INPUT && b.global_shape_size() > 0 &&
      !boxInside(vec(b.global_shape()),
                 b.slice_offset_size()
                     ? vec(b.slice_offset())
                     : std::vector<int64_t>(b.shape_size(), 0),
                 vec(b.shape())))
    return absl::InvalidArgumentError(absl::StrCat(
        "input buffer ", b.name(), " of shape ", shapeStr(b.shape()),
        " at offset ", shapeStr(b.slice_offset()),
        " does not fit its global shape ", shapeStr(b.global_shape())));
  std::vector<Tensor> &slots = stashTensors_[b.id()];
  for (int s = 0; s < slots_; ++s) {
    Tensor t = tensors_[b.id()];
    t.data = stash_ + s * slotBytes_ + b.offset();
    slots.push_back(std::move(t));
  }
  tensors_[b.id()] = slots[0];
  return absl::OkStatus();
}

void Executor::initParams(uint64_t seed) {
  weightsVersion_ = paramsVersion_ = freshParamsVersion();
  for (int i = 0; i < plan_.params_size(); ++i) {
    const plan::Param &p = plan_.params(i);
    const plan::Initializer &init = p.init();
    const int64_t n = paramNumel_[i];
    // Built in place on the host; in a staging area for a device.
    float *data = static_cast<float *>(store_->stage(params_[i], 4 * n));
    auto upload = [&] {
      if (absl::Status s = store_->fromHost(params_[i], data, 4 * n);
          !s.ok() && deferred_.ok())
        deferred_ = s;
    };
    if (init.kind() == "zeros" || init.kind() == "ones") {
      std::fill(data, data + n, init.kind() == "ones" ? 1.0f : 0.0f);
      upload();
      continue;
    }
    const bool kaiming = init.kind() == "kaiming_uniform"; // a = sqrt(5)
    const double bound =
        1.0 / std::sqrt(double(std::max<int64_t>(init.fan_in(), 1)));
    const double stddev = init.std();
    const uint32_t key = fnv1a(p.name());
    const int rank = p.global_shape_size();
    // Elements are independent (addressed by global index), so any split of
    // the loop draws the same values. Plain threads, not OpenMP: tests fork
    // after initialising, and libgomp's pool does not survive a fork.
    auto fill = [&](int64_t begin, int64_t end) {
      for (int64_t local = begin; local < end; ++local) {
        // Global linear index of this slice element.
        uint64_t g = 0, rest = static_cast<uint64_t>(local), stride = 1;
        for (int d = rank - 1; d >= 0; --d) {
          const uint64_t extent = static_cast<uint64_t>(p.slice_shape(d));
          const uint64_t idx = extent ? rest % extent : 0;
          rest = extent ? rest / extent : 0;
          g += (idx + static_cast<uint64_t>(p.slice_offset(d))) * stride;
          stride *= static_cast<uint64_t>(p.global_shape(d));
        }
        Philox4x32Words w =
            philox4x32_10(uint32_t(g), uint32_t(g >> 32), 0x494E4954u,
                          uint32_t(seed >> 32), uint32_t(seed), key);
        double u1 = ((w.w[0] >> 8) + 1.0) / 16777216.0,
               u2 = (w.w[1] >> 8) / 16777216.0;
        data[local] = kaiming ? float((2.0 * u2 - 1.0) * bound)
                              : float(stddev * std::sqrt(-2.0 * std::log(u1)) *
                                      std::cos(2.0 * M_PI * u2)); // Box-Muller
      }
    };
    const int64_t threads =
        n < (1 << 20)
            ? 1
            : std::max<int64_t>(1, std::thread::hardware_concurrency());
    std::vector<std::thread> pool;
    for (int64_t t = 1; t < threads; ++t)
      pool.emplace_back(fill, n * t / threads, n * (t + 1) / threads);
    fill(0, n / threads);
    for (std::thread &th : pool)
      th.join();
    upload();
  }
  if (absl::Status s = zeroState(); !s.ok() && deferred_.ok())
    deferred_ = s;
}

absl::StatusOr<std::pair<float *, int64_t>>
Executor::optStateHost(int32_t param, int slot) {
  if (store_->device())
    return absl::UnimplementedError(
        "optimizer state lives on the device; only host buffers are exposed");
  for (const auto &[id, data] : state_) {
    const plan::Buffer &b = plan_.buffers(id);
    if (b.param() == param && b.slot() == slot)
      return std::make_pair(data, numel(b.shape()));
  }
  return absl::NotFoundError(absl::StrCat("the plan has no optimizer state ",
                                          slot, " for parameter ", param));
}

absl::Status Executor::zeroState() {
  for (auto &[id, s] : state_) {
    const size_t bytes = 4 * numel(plan_.buffers(id).shape());
    if (DeviceMemory *mem = store_->device()) {
      if (absl::Status st = mem->fillZero(s, bytes); !st.ok())
        return st;
    } else {
      std::memset(s, 0, bytes);
    }
  }
  return absl::OkStatus();
}

absl::Status Executor::loadParams(const io::SafetensorsFile &file) {
  return loadParams(io::TensorSource(file));
}

absl::Status Executor::loadParams(const io::TensorSource &file) {
  weightsVersion_ = paramsVersion_ = freshParamsVersion();
  for (int i = 0; i < plan_.params_size(); ++i) {
    const plan::Param &p = plan_.params(i);
    io::Slice slice{{p.slice_offset().begin(), p.slice_offset().end()},
                    {p.slice_shape().begin(), p.slice_shape().end()}};
    std::vector<int64_t> global(p.global_shape().begin(),
                                p.global_shape().end());
    const size_t bytes = 4 * paramNumel_[i];
    float *host = static_cast<float *>(store_->stage(params_[i], bytes));
    if (absl::Status s = file.readF32Into(p.name(), global, slice, host);
        !s.ok())
      return s;
    if (absl::Status s = store_->fromHost(params_[i], host, bytes); !s.ok())
      return s;
  }
  deferred_ = absl::OkStatus();
  return zeroState();
}

std::string optStateName(const std::string &param, int slot) {
  return param + (slot == 0 ? ".exp_avg" : ".exp_avg_sq");
}

bool isOptStateName(const std::string &name) {
  auto endsWith = [&](std::string_view suffix) {
    return name.size() > suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) ==
               0;
  };
  return endsWith(".exp_avg") || endsWith(".exp_avg_sq");
}

absl::Status Executor::loadOptState(const io::TensorSource &source) {
  for (const auto &[id, data] : state_) {
    const plan::Buffer &b = plan_.buffers(id);
    if (b.slot() != 0 && b.slot() != 1)
      continue; // a pipeline's gradient accumulator: zero between steps
    const plan::Param &p = plan_.params(b.param());
    io::Slice slice{vec(p.slice_offset()), vec(p.slice_shape())};
    const size_t bytes = 4 * numel(b.shape());
    float *host = static_cast<float *>(store_->stage(data, bytes));
    if (absl::Status s = source.readF32Into(optStateName(p.name(), b.slot()),
                                            vec(p.global_shape()), slice, host);
        !s.ok())
      return s;
    if (absl::Status s = store_->fromHost(data, host, bytes); !s.ok())
      return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<Executor::GatheredParams>
Executor::gatherParams(bool withOptState) {
  if (!deferred_.ok())
    return deferred_;
  // Whether a parameter is sharded anywhere must be decided alike on every
  // rank (a rank may hold all of it while others hold nothing): sum the flags.
  std::vector<int32_t> sharded(plan_.params_size(), 0);
  for (int i = 0; i < plan_.params_size(); ++i) {
    const plan::Param &p = plan_.params(i);
    sharded[i] = numel(p.slice_shape()) != numel(p.global_shape());
    if (!comm_ && sharded[i])
      return absl::FailedPreconditionError(absl::StrCat(
          "parameter ", p.name(), " is sharded ", shapeStr(p.slice_shape()),
          " of ", shapeStr(p.global_shape()),
          " but there is no communicator to gather it"));
  }
  if (hostComm_ && world_ > 1)
    if (absl::Status s =
            hostComm_->allReduceSum(sharded.data(), sharded.size());
        !s.ok())
      return s;
  GatheredParams out;
  // `data` (numel values of parameter i's slice, or of a moment sliced like
  // it) as a global tensor in host memory: copied off the device, gathered
  // when sharded; `owned` holds the copy when one is made.
  auto global = [&](int i, const float *data, int64_t n,
                    std::vector<float> &owned,
                    const std::string &what) -> absl::StatusOr<const float *> {
    const plan::Param &p = plan_.params(i);
    if (store_->onDevice()) { // every slice is kept: one copy per tensor
      owned.resize(n);
      if (absl::Status s =
              store_->device()->copyToHost(owned.data(), data, 4 * n);
          !s.ok())
        return s;
      data = owned.data();
    }
    if (sharded[i]) {
      auto g = gatherBoxes(*hostComm_, data, vec(p.global_shape()),
                           vec(p.slice_offset()), vec(p.slice_shape()), what);
      if (!g.ok())
        return g.status();
      owned = std::move(*g);
      data = owned.data();
    }
    return data;
  };
  out.owned.resize(plan_.params_size());
  for (int i = 0; i < plan_.params_size(); ++i) {
    const plan::Param &p = plan_.params(i);
    auto data = global(i, params_[i], paramNumel_[i], out.owned[i],
                       absl::StrCat("parameter ", p.name()));
    if (!data.ok())
      return data.status();
    out.tensors.push_back(
        {p.name(), io::StDType::F32, vec(p.global_shape()), *data});
  }
  if (!withOptState)
    return out;
  // The moments are sliced like their parameter (LowerToPlan's optState), so
  // they gather like it; every rank walks the same (param, slot) order.
  std::vector<std::pair<int, int32_t>> moments; // (param, buffer id)
  for (const auto &[id, data] : state_)
    if (plan_.buffers(id).slot() == 0 || plan_.buffers(id).slot() == 1)
      moments.push_back({plan_.buffers(id).param(), id});
  std::sort(moments.begin(), moments.end(), [&](auto a, auto b) {
    return std::make_pair(a.first, plan_.buffers(a.second).slot()) <
           std::make_pair(b.first, plan_.buffers(b.second).slot());
  });
  out.owned.reserve(out.owned.size() + moments.size()); // stable addresses
  for (const auto &[i, id] : moments) {
    const plan::Param &p = plan_.params(i);
    const plan::Buffer &b = plan_.buffers(id);
    auto data =
        global(i, state_[id], numel(b.shape()), out.owned.emplace_back(),
               absl::StrCat("optimizer state of ", p.name()));
    if (!data.ok())
      return data.status();
    out.tensors.push_back({optStateName(p.name(), b.slot()), io::StDType::F32,
                           vec(p.global_shape()), *data});
  }
  return out;
}

absl::Status Executor::saveParams(const std::string &path) {
  absl::StatusOr<GatheredParams> g = gatherParams();
  if (!g.ok())
    return g.status();
  if (rank_ != 0)
    return absl::OkStatus();
  return io::writeSafetensors(path, g->tensors,
                              {{"format", "pt"}, {"producer", "galaxy-run"}});
}

absl::Status Executor::fillInputs(const plan::Program &program,
                                  const io::Batch &batch, int slot) {
  const std::set<std::string> &kept = programs_.at(program.name()).kept;
  for (const plan::Binding &in : program.inputs()) {
    if (kept.count(in.name()))
      continue; // state on the backend (carry)
    const plan::Buffer &b = plan_.buffers(in.buffer());
    const Tensor &t = tensorAt(in.buffer(), slot);
    const bool sliced = b.global_shape_size() > 0;
    const int64_t want = sliced ? numel(b.global_shape()) : numel(b.shape());
    auto fill = [&](const auto &src, plan::DType dtype) -> absl::Status {
      if (dtype != b.dtype())
        return absl::InvalidArgumentError(
            absl::StrCat("input buffer ", b.name(), " for '", in.name(),
                         "' has the wrong dtype"));
      if (int64_t(src.size()) != want)
        return absl::InvalidArgumentError(
            absl::StrCat("input ", in.name(), " has ", src.size(),
                         " elements, the plan expects ", want, " (shape ",
                         shapeStr(sliced ? b.global_shape() : b.shape()), ")"));
      if (!sliced) // straight from the batch: no staging copy on a device
        return store_->fromHost(t.data, src.data(), 4 * src.size());
      std::vector<int64_t> offset = vec(b.slice_offset());
      offset.resize(b.shape_size(), 0);
      void *host = store_->stage(t.data, 4 * t.numel());
      extractBox(src.data(), vec(b.global_shape()), offset, t.shape, host, 4);
      return store_->fromHost(t.data, host, 4 * t.numel());
    };
    // Inputs are bound by the names the model declared (the plan's input
    // bindings), to the batch field of that name.
    absl::Status s;
    if (const io::BatchField *f = batch.find(in.name()))
      s = f->isInt ? fill(f->i32, plan::I32) : fill(f->f32, plan::F32);
    else if (auto e = extraInputs_.find(in.name()); e != extraInputs_.end())
      s = fill(e->second, plan::F32);
    else
      s = absl::InvalidArgumentError(
          "the plan asks for input '" + in.name() +
          "', which the batch does not hold" +
          (in.name().rfind("tap.", 0) == 0
               ? " (a side-only plan: give galaxy-run --taps / --eval-taps)"
               : ""));
    if (!s.ok())
      return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<Outputs> Executor::collectOutputs(const BoundProgram &bp,
                                                 int slot) {
  Outputs outs;
  for (int k = 0; k < bp.program->outputs_size(); ++k) {
    const plan::Binding &o = bp.program->outputs(k);
    if (bp.kept.count(o.name()))
      continue; // stays on the backend (carry)
    const plan::Buffer &b = plan_.buffers(o.buffer());
    const Tensor &t = tensorAt(o.buffer(), slot);
    std::vector<float> &dst = outs[o.name()];
    absl::StatusOr<const void *> host = store_->toHost(t.data, 4 * t.numel());
    if (!host.ok())
      return host.status();
    const float *src = static_cast<const float *>(*host);
    std::vector<float> gathered;
    int64_t n = t.numel();
    if (bp.gatherOutput[k]) {
      if (!comm_)
        return absl::FailedPreconditionError(absl::StrCat(
            "output ", o.name(),
            " is sharded but there is no communicator to gather it"));
      auto g = gatherBoxes(*hostComm_, src, vec(b.global_shape()),
                           vec(b.slice_offset()), vec(b.shape()),
                           absl::StrCat("output ", o.name()));
      if (!g.ok())
        return g.status();
      gathered = std::move(*g);
      src = gathered.data();
      n = gathered.size();
    }
    if (b.dtype() == plan::I32) {
      const int32_t *ints = reinterpret_cast<const int32_t *>(src);
      dst.assign(ints, ints + n);
    } else {
      dst.assign(src, src + n);
    }
  }
  return outs;
}

absl::StatusOr<Outputs> Executor::run(const std::string &program,
                                      const io::Batch &batch,
                                      const KernelContext &ctx, int slot) {
  auto it = programs_.find(program);
  if (it == programs_.end())
    return absl::NotFoundError(
        absl::StrCat("the plan has no program '", program, "'"));
  BoundProgram &bp = it->second;
  if (slot < 0 || slot >= slots_)
    return absl::InvalidArgumentError(absl::StrCat(
        program, ": stash slot ", slot, " is out of range; the plan has ",
        slots_, slots_ == 1 ? " slot" : " slots", " (Pipeline.slots)"));
  if (!deferred_.ok())
    return deferred_;
  if (absl::Status s = fillInputs(*bp.program, batch, slot); !s.ok())
    return s;
  // The plan, not the caller, decides the matmul precision.
  KernelContext kctx = ctx;
  kctx.matmulDType = plan_.matmul_dtype();
  // Only the inference programs leave the parameters alone (and so may let
  // kernels keep repacked copies); any other program may write them.
  const bool inference = plan::isGenerationProgram(program);
  kctx.paramsVersion = inference ? paramsVersion_ : 0;
  kctx.weightsVersion = weightsVersion_;
  if (!inference)
    paramsVersion_ = freshParamsVersion();
  const size_t slotIndex = bp.bySlot.size() == 1 ? 0 : slot;
  const std::vector<BoundInstr> &instrs = bp.bySlot[slotIndex];
  const WaitPoints &waits = bp.waitsBySlot[slotIndex];
  if (timing_) {
    bp.seconds.resize(instrs.size(), 0.0);
    ++bp.timedRuns;
  }
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  auto where = [&](const BoundInstr &bi, const absl::Status &s) {
    return absl::Status(s.code(),
                        absl::StrCat(program, ": ", bi.instr->kernel(), " in ",
                                     bi.instr->block(), ": ", s.message()));
  };
  // Collectives started on the communication thread, and their tickets. The
  // thread lives for this run only (no thread outlives run(), so a process
  // may fork between runs) and is drained before any return.
  CommThread commThread;
  std::vector<uint64_t> ticket(instrs.size(), 0);
  auto finish = [&](int j) -> absl::Status { // wait for async instr j
    if (j < 0 || ticket[j] == 0)
      return absl::OkStatus();
    const Clock::time_point t0 = Clock::now();
    absl::Status s = commThread.wait(ticket[j]);
    if (timing_) // the exposed part of the collective's time
      bp.seconds[j] += seconds(t0);
    return s;
  };
  auto fail = [&](absl::Status s) {
    (void)commThread.drain();
    return s;
  };
  // A coalesced group runs as one all-reduce at its first member; every
  // member gets its ticket (the members stand together, so no instruction
  // between them waits for one).
  auto groupJob = [this, &instrs, &where](size_t first) {
    return [this, &instrs, &where, first]() -> absl::Status {
      const BoundInstr &head = instrs[first];
      std::vector<ReduceMember> members;
      for (size_t j = first; j < first + head.group; ++j)
        members.push_back(
            {&*instrs[j].move, instrs[j].in[0], instrs[j].out[0]});
      absl::Status s = runCoalescedAllReduce(members, comm_, world_, scratch_);
      return s.ok() ? s : where(head, s);
    };
  };
  for (size_t i = 0; i < instrs.size(); ++i) {
    const BoundInstr &bi = instrs[i];
    if (absl::Status s = finish(waits[i]); !s.ok())
      return fail(s);
    Clock::time_point t0;
    if (timing_)
      t0 = Clock::now();
    absl::Status s;
    if (bi.group > 0) {
      const size_t first = i;
      if (bi.async && overlap_) {
        const uint64_t t = commThread.start(groupJob(first));
        for (; i < first + bi.group; ++i)
          ticket[i] = t;
      } else {
        s = groupJob(first)();
        i = first + bi.group;
      }
      --i; // the loop's ++i steps past the group
      if (timing_)
        bp.seconds[first] += seconds(t0);
      if (!s.ok())
        return fail(s);
      continue;
    }
    if (bi.async && overlap_) {
      const BoundInstr *b = &bi;
      ticket[i] = commThread.start([this, b, &where]() -> absl::Status {
        absl::Status s =
            runDataMove(*b->move, b->in[0], b->out[0], comm_, rank_, scratch_);
        return s.ok() ? s : where(*b, s);
      });
    } else {
      s = !bi.move ? backend_.run(*bi.instr, bi.in, bi.out, kctx)
          : mover_ ? mover_->run(*bi.move, bi.in[0], bi.out[0], rank_)
                   : runDataMove(*bi.move, bi.in[0], bi.out[0], comm_, rank_,
                                 scratch_);
      if (timing_ && s.ok() && store_->onDevice())
        s = store_->device()->synchronize(); // time the kernel, not its launch
    }
    if (timing_)
      bp.seconds[i] += seconds(t0);
    if (!s.ok())
      return fail(where(bi, s));
  }
  if (absl::Status s = finish(waits.back()); !s.ok())
    return fail(s);
  if (absl::Status s = commThread.drain(); !s.ok())
    return s;
  if (timing_)
    bp.commBusy += commThread.busySeconds();
  return collectOutputs(bp, slot);
}

void Executor::setKeptPorts(const std::string &program,
                            std::set<std::string> names) {
  if (auto it = programs_.find(program); it != programs_.end())
    it->second.kept = std::move(names);
}

absl::StatusOr<int32_t> Executor::portBuffer(const std::string &program,
                                             const std::string &name,
                                             bool input) const {
  auto it = programs_.find(program);
  if (it == programs_.end())
    return absl::NotFoundError(
        absl::StrCat("the plan has no program '", program, "'"));
  const plan::Program &p = *it->second.program;
  for (const plan::Binding &bd : input ? p.inputs() : p.outputs())
    if (bd.name() == name)
      return bd.buffer();
  return absl::NotFoundError(absl::StrCat("program '", program, "' has no ",
                                          input ? "input" : "output", " '",
                                          name, "'"));
}

namespace {
Executor::PortBox boxOf(const plan::Buffer &b) {
  Executor::PortBox box{vec(b.global_shape()), vec(b.slice_offset()),
                        vec(b.shape())};
  if (box.global.empty())
    box.global = box.shape;
  box.offset.resize(box.shape.size(), 0);
  return box;
}
} // namespace

absl::Status Executor::carry(const std::string &from, const std::string &output,
                             const std::string &to, const std::string &input) {
  absl::StatusOr<int32_t> src = portBuffer(from, output, false),
                          dst = portBuffer(to, input, true);
  if (!src.ok())
    return src.status();
  if (!dst.ok())
    return dst.status();
  const plan::Buffer &sb = plan_.buffers(*src), &db = plan_.buffers(*dst);
  const PortBox s = boxOf(sb), d = boxOf(db);
  if (s.global != d.global || s.offset != d.offset || s.shape != d.shape ||
      sb.dtype() != db.dtype())
    return absl::FailedPreconditionError(absl::StrCat(
        from, "'s output ", output, " (", sb.layout(), ") and ", to,
        "'s input ", input, " (", db.layout(), ") are different boxes on rank ",
        rank_, "; recompile the plan with this galaxyc"));
  const Tensor &st = tensors_[*src], &dt = tensors_[*dst];
  const size_t bytes = 4 * size_t(dt.numel());
  if (st.data == dt.data || bytes == 0)
    return absl::OkStatus();
  if (DeviceMemory *mem = store_->device())
    return mem->copyOnDevice(dt.data, st.data, bytes);
  std::memcpy(dt.data, st.data, bytes);
  return absl::OkStatus();
}

absl::Status
Executor::editInput(const std::string &program, const std::string &input,
                    const std::function<void(float *, const PortBox &)> &edit) {
  absl::StatusOr<int32_t> id = portBuffer(program, input, true);
  if (!id.ok())
    return id.status();
  const plan::Buffer &b = plan_.buffers(*id);
  if (b.dtype() != plan::F32)
    return absl::InvalidArgumentError(
        absl::StrCat(program, "'s input ", input, " is not f32"));
  const Tensor &t = tensors_[*id];
  const size_t bytes = 4 * size_t(t.numel());
  absl::StatusOr<const void *> now = store_->toHost(t.data, bytes);
  if (!now.ok())
    return now.status();
  float *host = static_cast<float *>(store_->stage(t.data, bytes));
  if (host != *now)
    std::memcpy(host, *now, bytes);
  edit(host, boxOf(b));
  return store_->fromHost(t.data, host, bytes);
}

void Executor::resetInstrTimes() {
  for (auto &[name, bp] : programs_) {
    bp.seconds.assign(bp.bySlot[0].size(), 0.0);
    bp.timedRuns = 0;
    bp.commBusy = 0;
  }
}

std::vector<double> Executor::instrSeconds(const std::string &program) const {
  auto it = programs_.find(program);
  if (it == programs_.end())
    return {};
  std::vector<double> s = it->second.seconds;
  s.resize(it->second.bySlot[0].size(), 0.0);
  return s;
}

double Executor::commBusySeconds(const std::string &program) const {
  auto it = programs_.find(program);
  return it == programs_.end() ? 0 : it->second.commBusy;
}

int64_t Executor::timedRuns(const std::string &program) const {
  auto it = programs_.find(program);
  return it == programs_.end() ? 0 : it->second.timedRuns;
}

absl::Status checkPlanInputs(const plan::Plan &plan,
                             const std::vector<std::string> &provided) {
  for (const plan::Program &p : plan.programs())
    for (const plan::Binding &in : p.inputs()) {
      if (plan::isGenerationProgram(p.name()))
        break;
      const std::string &n = in.name();
      // Neighbour stages send pp.*; the taps files (checked where they are
      // opened) hold tap.*.
      if (n.rfind("pp.", 0) == 0 || n.rfind("tap.", 0) == 0 ||
          std::find(provided.begin(), provided.end(), n) != provided.end())
        continue;
      return absl::FailedPreconditionError(
          absl::StrCat("the plan's program '", p.name(), "' reads input '", n,
                       "', which the data does not provide (it provides ",
                       absl::StrJoin(provided, ", "), ")"));
    }
  return absl::OkStatus();
}

} // namespace galaxy::rt
