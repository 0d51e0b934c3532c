#include "graft/io/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "graft/core/check.h"
#include "graft/core/files.h"

namespace fs = std::filesystem;

namespace graft::io {
namespace {

bool is_temp_name(const std::string& name) {
  auto dot = name.rfind(".tmp.");
  if (dot == std::string::npos) return false;
  auto pid = name.substr(dot + 5);
  return !pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos;
}

std::string lock_holder(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  std::string s = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s.empty() || s.find_first_not_of("0123456789") != std::string::npos ? "unknown" : s;
}

bool matches(const std::string& path, const std::vector<std::string>& may_differ) {
  auto dot = path.rfind('.');
  std::string leaf = dot == std::string::npos ? path : path.substr(dot + 1);
  return std::find(may_differ.begin(), may_differ.end(), path) != may_differ.end() ||
         std::find(may_differ.begin(), may_differ.end(), leaf) != may_differ.end();
}

std::string shown(const nlohmann::json* v) {
  if (!v) return "(absent)";
  std::string s = v->dump();
  return s.size() > 120 ? s.substr(0, 117) + "..." : s;
}

void compare(const nlohmann::json* a, const nlohmann::json* b, const std::string& path,
             const std::vector<std::string>& may_differ) {
  if (!path.empty() && matches(path, may_differ)) return;
  if (a && b && a->is_object() && b->is_object()) {
    std::vector<std::string> keys;
    for (auto it = a->begin(); it != a->end(); ++it) keys.push_back(it.key());
    for (auto it = b->begin(); it != b->end(); ++it)
      if (!a->contains(it.key())) keys.push_back(it.key());
    for (const auto& k : keys) {
      auto ia = a->find(k), ib = b->find(k);
      compare(ia == a->end() ? nullptr : &*ia, ib == b->end() ? nullptr : &*ib, path.empty() ? k : path + "." + k,
              may_differ);
    }
    return;
  }
  bool same = a && b && *a == *b;
  GRAFT_CHECK(same, "--resume with a different configuration: ", path.empty() ? "the configuration" : path,
              " was ", shown(a), ", now ", shown(b),
              "; resume with the options the run started with, or start a new run (another --out or --overwrite)");
}

}  // namespace

const std::vector<std::string>& default_run_files() {
  static const std::vector<std::string> k = {
      "config.json", "metrics.jsonl", "result.json", "model.ckpt", "model.pt", "checkpoint.ckpt",
      "checkpoint.prev.ckpt", "best.ckpt", "pretrained.ckpt", "report.html", "curves.svg", "prefix_cache.tmp.f32"};
  return k;
}

const std::vector<std::string>& resume_may_differ() {
  static const std::vector<std::string> k = {"workers", "threads",  "quiet",   "log_every_s", "checkpoint_every",
                                             "cache",   "out_dir",  "resume",  "overwrite", "device",
                                             "data_on_device"};
  return k;
}

RunDir::RunDir(std::string dir, RunDirOptions opts) : dir_(std::move(dir)) {
  GRAFT_CHECK(!dir_.empty(), "--out is empty; name the folder for the run's outputs");
  ensure_dir(dir_);
  std::string lock = file(".lock");
  fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  GRAFT_CHECK(fd_ >= 0, "cannot create the lock file '", lock, "': ", std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::string who = lock_holder(fd_);
    ::close(fd_);
    fd_ = -1;
    GRAFT_CHECK(err != EWOULDBLOCK, dir_, " is in use by another graft run (pid ", who,
                "); wait for it or choose another --out");
    GRAFT_FAIL("cannot lock '", lock, "': ", std::strerror(err));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    // The lock itself holds; only the pid shown to a second run is missing.
  }
  cleaned_ = clean_stale_temp_files(dir_);
  for (const auto& name : opts.run_files)
    if (fs::exists(file(name))) found_.push_back(name);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec))
    if (is_temp_name(e.path().filename().string())) found_.push_back(e.path().filename().string());
  if (found_.empty()) return;
  if (opts.mode == RunMode::kFresh) {
    std::string list;
    for (size_t i = 0; i < found_.size() && i < 4; ++i) list += (i ? ", " : "") + found_[i];
    if (found_.size() > 4) list += ", ...";
    ::close(fd_);
    fd_ = -1;
    GRAFT_FAIL(dir_, " holds the files of another run (", list,
               "); pass --resume to continue it, --overwrite to replace it, or choose another --out");
  }
  if (opts.mode == RunMode::kOverwrite)
    for (const auto& name : found_) {
      fs::remove(file(name), ec);
      GRAFT_CHECK(!ec, "--overwrite: cannot remove '", file(name), "': ", ec.message());
    }
}

RunDir::~RunDir() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the flock
}

void check_same_config(const nlohmann::json& saved, const nlohmann::json& current,
                       const std::vector<std::string>& may_differ) {
  compare(&saved, &current, "", may_differ);
}

}  // namespace graft::io
