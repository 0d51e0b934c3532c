// MCC (Jin et al. 2020): minimum class confusion on the target predictions.
#include "graft/adapt/method.h"
#include "graft/adapt/objectives.h"

namespace graft::adapt {
namespace {
class Mcc : public Method {
 public:
  explicit Mcc(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "mcc"; }
  bool forwards_paired() const override { return true; }
  train::TermOutput loss(train::StepContext& ctx) override {
    return {o_.trade_off * minimum_class_confusion(ctx.paired_logits(), o_.temperature), {}};
  }

 private:
  MethodOptions o_;
};
}  // namespace

MethodInfo mcc_method() {
  return {"mcc", "minimum class confusion on the target predictions (Jin et al. 2020)", false, false,
          {"trade-off", "temperature"}, 1.0, [](const MethodOptions& o) { return std::make_shared<Mcc>(o); }};
}

}  // namespace graft::adapt
