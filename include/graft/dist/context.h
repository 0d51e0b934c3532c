#pragma once
/// Data-parallel runs on torch.distributed's C++ side (c10d): the torchrun environment,
/// a process group (Gloo on CPU, NCCL when built against a CUDA libtorch) and the few
/// collectives graft needs. c10d's headers stay in src/dist/: this header is cheap.
///
/// Failure model (docs/DISTRIBUTED.md): every rank publishes a heartbeat to the store
/// once a second. When a collective fails (a peer's sockets closed because it died, or
/// the collective timeout passed because it hangs), the error names the rank that stopped:
/// the one that published a reason with abort(), else the one whose heartbeat stopped,
/// else rank 0 when the store it hosts is gone.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace graft::dist {

/// The torchrun environment convention (WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE,
/// MASTER_ADDR, MASTER_PORT), as torchrun, Slurm wrappers and Kubernetes PyTorchJob set it.
struct Env {
  int64_t world_size = 1;
  int64_t rank = 0;
  int64_t local_rank = 0;
  int64_t local_world_size = 1;
  std::string master_addr;
  int64_t master_port = 0;
  /// Under torchrun (TORCHELASTIC_USE_AGENT_STORE=True) the elastic agent already hosts the
  /// TCPStore at MASTER_ADDR:MASTER_PORT: every rank connects as a client and works under the
  /// prefix /worker/attempt_<TORCHELASTIC_RESTART_COUNT>, as torch.distributed does.
  bool agent_store = false;
  int64_t restart_count = 0;
  /// True when more than one process takes part.
  bool distributed() const { return world_size > 1; }
};

/// Looks up an environment variable; nullopt when it is unset or empty.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

/// Reads and validates the torchrun variables. Neither WORLD_SIZE nor RANK set: one process.
/// Throws graft::Error with one line naming the variable for: a value that is not a whole
/// number or out of range, RANK without WORLD_SIZE (or the reverse), RANK >= WORLD_SIZE,
/// LOCAL_RANK >= LOCAL_WORLD_SIZE, WORLD_SIZE > 1 without MASTER_ADDR or MASTER_PORT.
/// LOCAL_RANK defaults to RANK and LOCAL_WORLD_SIZE to WORLD_SIZE (one machine).
Env parse_env(const EnvLookup& lookup);
/// parse_env over this process's environment.
Env env_from_process();

/// How a Context connects.
struct ContextOptions {
  /// "gloo" (CPU tensors) or "nccl" (CUDA tensors; only in builds against a CUDA libtorch).
  std::string backend = "gloo";
  /// Non-empty: rendezvous through a FileStore at this path (shared file system) instead of
  /// the TCPStore that rank 0 hosts at MASTER_ADDR:MASTER_PORT.
  std::string file_store;
  /// Limit for one collective and for store waits, in seconds. A rank that hangs makes the
  /// others fail after this long; a rank that dies makes them fail at their next collective.
  double timeout_s = 300;
  /// Seconds between heartbeats (0: none; failures then cannot name a silent rank).
  double heartbeat_s = 1;
  /// A rank whose heartbeat has not changed for this long while this one waits for it
  /// counts as stopped (a stopped or frozen process), well before timeout_s.
  double heartbeat_timeout_s = 10;
  ContextOptions& backend_(std::string v) { backend = std::move(v); return *this; }
  ContextOptions& file_store_(std::string v) { file_store = std::move(v); return *this; }
  ContextOptions& timeout_s_(double v) { timeout_s = v; return *this; }
  ContextOptions& heartbeat_s_(double v) { heartbeat_s = v; return *this; }
  ContextOptions& heartbeat_timeout_s_(double v) { heartbeat_timeout_s = v; return *this; }
};

/// A collective started asynchronously; wait() blocks until it is done and throws
/// graft::Error (naming the rank that stopped) if it failed.
class Pending {
 public:
  Pending() = default;
  explicit Pending(std::function<void()> wait) : wait_(std::move(wait)) {}
  /// Requires: valid(). Waits once; later calls return at once.
  void wait();
  bool valid() const { return static_cast<bool>(wait_); }

 private:
  std::function<void()> wait_;
};

/// One process's membership in a data-parallel run. With a one-process Env every
/// collective is a no-op, so callers need no special case.
///   auto ctx = Context(env_from_process()); ctx.allreduce_sum(t); ctx.finish();
class Context {
 public:
  /// Connects to the store (rank 0 hosts the TCPStore; a port in use is a one-line error
  /// naming MASTER_PORT) and builds the process group. Blocks until every rank has joined
  /// or timeout_s has passed.
  explicit Context(Env env = {}, ContextOptions opts = {});
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  int64_t rank() const { return env_.rank; }
  int64_t world_size() const { return env_.world_size; }
  /// Rank 0: the one that writes checkpoints, metrics and figures.
  bool is_main() const { return env_.rank == 0; }
  bool distributed() const { return env_.distributed(); }
  const Env& env() const { return env_; }
  const ContextOptions& options() const { return opts_; }

  /// Copies root's tensors into every rank's tensors (same shapes and dtypes everywhere).
  void broadcast(at::Tensor& t, int64_t root = 0);
  /// Sums t over the ranks, in place.
  void allreduce_sum(at::Tensor& t);
  /// Starts summing t over the ranks in place; t must stay alive and untouched until wait().
  /// Every rank must start its collectives in the same order.
  Pending allreduce_sum_async(at::Tensor t);
  /// Returns when every rank has called barrier().
  void barrier();
  /// Every rank's `value` under `name`, indexed by rank (an all-gather of strings through
  /// the store). Every rank must call it with the same name.
  std::vector<std::string> exchange(const std::string& name, const std::string& value);

  /// Tells the other ranks why this one stops (their errors quote it). Never throws.
  void abort(const std::string& reason) noexcept;
  /// Ends the run cleanly: waits until every rank got here, so that rank 0 keeps the store
  /// up until nobody needs it, then stops the heartbeat. Idempotent.
  void finish();

  /// The message of a failed collective: which rank stopped and why, plus `what`.
  /// Waits up to 3 heartbeats for the evidence (a dead rank's heartbeat must go stale).
  std::string diagnose(const std::string& what);

  struct Impl;

 private:
  Env env_;
  ContextOptions opts_;
  std::unique_ptr<Impl> impl_;
};

/// The process's Context, built on first use from the torchrun environment (one process when
/// it is unset) with backend "nccl" for a cuda device and "gloo" otherwise, and the collective
/// timeout from GRAFT_DIST_TIMEOUT (seconds, default 300). It lives until the process exits,
/// so that one process can run several trainings (a study) in the same group.
/// Throws graft::Error for a bad environment, or when a later call asks for another backend.
Context& process_context(const std::string& device = "cpu");

/// True unless this process is a rank other than 0 of a data-parallel run (RANK in the
/// environment, read without connecting or validating): rank 0 alone writes a run's files.
bool is_main_process();

/// Ends the process's Context cleanly if one was made (every rank waits for the others, so
/// rank 0 keeps the store up until nobody needs it); no-op otherwise. Call before exiting.
void finish_process_context();

/// Tells the other ranks why this process stops, if a Context was made; never throws.
void abort_process_context(const std::string& reason) noexcept;

/// A short, stable 64-bit hash (FNV-1a) of text, as 16 hex digits.
std::string hash_text(const std::string& text);

}  // namespace graft::dist
