#pragma once
/// Dataset readers: IDX (MNIST family, raw or .gz), image folders, list files, .npy.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "graft/data/dataset.h"

namespace graft::data {

/// Reads an IDX file (raw or gzip-compressed, detected from content) into a tensor.
/// Supported element types: unsigned byte (0x08) and float (0x0D).
/// Throws graft::Error naming the file for a wrong magic number, an unsupported
/// type, or a size that does not match the header (truncated or padded file).
at::Tensor read_idx(const std::string& path);

/// Writes a uint8 tensor as a raw IDX file, atomically.
void write_idx(const std::string& path, const at::Tensor& t);

/// An image dataset from an IDX image file and an IDX label file. Images of shape
/// (N,H,W) become (N,1,H,W); (N,H,W,C) become (N,C,H,W).
/// Throws graft::Error when the label count differs from the image count.
DatasetPtr load_idx_dataset(const std::string& images, const std::string& labels,
                            std::vector<std::string> class_names, const std::string& name);

/// Options for image files decoded lazily from disk.
struct ImageFileOptions {
  /// Skip images that fail to decode (counted) instead of stopping with an error.
  bool skip_bad = false;
  /// Decode as 1 channel (gray) or 3 (RGB); 0 keeps the file's own (gray stays gray, colour becomes RGB).
  int channels = 0;
  ImageFileOptions& skip_bad_(bool v) { skip_bad = v; return *this; }
  ImageFileOptions& channels_(int v) { channels = v; return *this; }
};

/// A dataset of image files with labels, decoded with OpenCV on access (so worker
/// threads of the loader decode in parallel). Inputs are float (C,H,W) in [0,1], RGB order.
class ImageFileDataset : public Dataset {
 public:
  ImageFileDataset(std::vector<std::pair<std::string, int64_t>> items, std::vector<std::string> class_names,
                   std::string name, ImageFileOptions opts);
  int64_t size() const override { return static_cast<int64_t>(items_.size()); }
  /// Throws graft::Error naming the file when it cannot be decoded.
  Example get(int64_t i) const override;
  std::vector<int64_t> input_shape() const override;
  bool skip_bad() const override { return opts_.skip_bad; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  std::vector<int64_t> labels() const override;
  std::string describe() const override;
  const std::string& path(int64_t i) const { return items_.at(static_cast<size_t>(i)).first; }
  const ImageFileOptions& options() const { return opts_; }

 private:
  std::vector<std::pair<std::string, int64_t>> items_;
  std::vector<std::string> class_names_;
  std::string name_;
  ImageFileOptions opts_;
  mutable std::vector<int64_t> shape_;
};

/// Decodes one image file to float (C,H,W) in [0,1], RGB. channels: 0 keep, 1 gray, 3 RGB.
/// Throws graft::Error naming the file when it is missing, truncated or not an image.
at::Tensor decode_image(const std::string& path, int channels = 0);

/// Image folder: one subfolder per class (sorted by name), image files (.png .jpg
/// .jpeg .bmp .pgm .ppm .webp .tif .tiff) inside, sorted, so the order is deterministic.
/// Throws graft::Error for a missing folder, no class folders, or an empty class folder.
std::shared_ptr<ImageFileDataset> load_image_folder(const std::string& root, ImageFileOptions opts = {});

/// List file: one "path label" per line (paths relative to the list file's folder;
/// '#' starts a comment). Labels are integers 0..K-1, or class names (sorted to ids).
std::shared_ptr<ImageFileDataset> load_list_file(const std::string& file, ImageFileOptions opts = {});

/// Tensors from .npy: inputs (N,...) float32 or uint8 and optional labels (N) int64/int32.
/// Without labels every example is unlabelled. Throws on length mismatch, NaN/inf, bad dtype.
DatasetPtr load_npy_dataset(const std::string& inputs, const std::string& labels, const std::string& name);

}  // namespace graft::data
