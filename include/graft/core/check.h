#pragma once
/// Error handling for graft: the library throws graft::Error, never aborts or exits.
/// GRAFT_CHECK validates user input where it enters and names the thing, the value
/// and what was expected, in the style of TORCH_CHECK.
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace graft {

/// The one exception type graft throws for bad input or failed operations.
/// what() is a single line meant for the user: what is wrong and what to do.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

/// A training run whose loss or weights stopped being finite (or exploded): the run is
/// over, but a sweep over hyperparameters may go on with its other values.
class Diverged : public Error {
 public:
  explicit Diverged(const std::string& msg) : Error(msg) {}
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

/// Names from `candidates` closest to `name` by edit distance (at most `n`), for
/// "did you mean" hints.
std::vector<std::string> close_matches(const std::string& name, const std::vector<std::string>& candidates,
                                       size_t n = 3);

/// Throws graft::Error "--OPTION 'VALUE' is not one of A, B, C; did you mean A?" unless
/// value is one of allowed.
void check_choice(const std::string& option, const std::string& value, const std::vector<std::string>& allowed);

/// A library's error message made fit for one line: its first non-blank line, bytes outside
/// printable ASCII shown as '?', at most 200 characters (damaged files put binary junk in them).
std::string brief(const std::string& message);

}  // namespace graft

/// Throws graft::Error built from the remaining arguments when cond is false.
#define GRAFT_CHECK(cond, ...)                          \
  do {                                                  \
    if (!(cond)) throw ::graft::Error(::graft::str(__VA_ARGS__)); \
  } while (0)

/// Throws graft::Error unconditionally.
#define GRAFT_FAIL(...) throw ::graft::Error(::graft::str(__VA_ARGS__))
