// Deep CORAL (Sun & Saenko 2016): match the second-order statistics of source and target features.
#include "graft/adapt/losses.h"
#include "graft/adapt/method.h"

namespace graft::adapt {
namespace {
class Coral : public Method {
 public:
  explicit Coral(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "coral"; }
  bool forwards_paired() const override { return true; }
  train::TermOutput loss(train::StepContext& ctx) override {
    return {o_.trade_off * coral_loss(ctx.labelled_features(), ctx.paired_features()), {}};
  }

 private:
  MethodOptions o_;
};
}  // namespace

MethodInfo coral_method() {
  return {"coral", "Deep CORAL: align feature covariances (Sun & Saenko 2016)", false, false, {"trade-off"}, 1.0,
          [](const MethodOptions& o) { return std::make_shared<Coral>(o); }};
}

}  // namespace graft::adapt
