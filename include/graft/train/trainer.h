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
#include "graft/train/policy.h"
#include "graft/train/term.h"

namespace graft::train {

/// Everything a training run is configured by. Defaults suit the small digit
/// networks; validate() rejects absurd values with a message naming the option.
struct TrainConfig {
  int64_t epochs = 10;
  /// 0: from the model's input size (graft::default_batch_size from 64: 64 up to about
  /// 200x200 RGB, 32 for 224x224 photos, 16 for 299x299), resolved when the Trainer is made.
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
  int workers = 2;  ///< loader threads; -1: from the cores (graft::default_workers)
  /// Convolutional models in channels-last memory format: auto, on, off
  /// (models::use_channels_last; auto is on for convolutional models on the CPU).
  std::string channels_last = "auto";
  /// In-memory training data held on the device, batches gathered and augmented there:
  /// auto (on a GPU when the float32 copy takes at most 2 GiB), on, off. Image folders are
  /// decoded on the CPU; on a GPU their batches are built in pinned memory instead.
  std::string data_on_device = "auto";
  std::string augment;            ///< random transforms applied before the model's preprocessing
  std::string out_dir;            ///< where checkpoints, metrics and results go (required)
  bool resume = false;            ///< continue from out_dir/checkpoint.ckpt when it exists
  bool overwrite = false;         ///< replace another run's files in out_dir (else a fresh run there is refused)
  int64_t checkpoint_every = 0;   ///< also checkpoint every N steps (0: once per epoch)
  /// Data-parallel runs: at the end of each epoch, BatchNorm running statistics become their
  /// mean over the ranks (else every rank takes rank 0's, as DDP's broadcast_buffers does).
  bool sync_bn_stats = false;
  /// Forward passes in fp32, or with autocast to bf16 (CPU or GPU) or fp16 (GPU, with
  /// dynamic loss scaling); gradients, optimizer state and weights stay float32.
  std::string precision = "fp32";
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
  /// Drop the last incomplete batch of each epoch (adaptation pairs equal-sized batches).
  bool drop_last = false;
  /// Layer policy resolved against the model's layer names when layer_lr_mult is empty.
  LayerPolicy policy;

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
  double extra_loss = -1;              ///< mean of all terms' losses (-1 when there is no term)
  nlohmann::json extra = nlohmann::json::object();  ///< terms' metrics and the epoch observer's figures
};

/// A term given as a plain function of (model, global step, progress): the form the
/// first trainers used. Wrapped into a Term by Trainer::set_extra_loss.
using ExtraLoss = std::function<at::Tensor(models::Backbone& model, int64_t global_step, double p)>;

/// Looks at the model after every epoch (after validation, before the checkpoint):
/// returns figures for the epoch's metrics row (e.g. label-free target scores) and may
/// keep files of its own. Its state() is stored in checkpoints and restore()d on resume.
class EpochObserver {
 public:
  virtual ~EpochObserver() = default;
  /// epoch is 1-based. The model is in training mode on return.
  virtual nlohmann::json on_epoch_end(models::Backbone& model, int64_t epoch) = 0;
  virtual nlohmann::json state() const { return nullptr; }
  virtual void restore(const nlohmann::json& /*state*/) {}
};

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
/// into inputs for a model described by meta (see data::model_input_pipeline).
data::Pipeline input_pipeline(const io::ModelMeta& meta, const std::vector<int64_t>& data_shape);

/// Which layers train and how fast, by layer name: a learning-rate multiplier per
/// layer (0 = frozen), gradual unfreezing, and the frozen prefix that runs without
/// autograd. Built once per run; recorded by names in config.json.
struct LayerPlan {
  std::vector<std::string> names;
  std::vector<double> mult;  ///< per layer
  /// Trainable parameters per layer (after the parameter filter).
  std::vector<std::vector<std::pair<std::string, at::Tensor>>> params;
  /// Parameters a filter left out (they never train).
  std::vector<at::Tensor> filtered_out;
  int64_t unfreeze_every = 0;
  std::vector<size_t> top_down;  ///< layers that may train, top first (the order of gradual unfreezing)

  /// Requires: mult.size() == model.num_layers() (empty: all 1). keep(param name) false
  /// freezes a parameter alone (e.g. all but BatchNorm affine parameters for TENT).
  /// Throws graft::Error when nothing is left to train.
  static LayerPlan build(models::Backbone& model, std::vector<double> mult, int64_t unfreeze_every,
                         const std::function<bool(const std::string&)>& keep = {});
  bool trainable(size_t layer, int64_t epoch) const;
  /// Layers [0, P) hold only frozen parameters or none.
  size_t frozen_prefix(int64_t epoch) const;
  /// Sets requires_grad and the train/eval mode of every layer for this epoch.
  void apply(models::Backbone& model, int64_t epoch, bool adapt_frozen_bn) const;
  /// {"layers": {name: multiplier}, "frozen_prefix": name or ""}: the plan by names.
  nlohmann::json to_json() const;
};

/// Trains model on a labelled set (and/or a paired unlabelled set), checking val after
/// each epoch and test at the end; the one engine under train, finetune, adapt,
/// pretrain, semisup and the studies.
class Trainer {
 public:
  /// Requires: cfg.validate() passes; meta describes model.
  Trainer(models::BackbonePtr model, io::ModelMeta meta, TrainConfig cfg);
  ~Trainer();
  /// Adds an objective term. Terms that run the whole model turn the frozen-prefix cache off.
  /// The configuration with the input-size and core-count defaults resolved.
  const TrainConfig& config() const { return cfg_; }
  void add_term(TermPtr term);
  /// Adds `loss` to every step's objective; `name` labels it in progress lines.
  void set_extra_loss(ExtraLoss loss, std::string name);
  /// Pairs every step with a batch of `unlabelled` (its labels, if any, are never read),
  /// positioned from the global step; with a null labelled set, this set alone defines
  /// the epochs (source-free training).
  void set_paired(data::DatasetPtr unlabelled, int64_t batch_size, uint64_t seed);
  /// Terms see the (flattened) output of this layer as features.
  void set_tap(const std::string& layer);
  /// Parameters for which keep(name) is false never train.
  void set_param_filter(std::function<bool(const std::string&)> keep);
  void set_observer(std::shared_ptr<EpochObserver> observer);
  /// Whether the labelled cross-entropy is part of the objective (default true).
  void set_labelled_loss(bool on);
  /// Runs (or resumes) training. train may be null only with a paired set.
  /// Throws graft::Error on a NaN or infinite loss, keeping the last good checkpoint and naming it.
  TrainResult fit(const data::DatasetPtr& train, const data::DatasetPtr& val, const data::DatasetPtr& test);
  const models::BackbonePtr& model() const { return model_; }

 private:
  struct Run;
  models::BackbonePtr model_;
  io::ModelMeta meta_;
  TrainConfig cfg_;
  std::vector<TermPtr> terms_;
  data::DatasetPtr paired_;
  int64_t paired_batch_ = 0;
  uint64_t paired_seed_ = 0;
  std::string tap_;
  std::function<bool(const std::string&)> keep_;
  std::shared_ptr<EpochObserver> observer_;
  bool labelled_loss_ = true;
  bool l2sp_added_ = false;
};

}  // namespace graft::train
