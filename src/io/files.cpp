#include "graft/io/files.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "graft/core/check.h"

namespace fs = std::filesystem;

namespace graft::io {

void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  auto parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::exists(parent)) ensure_dir(parent.string());
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    write(tmp);
    fs::rename(tmp, path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

void write_text_atomically(const std::string& path, const std::string& text) {
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    GRAFT_CHECK(out, path, ": cannot write (check the folder exists and is writable)");
    out << text;
    out.close();
    GRAFT_CHECK(!out.fail(), path, ": write failed (disk full?)");
  });
}

void require_readable(const std::string& path, const std::string& what) {
  std::error_code ec;
  GRAFT_CHECK(fs::exists(path, ec), what, " '", path, "' does not exist; check the path");
  GRAFT_CHECK(::access(path.c_str(), R_OK) == 0, what, " '", path, "' is not readable; check its permissions");
}

void ensure_dir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  GRAFT_CHECK(!ec && fs::is_directory(dir), "cannot create folder '", dir, "': ", ec.message());
}

std::string data_cache_dir() {
  if (const char* d = std::getenv("GRAFT_DATA"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/graft";
  const char* h = std::getenv("HOME");
  return std::string(h && *h ? h : "/root") + "/.cache/graft";
}

}  // namespace graft::io
