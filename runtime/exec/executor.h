// Runs the programs of one rank's plan: owns the arena, the parameters and the
// optimizer state, binds buffers to tensors once, and calls the Backend.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/backend.h"
#include "runtime/comm/communicator.h"
#include "runtime/exec/buffer_store.h"
#include "runtime/exec/collectives.h"
#include "runtime/exec/comm_overlap.h"
#include "runtime/exec/device_moves.h"
#include "runtime/io/dataset.h"
#include "runtime/io/safetensors.h"
#include "runtime/io/tensor_source.h"
#include "runtime/plan/plan.pb.h"

namespace galaxy::rt {

// Program outputs by binding name ("loss", "logits"), copied to the host. A
// sharded output (its buffer's global_shape larger than its shape) comes back
// gathered to the global shape on every rank; i32 outputs are converted.
using Outputs = std::map<std::string, std::vector<float>>;

// Which memory the communicator given to Executor::create reads: host (Gloo)
// or the backend's device (NCCL, comm::connectNccl). With a device backend and
// a host communicator, collectives are staged through host memory.
enum class CommBuffers { kHost, kDevice };

class Executor {
public:
  // Collective when world > 1 (all ranks call it). Checks the plan (format
  // version, rank and world against `comm`, buffer
  // table, programs, data-movement shapes) and allocates. `comm` (not owned,
  // must outlive the executor) may be null for a plan of world 1. `origin`
  // names the plan in messages (e.g. its file). When the backend keeps its
  // tensors on a device (deviceMemoryOfBackend), every buffer is allocated
  // there and the host sees only batches, outputs and checkpoints.
  static absl::StatusOr<std::unique_ptr<Executor>>
  create(plan::Plan plan, Backend &backend, comm::Communicator *comm = nullptr,
         std::string origin = "the plan",
         CommBuffers commBuffers = CommBuffers::kHost);

  // The communicator for host buffers (flags, profiles, barriers): `comm`
  // itself, or a host-staged view of it when it takes device buffers. Null
  // when create() got none.
  comm::Communicator *hostComm() const { return hostComm_; }

  const plan::Plan &plan() const { return plan_; }

  // Seeded initialisation from each parameter's initializer; an element's value
  // depends only on (seed, parameter name, global index), so every rank and
  // every sharding of a parameter draws the same numbers. On a device, a
  // failed upload is reported by the next run() or saveParams().
  void initParams(uint64_t seed);
  // Reads every parameter's slice from a safetensors file (by HF name).
  absl::Status loadParams(const io::SafetensorsFile &file);
  // The same from several files (--init-adapter over --init).
  absl::Status loadParams(const io::TensorSource &source);
  // Every parameter as a global tensor (Hugging Face name, global shape,
  // data), in plan order. `tensors[i].data` points into `owned` or into the
  // executor's own host memory, so it is valid while both live and the
  // parameters are not changed.
  struct GatheredParams {
    std::vector<io::TensorToWrite> tensors;
    std::vector<std::vector<float>> owned;
  };
  // Collective: every rank calls it and gets the global tensors (sharded
  // parameters are gathered over the communicator). With `withOptState`,
  // each trainable parameter's AdamW moments follow the parameters, as
  // global tensors named optStateName(param, slot) (checkpoints).
  absl::StatusOr<GatheredParams> gatherParams(bool withOptState = false);
  // Reads every AdamW moment (OPT_STATE slots 0 and 1) from `source` by
  // optStateName, this rank's slice of the parameter's global shape: a
  // checkpoint taken under any layout. Call after loadParams (which zeroes
  // the state). NotFound naming the tensor when one is missing.
  absl::Status loadOptState(const io::TensorSource &source);
  // Collective: every rank calls it. Sharded parameters are gathered; rank 0
  // writes the global tensors (atomically), other ranks write nothing.
  absl::Status saveParams(const std::string &path);

  // Runs one program on a batch (the *global* batch: each INPUT buffer takes
  // its slice by global_shape / slice_offset). Collective when the plan holds
  // data movement. `ctx.step` drives dropout and AdamW. `slot` is the stash
  // slot (pipeline plans: where the program's stash buffers live, so a
  // microbatch's forward and backward must use the same one); 0 otherwise.
  absl::StatusOr<Outputs> run(const std::string &program,
                              const io::Batch &batch, const KernelContext &ctx,
                              int slot = 0);

  // Memory of the activations, for reports: the shared arena, and for a
  // pipeline plan the stash slots (stashSlots() slots of stashSlotBytes()
  // each; 1 and 0 for other plans).
  int64_t arenaBytes() const { return plan_.arena_bytes(); }
  int stashSlots() const { return slots_; }
  int64_t stashSlotBytes() const { return slotBytes_; }

  // Host data and element count of parameter `param`'s OPT_STATE buffer of
  // slot `slot` (2: a pipeline plan's gradient accumulator), for runtime code
  // that reduces it between programs; NotFound when the plan has none, and
  // Unimplemented when it lives on a device.
  absl::StatusOr<std::pair<float *, int64_t>> optStateHost(int32_t param,
                                                           int slot);

  bool hasProgram(const std::string &name) const {
    return programs_.count(name) > 0;
  }

  // Global f32 tensors for program inputs the batch does not hold (side-only's
  // "tap.embeddings", "tap.layer.{i}"), by input name; each rank takes its
  // slice like any input. Used by every later run() until replaced.
  void setExtraInputs(std::map<std::string, std::vector<float>> extra) {
    extraInputs_ = std::move(extra);
  }

  // State kept on the backend between runs (a KV cache): `program`'s inputs
  // named here are not filled from the batch (they hold what carry() put
  // there), and its outputs of these names are not copied to the host (nor
  // gathered). Every rank must name the same ones (gathering is collective).
  void setKeptPorts(const std::string &program, std::set<std::string> names);

  // This rank's box of a program port: the global shape, the box's offset
  // in it and its extent (the buffer's local shape).
  struct PortBox {
    std::vector<int64_t> global, offset, shape;
  };
  // Copies this rank's part of output `output` of `from`, as its last run
  // left it, into input `input` of `to`, on the backend: no host copy and no
  // communication. Both ports must be the same rank's same box of the same
  // global tensor (the partitioner lays a cache's ports out alike). Call it
  // before another program runs (outputs live in the shared arena).
  absl::Status carry(const std::string &from, const std::string &output,
                     const std::string &to, const std::string &input);
  // Lets `edit` change this rank's part of `program`'s input `input` in host
  // memory (on a device: a copy, written back).
  absl::Status
  editInput(const std::string &program, const std::string &input,
            const std::function<void(float *, const PortBox &)> &edit);

  // Per-instruction timing for profiles (runtime/exec/profiling.h), off by
  // default: when on, run() adds each instruction's steady_clock time to
  // instrSeconds(program)[i]. Off costs one branch per instruction.
  void setInstrTiming(bool on) { timing_ = on; }
  // Zeroes the sums and run counts (e.g. after a warm-up step).
  void resetInstrTimes();
  // Summed seconds per instruction of `program` since the last reset, and how
  // many timed runs they cover; empty/0 for an unknown program.
  // With collectives overlapped (setCommOverlap), a collective's entry is
  // the time the executor waited for it (its exposed time); the time the
  // communication thread spent running them is commBusySeconds.
  std::vector<double> instrSeconds(const std::string &program) const;
  int64_t timedRuns(const std::string &program) const;
  double commBusySeconds(const std::string &program) const;

  // Collectives over a host communicator run on a communication thread, the
  // executor waiting only before the first instruction that touches their
  // memory (comm_overlap.h). On by default; GALAXY_COMM_OVERLAP=0 turns it
  // off (each collective then runs in place, as the serial baseline of
  // bench/modes.sh). Results are the same either way.
  void setCommOverlap(bool on) { overlap_ = on; }
  bool commOverlap() const { return overlap_; }

private:
  Executor(plan::Plan plan, Backend &backend, comm::Communicator *comm)
      : plan_(std::move(plan)), backend_(backend), comm_(comm),
        hostComm_(comm) {}
  absl::Status zeroState();
  absl::Status checkWorld(const std::string &origin);
  absl::Status bind();
  absl::Status agreeOnGatheredOutputs();
  absl::Status fillInputs(const plan::Program &program, const io::Batch &batch,
                          int slot);
  absl::Status bindStash(const plan::Buffer &b, int64_t bytes);
  // Buffer `id` as bound in stash slot `slot` (the slot only matters for
  // stash buffers).
  const Tensor &tensorAt(int32_t id, int slot) const {
    return stashTensors_[id].empty() ? tensors_[id] : stashTensors_[id][slot];
  }

  struct BoundInstr {
    const plan::Instr *instr;
    std::vector<Tensor> in, out;
    std::optional<DataMove> move; // set for data-movement kernels
    bool async = false; // a collective run on the communication thread
    // On the first of a coalesced group of host all-reduces (plan
    // Instr.coalesce): the members, this one and the next group - 1, run as
    // one all-reduce. 0 elsewhere and on a device (members run one by one).
    int group = 0;
  };
  // Per bound instruction list: completionPoints of its async instructions.
  using WaitPoints = std::vector<int>;
  struct BoundProgram {
    const plan::Program *program;
    // One bound copy per stash slot when the program touches a stash buffer,
    // else one for all slots.
    std::vector<std::vector<BoundInstr>> bySlot;
    std::vector<WaitPoints> waitsBySlot; // parallel to bySlot
    std::vector<bool> gatherOutput; // per program output: sharded on some rank
    std::set<std::string> kept;     // setKeptPorts
    std::vector<double> seconds;    // per instruction, while timing_ is on
    int64_t timedRuns = 0;
    double commBusy = 0; // communication thread, while timing_ is on
  };

  absl::StatusOr<Outputs> collectOutputs(const BoundProgram &bp, int slot);
  // The buffer bound to port `name` of `program` (an input, or an output).
  absl::StatusOr<int32_t> portBuffer(const std::string &program,
                                     const std::string &name, bool input) const;

  plan::Plan plan_;
  Backend &backend_;
  comm::Communicator *comm_;
  int rank_ = 0, world_ = 1;
  comm::Communicator *hostComm_; // see hostComm()
  std::unique_ptr<comm::Communicator> stagedComm_;
  std::vector<char> scratch_; // packing space of the host data moves
  // Declared before every pointer into it; released last.
  std::unique_ptr<BufferStore> store_;
  std::unique_ptr<DeviceMover> mover_; // set on a device
  char *arena_ = nullptr;
  char *stash_ = nullptr; // slots_ * slotBytes_ (pipeline plans)
  int slots_ = 1;
  int64_t slotBytes_ = 0;
  std::vector<float *> params_; // per plan param: its slice
  std::vector<int64_t> paramNumel_;
  std::map<int32_t, float *> state_; // OPT_STATE buffer id -> data
  absl::Status deferred_;            // a failed initParams upload
  std::vector<Tensor> tensors_;      // per buffer id (stash: slot 0)
  std::vector<std::vector<Tensor>> stashTensors_; // per buffer id, per slot
  std::map<std::string, BoundProgram> programs_;
  std::map<std::string, std::vector<float>> extraInputs_;
  bool timing_ = false;
  bool overlap_ = true; // setCommOverlap
  // KernelContext::paramsVersion: a new one whenever the parameters may
  // have changed (init, load, any program but prefill and decode).
  uint64_t paramsVersion_ = 0; // set by initParams / loadParams
  // KernelContext::weightsVersion: renewed only when the host writes the
  // parameters (initParams / loadParams); the backend follows its kernels'
  // writes itself.
  uint64_t weightsVersion_ = 0;
};

// The checkpoint name of parameter `param`'s optimizer state slot `slot`
// (0: "<param>.exp_avg", 1: "<param>.exp_avg_sq", as PyTorch's AdamW
// state_dict calls them).
std::string optStateName(const std::string &param, int slot);
// Whether `name` is one optStateName wrote.
bool isOptStateName(const std::string &name);

// Refuses, naming it, a program input of `plan` that `provided` (the batch
// fields the data produces, e.g. io::textFields()) does not hold: at plan
// load, never mid-step. pp.* (sent by neighbour stages) and tap.* (read from
// taps files) inputs are left to their own checks.
absl::Status checkPlanInputs(const plan::Plan &plan,
                             const std::vector<std::string> &provided);

} // namespace galaxy::rt
