#pragma once
// Internal to the trainer: SGD whose step updates all parameters of a group with ATen's
// multi-tensor (_foreach_) operations.
#include <torch/torch.h>

namespace graft::train {

/// torch::optim::SGD with the same arithmetic, options and state (checkpoints are unchanged),
/// but each operation of the step made once for all parameters of a group that share a device
/// and dtype: on a GPU a few kernel launches per step instead of three per parameter (what
/// bounds the step of a small network there); on the CPU the same per-tensor operations.
class ForeachSGD : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

}  // namespace graft::train
