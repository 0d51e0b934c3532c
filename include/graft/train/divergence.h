#pragma once
/// Catching divergence that produces no NaN: a loss far above its running median, or
/// weights that are no longer finite.
#include <cstdint>
#include <deque>
#include <string>

#include "graft/models/backbone.h"

namespace graft::train {

/// Options of DivergenceGuard. The defaults were checked on real training curves
/// (tests/test_reliability.cpp: MNIST-like training at sane learning rates never trips,
/// --lr 100 trips within a few dozen steps).
struct DivergenceOptions {
  int64_t window = 50;     ///< running median over this many recent losses
  double factor = 10;      ///< "far above": more than factor x the reference
  int64_t patience = 3;    ///< consecutive steps above before tripping (one noisy batch is not divergence)
  int64_t min_steps = 5;   ///< losses seen before the running median is trusted
  DivergenceOptions& window_(int64_t v) { window = v; return *this; }
  DivergenceOptions& factor_(double v) { factor = v; return *this; }
  DivergenceOptions& patience_(int64_t v) { patience = v; return *this; }
  DivergenceOptions& min_steps_(int64_t v) { min_steps = v; return *this; }
};

/// Fed one training loss per step, says when training has diverged:
///  - the loss is NaN or infinite; or
///  - for `patience` consecutive steps the loss exceeds factor x the reference, where
///    the reference is max(running median of the last `window` losses, first loss);
///    the first loss (before any update) is the chance-level loss, so a loss that
///    climbs slowly far above where training started is caught even after the running
///    median has followed it; or
///  - the running median itself exceeds factor x the first loss (a sustained blow-up).
/// The ratio tests assume a loss >= 0 (cross-entropy and its relatives); once a negative
/// loss is seen only the non-finite test applies, so feed it the supervised part of a
/// composite loss. Pure bookkeeping: no tensors, no clock; same losses, same answer.
class DivergenceGuard {
 public:
  explicit DivergenceGuard(DivergenceOptions opts = {});
  /// Records the loss of one step; returns true when training has diverged (and keeps
  /// returning true for later steps). reason() then says why.
  bool update(double loss);
  bool diverged() const { return !reason_.empty(); }
  /// One line for the user, e.g. "loss 5.9e+29 at step 40 is more than 10x its running
  /// median 2.1 for 3 steps: training diverged; lower --lr". Empty when not diverged.
  const std::string& reason() const { return reason_; }
  /// Median of the recent window (0 before any loss).
  double running_median() const;
  int64_t steps() const { return steps_; }
  /// Back to the state of a new guard (e.g. after restoring a checkpoint).
  void reset();

 private:
  DivergenceOptions opts_;
  std::deque<double> recent_;
  double first_ = 0;
  int64_t steps_ = 0, above_ = 0;
  bool negative_ = false;
  std::string reason_;
};

/// True when every parameter and buffer of the model is finite (no NaN, no inf).
bool all_finite(const models::Backbone& model);

/// Name of the first parameter or buffer holding a NaN or infinite value; empty when
/// all are finite.
std::string first_non_finite(const models::Backbone& model);

}  // namespace graft::train
