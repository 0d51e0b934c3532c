// Shared pieces of the libFuzzer harnesses: the rule is that a parser given any bytes
// either returns or throws graft::Error (or c10::Error from inside libtorch, which the
// CLI also turns into one line). Any other exception, crash, leak or sanitizer report
// is a finding.
#pragma once
#include <c10/util/Exception.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include "graft/core/check.h"

namespace graft::fuzz {

template <typename F>
void expect_clean(F&& f) {
  try {
    f();
  } catch (const graft::Error&) {
  } catch (const c10::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    std::abort();
  }
}

/// A per-process scratch file in /dev/shm (or /tmp) for parsers that take a path.
inline const std::string& scratch(const std::string& suffix) {
  static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  struct Scratch {
    std::string p;
    ~Scratch() {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
    }
  };
  static const Scratch s{dir + "/graft-fuzz-" + std::to_string(getpid()) + suffix};
  return s.p;
}

inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
}

}  // namespace graft::fuzz
