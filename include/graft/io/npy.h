#pragma once
/// Reading and writing NumPy .npy files (format 1.0 and 2.0, little-endian, C order).
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace graft::io {

/// Reads a .npy file into a CPU tensor of the matching dtype.
/// Supports float32, float64, int64, int32 and uint8 ('<f4','<f8','<i8','<i4','|u1').
/// Throws graft::Error naming the file for a missing/truncated file, a bad header,
/// Fortran order or an unsupported dtype. The header's shape is checked against the
/// file's size before anything is allocated (trailing bytes after the data are ignored).
at::Tensor read_npy(const std::string& path);

/// Parses .npy bytes already in memory (same checks as read_npy; `name` names the
/// source in errors). The declared shape is checked against size before allocating.
at::Tensor read_npy_buffer(const void* data, size_t size, const std::string& name);

/// Writes a CPU tensor (any supported dtype) to path atomically (temp file + rename).
void write_npy(const std::string& path, const at::Tensor& t);

/// Appends rows to a .npy file without holding them all in memory: the header is
/// rewritten with the final row count by close(), then the file is renamed into
/// place. Until close() succeeds nothing exists at path (no half-written output).
class NpyWriter {
 public:
  /// Requires: row_shape is the shape of one row (may be empty for scalars);
  /// dtype is one of the supported ones.
  NpyWriter(std::string path, std::vector<int64_t> row_shape, at::ScalarType dtype);
  ~NpyWriter();
  NpyWriter(const NpyWriter&) = delete;
  NpyWriter& operator=(const NpyWriter&) = delete;

  /// Shape: rows is (N, *row_shape) with the writer's dtype.
  void append(const at::Tensor& rows);
  /// Finalises the header and renames the temp file to path.
  void close();
  int64_t rows() const { return rows_; }

 private:
  std::string path_, tmp_;
  std::vector<int64_t> row_shape_;
  at::ScalarType dtype_;
  std::ofstream out_;
  int64_t rows_ = 0;
  bool closed_ = false;
};

}  // namespace graft::io
