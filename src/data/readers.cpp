#include "graft/data/readers.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "graft/core/check.h"
#include "graft/io/files.h"
#include "graft/io/npy.h"

namespace fs = std::filesystem;

namespace graft::data {
namespace {

std::string read_maybe_gz(const std::string& path) {
  io::require_readable(path, "IDX file");
  gzFile f = gzopen(path.c_str(), "rb");  // also reads uncompressed files transparently
  GRAFT_CHECK(f, path, ": cannot open");
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  int err = 0;
  const char* msg = gzerror(f, &err);
  bool bad = n < 0 || (err != Z_OK && err != Z_STREAM_END);
  std::string emsg = msg ? msg : "";
  gzclose(f);
  GRAFT_CHECK(!bad, path, ": corrupt or truncated compressed file (", emsg, ")");
  return out;
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

const std::set<std::string> kImageExt = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".webp", ".tif", ".tiff"};

bool is_image_file(const fs::path& p) {
  auto e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return kImageExt.count(e) > 0;
}

}  // namespace

at::Tensor read_idx(const std::string& path) {
  std::string bytes = read_maybe_gz(path);
  GRAFT_CHECK(bytes.size() >= 4, path, ": too short to be an IDX file (", bytes.size(), " bytes)");
  auto p = reinterpret_cast<const unsigned char*>(bytes.data());
  GRAFT_CHECK(p[0] == 0 && p[1] == 0, path, ": wrong IDX magic number (first bytes ", int(p[0]), " ", int(p[1]),
              ", expected 0 0); is this an MNIST-style IDX file?");
  int type = p[2], ndim = p[3];
  GRAFT_CHECK(type == 0x08 || type == 0x0D, path, ": IDX element type 0x", std::hex, type, std::dec,
              " is not supported; expected unsigned byte (0x08) or float (0x0D)");
  GRAFT_CHECK(ndim >= 1 && ndim <= 4, path, ": IDX file with ", ndim, " dimensions; expected 1 to 4");
  size_t header = 4 + 4 * static_cast<size_t>(ndim);
  GRAFT_CHECK(bytes.size() >= header, path, ": truncated IDX header");
  std::vector<int64_t> dims;
  size_t count = 1;
  for (int d = 0; d < ndim; ++d) {
    dims.push_back(be32(p + 4 + 4 * d));
    count *= static_cast<size_t>(dims.back());
  }
  size_t esize = type == 0x08 ? 1 : 4;
  GRAFT_CHECK(bytes.size() == header + count * esize, path, ": IDX sizes are inconsistent: the header promises ",
              count * esize, " bytes of data but the file holds ", bytes.size() - header,
              " (truncated or corrupt file)");
  if (type == 0x08) {
    auto t = at::empty(dims, at::kByte);
    std::memcpy(t.data_ptr(), p + header, count);
    return t;
  }
  auto t = at::empty(dims, at::kFloat);
  auto dst = static_cast<unsigned char*>(t.data_ptr());
  for (size_t i = 0; i < count; ++i)  // big-endian floats
    for (int b = 0; b < 4; ++b) dst[4 * i + b] = p[header + 4 * i + 3 - b];
  return t;
}

void write_idx(const std::string& path, const at::Tensor& t) {
  auto c = t.contiguous();
  GRAFT_CHECK(c.scalar_type() == at::kByte, "write_idx: only uint8 tensors are written, got ", c.scalar_type());
  GRAFT_CHECK(c.dim() >= 1 && c.dim() <= 4, "write_idx: 1 to 4 dimensions, got ", c.dim());
  io::write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    GRAFT_CHECK(out, path, ": cannot write");
    unsigned char h[4] = {0, 0, 0x08, static_cast<unsigned char>(c.dim())};
    out.write(reinterpret_cast<char*>(h), 4);
    for (auto d : c.sizes()) {
      unsigned char b[4] = {static_cast<unsigned char>(d >> 24), static_cast<unsigned char>(d >> 16),
                            static_cast<unsigned char>(d >> 8), static_cast<unsigned char>(d)};
      out.write(reinterpret_cast<char*>(b), 4);
    }
    out.write(static_cast<const char*>(c.data_ptr()), c.numel());
    out.close();
    GRAFT_CHECK(!out.fail(), path, ": write failed");
  });
}

DatasetPtr load_idx_dataset(const std::string& images, const std::string& labels,
                            std::vector<std::string> class_names, const std::string& name) {
  auto x = read_idx(images);
  auto y = read_idx(labels);
  GRAFT_CHECK(x.dim() == 3 || x.dim() == 4, images, ": image IDX must have 3 (N,H,W) or 4 (N,H,W,C) dimensions, got ",
              x.dim());
  GRAFT_CHECK(y.dim() == 1, labels, ": label IDX must have 1 dimension, got ", y.dim());
  GRAFT_CHECK(x.size(0) == y.size(0), name, ": label count (", y.size(0), " in ", labels,
              ") differs from image count (", x.size(0), " in ", images, ")");
  x = x.dim() == 3 ? x.unsqueeze(1) : x.permute({0, 3, 1, 2}).contiguous();
  return std::make_shared<TensorDataset>(x, y.to(at::kLong), std::move(class_names), name);
}

at::Tensor decode_image(const std::string& path, int channels) {
  std::ifstream f(path, std::ios::binary);
  GRAFT_CHECK(f, "image '", path, "' cannot be opened; check the path and permissions");
  std::vector<unsigned char> buf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  GRAFT_CHECK(!buf.empty(), "image '", path, "' is empty");
  int flag = channels == 1 ? cv::IMREAD_GRAYSCALE : channels == 3 ? cv::IMREAD_COLOR : cv::IMREAD_UNCHANGED;
  cv::Mat m;
  try {
    m = cv::imdecode(buf, flag);
  } catch (const cv::Exception& e) {
    GRAFT_FAIL("image '", path, "' cannot be decoded (", e.what(), ")");
  }
  GRAFT_CHECK(!m.empty(), "image '", path, "' cannot be decoded: corrupt, truncated or not an image");
  if (m.depth() != CV_8U) m.convertTo(m, CV_8U, m.depth() == CV_16U ? 1.0 / 257 : 1.0);
  if (m.channels() == 4) cv::cvtColor(m, m, cv::COLOR_BGRA2BGR);
  if (m.channels() == 3) cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
  GRAFT_CHECK(m.isContinuous(), "image '", path, "': unexpected non-contiguous decode");
  auto t = at::from_blob(m.data, {m.rows, m.cols, m.channels()}, at::kByte);
  return t.permute({2, 0, 1}).to(at::kFloat).div_(255.0).contiguous();
}

ImageFileDataset::ImageFileDataset(std::vector<std::pair<std::string, int64_t>> items,
                                   std::vector<std::string> class_names, std::string name, ImageFileOptions opts)
    : items_(std::move(items)), class_names_(std::move(class_names)), name_(std::move(name)), opts_(opts) {
  GRAFT_CHECK(opts_.channels == 0 || opts_.channels == 1 || opts_.channels == 3, name_, ": channels must be 0, 1 or 3");
}

Example ImageFileDataset::get(int64_t i) const {
  GRAFT_CHECK(i >= 0 && i < size(), name_, ": index ", i, " out of range");
  const auto& it = items_[static_cast<size_t>(i)];
  return {decode_image(it.first, opts_.channels), it.second};
}

std::vector<int64_t> ImageFileDataset::input_shape() const {
  if (shape_.empty() && !items_.empty()) {
    for (const auto& it : items_) {
      try {
        auto t = decode_image(it.first, opts_.channels);
        shape_.assign(t.sizes().begin(), t.sizes().end());
        break;
      } catch (const Error&) {
        if (!opts_.skip_bad) throw;
      }
    }
  }
  return shape_;
}

std::vector<int64_t> ImageFileDataset::labels() const {
  std::vector<int64_t> out;
  out.reserve(items_.size());
  for (const auto& it : items_) out.push_back(it.second);
  return out;
}

std::string ImageFileDataset::describe() const { return str(name_, " (", size(), " images)"); }

std::shared_ptr<ImageFileDataset> load_image_folder(const std::string& root, ImageFileOptions opts) {
  std::error_code ec;
  GRAFT_CHECK(fs::is_directory(root, ec), "image folder '", root,
              "' does not exist or is not a folder; it should hold one subfolder per class");
  std::vector<fs::path> classes;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) classes.push_back(e.path());
  std::sort(classes.begin(), classes.end());
  GRAFT_CHECK(!classes.empty(), "image folder '", root, "' has no class subfolders; put each class's images in its own subfolder");
  std::vector<std::pair<std::string, int64_t>> items;
  std::vector<std::string> names;
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(classes[c]))
      if (e.is_regular_file() && is_image_file(e.path())) files.push_back(e.path().string());
    GRAFT_CHECK(!files.empty(), "class folder '", classes[c].string(),
                "' holds no images (.png/.jpg/...); remove it or add images");
    std::sort(files.begin(), files.end());
    for (auto& f : files) items.emplace_back(std::move(f), static_cast<int64_t>(c));
    names.push_back(classes[c].filename().string());
  }
  return std::make_shared<ImageFileDataset>(std::move(items), std::move(names), "folder:" + root, opts);
}

std::shared_ptr<ImageFileDataset> load_list_file(const std::string& file, ImageFileOptions opts) {
  io::require_readable(file, "list file");
  std::ifstream in(file);
  auto base = fs::path(file).parent_path();
  std::vector<std::pair<std::string, std::string>> raw;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    auto hash = line.find('#');
    if (hash != std::string::npos) line = line.substr(0, hash);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t s = line.find_first_not_of(" \t");
    if (s == std::string::npos) continue;
    line = line.substr(s);
    auto sp = line.find_last_of(" \t");
    GRAFT_CHECK(sp != std::string::npos, file, ":", lineno, ": expected 'path label', got '", line, "'");
    std::string p = line.substr(0, sp), l = line.substr(sp + 1);
    while (!p.empty() && std::isspace(static_cast<unsigned char>(p.back()))) p.pop_back();
    fs::path fp(p);
    if (fp.is_relative()) fp = base / fp;
    raw.emplace_back(fp.string(), l);
  }
  GRAFT_CHECK(!raw.empty(), file, ": the list file has no 'path label' lines");
  bool numeric = std::all_of(raw.begin(), raw.end(), [](const auto& r) {
    return !r.second.empty() && r.second.find_first_not_of("0123456789") == std::string::npos;
  });
  std::vector<std::pair<std::string, int64_t>> items;
  std::vector<std::string> names;
  if (numeric) {
    int64_t k = 0;
    for (auto& r : raw) {
      items.emplace_back(r.first, std::stoll(r.second));
      k = std::max(k, items.back().second + 1);
    }
    for (int64_t c = 0; c < k; ++c) names.push_back(std::to_string(c));
  } else {
    std::set<std::string> s;
    for (auto& r : raw) s.insert(r.second);
    names.assign(s.begin(), s.end());
    std::map<std::string, int64_t> id;
    for (size_t c = 0; c < names.size(); ++c) id[names[c]] = static_cast<int64_t>(c);
    for (auto& r : raw) items.emplace_back(r.first, id[r.second]);
  }
  return std::make_shared<ImageFileDataset>(std::move(items), std::move(names), "list:" + file, opts);
}

DatasetPtr load_npy_dataset(const std::string& inputs, const std::string& labels, const std::string& name) {
  auto x = io::read_npy(inputs);
  GRAFT_CHECK(x.dim() >= 2, inputs, ": inputs must have shape (N, ...), got ", x.sizes());
  if (x.scalar_type() == at::kDouble) x = x.to(at::kFloat);
  GRAFT_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kByte, inputs,
              ": inputs must be float32 or uint8, got ", x.scalar_type(), "; convert with astype('float32')");
  if (x.scalar_type() == at::kFloat) {
    GRAFT_CHECK(at::isfinite(x).all().item<bool>(), inputs, ": inputs contain NaN or infinite values; clean them first");
  }
  at::Tensor y;
  if (labels.empty()) {
    y = at::full({x.size(0)}, kNoLabel, at::kLong);
  } else {
    y = io::read_npy(labels);
    GRAFT_CHECK(y.scalar_type() == at::kLong || y.scalar_type() == at::kInt || y.scalar_type() == at::kByte, labels,
                ": labels must be integers (int64), got ", y.scalar_type());
    GRAFT_CHECK(y.dim() == 1, labels, ": labels must have shape (N,), got ", y.sizes());
    GRAFT_CHECK(y.size(0) == x.size(0), name, ": ", y.size(0), " labels in ", labels, " but ", x.size(0),
                " inputs in ", inputs, "; the counts must match");
    y = y.to(at::kLong);
  }
  std::vector<std::string> names;
  if (y.numel() > 0 && y.max().item<int64_t>() >= 0)
    for (int64_t c = 0; c <= y.max().item<int64_t>(); ++c) names.push_back(std::to_string(c));
  return std::make_shared<TensorDataset>(x, y, names, name);
}

}  // namespace graft::data
