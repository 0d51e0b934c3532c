#include "graft/selfsup/semisup.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <iostream>

#include "graft/adapt/objectives.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/loader.h"

namespace graft::selfsup {

void SemisupOptions::validate() const {
  check_choice("method", method, {"fixmatch", "pseudo-label", "supervised"});
  GRAFT_CHECK(std::isfinite(threshold) && threshold > 0 && threshold <= 1,
              "--threshold (pseudo-label confidence) must be in (0, 1], got ", threshold);
  GRAFT_CHECK(mu >= 1 && mu <= 64, "--mu (unlabelled batches per labelled batch) must be in [1, 64], got ", mu);
  GRAFT_CHECK(std::isfinite(weight) && weight >= 0 && weight <= 100, "--unlabelled-weight must be in [0, 100], got ",
              weight);
  if (!weak.empty()) data::Pipeline::parse(weak);
  if (!strong.empty()) data::Pipeline::parse(strong);
}

nlohmann::json SemisupOptions::to_json() const {
  return {{"method", method}, {"threshold", threshold}, {"mu", mu}, {"weight", weight}, {"weak", weak},
          {"strong", strong}};
}

std::string weak_augment(const std::vector<int64_t>& s) {
  const int64_t h = s.size() == 3 ? s[1] : 28;
  return "hflip,random-crop=" + std::to_string(h) + ":" + std::to_string(std::max<int64_t>(1, h / 8));
}

std::string strong_augment(const std::vector<int64_t>& s) {
  const int64_t h = s.size() == 3 ? s[1] : 28;
  return weak_augment(s) + ",rotate=30,scale=0.2,jitter=0.5,cutout=" + std::to_string(std::max<int64_t>(1, h / 2));
}

namespace {

/// The unlabelled term as the trainer's extra loss. Both views come from loaders with the
/// same order (same seed and options), so row j of the weak and strong batches is the same
/// image; the position in the unlabelled stream follows from the global step alone, which
/// makes a resumed run draw exactly the batches an uninterrupted one would.
struct UnlabelledTerm {
  SemisupOptions o;
  std::unique_ptr<data::Loader> weak, strong;
  c10::Device dev = c10::kCPU;
  int64_t expected = -1;
  SemisupStats* stats = nullptr;

  at::Tensor operator()(models::Backbone& m, int64_t global_step, double) {
    const int64_t per = weak->batches_per_epoch();
    const int64_t ep = global_step / per, k = global_step % per;
    if (global_step != expected || k == 0) {
      weak->start_epoch(ep, k);
      if (strong) strong->start_epoch(ep, k);
    }
    expected = global_step + 1;
    auto bw = weak->next();
    GRAFT_CHECK(bw.has_value(), "internal: the unlabelled stream ended early");
    at::Tensor logits_w;
    {
      torch::NoGradGuard ng;
      logits_w = m.forward(bw->input.to(dev));
    }
    auto pseudo = adapt::confident_pseudo_labels(logits_w, o.threshold);
    const auto& pl = pseudo.labels;
    auto mask = pseudo.mask.to(logits_w.dtype());
    at::Tensor logits_s;
    if (strong) {
      auto bs = strong->next();
      GRAFT_CHECK(bs.has_value() && bs->index.equal(bw->index), "internal: the weak and strong views went out of step");
      logits_s = m.forward(bs->input.to(dev));
    } else {
      logits_s = m.forward(bw->input.to(dev));  // pseudo-label: the weak view's own prediction, with a graph
    }
    auto ce = torch::nn::functional::cross_entropy(
        logits_s, pl, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    if (stats) {
      stats->unlabelled_seen += bw->size();
      const auto& keep = pseudo.mask;
      stats->confident += keep.sum().item<int64_t>();
      auto y = bw->label.to(dev);
      auto known = keep & (y >= 0);
      if (stats->correct >= 0 && (y >= 0).all().item<bool>())
        stats->correct += (known & (pl == y)).sum().item<int64_t>();
      else
        stats->correct = -1;
    }
    return o.weight * (ce * mask).mean();
  }
};

}  // namespace

train::TrainResult train_semisup(models::BackbonePtr model, const io::ModelMeta& meta, train::TrainConfig cfg,
                                 const SemisupOptions& opts, const data::DatasetPtr& labelled,
                                 const data::DatasetPtr& unlabelled, const data::DatasetPtr& val,
                                 const data::DatasetPtr& test, SemisupStats* stats) {
  opts.validate();
  GRAFT_CHECK(labelled && labelled->size() > 0, "the labelled set is empty");
  GRAFT_CHECK(unlabelled && unlabelled->size() > 0,
              "the unlabelled set is empty: semi-supervised training needs unlabelled examples (or use graft train)");
  for (auto y : labelled->labels())
    GRAFT_CHECK(y >= 0, labelled->describe(), " has examples without labels; give them as --unlabelled instead");
  const auto shape = unlabelled->input_shape();
  GRAFT_CHECK(shape == labelled->input_shape(), "labelled examples have shape ", at::IntArrayRef(labelled->input_shape()),
              " but unlabelled ones ", at::IntArrayRef(shape), "; give both the same size");
  if (cfg.augment.empty()) cfg.augment = opts.weak.empty() ? weak_augment(shape) : opts.weak;
  cfg.cache = "off";
  const int64_t ub = std::min<int64_t>(opts.mu * cfg.batch_size, unlabelled->size());
  // One epoch = one pass over the unlabelled set: repeat the labelled examples to match.
  const int64_t u_steps = std::max<int64_t>(1, unlabelled->size() / ub);
  const int64_t l_steps = (labelled->size() + cfg.batch_size - 1) / cfg.batch_size;
  const int64_t reps = std::max<int64_t>(1, (u_steps + l_steps - 1) / l_steps);
  std::vector<int64_t> idx;
  idx.reserve(static_cast<size_t>(labelled->size() * reps));
  for (int64_t r = 0; r < reps; ++r)
    for (int64_t i = 0; i < labelled->size(); ++i) idx.push_back(i);
  auto rep = std::make_shared<data::SubsetDataset>(labelled, idx, std::vector<int64_t>{}, labelled->class_names(),
                                                   "repeated x" + std::to_string(reps));
  train::Trainer trainer(model, meta, cfg);
  if (opts.method != "supervised" && opts.weight > 0) {
    auto term = std::make_shared<UnlabelledTerm>();
    term->o = opts;
    term->dev = parse_device(cfg.device);
    term->stats = stats;
    auto base = train::input_pipeline(meta, shape);
    auto lo = data::LoaderOptions().batch_size_(ub).seed_(cfg.seed + 1000003).workers_(cfg.workers).drop_last_(true);
    auto weak = data::Pipeline::parse(opts.weak.empty() ? weak_augment(shape) : opts.weak).then(base);
    term->weak = std::make_unique<data::Loader>(unlabelled, weak, lo);
    if (opts.method == "fixmatch") {
      auto strong = data::Pipeline::parse(opts.strong.empty() ? strong_augment(shape) : opts.strong).then(base);
      term->strong = std::make_unique<data::Loader>(unlabelled, strong, lo);
    }
    trainer.set_extra_loss([term](models::Backbone& m, int64_t gs, double p) { return (*term)(m, gs, p); },
                           "unlabelled");
  }
  return trainer.fit(rep, val, test);
}

}  // namespace graft::selfsup
