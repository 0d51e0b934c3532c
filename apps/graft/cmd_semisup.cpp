// graft semisup: few labels plus many unlabelled images (FixMatch-style consistency).
#include <iomanip>
#include <iostream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/data/registry.h"
#include "graft/io/files.h"
#include "graft/selfsup/semisup.h"

namespace graft::cli {

void add_semisup(CLI::App& app) {
  struct Opts {
    Common common;
    train::TrainConfig cfg;
    selfsup::SemisupOptions s;
    std::string model, labelled, unlabelled, val, test, preprocess = "normalize=0.5:0.5";
    double val_split = 0;
    int channels = 0;
  };
  auto o = std::make_shared<Opts>();
  o->cfg.lr = 0.03;
  o->cfg.weight_decay = 5e-4;
  o->cfg.nesterov = true;
  auto* sub = app.add_subcommand("semisup", "Semi-supervised training: few labelled and many unlabelled examples");
  sub->add_option("--method", o->s.method,
                  "fixmatch (pseudo-labels of a weak view train a strong view), pseudo-label (one weak view), or "
                  "supervised (the labelled term alone: the baseline)")
      ->capture_default_str();
  sub->add_option("--labelled", o->labelled, "labelled training set, e.g. fashion-mnist:train@per-class=10@seed=1")
      ->required();
  sub->add_option("--unlabelled", o->unlabelled, "unlabelled set (labels, if any, only measure pseudo-label accuracy), "
                                                 "e.g. fashion-mnist:train@unlabelled")
      ->required();
  sub->add_option("--model", o->model, "zoo name, TorchScript .pt or graft checkpoint (e.g. a pretrained backbone "
                                       "with a new head from graft finetune)")
      ->required();
  sub->add_option("--threshold", o->s.threshold, "pseudo-label confidence in (0, 1]")->capture_default_str();
  sub->add_option("--mu", o->s.mu, "unlabelled batch size as a multiple of --batch-size")->capture_default_str();
  sub->add_option("--unlabelled-weight", o->s.weight, "weight of the unlabelled term")->capture_default_str();
  sub->add_option("--weak", o->s.weak, "weak augmentation (default: hflip + translation by 1/8)");
  sub->add_option("--strong", o->s.strong, "strong augmentation (default: weak + rotation, zoom, brightness/contrast, "
                                           "cutout)");
  sub->add_option("--val", o->val, "validation set (early stopping with --patience)");
  sub->add_option("--val-split", o->val_split, "carve this fraction of --labelled off as validation set")
      ->capture_default_str();
  sub->add_option("--patience", o->cfg.patience, "stop after this many epochs without a lower validation loss and "
                                                 "keep the best weights (-1: off)")
      ->capture_default_str();
  sub->add_option("--test", o->test, "test set evaluated at the end");
  sub->add_option("--channels", o->channels, "model input channels (default: the data's)");
  sub->add_option("--preprocess", o->preprocess, "deterministic transforms before the model, saved with it")
      ->capture_default_str();
  add_train_config(*sub, o->cfg);
  sub->footer("An epoch is one pass over the unlabelled set; the labelled set is repeated to give as many steps. "
              "--augment defaults to the weak augmentation.");
  add_common(*sub, o->common);
  sub->callback([o, sub] {
    apply_common(o->common);
    o->cfg.device = o->common.device;
    o->cfg.quiet = o->common.quiet;
    o->cfg.validate();
    o->s.validate();
    GRAFT_CHECK(o->val.empty() || o->val_split == 0, "give --val or --val-split, not both");
    GRAFT_CHECK(o->val_split >= 0 && o->val_split < 1, "--val-split must be in [0, 1), got ", o->val_split);
    auto lab = data::open_dataset(o->labelled);
    auto unl = data::open_dataset(o->unlabelled);
    data::DatasetPtr val, test;
    if (o->val_split > 0) std::tie(lab, val) = data::split(lab, o->val_split, o->cfg.seed);
    if (!o->val.empty()) val = data::open_dataset(o->val);
    if (!o->test.empty()) test = data::open_dataset(o->test);
    GRAFT_CHECK(o->cfg.patience < 0 || val, "--patience needs a validation set: give --val or --val-split");
    auto m = open_model(o->model, lab->input_shape(), lab->class_names(), o->channels, o->preprocess, o->cfg.seed);
    record_run(*sub, o->cfg.out_dir + "/");
    std::cerr << "graft semisup: " << o->s.method << ", " << lab->describe() << " labelled + " << unl->describe()
              << "; " << m.meta.arch << " -> " << o->cfg.out_dir << "\n";
    selfsup::SemisupStats st;
    auto r = selfsup::train_semisup(m.model, m.meta, o->cfg, o->s, lab, unl, val, test, &st);
    nlohmann::json j = {{"options", o->s.to_json()},
                        {"labelled", lab->describe()},
                        {"unlabelled", unl->describe()},
                        {"unlabelled_seen", st.unlabelled_seen},
                        {"confident", st.confident}};
    if (st.unlabelled_seen > 0) {
      j["mask_rate"] = static_cast<double>(st.confident) / static_cast<double>(st.unlabelled_seen);
      if (st.correct >= 0 && st.confident > 0)
        j["pseudo_label_accuracy"] = static_cast<double>(st.correct) / static_cast<double>(st.confident);
      std::cout << std::fixed << std::setprecision(1) << "unlabelled term: " << 100.0 * j["mask_rate"].get<double>()
                << "% of " << st.unlabelled_seen << " unlabelled draws above the threshold";
      if (j.contains("pseudo_label_accuracy"))
        std::cout << ", their pseudo-labels " << 100.0 * j["pseudo_label_accuracy"].get<double>()
                  << "% right (measured with labels never used for training)";
      std::cout << "\n" << std::defaultfloat;
    }
    if (r.has_test) {
      j["test_accuracy"] = r.test.accuracy;
      std::cout << "test set " << test->describe() << ":\n" << r.test.to_table(m.meta.class_names);
    }
    io::write_text_atomically(o->cfg.out_dir + "/semisup.json", j.dump(2) + "\n");
    std::cout << "model saved to " << r.model_path << "\n";
  });
}

}  // namespace graft::cli
