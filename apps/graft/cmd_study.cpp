// graft study transferability | layers: layer-by-layer transfer studies with plots,
// tables and an HTML report.
#include <iostream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/registry.h"
#include "graft/study/layer_study.h"
#include "graft/study/transferability.h"

namespace graft::cli {
namespace {

void add_study_transferability(CLI::App& study) {
  struct Opts {
    Common common;
    study::TransferabilityOptions s;
    std::string data, test, split, out;
  };
  auto o = std::make_shared<Opts>();
  o->s.train.epochs = 5;
  auto* sub = study.add_subcommand(
      "transferability",
      "Yosinski et al. 2014: base networks on class halves A and B, then AnB, AnB+, BnB, BnB+ for every n");
  sub->add_option("--data", o->data,
                  "dataset name (uses NAME:train and NAME:test, e.g. fashion-mnist, mnist) or a training spec "
                  "with --test")->required();
  sub->add_option("--test", o->test, "test set spec (default: NAME:test)");
  sub->add_option("--split", o->split, "class halves A/B, e.g. 0-4/5-9")->required();
  sub->add_option("--model", o->s.arch, "zoo architecture, retrained from fresh weights (convnet6 has 6 "
                                        "transferable layers)")->capture_default_str();
  sub->add_option("--n", o->s.ns, "numbers of layers to copy (default: 1 .. every transferable layer)")
      ->delimiter(',');
  sub->add_option("--seeds", o->s.seeds, "one full study per seed; mean and spread over them")
      ->delimiter(',')->capture_default_str()->check(seed_check());
  sub->add_option("--per-class", o->s.per_class, "training images per class in each half, one draw shared by every seed (0: all)")
      ->capture_default_str();
  sub->add_option("--score-examples", o->s.score_examples, "B training images for the LogME score of each layer")
      ->capture_default_str();
  sub->add_option("--preprocess", o->s.preprocess, "deterministic transforms before the model")->capture_default_str();
  auto& c = o->s.train;
  sub->add_option("--epochs", c.epochs, "epochs of every training run")->capture_default_str();
  sub->add_option("--batch-size", c.batch_size, "examples per step")->capture_default_str();
  sub->add_option("--optimizer", c.optimizer, "sgd, adam or adamw")->capture_default_str();
  sub->add_option("--lr", c.lr, "learning rate (the same for every run, as in the paper)")->capture_default_str();
  sub->add_option("--momentum", c.momentum, "SGD momentum")->capture_default_str();
  sub->add_option("--weight-decay", c.weight_decay, "L2 weight decay")->capture_default_str();
  sub->add_option("--schedule", c.schedule, "constant, step, cosine or inv")->capture_default_str();
  sub->add_option("--augment", c.augment, "random transforms of the training images");
  sub->add_option("--workers", c.workers, "loader threads")->capture_default_str();
  sub->add_option("--out", o->out, "study folder: one subfolder per run, results.json, table.md, "
                                   "transferability.svg, report.html; rerun the same command to resume")->required();
  add_common(*sub, o->common);
  sub->callback([o, sub] {
    refuse_data_parallel("study", "it trains many small networks; run seeds as separate processes instead");
    apply_common(o->common);
    o->s.train.device = o->common.device;
    o->s.train.precision = o->common.precision;
    o->s.train.channels_last = o->common.channels_last;
    const auto slash = o->split.find('/');
    GRAFT_CHECK(slash != std::string::npos, "--split '", o->split, "' must be two class lists A/B, e.g. 0-4/5-9");
    const auto a = o->split.substr(0, slash), b = o->split.substr(slash + 1);
    if (!a.empty()) o->s.classes_a = data::parse_class_list(a);
    if (!b.empty()) o->s.classes_b = data::parse_class_list(b);
    o->s.validate();
    std::string train_spec = o->data, test_spec = o->test;
    if (o->data.find(':') == std::string::npos) {
      train_spec = o->data + ":train";
      if (test_spec.empty()) test_spec = o->data + ":test";
    }
    GRAFT_CHECK(!test_spec.empty(), "--data '", o->data, "' is a dataset spec; give its test set with --test");
    auto train = data::open_dataset(train_spec);
    auto test = data::open_dataset(test_spec);
    std::cerr << "graft study transferability: " << o->s.arch << " on " << train->describe() << ", halves " << a
              << " / " << b << ", " << o->s.seeds.size() << " seed(s), " << o->s.train.epochs
              << " epochs per run -> " << o->out << "\n";
    // The record goes in once the study has checked its options and claimed the folder
    // (its first progress line), so that a refused command leaves no record behind.
    auto progress = [o, sub](const std::string& s) {
      record_run(*sub, o->out + "/");
      if (!o->common.quiet) std::cerr << s << std::endl;
    };
    auto r = study::run_transferability(train, test, o->s, o->out, progress);
    record_run(*sub, o->out + "/");
    std::cout << r.table_markdown() << "\nFindings of Yosinski et al. 2014 here:\n";
    for (const auto& f : r.findings())
      std::cout << "- [" << f.verdict() << "] " << f.claim << " (" << f.evidence << ")\n";
    std::cout << "report: " << o->out << "/report.html\n";
  });
}

void add_study_layers(CLI::App& study) {
  struct Opts {
    Common common;
    features::TransferOptions t;
    std::string model, train, test, layers, out, preprocess = "normalize=0.5:0.5";
    int channels = 0;
  };
  auto o = std::make_shared<Opts>();
  o->t.labels_per_class = {100};
  o->t.seeds = {1, 2, 3};
  auto* sub = study.add_subcommand(
      "layers", "Linear-probe accuracy of every layer of one model on one target, beside LogME (no training)");
  sub->add_option("--model", o->model, "graft checkpoint, TorchScript .pt or zoo name")->required();
  sub->add_option("--train", o->train, "labelled target training pool")->required();
  sub->add_option("--test", o->test, "labelled target test set")->required();
  sub->add_option("--layers", o->layers, "comma-separated layers (default: every layer but the last)");
  sub->add_option("--labels-per-class", o->t.labels_per_class, "one label budget drawn from --train (0: all)")
      ->delimiter(',')->capture_default_str();
  sub->add_option("--seeds", o->t.seeds, "one label draw per seed")->delimiter(',')
      ->capture_default_str()
      ->check(seed_check());
  sub->add_option("--pool", o->t.features.pool, "flatten, avg, max or spp")->capture_default_str();
  sub->add_option("--loss", o->t.classifier.loss, "squared_hinge, hinge or logistic")->capture_default_str();
  sub->add_option("--C", o->t.classifier.C, "regularisation (0: cross-validate)")->capture_default_str();
  sub->add_option("--workers", o->t.features.workers, "loader threads (-1: a quarter of the cores, 0 below 4 cores)")->capture_default_str();
  sub->add_option("--channels", o->channels, "input channels for zoo/TorchScript models (default: the data's)");
  sub->add_option("--preprocess", o->preprocess, "transforms for zoo/TorchScript models")->capture_default_str();
  sub->add_option("--out", o->out, "folder for results.json, table.md, layers.svg and report.html")->required();
  add_common(*sub, o->common);
  sub->callback([o, sub] {
    refuse_data_parallel("study", "it trains many small networks; run seeds as separate processes instead");
    apply_common(o->common);
    auto train = data::open_dataset(o->train);
    auto test = data::open_dataset(o->test);
    auto m = open_model(o->model, train->input_shape(), train->class_names(), o->channels, o->preprocess, 0);
    m.model->to(parse_device(o->common.device));
    o->t.features.precision = precision_of(o->common);
    o->t.features.channels_last = o->common.channels_last;
    auto& layers = o->t.features.layers;
    for (auto& l : split_names(o->layers)) layers.push_back(l);
    if (layers.empty()) {
      const auto& names = m.model->layer_names();
      for (size_t i = 0; i + 1 < names.size(); ++i) layers.push_back(names[i]);
    }
    const auto fits = static_cast<int64_t>(o->t.labels_per_class.size() * o->t.seeds.size() * layers.size());
    auto prog = std::make_shared<Progress>("", o->common.quiet);
    auto done = std::make_shared<int64_t>(0);
    auto progress = [o, sub, prog, done, fits](const std::string& s) {
      record_run(*sub, o->out + "/");  // once the study has checked its options
      if (o->common.quiet) return;
      std::cerr << s << (s.rfind("budget ", 0) == 0 ? prog->suffix(++*done, fits) : "") << std::endl;
    };
    auto r = study::run_layer_study(m.model, m.meta, train, test, o->t, o->out, o->model, progress);
    record_run(*sub, o->out + "/");
    std::cout << r.table_markdown() << "report: " << o->out << "/report.html\n";
  });
}

}  // namespace

void add_study(CLI::App& app) {
  auto* study = app.add_subcommand("study", "Transfer studies: layer by layer (Yosinski et al. 2014) and per-layer "
                                            "probes with training-free scores; plots, tables, HTML report");
  study->require_subcommand(1);
  add_study_transferability(*study);
  add_study_layers(*study);
}

}  // namespace graft::cli
