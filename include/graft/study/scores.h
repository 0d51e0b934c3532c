#pragma once
/// Transferability scores computed from one forward pass over a labelled target, without
/// training: they rank candidate models or layers before any fine-tuning is paid for.
#include <ATen/core/Tensor.h>

#include <vector>

namespace graft::study {

/// LogME (You et al., ICML 2021): the log marginal likelihood (evidence) of the target
/// labels under Bayesian linear regression on the features, y ~ N(F w, 1/beta),
/// w ~ N(0, 1/alpha), with alpha and beta set by MacKay's fixed-point iteration, divided
/// by the number of examples and averaged over the one-hot columns of the labels. Higher
/// is better; values are comparable across feature sets of one target.
struct LogMEResult {
  double score = 0;                  ///< mean over classes of evidence / N
  std::vector<double> alpha, beta;   ///< the fixed point reached, one per class
  std::vector<double> evidence;      ///< evidence / N per class
  int64_t iterations = 0;            ///< most iterations any class needed
};
/// features: (N, D) float, finite; labels: (N) int64 in [0, K) with K >= 2 present classes.
/// Throws graft::Error on shape mismatches, non-finite features or fewer than 2 examples.
LogMEResult logme(const at::Tensor& features, const at::Tensor& labels);

/// The evidence / N of one-dimensional targets y (N) at given alpha and beta (the quantity
/// LogME maximises), exposed so that tests can compare it with a direct Gaussian density.
double logme_evidence(const at::Tensor& features, const at::Tensor& y, double alpha, double beta);

/// LEEP (Nguyen et al., ICML 2020): the average log-likelihood of the target labels under
/// the "empirical predictor" that maps the source model's class probabilities through the
/// empirical conditional P(target label | source label). source_probs: (N, Z) rows on the
/// simplex; labels: (N) int64 in [0, K). At most 0; higher is better.
double leep(const at::Tensor& source_probs, const at::Tensor& labels);

/// Spearman rank correlation of two equally long lists (ties get their mean rank).
/// NaN when either list is constant; throws graft::Error for fewer than 2 pairs.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace graft::study
