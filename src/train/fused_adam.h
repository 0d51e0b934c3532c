#pragma once
// Internal to the trainer: Adam and AdamW whose step makes one pass over each parameter's
// memory (libtorch 1.13's makes about eight, with two temporaries, for the same arithmetic).
#include <torch/torch.h>

#include <vector>

namespace graft::train {

/// torch::optim::Adam with a fused step for float32 CPU parameters whose gradient and
/// moments share their memory layout; any other parameter takes libtorch's own steps. The
/// options, the state and its serialisation are Adam's, so checkpoints are unchanged.
class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  torch::Tensor step(LossClosure closure = nullptr) override;
  /// Parameter updates made by the fused loop so far (the others took libtorch's path).
  int64_t fused_updates() const { return fused_; }

 private:
  int64_t fused_ = 0;
};

/// The same for AdamW (decoupled weight decay).
class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;
  int64_t fused_updates() const { return fused_; }

 private:
  int64_t fused_ = 0;
};

}  // namespace graft::train
