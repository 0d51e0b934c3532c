// graft extract: off-the-shelf features from named layers, streamed to .npy.
#include <iostream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/registry.h"
#include "graft/features/extract.h"

namespace graft::cli {

void add_extract(CLI::App& app) {
  struct Opts {
    Common common;
    features::ExtractOptions ex;
    std::string model, data, out, labels_out, layers, preprocess = "normalize=0.5:0.5";
    int channels = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("extract", "Features of named layers as .npy (float32) with labels (int64)");
  sub->add_option("--model", o->model, "graft checkpoint, TorchScript .pt or zoo name")->required();
  sub->add_option("--layers", o->layers, "comma-separated layer names (see 'graft layers MODEL'); 'input' taps the raw input")->required();
  sub->add_option("--data", o->data, "dataset spec")->required();
  sub->add_option("--out", o->out, "features .npy; labels go to OUT with .labels.npy, a JSON sidecar to OUT.json")
      ->required();
  sub->add_option("--labels-out", o->labels_out, "labels .npy (default: beside --out)");
  sub->add_option("--pool", o->ex.pool, "flatten, avg, max or spp")->capture_default_str();
  sub->add_option("--norm", o->ex.norm, "none, l2 or power (signed sqrt + l2)")->capture_default_str();
  sub->add_option("--tta", o->ex.tta, "none, flip, crops (centre + 4 corners) or crops+flip: features averaged over the views")->capture_default_str();
  sub->add_option("--batch-size", o->ex.batch_size, "examples per batch (0: from the input size, 128 for digits down to 8 for 224x224 photos)")->capture_default_str();
  sub->add_option("--workers", o->ex.workers, "loader threads (-1: a quarter of the cores, 0 below 4 cores)")->capture_default_str();
  sub->add_option("--channels", o->channels, "input channels for zoo/TorchScript models (default: the data's)");
  sub->add_option("--preprocess", o->preprocess, "transforms for zoo/TorchScript models (checkpoints carry their own)")
      ->capture_default_str();
  add_common(*sub, o->common);
  sub->callback([o, sub] {
    apply_common(o->common);
    for (auto& l : split_names(o->layers)) o->ex.layers.push_back(l);
    o->ex.validate();
    auto d = data::open_dataset(o->data);
    auto m = open_model(o->model, d->input_shape(), d->class_names(), o->channels, o->preprocess, 0);
    m.model->to(parse_device(o->common.device));
    o->ex.precision = precision_of(o->common);
    o->ex.channels_last = o->common.channels_last;
    std::string labels = o->labels_out;
    if (labels.empty()) {
      labels = o->out;
      if (labels.size() > 4 && labels.substr(labels.size() - 4) == ".npy") labels.resize(labels.size() - 4);
      labels += ".labels.npy";
    }
    record_run(*sub, o->out + ".");
    Progress prog("graft extract:", o->common.quiet);
    auto r = features::extract(*m.model, m.meta, d, o->ex, o->out, labels, o->model,
                               [&](int64_t done, int64_t total) { prog.update(done, total, "examples"); });
    std::cout << "wrote " << r.rows << " x " << r.dim << " features to " << o->out << ", labels to " << labels
              << ", description to " << o->out << ".json\n";
  });
}

}  // namespace graft::cli
