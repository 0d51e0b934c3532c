// The registry of adaptation methods: one line per method.
#include <torch/torch.h>

#include "graft/adapt/method.h"
#include "graft/core/check.h"

namespace graft::adapt {

const std::vector<MethodInfo>& methods() {
  static const std::vector<MethodInfo> all = {
      source_only_method(), adabn_method(), dann_method(), cdan_method(), coral_method(), mmd_method(),
      self_train_method(),  mcc_method(),   mdd_method(),  shot_method(), tent_method(),
  };
  return all;
}

const MethodInfo& find_method(const std::string& name) {
  for (const auto& m : methods())
    if (m.name == name) return m;
  std::vector<std::string> names;
  for (const auto& m : methods()) names.push_back(m.name);
  check_choice("method", name, names);
  GRAFT_FAIL("unknown method '", name, "'");
}

std::string method_names() {
  std::string s;
  for (const auto& m : methods()) s += (s.empty() ? "" : ", ") + m.name;
  return s;
}

std::vector<std::string> all_method_options() {
  std::vector<std::string> all;
  for (const auto& m : methods())
    for (const auto& o : m.options)
      if (std::find(all.begin(), all.end(), o) == all.end()) all.push_back(o);
  return all;
}

bool has_batchnorm(const models::Backbone& m) {
  for (auto& [n, b] : m.named_buffers())
    if (n.size() >= 12 && n.compare(n.size() - 12, 12, "running_mean") == 0) return true;
  return false;
}

bool is_batchnorm_affine(const models::Backbone& m, const std::string& param) {
  const auto dot = param.rfind('.');
  if (dot == std::string::npos) return false;
  const std::string module = param.substr(0, dot), leaf = param.substr(dot + 1);
  if (leaf != "weight" && leaf != "bias") return false;
  for (auto& [n, b] : m.named_buffers())
    if (n == module + ".running_mean") return true;
  return false;
}

train::TensorMap named(const torch::nn::Module& m) {
  train::TensorMap s;
  for (const auto& p : m.named_parameters()) s[p.key()] = p.value();
  for (const auto& b : m.named_buffers()) s[b.key()] = b.value();
  return s;
}

void load_named(torch::nn::Module& m, const train::TensorMap& s) {
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) {
    auto it = s.find(p.key());
    GRAFT_CHECK(it != s.end(), "the checkpoint lacks the adaptation module's tensor '", p.key(), "'");
    p.value().copy_(it->second);
  }
  for (auto& b : m.named_buffers()) {
    auto it = s.find(b.key());
    GRAFT_CHECK(it != s.end(), "the checkpoint lacks the adaptation module's tensor '", b.key(), "'");
    b.value().copy_(it->second);
  }
}

}  // namespace graft::adapt
