#include "graft/train/policy.h"

#include <fnmatch.h>

#include <cmath>
#include <set>
#include <sstream>

#include "graft/core/check.h"

namespace graft::train {

bool glob_match(const std::string& glob, const std::string& name) {
  return fnmatch(glob.c_str(), name.c_str(), 0) == 0;
}

std::vector<double> resolve_lr_mults(const models::Backbone& model, const LayerPolicy& policy,
                                     const std::function<void(const std::string&)>& warn) {
  const auto& names = model.layer_names();
  std::set<std::string> with_params;
  for (const auto& [n, p] : model.named_parameters()) with_params.insert(models::layer_of_param(n));
  std::vector<double> mult(names.size(), 1.0);

  GRAFT_CHECK(std::isfinite(policy.layer_decay) && policy.layer_decay > 0 && policy.layer_decay <= 1,
              "--layer-decay must be in (0, 1], got ", policy.layer_decay);
  double f = 1.0;
  for (size_t i = names.size(); i-- > 0;) {
    mult[i] = f;
    if (with_params.count(names[i])) f *= policy.layer_decay;
  }

  std::stringstream ss(policy.lr_mult);
  for (std::string rule; std::getline(ss, rule, ',');) {
    if (rule.empty()) continue;
    auto eq = rule.find('=');
    GRAFT_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < rule.size(), "--lr-mult rule '", rule,
                "' is not GLOB=MULT (e.g. conv*=0 or layer3*=0.1)");
    auto glob = rule.substr(0, eq);
    double m = 0;
    try {
      size_t used = 0;
      m = std::stod(rule.substr(eq + 1), &used);
      GRAFT_CHECK(used == rule.size() - eq - 1, "");
    } catch (const std::exception&) {
      GRAFT_FAIL("--lr-mult rule '", rule, "': '", rule.substr(eq + 1), "' is not a number");
    }
    GRAFT_CHECK(std::isfinite(m) && m >= 0, "--lr-mult rule '", rule, "': the multiplier must be >= 0 (0 freezes)");
    bool hit = false;
    for (size_t i = 0; i < names.size(); ++i) {
      if (!glob_match(glob, names[i])) continue;
      mult[i] = m;
      hit |= with_params.count(names[i]) > 0;
    }
    if (!hit && warn)
      warn("--lr-mult rule '" + rule + "' matches no layer with parameters (layers: see 'graft layers')");
  }

  if (!policy.freeze_through.empty()) {
    size_t k = model.layer_index(policy.freeze_through);
    for (size_t i = 0; i <= k; ++i) mult[i] = 0;
  }
  bool any = false;
  for (size_t i = 0; i < names.size(); ++i) any |= mult[i] > 0 && with_params.count(names[i]);
  GRAFT_CHECK(any, "the layer policy freezes every layer with parameters: nothing would train. Freeze fewer "
                   "layers (--freeze-through below the head) or raise an --lr-mult");
  return mult;
}

}  // namespace graft::train
