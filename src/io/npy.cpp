#include "graft/io/npy.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <cstring>
#include <unistd.h>
#include <filesystem>

#include "graft/core/check.h"

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

at::Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  GRAFT_CHECK(in, path, ": cannot open .npy file (check the path and permissions)");
  char magic[8];
  in.read(magic, 8);
  GRAFT_CHECK(in && std::memcmp(magic, "\x93NUMPY", 6) == 0, path,
              ": not a .npy file (bad magic); save arrays with numpy.save");
  uint32_t hlen = 0;
  int major = static_cast<unsigned char>(magic[6]);
  if (major == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    hlen = b[0] | (b[1] << 8);
  } else if (major == 2 || major == 3) {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t(b[3]) << 24);
  } else {
    GRAFT_FAIL(path, ": unsupported .npy format version ", major);
  }
  GRAFT_CHECK(in && hlen < (1u << 24), path, ": truncated .npy header");
  std::string h(hlen, '\0');
  in.read(h.data(), hlen);
  GRAFT_CHECK(in, path, ": truncated .npy header");

  auto field = [&](const std::string& key) -> std::string {
    auto k = h.find("'" + key + "'");
    GRAFT_CHECK(k != std::string::npos, path, ": .npy header lacks '", key, "'");
    auto c = h.find(':', k);
    GRAFT_CHECK(c != std::string::npos, path, ": malformed .npy header");
    return h.substr(c + 1);
  };
  std::string d = field("descr");
  auto q1 = d.find('\'');
  auto q2 = d.find('\'', q1 + 1);
  GRAFT_CHECK(q1 != std::string::npos && q2 != std::string::npos, path, ": malformed dtype in .npy header");
  auto dtype = dtype_of(d.substr(q1 + 1, q2 - q1 - 1), path);
  std::string fo = field("fortran_order");
  GRAFT_CHECK(fo.find("False") < fo.find_first_of(",}"), path,
              ": Fortran-ordered .npy is not supported; save with numpy.ascontiguousarray");
  std::string sh = field("shape");
  auto p1 = sh.find('('), p2 = sh.find(')');
  GRAFT_CHECK(p1 != std::string::npos && p2 != std::string::npos, path, ": malformed shape in .npy header");
  std::vector<int64_t> shape;
  std::string dims = sh.substr(p1 + 1, p2 - p1 - 1);
  size_t pos = 0;
  while (pos < dims.size()) {
    while (pos < dims.size() && (dims[pos] == ' ' || dims[pos] == ',')) ++pos;
    if (pos >= dims.size()) break;
    size_t used = 0;
    long long v = std::stoll(dims.substr(pos), &used);
    GRAFT_CHECK(v >= 0, path, ": negative dimension in .npy shape");
    shape.push_back(v);
    pos += used;
  }
  auto t = at::empty(shape, at::TensorOptions().dtype(dtype));
  size_t bytes = t.numel() * t.element_size();
  in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes));
  GRAFT_CHECK(in.gcount() == static_cast<std::streamsize>(bytes), path, ": truncated .npy data (expected ",
              bytes, " bytes, got ", in.gcount(), ")");
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
