// graft adapt: unsupervised domain adaptation (DANN and peers, from the method registry)
// over seeds and trade-off values, with checkpoints and values chosen without target labels.
#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>

#include "common.h"
#include "graft/dist/context.h"
#include "graft/adapt/adapt.h"
#include "graft/adapt/method.h"
#include "graft/adapt/select.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/core/stats.h"
#include "graft/data/registry.h"
#include "graft/core/files.h"

namespace graft::cli {
namespace {

struct AdaptOpts {
  Common common;
  adapt::AdaptConfig cfg;
  std::string model = "dann_mnist", source, target, target_test, out, preprocess = "normalize=0.5:0.5";
  std::vector<uint64_t> seeds = {1};
  std::vector<double> trade_offs;
  int channels = 0;
  std::map<std::string, CLI::Option*> method_opts;  ///< option name -> its CLI option
};

/// The method's help lines for --help's footer.
std::string methods_help() {
  std::string s = "Methods (--method):\n";
  for (const auto& m : adapt::methods()) {
    s += "  " + m.name + std::string(m.name.size() < 12 ? 12 - m.name.size() : 1, ' ') + m.help;
    if (!m.options.empty()) {
      s += " [options:";
      for (const auto& o : m.options) s += " --" + o;
      s += "]";
    }
    s += "\n";
  }
  return s + "Layers up to --tap learn at --backbone-lr-mult times the head's rate: by default 0.1 for a pretrained "
             "model (a checkpoint or TorchScript file, as TLlib does) and 1 for a zoo model trained from scratch.\n";
}

/// An option given on the command line that the chosen method never reads is an error.
void check_method_options(const AdaptOpts& o, const adapt::MethodInfo& info) {
  for (const auto& [name, opt] : o.method_opts) {
    if (opt->count() == 0) continue;
    if (std::find(info.options.begin(), info.options.end(), name) != info.options.end()) continue;
    std::string reads;
    for (const auto& r : info.options) reads += (reads.empty() ? "--" : ", --") + r;
    GRAFT_FAIL("--", name, " is not used by --method ", info.name, " (it reads ",
               reads.empty() ? "none of the method options" : reads, "); drop it or choose another method");
  }
  GRAFT_CHECK(!info.source_free || o.source.empty(), "--method ", info.name, " is source-free: it adapts a "
              "source-trained --model on the target alone and never reads --source; drop --source");
  GRAFT_CHECK(info.source_free || !o.source.empty(), "--source is required by --method ", info.name);
}

void print_summary(const AdaptOpts& o, const adapt::SweepResult& sw) {
  std::vector<double> sel, last, best;
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& [seed, idx] : sw.chosen) {
    if (idx < 0) {
      std::cout << o.cfg.method << " seed " << seed << ": every --trade-off value failed; no model\n";
      continue;
    }
    const auto& r = sw.runs[static_cast<size_t>(idx)];
    const auto& d = r.outcome.details;
    std::cout << o.cfg.method << " seed " << seed;
    if (o.trade_offs.size() > 1) std::cout << ": trade-off " << r.value << " chosen by " << o.cfg.select;
    std::cout << ": selected epoch " << d["selected_epoch"] << " by " << o.cfg.select << "; proxy A-distance "
              << std::setprecision(3) << d["pad_before"].get<double>() << " -> " << d["pad_after"].get<double>();
    const double acc = d["selected_target_acc"].get<double>();
    if (acc >= 0) {
      std::cout << std::fixed << std::setprecision(2) << "; target accuracy (oracle, not used to choose) " << 100 * acc
                << "% selected, " << 100 * d["last_target_acc"].get<double>() << "% last, "
                << 100 * d["oracle_best_acc"].get<double>() << "% best epoch" << std::defaultfloat;
      sel.push_back(acc), last.push_back(d["last_target_acc"]), best.push_back(d["oracle_best_acc"]);
    }
    if (d.value("near_chance", false)) std::cout << " [near chance on the source: not meaningful]";
    std::cout << "\n";
    auto row = d;
    row["seed"] = seed, row["trade_off"] = r.value;
    runs.push_back(row);
  }
  nlohmann::json all = nlohmann::json::array();
  for (const auto& r : sw.runs)
    all.push_back({{"seed", r.seed}, {"trade_off", r.value}, {"ok", r.ok}, {"error", r.error},
                   {"score", r.outcome.score}, {"dir", r.outcome.details.value("dir", "")}});
  nlohmann::json summary = {{"method", o.cfg.method}, {"select", o.cfg.select}, {"runs", runs}, {"grid", all}};
  if (!sel.empty()) {
    auto m = mean_std(sel), ml = mean_std(last), mb = mean_std(best);
    std::cout << std::fixed << std::setprecision(2) << o.cfg.method << " over " << sel.size()
              << " seed(s): target accuracy " << 100 * m.mean << " ± " << 100 * m.std << "% (selected by "
              << o.cfg.select << "), last epoch " << 100 * ml.mean << " ± " << 100 * ml.std << "%, oracle best epoch "
              << 100 * mb.mean << " ± " << 100 * mb.std << "%\n";
    summary["selected_target_acc"] = {{"mean", m.mean}, {"std", m.std}};
    summary["last_target_acc"] = {{"mean", ml.mean}, {"std", ml.std}};
    summary["oracle_best_acc"] = {{"mean", mb.mean}, {"std", mb.std}};
  }
  graft::write_text_atomically(o.out + "/summary.json", summary.dump(2) + "\n");
}

void run(AdaptOpts& o) {
  apply_common(o.common);
  const auto& info = adapt::find_method(o.cfg.method);
  check_method_options(o, info);
  o.cfg.device = o.common.device;
  o.cfg.precision = o.common.precision;
  o.cfg.channels_last = o.common.channels_last;
  o.cfg.out_dir = o.out;
  if (o.trade_offs.empty()) o.trade_offs = {info.default_trade_off};
  for (double v : o.trade_offs) {
    o.cfg.trade_off = v;
    o.cfg.validate();
  }
  GRAFT_CHECK(o.trade_offs.size() == 1 || o.cfg.select != "last",
              "--select last cannot choose between several --trade-off values; use snd, im or source-val");
  GRAFT_CHECK(!o.seeds.empty(), "--seeds is empty");
  auto source = o.source.empty() ? nullptr : data::open_dataset(o.source);
  auto target = data::open_dataset(o.target);
  auto test = o.target_test.empty() ? nullptr : data::open_dataset(o.target_test);
  auto& first = source ? source : target;
  if (source) {
    auto ss = source->input_shape(), ts = target->input_shape();
    GRAFT_CHECK(ss.size() != 3 || ts.size() != 3 || ss[0] == ts[0] || o.channels > 0, "source examples have ", ss[0],
                " channel(s) but target examples ", ts[0], "; pass --channels N to convert both to N channels");
  }
  auto sw = adapt::sweep(
      o.seeds, o.trade_offs,
      [&](uint64_t seed, double v) {
        auto cfg = o.cfg;
        cfg.seed = seed, cfg.trade_off = v;
        std::ostringstream dir;
        dir << o.out << "/seed-" << seed;
        if (o.trade_offs.size() > 1) dir << "/trade-off-" << v;
        cfg.out_dir = dir.str();
        auto m = open_model(o.model, first->input_shape(), source ? source->class_names() : target->class_names(),
                            o.channels, o.preprocess, seed);
        GRAFT_CHECK(!info.source_free || m.from_checkpoint || m.meta.arch == "torchscript", "--method ", info.name,
                    " adapts a source-trained model: give --model a graft checkpoint or TorchScript file, not the "
                    "zoo name '", o.model, "'");
        cfg.pretrained = cfg.pretrained || m.from_checkpoint || m.meta.arch == "torchscript";
        auto r = adapt::run_adapt(m.model, m.meta, source, target, test, cfg);
        if (o.trade_offs.size() > 1)
          std::cout << cfg.method << " seed " << seed << " trade-off " << v << ": " << cfg.select << " score "
                    << r.selected_score << "\n";
        nlohmann::json d = {{"dir", cfg.out_dir}, {"model", r.model_path}, {"selected_epoch", r.selected_epoch},
                            {"pad_before", r.pad_before}, {"pad_after", r.pad_after},
                            {"selected_target_acc", r.selected_target_acc}, {"last_target_acc", r.last_target_acc},
                            {"oracle_best_acc", r.oracle_best_acc}, {"near_chance", r.near_chance},
                            {"selected_source_acc", r.selected_source_acc}, {"reused", r.reused}};
        return adapt::SweepOutcome{r.selected_score, d};
      },
      [](const std::string& msg) { std::cerr << "graft: warning: " << msg << "; the grid goes on\n"; });
  if (!dist::is_main_process()) return;  // a data-parallel run: rank 0 reports and writes summary.json
  print_summary(o, sw);
  bool any = false;
  for (const auto& c : sw.chosen) any |= c.second >= 0;
  GRAFT_CHECK(any, "every run failed (see the warnings above); lower --lr or --trade-off");
}

}  // namespace

void add_adapt(CLI::App& app) {
  auto o = std::make_shared<AdaptOpts>();
  auto& c = o->cfg;
  auto* sub = app.add_subcommand("adapt", "Unsupervised domain adaptation: labelled source, unlabelled target");
  sub->footer(methods_help());
  sub->add_option("--method", c.method, "adaptation method: " + adapt::method_names() + " (see below)")
      ->capture_default_str();
  sub->add_option("--source", o->source, "labelled source set, e.g. mnist:train (not for source-free methods)");
  sub->add_option("--target", o->target, "target set (its labels, if any, are ignored), e.g. mnistm:train")->required();
  sub->add_option("--target-test", o->target_test, "labelled target test set: oracle numbers only, never used for "
                                                   "choices");
  sub->add_option("--model", o->model, "zoo name, TorchScript .pt or graft checkpoint")->capture_default_str();
  sub->add_option("--tap", c.tap, "layer whose output the domain losses see (default: dann_mnist/dann_svhn: "
                                  "flatten, as in the paper; else the classifier's input)");
  sub->add_option("--epochs", c.epochs, "passes over the source (source-free: over the target)")->capture_default_str();
  sub->add_option("--batch-size", c.batch_size, "examples per domain per step")->capture_default_str();
  sub->add_option("--optimizer", c.optimizer, "sgd (momentum 0.9) or adam")->capture_default_str();
  sub->add_option("--lr", c.lr, "initial learning rate of the head")->capture_default_str();
  sub->add_option("--schedule", c.schedule, "dann (lr0/(1+10p)^0.75) or constant")->capture_default_str();
  sub->add_option("--weight-decay", c.weight_decay, "L2 weight decay")->capture_default_str();
  o->method_opts["trade-off"] =
      sub->add_option("--trade-off", o->trade_offs,
                      "adaptation weight (dann/cdan: final lambda; shot: pseudo-label weight, default 0.3); several, "
                      "e.g. 0.3,1,3: one run each, the one with the best --select score is kept (no target labels)")
          ->delimiter(',');
  o->method_opts["lambda-gamma"] = sub->add_option("--lambda-gamma", c.lambda_gamma,
                                                   "dann/cdan/mdd: lambda_p = trade_off (2/(1+exp(-gamma p)) - 1)")
                                       ->capture_default_str();
  o->method_opts["disc-hidden"] =
      sub->add_option("--disc-hidden", c.disc_hidden, "discriminator / adversarial head width")->capture_default_str();
  o->method_opts["threshold"] =
      sub->add_option("--threshold", c.threshold, "self-train: pseudo-label confidence in (0, 1]")->capture_default_str();
  o->method_opts["temperature"] =
      sub->add_option("--temperature", c.temperature, "mcc: softmax temperature")->capture_default_str();
  o->method_opts["margin"] = sub->add_option("--margin", c.margin, "mdd: margin gamma")->capture_default_str();
  sub->add_option("--source-val", c.source_val, "fraction of the source held out for validation")->capture_default_str();
  sub->add_option("--select", c.select,
                  "checkpoint (and --trade-off) choice without target labels: im (information maximisation on the "
                  "target), snd (soft neighborhood density on the target), source-val or last")
      ->capture_default_str();
  sub->add_option("--source-tolerance", c.source_tolerance,
                  "snd/im choose among epochs whose held-out source accuracy is within this of the run's best")
      ->capture_default_str();
  sub->add_option("--backbone-lr-mult", c.backbone_lr_mult,
                  "learning rate of the layers up to --tap relative to the head (-1: 0.1 for pretrained models, 1 "
                  "for zoo models from scratch)")
      ->capture_default_str();
  sub->add_option("--freeze-through", c.policy.freeze_through, "freeze this layer and all below it");
  sub->add_option("--lr-mult", c.policy.lr_mult, "per-layer learning-rate rules GLOB=MULT,..., e.g. conv*=0.1");
  sub->add_option("--layer-decay", c.policy.layer_decay, "layer-wise learning-rate decay")->capture_default_str();
  sub->add_option("--seeds", o->seeds, "run once per seed and report mean ± std")
      ->delimiter(',')
      ->capture_default_str()
      ->check(seed_check());
  sub->add_option("--workers", c.workers, "loader threads that decode and augment (in-memory data with fixed "
                                          "transforms is batched in the training thread)")->capture_default_str();
  add_data_on_device(*sub, c.data_on_device);
  sub->add_option("--channels", o->channels, "model input channels; needed when source and target channels differ");
  sub->add_option("--preprocess", o->preprocess, "transforms for zoo/TorchScript models")->capture_default_str();
  sub->add_option("--out", o->out, "output folder (one subfolder per seed)")->required();
  sub->add_flag("--resume", c.resume, "continue interrupted runs exactly and reuse finished ones");
  sub->add_flag("--overwrite", c.overwrite, "replace the files of earlier runs in --out");
  sub->add_flag("--sync-bn-stats", c.sync_bn_stats, "data-parallel runs: average BatchNorm running statistics over "
                                                    "the ranks each epoch (default: rank 0's are kept)");
  sub->add_option("--checkpoint-every", c.checkpoint_every, "also checkpoint every N steps (0: per epoch)")
      ->capture_default_str();
  sub->add_option("--log-every", c.log_every_s, "seconds between progress lines")->capture_default_str();
  sub->add_flag("--quiet", c.quiet, "no progress lines");
  add_common(*sub, o->common);
  sub->callback([o] { run(*o); });
}

}  // namespace graft::cli
