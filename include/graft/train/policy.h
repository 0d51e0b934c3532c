#pragma once
/// Which layers train, and how fast: fine-tuning's layer policies resolved to one
/// learning-rate multiplier per layer (0 = frozen).
#include <functional>
#include <string>
#include <vector>

#include "graft/models/backbone.h"

namespace graft::train {

struct LayerPolicy {
  /// Freeze this layer and every layer below it.
  std::string freeze_through;
  /// Caffe-style rules "GLOB=MULT,..." on layer names, e.g. "conv*=0,layer3*=0.1,head=1";
  /// applied left to right, later rules win.
  std::string lr_mult;
  /// Layer-wise decay: the top layer with parameters gets 1, each lower one d times the one above.
  double layer_decay = 1.0;
};

/// Resolves a policy to a multiplier per layer of `model`, in layer order: layer
/// decay first, then the rules, then freeze_through. `warn` receives a warning for
/// each rule that matches no layer with parameters. Throws graft::Error for unknown
/// layers (close matches listed), malformed rules, negative or non-finite multipliers,
/// and a policy that leaves no parameter trainable.
std::vector<double> resolve_lr_mults(const models::Backbone& model, const LayerPolicy& policy,
                                     const std::function<void(const std::string&)>& warn = {});

/// True when a shell-style glob ('*', '?', '[...]') matches the whole name.
bool glob_match(const std::string& glob, const std::string& name);

}  // namespace graft::train
