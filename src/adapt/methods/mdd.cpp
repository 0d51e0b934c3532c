// MDD (Zhang et al. 2019): margin disparity discrepancy with an adversarial classifier head.
#include <torch/torch.h>

#include "graft/adapt/method.h"
#include "graft/adapt/objectives.h"

namespace graft::adapt {
namespace {
class Mdd : public Method {
 public:
  explicit Mdd(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "mdd"; }
  bool forwards_paired() const override { return true; }
  void setup(const train::TermSetup& s) override {
    head_ = make_adversarial_head(s.feature_width, o_.disc_hidden, s.num_classes);
    head_->to(s.device);
  }
  train::TermOutput loss(train::StepContext& ctx) override {
    // As in TLlib's MDD, the reversal coefficient ramps from 0 to 0.1: the adversarial head
    // learns at full strength while the features follow it gently.
    const double coeff = 0.1 * dann_lambda(ctx.progress, o_.lambda_gamma);
    auto adv = head_->forward(grad_reverse(ctx.features, coeff));
    const int64_t ns = ctx.n_labelled, nt = adv.size(0) - ns;
    auto d = margin_disparity_discrepancy(ctx.labelled_logits(), adv.narrow(0, 0, ns), ctx.paired_logits(),
                                          adv.narrow(0, ns, nt), o_.margin);
    return {o_.trade_off * d, {{"lambda", coeff}}};
  }
  std::vector<at::Tensor> parameters() override { return head_->parameters(); }
  void train(bool on) override { head_->train(on); }
  train::TensorMap save() const override { return named(*head_); }
  void load(const train::TensorMap& s) override { load_named(*head_, s); }

 private:
  MethodOptions o_;
  torch::nn::Sequential head_{nullptr};
};
}  // namespace

MethodInfo mdd_method() {
  return {"mdd", "margin disparity discrepancy with an adversarial head (Zhang et al. 2019)", false, false,
          {"trade-off", "lambda-gamma", "disc-hidden", "margin"}, 1.0,
          [](const MethodOptions& o) { return std::make_shared<Mdd>(o); }};
}

}  // namespace graft::adapt
