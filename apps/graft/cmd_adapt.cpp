// graft adapt: unsupervised domain adaptation (DANN and peers) over one or more seeds,
// with the checkpoint chosen without target labels.
#include <cmath>
#include <iomanip>
#include <iostream>

#include "common.h"
#include "graft/adapt/adapt.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/registry.h"
#include "graft/io/files.h"

namespace graft::cli {

void add_adapt(CLI::App& app) {
  struct Opts {
    Common common;
    adapt::AdaptConfig cfg;
    std::string model = "dann_mnist", source, target, target_test, out, preprocess = "normalize=0.5:0.5";
    std::vector<uint64_t> seeds = {1};
    std::vector<double> trade_offs = {1.0};
    int channels = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("adapt", "Unsupervised domain adaptation: labelled source, unlabelled target");
  sub->add_option("--method", o->cfg.method, "source-only, adabn, dann, cdan, coral, mmd or self-train")
      ->capture_default_str();
  sub->add_option("--source", o->source, "labelled source set, e.g. mnist:train")->required();
  sub->add_option("--target", o->target, "target set (its labels, if any, are ignored), e.g. mnistm:train")->required();
  sub->add_option("--target-test", o->target_test, "labelled target test set: oracle numbers only, never used for "
                                                   "choices");
  sub->add_option("--model", o->model, "zoo name, TorchScript .pt or graft checkpoint")->capture_default_str();
  sub->add_option("--tap", o->cfg.tap, "layer whose output the domain losses see (default: dann_mnist/dann_svhn: "
                                       "flatten, as in the paper; else the classifier's input)");
  sub->add_option("--epochs", o->cfg.epochs, "passes over the source")->capture_default_str();
  sub->add_option("--batch-size", o->cfg.batch_size, "examples per domain per step")->capture_default_str();
  sub->add_option("--optimizer", o->cfg.optimizer, "sgd (momentum 0.9) or adam")->capture_default_str();
  sub->add_option("--lr", o->cfg.lr, "initial learning rate")->capture_default_str();
  sub->add_option("--schedule", o->cfg.schedule, "dann (lr0/(1+10p)^0.75) or constant")->capture_default_str();
  sub->add_option("--weight-decay", o->cfg.weight_decay, "L2 weight decay")->capture_default_str();
  sub->add_option("--trade-off", o->trade_offs,
                  "adaptation weight (dann/cdan: final lambda); several, e.g. 0.3,1,3: one run each, the one with "
                  "the best --select score is kept (no target labels)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--lambda-gamma", o->cfg.lambda_gamma, "dann/cdan: lambda_p = trade_off (2/(1+exp(-gamma p)) - 1)")
      ->capture_default_str();
  sub->add_option("--disc-hidden", o->cfg.disc_hidden, "discriminator width")->capture_default_str();
  sub->add_option("--threshold", o->cfg.threshold, "self-train: pseudo-label confidence in (0, 1]")
      ->capture_default_str();
  sub->add_option("--source-val", o->cfg.source_val, "fraction of the source held out for validation")
      ->capture_default_str();
  sub->add_option("--select", o->cfg.select,
                  "checkpoint (and --trade-off) choice without target labels: im (information maximisation on the "
                  "target), snd (soft neighborhood density on the target), source-val or last")
      ->capture_default_str();
  sub->add_option("--source-tolerance", o->cfg.source_tolerance,
                  "snd/im choose among epochs whose held-out source accuracy is within this of the run's best")
      ->capture_default_str();
  sub->add_option("--seeds", o->seeds, "run once per seed and report mean ± std")->delimiter(',')
      ->capture_default_str()
      ->check(seed_check());
  sub->add_option("--workers", o->cfg.workers, "loader threads")->capture_default_str();
  sub->add_option("--channels", o->channels, "model input channels; needed when source and target channels differ");
  sub->add_option("--preprocess", o->preprocess, "transforms for zoo/TorchScript models")->capture_default_str();
  sub->add_option("--out", o->out, "output folder (one subfolder per seed)")->required();
  sub->add_flag("--quiet", o->cfg.quiet, "no progress lines");
  add_common(*sub, o->common);
  sub->callback([o] {
    apply_common(o->common);
    o->cfg.device = o->common.device;
    o->cfg.out_dir = o->out;
    GRAFT_CHECK(!o->trade_offs.empty(), "--trade-off is empty");
    for (double v : o->trade_offs) {
      o->cfg.trade_off = v;
      o->cfg.validate();
    }
    GRAFT_CHECK(o->trade_offs.size() == 1 || o->cfg.select != "last",
                "--select last cannot choose between several --trade-off values; use snd, im or source-val");
    GRAFT_CHECK(!o->seeds.empty(), "--seeds is empty");
    auto source = data::open_dataset(o->source);
    auto target = data::open_dataset(o->target);
    auto test = o->target_test.empty() ? nullptr : data::open_dataset(o->target_test);
    auto ss = source->input_shape(), ts = target->input_shape();
    GRAFT_CHECK(ss.size() != 3 || ts.size() != 3 || ss[0] == ts[0] || o->channels > 0, "source examples have ", ss[0],
                " channel(s) but target examples ", ts[0], "; pass --channels N to convert both to N channels");
    std::vector<double> sel, last, best;
    nlohmann::json runs = nlohmann::json::array();
    for (auto seed : o->seeds) {
      auto cfg = o->cfg;
      cfg.seed = seed;
      const std::string seed_dir = o->out + "/seed-" + std::to_string(seed);
      adapt::AdaptResult r;
      double chosen = o->trade_offs[0];
      nlohmann::json candidates = nlohmann::json::array();
      for (double v : o->trade_offs) {
        cfg.trade_off = v;
        std::ostringstream name;
        name << seed_dir << "/trade-off-" << v;
        cfg.out_dir = o->trade_offs.size() == 1 ? seed_dir : name.str();
        auto m = open_model(o->model, source->input_shape(), source->class_names(), o->channels, o->preprocess, seed);
        auto rv = adapt::run_adapt(m.model, m.meta, source, target, test, cfg);
        candidates.push_back({{"trade_off", v}, {"dir", cfg.out_dir}, {"score", rv.selected_score},
                              {"selected_epoch", rv.selected_epoch}, {"oracle_selected_target_acc", rv.selected_target_acc}});
        if (o->trade_offs.size() > 1)
          std::cout << cfg.method << " seed " << seed << " trade-off " << v << ": " << cfg.select << " score "
                    << rv.selected_score << "\n";
        if (candidates.size() == 1 || rv.selected_score > r.selected_score) r = rv, chosen = v;
      }
      std::cout << cfg.method << " seed " << seed;
      if (o->trade_offs.size() > 1) std::cout << ": trade-off " << chosen << " chosen by " << cfg.select;
      std::cout << ": selected epoch " << r.selected_epoch << " by " << cfg.select
                << "; proxy A-distance " << std::setprecision(3) << r.pad_before << " -> " << r.pad_after;
      if (r.selected_target_acc >= 0) {
        std::cout << std::fixed << std::setprecision(2) << "; target accuracy (oracle, not used to choose) "
                  << 100 * r.selected_target_acc << "% selected, " << 100 * r.last_target_acc << "% last, "
                  << 100 * r.oracle_best_acc << "% best epoch" << std::defaultfloat;
        sel.push_back(r.selected_target_acc), last.push_back(r.last_target_acc), best.push_back(r.oracle_best_acc);
      }
      std::cout << "\n";
      runs.push_back({{"seed", seed}, {"dir", seed_dir}, {"trade_off", chosen}, {"candidates", candidates},
                      {"model", r.model_path}, {"selected_epoch", r.selected_epoch},
                      {"pad_before", r.pad_before}, {"pad_after", r.pad_after},
                      {"selected_target_acc", r.selected_target_acc}, {"last_target_acc", r.last_target_acc},
                      {"oracle_best_acc", r.oracle_best_acc}});
    }
    auto ms = [](const std::vector<double>& v) {
      double m = 0, s = 0;
      for (double x : v) m += x / static_cast<double>(v.size());
      for (double x : v) s += (x - m) * (x - m);
      s = v.size() > 1 ? std::sqrt(s / static_cast<double>(v.size() - 1)) : 0;
      return std::make_pair(m, s);
    };
    nlohmann::json summary = {{"method", o->cfg.method}, {"select", o->cfg.select}, {"runs", runs}};
    if (!sel.empty()) {
      auto [m, s] = ms(sel);
      auto [ml, sl] = ms(last);
      auto [mb, sb] = ms(best);
      std::cout << std::fixed << std::setprecision(2) << o->cfg.method << " over " << sel.size()
                << " seed(s): target accuracy " << 100 * m << " ± " << 100 * s << "% (selected by " << o->cfg.select
                << "), last epoch " << 100 * ml << " ± " << 100 * sl << "%, oracle best epoch " << 100 * mb << " ± "
                << 100 * sb << "%\n";
      summary["selected_target_acc"] = {{"mean", m}, {"std", s}};
      summary["last_target_acc"] = {{"mean", ml}, {"std", sl}};
      summary["oracle_best_acc"] = {{"mean", mb}, {"std", sb}};
    }
    io::write_text_atomically(o->out + "/summary.json", summary.dump(2) + "\n");
  });
}

}  // namespace graft::cli
