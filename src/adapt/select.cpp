#include "graft/adapt/select.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "graft/core/check.h"

namespace graft::adapt {

CheckpointSelector::CheckpointSelector(std::string criterion, double tolerance)
    : criterion_(std::move(criterion)), tolerance_(tolerance), best_source_(-std::numeric_limits<double>::infinity()) {
  check_choice("select", criterion_, {"im", "snd", "source-val", "last"});
  GRAFT_CHECK(std::isfinite(tolerance) && tolerance >= 0 && tolerance <= 1, "the source tolerance must be in [0, 1], got ",
              tolerance);
}

CheckpointSelector::Decision CheckpointSelector::offer(int64_t epoch, double score, double source_acc) {
  Decision d;
  auto drop_all_but = [&](const Candidate& c) {
    for (const auto& o : cands_)
      if (o.epoch != c.epoch) d.drop.push_back(o.epoch);
    cands_.assign(1, c);
  };
  if (criterion_ == "last") {
    d.keep = true;
    drop_all_but({epoch, static_cast<double>(epoch), source_acc});
    return d;
  }
  if (criterion_ == "source-val") {
    GRAFT_CHECK(!std::isnan(source_acc), "--select source-val needs held-out source data; this method has none");
    if (cands_.empty() || source_acc > cands_[0].source) {
      d.keep = true;
      drop_all_but({epoch, source_acc, source_acc});
    }
    return d;
  }
  GRAFT_CHECK(std::isfinite(score), "the ", criterion_, " score of epoch ", epoch, " is ", score);
  const bool banded = !std::isnan(source_acc);
  if (banded) best_source_ = std::max(best_source_, source_acc);
  const double floor = banded ? best_source_ - tolerance_ - 1e-12 : -std::numeric_limits<double>::infinity();
  const double src = banded ? source_acc : 0.0;
  // Candidates that fell out of the band, or that the new epoch beats on both counts, go.
  const bool in_band = src >= floor;
  const bool dominated = std::any_of(cands_.begin(), cands_.end(), [&](const Candidate& c) {
    return c.score >= score && c.source >= src;
  });
  std::vector<Candidate> left;
  for (const auto& c : cands_) {
    const bool out = c.source < floor || (in_band && !dominated && score > c.score && src >= c.source);
    (out ? d.drop.push_back(c.epoch) : left.push_back(c));
  }
  cands_ = std::move(left);
  if (in_band && !dominated) {
    cands_.push_back({epoch, score, src});
    d.keep = true;
  }
  return d;
}

int64_t CheckpointSelector::best_epoch() const {
  const Candidate* best = nullptr;
  for (const auto& c : cands_)
    if (!best || c.score > best->score || (c.score == best->score && c.epoch < best->epoch)) best = &c;
  return best ? best->epoch : 0;
}

double CheckpointSelector::best_score() const {
  const int64_t e = best_epoch();
  for (const auto& c : cands_)
    if (c.epoch == e) return c.score;
  return std::nan("");
}

nlohmann::json CheckpointSelector::state() const {
  nlohmann::json c = nlohmann::json::array();
  for (const auto& x : cands_) c.push_back({x.epoch, x.score, x.source});
  nlohmann::json j = {{"criterion", criterion_}, {"candidates", c}};
  if (std::isfinite(best_source_)) j["best_source"] = best_source_;
  return j;
}

void CheckpointSelector::restore(const nlohmann::json& j) {
  GRAFT_CHECK(j.value("criterion", "") == criterion_, "the saved selector chose by ", j.value("criterion", "?"),
              ", not by ", criterion_);
  cands_.clear();
  for (const auto& c : j.at("candidates")) cands_.push_back({c[0].get<int64_t>(), c[1].get<double>(), c[2].get<double>()});
  best_source_ = j.contains("best_source") ? j["best_source"].get<double>() : -std::numeric_limits<double>::infinity();
}

SweepResult sweep(const std::vector<uint64_t>& seeds, const std::vector<double>& values,
                  const std::function<SweepOutcome(uint64_t, double)>& run,
                  const std::function<void(const std::string&)>& report) {
  GRAFT_CHECK(!seeds.empty(), "the sweep has no seed");
  GRAFT_CHECK(!values.empty(), "the sweep has no value");
  SweepResult r;
  for (auto seed : seeds) {
    int64_t best = -1;
    for (double v : values) {
      SweepRun s;
      s.seed = seed, s.value = v;
      try {
        s.outcome = run(seed, v);
        s.ok = std::isfinite(s.outcome.score);
        if (!s.ok) s.error = "its score is not a finite number";
      } catch (const Diverged& e) {
        s.error = e.what();
      }
      if (!s.ok && report) report(str("seed ", seed, " value ", v, " skipped: ", s.error));
      r.runs.push_back(s);
      const auto i = static_cast<int64_t>(r.runs.size()) - 1;
      if (s.ok && (best < 0 || s.outcome.score > r.runs[static_cast<size_t>(best)].outcome.score)) best = i;
    }
    r.chosen.emplace_back(seed, best);
  }
  return r;
}

}  // namespace graft::adapt
