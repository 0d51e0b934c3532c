// graft demo: the point of the tool on built-in data, in about three minutes. Trains the
// DANN paper's MNIST network on MNIST (the source), measures it on an MNIST-M-style
// target (the domain gap), adapts it with DANN using unlabelled target images, and
// compares with an off-the-shelf linear probe on a few target labels. Writes one
// offline HTML report.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "common.h"
#include "graft/adapt/adapt.h"
#include "graft/analysis/metrics.h"
#include "graft/analysis/plot.h"
#include "graft/analysis/report.h"
#include "graft/core/check.h"
#include "graft/data/builders.h"
#include "graft/data/registry.h"
#include "graft/features/offtheshelf.h"
#include "graft/core/files.h"
#include "graft/models/zoo.h"
#include "graft/train/trainer.h"

namespace fs = std::filesystem;

namespace graft::cli {
namespace {

struct DemoOpts {
  Common common;
  std::string out = "graft-demo";
  int64_t epochs = 2;          ///< source training epochs
  // The defaults keep the demo near 100 s of CPU time (about 3 minutes or less on 2 cores).
  int64_t limit = 20000;       ///< MNIST training images (0: all 60000)
  int64_t adapt_epochs = 5;    ///< DANN epochs (passes over the source subset)
  int64_t target_limit = 20000;  ///< unlabelled MNIST-M training images seen by DANN
  int64_t labels = 10;         ///< target labels per class for the off-the-shelf probe
  uint64_t seed = 1;
};

/// Accuracies the demo reports.
struct DemoNumbers {
  double source_in = 0, source_out = 0, dann_out = -1, dann_source_val = -1, probe = -1, probe_pixels = -1;
  int64_t dann_epoch = 0;
  double gap_closed() const {
    const double gap = source_in - source_out;
    return gap > 0 && dann_out >= 0 ? (dann_out - source_out) / gap : 0.0;
  }
};

std::string pct(double v) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(1) << 100 * v << "%";
  return o.str();
}

void ensure_mnistm(bool quiet) {
  const auto cache = graft::data_cache_dir();
  if (fs::exists(cache + "/mnistm/t10k-images-idx4-ubyte")) return;
  if (!quiet) std::cerr << "graft demo: making the MNIST-M-style target in " << cache << "/mnistm\n";
  data::MnistMOptions mo;
  mo.mnist_dir = cache + "/mnist";
  mo.out_dir = cache + "/mnistm";
  mo.photos = data::cached_photos();
  data::make_mnistm(mo);
}

/// Off-the-shelf transfer: the source network's penultimate layer (fixed in advance, not
/// chosen on target labels) and raw pixels, each with a linear SVM on a few target labels.
void run_probe(const DemoOpts& o, const models::BackbonePtr& model, const io::ModelMeta& meta, DemoNumbers& n) {
  features::TransferOptions t;
  t.features.layers = {"input", "fc2"};
  t.features.workers = 1;
  t.labels_per_class = {o.labels};
  t.seeds = {o.seed};
  t.classifier.folds = 3;
  auto train = data::open_dataset("mnistm:train");
  auto test = data::open_dataset("mnistm:test");
  auto r = features::run_offtheshelf(model, meta, train, test, t);
  for (const auto& c : r.cells) (c.layer == "fc2" ? n.probe : n.probe_pixels) = c.mean;
}

void write_report(const DemoOpts& o, const DemoNumbers& n, const adapt::AdaptResult& ad, double secs,
                  int64_t source_images) {
  analysis::HtmlReport rep("graft demo: MNIST to an MNIST-M-style target");
  rep.paragraph("Source: dann_mnist trained on " + std::to_string(source_images) + " MNIST digits for " +
                std::to_string(o.epochs) + " epoch(s) (Adam, lr 0.001, cosine schedule, batch 128, seed " +
                std::to_string(o.seed) + "). Target: MNIST digits blended with colour photo patches. DANN starts "
                "from the source model and trains " + std::to_string(o.adapt_epochs) + " epoch(s) on the same "
                "source images plus " + std::to_string(o.target_limit) + " unlabelled target images; its epoch is "
                "chosen without target labels. Target test accuracy is measured on the 10000 target test "
                "images and used for nothing but this report.");
  rep.table({"model", "labels used", "MNIST test", "MNIST-M-style test"},
            {{"source only", "source", pct(n.source_in), pct(n.source_out)},
             {"DANN (epoch " + std::to_string(n.dann_epoch) + ")", "source + unlabelled target", "",
              pct(n.dann_out)},
             {"off-the-shelf: source fc2 + linear SVM", std::to_string(o.labels) + " per target class", "",
              pct(n.probe)},
             {"raw pixels + linear SVM", std::to_string(o.labels) + " per target class", "", pct(n.probe_pixels)}},
            "Accuracy");
  std::ostringstream gap;
  gap << "Domain gap " << std::fixed << std::setprecision(1) << 100 * (n.source_in - n.source_out)
      << " points; DANN closes " << 100 * n.gap_closed() << "% of it without any target label.";
  rep.paragraph(gap.str());
  analysis::Panel p;
  p.title = "DANN, per epoch";
  p.xlabel = "epoch";
  p.ylabel = "accuracy (%)";
  analysis::Series tgt{"target test (report only)", {}, {}, {}}, src{"held-out source", {}, {}, {}};
  for (const auto& e : ad.history) {
    tgt.x.push_back(static_cast<double>(e.epoch)), tgt.y.push_back(100 * e.target_acc);
    src.x.push_back(static_cast<double>(e.epoch)), src.y.push_back(100 * e.source_val_acc);
    p.xticks.push_back(static_cast<double>(e.epoch));
  }
  analysis::Series base{"source only on target", {0.5, static_cast<double>(ad.history.size()) + 0.5},
                        {100 * n.source_out, 100 * n.source_out}, {}};
  base.reference = true;
  p.series = {tgt, src, base};
  rep.figure(analysis::svg_chart({p}, 560, 320), "Target accuracy of DANN by epoch against the source-only level");
  const auto embedding = o.out + "/dann/embedding.svg";  // written by adapt::run_adapt
  if (fs::exists(embedding)) {
    std::ifstream in(embedding);
    const std::string svg((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    rep.figure(svg, "Features of held-out source and target test images at the epoch DANN selected (PCA; from graft adapt)");
  }
  std::ostringstream t;
  t << std::fixed << std::setprecision(0) << "Total time " << secs << " s. Outputs: " << o.out
    << "/source (source model), " << o.out << "/dann (adapted model, metrics.jsonl, embedding.svg).";
  rep.paragraph(t.str());
  rep.save(o.out + "/report.html");
}

void run_demo(const DemoOpts& o) {
  const auto t0 = std::chrono::steady_clock::now();
  ensure_mnistm(o.common.quiet);
  auto train_set = data::open_dataset(o.limit > 0 ? str("mnist:train@limit=", o.limit) : "mnist:train");
  auto source_test = data::open_dataset("mnist:test");
  auto target_test = data::open_dataset("mnistm:test");
  io::ModelMeta meta{"dann_mnist", {3, 28, 28}, train_set->class_names(), "normalize=0.5:0.5", {}};
  auto model = models::create_model(meta.arch, meta.input_shape, meta.num_classes(), o.seed);
  train::TrainConfig cfg;
  cfg.epochs = o.epochs;
  cfg.batch_size = 128;
  cfg.optimizer = "adam";
  cfg.lr = 1e-3;
  cfg.schedule = "cosine";
  cfg.seed = o.seed;
  cfg.device = o.common.device;
  cfg.quiet = o.common.quiet;
  cfg.out_dir = o.out + "/source";
  cfg.overwrite = true;  // the demo owns its folder: a second demo replaces the first
  if (!o.common.quiet)
    std::cerr << "graft demo [1/3]: training dann_mnist (RGB input) on " << train_set->describe() << " for "
              << cfg.epochs << " epoch(s)\n";
  auto r = train::Trainer(model, meta, cfg).fit(train_set, nullptr, source_test);
  DemoNumbers n;
  n.source_in = r.test.accuracy;
  n.source_out = analysis::evaluate(*model, target_test, train::input_pipeline(meta, target_test->input_shape()),
                                    meta.num_classes()).accuracy;

  if (!o.common.quiet) std::cerr << "graft demo [2/3]: adapting it with DANN to unlabelled MNIST-M-style images\n";
  adapt::AdaptConfig ac;
  ac.method = "dann";
  ac.epochs = o.adapt_epochs;
  ac.optimizer = "adam";
  ac.lr = 2e-4;
  ac.schedule = "constant";
  ac.seed = o.seed;
  ac.device = o.common.device;
  ac.quiet = o.common.quiet;
  ac.workers = 1;
  ac.out_dir = o.out + "/dann";
  ac.overwrite = true;
  auto adapted = io::load_checkpoint(r.model_path).model;  // a copy: the source model stays as trained
  auto target = data::open_dataset(str("mnistm:train@limit=", o.target_limit, "@unlabelled"));
  auto ad = adapt::run_adapt(adapted, meta, train_set, target, target_test, ac);
  n.dann_out = ad.selected_target_acc;
  n.dann_epoch = ad.selected_epoch;

  if (!o.common.quiet) std::cerr << "graft demo [3/3]: off-the-shelf probe with " << o.labels << " target labels per class\n";
  run_probe(o, model, meta, n);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_report(o, n, ad, secs, train_set->size());
  nlohmann::json summary = {
      {"source_test", {{"dataset", "mnist:test"}, {"accuracy", n.source_in}}},
      {"target_test", {{"dataset", "mnistm:test"}, {"accuracy", n.source_out}}},
      {"domain_gap", n.source_in - n.source_out},
      {"dann", {{"target_accuracy", n.dann_out}, {"selected_epoch", n.dann_epoch}, {"gap_closed", n.gap_closed()}}},
      {"offtheshelf", {{"layer", "fc2"}, {"labels_per_class", o.labels}, {"accuracy", n.probe},
                       {"raw_pixels_accuracy", n.probe_pixels}}},
      {"model", r.model_path},
      {"seconds", secs}};
  graft::write_text_atomically(o.out + "/summary.json", summary.dump(2) + "\n");
  std::cout << std::fixed << std::setprecision(1) << "\ngraft demo: MNIST (source) -> MNIST-M-style (target)\n"
            << "  source only, in domain      mnist:test   " << std::setw(6) << 100 * n.source_in << "%\n"
            << "  source only, out of domain  mnistm:test  " << std::setw(6) << 100 * n.source_out
            << "%   (domain gap " << 100 * (n.source_in - n.source_out) << " points)\n"
            << "  DANN, no target labels      mnistm:test  " << std::setw(6) << 100 * n.dann_out << "%   (closes "
            << 100 * n.gap_closed() << "% of the gap)\n"
            << "  off-the-shelf fc2 + SVM, " << std::setw(2) << o.labels << " labels/class  " << std::setw(6)
            << 100 * n.probe << "%   (raw pixels: " << 100 * n.probe_pixels << "%)\n"
            << "  report " << o.out << "/report.html, summary " << o.out << "/summary.json, " << std::setprecision(0)
            << secs << " s\n";
}

}  // namespace

void add_demo(CLI::App& app) {
  auto o = std::make_shared<DemoOpts>();
  auto* sub = app.add_subcommand("demo", "Train on MNIST, measure the domain gap on an MNIST-M-style target, close "
                                         "it with DANN, and compare with a few-label off-the-shelf probe (~3 min)");
  sub->add_option("--out", o->out, "output folder (report.html, summary.json, models)")->capture_default_str();
  sub->add_option("--epochs", o->epochs, "source training epochs")->capture_default_str();
  sub->add_option("--limit", o->limit, "train on the first N MNIST images only (0: all 60000)")->capture_default_str();
  sub->add_option("--adapt-epochs", o->adapt_epochs, "DANN epochs")->capture_default_str();
  sub->add_option("--target-limit", o->target_limit, "unlabelled MNIST-M-style training images for DANN")
      ->capture_default_str();
  sub->add_option("--labels-per-class", o->labels, "target labels per class for the off-the-shelf probe")
      ->capture_default_str();
  sub->add_option("--seed", o->seed, "seed")->capture_default_str()->check(seed_check());
  add_common(*sub, o->common);
  sub->callback([o] {
    refuse_data_parallel("demo", "it is a small one-machine walk-through");
    apply_common(o->common);
    GRAFT_CHECK(o->epochs >= 1 && o->adapt_epochs >= 1, "--epochs and --adapt-epochs must be >= 1");
    GRAFT_CHECK(o->limit >= 0 && o->target_limit >= 100, "--limit must be >= 0 and --target-limit >= 100");
    GRAFT_CHECK(o->labels >= 3, "--labels-per-class must be >= 3 (the SVM cross-validates C on 3 folds)");
    run_demo(*o);
  });
}

}  // namespace graft::cli
