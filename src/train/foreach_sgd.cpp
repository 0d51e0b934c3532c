#include "foreach_sgd.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "optimizer_state.h"

namespace graft::train {

torch::Tensor ForeachSGD::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  const torch::Tensor loss = detail::loss_of(closure);
  for (auto& group : param_groups_) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    const double wd = o.weight_decay(), momentum = o.momentum(), dampening = o.dampening();
    // By device and dtype, in parameter order: the parameters, their step directions (the
    // gradient, plus wd times the weight), their momentum buffers, and of those the ones that
    // existed before this step (a new buffer is the direction itself, as libtorch starts it).
    struct Lists {
      std::vector<at::Tensor> ps, ds, bufs, old_bufs, old_ds;
    };
    std::map<std::pair<std::string, int>, Lists> by;
    for (auto& p : group.params())
      if (p.grad().defined()) {
        auto& l = by[{p.device().str(), static_cast<int>(p.scalar_type())}];
        l.ps.push_back(p);
        l.ds.push_back(p.grad());
      }
    for (auto& [kind, l] : by) {
      if (wd != 0) l.ds = at::_foreach_add(l.ds, l.ps, wd);
      if (momentum != 0) {
        for (size_t i = 0; i < l.ps.size(); ++i) {
          auto key = detail::state_key(state_, l.ps[i]);
          auto it = state_.find(key);
          if (it == state_.end()) {
            auto st = std::make_unique<torch::optim::SGDParamState>();
            st->momentum_buffer(torch::clone(l.ds[i]).detach());
            l.bufs.push_back(st->momentum_buffer());
            state_[key] = std::move(st);
          } else {
            l.bufs.push_back(static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer());
            l.old_bufs.push_back(l.bufs.back());
            l.old_ds.push_back(l.ds[i]);
          }
        }
        if (!l.old_bufs.empty()) {
          at::_foreach_mul_(l.old_bufs, momentum);
          at::_foreach_add_(l.old_bufs, l.old_ds, 1 - dampening);
        }
        l.ds = o.nesterov() ? at::_foreach_add(l.ds, l.bufs, momentum) : l.bufs;
      }
      at::_foreach_add_(l.ps, l.ds, -o.lr());
    }
  }
  return loss;
}

}  // namespace graft::train
