#pragma once
// Internal to the trainer's optimizers: how libtorch keys an optimizer's per-parameter state.
#include <ATen/core/Tensor.h>

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

}  // namespace graft::train::detail
