#pragma once
// Number formatting shared by the study reports (internal to src/study/).
#include <iomanip>
#include <sstream>
#include <string>

namespace graft::study {

/// 0.1234 -> "12.34" (a fraction as a percentage, `digits` decimals).
inline std::string pct(double v, int digits = 2) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << 100 * v;
  return o.str();
}

/// v with `digits` decimals.
inline std::string fixed(double v, int digits) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(digits) << v;
  return o.str();
}

}  // namespace graft::study
