// graft linear fit|eval|predict: shallow classifiers on extracted features.
#include <chrono>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "common.h"
#include "graft/analysis/metrics.h"
#include "graft/classify/linear.h"
#include "graft/core/check.h"
#include "graft/core/files.h"
#include "graft/io/npy.h"

namespace graft::cli {
namespace {

at::Tensor read_features(const std::string& path) {
  auto x = io::read_npy(path);
  GRAFT_CHECK(x.dim() == 2, path, ": features must have shape (N, F), got ", x.sizes());
  GRAFT_CHECK(x.is_floating_point(), path, ": features must be float32 or float64, got ", x.scalar_type());
  return x.to(at::kFloat);
}

at::Tensor read_labels(const std::string& path, int64_t rows, const std::string& features) {
  auto y = io::read_npy(path);
  GRAFT_CHECK(!y.is_floating_point(), path, ": labels must be integers (int64), got ", y.scalar_type());
  GRAFT_CHECK(y.dim() == 1, path, ": labels must have shape (N,), got ", y.sizes());
  GRAFT_CHECK(y.size(0) == rows, path, " holds ", y.size(0), " labels but ", features, " holds ", rows,
              " feature rows; they must have the same length");
  data::check_labels(y, path);
  return y.to(at::kLong);
}

std::string default_labels(std::string features) {
  if (features.size() > 4 && features.substr(features.size() - 4) == ".npy") features.resize(features.size() - 4);
  return features + ".labels.npy";
}

}  // namespace

void add_linear(CLI::App& app) {
  auto* lin = app.add_subcommand("linear", "Linear SVM / logistic regression on features (.npy)");
  lin->require_subcommand(1);

  struct Fit {
    classify::LinearOptions o;
    std::string features, labels, out, report;
  };
  auto f = std::make_shared<Fit>();
  auto* fit = lin->add_subcommand("fit", "Fit a classifier; C chosen by stratified cross-validation unless given");
  fit->add_option("--features", f->features, "features .npy (N, F)")->required();
  fit->add_option("--labels", f->labels, "labels .npy (N) int64 (default: FEATURES with .labels.npy)");
  fit->add_option("--loss", f->o.loss, "squared_hinge, hinge (linear SVMs) or logistic (multinomial)")
      ->capture_default_str();
  fit->add_option("--C", f->o.C, "regularisation (0: cross-validate over --C-grid)")->capture_default_str();
  fit->add_option("--C-grid", f->o.C_grid, "values of C tried by cross-validation")->delimiter(',');
  fit->add_option("--folds", f->o.folds, "cross-validation folds")->capture_default_str();
  fit->add_flag("--balanced", f->o.balanced, "weight classes inversely to their frequency");
  fit->add_flag("!--no-standardize", f->o.standardize, "do not z-score the features");
  fit->add_option("--seed", f->o.seed, "seed of the fold assignment")->capture_default_str()->check(seed_check());
  fit->add_option("--out", f->out, "where to save the classifier")->required();
  fit->add_option("--report", f->report, "also write C, cross-validation scores and fit time as JSON here");
  fit->callback([f] {
    f->o.validate();
    auto x = read_features(f->features);
    auto labels = f->labels.empty() ? default_labels(f->features) : f->labels;
    auto y = read_labels(labels, x.size(0), f->features);
    classify::LinearClassifier c(f->o);
    auto t0 = std::chrono::steady_clock::now();
    c.fit(x, y);
    double fit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (auto& [C, acc] : c.cv_scores())
      std::cout << "C " << std::setw(8) << C << "  cross-validated accuracy " << std::fixed << std::setprecision(2)
                << 100 * acc << "%\n" << std::defaultfloat;
    auto train_acc = (c.predict(x) == y).to(at::kDouble).mean().item<double>();
    std::cout << "chose C " << c.C() << "; training accuracy " << std::fixed << std::setprecision(2) << 100 * train_acc
              << "%\n";
    std::cout << "fit in " << std::setprecision(3) << fit_seconds << " s\n" << std::defaultfloat;
    c.save(f->out, {{"features", f->features}, {"labels", labels}});
    std::cout << "saved " << f->out << "\n";
    if (!f->report.empty()) {
      nlohmann::json cv = nlohmann::json::array();
      for (auto& [C, acc] : c.cv_scores()) cv.push_back({{"C", C}, {"cv_accuracy", acc}});
      nlohmann::json j = {{"C", c.C()},         {"loss", f->o.loss},          {"cv", cv},
                          {"fit_seconds", fit_seconds}, {"train_accuracy", train_acc}, {"rows", x.size(0)},
                          {"dim", x.size(1)}};
      graft::write_text_atomically(f->report, j.dump() + "\n");
    }
  });

  struct Ev {
    std::string classifier, features, labels, json;
  };
  auto e = std::make_shared<Ev>();
  auto* ev = lin->add_subcommand("eval", "Accuracy, per-class accuracy and confusion matrix on labelled features");
  ev->add_option("--classifier", e->classifier, "saved classifier")->required();
  ev->add_option("--features", e->features, "features .npy")->required();
  ev->add_option("--labels", e->labels, "labels .npy (default: FEATURES with .labels.npy)");
  ev->add_option("--json", e->json, "also write the report as JSON here");
  ev->callback([e] {
    auto c = classify::LinearClassifier::load(e->classifier);
    auto x = read_features(e->features);
    auto y = read_labels(e->labels.empty() ? default_labels(e->features) : e->labels, x.size(0), e->features);
    auto r = analysis::classification_report(c.predict(x), y, c.num_classes());
    std::vector<std::string> names;
    for (int64_t k = 0; k < c.num_classes(); ++k) names.push_back(std::to_string(k));
    std::cout << r.to_table(names);
    if (!e->json.empty()) graft::write_text_atomically(e->json, r.to_json(names).dump(2) + "\n");
  });

  struct Pr {
    std::string classifier, features, out;
  };
  auto p = std::make_shared<Pr>();
  auto* pr = lin->add_subcommand("predict", "Predicted label and decision value per feature row (CSV)");
  pr->add_option("--classifier", p->classifier, "saved classifier")->required();
  pr->add_option("--features", p->features, "features .npy")->required();
  pr->add_option("--out", p->out, "CSV file (default: standard output)");
  pr->callback([p] {
    auto c = classify::LinearClassifier::load(p->classifier);
    auto s = c.decision_function(read_features(p->features));
    auto top = s.max(1);
    auto val = std::get<0>(top), idx = std::get<1>(top);
    std::ostringstream csv;
    csv << "index,label,score\n";
    for (int64_t i = 0; i < s.size(0); ++i) csv << i << "," << idx[i].item<int64_t>() << "," << val[i].item<float>() << "\n";
    if (p->out.empty()) std::cout << csv.str();
    else graft::write_text_atomically(p->out, csv.str());
  });
}

}  // namespace graft::cli
