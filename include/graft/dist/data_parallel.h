#pragma once
/// The pieces of data-parallel training, each usable alone: the same start on every rank
/// (broadcast_tensors), the same gradient on every rank (GradientAverager), optional
/// BatchNorm statistics averaging, and a check that every rank runs the same configuration.
#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "graft/dist/context.h"

namespace graft::dist {

/// Copies root's values of `tensors` (parameters and buffers, any dtypes) into every rank's,
/// one flat buffer per dtype. Requires: the same list (shapes, dtypes, order) on every rank.
void broadcast_tensors(Context& ctx, const std::vector<at::Tensor>& tensors, int64_t root = 0);

/// Replaces each floating-point tensor by its mean over the ranks (integer ones are left
/// alone). The "on request" synchronisation of BatchNorm running statistics: call it with the
/// running_mean/running_var buffers, e.g. before evaluating or checkpointing.
void average_tensors(Context& ctx, const std::vector<at::Tensor>& tensors);

/// The BatchNorm running statistics among named buffers (names ending in running_mean or
/// running_var), for average_tensors().
std::vector<at::Tensor> batchnorm_stats(const std::vector<std::pair<std::string, at::Tensor>>& named_buffers);

/// Throws graft::Error on every rank when the configuration differs between ranks, naming
/// the first rank whose hash differs from rank 0's and the top-level keys that differ.
/// The hash is of config.dump(); the text itself also goes through the store (to name keys).
void check_same_config(Context& ctx, const nlohmann::json& config);

/// Sums each value over the ranks (e.g. an epoch's loss sum, correct count and example count,
/// so that rank 0's record describes all the data). One process: unchanged.
std::vector<double> sum_over_ranks(Context& ctx, std::vector<double> values);

/// Throws graft::Error unless a checkpoint written by a run of `saved_world` ranks is resumed
/// by `ctx.world_size()` ranks: the data order and the batch per step depend on it, so a
/// resume with another world size would not continue the same run.
void check_resume_world_size(const Context& ctx, int64_t saved_world, const std::string& checkpoint);

/// How gradients are averaged.
struct GradientAveragerOptions {
  /// Bucket capacity in bytes (PyTorch DDP's default: 25 MiB). One parameter larger than this
  /// gets a bucket of its own.
  int64_t bucket_bytes = 25 << 20;
  /// True: per-parameter hooks copy each gradient into its bucket as backward produces it and
  /// start the bucket's allreduce as soon as it is full, overlapping communication with the
  /// rest of backward. False: everything after backward, in finish().
  bool overlap = true;
  GradientAveragerOptions& bucket_bytes_(int64_t v) { bucket_bytes = v; return *this; }
  GradientAveragerOptions& overlap_(bool v) { overlap = v; return *this; }
};

/// Averages the gradients of a fixed list of parameters over the ranks, in flat buckets
/// (Gloo takes one tensor per device, so each bucket is one flat buffer).
///
///   GradientAverager avg(ctx, trainable_params);   // once, or again when the set changes
///   loop: zero grads; avg.prepare(); loss.backward(); avg.finish(); optimizer.step();
///
/// Buckets hold the parameters in reverse order (backward produces the last layers' grads
/// first) and start strictly in bucket order, so every rank issues the same collectives in
/// the same order whatever order its hooks fire in.
/// Guarantees after finish(): every listed parameter's grad is the mean over the ranks of
/// the gradients its backward produced; a parameter that got no gradient on a rank counts
/// as zero there, and gets a zero grad (not an undefined one) when it got none anywhere.
/// Requires (overlap mode): one backward pass between prepare() and finish(), grads zeroed
/// or undefined before it (no accumulation across backward passes; use overlap=false for that).
class GradientAverager {
 public:
  GradientAverager(Context& ctx, std::vector<at::Tensor> params, GradientAveragerOptions opts = {});
  ~GradientAverager();
  GradientAverager(const GradientAverager&) = delete;
  GradientAverager& operator=(const GradientAverager&) = delete;

  /// Arms the hooks for the next backward pass (overlap mode; harmless otherwise).
  void prepare();
  /// Waits for (or, after backward without overlap, runs) every bucket's allreduce and writes
  /// the averaged gradients into the parameters' grads.
  void finish();
  /// Number of buckets and their sizes in elements (for tests and logs).
  std::vector<int64_t> bucket_sizes() const;
  /// Seconds spent inside finish() so far (waiting for communication that backward did not
  /// hide), summed over calls.
  double wait_seconds() const { return wait_s_; }

  struct Bucket;

 private:
  void on_grad(size_t param, const at::Tensor& grad);
  void launch_ready();

  Context& ctx_;
  std::vector<at::Tensor> params_;
  GradientAveragerOptions opts_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<std::pair<size_t, size_t>> where_;  ///< param -> (bucket, slot)
  std::vector<unsigned> hook_ids_;
  bool armed_ = false;
  size_t next_launch_ = 0;
  std::mutex launch_mu_;
  double wait_s_ = 0;
};

}  // namespace graft::dist
