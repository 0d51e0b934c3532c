// graft transfer --recipe offtheshelf: extract, fit and evaluate per layer on a target
// with label budgets and seeds; print which layer transfers best.
#include <iostream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/registry.h"
#include "graft/features/offtheshelf.h"
#include "graft/core/files.h"

namespace graft::cli {

void add_transfer(CLI::App& app) {
  struct Opts {
    Common common;
    features::TransferOptions t;
    std::string recipe = "offtheshelf", model, train, test, layers, out, save, preprocess = "normalize=0.5:0.5";
    int channels = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("transfer", "Transfer a pretrained model to a target task and compare layers");
  sub->add_option("--recipe", o->recipe, "offtheshelf: a shallow classifier on each layer's features")
      ->capture_default_str();
  sub->add_option("--model", o->model, "graft checkpoint, TorchScript .pt or zoo name")->required();
  sub->add_option("--layers", o->layers, "comma-separated layers to compare; 'input' is the raw-pixel baseline "
                                         "(default: input and every layer but the last)");
  sub->add_option("--train", o->train, "labelled target training pool, e.g. fashion-mnist:train@classes=5-9")
      ->required();
  sub->add_option("--test", o->test, "labelled target test set, e.g. fashion-mnist:test@classes=5-9")->required();
  sub->add_option("--labels-per-class", o->t.labels_per_class, "label budgets drawn from --train (0: all)")
      ->delimiter(',')->capture_default_str();
  sub->add_option("--seeds", o->t.seeds, "one label draw (and CV fold assignment) per seed")
      ->delimiter(',')->capture_default_str()->check(seed_check());
  sub->add_option("--pool", o->t.features.pool, "flatten, avg, max or spp")->capture_default_str();
  sub->add_option("--norm", o->t.features.norm, "none, l2 or power")->capture_default_str();
  sub->add_option("--tta", o->t.features.tta, "none, flip, crops or crops+flip")->capture_default_str();
  sub->add_option("--loss", o->t.classifier.loss, "squared_hinge, hinge or logistic")->capture_default_str();
  sub->add_option("--C", o->t.classifier.C, "regularisation (0: cross-validate on the training labels)")
      ->capture_default_str();
  sub->add_option("--C-grid", o->t.classifier.C_grid, "values of C tried by cross-validation")->delimiter(',');
  sub->add_option("--folds", o->t.classifier.folds, "cross-validation folds")->capture_default_str();
  sub->add_option("--batch-size", o->t.features.batch_size, "examples per forward pass (0: from the input size, 128 for digits down to 8 for 224x224 photos)")->capture_default_str();
  sub->add_option("--workers", o->t.features.workers, "loader threads (-1: a quarter of the cores, 0 below 4 cores)")->capture_default_str();
  sub->add_option("--channels", o->channels, "input channels for zoo/TorchScript models (default: the data's)");
  sub->add_option("--preprocess", o->preprocess, "transforms for zoo/TorchScript models (checkpoints carry their own)")
      ->capture_default_str();
  sub->add_option("--out", o->out, "folder for table.md, results.json and results.csv");
  sub->add_option("--save", o->save, "save the best layer's backbone + classifier (largest budget, first seed) "
                                     "for 'graft predict'");
  add_common(*sub, o->common);
  sub->callback([o, sub] {
    apply_common(o->common);
    GRAFT_CHECK(o->recipe == "offtheshelf", "--recipe '", o->recipe,
                "' is not known; use offtheshelf (fine-tuning is 'graft finetune')");
    auto train = data::open_dataset(o->train);
    auto test = data::open_dataset(o->test);
    auto m = open_model(o->model, train->input_shape(), train->class_names(), o->channels, o->preprocess, 0);
    m.model->to(parse_device(o->common.device));
    o->t.features.precision = precision_of(o->common);
    o->t.features.channels_last = o->common.channels_last;
    auto& layers = o->t.features.layers;
    for (auto& l : split_names(o->layers)) layers.push_back(l);
    if (layers.empty()) {
      layers.push_back("input");
      const auto& names = m.model->layer_names();
      for (size_t i = 0; i + 1 < names.size(); ++i) layers.push_back(names[i]);
    }
    o->t.validate();
    if (!o->out.empty()) record_run(*sub, o->out + "/");
    features::OffTheShelfModel deploy;
    // One line per fitted classifier (budget x seed x layer), each with the ETA.
    const auto fits = static_cast<int64_t>(o->t.labels_per_class.size() * o->t.seeds.size() * layers.size());
    auto prog = std::make_shared<Progress>("", o->common.quiet);
    auto done = std::make_shared<int64_t>(0);
    auto progress = [o, prog, done, fits](const std::string& s) {
      if (o->common.quiet) return;
      std::cerr << s << (s.rfind("budget ", 0) == 0 ? prog->suffix(++*done, fits) : "") << std::endl;
    };
    auto r = features::run_offtheshelf(m.model, m.meta, train, test, o->t, progress,
                                       o->save.empty() ? nullptr : &deploy);
    std::cout << "off-the-shelf transfer, test accuracy (%) mean ± std over " << o->t.seeds.size()
              << " seed(s), beside the mean cross-validated accuracy on the labelled training images; * the layer "
                 "cross-validation chose per budget (test accuracy is reported, never used to choose)\n"
              << r.table();
    for (const auto& [b, l] : r.best)
      std::cout << "layer chosen by cross-validation at " << (b == 0 ? std::string("all") : std::to_string(b)) << " labels/class: " << l
                << "\n";
    if (!o->out.empty()) {
      auto j = r.to_json();
      j["model"] = o->model;
      j["train"] = o->train;
      j["test"] = o->test;
      j["pool"] = o->t.features.pool;
      j["norm"] = o->t.features.norm;
      j["tta"] = o->t.features.tta;
      j["loss"] = o->t.classifier.loss;
      graft::write_text_atomically(o->out + "/results.json", j.dump(2) + "\n");
      graft::write_text_atomically(o->out + "/results.csv", r.to_csv());
      graft::write_text_atomically(o->out + "/table.md", r.table());
      std::cout << "wrote " << o->out << "/table.md, results.json, results.csv\n";
    }
    if (!o->save.empty()) {
      deploy.save(o->save);
      std::cout << "saved layer " << deploy.recipe.layers.front() << " + classifier to " << o->save
                << " (run it with 'graft predict --model " << o->save << "')\n";
    }
  });
}

}  // namespace graft::cli
