#include "graft/study/scores.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "graft/core/check.h"

namespace graft::study {
namespace {

constexpr double kLog2Pi = 1.8378770664093453;

/// The nonzero spectrum of F^T F and the squared projections of targets on its
/// eigenvectors (in the sample space), computed through whichever Gram matrix is smaller.
struct Spectrum {
  at::Tensor sigma;  ///< (r) eigenvalues > 0 of F^T F
  at::Tensor u;      ///< (N, r) orthonormal left singular vectors
  int64_t n = 0, d = 0;
};

Spectrum spectrum(const at::Tensor& features) {
  GRAFT_CHECK(features.dim() == 2, "transferability score: features must be (N, D), got ", features.sizes());
  GRAFT_CHECK(features.size(0) >= 2, "transferability score: needs at least 2 examples, got ", features.size(0));
  GRAFT_CHECK(features.size(1) >= 1, "transferability score: features have no dimensions");
  auto f = features.to(at::kDouble).cpu();
  GRAFT_CHECK(torch::isfinite(f).all().item<bool>(), "transferability score: features contain NaN or infinite values");
  Spectrum s;
  s.n = f.size(0), s.d = f.size(1);
  at::Tensor sigma, u;
  if (s.d <= s.n) {  // eigenvectors v of F^T F (D x D); u = F v / sqrt(sigma)
    auto [ev, v] = torch::linalg_eigh(f.t().mm(f));
    sigma = ev;
    auto keep = sigma > sigma.max().clamp_min(1e-300) * 1e-12;
    sigma = sigma.index({keep});
    u = f.mm(v.index({torch::indexing::Slice(), keep})) / sigma.sqrt();
  } else {  // eigenvectors of F F^T (N x N) are u directly
    auto [ev, uu] = torch::linalg_eigh(f.mm(f.t()));
    auto keep = ev > ev.max().clamp_min(1e-300) * 1e-12;
    sigma = ev.index({keep});
    u = uu.index({torch::indexing::Slice(), keep});
  }
  s.sigma = sigma, s.u = u;
  return s;
}

double evidence(const Spectrum& s, const at::Tensor& z2, double y2, double alpha, double beta) {
  auto denom = alpha + beta * s.sigma;
  const double m2 = (beta * beta * s.sigma * z2 / (denom * denom)).sum().item<double>();
  const double res2 = (alpha * alpha * z2 / (denom * denom)).sum().item<double>() + (y2 - z2.sum().item<double>());
  const int64_t r = s.sigma.size(0);
  const double e = 0.5 * s.d * std::log(alpha) + 0.5 * s.n * std::log(beta) - 0.5 * alpha * m2 -
                   0.5 * beta * std::max(res2, 0.0) - 0.5 * denom.log().sum().item<double>() -
                   0.5 * static_cast<double>(s.d - r) * std::log(alpha) - 0.5 * s.n * kLog2Pi;
  return e / static_cast<double>(s.n);
}

}  // namespace

double logme_evidence(const at::Tensor& features, const at::Tensor& y, double alpha, double beta) {
  GRAFT_CHECK(alpha > 0 && beta > 0, "logme_evidence: alpha and beta must be positive");
  auto s = spectrum(features);
  auto yd = y.to(at::kDouble).cpu().reshape({-1});
  GRAFT_CHECK(yd.size(0) == s.n, "logme_evidence: ", yd.size(0), " targets for ", s.n, " examples");
  auto z = s.u.t().mv(yd);
  return evidence(s, z * z, yd.dot(yd).item<double>(), alpha, beta);
}

LogMEResult logme(const at::Tensor& features, const at::Tensor& labels) {
  auto s = spectrum(features);
  GRAFT_CHECK(labels.dim() == 1 && labels.size(0) == s.n, "LogME: ", labels.sizes(), " labels for ", s.n, " examples");
  auto y = labels.to(at::kLong).cpu();
  GRAFT_CHECK(y.min().item<int64_t>() >= 0, "LogME: labels must be class indices >= 0 (labelled examples only)");
  const int64_t K = y.max().item<int64_t>() + 1;
  LogMEResult out;
  for (int64_t k = 0; k < K; ++k) {
    auto yk = (y == k).to(at::kDouble);
    if (yk.sum().item<double>() == 0) continue;  // a class absent from this sample adds nothing
    auto z = s.u.t().mv(yk);
    auto z2 = z * z;
    const double y2 = yk.sum().item<double>();
    double alpha = 1, beta = 1;
    int64_t it = 0;
    for (; it < 10000; ++it) {
      auto denom = alpha + beta * s.sigma;
      const double gamma = (beta * s.sigma / denom).sum().item<double>();
      const double m2 = (beta * beta * s.sigma * z2 / (denom * denom)).sum().item<double>();
      const double res2 =
          std::max((alpha * alpha * z2 / (denom * denom)).sum().item<double>() + (y2 - z2.sum().item<double>()), 1e-300);
      // alpha -> infinity when the targets have no component the features can explain.
      const double a2 = std::clamp(gamma / std::max(m2, 1e-300), 1e-12, 1e12);
      const double b2 = std::clamp((static_cast<double>(s.n) - gamma) / res2, 1e-12, 1e12);
      const bool done = std::abs(a2 - alpha) <= 1e-8 * alpha && std::abs(b2 - beta) <= 1e-8 * beta;
      alpha = a2, beta = b2;
      if (done) break;
    }
    out.alpha.push_back(alpha);
    out.beta.push_back(beta);
    out.evidence.push_back(evidence(s, z2, y2, alpha, beta));
    out.iterations = std::max(out.iterations, it + 1);
  }
  GRAFT_CHECK(out.evidence.size() >= 2, "LogME: needs examples of at least 2 classes, got ", out.evidence.size());
  out.score = std::accumulate(out.evidence.begin(), out.evidence.end(), 0.0) / static_cast<double>(out.evidence.size());
  return out;
}

double leep(const at::Tensor& source_probs, const at::Tensor& labels) {
  GRAFT_CHECK(source_probs.dim() == 2, "LEEP: source probabilities must be (N, Z), got ", source_probs.sizes());
  const int64_t n = source_probs.size(0);
  GRAFT_CHECK(n >= 1 && labels.dim() == 1 && labels.size(0) == n, "LEEP: ", labels.sizes(), " labels for ", n,
              " examples");
  auto p = source_probs.to(at::kDouble).cpu();
  GRAFT_CHECK(torch::isfinite(p).all().item<bool>() && p.min().item<double>() >= 0,
              "LEEP: source probabilities must be finite and non-negative (softmax outputs)");
  GRAFT_CHECK((p.sum(1) - 1).abs().max().item<double>() < 1e-3,
              "LEEP: each row of source probabilities must sum to 1 (apply softmax to the logits)");
  auto y = labels.to(at::kLong).cpu();
  GRAFT_CHECK(y.min().item<int64_t>() >= 0, "LEEP: labels must be class indices >= 0 (labelled examples only)");
  const int64_t K = y.max().item<int64_t>() + 1;
  auto onehot = torch::one_hot(y, K).to(at::kDouble);                   // (N, K)
  auto joint = onehot.t().mm(p) / static_cast<double>(n);               // (K, Z)
  auto cond = joint / joint.sum(0, true).clamp_min(1e-300);             // P(y | z)
  auto eep = (p * cond.index_select(0, y)).sum(1);                      // sum_z P(y_i|z) theta_iz
  return eep.clamp_min(1e-300).log().mean().item<double>();
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  GRAFT_CHECK(a.size() == b.size(), "spearman: lists of different lengths (", a.size(), ", ", b.size(), ")");
  GRAFT_CHECK(a.size() >= 2, "spearman: needs at least 2 pairs, got ", a.size());
  auto ranks = [](const std::vector<double>& v) {
    std::vector<size_t> idx(v.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](size_t i, size_t j) { return v[i] < v[j]; });
    std::vector<double> r(v.size());
    for (size_t i = 0; i < idx.size();) {
      size_t j = i;
      while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
      const double mean_rank = 0.5 * static_cast<double>(i + j) + 1;
      for (size_t t = i; t <= j; ++t) r[idx[t]] = mean_rank;
      i = j + 1;
    }
    return r;
  };
  auto ra = ranks(a), rb = ranks(b);
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n, mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  if (saa == 0 || sbb == 0) return std::numeric_limits<double>::quiet_NaN();
  return sab / std::sqrt(saa * sbb);
}

}  // namespace graft::study
