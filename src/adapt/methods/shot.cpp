// SHOT (Liang et al. 2020), source-free: from a source-trained model, the classifier
// above the tap (the source hypothesis) is frozen and the features learn on the target
// alone, by information maximisation plus self-supervised pseudo-labels from
// prediction-weighted feature centroids, recomputed at the start of every epoch.
#include <torch/torch.h>

#include "graft/adapt/method.h"
#include "graft/adapt/objectives.h"
#include "graft/data/loader.h"

namespace graft::adapt {
namespace {
class Shot : public Method {
 public:
  explicit Shot(const MethodOptions& o) : o_(o) {}
  std::string name() const override { return "shot"; }
  bool forwards_paired() const override { return true; }
  void setup(const train::TermSetup& s) override { s_ = s; }
  void adjust_plan(std::vector<double>& mult, size_t tap) const override {
    for (size_t i = tap + 1; i < mult.size(); ++i) mult[i] = 0;
  }
  void on_epoch_begin(models::Backbone& m, int64_t /*epoch*/) override {
    torch::NoGradGuard ng;
    m.train(false);
    data::Loader l(s_.paired, s_.paired_pipeline, data::LoaderOptions().batch_size_(256).shuffle_(false).workers_(s_.workers));
    l.start_epoch(0);
    std::vector<at::Tensor> f, z;
    while (auto b = l.next()) {
      auto h = m.forward_range(b->input.to(s_.device), 0, static_cast<size_t>(s_.tap) + 1);
      z.push_back(m.forward_range(h, static_cast<size_t>(s_.tap) + 1, m.num_layers()).cpu());
      f.push_back(h.flatten(1).cpu());
    }
    labels_ = cluster_pseudo_labels(at::cat(f), at::cat(z)).to(s_.device);
  }
  train::TermOutput loss(train::StepContext& ctx) override {
    auto z = ctx.paired_logits();
    auto im = information_maximisation_loss(z);
    auto pl = labels_.index_select(0, ctx.xt_index.to(labels_.device()));
    auto ce = torch::nn::functional::cross_entropy(z, pl);
    const double agree = (z.argmax(1) == pl).to(at::kDouble).mean().item<double>();
    return {im + o_.trade_off * ce, {{"pseudo_label_agreement", agree}}};
  }
  train::TensorMap save() const override { return {{"labels", labels_}}; }
  void load(const train::TensorMap& s) override { labels_ = s.at("labels"); }

 private:
  MethodOptions o_;
  train::TermSetup s_;
  at::Tensor labels_;
};
}  // namespace

MethodInfo shot_method() {
  return {"shot", "source-free: frozen source classifier, information maximisation + clustering pseudo-labels "
                  "(Liang et al. 2020); --trade-off weighs the pseudo-labels",
          true, false, {"trade-off"}, 0.3, [](const MethodOptions& o) { return std::make_shared<Shot>(o); }};
}

}  // namespace graft::adapt
