#pragma once
/// Parsing numbers from user text with errors that name the thing (never std::stoll's
/// bare "stoll", never a wrapped-around value).
#include <cstdint>
#include <string>

namespace graft {

/// Parses `text` as a decimal integer (optional leading '-', digits only, no spaces)
/// within [lo, hi]. Throws graft::Error "WHAT: 'TEXT' is not an integer in [LO, HI]"
/// otherwise.
int64_t parse_int(const std::string& text, int64_t lo, int64_t hi, const std::string& what);

}  // namespace graft
