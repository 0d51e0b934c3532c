#include "fused_adam.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <map>
#include <string>
#include <tuple>

#include "adam_kernel.h"
#include "optimizer_state.h"

namespace graft::train {
namespace {

bool fusable(const at::Tensor& p, const at::Tensor& g, const at::Tensor& m, const at::Tensor& v) {
  for (const auto* t : {&p, &g, &m, &v})
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat || t->is_sparse()) return false;
  return p.is_non_overlapping_and_dense() && g.strides() == p.strides() && m.strides() == p.strides() &&
         v.strides() == p.strides() && g.sizes() == p.sizes() && m.sizes() == p.sizes() && v.sizes() == p.sizes();
}

// Moments loaded from a checkpoint in another layout take the weight's (values unchanged),
// so that a resumed run steps through the same loop as an uninterrupted one.
template <typename State>
void relayout_moments(const at::Tensor& p, State& st) {
  auto other = [&p](const at::Tensor& t) {
    return t.defined() && t.sizes() == p.sizes() && t.strides() != p.strides() && t.device() == p.device() &&
           p.is_non_overlapping_and_dense();
  };
  if (other(st.exp_avg())) st.exp_avg(at::empty_like(p, at::MemoryFormat::Preserve).copy_(st.exp_avg()));
  if (other(st.exp_avg_sq())) st.exp_avg_sq(at::empty_like(p, at::MemoryFormat::Preserve).copy_(st.exp_avg_sq()));
}

struct Corrections {
  double beta1, beta2, bc2_sqrt, step_size;
};
template <typename Options>
Corrections corrections(const Options& o, int64_t step) {
  const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
  const double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
  return {beta1, beta2, std::sqrt(bc2), o.lr() / bc1};
}

// One parameter's step in the fused loop, when it can take it. decoupled: AdamW (weights
// decayed by 1 - lr * wd), else Adam (wd added to the gradient as an L2 term). Returns false,
// changing nothing, for a parameter the loop cannot step.
template <typename Options, typename State>
bool fused_param(at::Tensor& p, State& st, const Options& o, bool decoupled) {
  const at::Tensor& g = p.grad();
  const at::Tensor& m = st.exp_avg();
  const at::Tensor& v = st.exp_avg_sq();
  if (o.amsgrad() || !fusable(p, g, m, v)) return false;
  st.step(st.step() + 1);
  const auto c = corrections(o, st.step());
  const double wd = o.weight_decay(), lr = o.lr();
  detail::AdamScalars s{static_cast<float>(c.beta1),     static_cast<float>(c.beta2),
                        static_cast<float>(1 - c.beta1), static_cast<float>(1 - c.beta2),
                        static_cast<float>(c.bc2_sqrt),  static_cast<float>(o.eps()),
                        static_cast<float>(-c.step_size)};
  if (wd != 0) {
    if (decoupled) s.decay = static_cast<float>(1 - lr * wd);
    else s.l2 = static_cast<float>(wd);
  }
  float* pp = p.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  float* mp = m.data_ptr<float>();
  float* vp = v.data_ptr<float>();
  at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t b, int64_t e) {
    detail::adam_update(pp + b, gp + b, mp + b, vp + b, e - b, s);
  });
  return true;
}

// libtorch's arithmetic, one parameter at a time: with amsgrad.
template <typename Options, typename State>
void step_one(at::Tensor& p, State& st, const Options& o, bool decoupled) {
  st.step(st.step() + 1);
  const auto c = corrections(o, st.step());
  const double wd = o.weight_decay(), lr = o.lr();
  at::Tensor g = p.grad();
  if (decoupled && wd != 0) p.mul_(1 - lr * wd);
  if (!decoupled && wd != 0) g = g.add(p, wd);
  at::Tensor& m = st.exp_avg();
  at::Tensor& v = st.exp_avg_sq();
  m.mul_(c.beta1).add_(g, 1 - c.beta1);
  v.mul_(c.beta2).addcmul_(g, g, 1 - c.beta2);
  at::Tensor denom;
  if (o.amsgrad()) {
    at::Tensor& mx = st.max_exp_avg_sq();
    at::maximum_out(mx, mx, v);
    denom = (mx.sqrt() / c.bc2_sqrt).add_(o.eps());
  } else {
    denom = (v.sqrt() / c.bc2_sqrt).add_(o.eps());
  }
  p.addcdiv_(m, denom, -c.step_size);
}

// The same arithmetic for a list of parameters at the same step count, each operation one
// multi-tensor call (ATen's _foreach_ operations: on a GPU a few kernel launches for all the
// parameters instead of eight per parameter; on the CPU the same per-tensor operations).
template <typename Options, typename State>
void step_together(std::vector<at::Tensor>& ps, std::vector<State*>& sts, const Options& o, bool decoupled) {
  for (auto* st : sts) st->step(st->step() + 1);
  const auto c = corrections(o, sts.front()->step());
  const double wd = o.weight_decay(), lr = o.lr();
  std::vector<at::Tensor> gs, ms, vs;
  for (size_t i = 0; i < ps.size(); ++i)
    gs.push_back(ps[i].grad()), ms.push_back(sts[i]->exp_avg()), vs.push_back(sts[i]->exp_avg_sq());
  if (decoupled && wd != 0) at::_foreach_mul_(ps, 1 - lr * wd);
  if (!decoupled && wd != 0) gs = at::_foreach_add(gs, ps, wd);
  at::_foreach_mul_(ms, c.beta1);
  at::_foreach_add_(ms, gs, 1 - c.beta1);
  at::_foreach_mul_(vs, c.beta2);
  at::_foreach_addcmul_(vs, gs, gs, 1 - c.beta2);
  auto denom = at::_foreach_sqrt(vs);
  at::_foreach_div_(denom, c.bc2_sqrt);
  at::_foreach_add_(denom, o.eps());
  at::_foreach_addcdiv_(ps, ms, denom, -c.step_size);
}

template <typename Options, typename State, typename StateMap>
torch::Tensor fused_step(const torch::optim::Optimizer::LossClosure& closure, bool decoupled,
                         std::vector<torch::optim::OptimizerParamGroup>& groups, StateMap& state,
                         int64_t& fused) {
  torch::NoGradGuard no_grad;
  const torch::Tensor loss = detail::loss_of(closure);
  for (auto& group : groups) {
    const auto& o = static_cast<const Options&>(group.options());
    // Parameters the fused loop cannot take, by device, dtype and step count: each such list
    // is stepped together.
    std::map<std::tuple<std::string, int, int64_t>, std::pair<std::vector<at::Tensor>, std::vector<State*>>> rest;
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      TORCH_CHECK(!p.grad().is_sparse(), "Adam does not support sparse gradients");
      auto key = detail::state_key(state, p);
      auto it = state.find(key);
      if (it == state.end()) {
        auto s = std::make_unique<State>();
        s->step(0);
        s->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        s->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        if (o.amsgrad()) s->max_exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        it = state.insert_or_assign(key, std::move(s)).first;
      }
      auto& st = static_cast<State&>(*it->second);
      relayout_moments(p, st);
      if (fused_param(p, st, o, decoupled)) {
        ++fused;
      } else if (o.amsgrad()) {
        step_one(p, st, o, decoupled);
      } else {
        auto& r = rest[{p.device().str(), static_cast<int>(p.scalar_type()), st.step()}];
        r.first.push_back(p);
        r.second.push_back(&st);
      }
    }
    for (auto& [k, r] : rest) step_together(r.first, r.second, o, decoupled);
  }
  return loss;
}

}  // namespace

namespace {

// Per optimizer: its options and state types, and whether weight decay is decoupled (AdamW).
template <typename Base>
struct AdamKind;
template <>
struct AdamKind<torch::optim::Adam> {
  using Options = torch::optim::AdamOptions;
  using State = torch::optim::AdamParamState;
  static constexpr bool decoupled = false;
};
template <>
struct AdamKind<torch::optim::AdamW> {
  using Options = torch::optim::AdamWOptions;
  using State = torch::optim::AdamWParamState;
  static constexpr bool decoupled = true;
};

}  // namespace

template <typename Base>
torch::Tensor FusedAdamOf<Base>::step(typename Base::LossClosure closure) {
  using Kind = AdamKind<Base>;
  return fused_step<typename Kind::Options, typename Kind::State>(closure, Kind::decoupled, this->param_groups_,
                                                                  this->state_, fused_);
}

template class FusedAdamOf<torch::optim::Adam>;
template class FusedAdamOf<torch::optim::AdamW>;

}  // namespace graft::train
