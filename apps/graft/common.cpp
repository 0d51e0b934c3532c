#include "common.h"

#include <ATen/ATen.h>

#include <filesystem>
#include <sstream>

#include "graft/core/check.h"
#include "graft/core/parse.h"
#include "graft/core/runtime.h"
#include "graft/data/readers.h"
#include "graft/models/zoo.h"
#include "graft/train/divergence.h"

namespace fs = std::filesystem;

namespace graft::cli {

void add_common(CLI::App& app, Common& c) {
  app.add_option("--device", c.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", c.threads, "intra-op threads (0: libtorch's default, the number of cores)")
      ->capture_default_str();
  app.add_option("--max-pixels", c.max_pixels,
                 "refuse image files above this many pixels (width x height), read from their header before "
                 "decoding (default 67108864 = 64 Mpx)");
}

void apply_common(const Common& c) {
  warn_if_reference_blas();
  set_threads(c.threads);
  GRAFT_CHECK(c.max_pixels >= 0, "--max-pixels must be positive, got ", c.max_pixels);
  if (c.max_pixels > 0) data::set_max_pixels(c.max_pixels);
  parse_device(c.device);
}

void require_finite(const models::BackbonePtr& model, const std::string& path) {
  auto bad = train::first_non_finite(*model);
  GRAFT_CHECK(bad.empty(), "model '", path, "' has non-finite weights (", bad,
              " holds NaN or inf): the run that saved it diverged; retrain with a lower --lr");
}

void require_finite(const io::Checkpoint& ck, const std::string& path) {
  require_finite(ck.model, path);
  if (ck.attachment)
    for (const auto& [name, t] : ck.attachment->tensors)
      GRAFT_CHECK(!t.is_floating_point() || at::isfinite(t).all().item<bool>(), "model '", path,
                  "' has a non-finite attached tensor (", name, "); refit the classifier");
}

uint64_t parse_seed(const std::string& text, const std::string& option) {
  GRAFT_CHECK(!text.empty(), option, " is empty; give a non-negative integer seed such as 1");
  return static_cast<uint64_t>(parse_int(text, 0, INT64_MAX, option));
}

CLI::Validator seed_check() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        try {
          parse_seed(v, "seed");
        } catch (const Error& e) {
          return e.what();
        }
        return "";
      },
      "SEED>=0");
}

std::vector<uint64_t> parse_seeds(const std::string& text, const std::string& option) {
  GRAFT_CHECK(!text.empty(), option, " is empty; give one or more non-negative seeds such as 1,2,3");
  std::vector<uint64_t> out;
  std::stringstream ss(text + ",");
  for (std::string item; std::getline(ss, item, ',');) out.push_back(parse_seed(item, option));
  return out;
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
    out.push_back(parse_int(tok, 1, 65536, str(option, " '", s, "'")));
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
  } else {
    o.meta.arch = spec;
  }
  if (channels > 0 && shape.size() == 3) shape[0] = channels;
  o.meta.input_shape = shape;
  o.meta.class_names = classes;
  o.meta.preprocess = preprocess;
  if (!o.model) o.model = models::create_model(spec, shape, static_cast<int64_t>(classes.size()), seed);
  return o;
}

}  // namespace graft::cli
