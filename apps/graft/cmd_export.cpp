// graft export: write a graft model as one TorchScript file that Python's torch.jit.load runs.
#include <ATen/ATen.h>
#include <torch/script.h>

#include <iostream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/features/offtheshelf.h"
#include "graft/core/files.h"
#include "graft/models/zoo.h"

namespace graft::cli {

void add_export(CLI::App& app) {
  struct Opts {
    Common common;
    std::string model, format = "torchscript", out;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("export", "Export a model as TorchScript for Python (torch.jit.load)");
  sub->add_option("model", o->model, "graft checkpoint (train/finetune/adapt) or TorchScript file")->required();
  sub->add_option("--format", o->format, "output format: torchscript")->capture_default_str();
  sub->add_option("--out", o->out, "the .pt file to write")->required();
  add_common(*sub, o->common);
  sub->callback([o] {
    apply_common(o->common);
    GRAFT_CHECK(o->format == "torchscript", "--format '", o->format, "' is not known; use torchscript");
    auto m = open_model(o->model, {}, {}, 0, "", 0);
    GRAFT_CHECK(m.from_checkpoint, o->model, " is a TorchScript file without graft's metadata (classes, input ",
                "shape); it is already TorchScript: use it as it is");
    if (io::is_checkpoint(o->model)) {
      auto ck = io::load_checkpoint(o->model);
      GRAFT_CHECK(!features::OffTheShelfModel::holds(ck), o->model, " is an off-the-shelf model (backbone + SVM), "
                  "which graft cannot express as TorchScript; export its backbone's source model instead");
    }
    models::export_torchscript(*m.model, m.meta, o->out);
    // The file must run in libtorch as graft runs the model: compare on a random batch.
    m.model->train(false);
    std::vector<int64_t> shape{2};
    shape.insert(shape.end(), m.meta.input_shape.begin(), m.meta.input_shape.end());
    GRAFT_CHECK(shape.size() > 1, o->model, " does not record its input shape; cannot check the export");
    torch::NoGradGuard ng;
    // what the model receives: random data through its input pipeline (preprocessing included)
    auto x = train::input_pipeline(m.meta, m.meta.input_shape).apply_batch(at::rand(shape));
    auto want = m.model->forward(x);
    auto back = torch::jit::load(o->out, at::kCPU);
    back.eval();
    auto got = back.forward({x}).toTensor();
    GRAFT_CHECK(got.sizes() == want.sizes() && at::allclose(got, want, 1e-4, 1e-5), "internal: the exported ",
                o->out, " does not reproduce the model (shapes ", got.sizes(), " vs ", want.sizes(), ")");
    std::cout << "exported " << o->model << " to " << o->out << " (TorchScript; max |difference| to graft "
              << (got - want).abs().max().item<double>() << " on a random batch); preprocessing '" << m.meta.preprocess
              << "' and " << m.meta.class_names.size() << " class names stored inside (graft.json)\n"
              << "Python: m = torch.jit.load('" << o->out << "'); m.eval(); logits = m(x)  # x: (N,"
              << m.meta.input_shape.size() << "-d example) after the preprocessing\n";
  });
}

}  // namespace graft::cli
