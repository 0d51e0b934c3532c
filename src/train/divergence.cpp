#include "graft/train/divergence.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "graft/core/check.h"

namespace graft::train {

DivergenceGuard::DivergenceGuard(DivergenceOptions opts) : opts_(opts) {
  GRAFT_CHECK(opts_.window >= 1 && opts_.factor > 1 && opts_.patience >= 1 && opts_.min_steps >= 1,
              "DivergenceOptions: window >= 1, factor > 1, patience >= 1 and min_steps >= 1 required");
}

void DivergenceGuard::reset() {
  recent_.clear();
  first_ = 0;
  steps_ = above_ = 0;
  negative_ = false;
  reason_.clear();
}

double DivergenceGuard::running_median() const {
  if (recent_.empty()) return 0;
  std::vector<double> v(recent_.begin(), recent_.end());
  auto mid = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
  std::nth_element(v.begin(), mid, v.end());
  return *mid;
}

bool DivergenceGuard::update(double loss) {
  if (diverged()) return true;
  ++steps_;
  if (!std::isfinite(loss)) {
    reason_ = str("loss is ", loss, " at step ", steps_, ": training diverged; lower --lr (or check the data)");
    return true;
  }
  if (steps_ == 1) first_ = std::max(loss, 1e-12);
  if (loss < 0) negative_ = true;
  double median = running_median();
  if (steps_ > opts_.min_steps && !negative_) {
    double ref = std::max(median, first_);
    above_ = loss > opts_.factor * ref ? above_ + 1 : 0;
    if (above_ >= opts_.patience) {
      reason_ = str("loss ", loss, " at step ", steps_, " has been more than ", opts_.factor,
                    "x its reference ", ref, " (running median ", median, ", first loss ", first_, ") for ", above_,
                    " steps: training diverged; lower --lr");
      return true;
    }
    if (static_cast<int64_t>(recent_.size()) >= opts_.window && median > opts_.factor * first_) {
      reason_ = str("the running median loss ", median, " at step ", steps_, " is more than ", opts_.factor,
                    "x the first loss ", first_, ": training diverged; lower --lr");
      return true;
    }
  }
  recent_.push_back(loss);
  if (static_cast<int64_t>(recent_.size()) > opts_.window) recent_.pop_front();
  return false;
}

std::string first_non_finite(const models::Backbone& model) {
  auto all = model.named_parameters();
  auto bufs = model.named_buffers();
  all.insert(all.end(), bufs.begin(), bufs.end());
  for (const auto& [name, t] : all)
    if (t.defined() && t.is_floating_point() && !at::isfinite(t).all().item<bool>()) return name;
  return "";
}

bool all_finite(const models::Backbone& model) { return first_non_finite(model).empty(); }

}  // namespace graft::train
