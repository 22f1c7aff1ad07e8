#include "tests/runtime/plan_builder.h"

#include "runtime/plan/version.h"

namespace galaxy::rt::testing {

Shape offsetsOf(const Shape &sizes) {
  Shape out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(at);
    at += s;
  }
  return out;
}

PlanBuilder::PlanBuilder(int rank, int world) {
  plan_.set_format_version(plan::kPlanFormatVersion);
  plan_.set_rank(rank);
  plan_.set_world(world);
}

plan::Buffer &PlanBuilder::newBuffer(const std::string &name,
                                     const Shape &shape, plan::DType dtype) {
  plan::Buffer &b = *plan_.add_buffers();
  b.set_id(plan_.buffers_size() - 1);
  b.set_name(name);
  b.set_dtype(dtype);
  for (int64_t d : shape)
    b.add_shape(d);
  return b;
}

int PlanBuilder::arena(const std::string &name, const Shape &shape,
                       plan::DType dtype) {
  plan::Buffer &b = newBuffer(name, shape, dtype);
  b.set_kind(plan::Buffer::ARENA);
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  b.set_offset(arenaBytes_);
  arenaBytes_ += (4 * n + 63) / 64 * 64;
  return b.id();
}

int PlanBuilder::input(const std::string &input, const Shape &shape,
                       plan::DType dtype, const Shape &global,
                       const Shape &offset) {
  plan::Buffer &b = newBuffer(input, shape, dtype);
  b.set_kind(plan::Buffer::INPUT);
  b.set_input(input);
  if (!global.empty())
    setGlobal(b.id(), global, offset);
  return b.id();
}

void PlanBuilder::setGlobal(int id, const Shape &global, const Shape &offset) {
  plan::Buffer &b = *plan_.mutable_buffers(id);
  b.clear_global_shape();
  b.clear_slice_offset();
  for (int64_t d : global)
    b.add_global_shape(d);
  for (int64_t d : offset)
    b.add_slice_offset(d);
}

void PlanBuilder::setStash(int id, int64_t offset) {
  plan::Buffer &b = *plan_.mutable_buffers(id);
  b.set_stash(true);
  b.set_offset(offset);
}

int PlanBuilder::optState(const std::string &name, int param, int slot) {
  const plan::Param &p = plan_.params(param);
  plan::Buffer &b = newBuffer(
      name, {p.slice_shape().begin(), p.slice_shape().end()}, plan::F32);
  b.set_kind(plan::Buffer::OPT_STATE);
  b.set_param(param);
  b.set_slot(slot);
  return b.id();
}

int PlanBuilder::param(const std::string &name, const Shape &global,
                       const Shape &sliceOffset, const Shape &sliceShape,
                       const std::string &init, float std) {
  plan::Param &p = *plan_.add_params();
  p.set_name(name);
  p.set_trainable(true);
  p.mutable_init()->set_kind(init);
  p.mutable_init()->set_std(std);
  const Shape &shape = sliceShape.empty() ? global : sliceShape;
  for (size_t d = 0; d < global.size(); ++d) {
    p.add_global_shape(global[d]);
    p.add_slice_offset(sliceOffset.empty() ? 0 : sliceOffset[d]);
    p.add_slice_shape(shape[d]);
  }
  plan::Buffer &b = newBuffer(name, shape, plan::F32);
  b.set_kind(plan::Buffer::PARAM);
  b.set_param(plan_.params_size() - 1);
  return b.id();
}

plan::Program &PlanBuilder::program(const std::string &name) {
  for (plan::Program &p : *plan_.mutable_programs())
    if (p.name() == name)
      return p;
  plan::Program &p = *plan_.add_programs();
  p.set_name(name);
  return p;
}

plan::Instr &PlanBuilder::add(const std::string &prog,
                              const std::string &kernel,
                              const std::vector<int> &inputs,
                              const std::vector<int> &outputs) {
  plan::Instr &i = *program(prog).add_instrs();
  i.set_kernel(kernel);
  i.set_block("test");
  for (int id : inputs)
    i.add_inputs(id);
  for (int id : outputs)
    i.add_outputs(id);
  return i;
}

void PlanBuilder::bindInput(const std::string &prog, const std::string &name,
                            int buffer) {
  plan::Binding &b = *program(prog).add_inputs();
  b.set_name(name);
  b.set_buffer(buffer);
}

void PlanBuilder::bindOutput(const std::string &prog, const std::string &name,
                             int buffer) {
  plan::Binding &b = *program(prog).add_outputs();
  b.set_name(name);
  b.set_buffer(buffer);
}

plan::Plan PlanBuilder::finish() {
  plan_.set_arena_bytes(arenaBytes_);
  for (plan::Program &p : *plan_.mutable_programs())
    p.set_arena_bytes(arenaBytes_);
  return plan_;
}

void setInt(plan::Instr &instr, const std::string &key, int64_t v) {
  (*instr.mutable_attrs())[key].set_i(v);
}

void setInts(plan::Instr &instr, const std::string &key, const Shape &v) {
  plan::Ints *ints = (*instr.mutable_attrs())[key].mutable_ints();
  for (int64_t x : v)
    ints->add_v(x);
}

void setFloat(plan::Instr &instr, const std::string &key, double v) {
  (*instr.mutable_attrs())[key].set_f(v);
}

plan::Instr &addMove(PlanBuilder &b, const std::string &program,
                     const std::string &kernel, int x, int y, int64_t dim,
                     const Shape &sizes) {
  plan::Instr &i = b.add(program, kernel, {x}, {y});
  setInt(i, "dim", dim);
  setInts(i, "sizes", sizes);
  return i;
}

} // namespace galaxy::rt::testing
