#pragma once
/// Error handling for graft: the library throws graft::Error, never aborts or exits.
/// GRAFT_CHECK validates user input where it enters and names the thing, the value
/// and what was expected, in the style of TORCH_CHECK.
#include <sstream>
#include <stdexcept>
#include <string>

namespace graft {

/// The one exception type graft throws for bad input or failed operations.
/// what() is a single line meant for the user: what is wrong and what to do.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
inline void cat(std::ostringstream&) {}
template <typename T, typename... Rest>
void cat(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  cat(os, rest...);
}
}  // namespace detail

/// Concatenates the arguments with operator<< into one string.
template <typename... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  detail::cat(os, args...);
  return os.str();
}

}  // namespace graft

/// Throws graft::Error built from the remaining arguments when cond is false.
#define GRAFT_CHECK(cond, ...)                          \
  do {                                                  \
    if (!(cond)) throw ::graft::Error(::graft::str(__VA_ARGS__)); \
  } while (0)

/// Throws graft::Error unconditionally.
#define GRAFT_FAIL(...) throw ::graft::Error(::graft::str(__VA_ARGS__))
