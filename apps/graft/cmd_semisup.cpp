// graft semisup: few labels plus many unlabelled images (FixMatch-style consistency).
#include <cmath>
#include <iomanip>
#include <iostream>

#include "common.h"
#include "graft/dist/data_parallel.h"
#include "graft/core/check.h"
#include "graft/data/registry.h"
#include "graft/core/files.h"
#include "graft/selfsup/semisup.h"

namespace graft::cli {

void add_semisup(CLI::App& app) {
  struct Opts {
    Common common;
    train::TrainConfig cfg;
    selfsup::SemisupOptions s;
    std::string model, labelled, unlabelled, test, preprocess = "normalize=0.5:0.5";
    ValOptions val;
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
  add_val_options(*sub, o->val, 0, "--labelled");
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
    o->cfg.precision = o->common.precision;
    o->cfg.channels_last = o->common.channels_last;
    o->cfg.quiet = o->common.quiet;
    o->cfg.validate();
    o->s.validate();
    auto lab = data::open_dataset(o->labelled);
    auto unl = data::open_dataset(o->unlabelled);
    data::DatasetPtr val = take_validation(o->val, lab, o->cfg.seed), test;
    if (!o->test.empty()) test = data::open_dataset(o->test);
    GRAFT_CHECK(o->cfg.patience < 0 || val, "--patience needs a validation set: give --val or --val-split");
    auto m = open_model(o->model, lab->input_shape(), lab->class_names(), o->channels, o->preprocess, o->cfg.seed);
    record_run(*sub, o->cfg.out_dir + "/");
    std::cerr << "graft semisup: " << o->s.method << ", " << lab->describe() << " labelled + " << unl->describe()
              << "; " << m.meta.arch << " -> " << o->cfg.out_dir << "\n";
    selfsup::SemisupStats st;
    auto r = selfsup::train_semisup(m.model, m.meta, o->cfg, o->s, lab, unl, val, test, &st);
    if (auto& ctx = dist::process_context(o->cfg.device); ctx.distributed()) {  // every rank's draws
      auto v = dist::sum_over_ranks(ctx, {static_cast<double>(st.unlabelled_seen), static_cast<double>(st.confident),
                                          static_cast<double>(std::max<int64_t>(st.correct, 0))});
      st.unlabelled_seen = std::llround(v[0]), st.confident = std::llround(v[1]);
      if (st.correct >= 0) st.correct = std::llround(v[2]);
    }
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
    if (dist::is_main_process()) graft::write_text_atomically(o->cfg.out_dir + "/semisup.json", j.dump(2) + "\n");
    std::cout << "model saved to " << r.model_path << "\n";
  });
}

}  // namespace graft::cli
