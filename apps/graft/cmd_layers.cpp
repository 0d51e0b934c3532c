// graft layers MODEL: the names, kinds, output shapes and parameter counts that
// every other command refers to.
#include <iomanip>
#include <iostream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/models/zoo.h"

namespace graft::cli {

void add_layers(CLI::App& app) {
  struct Opts {
    Common common;
    std::string model, input_shape;
    int64_t classes = 10;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("layers", "List a model's layers: name, type, output shape, parameters");
  sub->add_option("model", o->model, "zoo name, TorchScript .pt file or graft checkpoint")->required();
  sub->add_option("--input-shape", o->input_shape, "one example's shape, e.g. 1,28,28 (default: the model's)");
  sub->add_option("--classes", o->classes, "output classes for zoo models")->capture_default_str();
  sub->add_flag("--json", o->json, "print JSON instead of a table");
  add_common(*sub, o->common);
  sub->callback([o] {
    apply_common(o->common);
    std::vector<std::string> classes;
    for (int64_t c = 0; c < o->classes; ++c) classes.push_back(std::to_string(c));
    auto shape = o->input_shape.empty() ? default_input_shape(o->model) : parse_shape(o->input_shape, "--input-shape");
    auto m = open_model(o->model, shape, classes, 0, "", 0);
    if (m.from_checkpoint && o->input_shape.empty()) shape = m.meta.input_shape;
    auto info = m.model->describe(shape);
    std::string chain;
    if (models::is_torchscript(*m.model)) {
      try {
        double d = models::verify_torchscript_chain(*m.model, shape);
        chain = str("children run in order reproduce forward() (max difference ", d, ")");
      } catch (const Error& e) {
        chain = str("warning: ", e.what());
      }
    }
    if (o->json) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& l : info)
        j.push_back({{"name", l.name}, {"kind", l.kind}, {"output_shape", l.out_shape}, {"params", l.params}});
      std::cout << nlohmann::json({{"model", o->model}, {"input_shape", shape}, {"layers", j}}).dump(2) << "\n";
      return;
    }
    size_t nw = 5, kw = 4;
    for (const auto& l : info) {
      nw = std::max(nw, l.name.size());
      kw = std::max(kw, l.kind.size());
    }
    std::cout << "model " << o->model << ", input " << at::IntArrayRef(shape) << ", " << m.model->num_params()
              << " parameters\n";
    std::cout << std::left << std::setw(4) << "#" << std::setw(static_cast<int>(nw) + 2) << "layer"
              << std::setw(static_cast<int>(kw) + 2) << "type" << std::setw(18) << "output" << "params\n";
    for (size_t i = 0; i < info.size(); ++i) {
      std::ostringstream shp;
      shp << at::IntArrayRef(info[i].out_shape);
      std::cout << std::left << std::setw(4) << i << std::setw(static_cast<int>(nw) + 2) << info[i].name
                << std::setw(static_cast<int>(kw) + 2) << info[i].kind << std::setw(18) << shp.str() << info[i].params
                << "\n";
    }
    if (!chain.empty()) std::cout << chain << "\n";
  });
}

}  // namespace graft::cli
