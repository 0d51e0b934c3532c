#include "fused_adam.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>

#include "adam_kernel.h"

namespace graft::train {
namespace {

// The optimizer's state map is keyed by the parameter's TensorImpl: in libtorch 1.13 by its
// address as text (written by operator<<, as libtorch's own optimizers do), in later
// versions by the pointer itself.
template <typename Map>
typename Map::key_type state_key(const Map&, const at::Tensor& p) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream os;
    os << p.unsafeGetTensorImpl();
    return os.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

bool fusable(const at::Tensor& p, const at::Tensor& g, const at::Tensor& m, const at::Tensor& v) {
  for (const auto* t : {&p, &g, &m, &v})
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat || t->is_sparse()) return false;
  return p.is_non_overlapping_and_dense() && g.strides() == p.strides() && m.strides() == p.strides() &&
         v.strides() == p.strides() && g.sizes() == p.sizes() && m.sizes() == p.sizes() && v.sizes() == p.sizes();
}

// One parameter's step. decoupled: AdamW (weights decayed by 1 - lr * wd), else Adam (wd
// added to the gradient as an L2 term).
// Returns true when the fused loop took the step.
template <typename Options, typename State>
bool step_param(at::Tensor& p, State& st, const Options& o, bool decoupled) {
  at::Tensor g = p.grad();
  TORCH_CHECK(!g.is_sparse(), "Adam does not support sparse gradients");
  st.step(st.step() + 1);
  const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
  const double bc1 = 1 - std::pow(beta1, static_cast<double>(st.step()));
  const double bc2 = 1 - std::pow(beta2, static_cast<double>(st.step()));
  const double wd = o.weight_decay(), lr = o.lr(), step_size = lr / bc1;
  // Moments loaded from a checkpoint in another layout take the weight's (values unchanged),
  // so that a resumed run steps through the same loop as an uninterrupted one.
  auto relayout = [&p](const at::Tensor& t) {
    return t.defined() && t.sizes() == p.sizes() && t.strides() != p.strides() && t.device() == p.device() &&
           p.is_non_overlapping_and_dense();
  };
  if (relayout(st.exp_avg())) st.exp_avg(at::empty_like(p, at::MemoryFormat::Preserve).copy_(st.exp_avg()));
  if (relayout(st.exp_avg_sq())) st.exp_avg_sq(at::empty_like(p, at::MemoryFormat::Preserve).copy_(st.exp_avg_sq()));
  at::Tensor& m = st.exp_avg();
  at::Tensor& v = st.exp_avg_sq();
  if (!o.amsgrad() && fusable(p, g, m, v)) {
    detail::AdamScalars s{static_cast<float>(beta1),         static_cast<float>(beta2),
                          static_cast<float>(1 - beta1),     static_cast<float>(1 - beta2),
                          static_cast<float>(std::sqrt(bc2)), static_cast<float>(o.eps()),
                          static_cast<float>(-step_size)};
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
  // Anything else (CUDA, other dtypes, mismatched layouts, amsgrad): libtorch's steps.
  if (decoupled && wd != 0) p.mul_(1 - lr * wd);
  if (!decoupled && wd != 0) g = g.add(p, wd);
  m.mul_(beta1).add_(g, 1 - beta1);
  v.mul_(beta2).addcmul_(g, g, 1 - beta2);
  at::Tensor denom;
  if (o.amsgrad()) {
    at::Tensor& mx = st.max_exp_avg_sq();
    at::maximum_out(mx, mx, v);
    denom = (mx.sqrt() / std::sqrt(bc2)).add_(o.eps());
  } else {
    denom = (v.sqrt() / std::sqrt(bc2)).add_(o.eps());
  }
  p.addcdiv_(m, denom, -step_size);
  return false;
}

template <typename Options, typename State, typename StateMap>
torch::Tensor fused_step(const torch::optim::Optimizer::LossClosure& closure, bool decoupled,
                         std::vector<torch::optim::OptimizerParamGroup>& groups, StateMap& state,
                         int64_t& fused) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss = {};
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : groups) {
    const auto& o = static_cast<const Options&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto key = state_key(state, p);
      auto it = state.find(key);
      if (it == state.end()) {
        auto s = std::make_unique<State>();
        s->step(0);
        s->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
        s->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        if (o.amsgrad()) s->max_exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
        it = state.insert_or_assign(key, std::move(s)).first;
      }
      fused += step_param(p, static_cast<State&>(*it->second), o, decoupled) ? 1 : 0;
    }
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
