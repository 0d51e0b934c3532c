#include "graft/train/l2sp.h"

#include <torch/torch.h>

#include <algorithm>

#include "graft/core/check.h"

namespace graft::train {

L2SPTerm::L2SPTerm(double alpha, double beta, int64_t pretrained_layers)
    : alpha_(alpha), beta_(beta), pretrained_layers_(pretrained_layers) {
  GRAFT_CHECK(alpha >= 0 && beta >= 0, "L2-SP weights must be >= 0");
}

void L2SPTerm::setup(const TermSetup& s) {
  pretrained_.clear();
  fresh_.clear();
  reference_.clear();
  const auto& names = s.model->layer_names();
  for (auto& [n, p] : s.model->named_parameters()) {
    auto it = std::find(names.begin(), names.end(), models::layer_of_param(n));
    const auto layer = it - names.begin();
    if (layer < pretrained_layers_) {
      pretrained_.emplace_back(n, p);
      reference_[n] = p.detach().clone();
    } else {
      fresh_.push_back(p);
    }
  }
}

TermOutput L2SPTerm::loss(StepContext& ctx) {
  auto pen = torch::zeros({}, ctx.logits.options());
  for (auto& [n, p] : pretrained_)
    if (p.requires_grad()) pen = pen + 0.5 * alpha_ * (p - reference_.at(n)).pow(2).sum();
  for (auto& p : fresh_)
    if (p.requires_grad()) pen = pen + 0.5 * beta_ * p.pow(2).sum();
  return {pen, {}};
}

TensorMap L2SPTerm::save() const { return reference_; }

void L2SPTerm::load(const TensorMap& state) {
  for (auto& [n, ref] : reference_) {
    auto it = state.find(n);
    GRAFT_CHECK(it != state.end(), "the checkpoint lacks the L2-SP reference of '", n,
                "'; start again in a new --out folder");
    ref = it->second.to(ref.device());
  }
}

}  // namespace graft::train
