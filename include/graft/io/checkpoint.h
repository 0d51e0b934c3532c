#pragma once
/// Versioned, atomic checkpoints: model, optimizer state, progress, RNG state and
/// the resolved configuration in one file; and opening any model a CLI names.
#include <nlohmann/json.hpp>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "graft/models/backbone.h"

namespace torch::optim {
class Optimizer;
}

namespace graft::io {

/// Newest checkpoint format this build reads; older versions are read, newer ones refused.
/// Version 2 (a cut TorchScript model's base stored without its weights) is written only
/// where it applies; every other checkpoint is written as version 1.
constexpr int kCheckpointVersion = 2;

/// What a saved model needs to be rebuilt and fed correctly.
struct ModelMeta {
  std::string arch;                      ///< zoo name or "torchscript"
  std::vector<int64_t> input_shape;      ///< one example, e.g. {1,28,28}
  std::vector<std::string> class_names;  ///< output classes in order
  std::string preprocess;                ///< deterministic transform spec applied before the model
  /// For arch "cut" (a pretrained base with a new head): {"base": base ModelMeta JSON,
  /// "cut": models::CutModel::config()}. Empty otherwise.
  nlohmann::json arch_config;
  nlohmann::json to_json() const;
  static ModelMeta from_json(const nlohmann::json& j);
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
};

/// Progress of a training run, stored to resume it.
struct TrainState {
  int64_t epoch = 0;          ///< epochs fully done
  int64_t step_in_epoch = 0;  ///< batches done in the current epoch
  int64_t global_step = 0;
  nlohmann::json config;      ///< the resolved configuration of the run
  nlohmann::json extra;       ///< trainer-specific state (best validation loss, history...)
};

/// Named tensors with a JSON description, stored beside the model in a checkpoint
/// (e.g. the shallow classifier of an off-the-shelf model, under meta["kind"]).
struct Attachment {
  nlohmann::json meta;
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  /// The tensor with this name; throws graft::Error when absent.
  const at::Tensor& tensor(const std::string& name) const;
};

/// Writes a checkpoint to path atomically and durably (serialised in memory, checked
/// writes, fsync, rename, fsync of the folder). A full disk throws graft::Error naming
/// path, with the temp file removed and any older file at path intact.
/// optimizer and attachment may be null.
void save_checkpoint(const std::string& path, const models::Backbone& model, const ModelMeta& meta,
                     const TrainState* state, torch::optim::Optimizer* optimizer,
                     const Attachment* attachment = nullptr);

/// A loaded checkpoint.
struct Checkpoint {
  models::BackbonePtr model;
  ModelMeta meta;
  bool has_state = false;
  TrainState state;
  std::optional<Attachment> attachment;
  std::string path;
};

/// Loads a checkpoint (model on CPU) and restores libtorch's CPU RNG state when restore_rng.
/// Throws graft::Error naming the file when it is missing, truncated, damaged (a zip
/// record fails its CRC32: bit flips are refused, never loaded), not a graft
/// checkpoint, or of a newer format.
Checkpoint load_checkpoint(const std::string& path, bool restore_rng = false);

/// The checkpoint a resume should start from, and why others were passed over.
struct CheckpointChoice {
  std::string path;                   ///< empty when no candidate is valid
  int64_t global_step = -1;           ///< of the chosen one
  std::vector<std::string> rejected;  ///< one line per candidate present but refused (path: reason)
};

/// Picks the newest valid training checkpoint in a run folder among `names` (default
/// checkpoint.ckpt, then checkpoint.prev.ckpt). Valid: every zip record passes its
/// CRC32, it loads as a graft checkpoint with training state, and all its weights are
/// finite. Newest: the largest global_step (ties: the earlier name). Missing files are
/// skipped silently; damaged ones are listed in `rejected`, never thrown.
CheckpointChoice newest_valid_checkpoint(const std::string& dir,
                                         const std::vector<std::string>& names = {"checkpoint.ckpt",
                                                                                  "checkpoint.prev.ckpt"});

/// Loads the optimizer state saved in path into optimizer (same parameter layout).
void load_optimizer_state(const std::string& path, torch::optim::Optimizer& optimizer);

/// True when path is a graft checkpoint (as opposed to a plain TorchScript file), read from
/// the archive's object record (data.pkl) alone: no model is loaded. Throws graft::Error
/// when path is a zip archive that fails its integrity check (verify_zip).
bool is_checkpoint(const std::string& path);

/// Copies values of parameters and buffers from `from` into `to` by name; throws
/// graft::Error on a missing name or a shape mismatch. With `layers`, only the tensors of
/// those layers (by models::layer_of_param) are copied; the others keep their values.
void copy_weights(const models::Backbone& from, models::Backbone& to, const std::set<std::string>* layers = nullptr);

}  // namespace graft::io
