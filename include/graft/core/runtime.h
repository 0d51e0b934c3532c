#pragma once
/// Process-wide runtime set-up: BLAS detection, thread counts, devices, seeding.
#include <c10/core/Device.h>

#include <cstdint>
#include <string>

namespace graft {

/// Which BLAS library resolves the Fortran symbol sgemm_ (the one libtorch calls).
struct BlasInfo {
  std::string path;    ///< resolved file of the library providing sgemm_, "" if none found
  std::string vendor;  ///< "openblas", "blis", "mkl", "atlas", "reference" or "unknown"
};

/// Classifies a BLAS library by its resolved path (pure function, testable).
/// Debian installs the reference BLAS under .../blas/libblas.so.3 and OpenBLAS
/// under .../openblas-*/libblas.so.3.
std::string classify_blas_path(const std::string& resolved_path);

/// Looks up sgemm_ in the running process and classifies its library.
BlasInfo detect_blas();

/// Prints one warning to stderr (once per process) when libtorch runs on the
/// reference BLAS, naming the Debian package that fixes it. Returns true if it warned.
bool warn_if_reference_blas();

/// Keeps large freed blocks in the heap for reuse instead of returning them to the
/// system: glibc otherwise serves each activation buffer above its mmap threshold
/// with fresh, zero-filled pages, which here made training steps up to 4x slower
/// (page-fault time). Raises M_MMAP_THRESHOLD to its maximum (32 MiB) and the trim
/// threshold to 1 GiB. The CLI calls it at start-up; library users may too.
/// Process-wide; returns false where glibc refuses the settings.
bool tune_allocator();

/// Parses "cpu", "cuda" or "cuda:N". Throws graft::Error for other strings and for
/// cuda when this libtorch has no CUDA or no GPU is visible.
c10::Device parse_device(const std::string& s);

/// Sets libtorch's intra-op threads (0 = leave libtorch's default).
void set_threads(int n);

/// Seeds libtorch's default generators (CPU and, when present, CUDA).
void seed_everything(uint64_t seed);

/// A duration for progress lines: "42 s", "3 min 05 s", "1 h 02 min".
std::string format_duration(double seconds);

}  // namespace graft
