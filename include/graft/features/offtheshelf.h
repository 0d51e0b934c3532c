#pragma once
/// The off-the-shelf recipe end to end: features of several layers on a target with
/// a label budget, a shallow classifier per layer, a table of which layer transfers
/// best; and the deployable result (backbone + feature recipe + classifier in one file).
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "graft/classify/linear.h"
#include "graft/data/dataset.h"
#include "graft/features/extract.h"
#include "graft/io/checkpoint.h"
#include "graft/models/backbone.h"

namespace graft::features {

/// A deployable off-the-shelf classifier. Only the layers up to the deepest tapped
/// one run at prediction time.
struct OffTheShelfModel {
  models::BackbonePtr backbone;
  io::ModelMeta backbone_meta;           ///< input shape, preprocessing and the source classes
  ExtractOptions recipe;                 ///< layers, pooling, normalisation, test-time views
  classify::LinearClassifier classifier;
  std::vector<std::string> class_names;  ///< the target classes the classifier predicts
  /// Made on first use of scores() (after the backbone is on its device).
  std::shared_ptr<FeatureExtractor> extractor;

  /// Shape: x (N,*input) after preprocessing -> (N,K) scores on the CPU: class
  /// probabilities for logistic regression, decision values for SVMs.
  at::Tensor scores(const at::Tensor& x);
  /// Saves atomically as a graft checkpoint with the recipe and classifier attached.
  void save(const std::string& path) const;
  /// True when a loaded checkpoint carries an off-the-shelf classifier.
  static bool holds(const io::Checkpoint& ck);
  /// Rebuilds the model from a loaded checkpoint; throws graft::Error when it is not one.
  static OffTheShelfModel from_checkpoint(const io::Checkpoint& ck);
};

/// Options of the off-the-shelf transfer study.
struct TransferOptions {
  ExtractOptions features;                       ///< layers to compare and how to read them
  classify::LinearOptions classifier;            ///< C by cross-validation unless given
  std::vector<int64_t> labels_per_class = {10};  ///< label budgets; 0 = every training label
  std::vector<uint64_t> seeds = {1};             ///< one label draw per seed
  /// Throws graft::Error naming the bad option.
  void validate() const;
};

/// One fitted (layer, budget, seed).
struct TransferRun {
  std::string layer;
  int64_t labels_per_class = 0, train_size = 0, dim = 0;
  uint64_t seed = 0;
  double C = 0, accuracy = 0, fit_seconds = 0;
  /// Mean k-fold cross-validated accuracy on the labelled training images at the chosen C
  /// (no test label involved): what chooses the layer.
  double cv_accuracy = 0;
};

/// Mean and spread of one (layer, budget) over seeds.
struct TransferCell {
  std::string layer;
  int64_t labels_per_class = 0;
  double mean = 0, std = 0;  ///< test accuracy in [0,1]; std is the sample std (0 for one seed)
  double cv_mean = 0;        ///< mean cross-validated training accuracy over seeds
  int64_t n = 0;
};

struct TransferResult {
  std::vector<TransferRun> runs;
  std::vector<TransferCell> cells;
  /// For each budget, the layer chosen by cross-validation: the highest mean CV accuracy
  /// on the labelled training images over seeds. Never chosen on test accuracy.
  std::vector<std::pair<int64_t, std::string>> best;
  /// The layer-by-budget table of test accuracy (mean ± std in %) with the mean CV
  /// accuracy beside it; the layer CV chose per budget is marked with '*'.
  std::string table() const;
  nlohmann::json to_json() const;
  std::string to_csv() const;
};

/// Extracts test features once and, for each budget and seed, draws the labelled
/// subset of `train`, extracts its features and fits one classifier per layer.
/// The pseudo-layer "input" (raw pixels, always flattened) gives the pixel baseline.
/// `progress` receives one line per fitted run. Every classifier is cross-validated on its
/// labelled training images (with a given C too: then the grid is that C alone). When
/// `deploy` is non-null it receives the classifier of the layer chosen by cross-validation
/// at the largest budget (first seed); test accuracy never enters that choice.
TransferResult run_offtheshelf(models::BackbonePtr model, const io::ModelMeta& meta, const data::DatasetPtr& train,
                               const data::DatasetPtr& test, const TransferOptions& opts,
                               const std::function<void(const std::string&)>& progress = {},
                               OffTheShelfModel* deploy = nullptr);

}  // namespace graft::features
