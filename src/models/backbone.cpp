#include "graft/models/backbone.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <iostream>

#include "graft/core/check.h"

namespace graft::models {

std::vector<at::Tensor> Backbone::forward_taps(const at::Tensor& x, const std::vector<size_t>& taps) {
  GRAFT_CHECK(!taps.empty(), "forward_taps: no layers to tap");
  std::vector<size_t> sorted(taps);
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  GRAFT_CHECK(sorted.back() < num_layers(), "tap index ", sorted.back(), " beyond the ", num_layers(), " layers");
  std::vector<at::Tensor> outs(sorted.size());
  at::Tensor h = x;
  size_t at_layer = 0;
  for (size_t k = 0; k < sorted.size(); ++k) {
    h = forward_range(h, at_layer, sorted[k] + 1);
    at_layer = sorted[k] + 1;
    outs[k] = h;
  }
  std::vector<at::Tensor> result;
  for (auto t : taps) result.push_back(outs[static_cast<size_t>(std::find(sorted.begin(), sorted.end(), t) - sorted.begin())]);
  return result;
}

void Backbone::check_nested_tap(size_t layer, const std::vector<std::string>& path) const {
  GRAFT_FAIL("layer '", layer_names().at(layer), "' of this ", arch(), " model has no nested children to tap ('",
             layer_names().at(layer), ".", path.empty() ? "" : path[0], "'); dotted taps reach inside the Sequential ",
             "children of TorchScript models");
}

at::Tensor Backbone::forward_nested_tap(const at::Tensor&, size_t layer, const std::vector<std::string>& path) {
  check_nested_tap(layer, path);
  GRAFT_FAIL("internal: forward_nested_tap");
}

size_t Backbone::layer_index(const std::string& name) const {
  const auto& names = layer_names();
  auto it = std::find(names.begin(), names.end(), name);
  if (it != names.end()) return static_cast<size_t>(it - names.begin());
  auto close = close_matches(name, names);
  std::string hint;
  for (const auto& c : close) hint += (hint.empty() ? "" : ", ") + c;
  GRAFT_FAIL("unknown layer '", name, "'", hint.empty() ? "" : "; did you mean " + hint + "?",
             " ('graft layers MODEL' lists all ", names.size(), " layers)");
}

std::vector<LayerInfo> Backbone::describe(const std::vector<int64_t>& input_shape) {
  c10::NoGradGuard ng;
  bool was = is_training();
  train(false);
  std::vector<int64_t> shape{1};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  at::Tensor h = at::zeros(shape, at::TensorOptions().device(device()));
  std::vector<int64_t> counts(num_layers(), 0);
  for (const auto& [n, p] : named_parameters()) {
    auto l = layer_of_param(n);
    auto it = std::find(layer_names().begin(), layer_names().end(), l);
    if (it != layer_names().end()) counts[static_cast<size_t>(it - layer_names().begin())] += p.numel();
  }
  std::vector<LayerInfo> out;
  for (size_t i = 0; i < num_layers(); ++i) {
    try {
      h = forward_range(h, i, i + 1);
    } catch (const c10::Error& e) {
      train(was);
      std::string msg = e.what_without_backtrace();
      GRAFT_FAIL("layer '", layer_names()[i], "' fails on input of shape ", at::IntArrayRef(input_shape),
                 " (", msg.substr(0, msg.find('\n')), "); check --input-shape");
    }
    out.push_back({layer_names()[i], layer_kind(i), std::vector<int64_t>(h.sizes().begin() + 1, h.sizes().end()),
                   counts[i]});
  }
  train(was);
  return out;
}

std::vector<at::Tensor> Backbone::parameters_of(size_t begin, size_t end) const {
  std::vector<at::Tensor> out;
  const auto& names = layer_names();
  for (const auto& [n, p] : named_parameters()) {
    auto l = layer_of_param(n);
    auto it = std::find(names.begin(), names.end(), l);
    size_t i = static_cast<size_t>(it - names.begin());
    if (it != names.end() && i >= begin && i < end) out.push_back(p);
  }
  return out;
}

int64_t Backbone::num_params() const {
  int64_t n = 0;
  for (const auto& [k, p] : named_parameters()) n += p.numel();
  return n;
}

c10::Device Backbone::device() const {
  auto ps = named_parameters();
  return ps.empty() ? c10::Device(c10::kCPU) : ps.front().second.device();
}

std::string layer_of_param(const std::string& n) { return n.substr(0, n.find('.')); }

bool use_channels_last(const std::string& choice, const Backbone& model, c10::Device device) {
  check_choice("channels-last", choice, {"auto", "on", "off"});
  if (choice == "off") return false;
  bool conv = false;
  for (const auto& [name, p] : model.named_parameters()) conv = conv || p.dim() == 4;
  return conv && (choice == "on" || device.is_cpu());
}

void to_channels_last(Backbone& model) {
  c10::NoGradGuard ng;
  for (const auto& list : {model.named_parameters(), model.named_buffers()})
    for (const auto& [name, t] : list)
      if (t.dim() == 4 && !t.is_contiguous(at::MemoryFormat::ChannelsLast))
        const_cast<at::Tensor&>(t).set_data(t.contiguous(at::MemoryFormat::ChannelsLast));
}

void to_contiguous(Backbone& model) {
  c10::NoGradGuard ng;
  for (const auto& list : {model.named_parameters(), model.named_buffers()})
    for (const auto& [name, t] : list)
      if (!t.is_contiguous()) const_cast<at::Tensor&>(t).set_data(t.contiguous());
}

bool apply_channels_last(const std::string& choice, Backbone& model, const std::vector<int64_t>& input_shape,
                         c10::Device device) {
  if (!use_channels_last(choice, model, device)) return false;
  to_channels_last(model);
  if (input_shape.empty()) return true;
  std::string why;
  const bool was = model.is_training();
  model.train(false);
  try {
    c10::NoGradGuard ng;
    std::vector<int64_t> shape{1};
    shape.insert(shape.end(), input_shape.begin(), input_shape.end());
    model.forward_range(channels_last_input(at::zeros(shape, at::TensorOptions().device(device))), 0,
                        model.num_layers());
  } catch (const std::exception& e) {
    why = e.what();
    why = why.substr(0, why.find('\n'));
  }
  model.train(was);
  if (why.empty()) return true;
  to_contiguous(model);
  GRAFT_CHECK(choice != "on", "--channels-last on: model '", model.arch(), "' does not run in channels-last format (",
              why, "); use --channels-last off");
  std::cerr << "graft: note: model '" << model.arch() << "' does not run in channels-last format (" << why
            << "); it runs in its own layout\n";
  return false;
}

at::Tensor channels_last_input(const at::Tensor& x) {
  return x.dim() == 4 ? x.contiguous(at::MemoryFormat::ChannelsLast) : x;
}

}  // namespace graft::models
