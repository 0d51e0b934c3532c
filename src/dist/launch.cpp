#include "graft/dist/launch.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>

#include "graft/core/check.h"

extern char** environ;

namespace graft::dist {

namespace {

volatile sig_atomic_t g_signal = 0;
void on_signal(int s) { g_signal = s; }

using Clock = std::chrono::steady_clock;

struct Rank {
  int rank = 0;
  pid_t pid = -1;
  int fd[2] = {-1, -1};     ///< read ends of the rank's stdout and stderr
  std::string partial[2];   ///< an unfinished line per stream
  bool exited = false;
  int code = 0;
};

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// Rank 0 passes through; the others' stderr (and stdout with all_output) gets a prefix per line.
void forward(Rank& r, int stream, const char* data, size_t n, bool all_output, bool eof) {
  const int out = stream == 0 ? STDOUT_FILENO : STDERR_FILENO;
  if (r.rank == 0) {
    write_all(out, data, n);
    return;
  }
  if (stream == 0 && !all_output) return;
  std::string& buf = r.partial[stream];
  buf.append(data, n);
  size_t start = 0, nl;
  while ((nl = buf.find('\n', start)) != std::string::npos) {
    std::string line = str("[rank ", r.rank, "] ") + buf.substr(start, nl - start + 1);
    write_all(out, line.data(), line.size());
    start = nl + 1;
  }
  buf.erase(0, start);
  if (eof && !buf.empty()) {
    std::string line = str("[rank ", r.rank, "] ", buf, "\n");
    write_all(out, line.data(), line.size());
    buf.clear();
  }
}

// The environment of rank r: this process's, with the torchrun variables replaced.
std::vector<std::string> rank_env(int r, const LaunchOptions& o, int port) {
  const std::vector<std::pair<std::string, std::string>> vars = {
      {"WORLD_SIZE", std::to_string(o.nproc)}, {"RANK", std::to_string(r)},
      {"LOCAL_RANK", std::to_string(r)},       {"LOCAL_WORLD_SIZE", std::to_string(o.nproc)},
      {"GROUP_RANK", "0"},                     {"MASTER_ADDR", o.master_addr},
      {"MASTER_PORT", std::to_string(port)}};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    // A launch started under torchrun must not make its ranks look for torchrun's store.
    bool replaced = kv.rfind("TORCHELASTIC_", 0) == 0;
    for (auto& [k, v] : vars) replaced = replaced || kv.rfind(k + "=", 0) == 0;
    if (!replaced) env.push_back(kv);
  }
  for (auto& [k, v] : vars) env.push_back(k + "=" + v);
  return env;
}

Rank spawn(int r, const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  int out[2], err[2];
  GRAFT_CHECK(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0, "graft launch: cannot create pipes: ",
              std::strerror(errno));
  // Everything the child needs is built before fork: only async-signal-safe calls after it.
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  const pid_t parent = getpid();
  pid_t pid = fork();
  GRAFT_CHECK(pid >= 0, "graft launch: cannot start rank ", r, ": ", std::strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // the ranks never outlive the launcher
    if (getppid() != parent) _exit(137);
    dup2(out[1], STDOUT_FILENO);
    dup2(err[1], STDERR_FILENO);
    execve(cargv[0], cargv.data(), cenv.data());
    const char msg[] = "graft launch: cannot execute the rank's program\n";
    write_all(STDERR_FILENO, msg, sizeof msg - 1);
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  Rank rk;
  rk.rank = r;
  rk.pid = pid;
  rk.fd[0] = out[0];
  rk.fd[1] = err[0];
  return rk;
}

// Reads what is available on the ranks' pipes (waiting up to wait_ms); closes a pipe at EOF.
void pump(std::vector<Rank>& ranks, bool all_output, int wait_ms) {
  std::vector<pollfd> fds;
  std::vector<std::pair<size_t, int>> who;
  for (size_t i = 0; i < ranks.size(); ++i)
    for (int s = 0; s < 2; ++s)
      if (ranks[i].fd[s] >= 0) {
        fds.push_back({ranks[i].fd[s], POLLIN, 0});
        who.emplace_back(i, s);
      }
  if (fds.empty()) {
    usleep(static_cast<useconds_t>(wait_ms) * 1000);
    return;
  }
  if (poll(fds.data(), fds.size(), wait_ms) <= 0) return;
  char buf[65536];
  for (size_t k = 0; k < fds.size(); ++k) {
    if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    auto [i, s] = who[k];
    ssize_t n = read(fds[k].fd, buf, sizeof buf);
    if (n > 0) {
      forward(ranks[i], s, buf, static_cast<size_t>(n), all_output, false);
    } else if (n == 0 || errno != EINTR) {
      forward(ranks[i], s, buf, 0, all_output, true);
      close(fds[k].fd);
      ranks[i].fd[s] = -1;
    }
  }
}

void signal_live(std::vector<Rank>& ranks, int sig) {
  for (auto& r : ranks)
    if (!r.exited) kill(r.pid, sig);
}

}  // namespace

int free_port(const std::string& addr) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  GRAFT_CHECK(inet_pton(AF_INET, addr.c_str(), &a.sin_addr) == 1, "graft launch: --master-addr '", addr,
              "' is not an IPv4 address such as 127.0.0.1");
  int s = socket(AF_INET, SOCK_STREAM, 0);
  GRAFT_CHECK(s >= 0, "graft launch: cannot open a socket: ", std::strerror(errno));
  socklen_t len = sizeof a;
  bool ok = bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
            getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  int err = errno;
  close(s);
  GRAFT_CHECK(ok, "graft launch: cannot bind a port on ", addr, ": ", std::strerror(err));
  return ntohs(a.sin_port);
}

int launch(const std::vector<std::string>& argv, const LaunchOptions& o) {
  GRAFT_CHECK(!argv.empty(), "graft launch: no command to run");
  GRAFT_CHECK(o.nproc >= 1 && o.nproc <= 1024, "graft launch: --nproc must be in [1, 1024], got ", o.nproc);
  GRAFT_CHECK(o.grace_s >= 0, "graft launch: --grace must be >= 0, got ", o.grace_s);
  const int port = o.master_port > 0 ? o.master_port : free_port(o.master_addr);
  struct sigaction sa{}, old_int{}, old_term{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  g_signal = 0;
  std::vector<Rank> ranks;
  try {
    for (int r = 0; r < o.nproc; ++r) ranks.push_back(spawn(r, argv, rank_env(r, o, port)));
  } catch (...) {
    signal_live(ranks, SIGKILL);
    for (auto& r : ranks) waitpid(r.pid, nullptr, 0);
    throw;
  }
  int first_failed = -1, forwarded = 0;
  Clock::time_point failed_at, termed_at;
  bool termed = false, killed = false;
  auto live = [&] {
    for (auto& r : ranks)
      if (!r.exited || r.fd[0] >= 0 || r.fd[1] >= 0) return true;
    return false;
  };
  while (live()) {
    pump(ranks, o.all_output, 100);
    for (auto& r : ranks) {
      int st = 0;
      if (r.exited || waitpid(r.pid, &st, WNOHANG) != r.pid) continue;
      r.exited = true;
      r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      if (r.code != 0 && first_failed < 0) {
        first_failed = r.rank;
        failed_at = Clock::now();
        std::cerr << "graft launch: rank " << r.rank << " exited with code " << r.code << "; the others get "
                  << o.grace_s << " s to stop" << std::endl;
      }
    }
    const auto now = Clock::now();
    if (g_signal && forwarded != g_signal) {
      forwarded = g_signal;
      signal_live(ranks, forwarded);
    }
    if (first_failed >= 0 && !termed && now - failed_at > std::chrono::duration<double>(o.grace_s)) {
      termed = true;
      termed_at = now;
      signal_live(ranks, SIGTERM);
    }
    if (termed && !killed && now - termed_at > std::chrono::seconds(5)) {
      killed = true;
      signal_live(ranks, SIGKILL);
    }
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (first_failed >= 0) return ranks[static_cast<size_t>(first_failed)].code;
  return forwarded ? 128 + forwarded : 0;
}

}  // namespace graft::dist
