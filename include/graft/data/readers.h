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
/// type, or a size that does not match the header (truncated or padded file). The
/// header's sizes are checked against the file's size before anything is allocated
/// (for .gz, against the most data the compressed size can hold).
at::Tensor read_idx(const std::string& path);

/// Writes a uint8 tensor as a raw IDX file, atomically.
void write_idx(const std::string& path, const at::Tensor& t);

/// An image dataset from an IDX image file and an IDX label file. Images of shape
/// (N,H,W) become (N,1,H,W); (N,H,W,C) become (N,C,H,W).
/// Throws graft::Error when the label count differs from the image count, an image
/// dimension is 0, or labels are refused by check_labels.
DatasetPtr load_idx_dataset(const std::string& images, const std::string& labels,
                            std::vector<std::string> class_names, const std::string& name);

/// Default cap on the pixels (width x height) of one decoded image: 64 megapixels.
/// A decoded image costs 4 bytes per pixel and channel as float, so the cap bounds one
/// image to about 0.8 GB RGB; a file claiming more is refused before decoding.
constexpr int64_t kDefaultMaxPixels = int64_t{64} << 20;

/// Sets the process-wide pixel cap used when ImageFileOptions::max_pixels is 0 (the
/// CLI's --max-pixels). Requires: n > 0.
void set_max_pixels(int64_t n);
/// The process-wide pixel cap (kDefaultMaxPixels unless set).
int64_t max_pixels();

/// Options for image files decoded lazily from disk.
struct ImageFileOptions {
  /// Skip images that fail to decode (counted) instead of stopping with an error.
  bool skip_bad = false;
  /// Decode as 1 channel (gray) or 3 (RGB); 0 keeps the file's own (gray stays gray, colour becomes RGB).
  int channels = 0;
  /// Largest width x height accepted; 0 uses the process-wide max_pixels(). Checked on
  /// the size the file's header declares, before any pixel is decoded.
  int64_t max_pixels = 0;
  /// When both are > 0, an image at least twice this size in both dimensions is
  /// decoded reduced by 2, 4 or 8 (JPEG decodes at the reduced size; other formats are
  /// shrunk in 8 bits) while staying >= this size, before conversion to float. For
  /// pipelines that resize to this size anyway (the @decode-size=HxW view).
  int64_t decode_h = 0, decode_w = 0;
  ImageFileOptions& skip_bad_(bool v) { skip_bad = v; return *this; }
  ImageFileOptions& channels_(int v) { channels = v; return *this; }
  ImageFileOptions& max_pixels_(int64_t v) { max_pixels = v; return *this; }
  ImageFileOptions& decode_size_(int64_t h, int64_t w) { decode_h = h; decode_w = w; return *this; }
};

/// Width and height an image file's header declares (PNG, JPEG, BMP, PNM, WebP, TIFF),
/// read without decoding. Returns false for an unknown or damaged header.
bool image_header_size(const unsigned char* data, size_t size, int64_t& width, int64_t& height);

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
/// Throws graft::Error naming the file when it is missing, a folder, truncated, not an
/// image, or larger than the pixel cap.
at::Tensor decode_image(const std::string& path, int channels = 0);
/// Same, with every option of ImageFileOptions that concerns decoding.
at::Tensor decode_image(const std::string& path, const ImageFileOptions& opts);

/// Image folder: one subfolder per class (sorted by name), image files (.png .jpg
/// .jpeg .bmp .pgm .ppm .webp .tif .tiff) inside, sorted, so the order is deterministic.
/// Throws graft::Error for a missing folder, no class folders, or an empty class folder.
std::shared_ptr<ImageFileDataset> load_image_folder(const std::string& root, ImageFileOptions opts = {});

/// The parsed lines of a list file.
struct ListFile {
  std::vector<std::pair<std::string, int64_t>> items;  ///< (path, label id)
  std::vector<std::string> class_names;
};
/// Parses the text of a list file (see load_list_file); `file` names it in errors and
/// relative paths are taken from its folder. Nothing is read from disk.
ListFile parse_list_file(const std::string& text, const std::string& file);

/// List file: one "path label" per line (paths relative to the list file's folder;
/// '#' starts a comment). Labels are integers 0..K-1 (checked by check_labels), or
/// class names (sorted to ids).
std::shared_ptr<ImageFileDataset> load_list_file(const std::string& file, ImageFileOptions opts = {});

/// Tensors from .npy: inputs (N,...) float32 or uint8 and optional labels (N) int64/int32.
/// Without labels every example is unlabelled; a label of -1 marks one unlabelled example.
/// Throws on length mismatch, NaN/inf, bad dtype, or labels refused by check_labels.
DatasetPtr load_npy_dataset(const std::string& inputs, const std::string& labels, const std::string& name);

}  // namespace graft::data
