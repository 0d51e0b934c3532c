#pragma once
/// L2-SP (Li et al. 2018, "Explicit inductive bias for transfer learning"): an L2
/// penalty towards the pretrained weights on pretrained layers, and plain L2 on new ones.
#include "graft/train/term.h"

namespace graft::train {

/// The L2-SP term: alpha/2 |w - w0|^2 over the parameters of layers [0, pretrained_layers)
/// and beta/2 |w|^2 over those of the layers above. The reference w0 is the model's
/// weights when setup() runs on a fresh run; on resume the trainer restores it from the
/// checkpoint (it is the term's saved state), so a resumed run decays towards the same point.
class L2SPTerm : public Term {
 public:
  L2SPTerm(double alpha, double beta, int64_t pretrained_layers);
  std::string name() const override { return "l2sp"; }
  void setup(const TermSetup& s) override;
  TermOutput loss(StepContext& ctx) override;
  bool needs_full_model() const override { return false; }
  TensorMap save() const override;
  void load(const TensorMap& state) override;

 private:
  double alpha_, beta_;
  int64_t pretrained_layers_;
  std::vector<std::pair<std::string, at::Tensor>> pretrained_;  ///< (name, live parameter)
  std::vector<at::Tensor> fresh_;
  TensorMap reference_;  ///< name -> w0
};

}  // namespace graft::train
