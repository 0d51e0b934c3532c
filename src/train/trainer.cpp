#include "graft/train/trainer.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/loader.h"
#include "graft/io/files.h"
#include "graft/models/zoo.h"

namespace fs = std::filesystem;

namespace graft::train {
namespace {

void check_choice(const std::string& opt, const std::string& v, const std::vector<std::string>& allowed) {
  for (const auto& a : allowed)
    if (a == v) return;
  std::string list, hint;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  auto close = models::close_matches(v, allowed, 1);
  if (!close.empty()) hint = "; did you mean " + close[0] + "?";
  GRAFT_FAIL("--", opt, " '", v, "' is not one of ", list, hint);
}

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  std::ostringstream os;
  if (t >= 3600) os << t / 3600 << "h" << std::setw(2) << std::setfill('0') << (t % 3600) / 60 << "m";
  else if (t >= 60) os << t / 60 << "m" << std::setw(2) << std::setfill('0') << t % 60 << "s";
  else os << t << "s";
  return os.str();
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const TrainConfig& cfg, std::vector<torch::Tensor> params) {
  GRAFT_CHECK(!params.empty(), "nothing to train: every parameter is frozen");
  if (cfg.optimizer == "sgd")
    return std::make_unique<torch::optim::SGD>(
        params, torch::optim::SGDOptions(cfg.lr).momentum(cfg.momentum).nesterov(cfg.nesterov).weight_decay(cfg.weight_decay));
  if (cfg.optimizer == "adam")
    return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(cfg.lr).weight_decay(cfg.weight_decay));
  return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(cfg.lr).weight_decay(cfg.weight_decay));
}

void set_lr(torch::optim::Optimizer& opt, double lr) {
  for (auto& g : opt.param_groups()) g.options().set_lr(lr);
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
  data::Pipeline::parse(augment);
  parse_device(device);
}

nlohmann::json TrainConfig::to_json() const {
  return {{"epochs", epochs},       {"batch_size", batch_size},   {"optimizer", optimizer},
          {"lr", lr},               {"momentum", momentum},       {"nesterov", nesterov},
          {"weight_decay", weight_decay}, {"schedule", schedule}, {"step_epochs", step_epochs},
          {"gamma", gamma},         {"warmup_epochs", warmup_epochs}, {"label_smoothing", label_smoothing},
          {"seed", seed},           {"device", device},           {"workers", workers},
          {"augment", augment},     {"out_dir", out_dir},         {"checkpoint_every", checkpoint_every}};
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
  if (cfg_.resume) {
    for (const auto& c : {ckpt, prev}) {
      if (!fs::exists(c)) continue;
      try {
        auto ck = io::load_checkpoint(c, /*restore_rng=*/true);
        GRAFT_CHECK(ck.has_state, c, " holds no training state");
        GRAFT_CHECK(ck.meta.arch == meta_.arch && ck.meta.class_names == meta_.class_names &&
                        ck.meta.input_shape == meta_.input_shape,
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
        resume_from = c;
        break;
      } catch (const Error& e) {
        if (std::string(e.what()).find("another model") != std::string::npos) throw;
        std::cerr << "graft: warning: cannot resume from " << c << " (" << e.what() << "); trying an older one\n";
      }
    }
  }
  model_->to(dev);
  std::vector<torch::Tensor> params;
  for (auto& [n, p] : model_->named_parameters())
    if (p.requires_grad()) params.push_back(p);
  auto opt = make_optimizer(cfg_, params);
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

  data::Loader loader(train, train_pipe,
                      data::LoaderOptions().batch_size_(cfg_.batch_size).seed_(cfg_.seed).workers_(cfg_.workers));
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
    st.extra = {{"history", history_json()}};
    if (fs::exists(ckpt)) fs::rename(ckpt, prev);
    io::save_checkpoint(ckpt, *model_, meta_, &st, opt.get());
  };
  auto last_good = [&]() -> std::string {
    if (fs::exists(ckpt)) return "the last good checkpoint is " + ckpt;
    return "no checkpoint was written yet";
  };

  bool tty = isatty(STDERR_FILENO);
  for (int64_t epoch = start_epoch; epoch < cfg_.epochs; ++epoch) {
    model_->train(true);
    int64_t skip = epoch == start_epoch ? start_step : 0;
    loader.start_epoch(epoch, skip);
    double loss_sum = 0;
    int64_t correct = 0, seen = 0;
    auto t0 = std::chrono::steady_clock::now();
    auto last_log = t0;
    int64_t step = skip;
    while (auto b = loader.next()) {
      double epoch_f = epoch + static_cast<double>(step) / steps_per_epoch;
      double lr = cfg_.lr * lr_factor(cfg_, static_cast<double>(global_step) / total_steps, epoch_f);
      set_lr(*opt, lr);
      auto x = b->input.to(dev), y = b->label.to(dev);
      GRAFT_CHECK(y.min().item<int64_t>() >= 0, train->describe(), " has unlabelled examples; training needs labels");
      opt->zero_grad();
      auto logits = model_->forward(x);
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
      loss.backward();
      opt->step();
      ++step;
      ++global_step;
      loss_sum += lv * static_cast<double>(b->size());
      correct += (logits.argmax(1) == y).sum().item<int64_t>();
      seen += b->size();
      auto now = std::chrono::steady_clock::now();
      double since = std::chrono::duration<double>(now - last_log).count();
      if (!cfg_.quiet && (since >= cfg_.log_every_s || step == steps_per_epoch)) {
        double el = std::chrono::duration<double>(now - t0).count();
        double ips = seen / std::max(el, 1e-9);
        double eta = (static_cast<double>(total_steps - global_step) * cfg_.batch_size) / std::max(ips, 1e-9);
        std::ostringstream os;
        os << std::fixed << "epoch " << epoch + 1 << "/" << cfg_.epochs << " step " << step << "/" << steps_per_epoch
           << std::setprecision(4) << " loss " << loss_sum / seen << std::setprecision(2) << " acc "
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
    nlohmann::json line = {{"event", "epoch"}, {"epoch", rec.epoch}, {"step", global_step},
                           {"train_loss", rec.train_loss}, {"train_acc", rec.train_acc}, {"lr", rec.lr},
                           {"seconds", rec.seconds}, {"images_per_s", rec.images_per_s}};
    if (val) {
      line["val_loss"] = rec.val_loss;
      line["val_acc"] = rec.val_acc;
    }
    metrics << line.dump() << "\n";
    metrics.flush();
    save_state(epoch + 1, 0);
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
