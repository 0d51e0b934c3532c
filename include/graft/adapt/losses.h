#pragma once
/// Building blocks of unsupervised domain adaptation, each usable and tested alone:
/// the gradient reversal layer and DANN's schedules (Ganin & Lempitsky 2015), a domain
/// discriminator and the domain-adversarial loss, and the discrepancy losses of the
/// peers (Deep CORAL, multi-kernel MMD as in DAN), entropy, and the proxy A-distance.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <vector>

namespace graft::adapt {

/// Identity in the forward pass; multiplies the gradient by -lambda in the backward pass.
/// Shape: any -> same.
at::Tensor grad_reverse(const at::Tensor& x, double lambda);

/// DANN's adaptation factor at training progress p in [0,1]: 2 / (1 + exp(-gamma p)) - 1.
double dann_lambda(double p, double gamma = 10.0);
/// DANN's annealed learning rate: lr0 / (1 + alpha p)^beta.
double dann_lr(double p, double lr0, double alpha = 10.0, double beta = 0.75);

/// A domain classifier on feature vectors: Linear(in, hidden)+ReLU+Dropout, repeated
/// `depth` times, then Linear(hidden, 1) giving the logit of "target".
class DiscriminatorImpl : public torch::nn::Module {
 public:
  DiscriminatorImpl(int64_t in, int64_t hidden = 1024, int depth = 2, double dropout = 0.5);
  /// Shape: (N, in) -> (N) logits.
  at::Tensor forward(const at::Tensor& f);

 private:
  torch::nn::Sequential net_;
};
TORCH_MODULE(Discriminator);

/// The domain-adversarial loss of a batch pair, as tensors and values.
struct AdversarialLoss {
  at::Tensor loss;         ///< binary cross-entropy of source (0) vs target (1), through the GRL
  /// The discriminator's accuracy on this batch pair: a float64 scalar on the features'
  /// device, left there so that the trainer reads it back with the step's losses.
  at::Tensor domain_acc;
};
/// Runs f_source and f_target through a gradient reversal layer (factor lambda) and the
/// discriminator. Shape: (Ns, F), (Nt, F).
AdversarialLoss domain_adversarial_loss(Discriminator& d, const at::Tensor& f_source, const at::Tensor& f_target,
                                        double lambda);

/// Deep CORAL (Sun & Saenko 2016): squared Frobenius distance between the feature
/// covariances, / (4 F^2). Shape: (Ns, F), (Nt, F) -> scalar.
at::Tensor coral_loss(const at::Tensor& f_source, const at::Tensor& f_target);

/// Multi-kernel MMD^2 (biased estimate) with Gaussian kernels whose bandwidths are the
/// mean pairwise squared distance times each of `bandwidth_mults` (DAN, Long et al. 2015).
/// The bandwidth is differentiated through, so the loss and its gradient are invariant to
/// the features' scale: <d loss / d f, f> = 0, no push to shrink the features to a point.
/// Shape: (Ns, F), (Nt, F) -> scalar.
at::Tensor mmd_loss(const at::Tensor& f_source, const at::Tensor& f_target,
                    const std::vector<double>& bandwidth_mults = {0.25, 0.5, 1.0, 2.0, 4.0});

/// Mean Shannon entropy of softmax(logits). Shape: (N, K) -> scalar.
at::Tensor entropy(const at::Tensor& logits);

/// Proxy A-distance (Ben-David et al.): 2 (1 - 2 err) of a linear SVM trained to tell
/// the two samples apart, err measured on a held-out half. In [0, 2] (clamped at 0).
double proxy_a_distance(const at::Tensor& f_source, const at::Tensor& f_target, uint64_t seed = 0);

}  // namespace graft::adapt
