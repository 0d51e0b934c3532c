#pragma once
/// Opening a model from one string, as the command line does: a graft checkpoint, a
/// TorchScript file, or a zoo architecture name (fresh weights).
#include <cstdint>
#include <string>
#include <vector>

#include "graft/io/checkpoint.h"
#include "graft/models/backbone.h"

namespace graft::models {

/// A model opened by open_model(), with the description needed to feed it.
struct OpenedModel {
  BackbonePtr model;
  io::ModelMeta meta;            ///< for checkpoints: the saved one; otherwise built from the arguments
  bool from_checkpoint = false;  ///< true when spec was a graft checkpoint
};

/// Opens `spec`: a graft checkpoint (model and metadata as saved), a TorchScript file
/// (e.g. from torch.jit.script(model).save(...)), or a zoo name such as "dann_mnist",
/// "resnet20" or "mlp:64" (initialised from `seed`).
/// For zoo names and TorchScript files the metadata come from the arguments: one
/// example's `input_shape` (C,H,W or F), the `class_names` (the zoo model gets that many
/// outputs) and the deterministic `preprocess` transform spec; `channels` > 0 replaces C
/// (gray and RGB inputs are converted when fed). Checkpoints ignore these arguments.
/// Requires: spec is not empty. Throws graft::Error for a missing file, an unreadable
/// TorchScript file (saying how to export one), or an unknown zoo name (close matches listed).
OpenedModel open_model(const std::string& spec, std::vector<int64_t> input_shape,
                       const std::vector<std::string>& class_names, int channels = 0,
                       const std::string& preprocess = "normalize=0.5:0.5", uint64_t seed = 0);

}  // namespace graft::models
