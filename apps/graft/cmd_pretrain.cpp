// graft pretrain: learn a backbone from unlabelled images on a surrogate task.
#include <iostream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/data/registry.h"
#include "graft/selfsup/surrogate.h"
#include "graft/train/trainer.h"

namespace graft::cli {

void add_pretrain(CLI::App& app) {
  struct Opts {
    Common common;
    train::TrainConfig cfg;
    std::string task = "rotation", model, data, preprocess = "normalize=0.5:0.5";
    int64_t classes = 2000, copies = 8;
    double val_split = 0;
    int channels = 0;
  };
  auto o = std::make_shared<Opts>();
  o->cfg.batch_size = 128;
  o->cfg.lr = 0.05;
  auto* sub = app.add_subcommand(
      "pretrain", "Train a backbone on unlabelled images with a surrogate task (rotation or exemplar pseudo-classes)");
  sub->add_option("--task", o->task,
                  "rotation: predict the turn (0/90/180/270) of each image; exemplar: each of --classes seed images "
                  "and its random augmentations form one pseudo-class")
      ->capture_default_str();
  sub->add_option("--data", o->data, "unlabelled images (labels, if any, are ignored), e.g. fashion-mnist:train")
      ->required();
  sub->add_option("--model", o->model, "zoo name, TorchScript .pt or graft checkpoint")->required();
  sub->add_option("--classes", o->classes, "exemplar: pseudo-classes (seed images)")->capture_default_str();
  sub->add_option("--copies", o->copies, "exemplar: augmented copies of each seed image per epoch")
      ->capture_default_str();
  sub->add_option("--val-split", o->val_split, "rotation: fraction of the images held out to check the surrogate task")
      ->capture_default_str();
  sub->add_option("--channels", o->channels, "model input channels (default: the data's)");
  sub->add_option("--preprocess", o->preprocess, "deterministic transforms before the model, saved with it")
      ->capture_default_str();
  add_train_config(*sub, o->cfg);
  sub->footer(
      "The --augment default depends on the task: exemplar uses strong translation, zoom, rotation, flips and "
      "brightness/contrast; rotation a small translation only.\nThe result (OUT/model.ckpt) is a backbone like any "
      "other: graft layers, extract, finetune --cut and adapt take it.");
  add_common(*sub, o->common);
  sub->callback([o, sub] {
    apply_common(o->common);
    o->cfg.device = o->common.device;
    o->cfg.precision = o->common.precision;
    o->cfg.channels_last = o->common.channels_last;
    o->cfg.quiet = o->common.quiet;
    check_choice("task", o->task, {"rotation", "exemplar"});
    o->cfg.validate();
    GRAFT_CHECK(o->val_split >= 0 && o->val_split < 1, "--val-split must be in [0, 1), got ", o->val_split);
    GRAFT_CHECK(o->task == "rotation" || o->val_split == 0,
                "--val-split is for the rotation task: an exemplar pseudo-class is one image, there is nothing to "
                "hold out");
    auto images = data::open_dataset(o->data);
    GRAFT_CHECK(images->size() > 0, o->data, " is empty: pretraining needs unlabelled images");
    bool labelled = false;
    for (auto y : images->labels()) labelled |= y >= 0;
    if (labelled) std::cerr << "graft pretrain: note: " << o->data << " has labels; the surrogate task ignores them\n";
    images = data::unlabelled(images);
    data::DatasetPtr task, val;
    const auto shape = images->input_shape();
    if (o->task == "rotation") {
      data::DatasetPtr train_images = images, val_images;
      if (o->val_split > 0) std::tie(train_images, val_images) = data::split(images, o->val_split, o->cfg.seed);
      task = selfsup::rotation_task(train_images);
      if (val_images) val = selfsup::rotation_task(val_images);
      if (o->cfg.augment.empty()) o->cfg.augment = selfsup::rotation_augment(shape);
    } else {
      task = selfsup::exemplar_task(images, o->classes, o->copies, o->cfg.seed);
      if (o->cfg.augment.empty()) o->cfg.augment = selfsup::exemplar_augment(shape);
    }
    auto m = open_model(o->model, shape, task->class_names(), o->channels, o->preprocess, o->cfg.seed);
    record_run(*sub, o->cfg.out_dir + "/");
    std::cerr << "graft pretrain: " << o->task << " task, " << task->describe() << "; " << m.meta.arch << " with "
              << m.model->num_params() << " parameters, augment " << o->cfg.augment << " -> " << o->cfg.out_dir
              << "\n";
    train::Trainer trainer(m.model, m.meta, o->cfg);
    auto r = trainer.fit(task, val, nullptr);
    std::cout << o->task << " pretraining done: surrogate training accuracy "
              << 100 * r.history.back().train_acc << "%";
    if (r.history.back().val_acc >= 0) std::cout << ", held-out " << 100 * r.history.back().val_acc << "%";
    std::cout << "\nbackbone saved to " << r.model_path << " (cut its head with graft finetune --cut, or tap a layer "
              << "with graft extract)\n";
  });
}

}  // namespace graft::cli
