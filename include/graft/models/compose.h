#pragma once
/// Fine-tuning's model surgery: keep a pretrained network up to a named layer and put
/// a new, freshly initialised head for the target classes on top.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "graft/models/backbone.h"

namespace graft::models {

/// The new head.
///   kind   linear (one Linear layer) or mlp (Linear(hidden)+ReLU+Dropout, then Linear: a bottleneck)
///   pool   how a spatial activation (N,C,H,W) becomes a vector: flatten, avg, or auto
///          (flatten up to 8192 values per example, global average above)
struct HeadSpec {
  std::string kind = "linear";
  int64_t hidden = 256;
  double dropout = 0.0;
  std::string pool = "auto";
  /// Throws graft::Error naming the bad option.
  void validate() const;
  nlohmann::json to_json() const;
  static HeadSpec from_json(const nlohmann::json& j);
};

/// Layers [0, keep) of a base model followed by one layer named "head". Parameters of
/// the base keep their names; the head's are "head.*". arch() is "cut".
class CutModel : public Backbone {
 public:
  /// Shape: input_shape is one example's shape (to size the head). seed initialises the head.
  CutModel(BackbonePtr base, size_t keep, const HeadSpec& head, int64_t num_classes,
           const std::vector<int64_t>& input_shape, uint64_t seed);
  ~CutModel() override;
  std::string arch() const override { return "cut"; }
  const std::vector<std::string>& layer_names() const override { return names_; }
  at::Tensor forward_range(const at::Tensor& x, size_t begin, size_t end) override;
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const override;
  std::vector<std::pair<std::string, at::Tensor>> named_buffers() const override;
  void train(bool on) override;
  bool is_training() const override;
  void train_layer(size_t i, bool on) override;
  void to(c10::Device device) override;
  std::string layer_kind(size_t i) const override;

  const BackbonePtr& base() const { return base_; }
  size_t kept_layers() const { return keep_; }
  /// True when the head globally averages a spatial input (else it flattens it).
  bool head_avg() const;
  /// What rebuilds this structure (base arch, kept layers, head, input shape), for checkpoints.
  nlohmann::json config() const;

 private:
  struct Head;
  BackbonePtr base_;
  size_t keep_;
  std::vector<std::string> names_;
  std::shared_ptr<Head> head_;
  HeadSpec spec_;
  std::vector<int64_t> input_shape_;
  int64_t num_classes_;
};

/// Cuts `base` after the layer named `cut` (close matches listed when unknown) and adds
/// a new head for num_classes (>= 2). Cutting after the last layer keeps the whole base
/// and puts the head on its outputs.
BackbonePtr cut_and_add_head(BackbonePtr base, const std::string& cut, int64_t num_classes,
                             const std::vector<int64_t>& input_shape, const HeadSpec& head, uint64_t seed);

/// The CutModel inside b, or null.
const CutModel* as_cut(const Backbone& b);

}  // namespace graft::models
