// TENT (Wang et al. 2021), test-time: only BatchNorm's affine parameters learn, by
// minimising the entropy of the target predictions, with BatchNorm normalising by the
// target batches' statistics. graft runs it offline over the unlabelled target set; the
// running statistics follow the target as a side effect (as in AdaBN).
#include "graft/adapt/losses.h"
#include "graft/adapt/method.h"

namespace graft::adapt {
namespace {
class Tent : public Method {
 public:
  std::string name() const override { return "tent"; }
  bool forwards_paired() const override { return true; }
  std::function<bool(const std::string&)> param_filter(const models::Backbone& m) const override {
    const models::Backbone* model = &m;
    return [model](const std::string& p) { return is_batchnorm_affine(*model, p); };
  }
  train::TermOutput loss(train::StepContext& ctx) override { return {entropy(ctx.paired_logits()), {}}; }
};
}  // namespace

MethodInfo tent_method() {
  return {"tent", "test-time entropy minimisation of BatchNorm's affine parameters (Wang et al. 2021), target only",
          true, true, {}, 1.0, [](const MethodOptions&) { return std::make_shared<Tent>(); }};
}

}  // namespace graft::adapt
