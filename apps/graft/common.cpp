#include "common.h"

#include <filesystem>

#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/models/zoo.h"

#include <iostream>

namespace fs = std::filesystem;

namespace graft::cli {

void add_common(CLI::App& app, Common& c) {
  app.add_option("--device", c.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", c.threads, "intra-op threads (0: libtorch's default, the number of cores)")
      ->capture_default_str();
}

void apply_common(const Common& c) {
  warn_if_reference_blas();
  set_threads(c.threads);
  parse_device(c.device);
}

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<int64_t> parse_shape(const std::string& s, const std::string& option) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    GRAFT_CHECK(!tok.empty() && tok.find_first_not_of("0123456789") == std::string::npos, option, " '", s,
                "' is not a shape; use comma-separated sizes like 1,28,28");
    out.push_back(std::stoll(tok));
    GRAFT_CHECK(out.back() > 0 && out.back() <= 65536, option, " '", s, "': sizes must be in [1, 65536]");
  }
  GRAFT_CHECK(!out.empty(), option, " is empty; use comma-separated sizes like 1,28,28");
  return out;
}

std::vector<int64_t> default_input_shape(const std::string& arch) {
  if (arch == "dann_mnist" || arch == "dann_mnist_bn" || arch == "convnet6") return {1, 28, 28};
  if (arch == "dann_svhn" || arch.rfind("resnet", 0) == 0) return {3, 32, 32};
  if (arch.rfind("mlp", 0) == 0) return {2};
  return {3, 224, 224};
}

namespace {
// What a TorchScript file carries in its graft.json (scripts/convert_tfjs.py, graft export):
// its preprocessing replaces the commands' default; with its classes and input shape it is
// complete (as a checkpoint is) when the caller has no data to take them from (eval, predict).
bool apply_carried_meta(OpenedModel& o, const std::string& spec, const std::vector<std::string>& classes,
                        const std::string& preprocess) {
  auto text = models::torchscript_meta(*o.model);
  auto j = nlohmann::json::parse(text.empty() ? "{}" : text, nullptr, /*allow_exceptions=*/false);
  o.meta.preprocess = preprocess;
  if (!j.is_object()) return false;
  std::string carried = j.value("preprocess", "");
  // "normalize=0.5:0.5" is the commands' default --preprocess: a carried one wins over it.
  if (!carried.empty() && (preprocess == "normalize=0.5:0.5" || preprocess.empty())) {
    std::cerr << "graft: using the preprocessing stored in " << spec << ": '" << carried
              << "' (give --preprocess to override)\n";
    o.meta.preprocess = carried;
  } else {
    o.meta.preprocess = preprocess;
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
  GRAFT_CHECK(!spec.empty(), "--model is required: a zoo name (", "dann_mnist[_bn], dann_svhn, convnet6, resnet8, resnet20, mlp[_bn]",
              "), a TorchScript .pt file or a graft checkpoint");
  OpenedModel o;
  // Zoo names contain neither '/' nor '.', files usually do.
  bool is_file = fs::exists(spec) || spec.find_first_of("/.") != std::string::npos;
  if (is_file) {
    GRAFT_CHECK(fs::exists(spec), "--model '", spec, "' does not exist; give a zoo name, a TorchScript file or a checkpoint");
    if (io::is_checkpoint(spec)) {
      auto ck = io::load_checkpoint(spec);
      o.model = ck.model;
      o.meta = ck.meta;
      o.from_checkpoint = true;
      return o;
    }
    o.model = models::load_torchscript(spec);
    o.meta.arch = "torchscript";
    if (apply_carried_meta(o, spec, classes, preprocess)) return o;
  } else {
    o.meta.arch = spec;
  }
  if (channels > 0 && shape.size() == 3) shape[0] = channels;
  o.meta.input_shape = shape;
  o.meta.class_names = classes;
  if (o.meta.arch != "torchscript") o.meta.preprocess = preprocess;
  if (!o.model) o.model = models::create_model(spec, shape, static_cast<int64_t>(classes.size()), seed);
  return o;
}

}  // namespace graft::cli
