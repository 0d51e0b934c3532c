#include "graft/io/npy.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <filesystem>

#include "graft/core/check.h"
#include "graft/core/parse.h"

namespace graft::io {
namespace {

std::string descr_of(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "<f4";
    case at::kDouble: return "<f8";
    case at::kLong: return "<i8";
    case at::kInt: return "<i4";
    case at::kByte: return "|u1";
    default: GRAFT_FAIL("npy: unsupported dtype ", t, "; expected float32, float64, int64, int32 or uint8");
  }
}

at::ScalarType dtype_of(const std::string& d, const std::string& path) {
  if (d == "<f4") return at::kFloat;
  if (d == "<f8") return at::kDouble;
  if (d == "<i8") return at::kLong;
  if (d == "<i4") return at::kInt;
  if (d == "|u1" || d == "<u1") return at::kByte;
  GRAFT_FAIL(path, ": unsupported .npy dtype '", d,
             "'; expected <f4, <f8, <i8, <i4 or |u1 (convert with numpy's astype)");
}

std::string header_text(const std::string& descr, const std::vector<int64_t>& shape) {
  std::string s = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) {
    s += std::to_string(shape[i]);
    if (shape.size() == 1 || i + 1 < shape.size()) s += ", ";
  }
  s += "), }";
  return s;
}

// Header padded so that data starts at a multiple of 64; extra spaces leave room
// for the row count to grow when NpyWriter rewrites it in place.
std::string full_header(const std::string& descr, const std::vector<int64_t>& shape, size_t min_len = 0) {
  std::string h = header_text(descr, shape);
  size_t total = 10 + h.size() + 1;
  size_t want = std::max(total, min_len);
  size_t padded = (want + 63) / 64 * 64;
  h.append(padded - total, ' ');
  h += '\n';
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  uint16_t len = static_cast<uint16_t>(h.size());
  out += char(len & 0xff);
  out += char(len >> 8);
  return out + h;
}

std::string tmp_name(const std::string& path) {
  return path + ".tmp." + std::to_string(::getpid());
}

}  // namespace

namespace {

// Header length from the 10- or 12-byte preamble; 0 when more bytes are needed.
size_t preamble(const unsigned char* d, size_t n, const std::string& path, size_t& hlen) {
  GRAFT_CHECK(n >= 8 && std::memcmp(d, "\x93NUMPY", 6) == 0, path,
              ": not a .npy file (bad magic); save arrays with numpy.save");
  int major = d[6];
  GRAFT_CHECK(major >= 1 && major <= 3, path, ": unsupported .npy format version ", major);
  size_t pre = major == 1 ? 10 : 12;
  GRAFT_CHECK(n >= pre, path, ": truncated .npy header");
  hlen = major == 1 ? size_t(d[8]) | (size_t(d[9]) << 8)
                    : size_t(d[8]) | (size_t(d[9]) << 8) | (size_t(d[10]) << 16) | (size_t(d[11]) << 24);
  GRAFT_CHECK(hlen < (1u << 24), path, ": .npy header of ", hlen, " bytes is implausible (corrupt file)");
  return pre;
}

struct Header {
  at::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t bytes = 0;  // of data after the header
};

Header parse_header(const std::string& h, const std::string& path) {
  auto field = [&](const std::string& key) -> std::string {
    auto k = h.find("'" + key + "'");
    GRAFT_CHECK(k != std::string::npos, path, ": .npy header lacks '", key, "'");
    auto c = h.find(':', k);
    GRAFT_CHECK(c != std::string::npos, path, ": malformed .npy header");
    return h.substr(c + 1);
  };
  Header out;
  std::string d = field("descr");
  auto q1 = d.find('\'');
  auto q2 = q1 == std::string::npos ? q1 : d.find('\'', q1 + 1);
  GRAFT_CHECK(q1 != std::string::npos && q2 != std::string::npos, path, ": malformed dtype in .npy header");
  out.dtype = dtype_of(d.substr(q1 + 1, q2 - q1 - 1), path);
  std::string fo = field("fortran_order");
  GRAFT_CHECK(fo.find("False") < fo.find_first_of(",}"), path,
              ": Fortran-ordered .npy is not supported; save with numpy.ascontiguousarray");
  std::string sh = field("shape");
  auto p1 = sh.find('('), p2 = sh.find(')');
  GRAFT_CHECK(p1 != std::string::npos && p2 != std::string::npos && p1 < p2, path,
              ": malformed shape in .npy header");
  std::string dims = sh.substr(p1 + 1, p2 - p1 - 1);
  out.bytes = static_cast<uint64_t>(c10::elementSize(out.dtype));
  size_t pos = 0;
  while (pos < dims.size()) {
    while (pos < dims.size() && (dims[pos] == ' ' || dims[pos] == ',')) ++pos;
    if (pos >= dims.size()) break;
    size_t end = dims.find_first_of(", ", pos);
    std::string tok = dims.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (tok.size() > 1 && tok.back() == 'L') tok.pop_back();  // Python 2 longs
    GRAFT_CHECK(!tok.empty() && tok.find_first_not_of("0123456789") == std::string::npos, path,
                ": malformed .npy shape '(", dims, ")': '", tok, "' is not a size (corrupt header)");
    int64_t v = parse_int(tok, 0, INT64_MAX, str(path, ": .npy shape"));
    out.shape.push_back(v);
    GRAFT_CHECK(out.shape.size() <= 16, path, ": .npy shape with more than 16 dimensions (corrupt header)");
    GRAFT_CHECK(!__builtin_mul_overflow(out.bytes, static_cast<uint64_t>(v), &out.bytes), path, ": .npy shape (",
                dims, ") overflows (corrupt header)");
    pos = end == std::string::npos ? dims.size() : end;
  }
  return out;
}

void check_data_size(const Header& h, uint64_t available, const std::string& path) {
  GRAFT_CHECK(h.bytes <= available, path, ": the .npy header declares shape ", at::IntArrayRef(h.shape), " of ",
              h.dtype, " (", h.bytes, " bytes) but the file holds ", available, " bytes of data (truncated or corrupt)");
}

}  // namespace

at::Tensor read_npy(const std::string& path) {
  std::error_code ec;
  GRAFT_CHECK(!std::filesystem::is_directory(path, ec), ".npy file '", path, "' is a folder; give the file itself");
  std::ifstream in(path, std::ios::binary);
  GRAFT_CHECK(in, path, ": cannot open .npy file (check the path and permissions)");
  uint64_t file_size = std::filesystem::file_size(path, ec);
  GRAFT_CHECK(!ec, path, ": cannot read its size (", ec.message(), ")");
  unsigned char pre[12] = {};
  in.read(reinterpret_cast<char*>(pre), 12);
  size_t hlen = 0;
  size_t pre_len = preamble(pre, static_cast<size_t>(in.gcount()), path, hlen);
  GRAFT_CHECK(pre_len + hlen <= file_size, path, ": truncated .npy header");
  in.clear();
  in.seekg(static_cast<std::streamoff>(pre_len));
  std::string h(hlen, '\0');
  in.read(h.data(), static_cast<std::streamsize>(hlen));
  GRAFT_CHECK(in, path, ": truncated .npy header");
  auto header = parse_header(h, path);
  check_data_size(header, file_size - pre_len - hlen, path);
  auto t = at::empty(header.shape, at::TensorOptions().dtype(header.dtype));
  in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(header.bytes));
  GRAFT_CHECK(static_cast<uint64_t>(in.gcount()) == header.bytes, path, ": truncated .npy data (expected ",
              header.bytes, " bytes, got ", in.gcount(), ")");
  return t;
}

at::Tensor read_npy_buffer(const void* data, size_t size, const std::string& name) {
  auto d = static_cast<const unsigned char*>(data);
  size_t hlen = 0;
  size_t pre_len = preamble(d, size, name, hlen);
  GRAFT_CHECK(pre_len + hlen <= size, name, ": truncated .npy header");
  auto header = parse_header(std::string(reinterpret_cast<const char*>(d) + pre_len, hlen), name);
  check_data_size(header, size - pre_len - hlen, name);
  auto t = at::empty(header.shape, at::TensorOptions().dtype(header.dtype));
  if (header.bytes) std::memcpy(t.data_ptr(), d + pre_len + hlen, header.bytes);
  return t;
}

void write_npy(const std::string& path, const at::Tensor& t) {
  auto c = t.detach().to(at::kCPU).contiguous();
  std::vector<int64_t> row(c.sizes().begin() + (c.dim() > 0 ? 1 : 0), c.sizes().end());
  GRAFT_CHECK(c.dim() > 0, "write_npy: scalar tensors are not supported (", path, ")");
  NpyWriter w(path, row, c.scalar_type());
  w.append(c);
  w.close();
}

NpyWriter::NpyWriter(std::string path, std::vector<int64_t> row_shape, at::ScalarType dtype)
    : path_(std::move(path)), tmp_(tmp_name(path_)), row_shape_(std::move(row_shape)), dtype_(dtype) {
  descr_of(dtype_);  // validates
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  GRAFT_CHECK(out_, path_, ": cannot write (check the folder exists and is writable)");
  std::vector<int64_t> shape{0};
  shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
  // Reserve room for a 19-digit row count.
  auto h = full_header(descr_of(dtype_), shape, 10 + header_text(descr_of(dtype_), shape).size() + 20);
  out_.write(h.data(), static_cast<std::streamsize>(h.size()));
}

NpyWriter::~NpyWriter() {
  if (!closed_) {
    out_.close();
    std::remove(tmp_.c_str());
  }
}

void NpyWriter::append(const at::Tensor& rows) {
  GRAFT_CHECK(!closed_, path_, ": append after close");
  auto c = rows.detach().to(at::kCPU).contiguous();
  GRAFT_CHECK(c.scalar_type() == dtype_, path_, ": rows of dtype ", c.scalar_type(), ", expected ", dtype_);
  GRAFT_CHECK(c.dim() == static_cast<int64_t>(row_shape_.size()) + 1 &&
                  std::equal(row_shape_.begin(), row_shape_.end(), c.sizes().begin() + 1),
              path_, ": rows of shape ", c.sizes(), " do not match the row shape ", at::IntArrayRef(row_shape_));
  out_.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
  GRAFT_CHECK(out_, path_, ": write failed (disk full?)");
  rows_ += c.size(0);
}

void NpyWriter::close() {
  if (closed_) return;
  std::vector<int64_t> shape{rows_};
  shape.insert(shape.end(), row_shape_.begin(), row_shape_.end());
  std::vector<int64_t> zero{0};
  zero.insert(zero.end(), row_shape_.begin(), row_shape_.end());
  auto first = full_header(descr_of(dtype_), zero, 10 + header_text(descr_of(dtype_), zero).size() + 20);
  auto h = full_header(descr_of(dtype_), shape, first.size() - 1);
  GRAFT_CHECK(h.size() == first.size(), path_, ": internal error: header grew");
  out_.seekp(0);
  out_.write(h.data(), static_cast<std::streamsize>(h.size()));
  out_.close();
  GRAFT_CHECK(!out_.fail(), path_, ": write failed (disk full?)");
  std::filesystem::rename(tmp_, path_);
  closed_ = true;
}

}  // namespace graft::io
