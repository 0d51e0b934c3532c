#pragma once
/// Starting N local ranks of a program under the torchrun environment (graft launch).
#include <string>
#include <vector>

namespace graft::dist {

/// How launch() runs the ranks.
struct LaunchOptions {
  int nproc = 2;                       ///< ranks to start on this machine
  std::string master_addr = "127.0.0.1";
  int master_port = 0;                 ///< 0: a free port (bound to port 0 and released)
  /// After the first rank fails, seconds the others get to stop on their own (their own
  /// errors name the rank) before they are sent SIGTERM, and SIGKILL 5 s later.
  double grace_s = 30;
  bool all_output = false;             ///< also forward the other ranks' standard output
  LaunchOptions& nproc_(int v) { nproc = v; return *this; }
  LaunchOptions& master_port_(int v) { master_port = v; return *this; }
  LaunchOptions& grace_s_(double v) { grace_s = v; return *this; }
  LaunchOptions& all_output_(bool v) { all_output = v; return *this; }
};

/// A TCP port that was free on addr a moment ago (the kernel's choice for port 0).
/// Throws graft::Error when no socket can be bound there.
int free_port(const std::string& addr);

/// Runs `argv` (argv[0]: the program) as opts.nproc processes with WORLD_SIZE, RANK,
/// LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, and waits for them.
/// Rank 0's standard output and error pass through unchanged; the other ranks' standard
/// error (and, with all_output, their output) is forwarded with a "[rank R] " prefix.
/// Returns 0 when every rank exits with 0, else the first failing rank's exit code (128 + the
/// signal for a rank killed by one), after the others have stopped (see grace_s).
/// SIGINT and SIGTERM sent to the launcher are passed on to the ranks. The ranks die with
/// the launcher (PR_SET_PDEATHSIG). Throws graft::Error when a process cannot be started.
int launch(const std::vector<std::string>& argv, const LaunchOptions& opts);

}  // namespace graft::dist
