#include "graft/adapt/objectives.h"

#include <torch/torch.h>

#include "graft/core/check.h"

namespace graft::adapt {

AdversarialLoss conditional_adversarial_loss(Discriminator& d, const at::Tensor& f, const at::Tensor& logits,
                                             int64_t n_source, double lambda) {
  GRAFT_CHECK(f.dim() == 2 && logits.dim() == 2 && f.size(0) == logits.size(0), "CDAN: features (N, F) and logits "
              "(N, K) must have the same rows");
  GRAFT_CHECK(n_source > 0 && n_source < f.size(0), "CDAN: need source and target rows");
  const int64_t n = f.size(0), nt = n - n_source;
  auto g = torch::softmax(logits, 1).detach();
  auto h = torch::bmm(g.unsqueeze(2), f.unsqueeze(1)).flatten(1);
  auto w = 1.0 + torch::exp(-(-(g * (g + 1e-12).log()).sum(1)));
  auto ws = w.narrow(0, 0, n_source), wt = w.narrow(0, n_source, nt);
  w = at::cat({ws / ws.mean(), wt / wt.mean()}).detach();
  auto out = d->forward(grad_reverse(h, lambda));
  auto labels = at::cat({torch::zeros({n_source}, out.options()), torch::ones({nt}, out.options())});
  AdversarialLoss r;
  r.loss = torch::binary_cross_entropy_with_logits(out, labels, w);
  r.domain_acc = ((out > 0).to(labels.dtype()) == labels).to(at::kDouble).mean().detach();
  return r;
}

at::Tensor minimum_class_confusion(const at::Tensor& logits, double temperature) {
  GRAFT_CHECK(logits.dim() == 2 && logits.size(0) >= 1, "MCC: logits must be (N >= 1, K)");
  GRAFT_CHECK(temperature > 0, "MCC: the temperature must be > 0");
  const int64_t n = logits.size(0), k = logits.size(1);
  auto y = torch::softmax(logits / temperature, 1);
  auto h = -(y * (y + 1e-5).log()).sum(1).detach();
  auto w = 1.0 + torch::exp(-h);
  w = (static_cast<double>(n) * w / w.sum()).unsqueeze(1);
  auto c = (y * w).t().mm(y);
  c = c / c.sum(1, true);
  return (c.sum() - c.trace()) / static_cast<double>(k);
}

torch::nn::Sequential make_adversarial_head(int64_t in, int64_t hidden, int64_t classes) {
  return torch::nn::Sequential(torch::nn::Linear(in, hidden), torch::nn::ReLU(), torch::nn::Dropout(0.5),
                               torch::nn::Linear(hidden, classes));
}

at::Tensor margin_disparity_discrepancy(const at::Tensor& logits_s, const at::Tensor& adv_s,
                                        const at::Tensor& logits_t, const at::Tensor& adv_t, double margin) {
  GRAFT_CHECK(margin > 0, "MDD: the margin must be > 0");
  auto ps = logits_s.argmax(1).detach(), pt = logits_t.argmax(1).detach();
  auto src = torch::nn::functional::cross_entropy(adv_s, ps);
  auto q = torch::softmax(adv_t, 1).gather(1, pt.unsqueeze(1)).squeeze(1);
  auto tgt = -(1.0 - q + 1e-6).clamp_max(1.0).log().mean();
  return margin * src + tgt;
}

at::Tensor information_maximisation_loss(const at::Tensor& logits) {
  auto p = torch::softmax(logits, 1);
  auto ent = -(p * (p + 1e-5).log()).sum(1).mean();
  auto mean = p.mean(0);
  auto div = -(mean * (mean + 1e-5).log()).sum();
  return ent - div;
}

PseudoLabels confident_pseudo_labels(const at::Tensor& logits, double threshold) {
  torch::NoGradGuard ng;
  auto prob = torch::softmax(logits, 1);
  auto top = prob.max(1);
  PseudoLabels r;
  r.confidence = std::get<0>(top);
  r.labels = std::get<1>(top);
  r.mask = r.confidence >= threshold;
  return r;
}

at::Tensor cluster_pseudo_labels(const at::Tensor& features, const at::Tensor& logits) {
  torch::NoGradGuard ng;
  GRAFT_CHECK(features.dim() == 2 && logits.dim() == 2 && features.size(0) == logits.size(0),
              "cluster_pseudo_labels: features (N, F) and logits (N, K) must have the same rows");
  auto f = features.to(at::kDouble);
  f = at::cat({f, torch::ones({f.size(0), 1}, f.options())}, 1);  // SHOT's bias coordinate
  f = f / f.norm(2, 1, true).clamp_min(1e-12);
  auto p = torch::softmax(logits.to(at::kDouble), 1);
  auto centroids = p.t().mm(f) / (p.sum(0).unsqueeze(1) + 1e-8);
  auto nearest = [&](const at::Tensor& c) {
    auto cn = c / c.norm(2, 1, true).clamp_min(1e-12);
    return f.mm(cn.t()).argmax(1);  // highest cosine = lowest cosine distance
  };
  auto labels = nearest(centroids);
  const int64_t k = logits.size(1);
  auto onehot = torch::one_hot(labels, k).to(at::kDouble);
  centroids = onehot.t().mm(f) / (onehot.sum(0).unsqueeze(1) + 1e-8);
  return nearest(centroids);
}

}  // namespace graft::adapt
