#pragma once
/// Fine-tuning in one call: cut a pretrained network after a layer, add a new head for
/// the target classes, resolve the layer policy (freezing, per-layer learning rates) and
/// train with the Trainer (early stopping, frozen-prefix cache, L2-SP).
#include <functional>
#include <string>
#include <vector>

#include "graft/data/dataset.h"
#include "graft/models/compose.h"
#include "graft/models/open.h"
#include "graft/train/policy.h"
#include "graft/train/trainer.h"

namespace graft::train {

/// How to fine-tune. The defaults are those of `graft finetune`.
struct FinetuneOptions {
  std::string cut;         ///< keep the layers up to and including this one ("": all but the last)
  models::HeadSpec head;   ///< the new head (linear by default)
  LayerPolicy policy;      ///< frozen layers and learning-rate multipliers
  TrainConfig train;       ///< the training recipe; out_dir is required
  FinetuneOptions() {
    train.optimizer = "adam";
    train.lr = 0.001;
    train.patience = 5;
  }
  FinetuneOptions& cut_after(std::string layer) { cut = std::move(layer); return *this; }
  FinetuneOptions& out_dir(std::string dir) { train.out_dir = std::move(dir); return *this; }
  FinetuneOptions& epochs(int64_t n) { train.epochs = n; return *this; }
  FinetuneOptions& freeze_through(std::string layer) { policy.freeze_through = std::move(layer); return *this; }
};

/// The model fine_tune() trains, before training.
struct FinetunePlan {
  models::BackbonePtr model;        ///< layers [0, cut] of the pretrained model + "head"
  io::ModelMeta meta;               ///< arch "cut", the target's classes, the base's description
  std::string cut;                  ///< the layer cut after (resolved when opts.cut was empty)
  std::vector<std::string> frozen;  ///< layers with learning-rate multiplier 0
  TrainConfig train;                ///< opts.train with layer_lr_mult and pretrained_layers filled in
};

/// Builds the fine-tuning model for a target with `num_classes` classes named `class_names`.
/// Requires: pretrained.model is not itself a cut model (fine-tune the original, or resume).
/// Throws graft::Error for an unknown cut layer, a single-layer model, or a bad policy;
/// `warn` receives policy warnings (rules matching no layer).
/// data_shape (one example of the training data, may be empty) sizes the head on what the
/// model really receives after the input pipeline (a carried preprocessing may resize).
FinetunePlan plan_finetune(const models::OpenedModel& pretrained, const std::vector<std::string>& class_names,
                           const FinetuneOptions& opts,
                           const std::function<void(const std::string&)>& warn = {},
                           const std::vector<int64_t>& data_shape = {});

/// What fine_tune() returns.
struct FinetuneResult {
  FinetunePlan plan;
  TrainResult train;  ///< history, kept epoch, test report, model_path (a checkpoint graft opens)
};

/// Fine-tunes `pretrained` on `train_set` (validated on `val`, may be null: then early
/// stopping is off), evaluating `test` (may be null) once at the end. Writes checkpoints,
/// metrics.jsonl and model.ckpt to opts.train.out_dir.
/// Example:
///   auto src = models::open_model("resnet.pt", train->input_shape(), train->class_names());
///   auto r = train::fine_tune(src, train, val, test, train::FinetuneOptions().out_dir("run"));
FinetuneResult fine_tune(const models::OpenedModel& pretrained, const data::DatasetPtr& train_set,
                         const data::DatasetPtr& val, const data::DatasetPtr& test, FinetuneOptions opts,
                         const std::function<void(const std::string&)>& warn = {});

}  // namespace graft::train
