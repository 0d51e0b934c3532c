#include "graft/features/extract.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>

#include "graft/core/check.h"
#include "graft/data/loader.h"
#include "graft/io/files.h"
#include "graft/io/npy.h"
#include "graft/train/trainer.h"

namespace graft::features {
namespace {
void check_in(const std::string& opt, const std::string& v, const std::vector<std::string>& ok) {
  if (std::find(ok.begin(), ok.end(), v) != ok.end()) return;
  std::string list;
  for (const auto& o : ok) list += (list.empty() ? "" : ", ") + o;
  GRAFT_FAIL("--", opt, " '", v, "' is not one of ", list);
}
}  // namespace

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
  check_in("pool", pool, {"flatten", "avg", "max", "spp"});
  check_in("norm", norm, {"none", "l2", "power"});
  check_in("tta", tta, {"none", "flip"});
  GRAFT_CHECK(batch_size >= 1 && batch_size <= 65536, "--batch-size must be in [1, 65536], got ", batch_size);
}

ExtractResult extract(models::Backbone& model, const io::ModelMeta& meta, const data::DatasetPtr& dataset,
                      const ExtractOptions& opts, const std::string& features_path, const std::string& labels_path,
                      const std::string& model_name) {
  opts.validate();
  std::vector<size_t> taps;
  for (const auto& l : opts.layers) taps.push_back(model.layer_index(l));
  c10::InferenceMode guard;
  model.train(false);
  auto dev = model.device();
  data::Loader loader(dataset, train::input_pipeline(meta, dataset->input_shape()),
                      data::LoaderOptions().batch_size_(opts.batch_size).shuffle_(false).workers_(opts.workers));
  loader.start_epoch(0);
  std::unique_ptr<io::NpyWriter> fw, lw;
  ExtractResult res;
  while (auto b = loader.next()) {
    auto x = b->input.to(dev);
    auto acts = model.forward_taps(x, taps);
    if (opts.tta == "flip" && x.dim() == 4) {
      auto flipped = model.forward_taps(x.flip({-1}), taps);
      for (size_t k = 0; k < acts.size(); ++k) acts[k] = (acts[k] + flipped[k]) / 2;
    }
    std::vector<at::Tensor> parts;
    for (size_t k = 0; k < acts.size(); ++k) {
      parts.push_back(pool(acts[k], opts.pool).to(at::kFloat));
      if (!fw) res.layer_dims.emplace_back(opts.layers[k], parts.back().size(1));
    }
    auto f = normalize(at::cat(parts, 1), opts.norm).cpu().contiguous();
    if (!fw) {
      fw = std::make_unique<io::NpyWriter>(features_path, std::vector<int64_t>{f.size(1)}, at::kFloat);
      lw = std::make_unique<io::NpyWriter>(labels_path, std::vector<int64_t>{}, at::kLong);
    }
    fw->append(f);
    lw->append(b->label);
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
  io::write_text_atomically(features_path + ".json", res.sidecar.dump(2) + "\n");
  return res;
}

}  // namespace graft::features
