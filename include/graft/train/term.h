#pragma once
/// Objective terms: the pieces a training run adds to (or puts in place of) the
/// labelled cross-entropy. Every trainer in graft is the one Trainer plus terms:
/// fine-tuning adds L2-SP, semi-supervised training an unlabelled consistency term,
/// domain adaptation a method's term (DANN's adversarial loss, CORAL, MCC...).
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graft/data/dataset.h"
#include "graft/data/transforms.h"
#include "graft/models/backbone.h"

namespace graft::train {

/// Named tensors a term keeps across a checkpoint (weights of its own modules, pseudo-labels).
using TensorMap = std::map<std::string, at::Tensor>;

/// What a term is told once, before the first step.
struct TermSetup {
  models::Backbone* model = nullptr;
  c10::Device device = c10::kCPU;
  int64_t num_classes = 0;
  int64_t tap = -1;           ///< layer whose output the terms see as features (-1: none)
  int64_t feature_width = 0;  ///< flattened width of the tap's output (0 without a tap)
  int64_t total_steps = 0;
  uint64_t seed = 0;
  int workers = 2;
  /// The unlabelled set paired with each step (null when there is none) and its input pipeline.
  data::DatasetPtr paired;
  data::Pipeline paired_pipeline;
};

/// One training step as the terms see it. Rows of `features` and `logits` are the
/// labelled batch first (n_labelled rows), then the paired batch when the trainer
/// forwarded both together (see Term::forwards_paired).
struct StepContext {
  models::Backbone* model = nullptr;
  int64_t global_step = 0;   ///< steps done before this one, counted over the whole run
  double progress = 0;       ///< global_step / total steps, in [0, 1)
  int64_t epoch = 0;         ///< 0-based
  at::Tensor x, y;           ///< labelled inputs and labels on the device (undefined when source-free)
  at::Tensor xt;             ///< paired unlabelled inputs on the device (undefined when none)
  at::Tensor xt_index;       ///< dataset indices of the paired rows (CPU, int64)
  at::Tensor features;       ///< flattened tap output of the forwarded rows (undefined without a tap)
  at::Tensor logits;         ///< model output of the forwarded rows
  int64_t n_labelled = 0;    ///< leading rows of features/logits that belong to x
  /// Convenience views of the forwarded rows.
  at::Tensor labelled_features() const { return features.narrow(0, 0, n_labelled); }
  at::Tensor paired_features() const { return features.narrow(0, n_labelled, features.size(0) - n_labelled); }
  at::Tensor labelled_logits() const { return logits.narrow(0, 0, n_labelled); }
  at::Tensor paired_logits() const { return logits.narrow(0, n_labelled, logits.size(0) - n_labelled); }
};

/// A term's contribution to one step.
struct TermOutput {
  at::Tensor loss;                         ///< scalar with its graph; undefined adds nothing
  std::map<std::string, double> metrics;   ///< averaged per epoch into the metrics row (e.g. lambda)
  /// Metrics as scalar tensors still on the device (e.g. domain_acc), averaged like `metrics`:
  /// the trainer reads them back with the step's losses, in one transfer per step.
  std::map<std::string, at::Tensor> device_metrics;
};

/// An objective term. Implementations must derive any data position from the global
/// step (never from a private counter) so that a resumed run continues exactly.
class Term {
 public:
  virtual ~Term() = default;
  /// Short name used in progress lines and metrics ("dann", "l2sp", "unlabelled").
  virtual std::string name() const = 0;
  /// Called once before training starts (also after a resume, before the state is loaded).
  virtual void setup(const TermSetup& /*s*/) {}
  /// Called at the start of each epoch that starts at its first step (not for an epoch
  /// resumed in the middle: state needed across it belongs in save()).
  virtual void on_epoch_begin(models::Backbone& /*model*/, int64_t /*epoch*/) {}
  /// Whether the trainer forwards the paired batch together with the labelled one
  /// (adaptation methods that need target features or logits).
  virtual bool forwards_paired() const { return false; }
  /// Whether the term runs (or needs gradients through) the whole model; false lets the
  /// trainer keep a frozen prefix's activations in a cache (e.g. a weight penalty).
  virtual bool needs_full_model() const { return true; }
  /// The term's loss for this step.
  virtual TermOutput loss(StepContext& ctx) = 0;
  /// Parameters of the term's own modules (discriminators, adversarial heads); they
  /// train at the head's learning rate.
  virtual std::vector<at::Tensor> parameters() { return {}; }
  /// Train/eval mode of the term's own modules.
  virtual void train(bool /*on*/) {}
  /// State kept in checkpoints: saved after every step that checkpoints, loaded on resume.
  virtual TensorMap save() const { return {}; }
  virtual void load(const TensorMap& /*state*/) {}
};

using TermPtr = std::shared_ptr<Term>;

}  // namespace graft::train
