#include "graft/features/extract.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <sstream>
#include <iostream>

#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/loader.h"
#include "graft/data/model_input.h"
#include "graft/core/files.h"
#include "graft/io/npy.h"
#include "graft/models/zoo.h"

namespace graft::features {
at::Tensor pool(const at::Tensor& act, const std::string& how) {
  if (act.dim() <= 2) return act.reshape({act.size(0), -1});
  if (how == "flatten") return act.flatten(1);
  auto spatial = act.flatten(2);  // (N,C,S)
  if (how == "avg") return spatial.mean(2);
  if (how == "max") return std::get<0>(spatial.max(2));
  if (how == "spp") {
    GRAFT_CHECK(act.dim() == 4, "spp pooling needs (N,C,H,W) activations, got ", act.sizes());
    auto g1 = std::get<0>(spatial.max(2));
    auto g2 = at::adaptive_max_pool2d(act, {2, 2});
    return at::cat({g1, std::get<0>(g2).flatten(1)}, 1);
  }
  GRAFT_FAIL("--pool '", how, "' is not one of flatten, avg, max, spp");
}

at::Tensor normalize(const at::Tensor& f, const std::string& how) {
  if (how == "none") return f;
  auto g = how == "power" ? f.sign() * f.abs().sqrt() : f;
  if (how == "l2" || how == "power") return g / g.norm(2, 1, /*keepdim=*/true).clamp_min(1e-12);
  GRAFT_FAIL("--norm '", how, "' is not one of none, l2, power");
}

void ExtractOptions::validate() const {
  GRAFT_CHECK(!layers.empty(), "--layers is empty; name one or more layers from 'graft layers MODEL'");
  check_choice("pool", pool, {"flatten", "avg", "max", "spp"});
  check_choice("norm", norm, {"none", "l2", "power"});
  check_choice("tta", tta, {"none", "flip", "crops", "crops+flip"});
  check_choice("channels-last", channels_last, {"auto", "on", "off"});
  GRAFT_CHECK(batch_size >= 0 && batch_size <= 65536, "--batch-size must be in [1, 65536] (0: from the input size), got ",
              batch_size);
  GRAFT_CHECK(workers >= -1 && workers <= 256, "--workers must be in [0, 256] (-1: from the cores), got ", workers);
}

std::vector<at::Tensor> tta_views(const at::Tensor& x, const std::string& tta) {
  if (tta == "none" || x.dim() != 4) return {x};
  std::vector<at::Tensor> views;
  if (tta == "flip") return {x, x.flip({-1})};
  const int64_t H = x.size(2), W = x.size(3);
  const int64_t ch = std::max<int64_t>(1, (H * 7 + 4) / 8), cw = std::max<int64_t>(1, (W * 7 + 4) / 8);
  const int64_t offs[5][2] = {{(H - ch) / 2, (W - cw) / 2}, {0, 0}, {0, W - cw}, {H - ch, 0}, {H - ch, W - cw}};
  auto xf = x.is_floating_point() ? x : x.to(at::kFloat);
  for (const auto& o : offs) {
    auto c = xf.narrow(2, o[0], ch).narrow(3, o[1], cw);
    auto v = (ch == H && cw == W) ? c : at::upsample_bilinear2d(c.contiguous(), {H, W}, false, c10::nullopt, c10::nullopt);
    views.push_back(v);
    if (tta == "crops+flip") views.push_back(v.flip({-1}));
  }
  return views;
}

FeatureExtractor::FeatureExtractor(models::Backbone& model, ExtractOptions opts) : model_(model), opts_(std::move(opts)) {
  opts_.validate();
  const auto& names = model_.layer_names();
  for (const auto& l : opts_.layers) {
    bool is_input = l == "input" && std::find(names.begin(), names.end(), l) == names.end();
    if (is_input) {
      source_.push_back(-1);
      continue;
    }
    const auto dot = l.find('.');
    if (dot != std::string::npos && std::find(names.begin(), names.end(), l) == names.end()) {
      source_.push_back(-2 - static_cast<int>(nested_.size()));
      nested_.push_back(nested_tap(l));
      continue;
    }
    source_.push_back(tap_slot(model_.layer_index(l)));
  }
  // The inference-optimised copy prepacks convolution weights for oneDNN in float32, which
  // autocast cannot lower: reduced precision runs the model as loaded. It also inlines nested
  // children, which dotted taps need.
  // float32 runs the optimised copy (faster than channels-last eager: 0.32 against 0.37 s per
  // batch of 32 for ResNet-18 here); under auto, channels-last serves reduced precision.
  const bool auto_on = opts_.channels_last != "auto" || opts_.precision != Precision::kFp32;
  // Put in channels-last (layouts change, values do not) at the first batch, whose shape the
  // check of models::apply_channels_last needs.
  channels_last_ = auto_on && models::use_channels_last(opts_.channels_last, model_, model_.device());
  if (opts_.optimize && opts_.precision == Precision::kFp32 && !channels_last_ && nested_.empty() && !taps_.empty()) {
    std::vector<std::string> skipped;
    optimized_ = models::optimized_for_inference(model_, &skipped);
    for (const auto& s : skipped) std::cerr << "graft: warning: layer " << s << " runs without inference optimisation\n";
  }
}

int FeatureExtractor::tap_slot(size_t layer) {
  auto it = std::find(taps_.begin(), taps_.end(), layer);
  if (it == taps_.end()) taps_.push_back(layer);
  return static_cast<int>(std::find(taps_.begin(), taps_.end(), layer) - taps_.begin());
}

FeatureExtractor::Nested FeatureExtractor::nested_tap(const std::string& name) {
  Nested n;
  std::vector<std::string> parts;
  std::stringstream ss(name);
  for (std::string p; std::getline(ss, p, '.');) {
    GRAFT_CHECK(!p.empty(), "layer '", name, "': empty part in a dotted tap");
    parts.push_back(p);
  }
  n.layer = model_.layer_index(parts[0]);
  n.path.assign(parts.begin() + 1, parts.end());
  model_.check_nested_tap(n.layer, n.path);
  // The nested child needs its layer's input: the output of the layer before (or the input).
  n.input_slot = n.layer == 0 ? -1 : tap_slot(n.layer - 1);
  return n;
}

std::vector<at::Tensor> FeatureExtractor::pooled(const at::Tensor& x) {
  std::vector<at::Tensor> sum(opts_.layers.size());
  if (channels_last_ && !channels_last_checked_) {
    channels_last_checked_ = true;
    std::vector<int64_t> shape(x.sizes().begin() + 1, x.sizes().end());
    channels_last_ = models::apply_channels_last(opts_.channels_last, model_, shape, x.device());
  }
  auto views = tta_views(x, opts_.tta);
  if (channels_last_)
    for (auto& v : views) v = models::channels_last_input(v);
  for (const auto& v : views) {
    std::vector<at::Tensor> acts;
    if (!taps_.empty()) {
      AutocastGuard ac(opts_.precision, v.device().type());
      acts = net().forward_taps(v, taps_);
    }
    for (size_t k = 0; k < opts_.layers.size(); ++k) {
      at::Tensor a = source_[k] >= 0 ? acts[static_cast<size_t>(source_[k])] : v;
      if (source_[k] <= -2) {
        const auto& n = nested_[static_cast<size_t>(-2 - source_[k])];
        AutocastGuard ac(opts_.precision, v.device().type());
        a = net().forward_nested_tap(n.input_slot < 0 ? v : acts[static_cast<size_t>(n.input_slot)], n.layer, n.path);
      }
      auto p = pool(a, source_[k] == -1 ? "flatten" : opts_.pool).to(at::kFloat);
      sum[k] = sum[k].defined() ? sum[k] + p : p;
    }
  }
  if (views.size() > 1)
    for (auto& s : sum) s = s / static_cast<double>(views.size());
  return sum;
}

std::vector<at::Tensor> FeatureExtractor::per_layer(const at::Tensor& x) {
  c10::InferenceMode guard;
  auto parts = pooled(x);
  for (auto& p : parts) {
    p = normalize(p, opts_.norm).cpu().contiguous();
    GRAFT_CHECK(at::isfinite(p).all().item<bool>(), "features contain NaN or infinite values; check the model "
                "weights and the input data");
  }
  return parts;
}

at::Tensor FeatureExtractor::concatenated(const at::Tensor& x, std::vector<int64_t>* dims) {
  c10::InferenceMode guard;
  auto parts = pooled(x);
  if (dims) {
    dims->clear();
    for (const auto& p : parts) dims->push_back(p.size(1));
  }
  auto f = normalize(at::cat(parts, 1), opts_.norm).cpu().contiguous();
  GRAFT_CHECK(at::isfinite(f).all().item<bool>(), "features contain NaN or infinite values; check the model weights "
              "and the input data");
  return f;
}

namespace {
/// The dataset in its own order, batched and preprocessed for the model.
/// On a GPU the batches are built in pinned memory, for asynchronous copies.
data::Loader in_order(const io::ModelMeta& meta, const data::DatasetPtr& dataset, const ExtractOptions& opts,
                      c10::Device dev) {
  auto pipe = data::model_input_pipeline(meta, dataset->input_shape());
  int64_t values = 1;
  for (auto d : meta.input_shape) values *= d;
  const int64_t batch = opts.batch_size > 0 ? opts.batch_size : default_batch_size(values, 128, /*inference=*/true);
  const int workers = opts.workers >= 0 ? opts.workers : default_workers();
  return data::Loader(dataset, pipe,
                      data::LoaderOptions().batch_size_(batch).shuffle_(false).workers_(workers).pin_memory_(dev.is_cuda()));
}

at::Tensor on(const at::Tensor& x, c10::Device dev) { return x.to(dev, x.scalar_type(), /*non_blocking=*/true); }
}  // namespace

FeatureSet extract_in_memory(models::Backbone& model, const io::ModelMeta& meta, const data::DatasetPtr& dataset,
                             const ExtractOptions& opts) {
  FeatureExtractor fx(model, opts);
  model.train(false);
  auto dev = model.device();
  auto loader = in_order(meta, dataset, opts, dev);
  loader.start_epoch(0);
  std::vector<std::vector<at::Tensor>> parts(opts.layers.size());
  std::vector<at::Tensor> labels;
  while (auto b = loader.next()) {
    auto f = fx.per_layer(on(b->input, dev));
    for (size_t k = 0; k < f.size(); ++k) parts[k].push_back(f[k]);
    labels.push_back(b->label);
  }
  GRAFT_CHECK(!labels.empty(), dataset->describe(), ": no example could be read");
  FeatureSet out;
  for (auto& p : parts) out.layers.push_back(at::cat(p, 0));
  out.labels = at::cat(labels, 0).to(at::kLong);
  return out;
}

ExtractResult extract(models::Backbone& model, const io::ModelMeta& meta, const data::DatasetPtr& dataset,
                      const ExtractOptions& opts, const std::string& features_path, const std::string& labels_path,
                      const std::string& model_name, const std::function<void(int64_t, int64_t)>& progress) {
  FeatureExtractor fx(model, opts);
  model.train(false);
  auto dev = model.device();
  auto loader = in_order(meta, dataset, opts, dev);
  loader.start_epoch(0);
  std::unique_ptr<io::NpyWriter> fw, lw;
  ExtractResult res;
  while (auto b = loader.next()) {
    std::vector<int64_t> dims;
    auto f = fx.concatenated(on(b->input, dev), fw ? nullptr : &dims);
    if (!fw) {
      for (size_t k = 0; k < dims.size(); ++k) res.layer_dims.emplace_back(opts.layers[k], dims[k]);
      fw = std::make_unique<io::NpyWriter>(features_path, std::vector<int64_t>{f.size(1)}, at::kFloat);
      lw = std::make_unique<io::NpyWriter>(labels_path, std::vector<int64_t>{}, at::kLong);
    }
    fw->append(f);
    lw->append(b->label);
    if (progress) progress(fw->rows(), dataset->size());
  }
  GRAFT_CHECK(fw, dataset->describe(), ": no example could be read");
  res.rows = fw->rows();
  res.dim = 0;
  for (const auto& [n, d] : res.layer_dims) res.dim += d;
  nlohmann::json dims = nlohmann::json::array();
  for (const auto& [n, d] : res.layer_dims) dims.push_back({{"layer", n}, {"dim", d}});
  res.sidecar = {{"model", model_name},      {"arch", meta.arch},          {"layers", dims},
                 {"pool", opts.pool},        {"norm", opts.norm},          {"tta", opts.tta},
                 {"dataset", dataset->describe()}, {"rows", res.rows},     {"dim", res.dim},
                 {"features", features_path}, {"labels", labels_path},     {"class_names", dataset->class_names()}};
  fw->close();
  lw->close();
  graft::write_text_atomically(features_path + ".json", res.sidecar.dump(2) + "\n");
  return res;
}

}  // namespace graft::features
