#pragma once
/// Shallow classifiers on features: linear SVMs (one-vs-rest, L2-regularised, hinge or
/// squared hinge; solved by LIBLINEAR) and multinomial logistic regression (softmax
/// cross-entropy with L2, solved by L-BFGS in libtorch, since LIBLINEAR's logistic
/// regression is one-vs-rest only). Regularisation C is chosen by stratified k-fold
/// cross-validation on the training features alone.
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <string>
#include <utility>
#include <vector>

namespace graft::classify {

struct LinearOptions {
  std::string loss = "squared_hinge";  ///< squared_hinge | hinge (SVMs) | logistic (multinomial)
  double C = 0;                        ///< > 0: use it; 0: choose from C_grid by cross-validation
  std::vector<double> C_grid = {1e-3, 1e-2, 1e-1, 1, 10, 100};
  int folds = 5;
  bool standardize = true;  ///< z-score each feature with the training mean and std
  bool balanced = false;    ///< weight classes by N / (K * count)
  double tol = 0.01;        ///< solver stopping tolerance
  uint64_t seed = 0;        ///< fold assignment
  /// Throws graft::Error naming the bad option.
  void validate() const;
};

/// A fitted linear classifier: scores = standardize(X) W^T + b.
class LinearClassifier {
 public:
  explicit LinearClassifier(LinearOptions opts = {});
  /// Shape: X (N,F) float32, y (N) integer labels in [0, K). num_classes 0: max(y)+1.
  /// Throws graft::Error for mismatched lengths, NaN/inf features, a single class,
  /// or a cross-validation with a class too small for the folds.
  void fit(const at::Tensor& X, const at::Tensor& y, int64_t num_classes = 0);
  /// Shape: (N,F) -> (N,K) decision values (logits for logistic).
  at::Tensor decision_function(const at::Tensor& X) const;
  /// Shape: (N,F) -> (N) predicted labels.
  at::Tensor predict(const at::Tensor& X) const;
  double C() const { return C_; }
  /// (C, mean cross-validated accuracy) for each C tried; empty when C was given.
  const std::vector<std::pair<double, double>>& cv_scores() const { return cv_; }
  int64_t num_classes() const { return W_.defined() ? W_.size(0) : 0; }
  int64_t num_features() const { return W_.defined() ? W_.size(1) : 0; }
  const LinearOptions& options() const { return opts_; }
  /// Saves atomically (a torch archive with weights, standardisation and JSON metadata).
  void save(const std::string& path, const nlohmann::json& extra = {}) const;
  /// Loads a saved classifier; extra receives the metadata saved with it.
  static LinearClassifier load(const std::string& path, nlohmann::json* extra = nullptr);
  /// The fitted state as JSON plus named tensors (to embed it in another file), and back.
  std::pair<nlohmann::json, std::vector<std::pair<std::string, at::Tensor>>> to_parts(
      const nlohmann::json& extra = {}) const;
  /// Throws graft::Error when a part is missing or shapes disagree; `origin` names the file in messages.
  static LinearClassifier from_parts(const nlohmann::json& meta,
                                     const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                     const std::string& origin);

 private:
  std::pair<at::Tensor, at::Tensor> fit_once(const at::Tensor& X, const at::Tensor& y, int64_t k, double C) const;
  LinearOptions opts_;
  at::Tensor W_, b_, mean_, std_;
  double C_ = 0;
  std::vector<std::pair<double, double>> cv_;
};

/// VOC-style average precision of one class: area under the precision-recall curve
/// with precision made monotone (VOC 2010 onwards). Shape: scores (N), targets (N) 0/1.
double average_precision(const at::Tensor& scores, const at::Tensor& targets);
/// Mean average precision over classes. Shape: scores (N,K), targets (N,K) 0/1.
/// Classes without positives are left out of the mean.
double mean_average_precision(const at::Tensor& scores, const at::Tensor& targets);

}  // namespace graft::classify
