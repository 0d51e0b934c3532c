#pragma once
/// Classification metrics and evaluation of a model on a dataset.
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "graft/core/precision.h"
#include "graft/data/dataset.h"
#include "graft/data/transforms.h"
#include "graft/models/backbone.h"

namespace graft::analysis {

/// Accuracy, per-class accuracy and the confusion matrix.
struct ClassificationReport {
  int64_t n = 0;
  double loss = 0;       ///< mean cross-entropy (NaN when not computed)
  double accuracy = 0;   ///< fraction in [0,1]
  std::vector<double> per_class;    ///< recall of each true class (NaN for absent classes)
  std::vector<std::vector<int64_t>> confusion;  ///< [true][predicted]
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;
  /// A human-readable table: accuracy, per-class accuracy and the confusion matrix.
  std::string to_table(const std::vector<std::string>& class_names) const;
};

/// Builds the report from predicted and true labels (both (N) int64) for k classes.
ClassificationReport classification_report(const at::Tensor& predicted, const at::Tensor& truth, int64_t k);

/// Options for evaluate().
struct EvalOptions {
  /// 0: from the data's example size (graft::default_batch_size for inference from 256: 256
  /// for digits, 8 for 224x224 photos).
  int64_t batch_size = 0;
  /// -1: from the cores (graft::default_workers).
  int workers = -1;
  Precision precision = Precision::kFp32;  ///< of the forward passes (autocast)
  EvalOptions& batch_size_(int64_t v) { batch_size = v; return *this; }
  EvalOptions& precision_(Precision v) { precision = v; return *this; }
  EvalOptions& workers_(int v) { workers = v; return *this; }
};

/// Runs the model (in eval mode, without gradients) over a labelled dataset.
/// pipeline maps dataset examples to model inputs. Throws graft::Error when the
/// dataset is unlabelled or its labels exceed the model's classes.
ClassificationReport evaluate(models::Backbone& model, const data::DatasetPtr& dataset, const data::Pipeline& pipeline,
                              int64_t num_classes, EvalOptions opts = {});

}  // namespace graft::analysis
