// Domain adaptation building blocks, each alone.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "graft/adapt/adapt.h"
#include "graft/adapt/losses.h"
#include "graft/core/check.h"
#include "graft/io/npy.h"
#include "test_util.h"

using namespace graft;

TEST(Adapt, GradientReversalIsIdentityForwardAndNegatedScaledBackward) {
  torch::manual_seed(0);
  auto x = torch::randn({4, 3}, torch::kDouble).requires_grad_(true);
  auto w = torch::randn({4, 3}, torch::kDouble);
  const double lambda = 0.7;
  auto y = adapt::grad_reverse(x, lambda);
  EXPECT_TRUE(torch::equal(y, x));
  // f(x) = sum(w * sin(GRL(x))): a finite difference of the forward gives w*cos(x);
  // the backward pass must return -lambda times that.
  auto f = (w * torch::sin(y)).sum();
  f.backward();
  auto fd = torch::zeros_like(x);
  const double h = 1e-6;
  for (int64_t i = 0; i < x.numel(); ++i) {
    auto xp = x.detach().clone(), xm = x.detach().clone();
    xp.view(-1)[i] += h;
    xm.view(-1)[i] -= h;
    fd.view(-1)[i] = ((w * torch::sin(xp)).sum() - (w * torch::sin(xm)).sum()).item<double>() / (2 * h);
  }
  EXPECT_TRUE(torch::allclose(x.grad(), -lambda * fd, 1e-6, 1e-8));
  EXPECT_THROW(adapt::grad_reverse(x, -1), Error);
  EXPECT_THROW(adapt::grad_reverse(x, std::nan("")), Error);
}

TEST(Adapt, PaperSchedulesArePureFunctionsOfProgress) {
  EXPECT_DOUBLE_EQ(adapt::dann_lambda(0), 0.0);
  EXPECT_NEAR(adapt::dann_lambda(1), 2.0 / (1 + std::exp(-10.0)) - 1, 1e-12);
  EXPECT_NEAR(adapt::dann_lambda(0.1), 2.0 / (1 + std::exp(-1.0)) - 1, 1e-12);
  for (int i = 0; i < 10; ++i) EXPECT_LT(adapt::dann_lambda(i / 10.0), adapt::dann_lambda((i + 1) / 10.0));
  EXPECT_DOUBLE_EQ(adapt::dann_lr(0, 0.01), 0.01);
  EXPECT_NEAR(adapt::dann_lr(1, 0.01), 0.01 / std::pow(11.0, 0.75), 1e-15);
  EXPECT_DOUBLE_EQ(adapt::dann_lr(2, 0.01), adapt::dann_lr(1, 0.01));  // progress is clamped to [0, 1]
}

TEST(Adapt, DiscriminatorLearnsToTellSeparatedDomains) {
  torch::manual_seed(1);
  auto fs = torch::randn({64, 5}), ft = torch::randn({64, 5}) + 3;
  adapt::Discriminator d(5, 16, 1, 0.0);
  torch::optim::Adam opt(d->parameters(), 0.01);
  double acc = 0;
  for (int i = 0; i < 200; ++i) {
    opt.zero_grad();
    // lambda 0: no gradient reaches the features, but the discriminator still learns
    auto r = adapt::domain_adversarial_loss(d, fs, ft, 0.0);
    r.loss.backward();
    opt.step();
    acc = r.domain_acc.item<double>();
  }
  EXPECT_GT(acc, 0.95);
  // Through the GRL the features receive the reversed gradient of the domain loss.
  auto f = fs.clone().requires_grad_(true);
  auto r1 = adapt::domain_adversarial_loss(d, f, ft, 1.0);
  r1.loss.backward();
  auto g_rev = f.grad().clone();
  f.grad().zero_();
  d->eval();
  auto logits = d->forward(torch::cat({f, ft}));
  auto labels = torch::cat({torch::zeros({64}), torch::ones({64})});
  torch::binary_cross_entropy_with_logits(logits, labels).backward();
  EXPECT_TRUE(torch::allclose(g_rev, -f.grad(), 1e-5, 1e-7));
  EXPECT_THROW(adapt::domain_adversarial_loss(d, fs, torch::randn({4, 3}), 1.0), Error);
}

TEST(Adapt, DiscrepanciesAndProxyADistance) {
  torch::manual_seed(2);
  auto a = torch::randn({200, 4}), b = torch::randn({200, 4}), far = torch::randn({200, 4}) * 3 + 2;
  EXPECT_LT(adapt::coral_loss(a, b).item<double>(), adapt::coral_loss(a, far).item<double>() / 10);
  EXPECT_NEAR(adapt::coral_loss(a, a).item<double>(), 0.0, 1e-9);
  EXPECT_LT(adapt::mmd_loss(a, b).item<double>(), adapt::mmd_loss(a, far).item<double>() / 10);
  EXPECT_NEAR(adapt::mmd_loss(a, a).item<double>(), 0.0, 1e-6);
  auto uniform = torch::zeros({3, 4});
  EXPECT_NEAR(adapt::entropy(uniform).item<double>(), std::log(4.0), 1e-6);
  EXPECT_LT(adapt::proxy_a_distance(a, b), 0.4);
  EXPECT_GT(adapt::proxy_a_distance(a, torch::randn({200, 4}) + 4), 1.8);  // linearly separable domains
  EXPECT_THROW(adapt::coral_loss(a, torch::randn({10, 3})), Error);
}

TEST(Adapt, CliAdaptsMoonsAndRejectsBadInput) {
  test::TempDir d;
  ASSERT_EQ(test::cli("data make moons --n 200 --out " + (d / "s")).code, 0);
  ASSERT_EQ(test::cli("data make moons --n 200 --rotate 30 --out " + (d / "t")).code, 0);
  auto src = "npy:" + (d / "s/train_x.npy") + "," + (d / "s/train_y.npy");
  auto tgt = "npy:" + (d / "t/train_x.npy") + "," + (d / "t/train_y.npy");  // labelled: they must be ignored
  auto tst = "npy:" + (d / "t/test_x.npy") + "," + (d / "t/test_y.npy");
  auto base = "adapt --model mlp:16 --source " + src + " --target " + tgt + " --target-test " + tst +
              " --batch-size 32 --epochs 4 --preprocess '' --quiet ";
  auto r = test::cli(base + "--method dann --seeds 1,2 --out " + (d / "dann"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("adaptation ignores them"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("dann over 2 seed(s)"), std::string::npos) << r.out;
  std::ifstream js(d / "dann/seed-1/result.json");
  auto j = nlohmann::json::parse(js);
  EXPECT_EQ(j["selected_by"], "im");
  EXPECT_TRUE(j["oracle"].contains("selected_target_acc"));
  EXPECT_TRUE(std::filesystem::exists(d / "dann/seed-1/embedding.svg"));
  EXPECT_TRUE(std::filesystem::exists(d / "dann/seed-2/model.ckpt"));
  // every line of the metrics has the domain accuracy and lambda of DANN
  std::ifstream m(d / "dann/seed-1/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(m, line)) {
    auto e = nlohmann::json::parse(line);
    EXPECT_TRUE(e.contains("domain_acc") && e.contains("lambda")) << line;
    ++lines;
  }
  EXPECT_EQ(lines, 4);
  for (std::string method : {"source-only", "cdan", "coral", "mmd", "self-train"}) {
    auto p = test::cli(base + "--method " + method + " --out " + (d / method));
    EXPECT_EQ(p.code, 0) << method << ": " << p.out;
  }
  auto unknown = test::cli(base + "--method dan --out " + (d / "x"));
  EXPECT_NE(unknown.code, 0);
  EXPECT_NE(unknown.out.find("--method 'dan'"), std::string::npos) << unknown.out;
  auto thr = test::cli(base + "--method self-train --threshold 1.5 --out " + (d / "x"));
  EXPECT_NE(thr.out.find("--threshold"), std::string::npos) << thr.out;
  auto lam = test::cli(base + "--trade-off -1 --out " + (d / "x"));
  EXPECT_NE(lam.out.find("--trade-off"), std::string::npos) << lam.out;
  auto empty = test::cli("adapt --model mlp:16 --source " + src + " --target " + tgt + "@classes=0@limit=1 " +
                         "--batch-size 32 --epochs 1 --preprocess '' --out " + (d / "x"));
  EXPECT_NE(empty.code, 0);
  EXPECT_NE(empty.out.find("fewer than --batch-size"), std::string::npos) << empty.out;
  // shapes that differ
  io::write_npy(d / "wide.npy", at::rand({64, 3}));
  auto shape = test::cli("adapt --model mlp:16 --source " + src + " --target npy:" + (d / "wide.npy") +
                         " --batch-size 32 --epochs 1 --preprocess '' --out " + (d / "x"));
  EXPECT_NE(shape.code, 0);
  EXPECT_NE(shape.out.find("source examples have shape"), std::string::npos) << shape.out;
  EXPECT_FALSE(std::filesystem::exists(d / "x/seed-1/model.ckpt"));
}

TEST(Adapt, SoftNeighborhoodDensityOfCleanClusters) {
  // One-hot predictions, 4 classes of 10: each example's neighbours are the 9 others of
  // its class (similarity 1/tau) against exp(-1/tau)-weighted strangers, so the density
  // is the entropy of a near-uniform choice among 9: log 9.
  auto y = torch::arange(40) % 4;
  auto logits = torch::one_hot(y, 4).to(torch::kFloat) * 50;
  EXPECT_NEAR(adapt::soft_neighborhood_density(logits), std::log(9.0), 1e-3);
  // Invariant to the order of the examples.
  auto perm = torch::randperm(40);
  EXPECT_NEAR(adapt::soft_neighborhood_density(logits.index_select(0, perm)),
              adapt::soft_neighborhood_density(logits), 1e-9);
  // Clusters of other sizes: each example's entropy is log(size of its cluster - 1). Moving 5
  // of class 0's examples to class 1 gives clusters of 5, 15, 10 and 10; SND rises, since it
  // rewards dense (large) neighbourhoods, the bias its authors point out.
  auto split = logits.clone();
  split.index_put_({torch::arange(0, 40, 8), 0}, 0.0);
  split.index_put_({torch::arange(0, 40, 8), 1}, 50.0);
  const double want = (5 * std::log(4.0) + 15 * std::log(14.0) + 20 * std::log(9.0)) / 40;
  EXPECT_NEAR(adapt::soft_neighborhood_density(split), want, 1e-3);
  EXPECT_THROW(adapt::soft_neighborhood_density(torch::randn({1, 3})), Error);
}

namespace {
/// Writes npy:X,Y specs for a source moons set and a target = source shifted by `shift`
/// (a covariate shift that BatchNorm's re-centring undoes exactly in the first layer).
std::pair<std::string, std::string> shifted_moons(const test::TempDir& d, double shift, std::string* test_spec) {
  EXPECT_EQ(test::cli("data make moons --n 400 --noise 0.1 --out " + (d / "m")).code, 0);
  auto x = io::read_npy(d / "m/train_x.npy");
  auto xt = io::read_npy(d / "m/test_x.npy");
  io::write_npy(d / "shift_x.npy", x + shift);
  io::write_npy(d / "shift_test_x.npy", xt + shift);
  *test_spec = "npy:" + (d / "shift_test_x.npy") + "," + (d / "m/test_y.npy");
  return {"npy:" + (d / "m/train_x.npy") + "," + (d / "m/train_y.npy"), "npy:" + (d / "shift_x.npy")};
}
}  // namespace

TEST(Adapt, AdaBNUndoesAShiftThatDefeatsTheSourceStatistics) {
  test::TempDir d;
  std::string tst;
  auto [src, tgt] = shifted_moons(d, 2.5, &tst);
  auto base = "adapt --model mlp_bn:32,32 --source " + src + " --target " + tgt + " --target-test " + tst +
              " --batch-size 32 --epochs 6 --lr 0.05 --preprocess '' --quiet --seeds 1 ";
  auto r = test::cli(base + "--method adabn --out " + (d / "adabn"));
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream m(d / "adabn/seed-1/metrics.jsonl");
  std::string line, last;
  while (std::getline(m, line)) last = line;
  auto e = nlohmann::json::parse(last);
  // the same weights: with the source's statistics the shifted target is mostly lost,
  // with the target's own statistics it is classified like the source.
  EXPECT_LT(e["oracle_target_acc_source_bn"].get<double>(), 0.8) << last;
  EXPECT_GT(e["oracle_target_acc"].get<double>(), 0.9) << last;
  EXPECT_GT(e["source_val_acc"].get<double>(), 0.9) << last;
  // The saved model carries the target statistics: graft eval on the shifted test set agrees.
  auto ev = test::cli("eval --model " + (d / "adabn/seed-1/model.ckpt") + " --data " + tst);
  ASSERT_EQ(ev.code, 0) << ev.out;
  // A model without BatchNorm cannot do AdaBN.
  auto nobn = test::cli("adapt --model mlp:16 --method adabn --source " + src + " --target " + tgt +
                        " --batch-size 32 --epochs 1 --preprocess '' --out " + (d / "x"));
  EXPECT_NE(nobn.code, 0);
  EXPECT_NE(nobn.out.find("no BatchNorm"), std::string::npos) << nobn.out;
}

TEST(Adapt, TradeOffChosenByTheUnsupervisedScoreAndNaNStopsTheRun) {
  test::TempDir d;
  ASSERT_EQ(test::cli("data make moons --n 200 --out " + (d / "s")).code, 0);
  ASSERT_EQ(test::cli("data make moons --n 200 --rotate 30 --out " + (d / "t")).code, 0);
  auto src = "npy:" + (d / "s/train_x.npy") + "," + (d / "s/train_y.npy");
  auto tgt = "npy:" + (d / "t/train_x.npy");
  auto base = "adapt --model mlp:16 --source " + src + " --target " + tgt +
              " --batch-size 32 --epochs 2 --preprocess '' --quiet --method dann ";
  auto r = test::cli(base + "--trade-off 0.1,1 --seeds 3 --out " + (d / "grid"));
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream js(d / "grid/summary.json");
  auto summary = nlohmann::json::parse(js);
  auto run = summary["runs"][0];
  ASSERT_EQ(summary["grid"].size(), 2u);
  double best = -1e300, best_v = 0;
  for (auto& c : summary["grid"]) {
    EXPECT_TRUE(std::filesystem::exists(c["dir"].get<std::string>() + "/model.ckpt"));
    if (c["score"].get<double>() > best) best = c["score"], best_v = c["trade_off"];
  }
  EXPECT_EQ(run["trade_off"].get<double>(), best_v);
  EXPECT_EQ(run["model"].get<std::string>(), (d / "grid/seed-3/trade-off-") + (best_v == 1 ? "1" : "0.1") + "/model.ckpt");
  auto last = test::cli(base + "--trade-off 0.1,1 --select last --out " + (d / "x"));
  EXPECT_NE(last.code, 0);
  EXPECT_NE(last.out.find("--select last cannot choose"), std::string::npos) << last.out;
  // A diverging run: a learning rate and adversarial weight far too large blow the
  // discriminator and features up; the run stops with a message naming the loss and the fix.
  auto div = test::cli(base + "--lr 10 --schedule constant --trade-off 100 --out " + (d / "nan"));
  EXPECT_NE(div.code, 0);
  EXPECT_NE(div.out.find("loss became"), std::string::npos) << div.out;
  EXPECT_NE(div.out.find("Lower --lr"), std::string::npos) << div.out;
  EXPECT_FALSE(std::filesystem::exists(d / "nan/seed-1/model.ckpt"));
  // A target example with NaN inputs is named as such, before any training.
  auto x = io::read_npy(d / "t/train_x.npy");
  x.index_put_({5, 0}, std::numeric_limits<float>::quiet_NaN());
  io::write_npy(d / "nan_x.npy", x);
  auto nan = test::cli("adapt --model mlp:16 --source " + src + " --target npy:" + (d / "nan_x.npy") +
                       " --batch-size 32 --epochs 2 --preprocess '' --quiet --method dann --out " + (d / "nanin"));
  EXPECT_NE(nan.code, 0);
  EXPECT_NE(nan.out.find("nan_x.npy"), std::string::npos) << nan.out;
  EXPECT_NE(nan.out.find("NaN or infinite"), std::string::npos) << nan.out;
}
