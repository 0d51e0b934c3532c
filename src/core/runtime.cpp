#include "graft/core/runtime.h"

#include <algorithm>

#include <cmath>

#include <sstream>

#include <iomanip>

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <malloc.h>
#include <torch/cuda.h>

#include <atomic>
#include <climits>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "graft/core/check.h"

namespace graft {

std::string classify_blas_path(const std::string& p) {
  auto has = [&](const char* s) { return p.find(s) != std::string::npos; };
  if (p.empty()) return "unknown";
  if (has("openblas")) return "openblas";
  if (has("blis")) return "blis";
  if (has("mkl")) return "mkl";
  if (has("atlas")) return "atlas";
  if (has("/blas/libblas") || has("libblas.so.3.") || has("refblas")) return "reference";
  return "unknown";
}

BlasInfo detect_blas() {
  BlasInfo info;
  void* sym = dlsym(RTLD_DEFAULT, "sgemm_");
  if (!sym) return info;
  Dl_info dl;
  if (dladdr(sym, &dl) && dl.dli_fname) {
    char buf[PATH_MAX];
    info.path = realpath(dl.dli_fname, buf) ? std::string(buf) : std::string(dl.dli_fname);
  }
  info.vendor = classify_blas_path(info.path);
  return info;
}

bool warn_if_reference_blas() {
  static std::atomic<bool> done{false};
  if (done.exchange(true)) return false;
  if (std::getenv("GRAFT_NO_BLAS_WARNING")) return false;
  auto info = detect_blas();
  if (info.vendor != "reference") return false;
  std::cerr << "graft: warning: libtorch is running on the reference BLAS (" << info.path
            << "), about 50x slower for matrix products; install OpenBLAS with "
               "'apt-get install libopenblas0-openmp' (scripts/setup.sh does this)\n";
  return true;
}

bool tune_allocator() {
#ifdef __GLIBC__
  bool ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1;
  ok = mallopt(M_TRIM_THRESHOLD, 1024 * 1024 * 1024) == 1 && ok;
  ok = mallopt(M_MMAP_MAX, 0) == 1 && ok;  // blocks above 32 MiB from the heap too
  return ok;
#else
  return false;
#endif
}

c10::Device parse_device(const std::string& s) {
  if (s == "cpu") return c10::Device(c10::kCPU);
  if (s.rfind("cuda", 0) == 0) {
    c10::Device d(c10::kCPU);
    try {
      d = c10::Device(s);
    } catch (const std::exception&) {
      GRAFT_FAIL("--device '", s, "' is not a device; use cpu, cuda or cuda:N");
    }
    GRAFT_CHECK(torch::cuda::is_available(), "--device ", s,
                ": this libtorch build sees no CUDA GPU; use --device cpu or install a CUDA build of libtorch");
    GRAFT_CHECK(!d.has_index() || d.index() < static_cast<int>(torch::cuda::device_count()), "--device ", s,
                ": only ", torch::cuda::device_count(), " GPU(s) visible");
    return d;
  }
  GRAFT_FAIL("--device '", s, "' is not a device; use cpu, cuda or cuda:N");
}

void set_threads(int n) {
  GRAFT_CHECK(n >= 0 && n <= 1024, "--threads ", n, " is out of range; use 0 (default) to 1024");
  if (n > 0) at::set_num_threads(n);
}

void seed_everything(uint64_t seed) {
  at::manual_seed(seed);  // seeds CPU and, where built in, CUDA generators
}

int64_t default_batch_size(int64_t values_per_example, int64_t small, bool inference) {
  const int64_t budget = int64_t{1} << (inference ? 21 : 23);
  int64_t b = std::max<int64_t>(small, 1);
  while (b > 8 && b * std::max<int64_t>(values_per_example, 1) > budget) b /= 2;
  return b;
}

int default_workers() {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::clamp(cores / 4, 0, 8);
}

std::string format_duration(double seconds) {
  const auto t = static_cast<int64_t>(std::llround(std::max(seconds, 0.0)));
  std::ostringstream o;
  if (t < 60) o << t << " s";
  else if (t < 3600) o << t / 60 << " min " << std::setw(2) << std::setfill('0') << t % 60 << " s";
  else o << t / 3600 << " h " << std::setw(2) << std::setfill('0') << (t % 3600) / 60 << " min";
  return o.str();
}

}  // namespace graft
