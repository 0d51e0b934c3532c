#pragma once
// Helpers shared by the tests: temp folders, fixtures, running the CLI.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "graft/data/dataset.h"

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

namespace graft::test {

/// True in the Sanitize build (scripts/sanitize.sh): AddressSanitizer replaces glibc's
/// allocator (mallopt is not honoured) and holds freed memory in a quarantine, so tests of the
/// allocator settings or of peak memory measure ASan there, not graft.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif

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

/// A dataset that throws std::runtime_error once more than `budget` examples have been
/// read from it: a crash in the middle of a run, for the resume tests.
struct Crashing : data::Dataset {
  data::DatasetPtr base;
  int64_t budget = 0;
  mutable std::atomic<int64_t> calls{0};
  int64_t size() const override { return base->size(); }
  data::Example get(int64_t i) const override {
    if (++calls > budget) throw std::runtime_error("simulated crash");
    return base->get(i);
  }
  std::vector<int64_t> input_shape() const override { return base->input_shape(); }
  const std::vector<std::string>& class_names() const override { return base->class_names(); }
  std::vector<int64_t> labels() const override { return base->labels(); }
  std::string describe() const override { return "crashing"; }
};

}  // namespace graft::test
