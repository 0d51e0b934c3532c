#pragma once
/// Semi-supervised training: a few labelled examples and many unlabelled ones, in the
/// shared trainer loop (progress, checkpoints, resume, early stopping) with one more
/// loss term on the unlabelled batches.
///   fixmatch      (Sohn et al. 2020) pseudo-labels from a weakly augmented view, kept
///                 above a confidence threshold, train the prediction on a strongly
///                 augmented view of the same images.
///   pseudo-label  the same with one weak view for both (Lee 2013, with a threshold).
///   supervised    the labelled term alone, same steps and augmentation: the baseline.
#include <nlohmann/json.hpp>

#include <string>

#include "graft/data/dataset.h"
#include "graft/io/checkpoint.h"
#include "graft/models/backbone.h"
#include "graft/train/trainer.h"

namespace graft::selfsup {

struct SemisupOptions {
  std::string method = "fixmatch";  ///< fixmatch | pseudo-label | supervised
  double threshold = 0.95;          ///< pseudo-label confidence, in (0, 1]
  int64_t mu = 7;                   ///< unlabelled batch = mu x labelled batch
  double weight = 1.0;              ///< weight of the unlabelled term (lambda_u)
  std::string weak;                 ///< weak augmentation spec (empty: weak_augment(shape))
  std::string strong;               ///< strong augmentation spec (empty: strong_augment(shape))
  /// Throws graft::Error naming the bad option.
  void validate() const;
  nlohmann::json to_json() const;
};

/// Defaults for images (C,H,W): weak = flip and translation by 1/8 of the side; strong =
/// weak plus rotation, zoom, brightness/contrast and a cutout of half the side.
std::string weak_augment(const std::vector<int64_t>& shape);
std::string strong_augment(const std::vector<int64_t>& shape);

/// What the unlabelled term did over the run.
struct SemisupStats {
  int64_t unlabelled_seen = 0;  ///< unlabelled examples drawn
  int64_t confident = 0;        ///< of those, above the threshold (their pseudo-label was used)
  int64_t correct = 0;          ///< of the confident ones, pseudo-label equal to the hidden true label (-1: unknown)
};

/// Trains `model` on `labelled` plus `unlabelled` (its labels, if any, are never used for
/// training; when present they only measure pseudo-label accuracy). An epoch is one pass
/// over the unlabelled set: the labelled set is repeated to give as many steps.
/// cfg.augment, when empty, becomes the weak augmentation. Throws graft::Error for an empty
/// unlabelled set, a labelled set with unlabelled examples, or bad options.
train::TrainResult train_semisup(models::BackbonePtr model, const io::ModelMeta& meta, train::TrainConfig cfg,
                                 const SemisupOptions& opts, const data::DatasetPtr& labelled,
                                 const data::DatasetPtr& unlabelled, const data::DatasetPtr& val,
                                 const data::DatasetPtr& test, SemisupStats* stats = nullptr);

}  // namespace graft::selfsup
