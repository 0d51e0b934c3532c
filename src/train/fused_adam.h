#pragma once
// Internal to the trainer: Adam and AdamW whose step makes one pass over each parameter's
// memory (libtorch 1.13's makes about eight, with two temporaries, for the same arithmetic).
#include <torch/torch.h>

#include <vector>

namespace graft::train {

/// torch::optim::Adam (Base = Adam) or AdamW (decoupled weight decay) with a fused step for
/// float32 CPU parameters whose gradient and moments share their memory layout; any other
/// parameter takes libtorch's own steps. The options, the state and its serialisation are
/// Base's, so checkpoints are unchanged.
template <typename Base>
class FusedAdamOf : public Base {
 public:
  using Base::Base;
  torch::Tensor step(typename Base::LossClosure closure = nullptr) override;
  /// Parameter updates made by the fused loop so far (the others took libtorch's path).
  int64_t fused_updates() const { return fused_; }

 private:
  int64_t fused_ = 0;
};
extern template class FusedAdamOf<torch::optim::Adam>;
extern template class FusedAdamOf<torch::optim::AdamW>;
using FusedAdam = FusedAdamOf<torch::optim::Adam>;
using FusedAdamW = FusedAdamOf<torch::optim::AdamW>;

}  // namespace graft::train
