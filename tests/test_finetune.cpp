// Fine-tuning: model surgery, layer policies, frozen-for-real, the frozen-prefix cache,
// L2-SP, early stopping, learning curves and bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <torch/torch.h>

#include <fstream>
#include <numeric>

#include "graft/core/check.h"
#include "graft/data/dataset.h"
#include "graft/data/readers.h"
#include "graft/io/checkpoint.h"
#include "graft/models/compose.h"
#include "graft/models/zoo.h"
#include "graft/train/policy.h"
#include "graft/train/trainer.h"
#include "test_util.h"

using namespace graft;

namespace {

std::map<std::string, at::Tensor> snapshot(const models::Backbone& m) {
  std::map<std::string, at::Tensor> s;
  for (auto& [n, p] : m.named_parameters()) s[n] = p.detach().clone();
  for (auto& [n, b] : m.named_buffers()) s[n] = b.detach().clone();
  return s;
}

bool same(const at::Tensor& a, const at::Tensor& b) { return torch::equal(a, b); }

struct Toy {
  test::TempDir dir;
  data::DatasetPtr train, val;
  io::ModelMeta meta;
  models::BackbonePtr model;  // resnet8 cut after layer2 + linear head (has BatchNorm)
  explicit Toy(int64_t n = 64) {
    test::write_toy_idx(dir / "x", dir / "y", n, 4, 1);
    test::write_toy_idx(dir / "vx", dir / "vy", 32, 4, 2);
    train = data::load_idx_dataset(dir / "x", dir / "y", {}, "toy");
    val = data::load_idx_dataset(dir / "vx", dir / "vy", {}, "toy-val");
    auto base = models::create_model("resnet8", {1, 8, 8}, 10, 3);
    model = models::cut_and_add_head(base, "layer2", 4, {1, 8, 8}, {}, 4);
    io::ModelMeta bm{"resnet8", {1, 8, 8}, std::vector<std::string>(10, "c"), "normalize=0.5:0.5", {}};
    meta = {"cut", {1, 8, 8}, train->class_names(), "normalize=0.5:0.5",
            {{"base", bm.to_json()}, {"cut", models::as_cut(*model)->config()}}};
  }
  train::TrainConfig cfg(const std::string& out) const {
    train::TrainConfig c;
    c.epochs = 2;
    c.batch_size = 16;
    c.optimizer = "sgd";
    c.lr = 0.05;
    c.workers = 0;
    c.quiet = true;
    c.out_dir = dir / out;
    return c;
  }
};

}  // namespace

TEST(Finetune, CutKeepsPretrainedLayersAndAddsAHead) {
  auto base = models::create_model("dann_mnist", {1, 28, 28}, 10, 1);
  auto m = models::cut_and_add_head(base, "fc1", 5, {1, 28, 28}, {}, 2);
  EXPECT_EQ(m->layer_names().back(), "head");
  EXPECT_EQ(m->num_layers(), base->layer_index("fc1") + 2);
  auto x = torch::rand({3, 1, 28, 28});
  EXPECT_EQ(m->forward(x).sizes(), at::IntArrayRef({3, 5}));
  torch::NoGradGuard ng;
  // the kept layers are the base's own (same tensors, same outputs)
  auto i = base->layer_index("fc1");
  EXPECT_TRUE(torch::equal(m->forward_range(x, 0, i + 1), base->forward_range(x, 0, i + 1)));
  for (auto& [n, p] : m->named_parameters()) EXPECT_TRUE(n.rfind("head.", 0) == 0 || n.rfind("fc2", 0) != 0) << n;
  models::HeadSpec mlp;
  mlp.kind = "mlp";
  mlp.hidden = 32;
  auto m2 = models::cut_and_add_head(base, "pool2", 3, {1, 28, 28}, mlp, 2);
  EXPECT_EQ(m2->forward(x).sizes(), at::IntArrayRef({3, 3}));
  auto e = test::error_of([&] { models::cut_and_add_head(base, "fc9", 3, {1, 28, 28}, {}, 0); });
  EXPECT_NE(e.find("did you mean"), std::string::npos) << e;
  EXPECT_NE(test::error_of([&] { models::cut_and_add_head(base, "fc1", 1, {1, 28, 28}, {}, 0); }).find("2 classes"),
            std::string::npos);
  mlp.kind = "deep";
  EXPECT_NE(test::error_of([&] { mlp.validate(); }).find("--head 'deep'"), std::string::npos);
}

TEST(Finetune, CutModelsRoundTripThroughCheckpoints) {
  Toy t;
  t.meta.arch_config["cut"] = models::as_cut(*t.model)->config();
  io::save_checkpoint(t.dir / "m.ckpt", *t.model, t.meta, nullptr, nullptr);
  auto ck = io::load_checkpoint(t.dir / "m.ckpt");
  ASSERT_TRUE(models::as_cut(*ck.model));
  auto x = torch::rand({2, 1, 8, 8});
  t.model->train(false);
  ck.model->train(false);
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::equal(t.model->forward(x), ck.model->forward(x)));
  // and with a TorchScript base
  auto ts = models::load_torchscript(test::fixtures() + "/resnet_tiny.pt");
  auto cut = models::cut_and_add_head(ts, "layer2", 3, {3, 32, 32}, {}, 1);
  io::ModelMeta bm{"torchscript", {3, 32, 32}, std::vector<std::string>(10, "c"), "", {}};
  io::ModelMeta cm{"cut", {3, 32, 32}, {"a", "b", "c"}, "", {{"base", bm.to_json()},
                                                              {"cut", models::as_cut(*cut)->config()}}};
  {  // trained weights and statistics, unlike the fixture file's
    torch::NoGradGuard g;
    for (auto& [n, p] : cut->named_parameters()) p.add_(torch::randn_like(p) * 0.1);
    for (auto& [n, b] : cut->named_buffers())
      if (b.is_floating_point()) b.add_(torch::rand_like(b));
  }
  io::save_checkpoint(t.dir / "ts.ckpt", *cut, cm, nullptr, nullptr);
  auto back = io::load_checkpoint(t.dir / "ts.ckpt");
  auto xi = torch::rand({2, 3, 32, 32});
  cut->train(false);
  back.model->train(false);
  EXPECT_TRUE(torch::equal(cut->forward(xi), back.model->forward(xi)));
  // Every tensor back with memory of its own, and the weights stored once: the base's
  // TorchScript code travels without them.
  int64_t bytes = 0;
  auto theirs = back.model->named_parameters();
  auto bufs = back.model->named_buffers();
  theirs.insert(theirs.end(), bufs.begin(), bufs.end());
  auto ours = cut->named_parameters();
  auto ob = cut->named_buffers();
  ours.insert(ours.end(), ob.begin(), ob.end());
  ASSERT_EQ(theirs.size(), ours.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(theirs[i].first, ours[i].first);
    EXPECT_TRUE(torch::equal(theirs[i].second, ours[i].second)) << ours[i].first;
    EXPECT_GE(theirs[i].second.storage().nbytes(), theirs[i].second.numel() * theirs[i].second.element_size());
    bytes += ours[i].second.numel() * ours[i].second.element_size();
  }
  const auto size = static_cast<int64_t>(std::filesystem::file_size(t.dir / "ts.ckpt"));
  EXPECT_LT(size, bytes + bytes / 4 + 64 * 1024) << "checkpoint of " << size << " bytes for " << bytes << " bytes of tensors";
}

TEST(Finetune, LayerPoliciesResolveToMultipliers) {
  auto base = models::create_model("dann_mnist", {1, 28, 28}, 10, 1);
  auto m = models::cut_and_add_head(base, "fc2", 5, {1, 28, 28}, {}, 2);
  // layers: conv1 pool1 conv2 pool2 flatten fc1 fc2 head
  auto idx = [&](const std::string& n) { return m->layer_index(n); };
  train::LayerPolicy p;
  auto mult = train::resolve_lr_mults(*m, p);
  for (double v : mult) EXPECT_EQ(v, 1.0);
  p.layer_decay = 0.5;
  mult = train::resolve_lr_mults(*m, p);
  EXPECT_EQ(mult[idx("head")], 1.0);
  EXPECT_EQ(mult[idx("fc2")], 0.5);
  EXPECT_EQ(mult[idx("fc1")], 0.25);
  EXPECT_EQ(mult[idx("conv2")], 0.125);
  EXPECT_EQ(mult[idx("conv1")], 0.0625);
  p.layer_decay = 1;
  p.lr_mult = "conv*=0,fc1=0.1,nothing*=3";
  std::vector<std::string> warnings;
  mult = train::resolve_lr_mults(*m, p, [&](const std::string& w) { warnings.push_back(w); });
  EXPECT_EQ(mult[idx("conv1")], 0.0);
  EXPECT_EQ(mult[idx("conv2")], 0.0);
  EXPECT_EQ(mult[idx("fc1")], 0.1);
  EXPECT_EQ(mult[idx("head")], 1.0);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("'nothing*=3'"), std::string::npos) << warnings[0];
  p.lr_mult = "";
  p.freeze_through = "fc1";
  mult = train::resolve_lr_mults(*m, p);
  for (size_t i = 0; i <= idx("fc1"); ++i) EXPECT_EQ(mult[i], 0.0);
  EXPECT_EQ(mult[idx("fc2")], 1.0);
  p.freeze_through = "head";
  EXPECT_NE(test::error_of([&] { train::resolve_lr_mults(*m, p); }).find("nothing would train"), std::string::npos);
  p.freeze_through = "fc3";
  EXPECT_NE(test::error_of([&] { train::resolve_lr_mults(*m, p); }).find("did you mean"), std::string::npos);
  p.freeze_through = "";
  p.lr_mult = "conv1=-1";
  EXPECT_NE(test::error_of([&] { train::resolve_lr_mults(*m, p); }).find(">= 0"), std::string::npos);
  p.lr_mult = "conv1";
  EXPECT_NE(test::error_of([&] { train::resolve_lr_mults(*m, p); }).find("GLOB=MULT"), std::string::npos);
  p.lr_mult = "conv1=abc";
  EXPECT_NE(test::error_of([&] { train::resolve_lr_mults(*m, p); }).find("not a number"), std::string::npos);
}

TEST(Finetune, FrozenIsFrozenForReal) {
  Toy t;
  train::LayerPolicy p;
  p.freeze_through = "layer1";
  auto cfg = t.cfg("frozen");
  cfg.layer_lr_mult = train::resolve_lr_mults(*t.model, p);
  cfg.cache = "off";  // the uncached path: prefix run without autograd
  auto before = snapshot(*t.model);
  train::Trainer tr(t.model, t.meta, cfg);
  auto r = tr.fit(t.train, nullptr, nullptr);
  int64_t frozen_elems = 0, total = 0;
  const size_t k = t.model->layer_index("layer1");
  for (auto& [n, prm] : t.model->named_parameters()) {
    total += prm.numel();
    size_t layer = t.model->layer_index(models::layer_of_param(n));
    if (layer <= k) {
      frozen_elems += prm.numel();
      EXPECT_FALSE(prm.requires_grad()) << n;
      EXPECT_FALSE(prm.grad().defined()) << n << ": a gradient was computed for a frozen parameter";
      EXPECT_TRUE(same(prm, before[n])) << n << " changed although frozen";
    } else {
      EXPECT_FALSE(same(prm, before[n])) << n << " did not train";
    }
  }
  EXPECT_GT(frozen_elems, 0);
  EXPECT_EQ(r.optimized_params, total - frozen_elems);  // frozen parameters are not in the optimizer
  // BatchNorm statistics of frozen layers are kept; those of trained layers move.
  for (auto& [n, b] : t.model->named_buffers()) {
    if (n.find("running_mean") == std::string::npos) continue;
    size_t layer = t.model->layer_index(models::layer_of_param(n));
    if (layer <= k) EXPECT_TRUE(same(b, before[n])) << n;
    else EXPECT_FALSE(same(b, before[n])) << n;
  }
  // --adapt-bn lets the frozen layers' statistics follow the data, weights still frozen.
  Toy t2;
  auto cfg2 = t2.cfg("adapt");
  cfg2.layer_lr_mult = train::resolve_lr_mults(*t2.model, p);
  cfg2.adapt_frozen_bn = true;
  auto before2 = snapshot(*t2.model);
  train::Trainer(t2.model, t2.meta, cfg2).fit(t2.train, nullptr, nullptr);
  bool moved = false;
  for (auto& [n, b] : t2.model->named_buffers())
    if (n.rfind("layer1", 0) == 0 && n.find("running_mean") != std::string::npos) moved |= !same(b, before2[n]);
  EXPECT_TRUE(moved);
  for (auto& [n, prm] : t2.model->named_parameters())
    if (n.rfind("layer1", 0) == 0) {
      EXPECT_TRUE(same(prm, before2[n])) << n;
    }
}

TEST(Finetune, CachedPrefixGivesTheSameResultAsRecomputing) {
  train::LayerPolicy p;
  p.freeze_through = "layer2";
  std::map<std::string, std::map<std::string, at::Tensor>> w;
  std::map<std::string, std::string> how;
  for (std::string mode : {"off", "memory", "disk"}) {
    Toy t;
    auto cfg = t.cfg("cache-" + mode);
    cfg.epochs = 3;
    cfg.layer_lr_mult = train::resolve_lr_mults(*t.model, p);
    cfg.cache = mode;
    auto r = train::Trainer(t.model, t.meta, cfg).fit(t.train, nullptr, nullptr);
    how[mode] = r.cache;
    w[mode] = snapshot(*t.model);
    EXPECT_FALSE(std::filesystem::exists(cfg.out_dir + "/prefix_cache.tmp.f32"));
  }
  EXPECT_EQ(how["off"], "");
  EXPECT_EQ(how["memory"], "memory");
  EXPECT_EQ(how["disk"], "disk");
  for (auto& [n, v] : w["off"]) {
    EXPECT_TRUE(torch::allclose(v.to(at::kFloat), w["memory"][n].to(at::kFloat), 1e-5, 1e-6)) << n;
    EXPECT_TRUE(torch::allclose(v.to(at::kFloat), w["disk"][n].to(at::kFloat), 1e-5, 1e-6)) << n;
  }
  // With augmentation there is nothing to cache: it is skipped, with a reason.
  Toy t;
  auto cfg = t.cfg("aug");
  cfg.layer_lr_mult = train::resolve_lr_mults(*t.model, p);
  cfg.augment = "hflip";
  EXPECT_EQ(train::Trainer(t.model, t.meta, cfg).fit(t.train, nullptr, nullptr).cache, "");
}

TEST(Finetune, GradualUnfreezingAndL2SP) {
  Toy t;
  auto cfg = t.cfg("gradual");
  cfg.unfreeze_every = 1;  // epoch 1: head; epoch 2: + layer2; layer1 and stem never
  auto before = snapshot(*t.model);
  train::Trainer(t.model, t.meta, cfg).fit(t.train, nullptr, nullptr);
  for (auto& [n, prm] : t.model->named_parameters()) {
    auto layer = models::layer_of_param(n);
    if (layer == "head" || layer == "layer2") EXPECT_FALSE(same(prm, before[n])) << n;
    else EXPECT_TRUE(same(prm, before[n])) << n;
  }
  // L2-SP keeps the pretrained layers near their start; plain training moves them further.
  auto drift = [](double alpha) {
    Toy t;
    auto cfg = t.cfg(alpha > 0 ? "l2sp" : "plain");
    cfg.epochs = 3;
    cfg.l2sp_alpha = alpha;
    cfg.pretrained_layers = static_cast<int64_t>(models::as_cut(*t.model)->kept_layers());
    auto before = snapshot(*t.model);
    train::Trainer(t.model, t.meta, cfg).fit(t.train, nullptr, nullptr);
    double d = 0;
    for (auto& [n, prm] : t.model->named_parameters())
      if (n.rfind("head", 0) != 0) d += (prm - before[n]).pow(2).sum().item<double>();
    return d;
  };
  EXPECT_LT(drift(50.0), 0.5 * drift(0.0));
}

TEST(Finetune, EarlyStoppingRestoresTheBestEpoch) {
  // Deliberate overfitting: training labels are noise, so validation loss soon rises.
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 48, 4, 1);
  test::write_toy_idx(d / "vx", d / "vy", 48, 4, 2);
  auto clean = data::load_idx_dataset(d / "x", d / "y", {}, "toy");
  at::manual_seed(7);
  auto noisy_y = at::randint(0, 4, {48}, at::kLong);
  std::vector<int64_t> all(48);
  std::iota(all.begin(), all.end(), 0);
  auto x = clean->get_batch(all).input;
  auto train_set = std::make_shared<data::TensorDataset>(x, noisy_y, clean->class_names(), "noisy");
  auto val = data::load_idx_dataset(d / "vx", d / "vy", {}, "val");
  auto model = models::create_model("mlp:64", {1, 8, 8}, 4, 1);
  io::ModelMeta meta{"mlp:64", {1, 8, 8}, clean->class_names(), "normalize=0.5:0.5", {}};
  train::TrainConfig cfg;
  cfg.epochs = 60;
  cfg.batch_size = 8;
  cfg.optimizer = "adam";
  cfg.lr = 0.01;
  cfg.schedule = "constant";
  cfg.workers = 0;
  cfg.quiet = true;
  cfg.patience = 3;
  cfg.out_dir = d / "run";
  auto r = train::Trainer(model, meta, cfg).fit(train_set, val, nullptr);
  ASSERT_TRUE(r.stopped_early);
  ASSERT_LT(r.history.size(), 60u);
  // It stopped `patience` epochs after the best, and the best has the lowest validation loss.
  EXPECT_EQ(static_cast<int64_t>(r.history.size()), r.best_epoch + cfg.patience + 1);
  double best = 1e9;
  int64_t arg = 0;
  for (const auto& h : r.history)
    if (h.val_loss < best) best = h.val_loss, arg = h.epoch;
  EXPECT_EQ(arg, r.best_epoch);
  // The model now holds the best epoch's weights.
  auto ev = analysis::evaluate(*model, val, train::input_pipeline(meta, val->input_shape()), 4,
                               analysis::EvalOptions().workers_(0));
  EXPECT_NEAR(ev.loss, best, 1e-4);
  EXPECT_LT(ev.loss, r.history.back().val_loss);
  EXPECT_TRUE(std::filesystem::exists(d / "run/curves.svg"));
  std::ifstream svg(d / "run/curves.svg");
  std::string text((std::istreambuf_iterator<char>(svg)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("<svg"), std::string::npos);
  EXPECT_NE(text.find("validation"), std::string::npos);
  // patience without a validation set is refused
  cfg.out_dir = d / "run2";
  EXPECT_NE(test::error_of([&] { train::Trainer(model, meta, cfg).fit(train_set, nullptr, nullptr); })
                .find("--patience needs a validation set"),
            std::string::npos);
}

TEST(Finetune, CliFinetunesAndRejectsBadInput) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 80, 4, 1);
  auto spec = "idx:" + (d / "x") + "," + (d / "y");
  ASSERT_EQ(test::cli("train --model mlp:16,8 --data " + spec + " --epochs 1 --out " + (d / "src") + " --quiet").code, 0);
  auto src = d / "src/model.ckpt";
  auto base = "finetune --model " + src + " --data " + spec + "@classes=0-2 --epochs 3 --quiet ";
  auto r = test::cli(base + "--cut fc2 --freeze-through fc1 --out " + (d / "ft") + " --test " + spec + "@classes=0-2");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("frozen: flatten,fc1"), std::string::npos) << r.out;
  std::ifstream res(d / "ft/result.json");
  EXPECT_EQ(nlohmann::json::parse(res).value("prefix_cache", ""), "memory");  // the frozen prefix was cached
  EXPECT_TRUE(std::filesystem::exists(d / "ft/curves.svg"));
  // the result is a normal graft checkpoint: eval and predict take it
  EXPECT_EQ(test::cli("eval --model " + (d / "ft/model.ckpt") + " --data " + spec + "@classes=0-2").code, 0);
  // resume continues the same run; resuming into another model's folder is refused
  EXPECT_EQ(test::cli(base + "--cut fc2 --freeze-through fc1 --out " + (d / "ft") + " --resume").code, 0);
  auto other = test::cli(base + "--cut fc1 --out " + (d / "ft") + " --resume");
  EXPECT_NE(other.code, 0);
  EXPECT_NE(other.out.find("another model"), std::string::npos) << other.out;

  auto bad_cut = test::cli(base + "--cut fc7 --out " + (d / "b1"));
  EXPECT_NE(bad_cut.code, 0);
  EXPECT_NE(bad_cut.out.find("did you mean"), std::string::npos) << bad_cut.out;
  auto warn = test::cli(base + "--lr-mult 'conv*=0' --out " + (d / "b2"));
  EXPECT_EQ(warn.code, 0) << warn.out;
  EXPECT_NE(warn.out.find("warning: --lr-mult rule 'conv*=0' matches no layer"), std::string::npos) << warn.out;
  auto all_frozen = test::cli(base + "--freeze-through head --out " + (d / "b3"));
  EXPECT_NE(all_frozen.code, 0);
  EXPECT_NE(all_frozen.out.find("nothing would train"), std::string::npos) << all_frozen.out;
  auto one_class = test::cli("finetune --model " + src + " --data " + spec + "@classes=1 --out " + (d / "b4"));
  EXPECT_NE(one_class.code, 0);
  EXPECT_NE(one_class.out.find("at least 2"), std::string::npos) << one_class.out;
  for (std::string lr : {"0", "-0.1", "nan"}) {
    auto bad_lr = test::cli(base + "--lr " + lr + " --out " + (d / "b5"));
    EXPECT_NE(bad_lr.code, 0) << lr;
    EXPECT_NE(bad_lr.out.find("--lr"), std::string::npos) << bad_lr.out;
  }
  EXPECT_FALSE(std::filesystem::exists(d / "b5/model.ckpt"));
}
