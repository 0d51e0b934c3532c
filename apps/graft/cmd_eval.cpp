// graft eval: accuracy, per-class accuracy and confusion matrix of a model on a dataset.
#include <iostream>

#include "common.h"
#include "graft/analysis/metrics.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/registry.h"
#include "graft/core/files.h"
#include "graft/train/trainer.h"

namespace graft::cli {

void add_eval(CLI::App& app) {
  struct Opts {
    Common common;
    std::string model, json_out;
    std::vector<std::string> data;
    int64_t batch = 0;
    int workers = -1;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("eval", "Evaluate a trained model on labelled datasets");
  sub->add_option("--model", o->model, "graft checkpoint (model.ckpt)")->required();
  sub->add_option("--data", o->data, "labelled dataset(s), e.g. mnist:test mnistm:test")->required();
  sub->add_option("--json", o->json_out, "also write the reports as JSON to this file");
  sub->add_option("--batch-size", o->batch, "examples per batch (0: from the input size, 256 for digits down to 8 for 224x224 photos)")->capture_default_str();
  sub->add_option("--workers", o->workers, "loader threads (-1: a quarter of the cores, 0 below 4 cores)")->capture_default_str();
  add_common(*sub, o->common);
  sub->callback([o] {
    apply_common(o->common);
    auto m = open_model(o->model, {}, {}, 0, "", 0);
    GRAFT_CHECK(m.from_checkpoint, "--model '", o->model,
                "' is not a graft checkpoint; evaluation needs the class names and preprocessing saved by graft train");
    require_finite(m.model, o->model);
    m.model->to(parse_device(o->common.device));
    nlohmann::json all = nlohmann::json::object();
    for (const auto& spec : o->data) {
      auto d = data::open_dataset(spec);
      GRAFT_CHECK(d->num_classes() <= m.meta.num_classes(), spec, " has ", d->num_classes(), " classes, the model ",
                  m.meta.num_classes());
      auto r = analysis::evaluate(*m.model, d, train::input_pipeline(m.meta, d->input_shape()), m.meta.num_classes(),
                                  analysis::EvalOptions().batch_size_(o->batch).workers_(o->workers).precision_(precision_of(o->common)));
      std::cout << "== " << d->describe() << "\n" << r.to_table(m.meta.class_names);
      all[spec] = r.to_json(m.meta.class_names);
    }
    if (!o->json_out.empty()) graft::write_text_atomically(o->json_out, all.dump(2) + "\n");
  });
}

}  // namespace graft::cli
