#pragma once
// Internal to the methods: the plumbing of a method that owns a domain discriminator.
#include <torch/torch.h>

#include "graft/adapt/losses.h"
#include "graft/adapt/method.h"

namespace graft::adapt {

/// A method with a discriminator of its own (DANN, CDAN): its parameters learn at the
/// head's rate, it follows the trainer's train/eval mode and it is kept in checkpoints.
class WithDiscriminator : public Method {
 public:
  std::vector<at::Tensor> parameters() override { return disc_->parameters(); }
  void train(bool on) override { disc_->train(on); }
  train::TensorMap save() const override { return named(*disc_); }
  void load(const train::TensorMap& s) override { load_named(*disc_, s); }

 protected:
  void make_discriminator(int64_t in, int64_t hidden, c10::Device device) {
    disc_ = Discriminator(in, hidden, 2, 0.5);
    disc_->to(device);
  }
  Discriminator disc_{nullptr};
};

}  // namespace graft::adapt
