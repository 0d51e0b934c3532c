// graft finetune: cut a pretrained network, add a new head for the target classes,
// and train with layer policies (freezing, per-layer learning rates, L2-SP), early
// stopping on a validation split, and the frozen prefix cached.
#include <ATen/ATen.h>

#include <iostream>

#include "common.h"
#include "graft/models/zoo.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/registry.h"
#include "graft/train/finetune.h"

namespace graft::cli {

void add_finetune(CLI::App& app) {
  struct Opts {
    Common common;
    train::TrainConfig cfg;
    train::LayerPolicy policy;
    models::HeadSpec head;
    std::string model, cut, data, test, preprocess = "normalize=0.5:0.5";
    ValOptions val;
    int channels = 0;
  };
  auto o = std::make_shared<Opts>();
  o->cfg.patience = 5;
  o->cfg.batch_size = 0, o->cfg.workers = -1;  // from the input size and the cores (issue 17)
  o->cfg.lr = 0.001;
  o->cfg.optimizer = "adam";
  auto* sub = app.add_subcommand("finetune", "Fine-tune a pretrained model on a target task: new head, layer "
                                             "policies, early stopping");
  sub->add_option("--model", o->model, "pretrained model: graft checkpoint, TorchScript .pt (or a zoo name: random "
                                       "initialisation)")->required();
  sub->add_option("--cut", o->cut, "keep the layers up to and including this one (default: all but the last)");
  sub->add_option("--data", o->data, "target training set, e.g. fashion-mnist:train@classes=5-9@per-class=100")
      ->required();
  add_val_options(*sub, o->val, 0.1, "--data");
  sub->add_option("--test", o->test, "test set evaluated once at the end");
  sub->add_option("--head", o->head.kind, "new head: linear, or mlp (bottleneck Linear+ReLU+Dropout, then Linear)")
      ->capture_default_str();
  sub->add_option("--head-hidden", o->head.hidden, "mlp head: bottleneck width")->capture_default_str();
  sub->add_option("--head-dropout", o->head.dropout, "mlp head: dropout")->capture_default_str();
  sub->add_option("--head-pool", o->head.pool, "spatial cut outputs: flatten, avg, or auto")->capture_default_str();
  sub->add_option("--freeze-through", o->policy.freeze_through, "freeze this layer and all below it");
  sub->add_option("--lr-mult", o->policy.lr_mult, "per-layer learning-rate multipliers by layer-name glob, e.g. "
                                                  "'conv*=0,fc1=0.1,head=1' (0 freezes)");
  sub->add_option("--layer-decay", o->policy.layer_decay, "each lower layer's learning rate x this (1: off)")
      ->capture_default_str();
  sub->add_option("--unfreeze-every", o->cfg.unfreeze_every, "gradual unfreezing: start with the head, unfreeze one "
                                                             "more layer every N epochs (0: off)")->capture_default_str();
  sub->add_flag("--adapt-bn", o->cfg.adapt_frozen_bn, "let frozen layers' BatchNorm statistics follow the target");
  sub->add_option("--l2sp-alpha", o->cfg.l2sp_alpha, "L2-SP: decay of pretrained weights towards their start values")
      ->capture_default_str();
  sub->add_option("--l2sp-beta", o->cfg.l2sp_beta, "L2-SP: plain decay of the new head")->capture_default_str();
  sub->add_option("--patience", o->cfg.patience, "early stopping: epochs without a lower validation loss "
                                                 "(-1: off)")->capture_default_str();
  sub->add_option("--cache", o->cfg.cache, "frozen-prefix activations computed once: auto, memory, disk or off")
      ->capture_default_str();
  sub->add_option("--cache-memory-mb", o->cfg.cache_memory_mb, "auto cache: above this size, use disk")
      ->capture_default_str();
  sub->add_option("--channels", o->channels, "input channels for zoo/TorchScript models (default: the data's)");
  sub->add_option("--preprocess", o->preprocess, "transforms for zoo/TorchScript models (checkpoints carry their own)")
      ->capture_default_str();
  add_train_config(*sub, o->cfg);
  add_common(*sub, o->common);
  sub->callback([o, sub] {
    apply_common(o->common);
    o->cfg.device = o->common.device;
    o->cfg.precision = o->common.precision;
    o->cfg.channels_last = o->common.channels_last;
    o->cfg.quiet = o->common.quiet;
    auto train_set = data::open_dataset(o->data);
    GRAFT_CHECK(train_set->num_classes() >= 2, "--data '", o->data, "' has ", train_set->num_classes(),
                " class; fine-tuning a classifier needs at least 2");
    data::DatasetPtr val_set = take_validation(o->val, train_set, o->cfg.seed), test_set;
    if (!o->test.empty()) test_set = data::open_dataset(o->test);

    // The pretrained model, described by its own metadata (a zoo name or TorchScript
    // file gets the target data's input shape and class list).
    auto src = open_model(o->model, train_set->input_shape(), train_set->class_names(), o->channels, o->preprocess,
                          o->cfg.seed);
    train::FinetuneOptions fo;
    fo.cut = o->cut;
    fo.head = o->head;
    fo.policy = o->policy;
    fo.train = o->cfg;
    auto warn = [](const std::string& w) { std::cerr << "graft: warning: " << w << "\n"; };
    if (!val_set && fo.train.patience >= 0) {
      std::cerr << "graft: no validation set: early stopping is off\n";
      fo.train.patience = -1;
    }
    auto plan = train::plan_finetune(src, train_set->class_names(), fo, warn, train_set->input_shape());
    std::string frozen;
    for (const auto& f : plan.frozen) frozen += (frozen.empty() ? "" : ",") + f;
    record_run(*sub, o->cfg.out_dir + "/");
    std::cerr << "graft finetune: " << o->model << " cut after " << plan.cut << " + " << o->head.kind
                << " head for " << train_set->num_classes() << " classes on " << train_set->describe()
                << (val_set ? ", validation " + std::to_string(val_set->size()) + " examples" : "")
                << "; frozen: " << (frozen.empty() ? "none" : frozen) << " -> " << o->cfg.out_dir << "\n";
    train::Trainer trainer(plan.model, plan.meta, plan.train);
    auto r = trainer.fit(train_set, val_set, test_set);
    const auto& meta = plan.meta;
    if (r.best_epoch > 0)
      std::cout << (r.stopped_early ? "stopped early; " : "") << "kept the weights of epoch " << r.best_epoch
                << " (lowest validation loss)\n";
    std::cout << "model saved to " << r.model_path << "; learning curves in " << o->cfg.out_dir << "/curves.svg\n";
    if (models::is_torchscript(*src.model)) {
      // A TorchScript base goes back out as TorchScript: the kept weights (the Trainer leaves
      // them in the model) with the new head.
      models::export_torchscript(*plan.model, plan.meta, o->cfg.out_dir + "/model.pt");
      std::cout << "TorchScript (base + new head, for torch.jit.load): " << o->cfg.out_dir << "/model.pt\n";
    }
    if (r.has_test) std::cout << "test set " << test_set->describe() << ":\n" << r.test.to_table(meta.class_names);
  });
}

}  // namespace graft::cli
