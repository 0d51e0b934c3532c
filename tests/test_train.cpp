#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "graft/core/check.h"
#include "graft/data/readers.h"
#include "graft/io/checkpoint.h"
#include "graft/io/npy.h"
#include "graft/models/zoo.h"
#include "graft/train/divergence.h"
#include "graft/train/trainer.h"
#include "test_util.h"

using namespace graft;
using graft::test::error_of;

namespace {

struct Toy {
  data::DatasetPtr train, test;
  io::ModelMeta meta;
};

Toy toy(const test::TempDir& d, int64_t n = 200) {
  test::write_toy_idx(d / "x", d / "y", n, 4, 1);
  test::write_toy_idx(d / "tx", d / "ty", 80, 4, 2);
  Toy t;
  t.train = data::load_idx_dataset(d / "x", d / "y", {}, "toy-train");
  t.test = data::load_idx_dataset(d / "tx", d / "ty", {}, "toy-test");
  t.meta = {"mlp:32", {1, 8, 8}, t.train->class_names(), "normalize=0.5:0.5", {}};
  return t;
}

train::TrainConfig quick(const std::string& out) {
  train::TrainConfig c;
  c.epochs = 2;
  c.batch_size = 16;
  c.lr = 0.05;
  c.out_dir = out;
  c.quiet = true;
  c.workers = 1;
  c.seed = 3;
  return c;
}


}  // namespace

TEST(Schedules, PureFunctionsOfProgress) {
  train::TrainConfig c;
  c.schedule = "inv";
  EXPECT_DOUBLE_EQ(train::lr_factor(c, 0, 0), 1.0);
  EXPECT_NEAR(train::lr_factor(c, 1, 10), std::pow(11.0, -0.75), 1e-12);
  c.schedule = "cosine";
  EXPECT_NEAR(train::lr_factor(c, 0.5, 5), 0.5, 1e-12);
  c.schedule = "step";
  c.epochs = 9;
  EXPECT_NEAR(train::lr_factor(c, 0.5, 4.5), 0.1, 1e-12);
  c.schedule = "constant";
  c.warmup_epochs = 2;
  EXPECT_NEAR(train::lr_factor(c, 0.1, 1.0), 0.5, 1e-12);
}

TEST(Config, RejectsAbsurdOptionsByName) {
  train::TrainConfig c;
  c.out_dir = "x";
  c.optimizer = "sgdd";
  auto m = error_of([&] { c.validate(); });
  EXPECT_NE(m.find("--optimizer 'sgdd'"), std::string::npos) << m;
  EXPECT_NE(m.find("did you mean sgd"), std::string::npos) << m;
  c.optimizer = "adam";
  c.lr = -1;
  EXPECT_NE(error_of([&] { c.validate(); }).find("--lr"), std::string::npos);
  c.lr = std::nan("");
  EXPECT_NE(error_of([&] { c.validate(); }).find("--lr"), std::string::npos);
  c.lr = 0.1;
  c.schedule = "linear";
  EXPECT_NE(error_of([&] { c.validate(); }).find("--schedule"), std::string::npos);
}

TEST(Trainer, LearnsWritesMetricsAndEvaluates) {
  test::TempDir d;
  auto t = toy(d);
  auto model = models::create_model(t.meta.arch, t.meta.input_shape, 4, 1);
  auto cfg = quick(d / "run");
  cfg.epochs = 4;
  train::Trainer tr(model, t.meta, cfg);
  auto r = tr.fit(t.train, t.test, t.test);
  ASSERT_TRUE(r.has_test);
  EXPECT_GT(r.test.accuracy, 0.9);
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  EXPECT_EQ(r.test.confusion.size(), 4u);
  std::ifstream m(d / "run/metrics.jsonl");
  int epochs = 0;
  std::string line;
  while (std::getline(m, line)) epochs += nlohmann::json::parse(line)["event"] == "epoch";
  EXPECT_EQ(epochs, 4);
  EXPECT_TRUE(std::filesystem::exists(d / "run/config.json"));
  EXPECT_TRUE(std::filesystem::exists(d / "run/result.json"));
  auto ck = io::load_checkpoint(d / "run/model.ckpt");
  EXPECT_EQ(ck.meta.class_names, t.meta.class_names);
  EXPECT_EQ(ck.meta.preprocess, "normalize=0.5:0.5");
  auto saved = ck.model->named_parameters(), live = model->named_parameters();
  ASSERT_EQ(saved.size(), live.size());
  for (size_t i = 0; i < saved.size(); ++i) {
    EXPECT_EQ(saved[i].first, live[i].first);
    EXPECT_TRUE(torch::equal(saved[i].second, live[i].second)) << saved[i].first;
  }
}

using test::Crashing;

TEST(Trainer, ResumeGivesTheSameResultAsAnUninterruptedRun) {
  test::TempDir d;
  auto t = toy(d);  // 200 examples, batch 16: 13 steps per epoch
  auto cfg = quick(d / "a");
  cfg.epochs = 3;
  cfg.augment = "random-crop=8:1";
  cfg.checkpoint_every = 17;  // a mid-epoch checkpoint at epoch 2, step 4
  cfg.workers = 0;
  auto straight = models::create_model(t.meta.arch, t.meta.input_shape, 4, 5);
  train::Trainer(straight, t.meta, cfg).fit(t.train, nullptr, nullptr);

  auto again = models::create_model(t.meta.arch, t.meta.input_shape, 4, 5);
  cfg.out_dir = d / "b";
  train::Trainer(again, t.meta, cfg).fit(t.train, nullptr, nullptr);

  cfg.out_dir = d / "c";
  auto crashing = std::make_shared<Crashing>();
  crashing->base = t.train;
  crashing->budget = 200 + 4 * 16 + 8;  // epoch 1, then 4 steps of epoch 2, then crash in step 18
  auto doomed = models::create_model(t.meta.arch, t.meta.input_shape, 4, 5);
  EXPECT_THROW(train::Trainer(doomed, t.meta, cfg).fit(crashing, nullptr, nullptr), std::runtime_error);
  auto ck = io::load_checkpoint(d / "c/checkpoint.ckpt");
  ASSERT_TRUE(ck.has_state);
  EXPECT_EQ(ck.state.epoch, 1);
  EXPECT_EQ(ck.state.step_in_epoch, 4);

  cfg.resume = true;
  auto resumed = models::create_model(t.meta.arch, t.meta.input_shape, 4, 99);  // other init: weights come from the checkpoint
  train::Trainer(resumed, t.meta, cfg).fit(t.train, nullptr, nullptr);
  auto a = straight->named_parameters(), b = again->named_parameters(), c = resumed->named_parameters();
  ASSERT_EQ(a.size(), c.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first << ": same seed, different weights";
    EXPECT_TRUE(torch::equal(a[i].second, c[i].second)) << a[i].first << " differs after resume";
  }
}

TEST(Trainer, StopsOnNaNLossKeepingTheLastGoodCheckpoint) {
  test::TempDir d;
  auto t = toy(d);
  auto model = models::create_model(t.meta.arch, t.meta.input_shape, 4, 1);
  auto cfg = quick(d / "run");
  cfg.epochs = 3;
  cfg.workers = 0;
  // After the first epoch (200 examples) the inputs overflow float32: a non-finite loss.
  struct Overflowing : Crashing {
    data::Example get(int64_t i) const override {
      auto e = base->get(i);
      if (++calls > budget) e.input = e.input * 1e38f * 1e38f;
      return e;
    }
  };
  auto bad = std::make_shared<Overflowing>();
  bad->base = t.train;
  bad->budget = 200;
  auto msg = error_of([&] { train::Trainer(model, t.meta, cfg).fit(bad, nullptr, nullptr); });
  EXPECT_TRUE(msg.find("NaN") != std::string::npos || msg.find("infinite") != std::string::npos) << msg;
  EXPECT_NE(msg.find("last good checkpoint"), std::string::npos) << msg;
  auto ck = io::load_checkpoint(d / "run/checkpoint.ckpt");
  ASSERT_TRUE(ck.has_state);
  EXPECT_EQ(ck.state.epoch, 1);  // the epoch before the divergence, with finite weights
  EXPECT_TRUE(train::all_finite(*ck.model));
}

TEST(Trainer, RefusesToResumeAnotherModel) {
  test::TempDir d;
  auto t = toy(d);
  auto cfg = quick(d / "run");
  cfg.epochs = 1;
  train::Trainer(models::create_model("mlp:32", {1, 8, 8}, 4), t.meta, cfg).fit(t.train, nullptr, nullptr);
  auto other = t.meta;
  other.arch = "mlp:16";
  cfg.resume = true;
  cfg.epochs = 2;
  auto msg = error_of([&] {
    train::Trainer(models::create_model("mlp:16", {1, 8, 8}, 4), other, cfg).fit(t.train, nullptr, nullptr);
  });
  EXPECT_NE(msg.find("another model"), std::string::npos) << msg;
}

TEST(Checkpoint, AtomicVersionedAndRejectsCorruption) {
  test::TempDir d;
  auto m = models::create_model("dann_mnist", {1, 28, 28}, 10);
  io::ModelMeta meta{"dann_mnist", {1, 28, 28}, {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, "", {}};
  io::save_checkpoint(d / "m.ckpt", *m, meta, nullptr, nullptr);
  for (auto& e : std::filesystem::directory_iterator(d.path()))
    EXPECT_EQ(e.path().filename(), "m.ckpt");  // no temp files left
  EXPECT_TRUE(io::is_checkpoint(d / "m.ckpt"));
  auto ck = io::load_checkpoint(d / "m.ckpt");
  EXPECT_EQ(ck.meta.arch, "dann_mnist");
  std::filesystem::copy_file(d / "m.ckpt", d / "t.ckpt");
  std::filesystem::resize_file(d / "t.ckpt", std::filesystem::file_size(d / "m.ckpt") / 2);
  auto msg = error_of([&] { io::load_checkpoint(d / "t.ckpt"); });
  EXPECT_NE(msg.find("t.ckpt"), std::string::npos) << msg;
  EXPECT_FALSE(io::is_checkpoint(test::fixtures() + "/resnet_tiny.pt"));
}

TEST(Checkpoint, TorchScriptModelsSaveBackForPython) {
  test::TempDir d;
  auto m = models::load_torchscript(test::fixtures() + "/resnet_tiny.pt");
  std::vector<torch::Tensor> ps;
  for (auto& [n, p] : m->named_parameters()) ps.push_back(p);
  torch::optim::SGD opt(ps, torch::optim::SGDOptions(0.05));
  m->train(true);
  for (int i = 0; i < 2; ++i) {
    opt.zero_grad();
    torch::nn::functional::cross_entropy(m->forward(torch::randn({4, 3, 32, 32})), torch::tensor({0, 1, 2, 3})).backward();
    opt.step();
  }
  m->train(false);
  models::save_torchscript(*m, d / "tuned.pt");
  auto x = torch::randn({2, 3, 32, 32});
  io::write_npy(d / "x.npy", x);
  {
    torch::NoGradGuard ng;
    io::write_npy(d / "y.npy", m->forward(x));
  }
  auto r = test::run(test::python() + " " + test::source_dir() + "/scripts/check_torchscript_load.py " + (d / "tuned.pt") +
                     " " + (d / "x.npy") + " " + (d / "y.npy"));
  EXPECT_EQ(r.code, 0) << r.out;
  // and through a graft checkpoint
  io::ModelMeta meta{"torchscript", {3, 32, 32}, {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, "", {}};
  io::save_checkpoint(d / "ts.ckpt", *m, meta, nullptr, nullptr);
  auto ck = io::load_checkpoint(d / "ts.ckpt");
  ck.model->train(false);
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::allclose(ck.model->forward(x), m->forward(x)));
}
