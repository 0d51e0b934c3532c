#pragma once
/// Choosing without target labels: which epoch's weights to keep (a selector offered
/// each epoch's figures), and which of several trade-off values to keep over seeds.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace graft::adapt {

/// Picks an epoch by a label-free criterion. With im or snd, only epochs whose held-out
/// source accuracy is within `tolerance` of the best seen so far may be chosen: an epoch
/// that has not learnt (or has lost) the source task is not trusted, however its target
/// predictions cluster (both criteria favour degenerate predictions early in training).
/// source-val keeps the first epoch with the best source accuracy, last the latest.
/// Among those left, the highest criterion wins, the earliest on ties.
class CheckpointSelector {
 public:
  /// criterion: im | snd | source-val | last. Throws graft::Error for another name.
  CheckpointSelector(std::string criterion, double tolerance);
  /// What an offer decides: keep this epoch's weights (it may still be chosen), and the
  /// earlier epochs that can no longer be chosen (their weights may be dropped).
  struct Decision {
    bool keep = false;
    std::vector<int64_t> drop;
  };
  /// Offers epoch (1-based) with its criterion value (im/snd score; ignored for
  /// source-val and last) and held-out source accuracy (NaN when there is no source, as
  /// for source-free methods: no band then).
  Decision offer(int64_t epoch, double score, double source_acc);
  /// The chosen epoch so far (0 before any offer) and its criterion value.
  int64_t best_epoch() const;
  double best_score() const;
  const std::string& criterion() const { return criterion_; }
  nlohmann::json state() const;
  void restore(const nlohmann::json& state);

 private:
  struct Candidate {
    int64_t epoch;
    double score, source;
  };
  std::string criterion_;
  double tolerance_;
  double best_source_;
  std::vector<Candidate> cands_;
};

/// One run of a seeds x values sweep, as the caller's run function reports it.
struct SweepOutcome {
  double score = 0;             ///< the label-free score the values are compared by (higher is better)
  nlohmann::json details;       ///< anything the caller wants kept beside it
};

/// A run of the sweep.
struct SweepRun {
  uint64_t seed = 0;
  double value = 0;
  bool ok = false;
  std::string error;  ///< why it was skipped (divergence) when !ok
  SweepOutcome outcome;
};

/// What a sweep found: every run, and per seed the index (into runs) of the chosen value
/// (-1 when every value of that seed failed).
struct SweepResult {
  std::vector<SweepRun> runs;
  std::vector<std::pair<uint64_t, int64_t>> chosen;
};

/// Runs run(seed, value) for every seed (outer) and value (inner). A run that diverges
/// (throws graft::Diverged) is reported through `report` and skipped: the grid goes on.
/// Per seed, the value with the highest score is chosen (the first on ties). Every other
/// error (bad input, options) propagates: it would fail every value alike.
SweepResult sweep(const std::vector<uint64_t>& seeds, const std::vector<double>& values,
                  const std::function<SweepOutcome(uint64_t seed, double value)>& run,
                  const std::function<void(const std::string&)>& report = {});

}  // namespace graft::adapt
