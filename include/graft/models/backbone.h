#pragma once
/// One interface over every model source: an ordered list of named layers that can
/// be run in ranges, tapped after any layer and cut, with named parameters.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "graft/core/check.h"

namespace graft::models {

/// What `graft layers` prints for one layer.
struct LayerInfo {
  std::string name;
  std::string kind;                ///< e.g. "Conv2d+ReLU", "Linear", "TorchScript(Sequential)"
  std::vector<int64_t> out_shape;  ///< per example, without the batch dimension
  int64_t params = 0;              ///< number of parameter elements
};

/// A model as an ordered list of named layers. Parameter names start with their
/// layer's name ("conv1.weight"), so layer globs select parameters.
class Backbone {
 public:
  virtual ~Backbone() = default;

  /// The architecture id that recreates this model: a zoo name or "torchscript".
  virtual std::string arch() const = 0;
  virtual const std::vector<std::string>& layer_names() const = 0;
  /// Runs layers [begin, end) on x.
  /// Shape: x is the output of layer begin-1 (or the model input when begin == 0).
  virtual at::Tensor forward_range(const at::Tensor& x, size_t begin, size_t end) = 0;
  virtual std::vector<std::pair<std::string, at::Tensor>> named_parameters() const = 0;
  virtual std::vector<std::pair<std::string, at::Tensor>> named_buffers() const = 0;
  virtual void train(bool on) = 0;
  virtual bool is_training() const = 0;
  /// Sets train/eval mode of one layer only (e.g. to keep a frozen layer's BatchNorm in eval).
  virtual void train_layer(size_t i, bool on) = 0;
  virtual void to(c10::Device device) = 0;
  /// Short description of a layer's type for `graft layers`.
  virtual std::string layer_kind(size_t i) const = 0;
  /// Dotted taps ("features.3", "features.3.conv"): checks that `path` names children of
  /// nested chains below layer `layer` (each level a Sequential whose forward runs its
  /// children in order). Throws graft::Error naming the level and its children otherwise;
  /// the default (models without nested chains) always throws.
  virtual void check_nested_tap(size_t layer, const std::vector<std::string>& path) const;
  /// The output of the nested child at `path` below layer `layer`, given that layer's input.
  virtual at::Tensor forward_nested_tap(const at::Tensor& layer_input, size_t layer, const std::vector<std::string>& path);

  size_t num_layers() const { return layer_names().size(); }
  /// Runs every layer. Shape: x (N,*input_shape) -> (N, num_classes) for classifiers.
  at::Tensor forward(const at::Tensor& x) { return forward_range(x, 0, num_layers()); }
  /// Runs the layers up to the last tap once and returns the output after each tap,
  /// in the order of `taps` (indices into layer_names()).
  std::vector<at::Tensor> forward_taps(const at::Tensor& x, const std::vector<size_t>& taps);
  /// Index of a layer by name. Throws graft::Error listing close matches when unknown.
  size_t layer_index(const std::string& name) const;
  /// Names, kinds, output shapes and parameter counts, found by a forward pass on zeros.
  /// Shape: input_shape is one example's shape, e.g. {1,28,28}.
  std::vector<LayerInfo> describe(const std::vector<int64_t>& input_shape);
  /// All parameters of layers [begin, end).
  std::vector<at::Tensor> parameters_of(size_t begin, size_t end) const;
  /// Total parameter elements.
  int64_t num_params() const;
  /// The device of the parameters (CPU when the model has none).
  c10::Device device() const;
};

using BackbonePtr = std::shared_ptr<Backbone>;

/// Whether convolutional models run in channels-last memory format (NHWC), for a choice
/// "auto", "on" or "off" (anything else: graft::Error naming --channels-last). auto: on for
/// a model with 4-D parameters (convolutions) on the CPU, where oneDNN's convolutions are
/// faster in that layout (issue 17: a ResNet-18 training step 1.15x, the DANN digit network's
/// 1.1x, bf16 inference 1.45x); off elsewhere.
bool use_channels_last(const std::string& choice, const Backbone& model, c10::Device device);
/// Puts the model's 4-D parameters and buffers in channels-last format in place (values and
/// shapes unchanged; libtorch then keeps activations in that format).
void to_channels_last(Backbone& model);
/// Back to the default (NCHW) layout.
void to_contiguous(Backbone& model);
/// use_channels_last, then to_channels_last, then a check that the model runs so: one forward
/// pass in evaluation mode (no gradients, BatchNorm statistics untouched) on zeros of
/// input_shape. A model that does not (a view() of a convolution's output, as LeNet-style
/// code writes it, needs NCHW) goes back to NCHW: under "auto" with a note on stderr naming
/// the reason, under "on" as a graft::Error. An empty input_shape skips the check. Returns
/// whether the model is now channels-last.
bool apply_channels_last(const std::string& choice, Backbone& model, const std::vector<int64_t>& input_shape,
                         c10::Device device);
/// x in channels-last format when it is a batch of images (4-D); otherwise x.
at::Tensor channels_last_input(const at::Tensor& x);

/// Name of the layer a parameter belongs to (text before the first '.').
std::string layer_of_param(const std::string& param_name);

/// close_matches lives in core/check.h; models code names it unqualified.
using graft::close_matches;

}  // namespace graft::models
