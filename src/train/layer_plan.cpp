// The layer plan: which layers train, at which rate, and the frozen prefix.
#include <torch/torch.h>

#include <algorithm>

#include "graft/core/check.h"
#include "graft/train/trainer.h"

namespace graft::train {

LayerPlan LayerPlan::build(models::Backbone& model, std::vector<double> mult, int64_t unfreeze_every,
                           const std::function<bool(const std::string&)>& keep) {
  LayerPlan plan;
  const size_t L = model.num_layers();
  plan.names = model.layer_names();
  plan.mult = mult.empty() ? std::vector<double>(L, 1.0) : std::move(mult);
  GRAFT_CHECK(plan.mult.size() == L, "got ", plan.mult.size(), " layer learning-rate multipliers for a model of ", L,
              " layers");
  plan.unfreeze_every = unfreeze_every;
  plan.params.resize(L);
  for (auto& [n, p] : model.named_parameters()) {
    if (keep && !keep(n)) {
      p.set_requires_grad(false);
      plan.filtered_out.push_back(p);
      continue;
    }
    // A parameter outside every layer (e.g. one set directly on a TorchScript root module)
    // trains with the top layer.
    auto it = std::find(plan.names.begin(), plan.names.end(), models::layer_of_param(n));
    plan.params[it == plan.names.end() ? L - 1 : static_cast<size_t>(it - plan.names.begin())].emplace_back(n, p);
  }
  for (size_t i = L; i-- > 0;)
    if (!plan.params[i].empty() && plan.mult[i] > 0) plan.top_down.push_back(i);
  GRAFT_CHECK(!plan.top_down.empty(), "nothing to train: every layer with parameters is frozen");
  return plan;
}

bool LayerPlan::trainable(size_t i, int64_t epoch) const {
  if (params[i].empty() || mult[i] <= 0) return false;
  if (unfreeze_every <= 0) return true;
  auto rank = std::find(top_down.begin(), top_down.end(), i) - top_down.begin();
  return rank <= epoch / unfreeze_every;
}

size_t LayerPlan::frozen_prefix(int64_t epoch) const {
  size_t p = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    if (trainable(i, epoch)) break;
    if (!params[i].empty()) p = i + 1;
  }
  return p;
}

void LayerPlan::apply(models::Backbone& model, int64_t epoch, bool adapt_frozen_bn) const {
  for (size_t i = 0; i < names.size(); ++i)
    for (auto& [n, p] : params[i]) p.set_requires_grad(trainable(i, epoch));
  model.train(true);
  // Frozen layers keep their BatchNorm statistics (unless adapting them); the whole
  // frozen prefix runs in eval mode so that it is deterministic and cacheable.
  const size_t P = frozen_prefix(epoch);
  for (size_t i = 0; i < names.size(); ++i)
    if ((!params[i].empty() && !trainable(i, epoch)) || i < P) model.train_layer(i, adapt_frozen_bn);
}

nlohmann::json LayerPlan::to_json() const {
  nlohmann::json layers = nlohmann::json::object();
  for (size_t i = 0; i < names.size(); ++i)
    if (!params[i].empty()) layers[names[i]] = mult[i];
  const size_t P = frozen_prefix(0);
  nlohmann::json j = {{"layers", layers}, {"frozen_prefix", P ? names[P - 1] : ""}};
  if (unfreeze_every > 0) j["unfreeze_every"] = unfreeze_every;
  if (!filtered_out.empty()) j["parameters_left_out"] = filtered_out.size();
  return j;
}

}  // namespace graft::train
