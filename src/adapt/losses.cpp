#include "graft/adapt/losses.h"

#include <torch/torch.h>

#include <cmath>

#include "graft/classify/linear.h"
#include "graft/core/check.h"

namespace graft::adapt {
namespace {

struct GradReverse : torch::autograd::Function<GradReverse> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x, double lambda) {
    ctx->saved_data["lambda"] = lambda;
    return x.view_as(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list g) {
    double lambda = ctx->saved_data["lambda"].toDouble();
    return {g[0].neg() * lambda, at::Tensor()};
  }
};

void check_pair(const at::Tensor& s, const at::Tensor& t, const char* what) {
  GRAFT_CHECK(s.dim() == 2 && t.dim() == 2 && s.size(1) == t.size(1), what, ": source and target features must be ",
              "(N, F) with the same F; got ", s.sizes(), " and ", t.sizes());
  GRAFT_CHECK(s.size(0) >= 2 && t.size(0) >= 2, what, " needs at least 2 examples from each domain");
}

}  // namespace

at::Tensor grad_reverse(const at::Tensor& x, double lambda) {
  GRAFT_CHECK(std::isfinite(lambda) && lambda >= 0, "the gradient reversal factor must be finite and >= 0, got ",
              lambda);
  return GradReverse::apply(x, lambda);
}

double dann_lambda(double p, double gamma) {
  p = std::clamp(p, 0.0, 1.0);
  return 2.0 / (1.0 + std::exp(-gamma * p)) - 1.0;
}

double dann_lr(double p, double lr0, double alpha, double beta) {
  p = std::clamp(p, 0.0, 1.0);
  return lr0 / std::pow(1.0 + alpha * p, beta);
}

DiscriminatorImpl::DiscriminatorImpl(int64_t in, int64_t hidden, int depth, double dropout) {
  GRAFT_CHECK(in >= 1 && hidden >= 1 && depth >= 1, "bad discriminator size");
  int64_t d = in;
  for (int i = 0; i < depth; ++i) {
    net_->push_back(torch::nn::Linear(d, hidden));
    net_->push_back(torch::nn::ReLU());
    if (dropout > 0) net_->push_back(torch::nn::Dropout(dropout));
    d = hidden;
  }
  net_->push_back(torch::nn::Linear(d, 1));
  register_module("net", net_);
}

at::Tensor DiscriminatorImpl::forward(const at::Tensor& f) { return net_->forward(f).squeeze(1); }

AdversarialLoss domain_adversarial_loss(Discriminator& d, const at::Tensor& f_source, const at::Tensor& f_target,
                                        double lambda) {
  check_pair(f_source, f_target, "the domain-adversarial loss");
  auto f = torch::cat({f_source, f_target}, 0);
  auto logits = d->forward(grad_reverse(f, lambda));
  auto labels = torch::cat({torch::zeros({f_source.size(0)}, logits.options()),
                            torch::ones({f_target.size(0)}, logits.options())});
  AdversarialLoss r;
  r.loss = torch::binary_cross_entropy_with_logits(logits, labels);
  r.domain_acc = ((logits > 0).to(labels.dtype()) == labels).to(at::kDouble).mean().detach();
  return r;
}

at::Tensor coral_loss(const at::Tensor& f_source, const at::Tensor& f_target) {
  check_pair(f_source, f_target, "CORAL");
  auto cov = [](const at::Tensor& f) {
    auto c = f - f.mean(0, true);
    return c.t().mm(c) / static_cast<double>(f.size(0) - 1);
  };
  const double F = static_cast<double>(f_source.size(1));
  return (cov(f_source) - cov(f_target)).pow(2).sum() / (4.0 * F * F);
}

at::Tensor mmd_loss(const at::Tensor& f_source, const at::Tensor& f_target, const std::vector<double>& mults) {
  check_pair(f_source, f_target, "MMD");
  GRAFT_CHECK(!mults.empty(), "MMD needs at least one kernel bandwidth");
  // Centred first: distances are unchanged, and |a|^2 + |b|^2 - 2ab loses no precision to a
  // large common offset (cdist's matrix-product path gave negative MMD for tight clouds).
  auto x = torch::cat({f_source, f_target}, 0);
  x = x - x.mean(0, true).detach();
  auto sq = x.pow(2).sum(1, true);
  auto d2 = (sq + sq.t() - 2 * torch::mm(x, x.t())).clamp_min(0);
  const int64_t n = x.size(0), ns = f_source.size(0);
  // The bandwidth follows the features (not detached): the loss is then exactly invariant to
  // the features' scale, so its gradient never pushes them to shrink. With a detached
  // bandwidth every step rewards shrinking the features towards one point, which on ReLU
  // features ends with every unit dead and one predicted class (docs/RESULTS.md, DAN).
  auto base = (d2.sum() / static_cast<double>(n * n - n)).clamp_min(1e-12);
  auto k = torch::zeros_like(d2);
  for (double m : mults) k = k + torch::exp(-d2 / (base * m));
  auto kss = k.narrow(0, 0, ns).narrow(1, 0, ns).mean();
  auto ktt = k.narrow(0, ns, n - ns).narrow(1, ns, n - ns).mean();
  auto kst = k.narrow(0, 0, ns).narrow(1, ns, n - ns).mean();
  return kss + ktt - 2 * kst;
}

at::Tensor entropy(const at::Tensor& logits) {
  auto logp = torch::log_softmax(logits, 1);
  return -(logp.exp() * logp).sum(1).mean();
}

double proxy_a_distance(const at::Tensor& f_source, const at::Tensor& f_target, uint64_t seed) {
  check_pair(f_source, f_target, "the proxy A-distance");
  torch::NoGradGuard ng;
  auto x = torch::cat({f_source, f_target}, 0).to(at::kFloat).cpu();
  auto y = torch::cat({torch::zeros({f_source.size(0)}, at::kLong), torch::ones({f_target.size(0)}, at::kLong)});
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto perm = torch::randperm(x.size(0), gen, torch::kLong);
  const int64_t half = x.size(0) / 2;
  auto tr = perm.narrow(0, 0, half), te = perm.narrow(0, half, x.size(0) - half);
  classify::LinearOptions o;
  o.loss = "hinge";
  o.C = 1.0;
  classify::LinearClassifier clf(o);
  clf.fit(x.index_select(0, tr), y.index_select(0, tr), 2);
  double err = (clf.predict(x.index_select(0, te)) != y.index_select(0, te)).to(at::kDouble).mean().item<double>();
  return std::max(0.0, 2.0 * (1.0 - 2.0 * err));
}

}  // namespace graft::adapt
