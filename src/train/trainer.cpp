// The one training engine: a labelled loss, objective terms, a paired unlabelled
// stream, a layer plan, checkpoints with exact resume, early stopping and progress.
#include "graft/train/trainer.h"

#include <torch/torch.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

#include "graft/analysis/plot.h"
#include "graft/core/check.h"
#include "graft/core/files.h"
#include "graft/core/precision.h"
#include "graft/core/runtime.h"
#include "graft/data/loader.h"
#include "graft/data/model_input.h"
#include "graft/dist/data_parallel.h"
#include "graft/io/run_dir.h"
#include "graft/train/divergence.h"
#include "graft/models/zoo.h"
#include "graft/train/l2sp.h"
#include "foreach_sgd.h"
#include "fused_adam.h"
#include "prefix_cache.h"

namespace fs = std::filesystem;

namespace graft::train {
namespace {

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  std::ostringstream os;
  if (t >= 3600) os << t / 3600 << "h" << std::setw(2) << std::setfill('0') << (t % 3600) / 60 << "m";
  else if (t >= 60) os << t / 60 << "m" << std::setw(2) << std::setfill('0') << t % 60 << "s";
  else os << t << "s";
  return os.str();
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& cfg,
                                                        std::vector<torch::optim::OptimizerParamGroup> groups) {
  GRAFT_CHECK(!groups.empty(), "nothing to train: every parameter is frozen");
  if (cfg.optimizer == "sgd")
    return std::make_unique<ForeachSGD>(
        groups, torch::optim::SGDOptions(cfg.lr).momentum(cfg.momentum).nesterov(cfg.nesterov).weight_decay(cfg.weight_decay));
  if (cfg.optimizer == "adam")
    return std::make_unique<FusedAdam>(groups, torch::optim::AdamOptions(cfg.lr).weight_decay(cfg.weight_decay));
  return std::make_unique<FusedAdamW>(groups, torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
}

/// Learning curves (loss and accuracy per epoch, train and validation) as SVG.
void write_curves(const std::vector<EpochRecord>& h, const std::string& path) {
  analysis::Series tl, vl, ta, va;
  tl.name = ta.name = "train";
  vl.name = va.name = "validation";
  for (const auto& r : h) {
    double e = static_cast<double>(r.epoch);
    tl.x.push_back(e), tl.y.push_back(r.train_loss), ta.x.push_back(e), ta.y.push_back(100 * r.train_acc);
    if (r.val_loss >= 0) vl.x.push_back(e), vl.y.push_back(r.val_loss), va.x.push_back(e), va.y.push_back(100 * r.val_acc);
  }
  std::vector<analysis::Series> loss{tl}, acc{ta};
  if (!vl.x.empty()) loss.push_back(vl), acc.push_back(va);
  graft::write_text_atomically(path, analysis::svg_chart({{"loss", "epoch", "cross-entropy", loss, {}},
                                                        {"accuracy", "epoch", "accuracy (%)", acc, {}}}));
}

nlohmann::json record_json(const EpochRecord& r) {
  return {{"epoch", r.epoch}, {"train_loss", r.train_loss}, {"train_acc", r.train_acc}, {"val_loss", r.val_loss},
          {"val_acc", r.val_acc}, {"lr", r.lr}, {"seconds", r.seconds}, {"images_per_s", r.images_per_s},
          {"extra_loss", r.extra_loss}, {"extra", r.extra}};
}

EpochRecord record_from_json(const nlohmann::json& h) {
  EpochRecord r;
  r.epoch = h.value("epoch", int64_t{0});
  r.train_loss = h.value("train_loss", 0.0);
  r.train_acc = h.value("train_acc", 0.0);
  r.val_loss = h.value("val_loss", -1.0);
  r.val_acc = h.value("val_acc", -1.0);
  r.lr = h.value("lr", 0.0);
  r.seconds = h.value("seconds", 0.0);
  r.images_per_s = h.value("images_per_s", 0.0);
  r.extra_loss = h.value("extra_loss", -1.0);
  r.extra = h.value("extra", nlohmann::json::object());
  return r;
}

/// A term given as a function of (model, global step, progress).
class FunctionTerm : public Term {
 public:
  FunctionTerm(ExtraLoss f, std::string name) : f_(std::move(f)), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  TermOutput loss(StepContext& ctx) override { return {f_(*ctx.model, ctx.global_step, ctx.progress), {}}; }

 private:
  ExtraLoss f_;
  std::string name_;
};

}  // namespace

void TrainConfig::validate() const {
  GRAFT_CHECK(epochs >= 1 && epochs <= 100000, "--epochs must be in [1, 100000], got ", epochs);
  GRAFT_CHECK(batch_size >= 0 && batch_size <= 65536, "--batch-size must be in [1, 65536] (0: from the input size), got ",
              batch_size);
  check_choice("optimizer", optimizer, {"sgd", "adam", "adamw"});
  check_choice("channels-last", channels_last, {"auto", "on", "off"});
  check_choice("schedule", schedule, {"constant", "step", "cosine", "inv"});
  GRAFT_CHECK(std::isfinite(lr) && lr > 0 && lr <= 100, "--lr must be a positive number up to 100, got ", lr);
  GRAFT_CHECK(std::isfinite(momentum) && momentum >= 0 && momentum < 1, "--momentum must be in [0, 1), got ", momentum);
  GRAFT_CHECK(!nesterov || momentum > 0, "--nesterov needs --momentum > 0");
  GRAFT_CHECK(std::isfinite(weight_decay) && weight_decay >= 0 && weight_decay < 1,
              "--weight-decay must be in [0, 1), got ", weight_decay);
  GRAFT_CHECK(std::isfinite(gamma) && gamma > 0 && gamma <= 1, "--gamma must be in (0, 1], got ", gamma);
  GRAFT_CHECK(step_epochs >= 0, "--step-epochs must be >= 0, got ", step_epochs);
  GRAFT_CHECK(std::isfinite(warmup_epochs) && warmup_epochs >= 0 && warmup_epochs < static_cast<double>(epochs),
              "--warmup-epochs must be in [0, epochs), got ", warmup_epochs);
  GRAFT_CHECK(std::isfinite(label_smoothing) && label_smoothing >= 0 && label_smoothing < 1,
              "--label-smoothing must be in [0, 1), got ", label_smoothing);
  GRAFT_CHECK(workers >= -1 && workers <= 64, "--workers must be in [0, 64] (-1: from the cores), got ", workers);
  GRAFT_CHECK(checkpoint_every >= 0, "--checkpoint-every must be >= 0, got ", checkpoint_every);
  GRAFT_CHECK(!out_dir.empty(), "--out is required: the folder for checkpoints, metrics and results");
  for (double m : layer_lr_mult)
    GRAFT_CHECK(std::isfinite(m) && m >= 0, "layer learning-rate multipliers must be finite and >= 0, got ", m);
  GRAFT_CHECK(unfreeze_every >= 0, "--unfreeze-every must be >= 0, got ", unfreeze_every);
  GRAFT_CHECK(std::isfinite(l2sp_alpha) && l2sp_alpha >= 0, "--l2sp-alpha must be >= 0, got ", l2sp_alpha);
  GRAFT_CHECK(std::isfinite(l2sp_beta) && l2sp_beta >= 0, "--l2sp-beta must be >= 0, got ", l2sp_beta);
  GRAFT_CHECK(patience >= -1, "--patience must be >= 0 (or -1 for no early stopping), got ", patience);
  check_choice("cache", cache, {"auto", "memory", "disk", "off"});
  check_choice("data-on-device", data_on_device, {"auto", "on", "off"});
  GRAFT_CHECK(cache_memory_mb >= 0, "--cache-memory-mb must be >= 0, got ", cache_memory_mb);
  data::Pipeline::parse(augment);
  parse_device(device);
  parse_precision(precision, device);
}

nlohmann::json TrainConfig::to_json() const {
  return {{"epochs", epochs},       {"batch_size", batch_size},   {"optimizer", optimizer},
          {"lr", lr},               {"momentum", momentum},       {"nesterov", nesterov},
          {"weight_decay", weight_decay}, {"schedule", schedule}, {"step_epochs", step_epochs},
          {"gamma", gamma},         {"warmup_epochs", warmup_epochs}, {"label_smoothing", label_smoothing},
          {"seed", seed},           {"device", device},           {"workers", workers},
          {"augment", augment},     {"out_dir", out_dir},         {"checkpoint_every", checkpoint_every},
          {"layer_lr_mult", layer_lr_mult}, {"unfreeze_every", unfreeze_every}, {"adapt_frozen_bn", adapt_frozen_bn},
          {"l2sp_alpha", l2sp_alpha}, {"l2sp_beta", l2sp_beta},   {"pretrained_layers", pretrained_layers},
          {"patience", patience},   {"cache", cache},             {"drop_last", drop_last},
          {"freeze_through", policy.freeze_through}, {"lr_mult", policy.lr_mult}, {"layer_decay", policy.layer_decay},
          {"overwrite", overwrite}, {"sync_bn_stats", sync_bn_stats},
          {"precision", precision}, {"channels_last", channels_last}, {"data_on_device", data_on_device}};
}

double lr_factor(const TrainConfig& cfg, double p, double epoch_f) {
  p = std::clamp(p, 0.0, 1.0);
  double f = 1.0;
  if (cfg.schedule == "cosine") {
    f = 0.5 * (1.0 + std::cos(M_PI * p));
  } else if (cfg.schedule == "inv") {
    f = std::pow(1.0 + 10.0 * p, -0.75);
  } else if (cfg.schedule == "step") {
    int64_t every = cfg.step_epochs > 0 ? cfg.step_epochs : std::max<int64_t>(1, cfg.epochs / 3);
    f = std::pow(cfg.gamma, std::floor(epoch_f / static_cast<double>(every)));
  }
  if (cfg.warmup_epochs > 0 && epoch_f < cfg.warmup_epochs) f *= std::max(epoch_f / cfg.warmup_epochs, 1e-3);
  return f;
}

data::Pipeline input_pipeline(const io::ModelMeta& meta, const std::vector<int64_t>& data_shape) {
  return data::model_input_pipeline(meta, data_shape);
}

Trainer::Trainer(models::BackbonePtr model, io::ModelMeta meta, TrainConfig cfg)
    : model_(std::move(model)), meta_(std::move(meta)), cfg_(std::move(cfg)) {
  // 0 and -1 ask for the defaults that follow the input size and the cores; the resolved
  // values are what config.json records.
  if (cfg_.batch_size == 0) {
    int64_t values = 1;
    for (auto d : meta_.input_shape) values *= std::max<int64_t>(d, 1);
    cfg_.batch_size = default_batch_size(values, 64);
  }
  if (cfg_.workers == -1) cfg_.workers = default_workers();
  cfg_.validate();
}

Trainer::~Trainer() = default;

void Trainer::add_term(TermPtr term) {
  GRAFT_CHECK(term != nullptr, "add_term: null term");
  terms_.push_back(std::move(term));
}

void Trainer::set_extra_loss(ExtraLoss loss, std::string name) {
  GRAFT_CHECK(static_cast<bool>(loss), "set_extra_loss: empty function");
  add_term(std::make_shared<FunctionTerm>(std::move(loss), std::move(name)));
}

void Trainer::set_paired(data::DatasetPtr unlabelled, int64_t batch_size, uint64_t seed) {
  GRAFT_CHECK(unlabelled && unlabelled->size() > 0, "the unlabelled set is empty");
  GRAFT_CHECK(batch_size >= 1, "the unlabelled batch size must be >= 1");
  paired_ = data::unlabelled(std::move(unlabelled));
  paired_batch_ = batch_size;
  paired_seed_ = seed;
}

void Trainer::set_tap(const std::string& layer) { tap_ = layer; }
void Trainer::set_param_filter(std::function<bool(const std::string&)> keep) { keep_ = std::move(keep); }
void Trainer::set_observer(std::shared_ptr<EpochObserver> observer) { observer_ = std::move(observer); }
void Trainer::set_labelled_loss(bool on) { labelled_loss_ = on; }

/// The state of one fit() call, in named parts.
struct Trainer::Run {
  Trainer& t;
  const TrainConfig& cfg;
  data::DatasetPtr train, val, test;
  c10::Device dev = c10::kCPU;
  std::string ckpt, prev, metrics_path, best_path;
  data::Pipeline train_pipe, paired_pipe;
  LayerPlan plan;
  int64_t tap = -1, feature_width = 0;
  size_t L = 0;
  std::unique_ptr<torch::optim::Optimizer> opt;
  std::vector<double> group_mult;
  data::LoaderOptions loader_opts, paired_opts;
  /// Data parallelism (docs/DISTRIBUTED.md): every call is a no-op in one process.
  dist::Context* dp = nullptr;
  std::unique_ptr<dist::GradientAverager> avg;
  std::vector<at::Tensor> avg_params;  ///< what avg averages (rebuilt when unfreezing changes it)
  double comm_s = 0;  ///< this epoch's seconds in the gradient allreduce (waiting for it, on this rank)
  Precision prec = Precision::kFp32;
  double loss_scale = 65536;  ///< fp16 only: the dynamic loss scale, and steps since it last changed
  int64_t good_steps = 0;
  std::unique_ptr<data::Loader> loader, paired;
  int64_t paired_expected = -1;
  int64_t steps_per_epoch = 0, total_steps = 0;
  int64_t start_epoch = 0, start_step = 0, global_step = 0;
  TrainResult result;
  nlohmann::json rows = nlohmann::json::array();  ///< every metrics line written so far
  double best_val = std::numeric_limits<double>::infinity();
  int64_t best_epoch = 0, bad_epochs = 0;
  bool stopped = false, resumed = false;
  bool channels_last = false;  ///< the model's 4-D tensors and the image batches in NHWC
  int64_t best_at_step = -1;   ///< global_step when best.ckpt was written by this process
  std::string resume_from;
  /// Running sums of the current epoch (kept in mid-epoch checkpoints).
  struct Sums {
    double loss = 0, term_loss = 0;
    int64_t correct = 0, labelled = 0, seen = 0;
    std::map<std::string, double> metric;
    std::map<std::string, int64_t> count;
  } sums;
  std::unique_ptr<PrefixCache> cache;
  std::ofstream metrics;
  bool tty = false;
  std::chrono::steady_clock::time_point t0, last_log;
  /// Fault injection for the resume tests: GRAFT_TEST_KILL_AFTER_STEP=N kills the process
  /// (SIGKILL) after global step N; GRAFT_TEST_KILL_IN_CHECKPOINT=N during the N-th
  /// checkpoint of this process, after the previous one was renamed aside.
  int64_t kill_after_step = -1, kill_in_checkpoint = -1, checkpoints_written = 0;
  std::unique_ptr<io::RunDir> run_dir;  ///< the folder's lock, held for the whole run
  DivergenceGuard guard;                ///< divergence without NaN: the loss far above its running median

  Run(Trainer& tr, const TrainConfig& c) : t(tr), cfg(c) {}
  void check_inputs();
  void prepare();
  void setup_terms();
  void resume();
  void build_optimizer();
  void write_config();
  void maybe_cache();
  void run_epoch(int64_t epoch);
  void place_data(data::LoaderOptions& o, const data::DatasetPtr& ds) const;
  std::optional<std::pair<at::Tensor, at::Tensor>> next_paired();
  void step(const at::Tensor& x, const at::Tensor& y, int64_t epoch, int64_t step_in_epoch);
  at::Tensor run_layers(at::Tensor x, size_t begin, size_t end, size_t P);
  void log_progress(int64_t epoch, int64_t step, int64_t seen_now);
  double last_lr = 0;
  void end_epoch(int64_t epoch, double seconds);
  void emit(const nlohmann::json& line);
  void save_state(int64_t epoch_done, int64_t step_in_epoch);
  std::string last_good() const;
  void finish();
  void sync_averager();
  void backward_and_step(const at::Tensor& loss);
  void clear_gradients();
  bool unscale_gradients();
  /// The training configuration a checkpoint records (and a resume must match).
  nlohmann::json saved_config() const {
    auto j = cfg.to_json();
    j["world_size"] = dp->world_size();
    return j;
  }
  void broadcast_state();
  Sums global_sums();
};

void Trainer::Run::check_inputs() {
  GRAFT_CHECK(train || t.paired_, "the training set is empty");
  if (train) {
    GRAFT_CHECK(train->size() > 0, "the training set is empty");
    GRAFT_CHECK(train->num_classes() == t.meta_.num_classes(), "the training set has ", train->num_classes(),
                " classes but the model outputs ", t.meta_.num_classes());
    GRAFT_CHECK(train->num_classes() >= 2, train->describe(), " has a single class; classification needs at least 2");
    // Checked once here, not per batch (that would wait for the device at every step).
    const auto labels = train->labels();
    GRAFT_CHECK(std::none_of(labels.begin(), labels.end(), [](int64_t l) { return l < 0; }), train->describe(),
                " has unlabelled examples; training needs labels");
  }
  GRAFT_CHECK(cfg.patience < 0 || val, "--patience needs a validation set: give --val or --val-split");
  const auto mode = cfg.resume ? io::RunMode::kResume : cfg.overwrite ? io::RunMode::kOverwrite : io::RunMode::kFresh;
  // Rank 0 alone owns the folder (lock, stale files, another run's files); the other ranks
  // only read it (a resume) and learn of a refusal through rank 0's abort.
  if (dp->is_main()) run_dir = std::make_unique<io::RunDir>(cfg.out_dir, io::RunDirOptions().mode_(mode));
  dev = parse_device(cfg.device);
  prec = parse_precision(cfg.precision, cfg.device);
  ckpt = cfg.out_dir + "/checkpoint.ckpt";
  prev = cfg.out_dir + "/checkpoint.prev.ckpt";
  metrics_path = cfg.out_dir + "/metrics.jsonl";
  best_path = cfg.out_dir + "/best.ckpt";
  tty = isatty(STDERR_FILENO);
  if (const char* v = std::getenv("GRAFT_TEST_KILL_AFTER_STEP")) kill_after_step = std::atoll(v);
  if (const char* v = std::getenv("GRAFT_TEST_KILL_IN_CHECKPOINT")) kill_in_checkpoint = std::atoll(v);
  if (const char* v = std::getenv("GRAFT_TEST_KILL_RANK"); v && std::atoll(v) != dp->rank()) kill_after_step = -1;
}

void Trainer::Run::prepare() {
  auto& m = *t.model_;
  L = m.num_layers();
  if (train) {
    train_pipe = data::Pipeline::parse(cfg.augment);
    train_pipe.then(input_pipeline(t.meta_, train->input_shape()));
    loader_opts = data::LoaderOptions().batch_size_(cfg.batch_size).seed_(cfg.seed).workers_(cfg.workers).drop_last_(cfg.drop_last);
    loader_opts.shard_(dp->rank(), dp->world_size());
    place_data(loader_opts, train);
    loader = std::make_unique<data::Loader>(train, train_pipe, loader_opts);
  }
  if (t.paired_) {
    paired_pipe = input_pipeline(t.meta_, t.paired_->input_shape());
    // Without a labelled set the paired set is the training data: augment it the same way.
    if (!train && !cfg.augment.empty()) paired_pipe = data::Pipeline::parse(cfg.augment).then(paired_pipe);
    paired_opts = data::LoaderOptions().batch_size_(t.paired_batch_).seed_(t.paired_seed_).workers_(cfg.workers).drop_last_(true);
    paired_opts.shard_(dp->rank(), dp->world_size());  // each rank's own target shard
    place_data(paired_opts, t.paired_);
    paired = std::make_unique<data::Loader>(t.paired_, paired_pipe, paired_opts);
    GRAFT_CHECK(paired->batches_per_epoch() > 0, "the unlabelled set ", t.paired_->describe(), " has fewer than ",
                t.paired_batch_, " examples (one batch)");
  }
  steps_per_epoch = loader ? loader->batches_per_epoch() : paired->batches_per_epoch();
  GRAFT_CHECK(steps_per_epoch > 0, "the training set ", train->describe(), " has fewer than --batch-size (",
              cfg.batch_size, ") examples");
  total_steps = steps_per_epoch * cfg.epochs;
  auto mult = cfg.layer_lr_mult;
  const auto& p = cfg.policy;
  if (mult.empty() && (!p.freeze_through.empty() || !p.lr_mult.empty() || p.layer_decay != 1.0))
    mult = resolve_lr_mults(m, p, [](const std::string& w) { std::cerr << "graft: warning: " << w << "\n"; });
  plan = LayerPlan::build(m, mult, cfg.unfreeze_every, t.keep_);
  if (!t.tap_.empty()) {
    tap = static_cast<int64_t>(m.layer_index(t.tap_));
    GRAFT_CHECK(static_cast<size_t>(tap) + 1 < L, "the tap '", t.tap_, "' is the last layer; tap a layer below the classifier");
  }
  m.to(dev);
}

void Trainer::Run::place_data(data::LoaderOptions& o, const data::DatasetPtr& ds) const {
  const auto& want = cfg.data_on_device;
  const bool tensors = ds->tensor_backed();
  GRAFT_CHECK(want != "on" || tensors, "--data-on-device on: ", ds->describe(), " is decoded file by file on the "
              "CPU and cannot be held on the device; use --data-on-device auto or off");
  double bytes = 4.0 * static_cast<double>(ds->size());
  for (auto d : ds->input_shape()) bytes *= static_cast<double>(d);
  const bool held = tensors && (want == "on" || (want == "auto" && dev.type() != c10::kCPU && bytes <= 2.0 * (1 << 30)));
  if (held) {
    o.resident_on_(dev);
    if (!cfg.quiet && dev.type() != c10::kCPU)
      std::cerr << "graft: " << ds->describe() << " held on " << dev << " (" << std::fixed << std::setprecision(0)
                << bytes / (1 << 20) << " MiB as float32); batches are gathered and augmented there\n"
                << std::defaultfloat;
  } else if (dev.is_cuda()) {
    o.pin_memory_(true);  // batches made in page-locked memory, copied while the host goes on
  }
}

void Trainer::Run::setup_terms() {
  if (t.terms_.empty()) return;
  auto& m = *t.model_;
  if (tap >= 0) {  // the feature width at the tap, from one example
    torch::NoGradGuard ng;
    const bool was = m.is_training();
    m.train(false);
    auto& ds = train ? train : t.paired_;
    auto pipe = input_pipeline(t.meta_, ds->input_shape());
    feature_width = m.forward_range(pipe.apply_batch(ds->get_batch({0}).input).to(dev), 0, tap + 1).flatten(1).size(1);
    m.train(was);
  }
  TermSetup s;
  s.model = &m;
  s.device = dev;
  s.num_classes = t.meta_.num_classes();
  s.tap = tap;
  s.feature_width = feature_width;
  s.total_steps = total_steps;
  s.seed = cfg.seed;
  s.workers = cfg.workers;
  s.paired = t.paired_;
  s.paired_pipeline = paired_pipe;
  // Terms build their modules from a seed of their own, so that a run's initialisation
  // does not depend on what ran before fit().
  torch::manual_seed(cfg.seed + 7919);
  for (auto& term : t.terms_) {
    term->setup(s);
    for (auto& p : term->parameters()) p.to(dev);
  }
}

void Trainer::Run::resume() {
  if (!cfg.resume) return;
  auto choice = io::newest_valid_checkpoint(cfg.out_dir);
  for (const auto& r : choice.rejected) std::cerr << "graft: warning: not resuming from " << r << "\n";
  if (choice.path.empty()) return;
  for (const auto& c : {choice.path}) {
    try {
      auto ck = io::load_checkpoint(c, /*restore_rng=*/true);
      GRAFT_CHECK(ck.has_state, c, " holds no training state");
      GRAFT_CHECK(ck.meta.arch == t.meta_.arch && ck.meta.class_names == t.meta_.class_names &&
                      ck.meta.input_shape == t.meta_.input_shape && ck.meta.arch_config == t.meta_.arch_config,
                  c, " is a checkpoint of another model (", ck.meta.arch, ", ", ck.meta.num_classes(),
                  " classes); use another --out folder or drop --resume");
      // A run continues only with the world size that wrote it: shards and batches depend on it.
      auto saved = ck.state.config;
      if (!saved.contains("world_size")) saved["world_size"] = 1;
      dist::check_resume_world_size(*dp, saved["world_size"].get<int64_t>(), c);
      io::check_same_config(saved, saved_config());
      io::copy_weights(*ck.model, *t.model_);
      start_epoch = ck.state.epoch;
      start_step = ck.state.step_in_epoch;
      global_step = ck.state.global_step;
      const auto& x = ck.state.extra;
      for (const auto& h : x.value("history", nlohmann::json::array())) result.history.push_back(record_from_json(h));
      rows = x.value("rows", nlohmann::json::array());
      if (x.contains("best_val_loss")) best_val = x["best_val_loss"].get<double>();
      best_epoch = x.value("best_epoch", int64_t{0});
      bad_epochs = x.value("bad_epochs", int64_t{0});
      stopped = x.value("stopped_early", false);
      if (x.contains("loss_scale"))
        loss_scale = x["loss_scale"].value("scale", loss_scale), good_steps = x["loss_scale"].value("good_steps", 0);
      if (x.contains("partial") && dp->is_main()) {  // sums over all ranks: counted once
        const auto& p = x["partial"];
        sums.loss = p.value("loss", 0.0), sums.term_loss = p.value("term_loss", 0.0);
        sums.correct = p.value("correct", int64_t{0}), sums.labelled = p.value("labelled", int64_t{0});
        sums.seen = p.value("seen", int64_t{0});
        sums.metric = p.value("metric", std::map<std::string, double>{});
        sums.count = p.value("count", std::map<std::string, int64_t>{});
      }
      if (t.observer_ && x.contains("observer")) t.observer_->restore(x["observer"]);
      for (size_t i = 0; i < t.terms_.size(); ++i) {
        TensorMap st;
        const std::string prefix = std::to_string(i) + "/";
        if (ck.attachment)
          for (const auto& [n, v] : ck.attachment->tensors)
            if (n.rfind(prefix, 0) == 0) st[n.substr(prefix.size())] = v.to(dev);
        if (!t.terms_[i]->save().empty() || !st.empty()) t.terms_[i]->load(st);
      }
      resumed = true;
      result.history.resize(std::min<size_t>(result.history.size(), static_cast<size_t>(start_epoch)));
      if (!cfg.quiet)
        std::cerr << "graft: resuming from " << c << " at epoch " << start_epoch + 1 << ", step " << start_step << "\n";
      resume_from = c;
      return;
    } catch (const Error& e) {
      const std::string m = e.what();
      if (m.find("another model") != std::string::npos || m.find("different configuration") != std::string::npos ||
          m.find("same world size") != std::string::npos)
        throw;
      std::cerr << "graft: warning: cannot resume from " << c << " (" << m << "); starting afresh\n";
    }
  }
}

void Trainer::Run::build_optimizer() {
  std::map<double, std::vector<torch::Tensor>> by_mult;
  for (size_t i = 0; i < L; ++i)
    if (plan.mult[i] > 0)
      for (auto& [n, p] : plan.params[i]) by_mult[plan.mult[i]].push_back(p);
  // Term modules (discriminators, adversarial heads) are new: they learn at the head's rate.
  std::vector<torch::Tensor> term_params;
  for (auto& term : t.terms_)
    for (auto& p : term->parameters()) term_params.push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (auto& [m, ps] : by_mult) {
    groups.emplace_back(ps);
    group_mult.push_back(m);
  }
  if (!term_params.empty()) {
    groups.emplace_back(term_params);
    group_mult.push_back(1.0);
  }
  opt = make_optimizer(cfg, groups);
  for (const auto& g : opt->param_groups())
    for (const auto& p : g.params()) result.optimized_params += p.numel();
  // A finished run's last checkpoint has no optimizer state (nothing trains after it).
  if (!resume_from.empty() && start_epoch < cfg.epochs && !stopped) io::load_optimizer_state(resume_from, *opt);
}

void Trainer::Run::write_config() {
  nlohmann::json data = {{"train", train ? train->describe() : ""},
                         {"val", val ? val->describe() : ""},
                         {"test", test ? test->describe() : ""},
                         {"train_pipeline", train ? train_pipe.spec() : ""}};
  if (t.paired_) data["paired"] = t.paired_->describe();
  nlohmann::json terms = nlohmann::json::array();
  for (auto& term : t.terms_) terms.push_back(term->name());
  nlohmann::json j = {{"train", cfg.to_json()}, {"model", t.meta_.to_json()}, {"data", data},
                      {"plan", plan.to_json()}, {"terms", terms}};
  if (tap >= 0) j["tap"] = t.tap_;
  j["world_size"] = dp->world_size();
  // Every rank must compute the same run; how each one runs or reports may differ (rank 0
  // alone reports, a rank on another host may see the folder under another path).
  auto same = j;
  for (const char* k : {"workers", "threads", "quiet", "log_every_s", "out_dir", "device", "data_on_device"})
    same["train"].erase(k);
  dist::check_same_config(*dp, same);
  if (!dp->is_main()) return;  // rank 0 alone writes
  graft::write_text_atomically(cfg.out_dir + "/config.json", j.dump(2) + "\n");
  // metrics.jsonl holds exactly the rows of the state the run continues from.
  std::string text;
  for (const auto& r : rows) text += r.dump() + "\n";
  graft::write_text_atomically(metrics_path, text);
  metrics.open(metrics_path, std::ios::app);
  GRAFT_CHECK(metrics, metrics_path, ": cannot write metrics");
}

void Trainer::Run::maybe_cache() {
  const size_t P0 = plan.frozen_prefix(start_epoch);
  std::string why_not;
  bool term_runs_model = false;
  for (auto& term : t.terms_) term_runs_model |= term->needs_full_model();
  if (P0 == 0) why_not = "no frozen prefix";
  else if (term_runs_model || t.paired_) why_not = "an objective term runs the whole model";
  else if (!train) why_not = "there is no labelled set";
  else if (cfg.unfreeze_every > 0) why_not = "gradual unfreezing changes the prefix";
  else if (cfg.adapt_frozen_bn) why_not = "frozen BatchNorm statistics adapt";
  else if (train_pipe.random()) why_not = "the training data are augmented";
  if (why_not.empty() && cfg.cache != "off") {
    plan.apply(*t.model_, start_epoch, cfg.adapt_frozen_bn);
    cache = std::make_unique<PrefixCache>();
    cache->build(*t.model_, P0, train, train_pipe, cfg.workers, cfg.cache, cfg.cache_memory_mb, dev,
                 cfg.out_dir + "/prefix_cache" + (dp->distributed() ? str(".rank", dp->rank()) : "") + ".tmp.f32");
    result.cache = cache->on_disk() ? "disk" : "memory";
    if (!cfg.quiet)
      std::cerr << "graft: frozen layers " << plan.names[0] << ".." << plan.names[P0 - 1] << " computed once for "
                << train->size() << " examples (cache in " << result.cache << ")\n";
  } else if (cfg.cache == "memory" || cfg.cache == "disk") {
    std::cerr << "graft: warning: --cache " << cfg.cache << " ignored: " << why_not << "\n";
  }
}

std::optional<std::pair<at::Tensor, at::Tensor>> Trainer::Run::next_paired() {
  // The position in the paired stream follows from the global step alone.
  const int64_t per = paired->batches_per_epoch();
  const int64_t ep = global_step / per, k = global_step % per;
  if (global_step != paired_expected || k == 0) paired->start_epoch(ep, k);
  paired_expected = global_step + 1;
  auto b = paired->next();
  GRAFT_CHECK(b.has_value(), "internal: the unlabelled stream ended early");
  return std::make_pair(b->input, b->index);
}

at::Tensor Trainer::Run::run_layers(at::Tensor x, size_t begin, size_t end, size_t P) {
  if (begin >= end) return x;
  if (P > begin) {
    torch::NoGradGuard no_grad;  // nothing below P trains: no graph, no backward through it
    x = t.model_->forward_range(x, begin, std::min(end, P));
    begin = std::min(end, P);
  }
  return begin < end ? t.model_->forward_range(x, begin, end) : x;
}

void Trainer::Run::run_epoch(int64_t epoch) {
  plan.apply(*t.model_, epoch, cfg.adapt_frozen_bn);
  for (auto& term : t.terms_) term->train(true);
  const int64_t skip = epoch == start_epoch ? start_step : 0;
  if (skip == 0) {
    sums = Sums{};
    for (auto& term : t.terms_) term->on_epoch_begin(*t.model_, epoch);
    plan.apply(*t.model_, epoch, cfg.adapt_frozen_bn);  // a term may have evaluated the model
  }
  sync_averager();
  std::vector<int64_t> order;
  if (cache) order = data::Loader::epoch_order(train->size(), loader_opts, epoch);
  else if (loader) loader->start_epoch(epoch, skip);
  t0 = last_log = std::chrono::steady_clock::now();
  const int64_t seen0 = sums.seen;
  for (int64_t s = skip; s < steps_per_epoch; ++s) {
    at::Tensor x, y;
    if (cache) {
      // order is this rank's shard of the epoch
      int64_t lo = s * cfg.batch_size, hi = std::min<int64_t>(lo + cfg.batch_size, static_cast<int64_t>(order.size()));
      std::tie(x, y) = cache->rows(std::vector<int64_t>(order.begin() + lo, order.begin() + hi));
    } else if (loader) {
      auto b = loader->next();
      GRAFT_CHECK(b.has_value(), "internal: the training loader ended early");
      x = b->input, y = b->label;
    }
    step(x, y, epoch, s);
    const bool last = s + 1 == steps_per_epoch;
    auto now = std::chrono::steady_clock::now();
    if (!cfg.quiet && (std::chrono::duration<double>(now - last_log).count() >= cfg.log_every_s || last)) {
      log_progress(epoch, s + 1, sums.seen - seen0);
      last_log = now;
    }
    if (cfg.checkpoint_every > 0 && global_step % cfg.checkpoint_every == 0 && !last) save_state(epoch, s + 1);
  }
  if (tty && !cfg.quiet) std::cerr << "\n";
  end_epoch(epoch, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

void Trainer::Run::step(const at::Tensor& x_cpu, const at::Tensor& y_cpu, int64_t epoch, int64_t step_in_epoch) {
  const double p = static_cast<double>(global_step) / static_cast<double>(total_steps);
  const double lr = cfg.lr * lr_factor(cfg, p, epoch + static_cast<double>(step_in_epoch) / steps_per_epoch);
  auto& groups = opt->param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(lr * group_mult.at(i));
  last_lr = lr;
  StepContext ctx;
  ctx.model = t.model_.get();
  ctx.global_step = global_step;
  ctx.progress = p;
  ctx.epoch = epoch;
  if (x_cpu.defined()) {
    // Pinned batches are copied while the host goes on; others copy as before (and held
    // batches are already there).
    ctx.x = x_cpu.to(dev, x_cpu.scalar_type(), /*non_blocking=*/true);
    ctx.y = y_cpu.to(dev, y_cpu.scalar_type(), /*non_blocking=*/true);
  }
  bool joint = false;
  for (auto& term : t.terms_) joint |= term->forwards_paired();
  if (paired) {
    auto [xt, idx] = *next_paired();
    ctx.xt = xt.to(dev, xt.scalar_type(), /*non_blocking=*/true), ctx.xt_index = idx;
  }
  joint = joint && ctx.xt.defined();
  at::Tensor in = !ctx.x.defined() ? ctx.xt : joint ? at::cat({ctx.x, ctx.xt}) : ctx.x;
  if (channels_last) in = models::channels_last_input(in);
  ctx.n_labelled = ctx.x.defined() ? ctx.x.size(0) : 0;
  const size_t P = plan.frozen_prefix(epoch), begin = cache ? P : 0;
  // Reduced precision: the forward passes and losses under autocast, backward outside it.
  auto autocast = std::make_unique<AutocastGuard>(prec, dev.type());
  if (tap >= 0) {
    auto f = run_layers(in, begin, static_cast<size_t>(tap) + 1, P);
    ctx.logits = run_layers(f, static_cast<size_t>(tap) + 1, L, P);
    ctx.features = to_float32(f.flatten(1));
  } else {
    ctx.logits = run_layers(in, begin, L, P);
  }
  ctx.logits = to_float32(ctx.logits);
  at::Tensor loss = torch::zeros({}, ctx.logits.options());
  // Every value the step reports comes back from the device in one transfer: on a GPU each
  // read waits for all queued work, so the step reads once instead of once per value.
  std::vector<at::Tensor> reads;
  auto read_later = [&reads, this](const at::Tensor& v) {
    reads.push_back(v.detach().to(dev, at::kDouble).reshape({}));
    return reads.size() - 1;
  };
  const bool has_ce = t.labelled_loss_ && ctx.n_labelled > 0;
  size_t ce_at = 0, correct_at = 0;
  if (has_ce) {
    loss = torch::nn::functional::cross_entropy(
        ctx.labelled_logits(), ctx.y,
        torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(cfg.label_smoothing));
    ce_at = read_later(loss);
  }
  std::map<std::string, double> term_metrics;
  std::vector<std::pair<size_t, size_t>> term_loss_at;         // (term, read)
  std::vector<std::pair<std::string, size_t>> term_metric_at;  // (name, read)
  for (size_t i = 0; i < t.terms_.size(); ++i) {
    auto out = t.terms_[i]->loss(ctx);
    for (auto& [k, v] : out.metrics) term_metrics[k] = v;
    for (auto& [k, v] : out.device_metrics) term_metric_at.emplace_back(k, read_later(v));
    if (!out.loss.defined()) continue;
    term_loss_at.emplace_back(i, read_later(out.loss));
    loss = loss + out.loss;
  }
  if (ctx.n_labelled > 0) correct_at = read_later((ctx.labelled_logits().argmax(1) == ctx.y).sum());
  const at::Tensor host = reads.empty() ? at::Tensor() : at::stack(reads).cpu();
  auto value = [&host](size_t k) { return host.data_ptr<double>()[k]; };
  const double ce_v = has_ce ? value(ce_at) : 0;
  for (const auto& [k, at_] : term_metric_at) term_metrics[k] = value(at_);
  double term_v = 0;
  for (const auto& [i, at_] : term_loss_at) {
    const double v = value(at_);
    const auto& name = t.terms_[i]->name();
    if (!std::isfinite(v))
      throw Diverged(str("the ", name, " loss became ", v, " at epoch ", epoch + 1, " step ", step_in_epoch + 1,
                         "; training stopped and ", last_good(), ". Lower --lr (now ", cfg.lr, ") or the weight of the ",
                         name, " term"));
    term_metrics[name + "_loss"] = v;
    term_v += v;
  }
  if (!std::isfinite(ce_v)) {
    emit({{"event", "diverged"}, {"epoch", epoch + 1}, {"step", step_in_epoch + 1}, {"loss", ce_v}});
    const bool bad_in = !torch::isfinite(in).all().item<bool>();
    GRAFT_CHECK(!bad_in, "a batch at epoch ", epoch + 1, " step ", step_in_epoch + 1,
                " contains NaN or infinite input values and the loss became ", ce_v, "; training stopped and ",
                last_good(), ". Fix or drop those examples");
    throw Diverged(str("the loss became ", std::isnan(ce_v) ? "NaN" : "infinite", " at epoch ", epoch + 1, " step ",
                       step_in_epoch + 1, "; training stopped and ", last_good(), ". Lower --lr (now ", cfg.lr,
                       "), add --warmup-epochs, or check the inputs for NaN"));
  }
  if (ctx.n_labelled > 0 && guard.update(ce_v))
    throw Diverged(str(guard.reason(), "; training stopped at epoch ", epoch + 1, " step ", step_in_epoch + 1, " and ",
                       last_good()));
  autocast.reset();
  backward_and_step(loss);
  ++global_step;
  if (global_step == kill_after_step) std::raise(SIGKILL);
  const int64_t nb = ctx.n_labelled > 0 ? ctx.n_labelled : ctx.xt.size(0);
  sums.seen += nb;
  if (ctx.n_labelled > 0) {
    sums.loss += ce_v * static_cast<double>(nb);
    sums.correct += static_cast<int64_t>(value(correct_at));
    sums.labelled += nb;
  }
  sums.term_loss += term_v * static_cast<double>(nb);
  for (auto& [k, v] : term_metrics) sums.metric[k] += v, ++sums.count[k];
}

void Trainer::Run::clear_gradients() {
  // On a GPU, one process: dropped, as PyTorch does by default (no kernel per parameter, which
  // is what bounds a small network's step there). Elsewhere zeroed, as libtorch 1.13's
  // zero_grad() does: dropping them saved about 0.1 s of a 15-s ResNet-18 fine-tuning on the
  // CPU but raised its peak memory by 100 MB, and the data-parallel averager expects them.
  const bool drop = dev.is_cuda() && !avg;
  for (auto& g : opt->param_groups())
    for (auto& p : g.params()) {
      if (!p.grad().defined()) continue;
      if (drop) {
        p.mutable_grad() = at::Tensor();
      } else {
        p.mutable_grad().detach_();
        p.mutable_grad().zero_();
      }
    }
}

void Trainer::Run::backward_and_step(const at::Tensor& loss) {
  clear_gradients();
  if (avg) avg->prepare();
  const bool scaled = prec == Precision::kFp16;  // fp16 gradients underflow without a scale
  (scaled ? loss * loss_scale : loss).backward();
  if (avg) {  // the mean gradient over the ranks, before the step
    const auto c0 = std::chrono::steady_clock::now();
    avg->finish();
    comm_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
  }
  if (scaled && !unscale_gradients()) return;  // an overflow: this step is skipped
  opt->step();
}

bool Trainer::Run::unscale_gradients() {
  // Dynamic loss scaling as PyTorch's GradScaler does it: halve the scale and skip the step on
  // an overflow, double it after 2000 steps without one. Every rank sees the same averaged
  // gradients, so every rank takes the same decision.
  std::vector<at::Tensor> grads, ok;
  for (auto& g : opt->param_groups())
    for (auto& p : g.params())
      if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return true;
  at::_foreach_div_(grads, loss_scale);
  for (const auto& g : grads) ok.push_back(torch::isfinite(g).all());
  const bool finite = at::stack(ok).all().item<bool>();  // one read from the device per step
  if (!finite) {
    loss_scale /= 2, good_steps = 0;
    clear_gradients();
    return false;
  }
  if (++good_steps % 2000 == 0) loss_scale *= 2;
  return true;
}

void Trainer::Run::log_progress(int64_t epoch, int64_t step, int64_t seen_now) {
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double ips = static_cast<double>(seen_now) / std::max(el, 1e-9);
  const int64_t per_step = std::max<int64_t>(1, sums.seen / std::max<int64_t>(1, step));
  const double eta = static_cast<double>((total_steps - global_step) * per_step) / std::max(ips, 1e-9);
  std::ostringstream os;
  os << std::fixed << "epoch " << epoch + 1 << "/" << cfg.epochs << " step " << step << "/" << steps_per_epoch
     << std::setprecision(4);
  if (sums.labelled > 0) os << " loss " << sums.loss / static_cast<double>(sums.labelled);
  for (auto& term : t.terms_) {
    auto it = sums.metric.find(term->name() + "_loss");
    if (it != sums.metric.end()) os << " " << term->name() << " " << it->second / static_cast<double>(sums.count[it->first]);
  }
  if (sums.labelled > 0) os << std::setprecision(2) << " acc " << 100.0 * sums.correct / sums.labelled << "%";
  os << " lr " << std::setprecision(5) << last_lr << std::setprecision(0) << " " << ips << " img/s ETA "
     << fmt_duration(eta);
  std::cerr << (tty ? "\r\33[2K" : "") << os.str() << (tty ? "" : "\n") << std::flush;
}

void Trainer::Run::emit(const nlohmann::json& line) {
  rows.push_back(line);
  if (!dp->is_main()) return;
  metrics << line.dump() << "\n";
  metrics.flush();
}

std::string Trainer::Run::last_good() const {
  if (fs::exists(ckpt)) return "the last good checkpoint is " + ckpt;
  return "no checkpoint was written yet";
}

void Trainer::Run::end_epoch(int64_t epoch, double seconds) {
  sums = global_sums();  // the record describes every rank's data (the next epoch resets sums)
  // Batch statistics are per rank; the running ones follow rank 0 (as DDP's broadcast_buffers),
  // so that every rank validates the same model and takes the same early-stopping decision.
  if (cfg.sync_bn_stats) {
    std::vector<std::pair<std::string, at::Tensor>> named;
    for (auto& [n, b] : t.model_->named_buffers()) named.emplace_back(n, b);
    dist::average_tensors(*dp, dist::batchnorm_stats(named));
  } else {
    std::vector<at::Tensor> buffers;
    for (auto& [n, b] : t.model_->named_buffers()) buffers.push_back(b);
    dist::broadcast_tensors(*dp, buffers);
  }
  EpochRecord rec;
  rec.epoch = epoch + 1;
  rec.train_loss = sums.loss / static_cast<double>(std::max<int64_t>(sums.labelled, 1));
  rec.train_acc = static_cast<double>(sums.correct) / static_cast<double>(std::max<int64_t>(sums.labelled, 1));
  if (!t.terms_.empty()) rec.extra_loss = sums.term_loss / static_cast<double>(std::max<int64_t>(sums.seen, 1));
  for (auto& [k, v] : sums.metric) rec.extra[k] = v / static_cast<double>(sums.count[k]);
  if (dp->distributed()) rec.extra["allreduce_s"] = comm_s, rec.extra["world_size"] = dp->world_size();
  comm_s = 0;
  rec.lr = cfg.lr * lr_factor(cfg, static_cast<double>(global_step) / static_cast<double>(total_steps), epoch + 1.0);
  rec.seconds = seconds;
  rec.images_per_s = static_cast<double>(sums.seen) / std::max(seconds, 1e-9);
  if (val) {
    auto r = analysis::evaluate(*t.model_, val, input_pipeline(t.meta_, val->input_shape()), t.meta_.num_classes(),
                                analysis::EvalOptions().workers_(cfg.workers).precision_(prec));
    rec.val_loss = r.loss;
    rec.val_acc = r.accuracy;
    if (!cfg.quiet)
      std::cerr << "epoch " << epoch + 1 << " validation: loss " << r.loss << " acc " << 100 * r.accuracy << "%\n";
  }
  if (t.observer_ && dp->is_main()) {  // observers write files (adapt's candidates)
    for (auto& term : t.terms_) term->train(false);
    auto j = t.observer_->on_epoch_end(*t.model_, rec.epoch);
    if (j.is_object()) rec.extra.update(j);
    plan.apply(*t.model_, epoch, cfg.adapt_frozen_bn);
  }
  result.history.push_back(rec);
  bool improved = false;
  if (val && cfg.patience >= 0) {
    if (rec.val_loss < best_val) {
      best_val = rec.val_loss, best_epoch = rec.epoch, bad_epochs = 0, improved = true;
      if (dp->is_main()) io::save_checkpoint(best_path, *t.model_, t.meta_, nullptr, nullptr);
      best_at_step = global_step;
    } else if (++bad_epochs > cfg.patience) {
      stopped = true;
    }
  }
  nlohmann::json line = {{"event", "epoch"}, {"epoch", rec.epoch}, {"step", global_step},
                         {"train_loss", rec.train_loss}, {"train_acc", rec.train_acc}, {"lr", rec.lr},
                         {"seconds", rec.seconds}, {"images_per_s", rec.images_per_s}};
  if (sums.labelled == 0) line.erase("train_loss"), line.erase("train_acc");
  if (val) line["val_loss"] = rec.val_loss, line["val_acc"] = rec.val_acc;
  if (cfg.patience >= 0) line["best"] = improved;
  if (!t.terms_.empty()) line["extra_loss"] = rec.extra_loss;
  line.update(rec.extra);
  emit(line);
  if (stopped) {
    emit({{"event", "early_stop"}, {"epoch", rec.epoch}, {"best_epoch", best_epoch}, {"best_val_loss", best_val}});
    if (!cfg.quiet)
      std::cerr << "graft: validation loss has not improved for " << bad_epochs << " epochs: stopping; keeping epoch "
                << best_epoch << " (val loss " << best_val << ")\n";
  }
  save_state(epoch + 1, 0);
  if (dp->is_main()) write_curves(result.history, cfg.out_dir + "/curves.svg");
}

void Trainer::Run::save_state(int64_t epoch_done, int64_t step_in_epoch) {
  io::TrainState st;
  st.epoch = epoch_done;
  st.step_in_epoch = step_in_epoch;
  st.global_step = global_step;
  st.config = saved_config();
  // Mid-epoch: the running sums over all ranks (a collective: every rank gets here).
  const Sums part = step_in_epoch > 0 ? global_sums() : sums;
  if (!dp->is_main()) return;  // rank 0 alone writes checkpoints
  nlohmann::json history = nlohmann::json::array();
  for (const auto& r : result.history) history.push_back(record_json(r));
  st.extra = {{"history", history}, {"rows", rows}, {"best_epoch", best_epoch}, {"bad_epochs", bad_epochs},
              {"stopped_early", stopped}};
  if (std::isfinite(best_val)) st.extra["best_val_loss"] = best_val;
  if (prec == Precision::kFp16) st.extra["loss_scale"] = {{"scale", loss_scale}, {"good_steps", good_steps}};
  if (step_in_epoch > 0)
    st.extra["partial"] = {{"loss", part.loss},       {"term_loss", part.term_loss}, {"correct", part.correct},
                           {"labelled", part.labelled}, {"seen", part.seen},         {"metric", part.metric},
                           {"count", part.count}};
  if (t.observer_) st.extra["observer"] = t.observer_->state();
  io::Attachment terms;
  terms.meta = {{"kind", "trainer-terms"}};
  for (size_t i = 0; i < t.terms_.size(); ++i)
    for (auto& [n, v] : t.terms_[i]->save()) terms.tensors.emplace_back(std::to_string(i) + "/" + n, v);
  // A checkpoint with non-finite weights is never written: the last good one stays.
  if (auto bad = first_non_finite(*t.model_); !bad.empty())
    throw Diverged(str("the weights became non-finite (", bad, ") by global step ", global_step,
                       "; training stopped and ", last_good(), ". Lower --lr (now ", cfg.lr, ")"));
  if (fs::exists(ckpt)) fs::rename(ckpt, prev);
  if (++checkpoints_written == kill_in_checkpoint) std::raise(SIGKILL);
  // The last checkpoint of a run leaves the optimizer state out: a resume of a finished run
  // only finishes it (a resume with more epochs is a changed configuration, refused), and
  // Adam's moments are twice the model's size.
  const bool finished = stopped || (epoch_done >= cfg.epochs && step_in_epoch == 0);
  io::save_checkpoint(ckpt, *t.model_, t.meta_, &st, finished ? nullptr : opt.get(),
                      terms.tensors.empty() ? nullptr : &terms);
}

void Trainer::Run::broadcast_state() {
  std::vector<at::Tensor> ts;
  for (auto& [n, p] : t.model_->named_parameters()) ts.push_back(p);
  for (auto& [n, b] : t.model_->named_buffers()) ts.push_back(b);
  for (auto& term : t.terms_)
    for (auto& p : term->parameters()) ts.push_back(p);
  dist::broadcast_tensors(*dp, ts);
}

void Trainer::Run::sync_averager() {
  if (!dp->distributed()) return;
  std::vector<at::Tensor> ps;
  for (const auto& g : opt->param_groups())
    for (const auto& p : g.params())
      if (p.requires_grad()) ps.push_back(p);
  bool same = avg && ps.size() == avg_params.size();
  for (size_t i = 0; same && i < ps.size(); ++i) same = ps[i].is_same(avg_params[i]);
  if (same) return;
  avg.reset();
  avg_params = ps;
  // After backward, not overlapped: terms may run autograd passes of their own.
  avg = std::make_unique<dist::GradientAverager>(*dp, ps, dist::GradientAveragerOptions().overlap_(false));
}

Trainer::Run::Sums Trainer::Run::global_sums() {
  if (!dp->distributed()) return sums;
  // A term may report a metric on some ranks only (or only after a resume on rank 0): sum
  // over the union of the keys so every rank sends the same vector.
  Sums local = sums;
  std::string keys;
  for (auto& [k, x] : sums.metric) keys += k + "\n";
  for (const auto& other : dp->exchange("metric-keys", keys)) {
    std::istringstream in(other);
    for (std::string k; std::getline(in, k);) local.metric.try_emplace(k, 0.0), local.count.try_emplace(k, 0);
  }
  std::vector<double> v = {local.loss, local.term_loss, static_cast<double>(local.correct),
                           static_cast<double>(local.labelled), static_cast<double>(local.seen)};
  for (auto& [k, x] : local.metric) v.push_back(x);
  for (auto& [k, n] : local.count) v.push_back(static_cast<double>(n));
  v = dist::sum_over_ranks(*dp, v);
  Sums g = local;
  size_t i = 0;
  g.loss = v[i++], g.term_loss = v[i++];
  g.correct = std::llround(v[i++]), g.labelled = std::llround(v[i++]), g.seen = std::llround(v[i++]);
  for (auto& [k, x] : g.metric) x = v[i++];
  for (auto& [k, n] : g.count) n = std::llround(v[i++]);
  return g;
}

void Trainer::Run::finish() {
  auto& m = *t.model_;
  dp->barrier();  // rank 0 has written best.ckpt
  // When the best epoch was the last one, the model holds the kept weights already and
  // best.ckpt is model.ckpt's content: no reload, and model.ckpt becomes a link to it.
  const bool best_in_model = cfg.patience >= 0 && best_epoch > 0 && best_at_step == global_step;
  if (cfg.patience >= 0 && best_epoch > 0) {
    if (!best_in_model) io::copy_weights(*io::load_checkpoint(best_path).model, m);
    result.best_epoch = best_epoch;
    result.stopped_early = stopped;
  }
  if (loader && loader->skipped() > 0)
    std::cerr << "graft: skipped " << loader->skipped() << " undecodable example(s) of " << train->describe() << "\n";
  result.model_path = cfg.out_dir + "/model.ckpt";
  if (!dp->is_main()) return;  // rank 0 alone writes the model, the test report and result.json
  if (best_in_model) link_or_copy_atomically(best_path, result.model_path);
  else io::save_checkpoint(result.model_path, m, t.meta_, nullptr, nullptr);
  if (models::is_torchscript(m)) {
    result.torchscript_path = cfg.out_dir + "/model.pt";
    m.train(false);
    models::save_torchscript(m, result.torchscript_path);
  }
  nlohmann::json res = {{"model", result.model_path}, {"epochs", result.history.size()}};
  if (cfg.patience >= 0) res["best_epoch"] = result.best_epoch, res["stopped_early"] = result.stopped_early;
  if (!result.cache.empty()) res["prefix_cache"] = result.cache;
  if (!result.history.empty() && sums.labelled > 0)
    res["train_loss"] = result.history.back().train_loss, res["train_acc"] = result.history.back().train_acc;
  if (test) {
    result.has_test = true;
    result.test = analysis::evaluate(m, test, input_pipeline(t.meta_, test->input_shape()), t.meta_.num_classes(),
                                     analysis::EvalOptions().workers_(cfg.workers).precision_(prec));
    res["test"] = result.test.to_json(t.meta_.class_names);
    res["test_dataset"] = test->describe();
    emit({{"event", "test"}, {"accuracy", result.test.accuracy}, {"loss", result.test.loss}});
  }
  graft::write_text_atomically(cfg.out_dir + "/result.json", res.dump(2) + "\n");
}

TrainResult Trainer::fit(const data::DatasetPtr& train, const data::DatasetPtr& val, const data::DatasetPtr& test) {
  if ((cfg_.l2sp_alpha > 0 || cfg_.l2sp_beta > 0) && !l2sp_added_) {
    add_term(std::make_shared<L2SPTerm>(cfg_.l2sp_alpha, cfg_.l2sp_beta, cfg_.pretrained_layers));
    l2sp_added_ = true;
  }
  // Data parallelism: one process group per process, from the torchrun environment.
  dist::Context& dp = dist::process_context(cfg_.device);
  TrainConfig cfg = cfg_;
  if (!dp.is_main()) cfg.quiet = true;  // rank 0 alone reports progress
  Run r(*this, cfg);
  r.dp = &dp;
  r.train = train, r.val = val, r.test = test;
  try {
    r.check_inputs();
    r.prepare();
    r.setup_terms();
    r.resume();
    r.broadcast_state();
    // After loading and broadcasting, which may bring tensors in another layout; before the
    // optimizer, whose state is made like the parameters.
    r.channels_last = models::apply_channels_last(cfg.channels_last, *model_, meta_.input_shape, r.dev);
    r.build_optimizer();
    r.write_config();
    r.maybe_cache();
    for (int64_t epoch = r.start_epoch; epoch < cfg_.epochs && !r.stopped; ++epoch) r.run_epoch(epoch);
    r.finish();
  } catch (const std::exception& e) {
    dp.abort(e.what());  // the other ranks quote it
    throw;
  }
  return std::move(r.result);
}

}  // namespace graft::train
