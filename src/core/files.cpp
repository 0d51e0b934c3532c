#include "graft/core/files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "graft/core/check.h"

namespace fs = std::filesystem;

namespace graft {
namespace {

std::string tmp_path_for(const std::string& path) { return path + ".tmp." + std::to_string(::getpid()); }

std::string reason(int err) {
  if (err == ENOSPC) return "no space left on the device (disk full)";
  if (err == EFBIG) return "file too large for the device or the file-size limit";
  if (err == EDQUOT) return "disk quota exceeded";
  return std::strerror(err);
}

void fsync_parent(const std::string& path) {
  auto parent = fs::path(path).parent_path();
  fsync_path(parent.empty() ? "." : parent.string());
}

void prepare_parent(const std::string& path) {
  auto parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::exists(parent)) ensure_dir(parent.string());
}

}  // namespace

void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  GRAFT_CHECK(fd >= 0, "cannot open '", path, "' to flush it to disk: ", reason(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems do not sync folders (EINVAL); that is not a write failure.
  GRAFT_CHECK(rc == 0 || err == EINVAL, "cannot flush '", path, "' to disk: ", reason(err));
}

void link_or_copy_atomically(const std::string& from, const std::string& path) {
  write_atomically(path, [&](const std::string& tmp) {
    std::error_code ec;
    fs::create_hard_link(from, tmp, ec);
    if (!ec) return;
    fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
    GRAFT_CHECK(!ec, "cannot copy '", from, "' to '", tmp, "': ", ec.message());
  });
}

void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  prepare_parent(path);
  std::string tmp = tmp_path_for(path);
  try {
    write(tmp);
    fsync_path(tmp);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    GRAFT_CHECK(!ec, "cannot rename '", tmp, "' to '", path, "': ", ec.message());
    fsync_parent(path);
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
}

void write_chunks_atomically(const std::string& path, const std::function<void(const ChunkSink&)>& produce) {
  prepare_parent(path);
  std::string tmp = tmp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  GRAFT_CHECK(fd >= 0, path, ": cannot write (", reason(errno), "); check the folder exists and is writable");
  int err = 0;
  uint64_t done = 0, offered = 0;
  // After a failed write the sink keeps accepting (and dropping) bytes: producers such as
  // libtorch's archive writer finish their work in destructors, where an error would abort.
  ChunkSink sink = [&](const void* data, size_t n) {
    offered += n;
    auto p = static_cast<const char*>(data);
    while (n > 0 && !err) {
      ssize_t k = ::write(fd, p, std::min<size_t>(n, size_t{1} << 30));
      if (k > 0) done += static_cast<uint64_t>(k), p += k, n -= static_cast<size_t>(k);
      else if (k < 0 && errno != EINTR) err = errno;
      else if (k == 0) err = EIO;
    }
    return err == 0;
  };
  try {
    produce(sink);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    if (err == 0) throw;  // the producer's own error
    fd = -1;
  }
  if (fd >= 0 && err == 0 && ::fsync(fd) != 0) err = errno;
  if (fd >= 0 && ::close(fd) != 0 && err == 0) err = errno;
  if (err == 0 && ::rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err) {
    ::unlink(tmp.c_str());
    GRAFT_FAIL(path, ": write failed after ", done, " of ", offered, " bytes: ", reason(err),
               "; nothing was written (free space or choose another folder)");
  }
  fsync_parent(path);
}

void write_bytes_atomically(const std::string& path, const std::string& bytes) {
  write_chunks_atomically(path, [&](const ChunkSink& sink) { sink(bytes.data(), bytes.size()); });
}

void write_text_atomically(const std::string& path, const std::string& text) { write_bytes_atomically(path, text); }

std::string read_file_bytes(const std::string& path, const std::string& what) {
  require_readable(path, what);
  std::error_code ec;
  GRAFT_CHECK(!fs::is_directory(path, ec), what, " '", path, "' is a folder; give the file itself");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  GRAFT_CHECK(fd >= 0, what, " '", path, "' cannot be opened (", reason(errno), ")");
  struct stat st {};
  std::string out;
  // The size is a hint: the file is read to its end (a file that grew, or a /proc file that
  // reports 0 bytes), through a small buffer once the expected size is in.
  if (::fstat(fd, &st) == 0 && st.st_size > 0) out.resize(static_cast<size_t>(st.st_size));
  size_t have = 0;
  int err = 0;
  char more[1 << 16];
  for (;;) {
    const bool full = have == out.size();
    ssize_t k = full ? ::read(fd, more, sizeof more) : ::read(fd, out.data() + have, out.size() - have);
    if (k < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    if (k == 0) break;
    if (full) out.append(more, static_cast<size_t>(k));
    have += static_cast<size_t>(k);
  }
  ::close(fd);
  GRAFT_CHECK(err == 0, what, " '", path, "': read error (", reason(err), ")");
  out.resize(have);
  return out;
}

std::vector<std::string> clean_stale_temp_files(const std::string& dir) {
  std::vector<std::string> removed;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return removed;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::string name = e.path().filename().string();
    auto dot = name.rfind(".tmp.");
    if (dot == std::string::npos || !e.is_regular_file(ec)) continue;
    std::string pid = name.substr(dot + 5);
    if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    long p = std::stol(pid);
    // kill(p, 0) fails with ESRCH only when no such process exists.
    if (p <= 0 || p == ::getpid() || ::kill(static_cast<pid_t>(p), 0) == 0 || errno != ESRCH) continue;
    if (fs::remove(e.path(), ec)) removed.push_back(e.path().string());
  }
  return removed;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
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

}  // namespace graft
