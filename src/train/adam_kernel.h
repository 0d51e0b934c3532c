#pragma once
// Internal to the trainer: the element loop of the fused Adam/AdamW step (fused_adam.cpp).
// Kept free of torch headers so that it alone is compiled with -O3 -fno-math-errno (a
// vectorised square root) and cloned for AVX-512, AVX2 and the baseline.
#include <cstdint>

namespace graft::train::detail {

/// The step's constants, each already rounded to float as libtorch rounds a double scalar
/// applied to a float tensor.
struct AdamScalars {
  float beta1, beta2, one_minus_beta1, one_minus_beta2;
  float sqrt_bias_correction2, eps, neg_step_size;
  float l2 = 0;      ///< Adam's weight decay, added to the gradient (0: none)
  float decay = 1;   ///< AdamW's factor 1 - lr * weight_decay on the weights (1: none)
};

/// One Adam step over n elements, in place: p (weights), m and v (first and second
/// moments); g (the gradient) is read only.
void adam_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamScalars& s);

}  // namespace graft::train::detail
