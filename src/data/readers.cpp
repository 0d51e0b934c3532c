#include "graft/data/readers.h"

#include <ATen/ATen.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "graft/core/check.h"
#include "graft/core/parse.h"
#include "graft/core/files.h"
#include "graft/io/npy.h"

namespace fs = std::filesystem;

namespace graft::data {
namespace {

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

namespace {

// A gzip or raw IDX file read in pieces, so nothing is allocated before the header's
// sizes have been checked against the file.
class IdxSource {
 public:
  explicit IdxSource(const std::string& path) : path_(path) {
    graft::require_readable(path, "IDX file");
    std::error_code ec;
    GRAFT_CHECK(!fs::is_directory(path, ec), "IDX file '", path, "' is a folder; give the file itself");
    file_size_ = static_cast<uint64_t>(fs::file_size(path, ec));
    GRAFT_CHECK(!ec, path, ": cannot read its size (", ec.message(), ")");
    std::ifstream probe(path, std::ios::binary);
    unsigned char m[2] = {0, 0};
    probe.read(reinterpret_cast<char*>(m), 2);
    gz_ = probe.gcount() == 2 && m[0] == 0x1f && m[1] == 0x8b;
    f_ = gzopen(path.c_str(), "rb");  // also reads uncompressed files transparently
    GRAFT_CHECK(f_, path, ": cannot open");
  }
  ~IdxSource() { gzclose(f_); }
  IdxSource(const IdxSource&) = delete;
  IdxSource& operator=(const IdxSource&) = delete;
  // Reads up to n bytes; returns how many were read. Throws on a corrupt stream.
  size_t read(void* dst, size_t n) {
    size_t got = 0;
    auto* p = static_cast<char*>(dst);
    while (got < n) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
      int r = gzread(f_, p + got, chunk);
      if (r < 0) {
        int err = 0;
        const char* msg = gzerror(f_, &err);
        GRAFT_FAIL(path_, ": corrupt or truncated compressed file (", msg ? msg : "", ")");
      }
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    return got;
  }
  bool gz() const { return gz_; }
  uint64_t file_size() const { return file_size_; }

 private:
  std::string path_;
  gzFile f_ = nullptr;
  bool gz_ = false;
  uint64_t file_size_ = 0;
};

}  // namespace

at::Tensor read_idx(const std::string& path) {
  IdxSource src(path);
  unsigned char p[4 + 4 * 4];
  GRAFT_CHECK(src.read(p, 4) == 4, path, ": too short to be an IDX file");
  GRAFT_CHECK(p[0] == 0 && p[1] == 0, path, ": wrong IDX magic number (first bytes ", int(p[0]), " ", int(p[1]),
              ", expected 0 0); is this an MNIST-style IDX file?");
  int type = p[2], ndim = p[3];
  GRAFT_CHECK(type == 0x08 || type == 0x0D, path, ": IDX element type 0x", std::hex, type, std::dec,
              " is not supported; expected unsigned byte (0x08) or float (0x0D)");
  GRAFT_CHECK(ndim >= 1 && ndim <= 4, path, ": IDX file with ", ndim, " dimensions; expected 1 to 4");
  size_t header = 4 + 4 * static_cast<size_t>(ndim);
  GRAFT_CHECK(src.read(p + 4, header - 4) == header - 4, path, ": truncated IDX header");
  std::vector<int64_t> dims;
  uint64_t esize = type == 0x08 ? 1 : 4, bytes = esize;
  bool overflow = false;
  for (int d = 0; d < ndim; ++d) {
    dims.push_back(be32(p + 4 + 4 * d));
    overflow = overflow || __builtin_mul_overflow(bytes, static_cast<uint64_t>(dims.back()), &bytes);
  }
  GRAFT_CHECK(!overflow, path, ": IDX header declares sizes ", at::IntArrayRef(dims),
              " whose product overflows; the file is corrupt");
  if (!src.gz()) {
    GRAFT_CHECK(src.file_size() == header + bytes, path, ": IDX sizes are inconsistent: the header ",
                at::IntArrayRef(dims), " promises ", bytes, " bytes of data but the file holds ",
                src.file_size() < header ? 0 : src.file_size() - header, " (truncated or corrupt file)");
  } else {
    // Deflate expands at most about 1032:1, so a larger promise is a corrupt header.
    GRAFT_CHECK(bytes / 1032 <= src.file_size(), path, ": the IDX header ", at::IntArrayRef(dims), " promises ",
                bytes, " bytes, more than the ", src.file_size(), "-byte compressed file can hold (corrupt file)");
  }
  auto t = at::empty(dims, type == 0x08 ? at::kByte : at::kFloat);
  size_t got = src.read(t.data_ptr(), bytes);
  unsigned char extra;
  bool more = src.read(&extra, 1) == 1;
  GRAFT_CHECK(got == bytes && !more, path, ": IDX sizes are inconsistent: the header promises ", bytes,
              " bytes of data but the file holds ", more ? "more" : std::to_string(got), " (truncated or corrupt file)");
  if (type == 0x0D) {  // big-endian floats
    auto* d = static_cast<unsigned char*>(t.data_ptr());
    for (uint64_t i = 0; i < bytes; i += 4) {
      std::swap(d[i], d[i + 3]);
      std::swap(d[i + 1], d[i + 2]);
    }
  }
  return t;
}

void write_idx(const std::string& path, const at::Tensor& t) {
  auto c = t.contiguous();
  GRAFT_CHECK(c.scalar_type() == at::kByte, "write_idx: only uint8 tensors are written, got ", c.scalar_type());
  GRAFT_CHECK(c.dim() >= 1 && c.dim() <= 4, "write_idx: 1 to 4 dimensions, got ", c.dim());
  graft::write_atomically(path, [&](const std::string& tmp) {
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
  for (int64_t d = 1; d < x.dim(); ++d)
    GRAFT_CHECK(x.size(d) > 0, images, ": images of shape ", x.sizes().slice(1),
                " have a dimension of size 0; the file is corrupt or not an image IDX file");
  check_labels(y, labels);
  x = x.dim() == 3 ? x.unsqueeze(1) : x.permute({0, 3, 1, 2}).contiguous();
  return std::make_shared<TensorDataset>(x, y.to(at::kLong), std::move(class_names), name);
}

namespace {

std::atomic<int64_t> g_max_pixels{kDefaultMaxPixels};

uint32_t le16(const unsigned char* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8); }
uint32_t le32(const unsigned char* p) { return le16(p) | (le16(p + 2) << 16); }
uint32_t be16(const unsigned char* p) { return (uint32_t(p[0]) << 8) | uint32_t(p[1]); }

bool jpeg_size(const unsigned char* d, size_t n, int64_t& w, int64_t& h) {
  size_t i = 2;
  while (i + 4 <= n) {
    if (d[i] != 0xFF) return false;
    unsigned char m = d[i + 1];
    if (m == 0xFF) { ++i; continue; }  // fill byte
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD9)) { i += 2; continue; }  // markers without a length
    size_t len = be16(d + i + 2);
    bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) {
      if (i + 9 > n) return false;
      h = be16(d + i + 5);
      w = be16(d + i + 7);
      return true;
    }
    if (len < 2) return false;
    i += 2 + len;
  }
  return false;
}

bool pnm_size(const unsigned char* d, size_t n, int64_t& w, int64_t& h) {
  size_t i = 2;
  int64_t v[2];
  for (int k = 0; k < 2; ++k) {
    while (i < n && (std::isspace(d[i]) || d[i] == '#')) {
      if (d[i] == '#') while (i < n && d[i] != '\n') ++i;
      else ++i;
    }
    if (i >= n || !std::isdigit(d[i])) return false;
    v[k] = 0;
    while (i < n && std::isdigit(d[i]) && v[k] < (int64_t{1} << 40)) v[k] = v[k] * 10 + (d[i++] - '0');
  }
  w = v[0];
  h = v[1];
  return true;
}

bool tiff_size(const unsigned char* d, size_t n, int64_t& w, int64_t& h) {
  bool le = d[0] == 'I';
  auto u16 = [&](size_t o) { return le ? le16(d + o) : be16(d + o); };
  auto u32 = [&](size_t o) { return le ? le32(d + o) : (be16(d + o) << 16) | be16(d + o + 2); };
  size_t ifd = u32(4);
  if (ifd + 2 > n) return false;
  size_t count = u16(ifd);
  w = h = -1;
  for (size_t e = 0; e < count && ifd + 2 + 12 * (e + 1) <= n; ++e) {
    size_t o = ifd + 2 + 12 * e;
    unsigned tag = u16(o), type = u16(o + 2);
    int64_t val = type == 3 ? u16(o + 8) : type == 4 ? u32(o + 8) : -1;
    if (tag == 256) w = val;
    if (tag == 257) h = val;
  }
  return w >= 0 && h >= 0;
}

}  // namespace

void set_max_pixels(int64_t n) {
  GRAFT_CHECK(n > 0, "--max-pixels must be positive, got ", n);
  g_max_pixels = n;
}
int64_t max_pixels() { return g_max_pixels; }

bool image_header_size(const unsigned char* d, size_t n, int64_t& w, int64_t& h) {
  if (n >= 24 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) {
    w = be32(d + 16);
    h = be32(d + 20);
    return true;
  }
  if (n >= 4 && d[0] == 0xFF && d[1] == 0xD8) return jpeg_size(d, n, w, h);
  if (n >= 26 && d[0] == 'B' && d[1] == 'M') {
    bool core = le32(d + 14) == 12;
    w = core ? le16(d + 18) : static_cast<int32_t>(le32(d + 18));
    h = core ? le16(d + 20) : static_cast<int32_t>(le32(d + 22));
    w = std::abs(w);
    h = std::abs(h);
    return true;
  }
  if (n >= 3 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6') return pnm_size(d, n, w, h);
  if (n >= 32 && std::memcmp(d, "RIFF", 4) == 0 && std::memcmp(d + 8, "WEBP", 4) == 0) {
    if (std::memcmp(d + 12, "VP8X", 4) == 0) {
      w = 1 + int64_t(le32(d + 24) & 0xFFFFFF);
      h = 1 + int64_t(le32(d + 27) & 0xFFFFFF);
      return true;
    }
    if (std::memcmp(d + 12, "VP8L", 4) == 0) {
      uint32_t b = le32(d + 21);
      w = 1 + (b & 0x3FFF);
      h = 1 + ((b >> 14) & 0x3FFF);
      return true;
    }
    if (std::memcmp(d + 12, "VP8 ", 4) == 0) {
      w = le16(d + 26) & 0x3FFF;
      h = le16(d + 28) & 0x3FFF;
      return true;
    }
    return false;
  }
  if (n >= 8 && (std::memcmp(d, "II*\0", 4) == 0 || std::memcmp(d, "MM\0*", 4) == 0)) return tiff_size(d, n, w, h);
  return false;
}

at::Tensor decode_image(const std::string& path, int channels) {
  return decode_image(path, ImageFileOptions().channels_(channels));
}

at::Tensor decode_image(const std::string& path, const ImageFileOptions& opts) {
  std::error_code ec;
  GRAFT_CHECK(!fs::is_directory(path, ec), "image '", path, "' is a folder, not an image file");
  std::ifstream f(path, std::ios::binary);
  GRAFT_CHECK(f, "image '", path, "' cannot be opened; check the path and permissions");
  std::vector<unsigned char> buf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  GRAFT_CHECK(!buf.empty(), "image '", path, "' is empty");
  const int64_t cap = opts.max_pixels > 0 ? opts.max_pixels : max_pixels();
  int64_t w = 0, h = 0;
  bool known = image_header_size(buf.data(), buf.size(), w, h);
  GRAFT_CHECK(!known || h == 0 || w <= cap / h, "image '", path, "' is ", w, "x", h, " = ",
              static_cast<uint64_t>(w) * static_cast<uint64_t>(h), " pixels, above the limit of ", cap,
              "; shrink it or raise --max-pixels");
  // Formats whose header we do not read fall back on OpenCV's own limit, set to the
  // same cap the first time an image is decoded.
  static const bool env_set = [cap] {
    return ::setenv("OPENCV_IO_MAX_IMAGE_PIXELS", std::to_string(cap).c_str(), /*overwrite=*/0) == 0;
  }();
  (void)env_set;
  int reduce = 1;
  if (known && opts.decode_h > 0 && opts.decode_w > 0)
    for (int k : {8, 4, 2})
      if (h / k >= opts.decode_h && w / k >= opts.decode_w) { reduce = k; break; }
  int flag = opts.channels == 1 ? cv::IMREAD_GRAYSCALE : opts.channels == 3 ? cv::IMREAD_COLOR : cv::IMREAD_UNCHANGED;
  if (reduce > 1 && opts.channels != 0) {
    const int gray[] = {0, 0, cv::IMREAD_REDUCED_GRAYSCALE_2, 0, cv::IMREAD_REDUCED_GRAYSCALE_4, 0, 0, 0,
                        cv::IMREAD_REDUCED_GRAYSCALE_8};
    const int color[] = {0, 0, cv::IMREAD_REDUCED_COLOR_2, 0, cv::IMREAD_REDUCED_COLOR_4, 0, 0, 0,
                         cv::IMREAD_REDUCED_COLOR_8};
    flag = opts.channels == 1 ? gray[reduce] : color[reduce];
  }
  cv::Mat m;
  try {
    m = cv::imdecode(buf, flag);
  } catch (const cv::Exception& e) {
    GRAFT_FAIL("image '", path, "' cannot be decoded (", e.what(), ")");
  }
  GRAFT_CHECK(!m.empty(), "image '", path, "' cannot be decoded: corrupt, truncated, not an image or above ",
              "the pixel limit");
  buf = {};
  if (m.depth() != CV_8U) m.convertTo(m, CV_8U, m.depth() == CV_16U ? 1.0 / 257 : 1.0);
  if (reduce > 1 && (m.cols > w / reduce || m.rows > h / reduce))  // formats decoded at full size
    cv::resize(cv::Mat(m), m, cv::Size(static_cast<int>(w / reduce), static_cast<int>(h / reduce)), 0, 0,
               cv::INTER_AREA);
  // Plane by plane into a (C,H,W) float tensor, BGR(A) to RGB, alpha dropped: peak
  // memory is the 8-bit image plus the float output, not several float copies.
  const int src_c = m.channels(), out_c = src_c == 4 ? 3 : src_c;
  auto t = at::empty({out_c, m.rows, m.cols}, at::kFloat);
  cv::Mat plane;
  for (int c = 0; c < out_c; ++c) {
    cv::extractChannel(m, plane, src_c >= 3 ? 2 - c : c);
    cv::Mat dst(m.rows, m.cols, CV_32F, t[c].data_ptr<float>());
    plane.convertTo(dst, CV_32F);
  }
  return t.div_(255.0);
}

ImageFileDataset::ImageFileDataset(std::vector<std::pair<std::string, int64_t>> items,
                                   std::vector<std::string> class_names, std::string name, ImageFileOptions opts)
    : items_(std::move(items)), class_names_(std::move(class_names)), name_(std::move(name)), opts_(opts) {
  GRAFT_CHECK(opts_.channels == 0 || opts_.channels == 1 || opts_.channels == 3, name_, ": channels must be 0, 1 or 3");
}

Example ImageFileDataset::get(int64_t i) const {
  GRAFT_CHECK(i >= 0 && i < size(), name_, ": index ", i, " out of range");
  const auto& it = items_[static_cast<size_t>(i)];
  return {decode_image(it.first, opts_), it.second};
}

std::vector<int64_t> ImageFileDataset::input_shape() const {
  if (shape_.empty() && !items_.empty()) {
    for (const auto& it : items_) {
      try {
        auto t = decode_image(it.first, opts_);
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

ListFile parse_list_file(const std::string& text, const std::string& file) {
  auto base = fs::path(file).parent_path();
  std::vector<std::pair<std::string, std::string>> raw;
  std::istringstream in(text);
  std::string line;
  int64_t lineno = 0;
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
  ListFile out;
  if (numeric) {
    std::vector<int64_t> labels;
    for (auto& r : raw) {
      labels.push_back(parse_int(r.second, 0, kMaxClasses - 1, str(file, ": label")));
      out.items.emplace_back(r.first, labels.back());
    }
    int64_t k = check_labels(at::tensor(labels, at::kLong), file);
    for (int64_t c = 0; c < k; ++c) out.class_names.push_back(std::to_string(c));
  } else {
    std::set<std::string> s;
    for (auto& r : raw) s.insert(r.second);
    out.class_names.assign(s.begin(), s.end());
    GRAFT_CHECK(static_cast<int64_t>(out.class_names.size()) <= kMaxClasses, file, ": ", out.class_names.size(),
                " class names, more than the limit of ", kMaxClasses);
    std::map<std::string, int64_t> id;
    for (size_t c = 0; c < out.class_names.size(); ++c) id[out.class_names[c]] = static_cast<int64_t>(c);
    for (auto& r : raw) out.items.emplace_back(r.first, id[r.second]);
  }
  return out;
}

std::shared_ptr<ImageFileDataset> load_list_file(const std::string& file, ImageFileOptions opts) {
  graft::require_readable(file, "list file");
  std::error_code ec;
  GRAFT_CHECK(!fs::is_directory(file, ec), "list file '", file, "' is a folder; for one subfolder per class use folder:",
              file);
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto parsed = parse_list_file(text, file);
  return std::make_shared<ImageFileDataset>(std::move(parsed.items), std::move(parsed.class_names), "list:" + file,
                                            opts);
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
  int64_t k = check_labels(y, labels.empty() ? inputs : labels);
  for (int64_t c = 0; c < k; ++c) names.push_back(std::to_string(c));
  return std::make_shared<TensorDataset>(x, y, names, name);
}

}  // namespace graft::data
