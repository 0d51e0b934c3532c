#include "graft/core/precision.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <fstream>
#include <string>

#include "graft/core/check.h"

namespace graft {

Precision parse_precision(const std::string& name, const std::string& device) {
  check_choice("precision", name, {"fp32", "bf16", "fp16"});
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  GRAFT_CHECK(device.rfind("cuda", 0) == 0, "--precision fp16 needs --device cuda: CPUs compute in bfloat16, not "
              "float16; use --precision bf16 on the CPU");
  return Precision::kFp16;
}

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::kBf16: return "bf16";
    case Precision::kFp16: return "fp16";
    default: return "fp32";
  }
}

bool cpu_has_native_bf16() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("flags", 0) == 0)
      return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
  return false;
}

namespace {

// libtorch 2.4 made autocast's state per device type (is_autocast_enabled(kCUDA), ...) and
// deprecated the CPU- and GPU-named functions, which then warn on every call.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool autocast_enabled(c10::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
at::ScalarType autocast_dtype(c10::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
void set_autocast(c10::DeviceType d, bool on, at::ScalarType t) {
  at::autocast::set_autocast_enabled(d, on);
  at::autocast::set_autocast_dtype(d, t);
}
#else
bool autocast_enabled(c10::DeviceType d) {
  return d == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
}
at::ScalarType autocast_dtype(c10::DeviceType d) {
  return d == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
}
void set_autocast(c10::DeviceType d, bool on, at::ScalarType t) {
  if (d == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(on);
    at::autocast::set_autocast_cpu_dtype(t);
  } else {
    at::autocast::set_enabled(on);
    at::autocast::set_autocast_gpu_dtype(t);
  }
}
#endif

}  // namespace

AutocastGuard::AutocastGuard(Precision p, c10::DeviceType device) : device_(device) {
  if (p == Precision::kFp32) return;
  const auto dtype = p == Precision::kBf16 ? at::kBFloat16 : at::kHalf;
  active_ = true;
  // Autocast has two states before libtorch 2.4, the CPU's and the GPU's: every other device
  // type is treated as the GPU's, as those versions do.
  was_enabled_ = autocast_enabled(device_);
  was_dtype_ = autocast_dtype(device_);
  set_autocast(device_, true, dtype);
  at::autocast::increment_nesting();
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  // Leaving the outermost region frees the casts of weights cached inside it.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_autocast(device_, was_enabled_, was_dtype_);
}

at::Tensor to_float32(const at::Tensor& t) {
  return t.defined() && t.is_floating_point() && t.scalar_type() != at::kFloat ? t.to(at::kFloat) : t;
}

}  // namespace graft
