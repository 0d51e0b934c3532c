// DANN (Ganin & Lempitsky 2015): a domain discriminator behind a gradient reversal layer.
#include <torch/torch.h>

#include "graft/adapt/losses.h"
#include "graft/adapt/method.h"
#include "adversarial.h"

namespace graft::adapt {
namespace {
class Dann : public WithDiscriminator {
 public:
  explicit Dann(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "dann"; }
  bool forwards_paired() const override { return true; }
  void setup(const train::TermSetup& s) override { make_discriminator(s.feature_width, o_.disc_hidden, s.device); }
  train::TermOutput loss(train::StepContext& ctx) override {
    const double lambda = o_.trade_off * dann_lambda(ctx.progress, o_.lambda_gamma);
    auto r = domain_adversarial_loss(disc_, ctx.labelled_features(), ctx.paired_features(), lambda);
    return {r.loss, {{"lambda", lambda}}, {{"domain_acc", r.domain_acc}}};
  }

 private:
  MethodOptions o_;
};
}  // namespace

MethodInfo dann_method() {
  return {"dann", "domain-adversarial training: a discriminator behind gradient reversal (Ganin & Lempitsky 2015)",
          false, false, {"trade-off", "lambda-gamma", "disc-hidden"}, 1.0,
          [](const MethodOptions& o) { return std::make_shared<Dann>(o); }};
}

}  // namespace graft::adapt
