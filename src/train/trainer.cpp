#include "graft/train/trainer.h"

#include <torch/torch.h>
#include <unistd.h>

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
#include "graft/core/runtime.h"
#include "graft/data/loader.h"
#include "graft/io/files.h"
#include "graft/models/zoo.h"

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

/// One parameter group per learning-rate multiplier.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& cfg,
                                                        std::vector<torch::optim::OptimizerParamGroup> groups) {
  GRAFT_CHECK(!groups.empty(), "nothing to train: every parameter is frozen");
  if (cfg.optimizer == "sgd")
    return std::make_unique<torch::optim::SGD>(
        groups, torch::optim::SGDOptions(cfg.lr).momentum(cfg.momentum).nesterov(cfg.nesterov).weight_decay(cfg.weight_decay));
  if (cfg.optimizer == "adam")
    return std::make_unique<torch::optim::Adam>(groups, torch::optim::AdamOptions(cfg.lr).weight_decay(cfg.weight_decay));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
}

void set_lr(torch::optim::Optimizer& opt, double lr, const std::vector<double>& group_mult) {
  auto& groups = opt.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(lr * group_mult.at(i));
}

/// Activations of a frozen prefix for every training example, in memory or in a file.
class PrefixCache {
 public:
  void build(models::Backbone& model, size_t prefix, const data::DatasetPtr& ds, const data::Pipeline& pipe,
             const TrainConfig& cfg, c10::Device dev, const std::string& disk_path) {
    data::Loader l(ds, pipe, data::LoaderOptions().batch_size_(256).shuffle_(false).workers_(cfg.workers));
    l.start_epoch(0);
    torch::NoGradGuard no_grad;
    int64_t n = ds->size(), row = 0;
    std::ofstream file;
    while (auto b = l.next()) {
      auto h = model.forward_range(b->input.to(dev), 0, prefix).to(at::kCPU).contiguous();
      if (!labels_.defined()) {
        shape_ = h.sizes().vec();
        shape_[0] = n;
        row_elems_ = h[0].numel();
        labels_ = at::empty({n}, at::kLong);
        double mb = static_cast<double>(n * row_elems_) * 4 / (1 << 20);
        on_disk_ = cfg.cache == "disk" || (cfg.cache == "auto" && mb > static_cast<double>(cfg.cache_memory_mb));
        if (on_disk_) {
          path_ = disk_path;
          file.open(path_, std::ios::binary | std::ios::trunc);
          GRAFT_CHECK(file, path_, ": cannot write the activation cache; free disk space or use --cache memory");
        } else {
          mem_ = at::empty(shape_, at::kFloat);
        }
      }
      GRAFT_CHECK(b->index[0].item<int64_t>() == row, "activation cache: examples arrived out of order");
      auto hf = h.to(at::kFloat);
      if (on_disk_) file.write(static_cast<const char*>(hf.data_ptr()), hf.numel() * 4);
      else mem_.narrow(0, row, hf.size(0)).copy_(hf);
      labels_.narrow(0, row, hf.size(0)).copy_(b->label);
      row += hf.size(0);
    }
    GRAFT_CHECK(row == n, "activation cache: ", row, " of ", n, " examples could be read");
    if (on_disk_) {
      file.close();
      GRAFT_CHECK(file, path_, ": writing the activation cache failed (disk full?)");
      in_.open(path_, std::ios::binary);
    }
  }
  std::pair<at::Tensor, at::Tensor> rows(const std::vector<int64_t>& idx) {
    auto index = at::tensor(idx, at::kLong);
    auto y = labels_.index_select(0, index);
    if (!on_disk_) return {mem_.index_select(0, index), y};
    auto shape = shape_;
    shape[0] = static_cast<int64_t>(idx.size());
    auto x = at::empty(shape, at::kFloat);
    auto* dst = static_cast<char*>(x.data_ptr());
    const int64_t bytes = row_elems_ * 4;
    for (size_t k = 0; k < idx.size(); ++k) {
      in_.seekg(idx[k] * bytes);
      in_.read(dst + static_cast<int64_t>(k) * bytes, bytes);
    }
    GRAFT_CHECK(in_, path_, ": reading the activation cache failed");
    return {x, y};
  }
  bool on_disk() const { return on_disk_; }
  ~PrefixCache() {
    if (in_.is_open()) in_.close();
    if (!path_.empty()) std::filesystem::remove(path_);
  }

 private:
  at::Tensor mem_, labels_;
  std::vector<int64_t> shape_;
  int64_t row_elems_ = 0;
  bool on_disk_ = false;
  std::string path_;
  std::ifstream in_;
};

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
  io::write_text_atomically(path, analysis::svg_chart({{"loss", "epoch", "cross-entropy", loss, {}},
                                                        {"accuracy", "epoch", "accuracy (%)", acc, {}}}));
}

}  // namespace

void TrainConfig::validate() const {
  GRAFT_CHECK(epochs >= 1 && epochs <= 100000, "--epochs must be in [1, 100000], got ", epochs);
  GRAFT_CHECK(batch_size >= 1 && batch_size <= 65536, "--batch-size must be in [1, 65536], got ", batch_size);
  check_choice("optimizer", optimizer, {"sgd", "adam", "adamw"});
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
  GRAFT_CHECK(workers >= 0 && workers <= 64, "--workers must be in [0, 64], got ", workers);
  GRAFT_CHECK(checkpoint_every >= 0, "--checkpoint-every must be >= 0, got ", checkpoint_every);
  GRAFT_CHECK(!out_dir.empty(), "--out is required: the folder for checkpoints, metrics and results");
  for (double m : layer_lr_mult)
    GRAFT_CHECK(std::isfinite(m) && m >= 0, "layer learning-rate multipliers must be finite and >= 0, got ", m);
  GRAFT_CHECK(unfreeze_every >= 0, "--unfreeze-every must be >= 0, got ", unfreeze_every);
  GRAFT_CHECK(std::isfinite(l2sp_alpha) && l2sp_alpha >= 0, "--l2sp-alpha must be >= 0, got ", l2sp_alpha);
  GRAFT_CHECK(std::isfinite(l2sp_beta) && l2sp_beta >= 0, "--l2sp-beta must be >= 0, got ", l2sp_beta);
  GRAFT_CHECK(patience >= -1, "--patience must be >= 0 (or -1 for no early stopping), got ", patience);
  check_choice("cache", cache, {"auto", "memory", "disk", "off"});
  GRAFT_CHECK(cache_memory_mb >= 0, "--cache-memory-mb must be >= 0, got ", cache_memory_mb);
  data::Pipeline::parse(augment);
  parse_device(device);
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
          {"patience", patience},   {"cache", cache}};
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
  data::Pipeline p;
  const auto& m = meta.input_shape;
  if (m.size() == 3 && data_shape.size() == 3) {
    if (data_shape[0] != m[0]) p.then(data::Pipeline::parse(m[0] == 3 ? "rgb" : "gray"));
    if (data_shape[1] != m[1] || data_shape[2] != m[2]) p.then(data::Pipeline::parse(str("resize=", m[1], "x", m[2])));
  } else {
    GRAFT_CHECK(data_shape == m, "the data's examples have shape ", at::IntArrayRef(data_shape),
                " but the model takes ", at::IntArrayRef(m));
  }
  return p.then(data::Pipeline::parse(meta.preprocess));
}

Trainer::Trainer(models::BackbonePtr model, io::ModelMeta meta, TrainConfig cfg)
    : model_(std::move(model)), meta_(std::move(meta)), cfg_(std::move(cfg)) {
  cfg_.validate();
}

void Trainer::set_extra_loss(ExtraLoss loss, std::string name) {
  GRAFT_CHECK(static_cast<bool>(loss), "set_extra_loss: empty function");
  extra_ = std::move(loss);
  extra_name_ = std::move(name);
}

TrainResult Trainer::fit(const data::DatasetPtr& train, const data::DatasetPtr& val, const data::DatasetPtr& test) {
  GRAFT_CHECK(train && train->size() > 0, "the training set is empty");
  GRAFT_CHECK(train->num_classes() == meta_.num_classes(), "the training set has ", train->num_classes(),
              " classes but the model outputs ", meta_.num_classes());
  GRAFT_CHECK(train->num_classes() >= 2, train->describe(), " has a single class; classification needs at least 2");
  io::ensure_dir(cfg_.out_dir);
  auto dev = parse_device(cfg_.device);
  const std::string ckpt = cfg_.out_dir + "/checkpoint.ckpt", prev = cfg_.out_dir + "/checkpoint.prev.ckpt";
  const std::string metrics_path = cfg_.out_dir + "/metrics.jsonl";

  auto data_shape = train->input_shape();
  data::Pipeline eval_pipe = input_pipeline(meta_, data_shape);
  data::Pipeline train_pipe = data::Pipeline::parse(cfg_.augment);
  train_pipe.then(eval_pipe);

  // Resume: newest readable checkpoint of the same model.
  int64_t start_epoch = 0, start_step = 0, global_step = 0;
  std::string resume_from;
  TrainResult result;
  nlohmann::json resumed_extra = nlohmann::json::object();
  GRAFT_CHECK(cfg_.patience < 0 || val, "--patience needs a validation set: give --val or --val-split");
  if (cfg_.resume) {
    for (const auto& c : {ckpt, prev}) {
      if (!fs::exists(c)) continue;
      try {
        auto ck = io::load_checkpoint(c, /*restore_rng=*/true);
        GRAFT_CHECK(ck.has_state, c, " holds no training state");
        GRAFT_CHECK(ck.meta.arch == meta_.arch && ck.meta.class_names == meta_.class_names &&
                        ck.meta.input_shape == meta_.input_shape && ck.meta.arch_config == meta_.arch_config,
                    c, " is a checkpoint of another model (", ck.meta.arch, ", ", ck.meta.num_classes(),
                    " classes); use another --out folder or drop --resume");
        io::copy_weights(*ck.model, *model_);
        start_epoch = ck.state.epoch;
        start_step = ck.state.step_in_epoch;
        global_step = ck.state.global_step;
        for (const auto& h : ck.state.extra.value("history", nlohmann::json::array())) {
          EpochRecord r;
          r.epoch = h.value("epoch", 0);
          r.train_loss = h.value("train_loss", 0.0);
          r.train_acc = h.value("train_acc", 0.0);
          r.val_loss = h.value("val_loss", -1.0);
          r.val_acc = h.value("val_acc", -1.0);
          r.lr = h.value("lr", 0.0);
          r.seconds = h.value("seconds", 0.0);
          r.images_per_s = h.value("images_per_s", 0.0);
          result.history.push_back(r);
        }
        resumed_extra = ck.state.extra;
        resume_from = c;
        break;
      } catch (const Error& e) {
        if (std::string(e.what()).find("another model") != std::string::npos) throw;
        std::cerr << "graft: warning: cannot resume from " << c << " (" << e.what() << "); trying an older one\n";
      }
    }
  }
  model_->to(dev);

  // Layer policy: a learning-rate multiplier per layer (0 = frozen), gradual unfreezing,
  // and the frozen prefix that runs without autograd (or once, from a cache).
  const size_t L = model_->num_layers();
  std::vector<double> mult = cfg_.layer_lr_mult.empty() ? std::vector<double>(L, 1.0) : cfg_.layer_lr_mult;
  GRAFT_CHECK(mult.size() == L, "got ", mult.size(), " layer learning-rate multipliers for a model of ", L, " layers");
  std::vector<std::vector<std::pair<std::string, torch::Tensor>>> layer_params(L);
  {
    const auto& names = model_->layer_names();
    for (auto& [n, p] : model_->named_parameters()) {
      // A parameter outside every layer (e.g. one set directly on a TorchScript root module)
      // trains with the top layer.
      auto it = std::find(names.begin(), names.end(), models::layer_of_param(n));
      layer_params[it == names.end() ? L - 1 : static_cast<size_t>(it - names.begin())].emplace_back(n, p);
    }
  }
  std::vector<size_t> top_down;  // layers that may train, top first: the order of gradual unfreezing
  for (size_t i = L; i-- > 0;)
    if (!layer_params[i].empty() && mult[i] > 0) top_down.push_back(i);
  GRAFT_CHECK(!top_down.empty(), "nothing to train: every layer with parameters is frozen");
  auto trainable = [&](size_t i, int64_t epoch) {
    if (layer_params[i].empty() || mult[i] <= 0) return false;
    if (cfg_.unfreeze_every <= 0) return true;
    auto rank = std::find(top_down.begin(), top_down.end(), i) - top_down.begin();
    return rank <= epoch / cfg_.unfreeze_every;
  };
  auto frozen_prefix = [&](int64_t epoch) {  // layers [0, P) hold only frozen or no parameters
    size_t p = 0;
    for (size_t i = 0; i < L; ++i) {
      if (trainable(i, epoch)) break;
      if (!layer_params[i].empty()) p = i + 1;
    }
    return p;
  };
  auto apply_policy = [&](int64_t epoch) {
    for (size_t i = 0; i < L; ++i)
      for (auto& [n, p] : layer_params[i]) p.set_requires_grad(trainable(i, epoch));
    model_->train(true);
    // Frozen layers keep their BatchNorm statistics (unless adapting them); the whole
    // frozen prefix runs in eval mode so that it is deterministic and cacheable.
    const size_t P = frozen_prefix(epoch);
    for (size_t i = 0; i < L; ++i)
      if ((!layer_params[i].empty() && !trainable(i, epoch)) || i < P) model_->train_layer(i, cfg_.adapt_frozen_bn);
  };
  std::vector<double> group_mult;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  {
    std::map<double, std::vector<torch::Tensor>> by_mult;
    for (size_t i = 0; i < L; ++i)
      if (mult[i] > 0)
        for (auto& [n, p] : layer_params[i]) by_mult[mult[i]].push_back(p);
    for (auto& [m, ps] : by_mult) {
      groups.emplace_back(ps);
      group_mult.push_back(m);
    }
  }
  auto opt = make_optimizer(cfg_, groups);
  for (const auto& g : opt->param_groups())
    for (const auto& p : g.params()) result.optimized_params += p.numel();

  // L2-SP: the pretrained weights, kept beside the run so that a resumed run decays towards them too.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> l2sp_ref;
  std::vector<torch::Tensor> l2sp_new;
  if (cfg_.l2sp_alpha > 0 || cfg_.l2sp_beta > 0) {
    const std::string ref_path = cfg_.out_dir + "/pretrained.ckpt";
    if (!fs::exists(ref_path)) {
      GRAFT_CHECK(resume_from.empty(), ref_path, " is missing: an L2-SP run cannot resume without its reference "
                  "weights; start again in a new --out folder");
      io::save_checkpoint(ref_path, *model_, meta_, nullptr, nullptr);
    }
    auto ref = io::load_checkpoint(ref_path).model->named_parameters();
    std::map<std::string, torch::Tensor> refm(ref.begin(), ref.end());
    for (size_t i = 0; i < L; ++i)
      for (auto& [n, p] : layer_params[i]) {
        if (mult[i] <= 0) continue;
        if (static_cast<int64_t>(i) < cfg_.pretrained_layers) {
          auto it = refm.find(n);
          GRAFT_CHECK(it != refm.end(), ref_path, " lacks the reference of '", n, "'");
          l2sp_ref.emplace_back(p, it->second.to(dev));
        } else {
          l2sp_new.push_back(p);
        }
      }
  }
  auto l2sp_penalty = [&]() {
    auto pen = torch::zeros({}, torch::TensorOptions().device(dev));
    for (auto& [p, r] : l2sp_ref)
      if (p.requires_grad()) pen = pen + 0.5 * cfg_.l2sp_alpha * (p - r).pow(2).sum();
    for (auto& p : l2sp_new)
      if (p.requires_grad()) pen = pen + 0.5 * cfg_.l2sp_beta * p.pow(2).sum();
    return pen;
  };

  // Early stopping state (carried across resumes).
  double best_val = std::numeric_limits<double>::infinity();
  int64_t best_epoch = 0, bad_epochs = 0;
  bool stopped = false;
  if (resumed_extra.contains("best_val_loss")) best_val = resumed_extra["best_val_loss"].get<double>();
  best_epoch = resumed_extra.value("best_epoch", int64_t{0});
  bad_epochs = resumed_extra.value("bad_epochs", int64_t{0});
  stopped = resumed_extra.value("stopped_early", false);
  const std::string best_path = cfg_.out_dir + "/best.ckpt";
  if (!resume_from.empty()) {
    io::load_optimizer_state(resume_from, *opt);
    if (!cfg_.quiet)
      std::cerr << "graft: resuming from " << resume_from << " at epoch " << start_epoch + 1 << ", step "
                << start_step << "\n";
  }
  io::write_text_atomically(cfg_.out_dir + "/config.json",
                            nlohmann::json({{"train", cfg_.to_json()},
                                            {"model", meta_.to_json()},
                                            {"data", {{"train", train->describe()},
                                                      {"val", val ? val->describe() : ""},
                                                      {"test", test ? test->describe() : ""},
                                                      {"train_pipeline", train_pipe.spec()}}}})
                                    .dump(2) + "\n");

  const data::LoaderOptions loader_opts =
      data::LoaderOptions().batch_size_(cfg_.batch_size).seed_(cfg_.seed).workers_(cfg_.workers);
  data::Loader loader(train, train_pipe, loader_opts);
  const int64_t steps_per_epoch = loader.batches_per_epoch();
  const int64_t total_steps = steps_per_epoch * cfg_.epochs;
  std::ofstream metrics(metrics_path, std::ios::app);
  GRAFT_CHECK(metrics, metrics_path, ": cannot write metrics");
  auto history_json = [&]() {
    nlohmann::json h = nlohmann::json::array();
    for (const auto& r : result.history)
      h.push_back({{"epoch", r.epoch}, {"train_loss", r.train_loss}, {"train_acc", r.train_acc},
                   {"val_loss", r.val_loss}, {"val_acc", r.val_acc}, {"lr", r.lr}, {"seconds", r.seconds},
                   {"images_per_s", r.images_per_s}});
    return h;
  };
  auto save_state = [&](int64_t epoch_done, int64_t step_in_epoch) {
    io::TrainState st;
    st.epoch = epoch_done;
    st.step_in_epoch = step_in_epoch;
    st.global_step = global_step;
    st.config = cfg_.to_json();
    st.extra = {{"history", history_json()}, {"best_epoch", best_epoch}, {"bad_epochs", bad_epochs},
                {"stopped_early", stopped}};
    if (std::isfinite(best_val)) st.extra["best_val_loss"] = best_val;
    if (fs::exists(ckpt)) fs::rename(ckpt, prev);
    io::save_checkpoint(ckpt, *model_, meta_, &st, opt.get());
  };
  auto last_good = [&]() -> std::string {
    if (fs::exists(ckpt)) return "the last good checkpoint is " + ckpt;
    return "no checkpoint was written yet";
  };

  // Frozen-prefix cache: when the prefix never changes and its input is not augmented,
  // its activations are computed once and the rest of the network trains from them.
  std::unique_ptr<PrefixCache> cache;
  {
    const size_t P0 = frozen_prefix(start_epoch);
    std::string why_not;
    if (P0 == 0) why_not = "no frozen prefix";
    else if (extra_) why_not = "the " + extra_name_ + " loss runs the whole model";
    else if (cfg_.unfreeze_every > 0) why_not = "gradual unfreezing changes the prefix";
    else if (cfg_.adapt_frozen_bn) why_not = "frozen BatchNorm statistics adapt";
    else if (train_pipe.random()) why_not = "the training data are augmented";
    if (why_not.empty() && cfg_.cache != "off") {
      apply_policy(start_epoch);
      cache = std::make_unique<PrefixCache>();
      cache->build(*model_, P0, train, train_pipe, cfg_, dev, cfg_.out_dir + "/prefix_cache.tmp.f32");
      result.cache = cache->on_disk() ? "disk" : "memory";
      if (!cfg_.quiet)
        std::cerr << "graft: frozen layers " << model_->layer_names()[0] << ".." << model_->layer_names()[P0 - 1]
                  << " computed once for " << train->size() << " examples (cache in " << result.cache << ")\n";
    } else if (cfg_.cache == "memory" || cfg_.cache == "disk") {
      std::cerr << "graft: warning: --cache " << cfg_.cache << " ignored: " << why_not << "\n";
    }
  }

  bool tty = isatty(STDERR_FILENO);
  for (int64_t epoch = start_epoch; epoch < cfg_.epochs && !stopped; ++epoch) {
    apply_policy(epoch);
    const size_t P = frozen_prefix(epoch);
    int64_t skip = epoch == start_epoch ? start_step : 0;
    std::vector<int64_t> order;
    int64_t cache_batch = skip;
    if (cache) order = data::Loader::epoch_order(train->size(), loader_opts, epoch);
    else loader.start_epoch(epoch, skip);
    auto next = [&]() -> std::optional<std::pair<torch::Tensor, torch::Tensor>> {
      if (!cache) {
        auto b = loader.next();
        if (!b) return std::nullopt;
        return std::make_pair(b->input, b->label);
      }
      if (cache_batch >= steps_per_epoch) return std::nullopt;
      int64_t lo = cache_batch * cfg_.batch_size, hi = std::min<int64_t>(lo + cfg_.batch_size, train->size());
      ++cache_batch;
      return cache->rows(std::vector<int64_t>(order.begin() + lo, order.begin() + hi));
    };
    double loss_sum = 0, extra_sum = 0;
    int64_t correct = 0, seen = 0;
    auto t0 = std::chrono::steady_clock::now();
    auto last_log = t0;
    int64_t step = skip;
    while (auto b = next()) {
      double epoch_f = epoch + static_cast<double>(step) / steps_per_epoch;
      double lr = cfg_.lr * lr_factor(cfg_, static_cast<double>(global_step) / total_steps, epoch_f);
      set_lr(*opt, lr, group_mult);
      auto x = b->first.to(dev), y = b->second.to(dev);
      const int64_t bsize = x.size(0);
      GRAFT_CHECK(y.min().item<int64_t>() >= 0, train->describe(), " has unlabelled examples; training needs labels");
      opt->zero_grad();
      torch::Tensor logits;
      if (cache) {
        logits = model_->forward_range(x, P, L);
      } else if (P > 0) {
        torch::Tensor h;
        {
          torch::NoGradGuard no_grad;  // nothing below P trains: no graph, no backward through it
          h = model_->forward_range(x, 0, P);
        }
        logits = model_->forward_range(h, P, L);
      } else {
        logits = model_->forward(x);
      }
      auto loss = torch::nn::functional::cross_entropy(
          logits, y, torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(cfg_.label_smoothing));
      double lv = loss.item<double>();
      if (!std::isfinite(lv)) {
        metrics << nlohmann::json({{"event", "diverged"}, {"epoch", epoch + 1}, {"step", step + 1}, {"loss", lv}}).dump()
                << "\n";
        metrics.flush();
        GRAFT_FAIL("the loss became ", std::isnan(lv) ? "NaN" : "infinite", " at epoch ", epoch + 1, " step ", step + 1,
                   "; training stopped and ", last_good(), ". Lower --lr (now ", cfg_.lr,
                   "), add --warmup-epochs, or check the inputs for NaN");
      }
      if (extra_) {
        auto ex = extra_(*model_, global_step, static_cast<double>(global_step) / total_steps);
        if (ex.defined()) {
          double ev = ex.item<double>();
          GRAFT_CHECK(std::isfinite(ev), "the ", extra_name_, " loss became ", ev, " at epoch ", epoch + 1, " step ",
                      step + 1, "; training stopped and ", last_good(), ". Lower --lr (now ", cfg_.lr,
                      ") or the weight of the ", extra_name_, " term");
          extra_sum += ev * static_cast<double>(bsize);
          loss = loss + ex;
        }
      }
      if (!l2sp_ref.empty() || !l2sp_new.empty()) loss = loss + l2sp_penalty();
      loss.backward();
      opt->step();
      ++step;
      ++global_step;
      loss_sum += lv * static_cast<double>(bsize);
      correct += (logits.argmax(1) == y).sum().item<int64_t>();
      seen += bsize;
      auto now = std::chrono::steady_clock::now();
      double since = std::chrono::duration<double>(now - last_log).count();
      if (!cfg_.quiet && (since >= cfg_.log_every_s || step == steps_per_epoch)) {
        double el = std::chrono::duration<double>(now - t0).count();
        double ips = seen / std::max(el, 1e-9);
        double eta = (static_cast<double>(total_steps - global_step) * cfg_.batch_size) / std::max(ips, 1e-9);
        std::ostringstream os;
        os << std::fixed << "epoch " << epoch + 1 << "/" << cfg_.epochs << " step " << step << "/" << steps_per_epoch
           << std::setprecision(4) << " loss " << loss_sum / seen;
        if (extra_) os << " " << extra_name_ << " " << extra_sum / seen;
        os << std::setprecision(2) << " acc "
           << 100.0 * correct / seen << "% lr " << std::setprecision(5) << lr << std::setprecision(0) << " " << ips
           << " img/s ETA " << fmt_duration(eta);
        std::cerr << (tty ? "\r\33[2K" : "") << os.str() << (tty ? "" : "\n") << std::flush;
        last_log = now;
      }
      if (cfg_.checkpoint_every > 0 && global_step % cfg_.checkpoint_every == 0 && step < steps_per_epoch)
        save_state(epoch, step);
    }
    if (tty && !cfg_.quiet) std::cerr << "\n";
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EpochRecord rec;
    rec.epoch = epoch + 1;
    rec.train_loss = loss_sum / std::max<int64_t>(seen, 1);
    rec.train_acc = static_cast<double>(correct) / std::max<int64_t>(seen, 1);
    if (extra_) rec.extra_loss = extra_sum / std::max<int64_t>(seen, 1);
    rec.lr = cfg_.lr * lr_factor(cfg_, static_cast<double>(global_step) / total_steps, epoch + 1.0);
    rec.seconds = secs;
    rec.images_per_s = seen / std::max(secs, 1e-9);
    if (val) {
      auto r = analysis::evaluate(*model_, val, input_pipeline(meta_, val->input_shape()), meta_.num_classes(),
                                  analysis::EvalOptions().workers_(cfg_.workers));
      rec.val_loss = r.loss;
      rec.val_acc = r.accuracy;
      if (!cfg_.quiet)
        std::cerr << "epoch " << epoch + 1 << " validation: loss " << r.loss << " acc " << 100 * r.accuracy << "%\n";
    }
    result.history.push_back(rec);
    bool improved = false;
    if (val && cfg_.patience >= 0) {
      if (rec.val_loss < best_val) {
        best_val = rec.val_loss;
        best_epoch = rec.epoch;
        bad_epochs = 0;
        improved = true;
        io::save_checkpoint(best_path, *model_, meta_, nullptr, nullptr);
      } else if (++bad_epochs > cfg_.patience) {
        stopped = true;
      }
    }
    nlohmann::json line = {{"event", "epoch"}, {"epoch", rec.epoch}, {"step", global_step},
                           {"train_loss", rec.train_loss}, {"train_acc", rec.train_acc}, {"lr", rec.lr},
                           {"seconds", rec.seconds}, {"images_per_s", rec.images_per_s}};
    if (val) {
      line["val_loss"] = rec.val_loss;
      line["val_acc"] = rec.val_acc;
    }
    if (cfg_.patience >= 0) line["best"] = improved;
    if (extra_) line[extra_name_ + "_loss"] = rec.extra_loss;
    metrics << line.dump() << "\n";
    if (stopped) {
      metrics << nlohmann::json({{"event", "early_stop"}, {"epoch", rec.epoch}, {"best_epoch", best_epoch},
                                 {"best_val_loss", best_val}}).dump() << "\n";
      if (!cfg_.quiet)
        std::cerr << "graft: validation loss has not improved for " << bad_epochs << " epochs: stopping; keeping epoch "
                  << best_epoch << " (val loss " << best_val << ")\n";
    }
    metrics.flush();
    save_state(epoch + 1, 0);
    write_curves(result.history, cfg_.out_dir + "/curves.svg");
  }
  if (cfg_.patience >= 0 && best_epoch > 0) {
    auto best = io::load_checkpoint(best_path);
    io::copy_weights(*best.model, *model_);
    result.best_epoch = best_epoch;
    result.stopped_early = stopped;
  }
  if (loader.skipped() > 0)
    std::cerr << "graft: skipped " << loader.skipped() << " undecodable example(s) of " << train->describe() << "\n";

  result.model_path = cfg_.out_dir + "/model.ckpt";
  io::save_checkpoint(result.model_path, *model_, meta_, nullptr, nullptr);
  if (models::is_torchscript(*model_)) {
    result.torchscript_path = cfg_.out_dir + "/model.pt";
    model_->train(false);
    models::save_torchscript(*model_, result.torchscript_path);
  }
  nlohmann::json res = {{"model", result.model_path}, {"epochs", result.history.size()}};
  if (cfg_.patience >= 0) {
    res["best_epoch"] = result.best_epoch;
    res["stopped_early"] = result.stopped_early;
  }
  if (!result.cache.empty()) res["prefix_cache"] = result.cache;
  if (!result.history.empty()) {
    res["train_loss"] = result.history.back().train_loss;
    res["train_acc"] = result.history.back().train_acc;
  }
  if (test) {
    result.has_test = true;
    result.test = analysis::evaluate(*model_, test, input_pipeline(meta_, test->input_shape()), meta_.num_classes(),
                                     analysis::EvalOptions().workers_(cfg_.workers));
    res["test"] = result.test.to_json(meta_.class_names);
    res["test_dataset"] = test->describe();
    metrics << nlohmann::json({{"event", "test"}, {"accuracy", result.test.accuracy}, {"loss", result.test.loss}}).dump()
            << "\n";
  }
  io::write_text_atomically(cfg_.out_dir + "/result.json", res.dump(2) + "\n");
  return result;
}

}  // namespace graft::train
