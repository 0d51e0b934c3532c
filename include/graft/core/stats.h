#pragma once
/// Summaries of repeated runs (seeds).
#include <vector>

namespace graft {

struct MeanStd {
  double mean = 0;
  double std = 0;  ///< sample standard deviation (n - 1); 0 for fewer than two values
  int n = 0;
};

/// Mean and sample standard deviation of values (empty: all zero).
MeanStd mean_std(const std::vector<double>& values);

}  // namespace graft
