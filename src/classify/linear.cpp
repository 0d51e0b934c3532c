#include "graft/classify/linear.h"

#include <linear.h>
#include <torch/optim/lbfgs.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <random>

#include "graft/core/check.h"
#include "graft/io/archive.h"
#include "graft/data/dataset.h"
#include "graft/core/files.h"

namespace graft::classify {
namespace {

void quiet(const char*) {}

// LIBLINEAR's problem in sparse-row form over dense standardised features, with a bias column.
struct Problem {
  std::vector<feature_node> nodes;
  std::vector<feature_node*> rows;
  std::vector<double> y;
  problem prob{};
  Problem(const at::Tensor& X, const at::Tensor& labels) {
    auto x = X.to(at::kDouble).contiguous();
    int64_t n = x.size(0), f = x.size(1);
    nodes.resize(static_cast<size_t>(n * (f + 2)));
    rows.resize(static_cast<size_t>(n));
    y.resize(static_cast<size_t>(n));
    auto xp = x.data_ptr<double>();
    auto lp = labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      feature_node* row = &nodes[static_cast<size_t>(i * (f + 2))];
      for (int64_t j = 0; j < f; ++j) row[j] = {static_cast<int>(j + 1), xp[i * f + j]};
      row[f] = {static_cast<int>(f + 1), 1.0};  // bias feature
      row[f + 1] = {-1, 0.0};
      rows[static_cast<size_t>(i)] = row;
      y[static_cast<size_t>(i)] = static_cast<double>(lp[i]);
    }
    prob.l = static_cast<int>(n);
    prob.n = static_cast<int>(f + 1);
    prob.y = y.data();
    prob.x = rows.data();
    prob.bias = -1;  // the bias column is already in the rows
  }
};

std::vector<double> class_weights(const at::Tensor& y, int64_t k) {
  std::vector<double> counts(static_cast<size_t>(k), 0);
  auto p = y.data_ptr<int64_t>();
  for (int64_t i = 0; i < y.numel(); ++i) counts[static_cast<size_t>(p[i])] += 1;
  std::vector<double> w(static_cast<size_t>(k), 1.0);
  for (int64_t c = 0; c < k; ++c)
    if (counts[static_cast<size_t>(c)] > 0) w[static_cast<size_t>(c)] = y.numel() / (k * counts[static_cast<size_t>(c)]);
  return w;
}

}  // namespace

void LinearOptions::validate() const {
  GRAFT_CHECK(loss == "squared_hinge" || loss == "hinge" || loss == "logistic", "--loss '", loss,
              "' is not one of squared_hinge, hinge, logistic");
  GRAFT_CHECK(std::isfinite(C) && C >= 0, "--C must be positive (or 0 to choose it by cross-validation), got ", C);
  for (double c : C_grid) GRAFT_CHECK(std::isfinite(c) && c > 0, "the C grid holds ", c, "; every C must be positive");
  GRAFT_CHECK(C > 0 || !C_grid.empty(), "give --C or a non-empty C grid");
  GRAFT_CHECK(folds >= 2 && folds <= 100, "--folds must be in [2, 100], got ", folds);
  GRAFT_CHECK(std::isfinite(tol) && tol > 0, "--tol must be positive, got ", tol);
}

LinearClassifier::LinearClassifier(LinearOptions opts) : opts_(std::move(opts)) { opts_.validate(); }

std::pair<at::Tensor, at::Tensor> LinearClassifier::fit_once(const at::Tensor& X, const at::Tensor& y, int64_t k,
                                                             double C) const {
  int64_t f = X.size(1);
  auto weights = class_weights(y, k);
  if (opts_.loss == "logistic") {
    torch::NoGradGuard outer;
    auto xd = X.to(at::kFloat);
    auto W = torch::zeros({k, f}, torch::requires_grad());
    auto b = torch::zeros({k}, torch::requires_grad());
    auto cw = opts_.balanced ? torch::tensor(weights, torch::kFloat) : torch::Tensor();
    torch::optim::LBFGS opt({W, b}, torch::optim::LBFGSOptions(1.0).max_iter(500).tolerance_grad(opts_.tol * 1e-3)
                                        .tolerance_change(1e-9).line_search_fn("strong_wolfe"));
    double n = static_cast<double>(X.size(0));
    auto closure = [&]() -> torch::Tensor {
      torch::AutoGradMode on(true);
      opt.zero_grad();
      auto logits = torch::matmul(xd, W.t()) + b;
      // sklearn's objective C * sum(loss) + |W|^2 / 2, divided by C * N
      auto loss = torch::nn::functional::cross_entropy(
                      logits, y, torch::nn::functional::CrossEntropyFuncOptions().weight(cw)) +
                  W.pow(2).sum() / (2.0 * C * n);
      loss.backward();
      return loss;
    };
    {
      torch::AutoGradMode on(true);
      opt.step(closure);
    }
    return {W.detach().to(at::kFloat), b.detach().to(at::kFloat)};
  }
  Problem p(X, y);
  parameter param{};
  param.solver_type = opts_.loss == "hinge" ? L2R_L1LOSS_SVC_DUAL : L2R_L2LOSS_SVC_DUAL;
  param.eps = opts_.tol;
  param.C = C;
  std::vector<int> wl;
  std::vector<double> wv;
  if (opts_.balanced) {
    for (int64_t c = 0; c < k; ++c) {
      wl.push_back(static_cast<int>(c));
      wv.push_back(weights[static_cast<size_t>(c)]);
    }
    param.nr_weight = static_cast<int>(k);
    param.weight_label = wl.data();
    param.weight = wv.data();
  }
  const char* err = check_parameter(&p.prob, &param);
  GRAFT_CHECK(!err, "LIBLINEAR rejected the parameters: ", err);
  static std::once_flag once;
  std::call_once(once, [] { set_print_string_function(&quiet); });
  model* m = train(&p.prob, &param);
  GRAFT_CHECK(m, "LIBLINEAR failed to train");
  // Unpack w (feature-major, nr_w columns) into (K, F) weights and (K) biases in class-id order.
  auto W = torch::zeros({k, f});
  auto b = torch::zeros({k});
  int nr_class = m->nr_class;
  int nr_w = nr_class == 2 ? 1 : nr_class;
  auto wp = W.accessor<float, 2>();
  auto bp = b.accessor<float, 1>();
  for (int c = 0; c < nr_class; ++c) {
    int64_t label = m->label[c];
    int col = nr_class == 2 ? 0 : c;
    double sign = (nr_class == 2 && c == 1) ? -1.0 : 1.0;
    for (int64_t j = 0; j < f; ++j) wp[label][j] = static_cast<float>(sign * m->w[j * nr_w + col]);
    bp[label] = static_cast<float>(sign * m->w[f * nr_w + col]);
  }
  // Classes absent from this training set never win.
  std::vector<char> present(static_cast<size_t>(k), 0);
  for (int c = 0; c < nr_class; ++c) present[static_cast<size_t>(m->label[c])] = 1;
  for (int64_t c = 0; c < k; ++c)
    if (!present[static_cast<size_t>(c)]) bp[c] = -1e30f;
  free_and_destroy_model(&m);
  return {W, b};
}

void LinearClassifier::fit(const at::Tensor& X_in, const at::Tensor& y_in, int64_t k) {
  GRAFT_CHECK(X_in.dim() == 2, "features must have shape (N, F), got ", X_in.sizes());
  GRAFT_CHECK(y_in.dim() == 1, "labels must have shape (N,), got ", y_in.sizes());
  GRAFT_CHECK(X_in.size(0) == y_in.size(0), X_in.size(0), " feature rows but ", y_in.size(0),
              " labels; features and labels must have the same length");
  GRAFT_CHECK(X_in.is_floating_point(), "features must be floating point, got ", X_in.scalar_type());
  auto X = X_in.to(at::kFloat).cpu().contiguous();
  auto y = y_in.to(at::kLong).cpu().contiguous();
  GRAFT_CHECK(at::isfinite(X).all().item<bool>(), "features contain NaN or infinite values; check the extraction");
  GRAFT_CHECK(y.min().item<int64_t>() >= 0, "labels must be >= 0 (unlabelled examples cannot train a classifier)");
  const int64_t top = y.max().item<int64_t>();
  GRAFT_CHECK(top < data::kMaxClasses && (top < 1000 || top < y.size(0)), "label ", top,
              " is too large for ", y.size(0), " examples; labels must be 0..K-1 (at most ", data::kMaxClasses,
              " classes)");
  if (k <= 0) k = top + 1;
  GRAFT_CHECK(k <= data::kMaxClasses, k, " classes requested; at most ", data::kMaxClasses);
  GRAFT_CHECK(y.max().item<int64_t>() < k, "label ", y.max().item<int64_t>(), " outside the ", k, " classes");
  GRAFT_CHECK(std::get<0>(at::_unique(y)).numel() >= 2, "the training labels hold a single class; need at least 2");
  if (opts_.standardize) {
    mean_ = X.mean(0);
    std_ = X.std(0, /*unbiased=*/false).clamp_min(1e-8);
  } else {
    mean_ = torch::zeros({X.size(1)});
    std_ = torch::ones({X.size(1)});
  }
  auto Xs = (X - mean_) / std_;
  cv_.clear();
  C_ = opts_.C;
  if (C_ <= 0) {
    // Stratified folds, seeded: each class's examples dealt round-robin after a shuffle.
    std::map<int64_t, std::vector<int64_t>> by_class;
    auto yp = y.data_ptr<int64_t>();
    for (int64_t i = 0; i < y.numel(); ++i) by_class[yp[i]].push_back(i);
    std::vector<int64_t> fold(static_cast<size_t>(y.numel()));
    std::mt19937_64 rng(opts_.seed);
    for (auto& [c, v] : by_class) {
      GRAFT_CHECK(static_cast<int64_t>(v.size()) >= opts_.folds, "class ", c, " has ", v.size(),
                  " examples, fewer than the ", opts_.folds, " cross-validation folds; lower --folds or give --C");
      std::shuffle(v.begin(), v.end(), rng);
      for (size_t j = 0; j < v.size(); ++j) fold[static_cast<size_t>(v[j])] = static_cast<int64_t>(j % opts_.folds);
    }
    auto fold_t = torch::tensor(fold, torch::kLong);
    double best = -1;
    for (double C : opts_.C_grid) {
      double acc = 0;
      for (int f = 0; f < opts_.folds; ++f) {
        auto tr = (fold_t != f).nonzero().squeeze(1), va = (fold_t == f).nonzero().squeeze(1);
        auto [W, b] = fit_once(Xs.index_select(0, tr), y.index_select(0, tr), k, C);
        auto pred = (torch::matmul(Xs.index_select(0, va), W.t()) + b).argmax(1);
        acc += (pred == y.index_select(0, va)).to(at::kDouble).mean().item<double>();
      }
      acc /= opts_.folds;
      cv_.emplace_back(C, acc);
      if (acc > best + 1e-12) {
        best = acc;
        C_ = C;
      }
    }
  }
  std::tie(W_, b_) = fit_once(Xs, y, k, C_);
}

at::Tensor LinearClassifier::decision_function(const at::Tensor& X) const {
  GRAFT_CHECK(W_.defined(), "the classifier is not fitted");
  GRAFT_CHECK(X.dim() == 2 && X.size(1) == W_.size(1), "features of shape ", X.sizes(), " for a classifier of ",
              W_.size(1), " features");
  auto x = X.to(at::kFloat).cpu();
  GRAFT_CHECK(at::isfinite(x).all().item<bool>(), "features contain NaN or infinite values");
  return torch::matmul((x - mean_) / std_, W_.t()) + b_;
}

at::Tensor LinearClassifier::predict(const at::Tensor& X) const { return decision_function(X).argmax(1); }

std::pair<nlohmann::json, std::vector<std::pair<std::string, at::Tensor>>> LinearClassifier::to_parts(
    const nlohmann::json& extra) const {
  GRAFT_CHECK(W_.defined(), "cannot save a classifier that is not fitted");
  nlohmann::json meta = {{"format", "graft-linear"}, {"version", 1},          {"loss", opts_.loss},
                         {"C", C_},                 {"standardize", opts_.standardize},
                         {"balanced", opts_.balanced}, {"extra", extra}};
  nlohmann::json cv = nlohmann::json::array();
  for (auto& [c, acc] : cv_) cv.push_back({{"C", c}, {"cv_accuracy", acc}});
  meta["cv"] = cv;
  return {meta, {{"W", W_}, {"b", b_}, {"mean", mean_}, {"std", std_}}};
}

LinearClassifier LinearClassifier::from_parts(const nlohmann::json& meta,
                                              const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                              const std::string& origin) {
  GRAFT_CHECK(meta.value("format", "") == "graft-linear", origin, " is not a graft linear classifier");
  LinearOptions o;
  o.loss = meta.value("loss", "squared_hinge");
  o.standardize = meta.value("standardize", true);
  o.balanced = meta.value("balanced", false);
  LinearClassifier c(o);
  c.C_ = meta.value("C", 0.0);
  for (const auto& e : meta.value("cv", nlohmann::json::array())) c.cv_.emplace_back(e["C"], e["cv_accuracy"]);
  auto get = [&](const char* name) {
    for (const auto& [n, t] : tensors)
      if (n == name) return t;
    GRAFT_FAIL(origin, ": linear classifier lacks '", name, "'; the file is damaged");
  };
  c.W_ = get("W");
  c.b_ = get("b");
  c.mean_ = get("mean");
  c.std_ = get("std");
  GRAFT_CHECK(c.W_.dim() == 2 && c.b_.dim() == 1 && c.b_.size(0) == c.W_.size(0) && c.mean_.numel() == c.W_.size(1) &&
                  c.std_.numel() == c.W_.size(1),
              origin, ": linear classifier parts have inconsistent shapes; the file is damaged");
  return c;
}

void LinearClassifier::save(const std::string& path, const nlohmann::json& extra) const {
  auto [meta, tensors] = to_parts(extra);
  torch::serialize::OutputArchive a;
  a.write("meta", c10::IValue(meta.dump()));
  for (const auto& [n, t] : tensors) a.write(n, t);
  io::save_archive_atomically(path, a);
}

LinearClassifier LinearClassifier::load(const std::string& path, nlohmann::json* extra) {
  torch::serialize::InputArchive a;
  io::load_archive_verified(path, a, "linear classifier");
  c10::IValue v;
  GRAFT_CHECK(a.try_read("meta", v) && v.isString(), path, " is not a graft linear classifier");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(v.toStringRef());
  } catch (const std::exception&) {
    GRAFT_FAIL(path, ": corrupt classifier metadata");
  }
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const char* n : {"W", "b", "mean", "std"}) {
    at::Tensor t;
    if (a.try_read(n, t)) tensors.emplace_back(n, t);
  }
  auto c = from_parts(meta, tensors, path);
  if (extra) *extra = meta.value("extra", nlohmann::json::object());
  return c;
}

double average_precision(const at::Tensor& scores, const at::Tensor& targets) {
  GRAFT_CHECK(scores.numel() == targets.numel(), "scores and targets differ in length");
  auto order = scores.to(at::kDouble).argsort(0, /*descending=*/true);
  auto t = targets.to(at::kDouble).index_select(0, order);
  double npos = t.sum().item<double>();
  if (npos == 0) return std::nan("");
  auto tp = t.cumsum(0);
  auto rank = torch::arange(1, t.numel() + 1, torch::kDouble);
  auto precision = (tp / rank).contiguous();
  auto recall = (tp / npos).contiguous();
  // make precision monotone from the right, then sum precision * recall steps
  auto p = precision.data_ptr<double>();
  for (int64_t i = precision.numel() - 2; i >= 0; --i) p[i] = std::max(p[i], p[i + 1]);
  auto r = recall.data_ptr<double>();
  double ap = 0, prev = 0;
  for (int64_t i = 0; i < recall.numel(); ++i) {
    ap += (r[i] - prev) * p[i];
    prev = r[i];
  }
  return ap;
}

double mean_average_precision(const at::Tensor& scores, const at::Tensor& targets) {
  GRAFT_CHECK(scores.dim() == 2 && scores.sizes() == targets.sizes(), "scores ", scores.sizes(), " and targets ",
              targets.sizes(), " must both be (N, K)");
  double sum = 0;
  int n = 0;
  for (int64_t c = 0; c < scores.size(1); ++c) {
    double ap = average_precision(scores.select(1, c), targets.select(1, c));
    if (!std::isnan(ap)) {
      sum += ap;
      ++n;
    }
  }
  GRAFT_CHECK(n > 0, "no class has a positive target; mAP is undefined");
  return sum / n;
}

}  // namespace graft::classify
