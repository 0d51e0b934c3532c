// Domain adaptation building blocks, each alone.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>

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
    acc = r.domain_acc;
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
