#include "graft/train/finetune.h"

#include <torch/torch.h>

#include "graft/core/check.h"

namespace graft::train {

FinetunePlan plan_finetune(const models::OpenedModel& pretrained, const std::vector<std::string>& class_names,
                           const FinetuneOptions& opts, const std::function<void(const std::string&)>& warn,
                           const std::vector<int64_t>& data_shape) {
  GRAFT_CHECK(pretrained.model, "fine-tuning: no pretrained model (open one with models::open_model)");
  GRAFT_CHECK(class_names.size() >= 2, "fine-tuning a classifier needs at least 2 target classes, got ",
              class_names.size());
  GRAFT_CHECK(!models::as_cut(*pretrained.model), "the pretrained model is itself fine-tuned (it has a head); "
              "fine-tune the original model, or continue this run with --resume");
  opts.head.validate();
  FinetunePlan plan;
  plan.cut = opts.cut;
  const auto& names = pretrained.model->layer_names();
  if (plan.cut.empty()) {
    GRAFT_CHECK(names.size() >= 2, "the model has a single layer; give --cut");
    plan.cut = names[names.size() - 2];
  }
  const auto& base_meta = pretrained.meta;
  std::vector<int64_t> fed_shape = base_meta.input_shape;
  if (fed_shape.size() == 3 && !data_shape.empty()) {
    auto d = data_shape;
    d.insert(d.begin(), 1);
    auto fed = input_pipeline(base_meta, data_shape).apply_batch(at::zeros(d));
    fed_shape.assign(fed.sizes().begin() + 1, fed.sizes().end());
  }
  plan.model = models::cut_and_add_head(pretrained.model, plan.cut, static_cast<int64_t>(class_names.size()),
                                        fed_shape, opts.head, opts.train.seed);
  plan.meta.arch = "cut";
  plan.meta.input_shape = base_meta.input_shape;
  plan.meta.class_names = class_names;
  plan.meta.preprocess = base_meta.preprocess;
  plan.meta.arch_config = {{"base", base_meta.to_json()}, {"cut", models::as_cut(*plan.model)->config()}};
  plan.train = opts.train;
  plan.train.pretrained_layers = static_cast<int64_t>(models::as_cut(*plan.model)->kept_layers());
  plan.train.layer_lr_mult = resolve_lr_mults(*plan.model, opts.policy, warn);
  plan.train.validate();
  for (size_t i = 0; i < plan.model->num_layers(); ++i)
    if (plan.train.layer_lr_mult[i] == 0) plan.frozen.push_back(plan.model->layer_names()[i]);
  return plan;
}

FinetuneResult fine_tune(const models::OpenedModel& pretrained, const data::DatasetPtr& train_set,
                         const data::DatasetPtr& val, const data::DatasetPtr& test, FinetuneOptions opts,
                         const std::function<void(const std::string&)>& warn) {
  GRAFT_CHECK(train_set, "fine-tuning: no training set");
  if (!val && opts.train.patience >= 0) {
    if (warn) warn("no validation set: early stopping is off");
    opts.train.patience = -1;
  }
  FinetuneResult r;
  r.plan = plan_finetune(pretrained, train_set->class_names(), opts, warn, train_set->input_shape());
  Trainer trainer(r.plan.model, r.plan.meta, r.plan.train);
  r.train = trainer.fit(train_set, val, test);
  return r;
}

}  // namespace graft::train
