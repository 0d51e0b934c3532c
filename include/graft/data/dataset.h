#pragma once
/// Datasets: random access to (input tensor, label). Views (subsets, class
/// selections, label budgets, splits, unlabelled) share the underlying storage.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace graft::data {

/// Label of an example whose label is unknown or withheld. Label files may use it
/// (-1) to mark unlabelled examples; any other negative label is refused.
constexpr int64_t kNoLabel = -1;

/// The most classes a dataset may have (labels 0..kMaxClasses-1). A label file with a
/// larger label is refused: the class count sets the size of class-name lists, heads
/// and confusion matrices, so a corrupt label must not decide how much memory is used.
constexpr int64_t kMaxClasses = 100000;

/// Checks labels read from `file` and returns the class count they imply (max + 1, 0
/// when all are kNoLabel). Throws graft::Error naming the file and the value for a
/// label below kNoLabel, a label >= kMaxClasses, or more than 1000 classes implied by
/// fewer labelled examples than classes (a corrupt label, not a real class).
/// Shape: labels (N) integer.
int64_t check_labels(const at::Tensor& labels, const std::string& file);

/// One example. input is float32, (C,H,W) for images or (D) for vectors, values in
/// the dataset's natural range (images in [0,1]).
struct Example {
  at::Tensor input;
  int64_t label = kNoLabel;
};

/// A stacked batch. Shape: input (N,*input_shape) float32, label (N) int64,
/// index (N) int64 positions in the dataset.
struct Batch {
  at::Tensor input, label, index;
  int64_t size() const { return input.defined() ? input.size(0) : 0; }
};

/// Random access to examples. Implementations must make get() and get_batch()
/// safe to call from several threads at once.
class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t i) const = 0;
  /// Stacked examples; the default calls get() per index. Requires: equal shapes.
  virtual Batch get_batch(const std::vector<int64_t>& indices) const;
  /// True when get_batch is a cheap vectorised gather (in-memory tensors).
  virtual bool tensor_backed() const { return false; }
  /// True when loaders should drop examples that fail to decode (counting them)
  /// instead of stopping: the @skip-bad view of image datasets.
  virtual bool skip_bad() const { return false; }
  /// Shape of one input, (C,H,W) or (D); for image folders the shape after decoding
  /// the first image (others may differ until resized by a transform).
  virtual std::vector<int64_t> input_shape() const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;
  int64_t num_classes() const { return static_cast<int64_t>(class_names().size()); }
  /// Every example's label in order (kNoLabel where withheld). Cheap for all
  /// built-in datasets (no decoding).
  virtual std::vector<int64_t> labels() const = 0;
  /// A short human-readable description, e.g. "mnist:train (60000 examples)".
  virtual std::string describe() const = 0;
};

using DatasetPtr = std::shared_ptr<const Dataset>;

/// In-memory dataset over a tensor of inputs and a tensor of labels.
/// uint8 inputs are scaled to [0,1] float on access; float inputs are returned as is.
/// Shape: inputs (N,*shape) uint8 or float32; labels (N) int64.
class TensorDataset : public Dataset {
 public:
  /// Requires: inputs.size(0) == labels.size(0) (throws graft::Error naming `name`).
  TensorDataset(at::Tensor inputs, at::Tensor labels, std::vector<std::string> class_names, std::string name);
  int64_t size() const override;
  Example get(int64_t i) const override;
  Batch get_batch(const std::vector<int64_t>& indices) const override;
  bool tensor_backed() const override { return true; }
  std::vector<int64_t> input_shape() const override;
  const std::vector<std::string>& class_names() const override { return class_names_; }
  std::vector<int64_t> labels() const override;
  std::string describe() const override;
  const at::Tensor& inputs() const { return inputs_; }

 private:
  at::Tensor inputs_, labels_;
  std::vector<std::string> class_names_;
  std::string name_;
};

/// A view of another dataset: a list of its indices, optionally a label remapping
/// (old label -> new label, -1 drops nothing but marks unmapped) and new class names.
class SubsetDataset : public Dataset {
 public:
  SubsetDataset(DatasetPtr base, std::vector<int64_t> indices, std::vector<int64_t> label_map,
                std::vector<std::string> class_names, std::string what, bool hide_labels = false);
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  Example get(int64_t i) const override;
  Batch get_batch(const std::vector<int64_t>& indices) const override;
  bool tensor_backed() const override { return base_->tensor_backed(); }
  bool skip_bad() const override { return base_->skip_bad(); }
  std::vector<int64_t> input_shape() const override { return base_->input_shape(); }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  std::vector<int64_t> labels() const override;
  std::string describe() const override;
  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  int64_t map_label(int64_t l) const;
  DatasetPtr base_;
  std::vector<int64_t> indices_, label_map_;
  std::vector<std::string> class_names_;
  std::string what_;
  bool hide_labels_;
};

/// The first n examples (or all when n >= size).
DatasetPtr take(DatasetPtr d, int64_t n);
/// Examples of the given classes only, relabelled 0..k-1 in the order given.
/// Throws graft::Error for a class id outside [0, num_classes) or repeated.
DatasetPtr select_classes(DatasetPtr d, const std::vector<int64_t>& classes);
/// A seeded label budget: n examples of each class, drawn without replacement.
/// Throws graft::Error naming the class when it holds fewer than n examples.
DatasetPtr labels_per_class(DatasetPtr d, int64_t n, uint64_t seed);
/// A seeded, class-stratified split into (train, val) with about `val_fraction`
/// of each class in val. Requires 0 < val_fraction < 1.
std::pair<DatasetPtr, DatasetPtr> split(DatasetPtr d, double val_fraction, uint64_t seed);
/// The complement of `part` in `whole` when part is a subset view of whole
/// (e.g. the unlabelled rest after a label budget).
DatasetPtr complement(DatasetPtr whole, const SubsetDataset& part);
/// The same examples with labels withheld (kNoLabel).
DatasetPtr unlabelled(DatasetPtr d);

/// Parses class lists such as "0-4", "5-9", "0,2,4" or "1-3,7".
std::vector<int64_t> parse_class_list(const std::string& s);

/// Counts examples per class (size num_classes; unlabelled examples are ignored).
std::vector<int64_t> class_counts(const Dataset& d);

}  // namespace graft::data
