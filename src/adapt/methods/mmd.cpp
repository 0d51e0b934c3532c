// DAN (Long et al. 2015): multi-kernel maximum mean discrepancy between the domains' features.
#include "graft/adapt/losses.h"
#include "graft/adapt/method.h"

namespace graft::adapt {
namespace {
class Mmd : public Method {
 public:
  explicit Mmd(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "mmd"; }
  bool forwards_paired() const override { return true; }
  train::TermOutput loss(train::StepContext& ctx) override {
    return {o_.trade_off * mmd_loss(ctx.labelled_features(), ctx.paired_features()), {}};
  }

 private:
  MethodOptions o_;
};
}  // namespace

MethodInfo mmd_method() {
  return {"mmd", "DAN: multi-kernel MMD between source and target features (Long et al. 2015)", false, false,
          {"trade-off"}, 1.0, [](const MethodOptions& o) { return std::make_shared<Mmd>(o); }};
}

}  // namespace graft::adapt
