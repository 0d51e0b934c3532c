// graft train: supervised training from scratch (the source model of transfer learning).
#include <iostream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/data/registry.h"
#include "graft/train/trainer.h"

namespace graft::cli {

/// Registers the options of train::TrainConfig on a subcommand (shared with later trainers).
void add_train_config(CLI::App& sub, train::TrainConfig& c) {
  sub.add_option("--epochs", c.epochs, "passes over the training set")->capture_default_str();
  sub.add_option("--batch-size", c.batch_size,
                 c.batch_size == 0 ? "examples per step (0: from the input size: 64 up to about 200x200 RGB, 32 for "
                                     "224x224 photos, 16 for 299x299)"
                                   : "examples per step")->capture_default_str();
  sub.add_option("--optimizer", c.optimizer, "sgd, adam or adamw")->capture_default_str();
  sub.add_option("--lr", c.lr, "base learning rate")->capture_default_str();
  sub.add_option("--momentum", c.momentum, "SGD momentum")->capture_default_str();
  sub.add_flag("--nesterov", c.nesterov, "Nesterov momentum");
  sub.add_option("--weight-decay", c.weight_decay, "L2 weight decay")->capture_default_str();
  sub.add_option("--schedule", c.schedule, "constant, step, cosine or inv (lr0/(1+10p)^0.75)")->capture_default_str();
  sub.add_option("--step-epochs", c.step_epochs, "step schedule: epochs between decays (0: epochs/3)")->capture_default_str();
  sub.add_option("--gamma", c.gamma, "step schedule: decay factor")->capture_default_str();
  sub.add_option("--warmup-epochs", c.warmup_epochs, "linear warm-up, in epochs")->capture_default_str();
  sub.add_option("--label-smoothing", c.label_smoothing, "label smoothing of the cross-entropy")->capture_default_str();
  sub.add_option("--seed", c.seed, "seed of initialisation, data order and augmentation")
      ->capture_default_str()
      ->check(seed_check());
  sub.add_option("--workers", c.workers,
                 str("loader threads that decode and augment (", c.workers == -1 ? "-1: a quarter of the cores, 0 below 4 "
                     "cores; " : "", "in-memory data with fixed transforms is batched in the training thread)"))
      ->capture_default_str();
  sub.add_option("--augment", c.augment, "random transforms, e.g. random-crop=28:2,hflip");
  add_data_on_device(sub, c.data_on_device);
  sub.add_option("--out", c.out_dir, "output folder: checkpoints, metrics.jsonl, result.json")->required();
  sub.add_flag("--resume", c.resume, "continue from OUT/checkpoint.ckpt if present");
  sub.add_flag("--overwrite", c.overwrite, "replace the files of an earlier run in --out (without it, a fresh run into "
                                          "a folder holding another run's files is refused)");
  sub.add_option("--checkpoint-every", c.checkpoint_every, "also checkpoint every N steps (0: per epoch)")
      ->capture_default_str();
  sub.add_flag("--sync-bn-stats", c.sync_bn_stats, "data-parallel runs: average BatchNorm running statistics over "
                                                  "the ranks each epoch (default: rank 0's are kept)");
  sub.add_option("--log-every", c.log_every_s, "seconds between progress lines")->capture_default_str();
}

void add_train(CLI::App& app) {
  struct Opts {
    Common common;
    train::TrainConfig cfg;
    std::string model, data, test, preprocess = "normalize=0.5:0.5";
    ValOptions val;
    int channels = 0;
  };
  auto o = std::make_shared<Opts>();
  o->cfg.batch_size = 0, o->cfg.workers = -1;  // from the input size and the cores (issue 17)
  auto* sub = app.add_subcommand("train", "Train a classifier from scratch (a source model)");
  sub->add_option("--model", o->model, "zoo name (dann_mnist, dann_svhn, resnet8, resnet20, mlp[:H,..]), "
                                       "TorchScript .pt or graft checkpoint")->required();
  sub->add_option("--data", o->data, "training set, e.g. mnist:train (see 'graft data --help')")->required();
  sub->add_option("--test", o->test, "test set evaluated at the end, e.g. mnist:test");
  add_val_options(*sub, o->val, 0, "--data");
  sub->add_option("--channels", o->channels, "model input channels (default: the data's); gray and RGB are converted");
  sub->add_option("--preprocess", o->preprocess, "deterministic transforms before the model, saved with it")
      ->capture_default_str();
  add_train_config(*sub, o->cfg);
  add_common(*sub, o->common);
  sub->callback([o, sub] {
    apply_common(o->common);
    o->cfg.device = o->common.device;
    o->cfg.precision = o->common.precision;
    o->cfg.channels_last = o->common.channels_last;
    o->cfg.quiet = o->common.quiet;
    o->cfg.validate();
    auto train_set = data::open_dataset(o->data);
    data::DatasetPtr val_set = take_validation(o->val, train_set, o->cfg.seed), test_set;
    if (!o->test.empty()) test_set = data::open_dataset(o->test);
    auto m = open_model(o->model, train_set->input_shape(), train_set->class_names(), o->channels, o->preprocess,
                        o->cfg.seed);
    record_run(*sub, o->cfg.out_dir + "/");
    train::Trainer trainer(m.model, m.meta, o->cfg);
    std::cerr << "graft train: " << m.meta.arch << " on " << train_set->describe() << ", "
              << m.model->num_params() << " parameters, " << o->cfg.optimizer << " lr " << o->cfg.lr << ", "
              << o->cfg.epochs << " epochs, batch " << trainer.config().batch_size << ", seed " << o->cfg.seed
              << " -> " << o->cfg.out_dir << "\n";
    auto r = trainer.fit(train_set, val_set, test_set);
    std::cout << "model saved to " << r.model_path << "\n";
    if (!r.torchscript_path.empty()) std::cout << "TorchScript saved to " << r.torchscript_path << "\n";
    if (r.has_test) std::cout << "test set " << test_set->describe() << ":\n" << r.test.to_table(m.meta.class_names);
  });
}

}  // namespace graft::cli
