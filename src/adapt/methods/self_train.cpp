// Self-training: confident target predictions become labels, after 30% of training.
#include <torch/torch.h>

#include "graft/adapt/method.h"
#include "graft/adapt/objectives.h"

namespace graft::adapt {
namespace {
class SelfTrain : public Method {
 public:
  explicit SelfTrain(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "self-train"; }
  bool forwards_paired() const override { return true; }
  train::TermOutput loss(train::StepContext& ctx) override {
    if (ctx.progress < 0.3) return {};
    auto zt = ctx.paired_logits();
    auto pl = confident_pseudo_labels(zt, o_.threshold);
    const double share = pl.mask.to(at::kDouble).mean().item<double>();
    if (share == 0) return {{}, {{"confident", 0.0}}};
    auto ce = torch::nn::functional::cross_entropy(zt.index({pl.mask}), pl.labels.index({pl.mask}));
    return {o_.trade_off * ce, {{"confident", share}}};
  }

 private:
  MethodOptions o_;
};
}  // namespace

MethodInfo self_train_method() {
  return {"self-train", "self-training on confident target pseudo-labels (from 30% of training on)", false, false,
          {"trade-off", "threshold"}, 1.0, [](const MethodOptions& o) { return std::make_shared<SelfTrain>(o); }};
}

}  // namespace graft::adapt
