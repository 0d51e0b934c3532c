#include "graft/features/offtheshelf.h"

#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "graft/core/check.h"
#include "graft/core/stats.h"
#include "graft/core/files.h"

namespace graft::features {

at::Tensor OffTheShelfModel::scores(const at::Tensor& x) {
  backbone->train(false);
  if (!extractor) extractor = std::make_shared<FeatureExtractor>(*backbone, recipe);
  auto s = classifier.decision_function(extractor->concatenated(x.to(backbone->device())));
  return classifier.options().loss == "logistic" ? at::softmax(s, 1) : s;
}

void OffTheShelfModel::save(const std::string& path) const {
  GRAFT_CHECK(backbone, "cannot save an off-the-shelf model without a backbone");
  auto [cmeta, tensors] = classifier.to_parts();
  io::Attachment a;
  a.meta = {{"kind", "offtheshelf"},
            {"layers", recipe.layers},
            {"pool", recipe.pool},
            {"norm", recipe.norm},
            {"tta", recipe.tta},
            {"class_names", class_names},
            {"classifier", cmeta}};
  a.tensors = tensors;
  io::save_checkpoint(path, *backbone, backbone_meta, nullptr, nullptr, &a);
}

bool OffTheShelfModel::holds(const io::Checkpoint& ck) {
  return ck.attachment && ck.attachment->meta.value("kind", "") == "offtheshelf";
}

OffTheShelfModel OffTheShelfModel::from_checkpoint(const io::Checkpoint& ck) {
  GRAFT_CHECK(holds(ck), ck.path, " holds no off-the-shelf classifier (make one with 'graft transfer --save')");
  const auto& m = ck.attachment->meta;
  OffTheShelfModel o;
  o.backbone = ck.model;
  o.backbone_meta = ck.meta;
  try {
    o.recipe.layers = m.at("layers").get<std::vector<std::string>>();
    o.recipe.pool = m.at("pool").get<std::string>();
    o.recipe.norm = m.at("norm").get<std::string>();
    o.recipe.tta = m.at("tta").get<std::string>();
    o.class_names = m.at("class_names").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    GRAFT_FAIL(ck.path, ": damaged off-the-shelf description (", e.what(), ")");
  }
  o.recipe.validate();
  o.classifier = classify::LinearClassifier::from_parts(m.value("classifier", nlohmann::json::object()),
                                                         ck.attachment->tensors, ck.path);
  GRAFT_CHECK(o.classifier.num_classes() == static_cast<int64_t>(o.class_names.size()), ck.path, ": the classifier has ",
              o.classifier.num_classes(), " classes but ", o.class_names.size(), " class names; the file is damaged");
  return o;
}

void TransferOptions::validate() const {
  features.validate();
  classifier.validate();
  GRAFT_CHECK(!labels_per_class.empty(), "--labels-per-class is empty; give budgets such as 10,100 (0 = all labels)");
  for (auto n : labels_per_class) GRAFT_CHECK(n >= 0, "--labels-per-class must be >= 0 (0 = all labels), got ", n);
  GRAFT_CHECK(!seeds.empty(), "--seeds is empty; give seeds such as 1,2,3");
}

namespace {
std::string pct(double v) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2) << 100 * v;
  return o.str();
}
std::string budget_name(int64_t n) { return n == 0 ? "all" : std::to_string(n); }
}  // namespace

std::string TransferResult::table() const {
  std::vector<std::string> layers;
  std::vector<int64_t> budgets;
  for (const auto& c : cells) {
    if (std::find(layers.begin(), layers.end(), c.layer) == layers.end()) layers.push_back(c.layer);
    if (std::find(budgets.begin(), budgets.end(), c.labels_per_class) == budgets.end())
      budgets.push_back(c.labels_per_class);
  }
  std::ostringstream o;
  o << "| layer |";
  for (auto b : budgets) o << " " << budget_name(b) << " labels/class: test | CV |";
  o << "\n|---|";
  for (size_t i = 0; i < budgets.size(); ++i) o << "---|---|";
  o << "\n";
  for (const auto& l : layers) {
    o << "| " << l << " |";
    for (auto b : budgets) {
      bool is_best = false;
      for (const auto& [bb, bl] : best) is_best |= bb == b && bl == l;
      for (const auto& c : cells)
        if (c.layer == l && c.labels_per_class == b)
          o << " " << pct(c.mean) << " ± " << pct(c.std) << " | " << pct(c.cv_mean) << (is_best ? " *" : "") << " |";
    }
    o << "\n";
  }
  return o.str();
}

nlohmann::json TransferResult::to_json() const {
  nlohmann::json j = {{"runs", nlohmann::json::array()}, {"cells", nlohmann::json::array()},
                      {"best", nlohmann::json::array()}};
  for (const auto& r : runs)
    j["runs"].push_back({{"layer", r.layer}, {"labels_per_class", r.labels_per_class}, {"seed", r.seed},
                         {"train_size", r.train_size}, {"dim", r.dim}, {"C", r.C}, {"accuracy", r.accuracy},
                         {"cv_accuracy", r.cv_accuracy}, {"fit_seconds", r.fit_seconds}});
  for (const auto& c : cells)
    j["cells"].push_back({{"layer", c.layer}, {"labels_per_class", c.labels_per_class}, {"mean", c.mean},
                          {"std", c.std}, {"cv_mean", c.cv_mean}, {"seeds", c.n}});
  for (const auto& [b, l] : best)
    j["best"].push_back({{"labels_per_class", b}, {"layer", l}, {"chosen_by", "cross-validation on the training labels"}});
  return j;
}

std::string TransferResult::to_csv() const {
  std::ostringstream o;
  o << "layer,labels_per_class,seed,train_size,dim,C,accuracy,cv_accuracy,fit_seconds\n" << std::setprecision(8);
  for (const auto& r : runs)
    o << graft::csv_field(r.layer) << "," << r.labels_per_class << "," << r.seed << "," << r.train_size << "," << r.dim
      << "," << r.C << "," << r.accuracy << "," << r.cv_accuracy << "," << r.fit_seconds << "\n";
  return o.str();
}

TransferResult run_offtheshelf(models::BackbonePtr model, const io::ModelMeta& meta, const data::DatasetPtr& train,
                               const data::DatasetPtr& test, const TransferOptions& opts,
                               const std::function<void(const std::string&)>& progress, OffTheShelfModel* deploy) {
  opts.validate();
  GRAFT_CHECK(train->class_names() == test->class_names(), "the training and test sets name different classes (",
              train->num_classes(), " vs ", test->num_classes(), "); give views of the same target task");
  const int64_t K = train->num_classes();
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  // Fail on unknown layers before any work.
  FeatureExtractor check(*model, opts.features);
  say("extracting test features of " + std::to_string(test->size()) + " examples");
  auto test_f = extract_in_memory(*model, meta, test, opts.features);
  TransferResult res;
  const auto& layers = opts.features.layers;
  const int64_t largest = *std::max_element(opts.labels_per_class.begin(), opts.labels_per_class.end(),
                                            [](int64_t a, int64_t b) { return (a == 0 ? INT64_MAX : a) < (b == 0 ? INT64_MAX : b); });
  std::map<std::string, classify::LinearClassifier> deployable;
  for (auto n : opts.labels_per_class) {
    for (auto seed : opts.seeds) {
      auto view = n == 0 ? train : data::labels_per_class(train, n, seed);
      auto f = extract_in_memory(*model, meta, view, opts.features);
      for (size_t k = 0; k < layers.size(); ++k) {
        auto copts = opts.classifier;
        copts.seed = seed;
        // A given C is cross-validated too (a grid of one), so every layer has a CV score.
        if (copts.C > 0) {
          copts.C_grid = {copts.C};
          copts.C = 0;
        }
        classify::LinearClassifier clf(copts);
        auto t0 = std::chrono::steady_clock::now();
        clf.fit(f.layers[k], f.labels, K);
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        TransferRun r;
        r.layer = layers[k];
        r.labels_per_class = n;
        r.seed = seed;
        r.train_size = f.labels.size(0);
        r.dim = f.layers[k].size(1);
        r.C = clf.C();
        r.fit_seconds = secs;
        for (const auto& [c, a] : clf.cv_scores())
          if (c == r.C) r.cv_accuracy = a;
        r.accuracy = (clf.predict(test_f.layers[k]) == test_f.labels).to(at::kDouble).mean().item<double>();
        res.runs.push_back(r);
        std::ostringstream line;
        line << "budget " << budget_name(n) << "/class  seed " << seed << "  layer " << layers[k] << " (" << r.dim
             << " features)  C " << r.C << "  CV accuracy " << pct(r.cv_accuracy) << "%  test accuracy "
             << pct(r.accuracy) << "%";
        say(line.str());
        if (deploy && n == largest && seed == opts.seeds.front()) deployable.emplace(layers[k], clf);
      }
    }
  }
  for (auto n : opts.labels_per_class) {
    double best_mean = -1;
    std::string best_layer;
    for (const auto& l : layers) {
      std::vector<double> acc;
      TransferCell c;
      for (const auto& r : res.runs)
        if (r.layer == l && r.labels_per_class == n) acc.push_back(r.accuracy), c.cv_mean += r.cv_accuracy;
      c.cv_mean /= static_cast<double>(std::max<size_t>(acc.size(), 1));
      c.layer = l;
      c.labels_per_class = n;
      c.n = static_cast<int64_t>(acc.size());
      const auto ms = mean_std(acc);
      c.mean = ms.mean, c.std = ms.std;
      res.cells.push_back(c);
      // The choice reads only cross-validated training accuracy (ties: the earlier layer).
      if (c.cv_mean > best_mean) best_mean = c.cv_mean, best_layer = l;
    }
    res.best.emplace_back(n, best_layer);
  }
  if (deploy) {
    std::string best_layer;
    for (const auto& [b, l] : res.best)
      if (b == largest) best_layer = l;
    deploy->backbone = model;
    deploy->backbone_meta = meta;
    deploy->recipe = opts.features;
    deploy->recipe.layers = {best_layer};
    deploy->classifier = deployable.at(best_layer);
    deploy->class_names = train->class_names();
  }
  return res;
}

}  // namespace graft::features
