#pragma once
/// Unsupervised domain adaptation: labelled source, unlabelled target, one training
/// loop for DANN and its peers, and model selection that never reads target labels.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "graft/data/dataset.h"
#include "graft/io/checkpoint.h"
#include "graft/models/backbone.h"
#include "graft/adapt/method.h"
#include "graft/train/policy.h"

namespace graft::adapt {

struct AdaptConfig {
  /// A name from the method registry (adapt::methods(); `graft adapt --help` lists them).
  std::string method = "dann";
  std::string tap;                 ///< feature layer: the domain losses act on its output (default: the layer
                                   ///< before the last two layers with parameters, e.g. dann_mnist's flatten)
  int64_t epochs = 20;             ///< passes over the source (source-free methods: over the target)
  int64_t batch_size = 128;        ///< per domain
  std::string optimizer = "sgd";   ///< sgd (momentum 0.9) | adam
  double lr = 0.01;
  std::string schedule = "dann";   ///< dann: lr0 / (1 + 10 p)^0.75 | constant
  double weight_decay = 0.0;
  double trade_off = 1.0;          ///< weight of the adaptation term (for dann/cdan: the final lambda)
  double lambda_gamma = 10.0;      ///< dann/cdan/mdd: lambda_p = trade_off * (2 / (1 + exp(-gamma p)) - 1)
  int64_t disc_hidden = 1024;      ///< discriminator / adversarial head width (dann, cdan, mdd)
  double threshold = 0.9;          ///< self-train: confidence of pseudo-labels, in (0, 1]
  double temperature = 2.5;        ///< mcc: softmax temperature
  double margin = 4.0;             ///< mdd: margin gamma
  double source_val = 0.1;         ///< fraction of the source held out for validation
  std::string select = "im";       ///< checkpoint choice: im (information maximisation on the target) |
                                   ///< snd (soft neighborhood density on the target) |
                                   ///< source-val (held-out source accuracy) | last
  /// snd/im choose only among epochs whose held-out source accuracy is within this much of
  /// the run's best (see CheckpointSelector).
  double source_tolerance = 0.02;
  int64_t eval_examples = 2000;    ///< target examples used by the unsupervised criterion per epoch
  /// Learning rate of the layers up to the tap relative to the head's: -1 = automatic,
  /// 0.1 for a pretrained model (as TLlib does), 1 for a zoo model trained from scratch.
  double backbone_lr_mult = -1;
  bool pretrained = false;         ///< the model came trained (checkpoint or TorchScript)
  train::LayerPolicy policy;       ///< --freeze-through / --lr-mult / --layer-decay (replace the default above)
  uint64_t seed = 0;
  int workers = 2;
  std::string device = "cpu";
  std::string out_dir;
  bool resume = false;             ///< continue an interrupted run; a finished one is reused
  bool overwrite = false;          ///< replace an earlier run's files in out_dir
  int64_t checkpoint_every = 0;    ///< also checkpoint every N steps (0: once per epoch)
  bool sync_bn_stats = false;      ///< data-parallel: average BatchNorm running statistics over ranks
  std::string precision = "fp32";  ///< forward passes: fp32, bf16 or fp16 (train::TrainConfig::precision)
  std::string channels_last = "auto";  ///< train::TrainConfig::channels_last
  std::string data_on_device = "auto";  ///< train::TrainConfig::data_on_device
  double log_every_s = 5.0;
  bool quiet = false;
  /// Throws graft::Error naming the bad option.
  void validate() const;
  nlohmann::json to_json() const;
  MethodOptions method_options() const;
};

struct AdaptEpoch {
  int64_t epoch = 0;
  double loss_cls = 0, loss_adapt = 0, domain_acc = -1, lambda = 0, lr = 0, seconds = 0;
  double source_val_acc = 0;  ///< held-out source accuracy
  double target_im = 0;       ///< information maximisation score on unlabelled target (higher is better)
  double target_snd = 0;      ///< soft neighborhood density on unlabelled target (higher is better)
  double target_acc_source_bn = -1;  ///< adabn oracle: the same weights with the source's BatchNorm statistics
  double target_acc = -1;     ///< oracle: accuracy on the labelled target test set, never used for choices
};

struct AdaptResult {
  std::vector<AdaptEpoch> history;
  int64_t selected_epoch = 0;       ///< chosen by cfg.select, without target labels
  double selected_score = 0;        ///< cfg.select's value at that epoch (compares runs of other hyperparameters)
  double selected_target_acc = -1;  ///< oracle accuracy of the selected model (-1 without target test labels)
  double last_target_acc = -1;
  double oracle_best_acc = -1;      ///< the best epoch by target labels: reported only as an upper reference
  double pad_before = -1, pad_after = -1;  ///< proxy A-distance of tap features, before and after
  double selected_source_acc = -1;  ///< held-out source accuracy of the selected epoch (-1: source-free)
  bool near_chance = false;         ///< the selected model is near chance on the held-out source
  bool reused = false;              ///< a finished run was found in out_dir (with --resume) and read back
  std::string model_path;
};

/// Trains `model` (source classes) on labelled `source` and unlabelled `target` through
/// the one Trainer (checkpoints, exact --resume, progress, layer plan) with the method's
/// term; `target_test` (may be null) only yields oracle numbers. Source-free methods
/// take a null source. Writes metrics.jsonl, embedding.svg (PCA of tap features
/// before/after), candidates/ (weights of epochs that may still be chosen), result.json
/// and model.ckpt (the selected epoch's weights) to cfg.out_dir. Throws graft::Error for
/// an empty target, mismatched example shapes, a diverging loss, a --resume with another
/// configuration (naming the option), or bad options.
AdaptResult run_adapt(models::BackbonePtr model, const io::ModelMeta& meta, const data::DatasetPtr& source,
                      const data::DatasetPtr& target, const data::DatasetPtr& target_test, const AdaptConfig& cfg);

/// The default tap of a model (see AdaptConfig::tap).
std::string default_tap(const models::Backbone& model);

/// Soft neighborhood density (Saito et al. 2021): the mean entropy of each example's
/// softmax similarity (temperature tau) to the other examples, computed on L2-normalised
/// class probabilities. Higher means denser neighbourhoods, which tracks target accuracy
/// without labels. Shape: (N, K), N >= 2.
double soft_neighborhood_density(const at::Tensor& logits, double tau = 0.05);

/// Information maximisation score of logits: H(mean p) - mean H(p). Shape: (N, K).
double information_maximisation(const at::Tensor& logits);

}  // namespace graft::adapt
