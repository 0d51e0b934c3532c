#pragma once
/// Off-the-shelf features (Razavian et al. 2014): activations of one or more named
/// layers, pooled and normalised, streamed to .npy in bounded memory.
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "graft/data/dataset.h"
#include "graft/io/checkpoint.h"
#include "graft/models/backbone.h"

namespace graft::features {

/// How to turn a layer's activation into a vector.
///   flatten  all values; avg / max  global average / max over space;
///   spp      max over a 1x1 and a 2x2 grid (a small spatial pyramid), concatenated.
/// Shape: act (N,C,H,W) or (N,D) -> (N,F). Vectors pass through every pooling unchanged.
at::Tensor pool(const at::Tensor& act, const std::string& how);

/// Feature normalisation: none, l2 (unit length), or power (signed square root, then l2).
/// Shape: (N,F) -> (N,F).
at::Tensor normalize(const at::Tensor& f, const std::string& how);

struct ExtractOptions {
  std::vector<std::string> layers;  ///< names from `graft layers`; features are concatenated in this order
  std::string pool = "avg";
  std::string norm = "none";
  std::string tta = "none";         ///< none, or flip (average with the horizontally flipped input)
  int64_t batch_size = 128;
  int workers = 2;
  /// Throws graft::Error naming the bad option (unknown pooling, norm, tta, empty layers).
  void validate() const;
};

/// What extract() wrote.
struct ExtractResult {
  int64_t rows = 0, dim = 0;
  std::vector<std::pair<std::string, int64_t>> layer_dims;
  nlohmann::json sidecar;
};

/// Runs the model up to the deepest requested layer over the dataset in inference
/// mode and writes features (float32, (N,F)) to features_path and labels (int64, (N))
/// to labels_path, both atomically, plus features_path + ".json" describing them.
/// Memory holds one batch at a time. Throws graft::Error for unknown layers (close
/// matches listed); nothing is left at the output paths on error.
ExtractResult extract(models::Backbone& model, const io::ModelMeta& meta, const data::DatasetPtr& dataset,
                      const ExtractOptions& opts, const std::string& features_path, const std::string& labels_path,
                      const std::string& model_name);

}  // namespace graft::features
