#pragma once
/// Supervised training of a classifier (the source model of transfer learning):
/// one loop with progress, JSON-lines metrics, atomic checkpoints and exact resume.
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "graft/analysis/metrics.h"
#include "graft/data/dataset.h"
#include "graft/data/transforms.h"
#include "graft/io/checkpoint.h"
#include "graft/models/backbone.h"

namespace graft::train {

/// Everything a training run is configured by. Defaults suit the small digit
/// networks; validate() rejects absurd values with a message naming the option.
struct TrainConfig {
  int64_t epochs = 10;
  int64_t batch_size = 64;
  std::string optimizer = "sgd";  ///< sgd | adam | adamw
  double lr = 0.01;
  double momentum = 0.9;          ///< SGD momentum
  bool nesterov = false;
  double weight_decay = 0.0;
  std::string schedule = "cosine";  ///< constant | step | cosine | inv (DANN: lr0/(1+10p)^0.75)
  int64_t step_epochs = 0;          ///< step schedule: decay every this many epochs (0: epochs/3)
  double gamma = 0.1;               ///< step schedule: decay factor
  double warmup_epochs = 0;         ///< linear warm-up length, in epochs
  double label_smoothing = 0;
  uint64_t seed = 0;
  std::string device = "cpu";
  int workers = 2;
  std::string augment;            ///< random transforms applied before the model's preprocessing
  std::string out_dir;            ///< where checkpoints, metrics and results go (required)
  bool resume = false;            ///< continue from out_dir/checkpoint.ckpt when it exists
  int64_t checkpoint_every = 0;   ///< also checkpoint every N steps (0: once per epoch)
  double log_every_s = 5.0;       ///< seconds between progress lines
  bool quiet = false;

  // Fine-tuning (graft finetune). The defaults leave plain training unchanged.
  /// One learning-rate multiplier per model layer (empty: all 1). 0 freezes a layer for
  /// real: requires_grad off, left out of the optimizer, BatchNorm statistics kept,
  /// and no backward pass through a frozen prefix.
  std::vector<double> layer_lr_mult;
  /// Gradual unfreezing: start with the top trainable layer and unfreeze the next lower
  /// one every this many epochs (0: all trainable layers from the start).
  int64_t unfreeze_every = 0;
  bool adapt_frozen_bn = false;   ///< frozen layers' BatchNorm statistics follow the target data
  double l2sp_alpha = 0;          ///< L2-SP (Li et al. 2018): alpha/2 |w - w_pretrained|^2 on pretrained layers
  double l2sp_beta = 0;           ///< L2-SP: beta/2 |w|^2 on the new layers
  int64_t pretrained_layers = 0;  ///< layers [0, n) came pretrained (the L2-SP reference)
  /// Early stopping: stop after this many epochs without a lower validation loss and
  /// restore the best weights (-1: off; needs a validation set).
  int64_t patience = -1;
  /// Frozen-prefix activations computed once: auto (when the prefix is fixed and the
  /// training data are not augmented; in memory up to cache_memory_mb, else on disk),
  /// memory, disk or off.
  std::string cache = "auto";
  int64_t cache_memory_mb = 2048;

  /// Throws graft::Error naming the first bad option.
  void validate() const;
  nlohmann::json to_json() const;
};

/// Learning-rate factor at training progress p in [0,1] (pure function).
/// epoch_f is the fractional epoch, used by the step schedule and warm-up.
double lr_factor(const TrainConfig& cfg, double p, double epoch_f);

/// One epoch's record, also written as a JSON line to out_dir/metrics.jsonl.
struct EpochRecord {
  int64_t epoch = 0;
  double train_loss = 0, train_acc = 0, lr = 0, seconds = 0, images_per_s = 0;
  double val_loss = -1, val_acc = -1;  ///< -1 when there is no validation set
  double extra_loss = -1;              ///< mean of the extra loss term (-1 when there is none)
};

/// A term added to every training step's loss by trainers that compose more than the
/// labelled cross-entropy (e.g. the unlabelled part of semi-supervised training). It is
/// called after the labelled forward pass with the model (in training mode), the global
/// step (counted from the start of the run, also after a resume) and the training
/// progress p in [0, 1], and returns a scalar with its graph, or an undefined tensor when
/// it adds nothing at this step. Implementations must derive any data position from
/// global_step so that a resumed run continues exactly.
using ExtraLoss = std::function<at::Tensor(models::Backbone& model, int64_t global_step, double p)>;

/// What fit() returns.
struct TrainResult {
  std::vector<EpochRecord> history;
  int64_t best_epoch = 0;        ///< with early stopping: the epoch whose weights were kept
  bool stopped_early = false;
  std::string cache;             ///< "", "memory" or "disk": how the frozen prefix was cached
  int64_t optimized_params = 0;  ///< parameter elements the optimizer updates (frozen ones are left out)
  bool has_test = false;
  analysis::ClassificationReport test;
  std::string model_path;        ///< final graft checkpoint (model only)
  std::string torchscript_path;  ///< final TorchScript export, for TorchScript models
};

/// The pipeline that turns examples of a dataset with per-example shape data_shape
/// into inputs for a model described by meta: channel conversion and resize when the
/// shapes differ, then meta.preprocess.
data::Pipeline input_pipeline(const io::ModelMeta& meta, const std::vector<int64_t>& data_shape);

/// Trains model on train, checking val after each epoch and test at the end.
class Trainer {
 public:
  /// Requires: cfg.validate() passes; meta describes model.
  Trainer(models::BackbonePtr model, io::ModelMeta meta, TrainConfig cfg);
  /// Runs (or resumes) training. Throws graft::Error on a NaN or infinite loss,
  /// keeping the last good checkpoint and naming it.
  TrainResult fit(const data::DatasetPtr& train, const data::DatasetPtr& val, const data::DatasetPtr& test);
  /// Adds `loss` to every step's objective; `name` labels it in progress lines. Turns the
  /// frozen-prefix cache off (the extra term runs the whole model).
  void set_extra_loss(ExtraLoss loss, std::string name);
  const models::BackbonePtr& model() const { return model_; }

 private:
  models::BackbonePtr model_;
  io::ModelMeta meta_;
  TrainConfig cfg_;
  ExtraLoss extra_;
  std::string extra_name_;
};

}  // namespace graft::train
