#include "graft/models/open.h"

#include <filesystem>

#include "graft/core/check.h"
#include "graft/models/zoo.h"

namespace fs = std::filesystem;

namespace graft::models {

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
  } else {
    o.meta.arch = spec;
  }
  if (channels > 0 && shape.size() == 3) shape[0] = channels;
  o.meta.input_shape = shape;
  o.meta.class_names = classes;
  o.meta.preprocess = preprocess;
  if (!o.model) o.model = create_model(spec, shape, static_cast<int64_t>(classes.size()), seed);
  return o;
}

}  // namespace graft::models
