#pragma once
/// Losses of the adaptation methods that condition on class predictions: CDAN's
/// conditional adversarial loss, MCC, MDD, information maximisation (SHOT) and
/// confident pseudo-labels (self-training, semi-supervised training). Pure functions of
/// their inputs; the modules they use are passed in.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <ATen/core/Tensor.h>

#include "graft/adapt/losses.h"

namespace graft::adapt {

/// CDAN+E (Long et al. 2018): the discriminator sees the outer product of the class
/// probabilities g (detached) and the features f, through a gradient reversal layer
/// (factor lambda); each domain's examples are weighted by 1 + exp(-H(g)), normalised
/// to mean 1 within the domain. Rows [0, n_source) are the source.
/// Shape: f (N, F), logits (N, K); the discriminator takes F*K inputs.
AdversarialLoss conditional_adversarial_loss(Discriminator& d, const at::Tensor& f, const at::Tensor& logits,
                                             int64_t n_source, double lambda);

/// Minimum class confusion (Jin et al. 2020) of target logits at temperature T: the
/// off-diagonal mass of the entropy-weighted, row-normalised class-correlation matrix,
/// divided by K. Shape: (N, K) -> scalar.
at::Tensor minimum_class_confusion(const at::Tensor& logits, double temperature);

/// An adversarial classifier head for MDD: Linear(F, hidden)+ReLU+Dropout(0.5)+Linear(hidden, K).
torch::nn::Sequential make_adversarial_head(int64_t in, int64_t hidden, int64_t classes);

/// Margin disparity discrepancy (Zhang et al. 2019), classification form, to be
/// minimised: margin * CE(adv_s, argmax logits_s) - log(1 - softmax(adv_t)[argmax logits_t]).
/// adv_* are the adversarial head's outputs on (reversed) features. Shape: all (N, K).
at::Tensor margin_disparity_discrepancy(const at::Tensor& logits_s, const at::Tensor& adv_s,
                                        const at::Tensor& logits_t, const at::Tensor& adv_t, double margin);

/// Information maximisation loss (SHOT): mean prediction entropy minus the entropy of
/// the mean prediction (confident and diverse predictions make it small). Shape: (N, K).
at::Tensor information_maximisation_loss(const at::Tensor& logits);

/// Pseudo-labels of the rows whose highest class probability is at least threshold.
struct PseudoLabels {
  at::Tensor labels;      ///< argmax of every row (N)
  at::Tensor confidence;  ///< its probability (N)
  at::Tensor mask;        ///< bool (N): confidence >= threshold
};
/// Computed without gradients. Shape: logits (N, K).
PseudoLabels confident_pseudo_labels(const at::Tensor& logits, double threshold);

/// SHOT's self-supervised pseudo-labels: class centroids of L2-normalised features
/// weighted by the predictions, each example labelled by its nearest centroid (cosine),
/// then centroids and labels recomputed once from those labels.
/// Shape: features (N, F), logits (N, K) -> labels (N).
at::Tensor cluster_pseudo_labels(const at::Tensor& features, const at::Tensor& logits);

}  // namespace graft::adapt
