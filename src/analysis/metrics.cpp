#include "graft/analysis/metrics.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <limits>
#include <sstream>

#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/loader.h"

namespace graft::analysis {

ClassificationReport classification_report(const at::Tensor& predicted, const at::Tensor& truth, int64_t k) {
  GRAFT_CHECK(predicted.numel() == truth.numel(), "predictions (", predicted.numel(), ") and labels (", truth.numel(),
              ") differ in number");
  ClassificationReport r;
  r.n = truth.numel();
  r.loss = std::numeric_limits<double>::quiet_NaN();
  r.confusion.assign(static_cast<size_t>(k), std::vector<int64_t>(static_cast<size_t>(k), 0));
  auto p = predicted.to(at::kLong).cpu().contiguous();
  auto t = truth.to(at::kLong).cpu().contiguous();
  auto pp = p.data_ptr<int64_t>(), tp = t.data_ptr<int64_t>();
  int64_t correct = 0;
  for (int64_t i = 0; i < r.n; ++i) {
    GRAFT_CHECK(tp[i] >= 0 && tp[i] < k, "label ", tp[i], " outside the ", k, " classes");
    GRAFT_CHECK(pp[i] >= 0 && pp[i] < k, "prediction ", pp[i], " outside the ", k, " classes");
    ++r.confusion[static_cast<size_t>(tp[i])][static_cast<size_t>(pp[i])];
    correct += pp[i] == tp[i];
  }
  r.accuracy = r.n ? static_cast<double>(correct) / static_cast<double>(r.n) : 0.0;
  for (int64_t c = 0; c < k; ++c) {
    int64_t row = 0;
    for (auto v : r.confusion[static_cast<size_t>(c)]) row += v;
    r.per_class.push_back(row ? static_cast<double>(r.confusion[static_cast<size_t>(c)][static_cast<size_t>(c)]) / row
                              : std::numeric_limits<double>::quiet_NaN());
  }
  return r;
}

nlohmann::json ClassificationReport::to_json(const std::vector<std::string>& names) const {
  nlohmann::json pc = nlohmann::json::object();
  for (size_t c = 0; c < per_class.size(); ++c) {
    auto key = c < names.size() ? names[c] : std::to_string(c);
    pc[key] = std::isnan(per_class[c]) ? nlohmann::json(nullptr) : nlohmann::json(per_class[c]);
  }
  nlohmann::json j = {{"n", n}, {"accuracy", accuracy}, {"per_class_accuracy", pc}, {"confusion", confusion}};
  j["loss"] = std::isnan(loss) ? nlohmann::json(nullptr) : nlohmann::json(loss);
  return j;
}

std::string ClassificationReport::to_table(const std::vector<std::string>& names) const {
  std::ostringstream os;
  os << std::fixed << std::setprecision(2);
  os << "accuracy " << 100 * accuracy << "% on " << n << " examples";
  if (!std::isnan(loss)) os << std::setprecision(4) << ", loss " << loss;
  os << "\n" << std::setprecision(2);
  size_t w = 5;
  for (size_t c = 0; c < per_class.size(); ++c) w = std::max(w, (c < names.size() ? names[c] : "").size());
  os << "per-class accuracy:\n";
  for (size_t c = 0; c < per_class.size(); ++c) {
    os << "  " << std::setw(static_cast<int>(w)) << std::left << (c < names.size() ? names[c] : std::to_string(c))
       << std::right << "  ";
    if (std::isnan(per_class[c])) os << "    -\n";
    else os << std::setw(6) << 100 * per_class[c] << "%\n";
  }
  os << "confusion matrix (rows: true class, columns: predicted):\n";
  int64_t mx = 1;
  for (auto& row : confusion)
    for (auto v : row) mx = std::max(mx, v);
  int cw = static_cast<int>(std::to_string(mx).size()) + 1;
  for (size_t c = 0; c < confusion.size(); ++c) {
    os << "  " << std::setw(3) << c << " |";
    for (auto v : confusion[c]) os << std::setw(cw) << v;
    os << "\n";
  }
  return os.str();
}

ClassificationReport evaluate(models::Backbone& model, const data::DatasetPtr& dataset, const data::Pipeline& pipeline,
                              int64_t k, EvalOptions opts) {
  c10::NoGradGuard ng;
  bool was = model.is_training();
  model.train(false);
  int64_t values = 1;
  for (auto d : dataset->input_shape()) values *= std::max<int64_t>(d, 1);
  const int64_t batch = opts.batch_size > 0 ? opts.batch_size : default_batch_size(values, 256, /*inference=*/true);
  const int workers = opts.workers >= 0 ? opts.workers : default_workers();
  auto dev = model.device();
  data::Loader loader(dataset, pipeline,  // pinned batches on a GPU: asynchronous copies
                      data::LoaderOptions().batch_size_(batch).shuffle_(false).workers_(workers).pin_memory_(dev.is_cuda()));
  loader.start_epoch(0);
  std::vector<at::Tensor> preds, truths;
  double loss_sum = 0;
  while (auto b = loader.next()) {
    GRAFT_CHECK(b->label.min().item<int64_t>() >= 0, dataset->describe(),
                " has unlabelled examples; evaluation needs labels");
    GRAFT_CHECK(b->label.max().item<int64_t>() < k, dataset->describe(), " has label ", b->label.max().item<int64_t>(),
                " but the model has ", k, " classes");
    at::Tensor logits;
    {
      AutocastGuard ac(opts.precision, dev.type());
      logits = to_float32(model.forward(b->input.to(dev, b->input.scalar_type(), /*non_blocking=*/true))).to(at::kCPU);
    }
    GRAFT_CHECK(logits.dim() == 2 && logits.size(1) == k, "the model outputs shape ", logits.sizes(),
                ", expected (N, ", k, ")");
    loss_sum += at::cross_entropy_loss(logits, b->label, {}, at::Reduction::Sum).item<double>();
    preds.push_back(logits.argmax(1));
    truths.push_back(b->label);
  }
  model.train(was);
  GRAFT_CHECK(!preds.empty(), dataset->describe(), ": no example could be evaluated");
  if (loader.skipped() > 0)
    std::cerr << "graft: skipped " << loader.skipped() << " undecodable example(s) of " << dataset->describe() << "\n";
  auto r = classification_report(at::cat(preds), at::cat(truths), k);
  r.loss = loss_sum / static_cast<double>(std::max<int64_t>(r.n, 1));
  return r;
}

}  // namespace graft::analysis
