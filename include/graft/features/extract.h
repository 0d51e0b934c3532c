#pragma once
/// Off-the-shelf features (Razavian et al. 2014): activations of one or more named
/// layers, pooled and normalised, streamed to .npy in bounded memory.
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "graft/core/precision.h"
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
  /// Test-time augmentation, averaged over the views as Razavian et al. did:
  ///   none; flip (the image and its mirror); crops (the centre and four corner crops
  ///   covering 7/8 of each side, each resized back to the input size); crops+flip (all 10).
  std::string tta = "none";
  /// 0: from the model's input size (graft::default_batch_size for inference from 128: 128
  /// for digits and 64x64 RGB, 8 for 224x224 photos).
  int64_t batch_size = 0;
  /// -1: from the cores (graft::default_workers).
  int workers = -1;
  /// TorchScript models: run an inference-optimised copy (models::optimized_for_inference);
  /// fp32 only (its prepacked float32 weights do not mix with autocast).
  bool optimize = true;
  /// Forward passes in fp32 or under autocast (bf16 on CPU or GPU, fp16 on GPU); the
  /// features are returned as float32 either way.
  Precision precision = Precision::kFp32;
  /// Memory format of convolutional models: auto (channels-last on the CPU when the forward
  /// passes run in reduced precision, where oneDNN's bf16 convolutions are fastest in that
  /// layout; float32 runs the optimised copy, which picks its own), on (channels-last, and no
  /// optimised copy), off (as loaded). See models::use_channels_last.
  std::string channels_last = "auto";
  /// Throws graft::Error naming the bad option (unknown pooling, norm, tta, empty layers).
  void validate() const;
};

/// Computes features of batches: runs the model once up to the deepest tap, then
/// pools each tapped activation, averages over the test-time views and normalises.
/// The pseudo-layer "input" taps the model input itself (raw pixels after preprocessing,
/// always flattened whatever the pooling).
class FeatureExtractor {
 public:
  /// Throws graft::Error for unknown layers (close matches listed) or bad options.
  /// Make it after moving the model to its device (the optimised copy stays there).
  FeatureExtractor(models::Backbone& model, ExtractOptions opts);
  /// One tensor per requested layer, each pooled and normalised on its own.
  /// Shape: x (N,*input) on the model's device -> each (N,F_layer) float32 on the CPU.
  std::vector<at::Tensor> per_layer(const at::Tensor& x);
  /// The requested layers' features concatenated, then normalised.
  /// Shape: (N,*input) -> (N, sum F_layer). dims, when given, receives each layer's width.
  at::Tensor concatenated(const at::Tensor& x, std::vector<int64_t>* dims = nullptr);
  const ExtractOptions& options() const { return opts_; }

 private:
  std::vector<at::Tensor> pooled(const at::Tensor& x);
  bool channels_last_ = false, channels_last_checked_ = false;
  models::Backbone& net() { return optimized_ ? *optimized_ : model_; }
  models::Backbone& model_;
  models::BackbonePtr optimized_;
  ExtractOptions opts_;
  /// A dotted tap ("features.3"): a child of nested chains below a layer.
  struct Nested {
    size_t layer = 0;
    std::vector<std::string> path;
    int input_slot = -1;  ///< index into taps_ of the layer before, or -1: the model input
  };
  int tap_slot(size_t layer);
  Nested nested_tap(const std::string& name);
  std::vector<size_t> taps_;   ///< model layer indices to run
  std::vector<Nested> nested_;
  /// For each requested layer: index into taps_, -1 for "input", -2 - k for nested_[k].
  std::vector<int> source_;
};

/// The test-time views of a batch: the batch itself for "none", else 2, 5 or 10 views.
/// Shape: (N,C,H,W) -> each (N,C,H,W). Inputs without spatial dimensions get one view.
std::vector<at::Tensor> tta_views(const at::Tensor& x, const std::string& tta);

/// Features of every example of a labelled dataset, held in memory (one tensor per
/// requested layer, plus labels): for small label budgets and test sets.
struct FeatureSet {
  std::vector<at::Tensor> layers;  ///< each (N,F_layer) float32
  at::Tensor labels;               ///< (N) int64
};
FeatureSet extract_in_memory(models::Backbone& model, const io::ModelMeta& meta, const data::DatasetPtr& dataset,
                             const ExtractOptions& opts);

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
/// matches listed); nothing is left at the output paths on error. `progress`, when given,
/// is called after every batch with the examples done so far and the dataset's size.
ExtractResult extract(models::Backbone& model, const io::ModelMeta& meta, const data::DatasetPtr& dataset,
                      const ExtractOptions& opts, const std::string& features_path, const std::string& labels_path,
                      const std::string& model_name,
                      const std::function<void(int64_t done, int64_t total)>& progress = {});

}  // namespace graft::features
