#include "graft/core/stats.h"

#include <cmath>

namespace graft {

MeanStd mean_std(const std::vector<double>& v) {
  MeanStd r;
  r.n = static_cast<int>(v.size());
  if (v.empty()) return r;
  for (double x : v) r.mean += x / static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - r.mean) * (x - r.mean);
  r.std = v.size() > 1 ? std::sqrt(ss / static_cast<double>(v.size() - 1)) : 0.0;
  return r;
}

}  // namespace graft
