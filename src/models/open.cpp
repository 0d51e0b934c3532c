#include "graft/models/open.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>

#include "graft/core/check.h"
#include "graft/models/zoo.h"

namespace fs = std::filesystem;

namespace graft::models {
namespace {
// What a TorchScript file carries in its graft.json (scripts/convert_tfjs.py, graft export):
// its preprocessing replaces the commands' default; with its classes and input shape it is
// complete (as a checkpoint is) when the caller has no data to take them from (eval, predict).
bool apply_carried_meta(OpenedModel& o, const std::string& spec, const std::vector<std::string>& classes,
                        const std::string& preprocess) {
  auto text = torchscript_meta(*o.model);
  auto j = nlohmann::json::parse(text.empty() ? "{}" : text, nullptr, /*allow_exceptions=*/false);
  o.meta.preprocess = preprocess;
  if (!j.is_object()) return false;
  std::string carried = j.value("preprocess", "");
  // "normalize=0.5:0.5" is the commands' default --preprocess: a carried one wins over it.
  if (!carried.empty() && (preprocess == "normalize=0.5:0.5" || preprocess.empty())) {
    std::cerr << "graft: using the preprocessing stored in " << spec << ": '" << carried
              << "' (give --preprocess to override)\n";
    o.meta.preprocess = carried;
  }
  if (!classes.empty() || !j.contains("class_names") || !j.contains("input_shape")) return false;
  o.meta.class_names = j["class_names"].get<std::vector<std::string>>();
  o.meta.input_shape = j["input_shape"].get<std::vector<int64_t>>();
  o.from_checkpoint = true;
  return true;
}
}  // namespace

OpenedModel open_model(const std::string& spec, std::vector<int64_t> shape, const std::vector<std::string>& classes,
                       int channels, const std::string& preprocess, uint64_t seed) {
  GRAFT_CHECK(!spec.empty(), "--model is required: a zoo name (",
              "dann_mnist[_bn], dann_svhn, convnet6, resnet8, resnet20, mlp[_bn]",
              "), a TorchScript .pt file or a graft checkpoint");
  OpenedModel o;
  // Zoo names contain neither '/' nor '.', files usually do.
  const bool is_file = fs::exists(spec) || spec.find_first_of("/.") != std::string::npos;
  if (is_file) {
    GRAFT_CHECK(fs::exists(spec), "--model '", spec,
                "' does not exist; give a zoo name, a TorchScript file or a checkpoint");
    if (io::is_checkpoint(spec)) {
      auto ck = io::load_checkpoint(spec);
      o.model = ck.model;
      o.meta = ck.meta;
      o.from_checkpoint = true;
      return o;
    }
    o.model = load_torchscript(spec);
    o.meta.arch = "torchscript";
    if (apply_carried_meta(o, spec, classes, preprocess)) return o;
  } else {
    o.meta.arch = spec;
  }
  if (channels > 0 && shape.size() == 3) shape[0] = channels;
  o.meta.input_shape = shape;
  o.meta.class_names = classes;
  if (o.meta.arch != "torchscript") o.meta.preprocess = preprocess;
  if (!o.model) o.model = create_model(spec, shape, static_cast<int64_t>(classes.size()), seed);
  return o;
}

}  // namespace graft::models
