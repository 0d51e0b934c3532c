#include "graft/adapt/adapt.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <set>

#include "graft/adapt/losses.h"
#include "graft/analysis/metrics.h"
#include "graft/analysis/plot.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/data/loader.h"
#include "graft/io/files.h"
#include "graft/train/trainer.h"

namespace graft::adapt {
namespace {

const std::vector<std::string> kMethods = {"source-only", "adabn", "dann", "cdan", "coral", "mmd", "self-train"};

bool has_batchnorm(const models::Backbone& m) {
  for (auto& [n, b] : m.named_buffers())
    if (n.size() >= 12 && n.compare(n.size() - 12, 12, "running_mean") == 0) return true;
  return false;
}

/// AdaBN (Li et al. 2016): every BatchNorm layer's statistics re-estimated on the target.
/// The backbone interface exposes buffers, not modules, so the statistics are reset
/// (mean 0, variance 1, count 0) and re-accumulated by forward passes in training mode
/// without gradients: layers with a cumulative average get the exact mean over the
/// batches seen, layers with PyTorch's default momentum 0.1 an exponential average in
/// which the reset values weigh 0.9^60 < 0.2% after the 60 or more batches run here.
void reestimate_batchnorm(models::Backbone& m, const data::DatasetPtr& d, const data::Pipeline& pipe, uint64_t seed,
                          int workers, c10::Device dev) {
  torch::NoGradGuard ng;
  for (auto& [n, b] : m.named_buffers()) {
    auto ends = [&](const std::string& suffix) {
      return n.size() >= suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    if (ends("running_mean") || ends("num_batches_tracked")) b.zero_();
    if (ends("running_var")) b.fill_(1);
  }
  const int64_t bs = std::min<int64_t>(128, d->size());
  data::Loader l(d, pipe, data::LoaderOptions().batch_size_(bs).seed_(seed).workers_(workers).drop_last_(true));
  const int64_t want = std::max<int64_t>(60, std::min<int64_t>(l.batches_per_epoch(), 400));
  const bool was = m.is_training();
  m.train(true);
  int64_t done = 0;
  for (int64_t ep = 0; done < want; ++ep) {
    l.start_epoch(ep);
    while (done < want) {
      auto b = l.next();
      if (!b) break;
      m.forward(b->input.to(dev));
      ++done;
    }
  }
  m.train(was);
}


/// Logits and tap features of a dataset sample, in eval mode without gradients.
struct Outputs {
  at::Tensor features, logits, labels;
};
Outputs run_eval(models::Backbone& m, size_t tap, const data::DatasetPtr& d, const io::ModelMeta& meta, int workers,
                 c10::Device dev) {
  torch::NoGradGuard ng;
  m.train(false);
  data::Loader l(d, train::input_pipeline(meta, d->input_shape()),
                 data::LoaderOptions().batch_size_(256).shuffle_(false).workers_(workers));
  l.start_epoch(0);
  std::vector<at::Tensor> f, z, y;
  while (auto b = l.next()) {
    auto h = m.forward_range(b->input.to(dev), 0, tap + 1);
    z.push_back(m.forward_range(h, tap + 1, m.num_layers()).cpu());
    f.push_back(h.flatten(1).cpu());
    y.push_back(b->label);
  }
  return {at::cat(f), at::cat(z), at::cat(y)};
}

std::map<std::string, at::Tensor> snapshot(const models::Backbone& m) {
  std::map<std::string, at::Tensor> s;
  for (auto& [n, p] : m.named_parameters()) s[n] = p.detach().clone();
  for (auto& [n, b] : m.named_buffers()) s[n] = b.detach().clone();
  return s;
}
void restore(models::Backbone& m, const std::map<std::string, at::Tensor>& s) {
  torch::NoGradGuard ng;
  for (auto& [n, p] : m.named_parameters()) p.copy_(s.at(n));
  for (auto& [n, b] : m.named_buffers()) b.copy_(s.at(n));
}

/// 2-D PCA of the source and target features (shared axes) as two scatter series.
std::vector<analysis::Series> pca_scatter(const at::Tensor& fs, const at::Tensor& ft) {
  auto x = at::cat({fs, ft}).to(at::kDouble);
  auto c = x - x.mean(0, true);
  auto cov = c.t().mm(c) / static_cast<double>(x.size(0) - 1);
  auto eig = at::linalg_eigh(cov);
  auto vecs = std::get<1>(eig);
  auto proj = c.mm(vecs.narrow(1, vecs.size(1) - 2, 2));
  analysis::Series s, t;
  s.name = "source";
  t.name = "target";
  s.markers_only = t.markers_only = true;
  for (int64_t i = 0; i < x.size(0); ++i) {
    auto& se = i < fs.size(0) ? s : t;
    se.x.push_back(proj[i][1].item<double>());
    se.y.push_back(proj[i][0].item<double>());
  }
  return {s, t};
}

}  // namespace

void AdaptConfig::validate() const {
  check_choice("method", method, kMethods);
  check_choice("optimizer", optimizer, {"sgd", "adam"});
  check_choice("schedule", schedule, {"dann", "constant"});
  check_choice("select", select, {"snd", "im", "source-val", "last"});
  GRAFT_CHECK(epochs >= 1 && epochs <= 100000, "--epochs must be in [1, 100000], got ", epochs);
  GRAFT_CHECK(batch_size >= 2 && batch_size <= 65536, "--batch-size must be in [2, 65536], got ", batch_size);
  GRAFT_CHECK(std::isfinite(lr) && lr > 0 && lr <= 10, "--lr must be in (0, 10], got ", lr);
  GRAFT_CHECK(std::isfinite(weight_decay) && weight_decay >= 0 && weight_decay < 1, "--weight-decay must be in [0, 1)");
  GRAFT_CHECK(std::isfinite(trade_off) && trade_off >= 0 && trade_off <= 100,
              "--trade-off (the adaptation weight / final lambda) must be in [0, 100], got ", trade_off);
  GRAFT_CHECK(std::isfinite(lambda_gamma) && lambda_gamma > 0 && lambda_gamma <= 100,
              "--lambda-gamma must be in (0, 100], got ", lambda_gamma);
  GRAFT_CHECK(threshold > 0 && threshold <= 1, "--threshold must be in (0, 1], got ", threshold);
  GRAFT_CHECK(source_val > 0 && source_val < 1, "--source-val must be in (0, 1), got ", source_val);
  GRAFT_CHECK(disc_hidden >= 1 && disc_hidden <= 65536, "--disc-hidden must be in [1, 65536]");
  GRAFT_CHECK(source_tolerance >= 0 && source_tolerance <= 1, "--source-tolerance must be in [0, 1], got ",
              source_tolerance);
  GRAFT_CHECK(eval_examples >= 10, "--eval-examples must be >= 10");
  GRAFT_CHECK(!out_dir.empty(), "--out is required");
  parse_device(device);
}

nlohmann::json AdaptConfig::to_json() const {
  return {{"method", method},       {"tap", tap},           {"epochs", epochs},         {"batch_size", batch_size},
          {"optimizer", optimizer}, {"lr", lr},             {"schedule", schedule},     {"weight_decay", weight_decay},
          {"trade_off", trade_off}, {"lambda_gamma", lambda_gamma}, {"disc_hidden", disc_hidden},
          {"threshold", threshold}, {"source_val", source_val}, {"select", select}, {"source_tolerance", source_tolerance}, {"seed", seed}};
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

AdaptResult run_adapt(models::BackbonePtr model, const io::ModelMeta& meta, const data::DatasetPtr& source,
                      const data::DatasetPtr& target, const data::DatasetPtr& target_test, const AdaptConfig& cfg) {
  cfg.validate();
  GRAFT_CHECK(source && source->size() > 0, "the source set is empty");
  GRAFT_CHECK(target && target->size() > 0, "the target set is empty: adaptation needs unlabelled target examples");
  auto ss = source->input_shape(), ts = target->input_shape();
  GRAFT_CHECK(ss.size() == ts.size() && (ss.size() != 3 || (ss[1] == ts[1] && ss[2] == ts[2])) &&
                  (ss.size() == 3 || ss == ts),
              "source examples have shape ", at::IntArrayRef(ss), " but target examples ", at::IntArrayRef(ts),
              "; give both the same size (e.g. a resize view) before adapting");
  GRAFT_CHECK(ss.size() != 3 || ss[0] == ts[0] || meta.input_shape.size() == 3,
              "source and target have different channels");
  const auto dev = parse_device(cfg.device);
  io::ensure_dir(cfg.out_dir);
  model->to(dev);
  const std::string tap_name = cfg.tap.empty() ? default_tap(*model) : cfg.tap;
  const size_t tap = model->layer_index(tap_name);
  const size_t L = model->num_layers();
  GRAFT_CHECK(tap + 1 < L, "--tap '", tap_name, "' is the last layer; tap a layer below the classifier");
  const int64_t K = meta.num_classes();
  const bool adabn = cfg.method == "adabn";
  GRAFT_CHECK(!adabn || has_batchnorm(*model), "--method adabn re-estimates BatchNorm statistics on the target, but model '",
              meta.arch, "' has no BatchNorm layer; use one that has (dann_mnist_bn, resnet8, resnet20, mlp_bn, most "
              "TorchScript CNNs) or another --method");

  bool target_labelled = false;
  for (auto y : target->labels()) target_labelled |= y >= 0;
  if (target_labelled)
    std::cerr << "graft: note: the target training set has labels; adaptation ignores them (only --target-test "
                 "gives oracle numbers)\n";
  auto tgt = data::unlabelled(target);
  auto [src_train, src_val] = data::split(source, cfg.source_val, cfg.seed);
  auto tgt_eval = data::take(tgt, cfg.eval_examples);
  auto pipe_s = train::input_pipeline(meta, ss), pipe_t = train::input_pipeline(meta, ts);

  torch::manual_seed(cfg.seed);
  // Feature width at the tap, from one source example.
  int64_t F = 0;
  {
    torch::NoGradGuard ng;
    model->train(false);
    auto b = src_train->get_batch({0});
    F = model->forward_range(pipe_s.apply_batch(b.input).to(dev), 0, tap + 1).flatten(1).size(1);
  }
  Discriminator disc(cfg.method == "cdan" ? F * K : F, cfg.disc_hidden, 2, 0.5);
  disc->to(dev);
  std::vector<torch::Tensor> params;
  for (auto& [n, p] : model->named_parameters()) params.push_back(p);
  if (cfg.method == "dann" || cfg.method == "cdan")
    for (auto& p : disc->parameters()) params.push_back(p);
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (cfg.optimizer == "sgd")
    opt = std::make_unique<torch::optim::SGD>(params,
                                              torch::optim::SGDOptions(cfg.lr).momentum(0.9).weight_decay(cfg.weight_decay));
  else
    opt = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(cfg.lr).weight_decay(cfg.weight_decay));

  data::Loader ls(src_train, pipe_s, data::LoaderOptions().batch_size_(cfg.batch_size).seed_(cfg.seed).workers_(cfg.workers).drop_last_(true));
  data::Loader lt(tgt, pipe_t, data::LoaderOptions().batch_size_(cfg.batch_size).seed_(cfg.seed + 1).workers_(cfg.workers).drop_last_(true));
  GRAFT_CHECK(ls.batches_per_epoch() > 0, "the source training split has fewer than --batch-size (", cfg.batch_size,
              ") examples");
  GRAFT_CHECK(lt.batches_per_epoch() > 0, "the target set has fewer than --batch-size (", cfg.batch_size, ") examples");
  const int64_t steps = ls.batches_per_epoch(), total = steps * cfg.epochs;
  int64_t t_epoch = 0;
  lt.start_epoch(t_epoch);

  AdaptResult res;
  auto before_s = run_eval(*model, tap, src_val, meta, cfg.workers, dev);
  auto before_t = run_eval(*model, tap, tgt_eval, meta, cfg.workers, dev);
  GRAFT_CHECK(torch::isfinite(before_s.logits).all().item<bool>(), "the source set gives NaN or infinite outputs "
              "before any training: its inputs contain NaN/inf values; fix or drop those examples");
  GRAFT_CHECK(torch::isfinite(before_t.logits).all().item<bool>(), "the target set gives NaN or infinite outputs "
              "before any training: its inputs contain NaN/inf values; fix or drop those examples");
  const int64_t ne = std::min<int64_t>(500, std::min(before_s.features.size(0), before_t.features.size(0)));
  res.pad_before = proxy_a_distance(before_s.features.narrow(0, 0, ne), before_t.features.narrow(0, 0, ne), cfg.seed);

  std::ofstream metrics(cfg.out_dir + "/metrics.jsonl", std::ios::trunc);
  GRAFT_CHECK(metrics, cfg.out_dir, "/metrics.jsonl: cannot write");
  // Checkpoint candidates: epochs within cfg.source_tolerance of the best held-out source
  // accuracy so far, thinned to those no other candidate beats on both the criterion and
  // the source accuracy (the only ones that can still be chosen).
  struct Candidate {
    int64_t epoch;
    double crit, source_val;
    std::map<std::string, at::Tensor> w;
  };
  std::vector<Candidate> cands;
  double best_src = -std::numeric_limits<double>::infinity();
  const double tol = (cfg.select == "snd" || cfg.select == "im") ? cfg.source_tolerance : 0.0;
  int64_t step_g = 0;
  const bool uses_target = cfg.method != "source-only" && !adabn;
  for (int64_t epoch = 0; epoch < cfg.epochs; ++epoch) {
    auto t0 = std::chrono::steady_clock::now();
    ls.start_epoch(epoch);
    double sum_cls = 0, sum_ad = 0, sum_dacc = 0, lambda = 0, lr = cfg.lr;
    int64_t n = 0, n_d = 0;
    while (auto bs = ls.next()) {
      auto bt = lt.next();
      if (!bt) {
        lt.start_epoch(++t_epoch);
        bt = lt.next();
      }
      const double p = static_cast<double>(step_g) / static_cast<double>(total);
      lr = cfg.schedule == "dann" ? dann_lr(p, cfg.lr) : cfg.lr;
      for (auto& g : opt->param_groups()) g.options().set_lr(lr);
      lambda = cfg.trade_off * dann_lambda(p, cfg.lambda_gamma);
      model->train(true);
      disc->train(true);
      auto xs = bs->input.to(dev), ys = bs->label.to(dev), xt = bt->input.to(dev);
      const int64_t ns = xs.size(0);
      // Source-only and AdaBN never look at the target while training: forwarding it would
      // also mix target batches into the BatchNorm statistics the classifier learns under.
      auto f = model->forward_range(uses_target ? at::cat({xs, xt}) : xs, 0, tap + 1);
      auto z = model->forward_range(f, tap + 1, L);
      auto fv = f.flatten(1);
      auto cls = torch::nn::functional::cross_entropy(z.narrow(0, 0, ns), ys);
      at::Tensor ad = torch::zeros({}, cls.options());
      const auto fs = fv.narrow(0, 0, ns), ft = fv.narrow(0, ns, fv.size(0) - ns);
      if (cfg.method == "dann") {
        auto r = domain_adversarial_loss(disc, fs, ft, lambda);
        ad = r.loss;
        sum_dacc += r.domain_acc, ++n_d;
      } else if (cfg.method == "cdan") {
        auto g = torch::softmax(z, 1).detach();
        auto h = torch::bmm(g.unsqueeze(2), fv.unsqueeze(1)).flatten(1);
        auto w = 1.0 + torch::exp(-(-(g * (g + 1e-12).log()).sum(1)));
        auto ws = w.narrow(0, 0, ns), wt = w.narrow(0, ns, w.size(0) - ns);
        w = at::cat({ws / ws.mean(), wt / wt.mean()});
        auto logits = disc->forward(grad_reverse(h, lambda));
        auto labels = at::cat({torch::zeros({ns}, logits.options()), torch::ones({fv.size(0) - ns}, logits.options())});
        ad = torch::binary_cross_entropy_with_logits(logits, labels, w);
        sum_dacc += ((logits > 0).to(labels.dtype()) == labels).to(at::kDouble).mean().item<double>(), ++n_d;
      } else if (cfg.method == "coral") {
        ad = cfg.trade_off * coral_loss(fs, ft);
      } else if (cfg.method == "mmd") {
        ad = cfg.trade_off * mmd_loss(fs, ft);
      } else if (cfg.method == "self-train" && p >= 0.3) {
        auto zt = z.narrow(0, ns, z.size(0) - ns);
        auto prob = torch::softmax(zt, 1).detach();
        auto top = prob.max(1);
        auto mask = std::get<0>(top) >= cfg.threshold;
        if (mask.any().item<bool>())
          ad = cfg.trade_off * torch::nn::functional::cross_entropy(zt.index({mask}), std::get<1>(top).index({mask}));
      }
      auto loss = cls + ad;
      double lv = loss.item<double>();
      if (!std::isfinite(lv)) {
        const bool bad_s = !torch::isfinite(xs).all().item<bool>(), bad_t = !torch::isfinite(xt).all().item<bool>();
        GRAFT_CHECK(!bad_s && !bad_t, "a ", bad_s ? "source" : "target", " batch at epoch ", epoch + 1, " step ",
                    step_g + 1, " contains NaN or infinite input values, and the loss became ", lv,
                    "; fix or drop those examples");
      }
      GRAFT_CHECK(std::isfinite(lv), "the ", cfg.method, " loss became ", lv, " at epoch ", epoch + 1, " step ",
                  step_g + 1, " (classification ", cls.item<double>(), ", adaptation ", ad.item<double>(),
                  "): the discriminator or the features diverged. Lower --lr (now ", cfg.lr, ") or --trade-off (now ",
                  cfg.trade_off, ")");
      opt->zero_grad();
      loss.backward();
      opt->step();
      sum_cls += cls.item<double>() * ns, sum_ad += ad.item<double>() * ns, n += ns;
      ++step_g;
    }
    const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t epoch_steps = step_g - epoch * steps;
    AdaptEpoch e;
    e.epoch = epoch + 1;
    e.loss_cls = sum_cls / n;
    e.loss_adapt = sum_ad / n;
    e.domain_acc = n_d ? sum_dacc / n_d : -1;
    e.lambda = lambda;
    e.lr = lr;
    auto sv = run_eval(*model, tap, src_val, meta, cfg.workers, dev);
    e.source_val_acc = (sv.logits.argmax(1) == sv.labels).to(at::kDouble).mean().item<double>();
    std::map<std::string, at::Tensor> source_stats;
    if (adabn) {
      if (target_test) {  // oracle of the same weights with the source statistics: source-only with BatchNorm
        auto tt = run_eval(*model, tap, target_test, meta, cfg.workers, dev);
        e.target_acc_source_bn = (tt.logits.argmax(1) == tt.labels).to(at::kDouble).mean().item<double>();
      }
      source_stats = snapshot(*model);
      reestimate_batchnorm(*model, tgt, pipe_t, cfg.seed + 7 + static_cast<uint64_t>(epoch), cfg.workers, dev);
    }
    auto te = run_eval(*model, tap, tgt_eval, meta, cfg.workers, dev);
    e.target_im = information_maximisation(te.logits);
    e.target_snd = soft_neighborhood_density(te.logits);
    if (target_test) {
      auto tt = run_eval(*model, tap, target_test, meta, cfg.workers, dev);
      e.target_acc = (tt.logits.argmax(1) == tt.labels).to(at::kDouble).mean().item<double>();
    }
    e.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    res.history.push_back(e);
    double crit = cfg.select == "im"           ? e.target_im
                  : cfg.select == "snd"        ? e.target_snd
                  : cfg.select == "source-val" ? e.source_val_acc
                                               : static_cast<double>(e.epoch);
    if (cfg.select == "last" || cfg.select == "source-val") {
      // one candidate: the latest epoch, or the first with the best source accuracy
      if (cands.empty() || crit > cands[0].crit) cands.assign(1, {e.epoch, crit, e.source_val_acc, snapshot(*model)});
    } else {
      best_src = std::max(best_src, e.source_val_acc);
      const double floor = best_src - tol - 1e-12;
      cands.erase(std::remove_if(cands.begin(), cands.end(), [&](const Candidate& c) { return c.source_val < floor; }),
                  cands.end());
      const bool dominated = std::any_of(cands.begin(), cands.end(), [&](const Candidate& c) {
        return c.crit >= crit && c.source_val >= e.source_val_acc;
      });
      if (e.source_val_acc >= floor && !dominated) {
        cands.erase(std::remove_if(cands.begin(), cands.end(),
                                   [&](const Candidate& c) { return crit > c.crit && e.source_val_acc >= c.source_val; }),
                    cands.end());
        cands.push_back({e.epoch, crit, e.source_val_acc, snapshot(*model)});  // adabn: with the target's statistics
      }
    }
    if (adabn) restore(*model, source_stats);  // training goes on with the source statistics
    nlohmann::json line = {{"epoch", e.epoch},       {"loss_cls", e.loss_cls},   {"loss_adapt", e.loss_adapt},
                           {"lambda", e.lambda},     {"lr", e.lr},               {"source_val_acc", e.source_val_acc},
                           {"target_im", e.target_im}, {"target_snd", e.target_snd}, {"seconds", e.seconds},
                           {"train_seconds", train_seconds}, {"steps", epoch_steps}};
    if (e.domain_acc >= 0) line["domain_acc"] = e.domain_acc;
    if (e.target_acc >= 0) line["oracle_target_acc"] = e.target_acc;
    if (e.target_acc_source_bn >= 0) line["oracle_target_acc_source_bn"] = e.target_acc_source_bn;
    metrics << line.dump() << "\n";
    metrics.flush();
    if (!cfg.quiet) {
      std::ostringstream os;
      os << std::fixed << std::setprecision(4) << cfg.method << " epoch " << e.epoch << "/" << cfg.epochs << " cls "
         << e.loss_cls << " adapt " << e.loss_adapt << std::setprecision(3) << " lambda " << e.lambda;
      if (e.domain_acc >= 0) os << " domain-acc " << std::setprecision(1) << 100 * e.domain_acc << "%";
      os << std::setprecision(2) << " source-val " << 100 * e.source_val_acc << "% IM " << std::setprecision(3)
         << e.target_im << " SND " << e.target_snd;
      if (e.target_acc >= 0) os << " (oracle target " << std::setprecision(2) << 100 * e.target_acc << "%)";
      os << " " << std::setprecision(1) << e.seconds << "s";
      std::cerr << os.str() << std::endl;
    }
  }
  auto after_s = run_eval(*model, tap, src_val, meta, cfg.workers, dev);
  if (adabn) reestimate_batchnorm(*model, tgt, pipe_t, cfg.seed + 7 + static_cast<uint64_t>(cfg.epochs), cfg.workers, dev);
  auto after_t = run_eval(*model, tap, tgt_eval, meta, cfg.workers, dev);
  res.pad_after = proxy_a_distance(after_s.features.narrow(0, 0, ne), after_t.features.narrow(0, 0, ne), cfg.seed);
  analysis::Panel pb, pa;
  pb.title = "before adaptation (PCA of " + tap_name + ")";
  pa.title = "after " + cfg.method;
  pb.xlabel = pa.xlabel = "PC 1";
  pb.ylabel = pa.ylabel = "PC 2";
  pb.series = pca_scatter(before_s.features.narrow(0, 0, ne), before_t.features.narrow(0, 0, ne));
  pa.series = pca_scatter(after_s.features.narrow(0, 0, ne), after_t.features.narrow(0, 0, ne));
  io::write_text_atomically(cfg.out_dir + "/embedding.svg", analysis::svg_chart({pb, pa}));
  // The choice: the highest criterion among the candidates left, the earliest on ties.
  GRAFT_CHECK(!cands.empty(), "adapt: no epoch could be selected (internal error)");
  const Candidate* best = &cands[0];
  for (const auto& c : cands)
    if (c.crit > best->crit || (c.crit == best->crit && c.epoch < best->epoch)) best = &c;
  res.selected_epoch = best->epoch;
  res.selected_score = best->crit;
  if (!res.history.empty() && res.history.back().target_acc >= 0) {
    res.last_target_acc = res.history.back().target_acc;
    for (const auto& e : res.history) res.oracle_best_acc = std::max(res.oracle_best_acc, e.target_acc);
    res.selected_target_acc = res.history[static_cast<size_t>(res.selected_epoch - 1)].target_acc;
  }
  restore(*model, best->w);
  res.model_path = cfg.out_dir + "/model.ckpt";
  io::save_checkpoint(res.model_path, *model, meta, nullptr, nullptr);
  nlohmann::json r = {{"config", cfg.to_json()}, {"tap", tap_name}, {"selected_epoch", res.selected_epoch},
                      {"selected_by", cfg.select}, {"selected_score", res.selected_score}, {"pad_before", res.pad_before}, {"pad_after", res.pad_after},
                      {"model", res.model_path}};
  if (res.selected_target_acc >= 0) {
    r["oracle"] = {{"note", "target test labels, never used for any choice"},
                   {"selected_target_acc", res.selected_target_acc},
                   {"last_target_acc", res.last_target_acc},
                   {"best_epoch_target_acc", res.oracle_best_acc}};
  }
  io::write_text_atomically(cfg.out_dir + "/result.json", r.dump(2) + "\n");
  return res;
}

}  // namespace graft::adapt
