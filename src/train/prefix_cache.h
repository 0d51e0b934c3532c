#pragma once
// Internal to the trainer: activations of a frozen prefix, computed once.
#include <torch/torch.h>

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "graft/data/dataset.h"
#include "graft/data/transforms.h"
#include "graft/models/backbone.h"

namespace graft::train {

/// Activations of a frozen prefix for every training example, in memory or in a file.
class PrefixCache {
 public:
  /// Runs layers [0, prefix) over ds once, in index order. on_disk: "auto" decides by
  /// memory_mb, "disk"/"memory" force one.
  void build(models::Backbone& model, size_t prefix, const data::DatasetPtr& ds, const data::Pipeline& pipe,
             int workers, const std::string& mode, int64_t memory_mb, c10::Device dev, const std::string& disk_path);
  /// Cached activations and labels of the examples idx.
  std::pair<at::Tensor, at::Tensor> rows(const std::vector<int64_t>& idx);
  bool on_disk() const { return on_disk_; }
  ~PrefixCache();

 private:
  at::Tensor mem_, labels_;
  std::vector<int64_t> shape_;
  int64_t row_elems_ = 0;
  bool on_disk_ = false;
  std::string path_;
  std::ifstream in_;
};

}  // namespace graft::train
