#pragma once
// Helpers shared by the tests: temp folders, fixtures, running the CLI.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

namespace graft::test {

/// A fresh temporary folder removed at the end of the test.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Folder of the generated TorchScript fixtures (env GRAFT_FIXTURES).
std::string fixtures();
/// The graft binary (env GRAFT_BIN).
std::string graft_bin();
/// The source tree (env GRAFT_SRC).
std::string source_dir();
/// Debian's python3 (env GRAFT_PYTHON).
std::string python();

/// Result of running a command.
struct Run {
  int code = -1;
  std::string out;  ///< stdout and stderr together
};
/// Runs a shell command and captures its output and exit code.
Run run(const std::string& cmd);
/// Runs the graft binary with arguments.
Run cli(const std::string& args);

/// The message of the graft::Error that f throws, or "" when it throws none.
std::string error_of(const std::function<void()>& f);

/// Writes a small IDX dataset of n random 8x8 images with labels cycling 0..k-1
/// (class c images are brighter in row c so a tiny model can learn them).
void write_toy_idx(const std::string& images, const std::string& labels, int64_t n, int64_t k, uint64_t seed = 0);

}  // namespace graft::test
