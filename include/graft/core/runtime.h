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
/// (page-fault time). Raises M_MMAP_THRESHOLD to its maximum (32 MiB), the trim
/// threshold to 1 GiB, and sets M_MMAP_MAX to 0 so that blocks above 32 MiB (a 224x224
/// photo batch's first activations) are reused from the heap as well: 3-6% off a ResNet-18
/// fine-tuning run on 2 cores, peak memory unchanged (docs/RESULTS.md). glibc still maps
/// memory when the heap cannot grow. The CLI calls it at start-up; library users may too.
/// Process-wide; returns false where glibc refuses the settings.
bool tune_allocator();

/// Parses "cpu", "cuda" or "cuda:N". Throws graft::Error for other strings and for
/// cuda when this libtorch has no CUDA or no GPU is visible.
c10::Device parse_device(const std::string& s);

/// Sets libtorch's intra-op threads (0 = leave libtorch's default).
void set_threads(int n);

/// Seeds libtorch's default generators (CPU and, when present, CUDA).
void seed_everything(uint64_t seed);

/// The batch size used when none is given (`--batch-size` left at 0): `small`, the default
/// for small inputs (28x28 digits, 64x64 RGB), halved until one batch holds at most 2^23
/// input values (32 MiB of float32) for training, 2^21 for inference, never below 8.
/// Training on 224x224 RGB: 32 (what a PyTorch user would pick, half the activation memory
/// of 64); 299x299: 16. Inference on 224x224: 8, as fast as 32 here (ResNet-18, 2 threads)
/// with 0.33 GiB less peak memory. It depends on the input size only, so a run replays
/// identically on any machine.
int64_t default_batch_size(int64_t values_per_example, int64_t small, bool inference = false);

/// Loader threads used when none are given (`--workers` left at -1): a quarter of the cores,
/// at most 8 (0 below 4 cores: the training or extracting thread decodes itself). The loader
/// sits beside libtorch's compute threads, which take every core; on 2 cores a decoding
/// thread only competes with them: fine-tuning ResNet-18 on 224x224 JPEGs took 15.8-16.3 s
/// with 0 loader threads against 17.1-17.2 s with 1 (and the idiomatic Python loop is also
/// faster with 0 DataLoader workers than with 2 there).
int default_workers();

/// A duration for progress lines: "42 s", "3 min 05 s", "1 h 02 min".
std::string format_duration(double seconds);

}  // namespace graft
