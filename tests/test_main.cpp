#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <random>

#include "graft/core/check.h"
#include "graft/core/files.h"
#include "graft/data/readers.h"
#include "test_util.h"

namespace graft::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "graft-test-XXXXXX").string();
  char* p = mkdtemp(tmpl.data());
  if (!p) throw std::runtime_error("mkdtemp failed");
  path_ = p;
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

static std::string env_or(const char* k, const char* def) {
  const char* v = std::getenv(k);
  return v && *v ? v : def;
}
std::string fixtures() { return env_or("GRAFT_FIXTURES", GRAFT_TEST_FIXTURES); }
std::string graft_bin() { return env_or("GRAFT_BIN", GRAFT_TEST_BIN); }
std::string source_dir() { return env_or("GRAFT_SRC", GRAFT_TEST_SRC); }
std::string python() { return env_or("GRAFT_PYTHON", GRAFT_TEST_PYTHON); }

Run run(const std::string& cmd) {
  Run r;
  std::string full = cmd + " 2>&1";
  FILE* f = popen(full.c_str(), "r");
  if (!f) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) r.out.append(buf.data(), n);
  int st = pclose(f);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

Run cli(const std::string& args) { return run("GRAFT_NO_BLAS_WARNING=1 " + graft_bin() + " " + args); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void write_toy_idx(const std::string& images, const std::string& labels, int64_t n, int64_t k, uint64_t seed) {
  at::manual_seed(seed);
  auto x = (at::rand({n, 8, 8}) * 100).to(at::kByte);
  auto y = at::arange(n, at::kLong).remainder(k).to(at::kByte);
  for (int64_t i = 0; i < n; ++i) x[i][y[i].item<int64_t>() % 8].fill_(250);
  data::write_idx(images, x);
  data::write_idx(labels, y);
}

}  // namespace graft::test

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  at::set_num_threads(1);  // deterministic and fair to a 2-core machine running tests in parallel
  return RUN_ALL_TESTS();
}
