// AdaBN (Li et al. 2016): train on the source, then re-estimate every BatchNorm layer's
// statistics on the target before evaluating and before the final model is kept.
#include <torch/torch.h>

#include "graft/adapt/method.h"
#include "graft/data/loader.h"

namespace graft::adapt {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

class AdaBN : public Method {
 public:
  std::string name() const override { return "adabn"; }
  bool has_term() const override { return false; }
  /// The statistics are reset (mean 0, variance 1, count 0) and re-accumulated by forward
  /// passes in training mode without gradients: layers with a cumulative average get the
  /// exact mean over the batches seen, layers with PyTorch's default momentum 0.1 an
  /// exponential average in which the reset values weigh 0.9^60 < 0.2% after the 60 or
  /// more batches run here.
  void before_target_eval(models::Backbone& m, const data::DatasetPtr& target, const data::Pipeline& pipe,
                          uint64_t seed, int workers) override {
    torch::NoGradGuard ng;
    source_stats_.clear();
    for (auto& [n, b] : m.named_buffers()) {
      source_stats_[n] = b.detach().clone();
      if (ends_with(n, "running_mean") || ends_with(n, "num_batches_tracked")) b.zero_();
      if (ends_with(n, "running_var")) b.fill_(1);
    }
    const int64_t bs = std::min<int64_t>(128, target->size());
    data::Loader l(target, pipe, data::LoaderOptions().batch_size_(bs).seed_(seed).workers_(workers).drop_last_(true));
    const int64_t want = std::max<int64_t>(60, std::min<int64_t>(l.batches_per_epoch(), 400));
    const auto dev = m.device();
    m.train(true);
    int64_t done = 0;
    for (int64_t ep = 0; done < want; ++ep) {
      l.start_epoch(ep);
      while (done < want) {
        auto b = l.next();
        if (!b) break;
        m.forward(b->input.to(dev));
        ++done;
      }
    }
    m.train(false);
  }
  void after_target_eval(models::Backbone& m) override {
    torch::NoGradGuard ng;
    for (auto& [n, b] : m.named_buffers()) b.copy_(source_stats_.at(n));  // training goes on with the source's
  }

 private:
  train::TensorMap source_stats_;
};
}  // namespace

MethodInfo adabn_method() {
  return {"adabn", "source-only training, BatchNorm statistics re-estimated on the target (Li et al. 2016)", false,
          true, {}, 1.0, [](const MethodOptions&) { return std::make_shared<AdaBN>(); }};
}

}  // namespace graft::adapt
