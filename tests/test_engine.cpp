// The one training engine seen from adaptation: the method registry, the label-free
// checkpoint selector, the seeds x trade-off sweep, the newer methods' losses, and exact
// resume of `graft adapt` after kill -9.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "graft/adapt/adapt.h"
#include "graft/adapt/method.h"
#include "graft/adapt/objectives.h"
#include "graft/adapt/select.h"
#include "graft/core/check.h"
#include "graft/core/stats.h"
#include "test_util.h"

using namespace graft;

namespace {
const double kNaN = std::nan("");

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST(Selector, ImChoosesWithinTheSourceBandAndDropsWhatCanNoLongerWin) {
  adapt::CheckpointSelector s("im", 0.02);
  EXPECT_EQ(s.best_epoch(), 0);
  EXPECT_TRUE(s.offer(1, 0.5, 0.50).keep);
  auto d2 = s.offer(2, 0.9, 0.60);  // better on both counts: epoch 1 can no longer win
  EXPECT_TRUE(d2.keep);
  EXPECT_EQ(d2.drop, std::vector<int64_t>{1});
  auto d3 = s.offer(3, 0.7, 0.95);  // raises the band's floor to 0.93: epoch 2 falls out
  EXPECT_TRUE(d3.keep);
  EXPECT_EQ(d3.drop, std::vector<int64_t>{2});
  EXPECT_EQ(s.best_epoch(), 3);
  auto d4 = s.offer(4, 0.8, 0.94);  // inside the band, higher score: both 3 and 4 stay
  EXPECT_TRUE(d4.keep);
  EXPECT_TRUE(d4.drop.empty());
  EXPECT_EQ(s.best_epoch(), 4);
  auto d5 = s.offer(5, 0.6, 0.96);  // floor 0.94: epoch 4 sits exactly on the edge and stays
  EXPECT_TRUE(d5.keep);
  EXPECT_TRUE(d5.drop.empty());
  EXPECT_EQ(s.best_epoch(), 4);
  EXPECT_DOUBLE_EQ(s.best_score(), 0.8);
  // Floor just above 0.94: epoch 4 is out, 3 (0.95) stays; 5 is beaten on both counts.
  auto d6 = s.offer(6, 0.65, 0.9601);
  EXPECT_EQ(d6.drop, (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(s.best_epoch(), 3);
  auto d7 = s.offer(7, 0.1, 0.5);  // far below the band: never kept
  EXPECT_FALSE(d7.keep);
  // The state survives a checkpoint: a restored selector decides as the original does.
  adapt::CheckpointSelector r("im", 0.02);
  r.restore(s.state());
  EXPECT_EQ(r.best_epoch(), s.best_epoch());
  auto a = s.offer(8, 0.99, 0.97), b = r.offer(8, 0.99, 0.97);
  EXPECT_EQ(a.keep, b.keep);
  EXPECT_EQ(a.drop, b.drop);
  EXPECT_EQ(r.best_epoch(), 8);
  adapt::CheckpointSelector other("snd", 0.02);
  EXPECT_THROW(other.restore(s.state()), Error);
}

TEST(Selector, TiesSourceValLastAndSourceFree) {
  adapt::CheckpointSelector tie("im", 0.0);
  tie.offer(1, 0.5, 0.9);
  tie.offer(2, 0.5, 0.9);  // dominated by the earlier equal epoch: the earliest wins ties
  EXPECT_EQ(tie.best_epoch(), 1);
  adapt::CheckpointSelector sv("source-val", 0.02);
  sv.offer(1, 0, 0.8);
  EXPECT_TRUE(sv.offer(2, 0, 0.9).keep);
  EXPECT_FALSE(sv.offer(3, 0, 0.9).keep);  // equal accuracy: the first one is kept
  EXPECT_EQ(sv.best_epoch(), 2);
  adapt::CheckpointSelector last("last", 0.02);
  for (int e = 1; e <= 4; ++e) last.offer(e, 0, 0.1 * e);
  EXPECT_EQ(last.best_epoch(), 4);
  adapt::CheckpointSelector free("im", 0.02);  // no source: no band, the highest score wins
  free.offer(1, 0.3, kNaN);
  free.offer(2, 0.9, kNaN);
  free.offer(3, 0.4, kNaN);
  EXPECT_EQ(free.best_epoch(), 2);
  adapt::CheckpointSelector nosrc("source-val", 0.02);
  EXPECT_THROW(nosrc.offer(1, 0, kNaN), Error);
  EXPECT_THROW(adapt::CheckpointSelector("oracle", 0.02), Error);
  EXPECT_THROW(adapt::CheckpointSelector("im", -1), Error);
  adapt::CheckpointSelector bad("im", 0.02);
  EXPECT_THROW(bad.offer(1, kNaN, 0.5), Error);
}

TEST(Sweep, ADivergingValueIsReportedAndSkippedAndTheGridGoesOn) {
  std::vector<std::string> reports;
  std::vector<std::pair<uint64_t, double>> ran;
  auto r = adapt::sweep({1, 2}, {0.1, 1, 10}, [&](uint64_t seed, double v) {
    ran.emplace_back(seed, v);
    if (v == 10 && seed == 1) throw Diverged("the dann loss became nan");
    adapt::SweepOutcome o;
    o.score = seed == 1 ? -std::abs(v - 1) : v;  // seed 1 prefers 1, seed 2 the largest that runs
    return o;
  }, [&](const std::string& m) { reports.push_back(m); });
  EXPECT_EQ(ran.size(), 6u);  // every value of every seed ran
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_NE(reports[0].find("dann loss became nan"), std::string::npos);
  ASSERT_EQ(r.chosen.size(), 2u);
  EXPECT_EQ(r.runs[static_cast<size_t>(r.chosen[0].second)].value, 1);
  EXPECT_EQ(r.runs[static_cast<size_t>(r.chosen[1].second)].value, 10);
  EXPECT_FALSE(r.runs[2].ok);
  // Bad input is not divergence: it fails every value alike and stops the sweep.
  EXPECT_THROW(adapt::sweep({1}, {1, 2}, [](uint64_t, double) -> adapt::SweepOutcome { GRAFT_FAIL("no such file"); }),
               Error);
  auto none = adapt::sweep({3}, {1}, [](uint64_t, double) -> adapt::SweepOutcome { throw Diverged("inf"); });
  EXPECT_EQ(none.chosen[0].second, -1);
  auto ms = mean_std({1, 2, 3, 4});
  EXPECT_DOUBLE_EQ(ms.mean, 2.5);
  EXPECT_NEAR(ms.std, std::sqrt(5.0 / 3.0), 1e-12);
  EXPECT_EQ(mean_std({7}).std, 0);
}

TEST(Objectives, CdanReversesExactlyTheGradientOfItsWeightedDomainLoss) {
  torch::manual_seed(3);
  adapt::Discriminator d(3 * 4, 8, 1, 0.0);
  d->to(torch::kDouble);
  auto f = torch::randn({6, 3}, torch::kDouble).requires_grad_(true);
  auto logits = torch::randn({6, 4}, torch::kDouble);
  const double lambda = 0.6;
  auto r = adapt::conditional_adversarial_loss(d, f, logits, 2, lambda);
  r.loss.backward();
  auto fd = torch::zeros_like(f);
  const double h = 1e-6;
  for (int64_t i = 0; i < f.numel(); ++i) {
    auto fp = f.detach().clone(), fm = f.detach().clone();
    fp.view(-1)[i] += h;
    fm.view(-1)[i] -= h;
    fd.view(-1)[i] = (adapt::conditional_adversarial_loss(d, fp, logits, 2, lambda).loss -
                      adapt::conditional_adversarial_loss(d, fm, logits, 2, lambda).loss).item<double>() / (2 * h);
  }
  EXPECT_TRUE(torch::allclose(f.grad(), -lambda * fd, 1e-6, 1e-8)) << f.grad() << fd;
  EXPECT_GE(r.domain_acc.item<double>(), 0.0);
  EXPECT_THROW(adapt::conditional_adversarial_loss(d, f, logits, 0, lambda), Error);
}

TEST(Objectives, MccMddImAndClusterPseudoLabels) {
  const int64_t K = 4;
  auto confident = torch::eye(K, torch::kDouble).repeat({3, 1}) * 50;  // every class, no confusion
  EXPECT_NEAR(adapt::minimum_class_confusion(confident, 1.0).item<double>(), 0.0, 1e-6);
  auto uniform = torch::zeros({12, K}, torch::kDouble);
  EXPECT_NEAR(adapt::minimum_class_confusion(uniform, 2.5).item<double>(), (K - 1.0) / K, 1e-9);
  // MDD: an adversarial head that agrees on the source and disagrees on the target
  // scores lower than one that disagrees on the source and agrees on the target.
  auto ls = torch::eye(K).repeat({2, 1}) * 5, lt = torch::eye(K).repeat({2, 1}) * 5;
  auto agree = ls.clone(), disagree = ls.roll(1, 1);
  const double good = adapt::margin_disparity_discrepancy(ls, agree, lt, disagree, 4).item<double>();
  const double bad = adapt::margin_disparity_discrepancy(ls, disagree, lt, agree, 4).item<double>();
  EXPECT_LT(good, bad);
  EXPECT_THROW(adapt::margin_disparity_discrepancy(ls, agree, lt, agree, 0), Error);
  // Information maximisation: confident and diverse beats uniform and beats collapsed.
  const double im_conf = adapt::information_maximisation_loss(confident).item<double>();
  EXPECT_LT(im_conf, adapt::information_maximisation_loss(uniform).item<double>());
  auto collapsed = torch::zeros({12, K}, torch::kDouble);
  collapsed.select(1, 0).fill_(50);
  EXPECT_LT(im_conf, adapt::information_maximisation_loss(collapsed).item<double>());
  // Two clean clusters whose predictions are noisy: the centroids recover the clusters.
  torch::manual_seed(4);
  auto feats = at::cat({torch::randn({20, 5}) * 0.1 + 3, torch::randn({20, 5}) * 0.1 - 3});
  feats.narrow(1, 1, 4).zero_();
  auto truth = at::cat({torch::zeros({20}, torch::kLong), torch::ones({20}, torch::kLong)});
  auto noisy = torch::one_hot(truth, 2).to(torch::kFloat) * 2;
  noisy.narrow(0, 0, 6).select(1, 1).fill_(3);  // 6 of cluster 0 predicted as class 1
  auto pl = adapt::cluster_pseudo_labels(feats, noisy);
  EXPECT_TRUE(torch::equal(pl, truth)) << pl;
  auto cp = adapt::confident_pseudo_labels(noisy, 0.9);
  EXPECT_EQ(cp.labels.size(0), 40);
  EXPECT_EQ(cp.mask.sum().item<int64_t>(), 0);  // softmax of (3, 0) or (0, 2): below 0.9
}

TEST(Registry, EveryMethodIsListedOnceWithHelpAndKnownOptions) {
  std::set<std::string> names;
  const std::set<std::string> known = {"trade-off", "lambda-gamma", "disc-hidden", "threshold", "temperature", "margin"};
  for (const auto& m : adapt::methods()) {
    EXPECT_TRUE(names.insert(m.name).second) << m.name << " is listed twice";
    EXPECT_FALSE(m.help.empty()) << m.name;
    for (const auto& o : m.options) EXPECT_TRUE(known.count(o)) << m.name << ": unknown option " << o;
    ASSERT_TRUE(static_cast<bool>(m.make)) << m.name;
    EXPECT_EQ(m.make(adapt::MethodOptions{})->name(), m.name);
  }
  for (std::string n : {"source-only", "adabn", "dann", "cdan", "coral", "mmd", "self-train", "mcc", "mdd", "shot", "tent"})
    EXPECT_TRUE(names.count(n)) << n;
  auto msg = test::error_of([] { adapt::find_method("dnn"); });
  EXPECT_NE(msg.find("dann"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mcc"), std::string::npos) << msg;
}

/// Moons made once for the adaptation tests below.
class AdaptMoons : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    ASSERT_EQ(test::cli("data make moons --n 200 --out " + (*dir_ / "s")).code, 0);
    ASSERT_EQ(test::cli("data make moons --n 200 --rotate 30 --out " + (*dir_ / "t")).code, 0);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string src() { return "npy:" + (*dir_ / "s/train_x.npy") + "," + (*dir_ / "s/train_y.npy"); }
  static std::string tgt() { return "npy:" + (*dir_ / "t/train_x.npy"); }
  static std::string tst() { return "npy:" + (*dir_ / "t/test_x.npy") + "," + (*dir_ / "t/test_y.npy"); }
  static std::string dir(const std::string& name) { return *dir_ / name; }
  static test::TempDir* dir_;
};
test::TempDir* AdaptMoons::dir_ = nullptr;

class EveryMethod : public AdaptMoons, public ::testing::WithParamInterface<std::string> {};

TEST_P(EveryMethod, RunsThroughTheTrainerAndChoosesWithoutTargetLabels) {
  const auto& info = adapt::find_method(GetParam());
  const std::string model = info.needs_batchnorm ? "mlp_bn:16" : "mlp:16";
  const std::string out = dir("m-" + info.name);
  std::string args = "adapt --method " + info.name + " --target " + tgt() + " --target-test " + tst() +
                     " --batch-size 32 --epochs 2 --preprocess '' --quiet --seeds 1";
  if (info.source_free) {  // from a model trained on the source
    auto src_run = test::cli("adapt --method source-only --model " + model + " --source " + src() + " --target " +
                             tgt() + " --batch-size 32 --epochs 3 --preprocess '' --quiet --out " + out + "-src");
    ASSERT_EQ(src_run.code, 0) << src_run.out;
    args += " --model " + out + "-src/seed-1/model.ckpt";
  } else {
    args += " --model " + model + " --source " + src();
  }
  auto r = test::cli(args + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream js(out + "/seed-1/result.json");
  auto j = nlohmann::json::parse(js);
  EXPECT_GE(j["selected_epoch"].get<int64_t>(), 1);
  EXPECT_TRUE(j["oracle"].contains("selected_target_acc"));
  EXPECT_TRUE(std::filesystem::exists(out + "/seed-1/model.ckpt"));
  std::ifstream cj(out + "/seed-1/config.json");
  auto cfg = nlohmann::json::parse(cj);
  EXPECT_TRUE(cfg["plan"].contains("layers"));
  // A method option the method does not read is an error naming it.
  const bool reads_margin =
      std::find(info.options.begin(), info.options.end(), "margin") != info.options.end();
  auto extra = test::cli(args + " --margin 2 --out " + out + "-margin");
  if (reads_margin) {
    EXPECT_EQ(extra.code, 0) << extra.out;
  } else {
    EXPECT_NE(extra.code, 0);
    EXPECT_NE(extra.out.find("--margin is not used by --method " + info.name), std::string::npos) << extra.out;
  }
}

INSTANTIATE_TEST_SUITE_P(Registry, EveryMethod, ::testing::ValuesIn([] {
                           std::vector<std::string> n;
                           for (const auto& m : adapt::methods()) n.push_back(m.name);
                           return n;
                         }()),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

TEST_F(AdaptMoons, KilledAtSeveralMomentsAndResumedGivesTheSameModelBytes) {
  // 180 source examples after the held-out 10%: 5 steps of 32 per epoch, 15 in all; a
  // checkpoint every 2 steps besides each epoch's.
  const std::string base = "adapt --method dann --model mlp:16 --source " + src() + " --target " + tgt() +
                           " --target-test " + tst() +
                           " --batch-size 32 --epochs 3 --checkpoint-every 2 --preprocess '' --quiet --workers 1 ";
  auto straight = test::cli(base + "--out " + dir("straight"));
  ASSERT_EQ(straight.code, 0) << straight.out;
  const std::string want = slurp(dir("straight") + "/seed-1/model.ckpt");
  ASSERT_FALSE(want.empty());
  struct Kill {
    std::string env;
    std::string name;
  };
  // After a mid-epoch checkpoint and between checkpoints; inside the 4th checkpoint write
  // (the previous one renamed aside, the new one not yet written); in the last epoch.
  const std::vector<std::vector<Kill>> plans = {
      {{"GRAFT_TEST_KILL_AFTER_STEP=7", "step 7"}},
      {{"GRAFT_TEST_KILL_IN_CHECKPOINT=4", "in checkpoint 4"}},
      {{"GRAFT_TEST_KILL_AFTER_STEP=5", "step 5"}, {"GRAFT_TEST_KILL_AFTER_STEP=13", "step 13"}},
  };
  int k = 0;
  for (const auto& plan : plans) {
    const std::string out = dir("killed-" + std::to_string(k++));
    std::string args = base + "--out " + out;
    for (const auto& kill : plan) {
      auto r = test::run(kill.env + " " + test::graft_bin() + " " + args + " 2>&1");
      ASSERT_EQ(r.code, 128 + 9) << kill.name << ": " << r.out;  // killed by SIGKILL (the shell reports 137)
      args = base + "--resume --out " + out;
    }
    auto done = test::cli(args);
    ASSERT_EQ(done.code, 0) << done.out;
    EXPECT_EQ(slurp(out + "/seed-1/model.ckpt"), want) << plan.back().name << ": the resumed model differs";
    // metrics.jsonl: one row per epoch, the same figures as the uninterrupted run's.
    auto rows = [](const std::string& path) {
      std::ifstream in(path);
      std::vector<nlohmann::json> v;
      for (std::string line; std::getline(in, line);) {
        auto j = nlohmann::json::parse(line);
        for (auto key : {"seconds", "images_per_s"}) j.erase(key);
        v.push_back(j);
      }
      return v;
    };
    EXPECT_EQ(rows(out + "/seed-1/metrics.jsonl"), rows(dir("straight") + "/seed-1/metrics.jsonl")) << plan.back().name;
  }
  // A finished run is reused, not recomputed; a changed option is refused by name.
  auto again = test::cli(base + "--resume --out " + dir("straight"));
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_EQ(slurp(dir("straight") + "/seed-1/model.ckpt"), want);
  auto changed = test::cli(base + "--resume --lr 0.02 --out " + dir("killed-0"));
  EXPECT_NE(changed.code, 0);
  EXPECT_NE(changed.out.find("lr"), std::string::npos) << changed.out;
}
