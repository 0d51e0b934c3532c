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
#include "../src/train/foreach_sgd.h"
#include "../src/train/fused_adam.h"

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
  // A damaged archive is an error, not "some other kind of file".
  msg = error_of([&] { io::is_checkpoint(d / "t.ckpt"); });
  EXPECT_TRUE(msg.find("t.ckpt") != std::string::npos && msg.find("damaged") != std::string::npos) << msg;
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

namespace {

// Parameters of every kind the fused step meets: a channels-last convolution weight and a
// matrix (one pass each), a float64 vector and a weight whose gradient has other strides
// (both left to libtorch's own steps).
std::vector<torch::Tensor> optimizer_params(uint64_t seed) {
  torch::manual_seed(static_cast<int64_t>(seed));
  std::vector<torch::Tensor> ps = {torch::randn({8, 3, 5, 5}).contiguous(at::MemoryFormat::ChannelsLast),
                                   torch::randn({33, 70}), torch::randn({19}, torch::kFloat64),
                                   torch::randn({6, 4, 3, 3})};
  for (auto& p : ps) p.requires_grad_(true);
  return ps;
}

void give_gradients(std::vector<torch::Tensor>& ps, int step) {
  torch::manual_seed(100 + step);
  for (size_t i = 0; i < ps.size(); ++i) {
    auto g = torch::randn(ps[i].sizes(), ps[i].options().requires_grad(false));
    if (i == 3) g = g.contiguous(at::MemoryFormat::ChannelsLast);  // strides unlike the weight's
    else g = g.contiguous(ps[i].suggest_memory_format());
    ps[i].mutable_grad() = g;
  }
}

double max_difference(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, (a[i] - b[i]).abs().max().item<double>());
  return d;
}

/// Loads into `to` the state `from` saves, through the bytes of an archive (as a checkpoint does).
void move_state(const torch::optim::Optimizer& from, torch::optim::Optimizer& to) {
  torch::serialize::OutputArchive out;
  from.save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  std::istringstream is(bytes.str());
  in.load_from(is);
  to.load(in);
}

template <typename Fused, typename Reference, typename Options>
void expect_same_steps(const Options& options) {
  auto a = optimizer_params(1), b = optimizer_params(1);
  Fused fused({torch::optim::OptimizerParamGroup(a)}, options);
  Reference ref({torch::optim::OptimizerParamGroup(b)}, options);
  for (int step = 0; step < 6; ++step) {
    give_gradients(a, step), give_gradients(b, step);
    fused.step(), ref.step();
  }
  // float32 rounding apart (libtorch rounds between its eight passes; the fused loop keeps
  // values in registers), the same weights; the float64 one and the one with other
  // strides took libtorch's path, bit for bit.
  EXPECT_LT(max_difference({a[0], a[1]}, {b[0], b[1]}), 1e-6);
  EXPECT_TRUE(torch::equal(a[2], b[2]));
  EXPECT_TRUE(torch::equal(a[3], b[3]));
  EXPECT_GT((a[1] - optimizer_params(1)[1]).abs().max().item<double>(), 1e-3);  // it did move
  // Two parameters a step went through the fused loop (none with amsgrad).
  EXPECT_EQ(fused.fused_updates(), options.amsgrad() ? 0 : 12);
}

}  // namespace

TEST(Optimizer, FusedAdamAndAdamWTakeLibtorchsSteps) {
  expect_same_steps<train::FusedAdam, torch::optim::Adam>(torch::optim::AdamOptions(0.01));
  expect_same_steps<train::FusedAdam, torch::optim::Adam>(torch::optim::AdamOptions(0.01).weight_decay(0.1));
  expect_same_steps<train::FusedAdam, torch::optim::Adam>(torch::optim::AdamOptions(0.01).amsgrad(true));
  expect_same_steps<train::FusedAdamW, torch::optim::AdamW>(torch::optim::AdamWOptions(0.01).weight_decay(0.1));
}

// Parameters the fused loop cannot take (here float64) are stepped together with ATen's
// multi-tensor operations, as on a GPU: libtorch's arithmetic, bit for bit.
TEST(Optimizer, AdamStepsOfParameterListsAreLibtorchsBitForBit) {
  auto make = [] {
    torch::manual_seed(3);
    std::vector<torch::Tensor> ps = {torch::randn({7, 5}, torch::kFloat64), torch::randn({11}, torch::kFloat64),
                                     torch::randn({2, 3, 4}, torch::kFloat64)};
    for (auto& p : ps) p.requires_grad_(true);
    return ps;
  };
  auto run = [&](auto& opt, std::vector<torch::Tensor>& ps) {
    for (int step = 0; step < 5; ++step) give_gradients(ps, step), opt.step();
  };
  for (double wd : {0.0, 0.05}) {
    auto a = make(), b = make();
    train::FusedAdam fa(a, torch::optim::AdamOptions(0.01).weight_decay(wd));
    torch::optim::Adam ra(b, torch::optim::AdamOptions(0.01).weight_decay(wd));
    run(fa, a), run(ra, b);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "Adam, wd " << wd << ", " << i;
    EXPECT_EQ(fa.fused_updates(), 0);
    auto c = make(), e = make();
    train::FusedAdamW fw(c, torch::optim::AdamWOptions(0.01).weight_decay(wd));
    torch::optim::AdamW rw(e, torch::optim::AdamWOptions(0.01).weight_decay(wd));
    run(fw, c), run(rw, e);
    for (size_t i = 0; i < c.size(); ++i) EXPECT_TRUE(torch::equal(c[i], e[i])) << "AdamW, wd " << wd << ", " << i;
  }
}

// SGD with its step made by multi-tensor operations: libtorch's SGD bit for bit, with
// momentum, dampening, Nesterov and weight decay, across two parameter groups and a parameter
// without a gradient; and the state one writes, the other continues from.
TEST(Optimizer, ForeachSgdTakesLibtorchsStepsAndState) {
  for (auto o : {torch::optim::SGDOptions(0.05), torch::optim::SGDOptions(0.05).momentum(0.9),
                 torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(0.01),
                 torch::optim::SGDOptions(0.05).momentum(0.8).dampening(0.3).weight_decay(0.02)}) {
    auto a = optimizer_params(4), b = optimizer_params(4);
    auto groups = [&o](std::vector<torch::Tensor>& ps) {
      auto second = o;
      second.lr(0.01);
      return std::vector<torch::optim::OptimizerParamGroup>{
          torch::optim::OptimizerParamGroup({ps[0], ps[1]}, std::make_unique<torch::optim::SGDOptions>(o)),
          torch::optim::OptimizerParamGroup({ps[2], ps[3]}, std::make_unique<torch::optim::SGDOptions>(second))};
    };
    train::ForeachSGD mine(groups(a), o);
    torch::optim::SGD ref(groups(b), o);
    for (int step = 0; step < 4; ++step) {
      give_gradients(a, step), give_gradients(b, step);
      if (step == 1) a[1].mutable_grad() = at::Tensor(), b[1].mutable_grad() = at::Tensor();  // skipped this step
      mine.step(), ref.step();
    }
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
    EXPECT_GT((a[1] - optimizer_params(4)[1]).abs().max().item<double>(), 1e-3);  // it did move
    auto c = optimizer_params(4);
    for (size_t i = 0; i < c.size(); ++i) c[i].data().copy_(a[i].detach());
    torch::optim::SGD loaded(groups(c), o);
    move_state(mine, loaded);
    give_gradients(a, 9), give_gradients(c, 9);
    mine.step(), loaded.step();
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], c[i])) << "after the state moved, " << i;
  }
}

TEST(Optimizer, FusedAdamStateIsLibtorchsAdamState) {
  // Checkpoints carry the optimizer state: what the fused Adam saves, libtorch's Adam loads
  // and continues from, and the other way round.
  auto a = optimizer_params(2), b = optimizer_params(2);
  train::FusedAdam fused(a, torch::optim::AdamOptions(0.01));
  for (int step = 0; step < 3; ++step) give_gradients(a, step), fused.step();
  for (size_t i = 0; i < a.size(); ++i) b[i].data().copy_(a[i].detach());
  torch::optim::Adam ref(b, torch::optim::AdamOptions(0.01));
  move_state(fused, ref);
  for (int step = 3; step < 6; ++step) {
    give_gradients(a, step), give_gradients(b, step);
    fused.step(), ref.step();
  }
  EXPECT_LT(max_difference(a, b), 1e-6);
  // Saved by libtorch's Adam from a channels-last weight, loaded for the same weight in NCHW:
  // the moments take the weight's layout, and the fused loop goes on.
  auto e = optimizer_params(2);
  for (size_t i = 0; i < e.size(); ++i) e[i].data().copy_(b[i].detach());
  e[0] = e[0].detach().contiguous().requires_grad_(true);
  ASSERT_TRUE(e[0].is_contiguous() && !b[0].is_contiguous());
  train::FusedAdam resumed(e, torch::optim::AdamOptions(0.01));
  move_state(ref, resumed);
  std::vector<torch::Tensor> f;  // the weights before this step
  for (auto& t : b) f.push_back(t.detach().clone());
  give_gradients(e, 6), give_gradients(b, 6);
  resumed.step(), ref.step();
  EXPECT_EQ(resumed.fused_updates(), 2);
  EXPECT_LT(max_difference(e, b), 1e-6);
  // Without the saved moments that step would have gone elsewhere.
  auto c = optimizer_params(2);
  torch::optim::Adam fresh(c, torch::optim::AdamOptions(0.01));
  for (size_t i = 0; i < c.size(); ++i) c[i].data().copy_(f[i].detach());
  give_gradients(c, 6);
  fresh.step();
  EXPECT_GT(max_difference(b, c), 1e-4);
}
