// graft adapt as a library call: a method from the registry as an objective term of the
// one Trainer, per-epoch label-free scores, and the checkpoint chosen without target labels.
#include "graft/adapt/adapt.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <optional>
#include <set>
#include <sstream>

#include "graft/adapt/losses.h"
#include "graft/adapt/select.h"
#include "graft/analysis/plot.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/dist/context.h"
#include "graft/data/loader.h"
#include "graft/data/model_input.h"
#include "graft/core/files.h"
#include "graft/io/run_dir.h"
#include "graft/models/zoo.h"
#include "graft/train/trainer.h"

namespace fs = std::filesystem;

namespace graft::adapt {
namespace {

/// Logits and tap features of a dataset sample, in eval mode without gradients.
struct Outputs {
  at::Tensor features, logits, labels;
};
Outputs run_eval(models::Backbone& m, size_t tap, const data::DatasetPtr& d, const io::ModelMeta& meta, int workers,
                 c10::Device dev) {
  torch::NoGradGuard ng;
  m.train(false);
  data::Loader l(d, train::input_pipeline(meta, d->input_shape()),
                 data::LoaderOptions().batch_size_(256).shuffle_(false).workers_(workers).pin_memory_(dev.is_cuda()));
  l.start_epoch(0);
  std::vector<at::Tensor> f, z, y;
  while (auto b = l.next()) {
    auto h = m.forward_range(b->input.to(dev, b->input.scalar_type(), /*non_blocking=*/true), 0, tap + 1);
    z.push_back(m.forward_range(h, tap + 1, m.num_layers()).cpu());
    f.push_back(h.flatten(1).cpu());
    y.push_back(b->label);
  }
  return {at::cat(f), at::cat(z), at::cat(y)};
}

/// 2-D PCA coordinates (N, 2) of the rows of x.
at::Tensor pca2(const at::Tensor& x_in) {
  auto x = x_in.to(at::kDouble);
  auto c = x - x.mean(0, true);
  auto cov = c.t().mm(c) / static_cast<double>(std::max<int64_t>(1, x.size(0) - 1));
  auto vecs = std::get<1>(at::linalg_eigh(cov));
  return c.mm(vecs.narrow(1, vecs.size(1) - 2, 2).flip({1}));
}

/// The embedding of the selected model: PCA of the tap features of held-out source and
/// target examples, one panel coloured by class, one by domain. Target classes come from
/// the labelled target test set when there is one (a figure only, never a choice), else
/// from the model's predictions (the title says which).
void write_embedding(const std::string& path, const Outputs& s, const Outputs& t, bool target_labelled,
                     const std::vector<std::string>& classes, const std::string& title) {
  const int64_t ns = std::min<int64_t>(500, s.features.size(0)), nt = std::min<int64_t>(500, t.features.size(0));
  auto xy = pca2(at::cat({s.features.narrow(0, 0, ns), t.features.narrow(0, 0, nt)}));
  auto tl = target_labelled ? t.labels : t.logits.argmax(1);
  analysis::ScatterPanel by_class, by_domain;
  by_class.title = title + ": by class" + (target_labelled ? "" : " (target: predicted)");
  by_domain.title = title + ": by domain";
  by_class.colour_by = "class";
  by_domain.colour_by = "domain";
  for (auto* p : {&by_class, &by_domain}) {
    p->xlabel = "PC 1";
    p->ylabel = "PC 2";
    for (int64_t i = 0; i < ns + nt; ++i) {
      p->x.push_back(xy[i][0].item<double>());
      p->y.push_back(xy[i][1].item<double>());
      p->label.push_back(i < ns ? s.labels[i].item<int64_t>() : tl[i - ns].item<int64_t>());
      p->domain.push_back(i < ns ? 0 : 1);
    }
  }
  graft::write_text_atomically(path, analysis::svg_scatter({by_class, by_domain}, classes, {"source", "target"}));
}

double accuracy_of(const Outputs& o) { return (o.logits.argmax(1) == o.labels).to(at::kDouble).mean().item<double>(); }

/// After every epoch: held-out source accuracy, the label-free target scores, the oracle
/// target accuracy (reported only), and the checkpoint choice; candidate weights are kept
/// as files so that a resumed run can still choose them.
class AdaptObserver : public train::EpochObserver {
 public:
  AdaptObserver(const AdaptConfig& cfg, Method& method, const io::ModelMeta& meta, size_t tap,
                data::DatasetPtr src_val, data::DatasetPtr tgt, data::DatasetPtr tgt_eval, data::DatasetPtr tgt_test)
      : cfg_(cfg), method_(method), meta_(meta), tap_(tap), src_val_(std::move(src_val)), tgt_(std::move(tgt)),
        tgt_eval_(std::move(tgt_eval)), tgt_test_(std::move(tgt_test)),
        selector_(cfg.select, src_val_ && (cfg.select == "im" || cfg.select == "snd") ? cfg.source_tolerance : 0.0) {}

  nlohmann::json on_epoch_end(models::Backbone& m, int64_t epoch) override {
    const auto dev = m.device();
    nlohmann::json j;
    double src = std::nan("");
    if (src_val_) j["source_val_acc"] = src = accuracy_of(run_eval(m, tap_, src_val_, meta_, cfg_.workers, dev));
    if (tgt_test_ && cfg_.method == "adabn")  // the same weights with the source's statistics: source-only with BN
      j["oracle_target_acc_source_bn"] = accuracy_of(run_eval(m, tap_, tgt_test_, meta_, cfg_.workers, dev));
    method_.before_target_eval(m, tgt_, data::model_input_pipeline(meta_, tgt_->input_shape()),
                               cfg_.seed + 7 + static_cast<uint64_t>(epoch - 1), cfg_.workers);
    auto te = run_eval(m, tap_, tgt_eval_, meta_, cfg_.workers, dev);
    j["target_im"] = information_maximisation(te.logits);
    j["target_snd"] = soft_neighborhood_density(te.logits);
    if (tgt_test_) j["oracle_target_acc"] = accuracy_of(run_eval(m, tap_, tgt_test_, meta_, cfg_.workers, dev));
    const double crit = cfg_.select == "snd" ? j["target_snd"].get<double>() : j["target_im"].get<double>();
    auto d = selector_.offer(epoch, crit, src);
    graft::ensure_dir(cfg_.out_dir + "/candidates");
    if (d.keep) io::save_checkpoint(candidate(epoch), m, meta_, nullptr, nullptr);
    for (auto e : d.drop) fs::remove(candidate(e));
    method_.after_target_eval(m);
    j["selected_so_far"] = selector_.best_epoch();
    if (!cfg_.quiet) print(epoch, j);
    return j;
  }
  nlohmann::json state() const override { return {{"selector", selector_.state()}}; }
  void restore(const nlohmann::json& s) override { selector_.restore(s.at("selector")); }
  const CheckpointSelector& selector() const { return selector_; }
  std::string candidate(int64_t epoch) const { return cfg_.out_dir + "/candidates/epoch-" + std::to_string(epoch) + ".ckpt"; }

 private:
  void print(int64_t epoch, const nlohmann::json& j) const {
    std::ostringstream os;
    os << std::fixed << cfg_.method << " epoch " << epoch << "/" << cfg_.epochs << std::setprecision(2);
    if (j.contains("source_val_acc")) os << ": source-val " << 100 * j["source_val_acc"].get<double>() << "%";
    os << std::setprecision(3) << " IM " << j["target_im"].get<double>() << " SND " << j["target_snd"].get<double>();
    if (j.contains("oracle_target_acc"))
      os << std::setprecision(2) << " (oracle target " << 100 * j["oracle_target_acc"].get<double>() << "%)";
    std::cerr << os.str() << std::endl;
  }
  const AdaptConfig& cfg_;
  Method& method_;
  const io::ModelMeta& meta_;
  size_t tap_;
  data::DatasetPtr src_val_, tgt_, tgt_eval_, tgt_test_;
  CheckpointSelector selector_;
};

/// Refuses to resume a run of another configuration, naming the first option that differs.
void check_same_adapt_config(const std::string& path, const nlohmann::json& now) {
  if (!fs::exists(path)) return;
  std::ifstream in(path);
  auto before = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  GRAFT_CHECK(!before.is_discarded(), path, " is not valid JSON; remove the folder or choose another --out");
  io::check_same_config(before, now);
}

/// The per-layer learning-rate multipliers of an adaptation run.
std::vector<double> adapt_plan(const AdaptConfig& cfg, const Method& method, models::Backbone& m, size_t tap) {
  const auto& p = cfg.policy;
  std::vector<double> mult;
  if (!p.freeze_through.empty() || !p.lr_mult.empty() || p.layer_decay != 1.0) {
    mult = train::resolve_lr_mults(m, p, [](const std::string& w) { std::cerr << "graft: warning: " << w << "\n"; });
  } else {
    const double b = cfg.backbone_lr_mult >= 0 ? cfg.backbone_lr_mult : cfg.pretrained ? 0.1 : 1.0;
    mult.assign(m.num_layers(), 1.0);
    for (size_t i = 0; i <= tap; ++i) mult[i] = b;
  }
  method.adjust_plan(mult, tap);
  return mult;
}

train::TrainConfig to_train_config(const AdaptConfig& cfg) {
  train::TrainConfig t;
  t.epochs = cfg.epochs;
  t.batch_size = cfg.batch_size;
  t.optimizer = cfg.optimizer;
  t.lr = cfg.lr;
  t.momentum = 0.9;
  t.weight_decay = cfg.weight_decay;
  t.schedule = cfg.schedule == "dann" ? "inv" : "constant";
  t.seed = cfg.seed;
  t.device = cfg.device;
  t.workers = cfg.workers;
  t.out_dir = cfg.out_dir;
  t.resume = cfg.resume;
  t.overwrite = cfg.overwrite;
  t.checkpoint_every = cfg.checkpoint_every;
  t.sync_bn_stats = cfg.sync_bn_stats;
  t.precision = cfg.precision;
  t.channels_last = cfg.channels_last;
  t.data_on_device = cfg.data_on_device;
  t.log_every_s = cfg.log_every_s;
  t.quiet = cfg.quiet;
  t.drop_last = true;
  t.cache = "off";
  return t;
}

}  // namespace

void AdaptConfig::validate() const {
  const auto& info = find_method(method);
  check_choice("optimizer", optimizer, {"sgd", "adam"});
  check_choice("schedule", schedule, {"dann", "constant"});
  check_choice("select", select, {"snd", "im", "source-val", "last"});
  GRAFT_CHECK(!info.source_free || select != "source-val", "--select source-val needs source data, which the "
              "source-free method '", method, "' never reads; use im, snd or last");
  GRAFT_CHECK(epochs >= 1 && epochs <= 100000, "--epochs must be in [1, 100000], got ", epochs);
  GRAFT_CHECK(batch_size >= 2 && batch_size <= 65536, "--batch-size must be in [2, 65536], got ", batch_size);
  GRAFT_CHECK(std::isfinite(lr) && lr > 0 && lr <= 10, "--lr must be in (0, 10], got ", lr);
  GRAFT_CHECK(std::isfinite(weight_decay) && weight_decay >= 0 && weight_decay < 1, "--weight-decay must be in [0, 1)");
  GRAFT_CHECK(std::isfinite(trade_off) && trade_off >= 0 && trade_off <= 100,
              "--trade-off (the adaptation weight / final lambda) must be in [0, 100], got ", trade_off);
  GRAFT_CHECK(std::isfinite(lambda_gamma) && lambda_gamma > 0 && lambda_gamma <= 100,
              "--lambda-gamma must be in (0, 100], got ", lambda_gamma);
  GRAFT_CHECK(threshold > 0 && threshold <= 1, "--threshold must be in (0, 1], got ", threshold);
  GRAFT_CHECK(std::isfinite(temperature) && temperature > 0 && temperature <= 100,
              "--temperature must be in (0, 100], got ", temperature);
  GRAFT_CHECK(std::isfinite(margin) && margin > 0 && margin <= 100, "--margin must be in (0, 100], got ", margin);
  GRAFT_CHECK(source_val > 0 && source_val < 1, "--source-val must be in (0, 1), got ", source_val);
  GRAFT_CHECK(disc_hidden >= 1 && disc_hidden <= 65536, "--disc-hidden must be in [1, 65536]");
  GRAFT_CHECK(source_tolerance >= 0 && source_tolerance <= 1, "--source-tolerance must be in [0, 1], got ",
              source_tolerance);
  GRAFT_CHECK(backbone_lr_mult == -1 || (std::isfinite(backbone_lr_mult) && backbone_lr_mult >= 0),
              "--backbone-lr-mult must be >= 0, got ", backbone_lr_mult);
  GRAFT_CHECK(eval_examples >= 10, "--eval-examples must be >= 10");
  GRAFT_CHECK(checkpoint_every >= 0, "--checkpoint-every must be >= 0");
  GRAFT_CHECK(!out_dir.empty(), "--out is required");
  parse_device(device);
}

nlohmann::json AdaptConfig::to_json() const {
  return {{"method", method},       {"tap", tap},           {"epochs", epochs},         {"batch_size", batch_size},
          {"optimizer", optimizer}, {"lr", lr},             {"schedule", schedule},     {"weight_decay", weight_decay},
          {"trade_off", trade_off}, {"lambda_gamma", lambda_gamma}, {"disc_hidden", disc_hidden},
          {"threshold", threshold}, {"temperature", temperature}, {"margin", margin}, {"source_val", source_val},
          {"select", select},       {"source_tolerance", source_tolerance}, {"eval_examples", eval_examples},
          {"backbone_lr_mult", backbone_lr_mult}, {"pretrained", pretrained},
          {"freeze_through", policy.freeze_through}, {"lr_mult", policy.lr_mult}, {"layer_decay", policy.layer_decay},
          {"seed", seed}, {"device", device}, {"checkpoint_every", checkpoint_every},
          {"sync_bn_stats", sync_bn_stats}, {"precision", precision}};
}

MethodOptions AdaptConfig::method_options() const {
  MethodOptions o;
  o.trade_off = trade_off;
  o.lambda_gamma = lambda_gamma;
  o.disc_hidden = disc_hidden;
  o.threshold = threshold;
  o.temperature = temperature;
  o.margin = margin;
  return o;
}

namespace {

/// After the choice: proxy A-distance and embedding of the selected model, the
/// near-chance guard, model.ckpt and result.json.
void finish_adapt(const AdaptConfig& cfg, models::Backbone& m, const io::ModelMeta& meta, size_t tap,
                  const std::string& tap_name, const data::DatasetPtr& src_val, const data::DatasetPtr& tgt_eval,
                  const data::DatasetPtr& target_test, AdaptResult& res) {
  const auto dev = m.device();
  const int64_t K = meta.num_classes();
  if (src_val) {
    auto s = run_eval(m, tap, src_val, meta, cfg.workers, dev);
    auto t = run_eval(m, tap, tgt_eval, meta, cfg.workers, dev);
    const int64_t ne = std::min<int64_t>(500, std::min(s.features.size(0), t.features.size(0)));
    res.pad_after = proxy_a_distance(s.features.narrow(0, 0, ne), t.features.narrow(0, 0, ne), cfg.seed);
    const bool labelled = target_test != nullptr;
    auto te = labelled ? run_eval(m, tap, target_test, meta, cfg.workers, dev) : t;
    write_embedding(cfg.out_dir + "/embedding.svg", s, te, labelled, meta.class_names,
                    cfg.method + ", epoch " + std::to_string(res.selected_epoch) + ", PCA of " + tap_name);
    // Guardrail: a model that has not learnt the source task says nothing about adaptation.
    const double chance = 1.0 / static_cast<double>(K);
    if (res.selected_source_acc >= 0 && res.selected_source_acc < std::min(0.99, 1.5 * chance + 0.05)) {
      res.near_chance = true;
      std::cerr << "graft: warning: held-out source accuracy of the selected epoch is "
                << 100 * res.selected_source_acc << "%, near chance (" << 100 * chance << "% for " << K
                << " classes): the model has not learnt the source task, and its adapted result is not meaningful. "
                   "Train longer, raise --lr or lower --trade-off\n";
    }
  }
  res.model_path = cfg.out_dir + "/model.ckpt";
  io::save_checkpoint(res.model_path, m, meta, nullptr, nullptr);
  // A TorchScript model goes back out as TorchScript, with the selected epoch's weights.
  if (models::is_torchscript(m)) models::export_torchscript(m, meta, cfg.out_dir + "/model.pt");
  nlohmann::json r = {{"config", cfg.to_json()},          {"tap", tap_name},
                      {"selected_epoch", res.selected_epoch}, {"selected_by", cfg.select},
                      {"selected_score", res.selected_score}, {"pad_before", res.pad_before},
                      {"pad_after", res.pad_after},       {"model", res.model_path},
                      {"near_chance", res.near_chance}};
  if (res.selected_source_acc >= 0) r["selected_source_acc"] = res.selected_source_acc;
  if (res.selected_target_acc >= 0)
    r["oracle"] = {{"note", "target test labels, never used for any choice"},
                   {"selected_target_acc", res.selected_target_acc},
                   {"last_target_acc", res.last_target_acc},
                   {"best_epoch_target_acc", res.oracle_best_acc}};
  graft::write_text_atomically(cfg.out_dir + "/result.json", r.dump(2) + "\n");
}

}  // namespace

namespace {

void check_domains(const MethodInfo& info, const models::Backbone& model, const io::ModelMeta& meta,
                   const data::DatasetPtr& source, const data::DatasetPtr& target) {
  GRAFT_CHECK(target && target->size() > 0, "the target set is empty: adaptation needs unlabelled target examples");
  GRAFT_CHECK(info.source_free || (source && source->size() > 0), "the source set is empty");
  GRAFT_CHECK(!info.needs_batchnorm || has_batchnorm(model), "--method ", info.name, " needs BatchNorm layers, but "
              "model '", meta.arch, "' has no BatchNorm layer; use one that has (dann_mnist_bn, resnet8, resnet20, mlp_bn, most "
              "TorchScript CNNs) or another --method");
  if (!source) return;
  auto ss = source->input_shape(), ts = target->input_shape();
  GRAFT_CHECK(ss.size() == ts.size() && (ss.size() != 3 || (ss[1] == ts[1] && ss[2] == ts[2])) &&
                  (ss.size() == 3 || ss == ts),
              "source examples have shape ", at::IntArrayRef(ss), " but target examples ", at::IntArrayRef(ts),
              "; give both the same size (e.g. a resize view) before adapting");
  GRAFT_CHECK(ss.size() != 3 || ss[0] == ts[0] || meta.input_shape.size() == 3,
              "source and target have different channels");
}

/// A finished run's result.json read back (with --resume a finished run is not redone).
std::optional<AdaptResult> finished_run(const AdaptConfig& cfg) {
  const std::string path = cfg.out_dir + "/result.json";
  if (!cfg.resume || !fs::exists(path)) return std::nullopt;
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.contains("selected_epoch")) return std::nullopt;
  AdaptResult r;
  r.reused = true;
  r.selected_epoch = j["selected_epoch"].get<int64_t>();
  r.selected_score = j.value("selected_score", 0.0);
  r.pad_before = j.value("pad_before", -1.0);
  r.pad_after = j.value("pad_after", -1.0);
  r.selected_source_acc = j.value("selected_source_acc", -1.0);
  r.near_chance = j.value("near_chance", false);
  r.model_path = j.value("model", cfg.out_dir + "/model.ckpt");
  if (j.contains("oracle")) {
    r.selected_target_acc = j["oracle"].value("selected_target_acc", -1.0);
    r.last_target_acc = j["oracle"].value("last_target_acc", -1.0);
    r.oracle_best_acc = j["oracle"].value("best_epoch_target_acc", -1.0);
  }
  return r;
}

/// The proxy A-distance of tap features before training, kept in the run folder so that
/// a resumed run reports the same figure.
double pad_before(const AdaptConfig& cfg, models::Backbone& m, size_t tap, const data::DatasetPtr& src,
                  const data::DatasetPtr& tgt, const io::ModelMeta& meta) {
  const std::string path = cfg.out_dir + "/pad_before.json";
  if (cfg.resume && fs::exists(path)) {
    std::ifstream in(path);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_discarded() && j.contains("pad_before")) return j["pad_before"].get<double>();
  }
  if (!src) return -1;
  auto s = run_eval(m, tap, src, meta, cfg.workers, m.device());
  auto t = run_eval(m, tap, tgt, meta, cfg.workers, m.device());
  GRAFT_CHECK(torch::isfinite(s.logits).all().item<bool>(), "the source set gives NaN or infinite outputs before "
              "any training: its inputs contain NaN/inf values; fix or drop those examples");
  GRAFT_CHECK(torch::isfinite(t.logits).all().item<bool>(), "the target set gives NaN or infinite outputs before "
              "any training: its inputs contain NaN/inf values; fix or drop those examples");
  const int64_t ne = std::min<int64_t>(500, std::min(s.features.size(0), t.features.size(0)));
  const double pad = proxy_a_distance(s.features.narrow(0, 0, ne), t.features.narrow(0, 0, ne), cfg.seed);
  graft::write_text_atomically(path, nlohmann::json({{"pad_before", pad}}).dump() + "\n");
  return pad;
}

/// The per-epoch history of an adaptation run, from the trainer's records.
std::vector<AdaptEpoch> adapt_history(const train::TrainResult& tr) {
  std::vector<AdaptEpoch> h;
  for (const auto& r : tr.history) {
    AdaptEpoch e;
    e.epoch = r.epoch;
    e.loss_cls = r.train_loss;
    e.loss_adapt = std::max(0.0, r.extra_loss);
    e.lr = r.lr;
    e.seconds = r.seconds;
    e.domain_acc = r.extra.value("domain_acc", -1.0);
    e.lambda = r.extra.value("lambda", 0.0);
    e.source_val_acc = r.extra.value("source_val_acc", -1.0);
    e.target_im = r.extra.value("target_im", 0.0);
    e.target_snd = r.extra.value("target_snd", 0.0);
    e.target_acc = r.extra.value("oracle_target_acc", -1.0);
    e.target_acc_source_bn = r.extra.value("oracle_target_acc_source_bn", -1.0);
    h.push_back(e);
  }
  return h;
}

}  // namespace

AdaptResult run_adapt(models::BackbonePtr model, const io::ModelMeta& meta, const data::DatasetPtr& source,
                      const data::DatasetPtr& target, const data::DatasetPtr& target_test, const AdaptConfig& cfg) {
  cfg.validate();
  const auto& info = find_method(cfg.method);
  check_domains(info, *model, meta, info.source_free ? nullptr : source, target);
  graft::ensure_dir(cfg.out_dir);
  if (cfg.resume) check_same_adapt_config(cfg.out_dir + "/adapt.json", cfg.to_json());
  if (auto done = finished_run(cfg)) {
    if (!cfg.quiet) std::cerr << "graft: " << cfg.out_dir << " holds a finished run: reusing its result\n";
    return *done;
  }
  // A data-parallel run: rank 0 alone checks and writes the folder; every rank trains.
  const bool main_rank = dist::process_context(cfg.device).is_main();
  if (!cfg.resume && !cfg.overwrite && main_rank)  // refused before adapt.json is written over another run's
    for (const auto& f : io::default_run_files())
      GRAFT_CHECK(!fs::exists(cfg.out_dir + "/" + f), cfg.out_dir, " holds the files of another run (", f,
                  "); pass --resume to continue it, --overwrite to replace it, or choose another --out");
  if (main_rank) graft::write_text_atomically(cfg.out_dir + "/adapt.json", cfg.to_json().dump(2) + "\n");
  const auto dev = parse_device(cfg.device);
  model->to(dev);
  std::string tap_name = cfg.tap.empty() ? default_tap(*model) : cfg.tap;
  // DAN applies MK-MMD on fully connected layers: on the DANN digit networks the convolutional
  // output (flatten) collapses under it, fc1 does not (docs/RESULTS.md, DAN diagnosis).
  if (cfg.tap.empty() && cfg.method == "mmd" && tap_name == "flatten") {
    const auto& names = model->layer_names();
    if (std::find(names.begin(), names.end(), "fc1") != names.end()) tap_name = "fc1";
  }
  const size_t tap = model->layer_index(tap_name);
  GRAFT_CHECK(tap + 1 < model->num_layers(), "--tap '", tap_name, "' is the last layer; tap a layer below the classifier");
  bool target_labelled = false;
  for (auto y : target->labels()) target_labelled |= y >= 0;
  if (target_labelled && main_rank)
    std::cerr << "graft: note: the target training set has labels; adaptation ignores them (only --target-test "
                 "gives oracle numbers)\n";
  auto tgt = data::unlabelled(target);
  auto tgt_eval = data::take(tgt, cfg.eval_examples);
  data::DatasetPtr src_train, src_val;
  if (!info.source_free) std::tie(src_train, src_val) = data::split(source, cfg.source_val, cfg.seed);
  GRAFT_CHECK(tgt->size() >= cfg.batch_size, "the target set has ", tgt->size(), " examples, fewer than --batch-size (",
              cfg.batch_size, ")");
  GRAFT_CHECK(!src_train || src_train->size() >= cfg.batch_size, "the source training split has ", 
              src_train ? src_train->size() : 0, " examples, fewer than --batch-size (", cfg.batch_size, ")");
  AdaptResult res;
  if (main_rank) res.pad_before = pad_before(cfg, *model, tap, src_val, tgt_eval, meta);

  auto method = info.make(cfg.method_options());
  auto tc = to_train_config(cfg);
  tc.layer_lr_mult = adapt_plan(cfg, *method, *model, tap);
  train::Trainer trainer(model, meta, tc);
  trainer.set_tap(tap_name);
  if (method->has_term()) trainer.add_term(method);
  if (auto keep = method->param_filter(*model)) trainer.set_param_filter(keep);
  if (info.source_free || method->forwards_paired()) trainer.set_paired(tgt, cfg.batch_size, cfg.seed + 1);
  if (info.source_free) trainer.set_labelled_loss(false);
  auto observer = std::make_shared<AdaptObserver>(cfg, *method, meta, tap, src_val, tgt, tgt_eval, target_test);
  trainer.set_observer(observer);
  auto tr = trainer.fit(src_train, nullptr, nullptr);
  res.history = adapt_history(tr);
  if (!main_rank) return res;  // the choice, the figures and result.json are rank 0's

  // The choice, made without target labels; its weights were kept as a candidate file.
  const auto& sel = observer->selector();
  res.selected_epoch = sel.best_epoch();
  res.selected_score = sel.best_score();
  GRAFT_CHECK(res.selected_epoch > 0, "adapt: no epoch could be selected (internal error)");
  io::copy_weights(*io::load_checkpoint(observer->candidate(res.selected_epoch)).model, *model);
  const auto& chosen = res.history.at(static_cast<size_t>(res.selected_epoch - 1));
  res.selected_source_acc = chosen.source_val_acc;
  if (chosen.target_acc >= 0) {
    res.selected_target_acc = chosen.target_acc;
    res.last_target_acc = res.history.back().target_acc;
    for (const auto& e : res.history) res.oracle_best_acc = std::max(res.oracle_best_acc, e.target_acc);
  }
  finish_adapt(cfg, *model, meta, tap, tap_name, src_val, tgt_eval, target_test, res);
  return res;
}

std::string default_tap(const models::Backbone& m) {
  const auto& names = m.layer_names();
  if ((m.arch() == "dann_mnist" || m.arch() == "dann_svhn") &&
      std::find(names.begin(), names.end(), "flatten") != names.end())
    return "flatten";  // the paper's feature extractor: the convolutional part
  std::set<std::string> with;
  for (auto& [n, p] : m.named_parameters()) with.insert(models::layer_of_param(n));
  for (size_t i = names.size(); i-- > 1;)
    if (with.count(names[i])) return names[i - 1];
  GRAFT_FAIL("the model has no layer to tap below its classifier; give --tap");
}

double soft_neighborhood_density(const at::Tensor& logits, double tau) {
  GRAFT_CHECK(logits.dim() == 2 && logits.size(0) >= 2, "soft_neighborhood_density: need (N >= 2, K) logits");
  GRAFT_CHECK(tau > 0, "soft_neighborhood_density: tau must be > 0");
  auto p = torch::softmax(logits.to(at::kDouble), 1);
  auto q = p / p.norm(2, 1, true).clamp_min(1e-12);
  auto sim = q.mm(q.t()) / tau;
  sim.fill_diagonal_(-std::numeric_limits<double>::infinity());
  auto nb = torch::softmax(sim, 1);
  return -(nb * (nb + 1e-12).log()).sum(1).mean().item<double>();
}

double information_maximisation(const at::Tensor& logits) {
  auto p = torch::softmax(logits.to(at::kDouble), 1);
  auto mean = p.mean(0);
  double diversity = -(mean * (mean + 1e-12).log()).sum().item<double>();
  double ent = -(p * (p + 1e-12).log()).sum(1).mean().item<double>();
  return diversity - ent;
}

}  // namespace graft::adapt
