// CDAN+E (Long et al. 2018): the discriminator conditioned on class predictions, entropy-weighted.
#include <torch/torch.h>

#include "graft/adapt/method.h"
#include "adversarial.h"
#include "graft/adapt/objectives.h"

namespace graft::adapt {
namespace {
class Cdan : public WithDiscriminator {
 public:
  explicit Cdan(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "cdan"; }
  bool forwards_paired() const override { return true; }
  void setup(const train::TermSetup& s) override { make_discriminator(s.feature_width * s.num_classes, o_.disc_hidden, s.device); }
  train::TermOutput loss(train::StepContext& ctx) override {
    const double lambda = o_.trade_off * dann_lambda(ctx.progress, o_.lambda_gamma);
    auto r = conditional_adversarial_loss(disc_, ctx.features, ctx.logits, ctx.n_labelled, lambda);
    return {r.loss, {{"lambda", lambda}}, {{"domain_acc", r.domain_acc}}};
  }

 private:
  MethodOptions o_;
};
}  // namespace

MethodInfo cdan_method() {
  return {"cdan", "conditional adversarial adaptation with entropy weighting, CDAN+E (Long et al. 2018)", false,
          false, {"trade-off", "lambda-gamma", "disc-hidden"}, 1.0,
          [](const MethodOptions& o) { return std::make_shared<Cdan>(o); }};
}

}  // namespace graft::adapt
