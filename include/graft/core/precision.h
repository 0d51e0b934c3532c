#pragma once
/// Reduced precision for the forward passes of every verb that runs a model
/// (`--precision fp32|bf16|fp16`), through libtorch's autocast: matrix products and
/// convolutions run in the lower precision, reductions and losses stay in float32.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>

namespace graft {

enum class Precision { kFp32, kBf16, kFp16 };

/// Parses "fp32", "bf16" or "fp16" for a device ("cpu", "cuda", "cuda:N"). Throws
/// graft::Error naming --precision for an unknown name, and for fp16 on the CPU (CPUs
/// compute bf16, not fp16: the message says to use bf16).
Precision parse_precision(const std::string& name, const std::string& device);
/// "fp32", "bf16", "fp16".
std::string precision_name(Precision p);
/// True when this CPU has native bfloat16 dot products (AVX512_BF16 or AMX-BF16); on other
/// CPUs bf16 works but is emulated and slower than fp32.
bool cpu_has_native_bf16();

/// Autocast for the forward passes run by this thread while the guard lives (a no-op for
/// fp32). Nested guards restore the state they found.
class AutocastGuard {
 public:
  AutocastGuard(Precision p, c10::DeviceType device);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false, was_enabled_ = false;
  c10::DeviceType device_;
  at::ScalarType was_dtype_;
};

/// Float tensors back to float32 (outputs of an autocast region before a loss or a write);
/// other tensors unchanged.
at::Tensor to_float32(const at::Tensor& t);

}  // namespace graft
