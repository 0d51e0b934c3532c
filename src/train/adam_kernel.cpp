#include "adam_kernel.h"

#include <cmath>

// GCC builds one copy per instruction set and picks one at load time; elsewhere (clang,
// the sanitizer builds) the baseline loop is used.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define GRAFT_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GRAFT_SIMD_CLONES
#endif

namespace graft::train::detail {

GRAFT_SIMD_CLONES
void adam_update(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t n,
                 const AdamScalars& s) {
  const AdamScalars c = s;  // locals: the loop then keeps them in registers
  const bool l2 = c.l2 != 0;
  for (int64_t i = 0; i < n; ++i) {
    // The order of libtorch's Adam: p *= decay (AdamW); g + l2 * p (Adam); the moments;
    // denom = sqrt(v) / sqrt(bias correction 2) + eps; p += -step_size * (m / denom).
    const float w = p[i] * c.decay;
    const float gi = l2 ? g[i] + c.l2 * w : g[i];
    const float mi = m[i] * c.beta1 + c.one_minus_beta1 * gi;
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / c.sqrt_bias_correction2 + c.eps;
    p[i] = w + c.neg_step_size * (mi / denom);
  }
}

}  // namespace graft::train::detail
