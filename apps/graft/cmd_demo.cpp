// graft demo: the main job on built-in data. Trains the DANN paper's MNIST network
// on MNIST and evaluates it in its domain (MNIST) and out of it (MNIST-M-style),
// showing the domain gap that adaptation closes.
#include <chrono>
#include <filesystem>
#include <iomanip>
#include <iostream>

#include "common.h"
#include "graft/analysis/metrics.h"
#include "graft/core/check.h"
#include "graft/data/builders.h"
#include "graft/data/registry.h"
#include "graft/io/files.h"
#include "graft/models/zoo.h"
#include "graft/train/trainer.h"

namespace fs = std::filesystem;

namespace graft::cli {

void add_demo(CLI::App& app) {
  struct Opts {
    Common common;
    std::string out = "graft-demo";
    int64_t epochs = 3;
    int64_t limit = 0;
    uint64_t seed = 1;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("demo", "Train on MNIST, evaluate on MNIST and on an MNIST-M-style target");
  sub->add_option("--out", o->out, "output folder")->capture_default_str();
  sub->add_option("--epochs", o->epochs, "training epochs")->capture_default_str();
  sub->add_option("--limit", o->limit, "train on the first N MNIST images only (0: all 60000)")->capture_default_str();
  sub->add_option("--seed", o->seed, "seed")->capture_default_str()->check(seed_check());
  add_common(*sub, o->common);
  sub->callback([o] {
    apply_common(o->common);
    auto t0 = std::chrono::steady_clock::now();
    auto cache = io::data_cache_dir();
    if (!fs::exists(cache + "/mnistm/t10k-images-idx4-ubyte")) {
      std::cerr << "graft demo: making the MNIST-M-style target in " << cache << "/mnistm\n";
      data::MnistMOptions mo;
      mo.mnist_dir = cache + "/mnist";
      mo.out_dir = cache + "/mnistm";
      mo.photos = data::cached_photos();
      data::make_mnistm(mo);
    }
    auto train_set = data::open_dataset(o->limit > 0 ? str("mnist:train@limit=", o->limit) : "mnist:train");
    auto source_test = data::open_dataset("mnist:test");
    auto target_test = data::open_dataset("mnistm:test");
    io::ModelMeta meta{"dann_mnist", {3, 28, 28}, train_set->class_names(), "normalize=0.5:0.5", {}};
    auto model = models::create_model(meta.arch, meta.input_shape, meta.num_classes(), o->seed);
    train::TrainConfig cfg;
    cfg.epochs = o->epochs;
    cfg.batch_size = 128;
    cfg.optimizer = "adam";
    cfg.lr = 1e-3;
    cfg.schedule = "cosine";
    cfg.seed = o->seed;
    cfg.device = o->common.device;
    cfg.out_dir = o->out + "/source";
    std::cerr << "graft demo: training dann_mnist (RGB input, digits replicated to 3 channels) on "
              << train_set->describe() << " for " << cfg.epochs << " epochs\n";
    train::Trainer trainer(model, meta, cfg);
    auto r = trainer.fit(train_set, nullptr, source_test);
    auto tr = analysis::evaluate(*model, target_test, train::input_pipeline(meta, target_test->input_shape()),
                                 meta.num_classes());
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json summary = {{"source_test", {{"dataset", "mnist:test"}, {"accuracy", r.test.accuracy}}},
                              {"target_test", {{"dataset", "mnistm:test"}, {"accuracy", tr.accuracy}}},
                              {"domain_gap", r.test.accuracy - tr.accuracy},
                              {"model", r.model_path},
                              {"seconds", secs}};
    io::write_text_atomically(o->out + "/summary.json", summary.dump(2) + "\n");
    std::cout << std::fixed << std::setprecision(2) << "\n"
              << "graft demo: source model dann_mnist trained on MNIST (" << train_set->size() << " images)\n"
              << "  in domain      mnist:test   accuracy " << 100 * r.test.accuracy << "%\n"
              << "  out of domain  mnistm:test  accuracy " << 100 * tr.accuracy << "%\n"
              << "  domain gap                            " << 100 * (r.test.accuracy - tr.accuracy) << " points\n"
              << "  model " << r.model_path << ", summary " << o->out << "/summary.json, " << std::setprecision(0)
              << secs << " s\n";
  });
}

}  // namespace graft::cli
