#pragma once
// Internal to the trainer's optimizers: what their steps share with libtorch's (how the
// per-parameter state is keyed, how a closure is evaluated).
#include <ATen/core/Tensor.h>
#include <torch/optim/optimizer.h>

#include <sstream>
#include <string>
#include <type_traits>

namespace graft::train::detail {

/// The key of parameter p in an optimizer's state map: its TensorImpl's address as text in
/// libtorch 1.13 (written by operator<<, as libtorch's own optimizers do), the pointer itself
/// in later versions.
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

/// What an optimizer's step returns: the loss its closure computes with gradients on (the
/// step itself runs without), or an undefined tensor without a closure.
inline torch::Tensor loss_of(const torch::optim::Optimizer::LossClosure& closure) {
  if (closure == nullptr) return {};
  at::AutoGradMode enable_grad(true);
  return closure();
}

}  // namespace graft::train::detail
