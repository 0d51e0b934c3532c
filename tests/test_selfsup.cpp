// Learning from unlabelled data: surrogate tasks (rotation, exemplar) and semi-supervised
// training through the shared trainer.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "graft/core/check.h"
#include "graft/data/dataset.h"
#include "graft/data/readers.h"
#include "graft/data/transforms.h"
#include "graft/io/checkpoint.h"
#include "graft/io/npy.h"
#include "graft/models/zoo.h"
#include "graft/selfsup/semisup.h"
#include "graft/selfsup/surrogate.h"
#include "test_util.h"

using namespace graft;

namespace {

data::DatasetPtr images(at::Tensor x) {
  auto n = x.size(0);
  return std::make_shared<data::TensorDataset>(x, torch::zeros({n}, torch::kLong), std::vector<std::string>{"a", "b"},
                                               "images");
}

std::string toy_spec(const test::TempDir& d, int64_t n = 200) {
  test::write_toy_idx(d / "x", d / "y", n, 4, 1);
  return "idx:" + (d / "x") + "," + (d / "y");
}

}  // namespace

TEST(Selfsup, RotationTaskTurnsEachImageFourWays) {
  auto x = torch::rand({3, 1, 5, 5});
  auto task = selfsup::rotation_task(images(x));
  ASSERT_EQ(task->size(), 12);
  EXPECT_EQ(task->class_names().size(), 4u);
  for (int64_t i = 0; i < 12; ++i) {
    auto e = task->get(i);
    EXPECT_EQ(e.label, i % 4);
    EXPECT_TRUE(torch::equal(e.input, torch::rot90(x[i / 4], i % 4, {1, 2}))) << i;
  }
  auto b = task->get_batch({5, 11, 0});
  EXPECT_TRUE(torch::equal(b.input[0], task->get(5).input));
  EXPECT_EQ(b.label[1].item<int64_t>(), 3);
  // a quarter turn of 90 degrees composes: rot(90) of rot(270) is the original
  EXPECT_TRUE(torch::equal(torch::rot90(task->get(3).input, 1, {1, 2}), x[0]));
  EXPECT_NE(test::error_of([&] { selfsup::rotation_task(images(torch::rand({2, 1, 4, 6}))); }).find("square"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { selfsup::rotation_task(images(torch::rand({0, 1, 4, 4}))); }).find("empty"),
            std::string::npos);
}

TEST(Selfsup, ExemplarTaskMakesOnePseudoClassPerSeedImage) {
  auto x = torch::rand({10, 1, 6, 6});
  auto task = selfsup::exemplar_task(images(x), 4, 3, 7);
  ASSERT_EQ(task->size(), 12);
  ASSERT_EQ(task->num_classes(), 4);
  std::set<int64_t> seen;
  for (int64_t c = 0; c < 4; ++c) {
    auto e = task->get(c);
    EXPECT_EQ(e.label, c);
    EXPECT_TRUE(torch::equal(e.input, task->get(c + 4).input));  // copies of one seed image
    EXPECT_TRUE(torch::equal(e.input, task->get(c + 8).input));
    for (int64_t i = 0; i < 10; ++i)
      if (torch::equal(e.input, x[i])) seen.insert(i);
  }
  EXPECT_EQ(seen.size(), 4u);  // four different images of the set
  auto again = selfsup::exemplar_task(images(x), 4, 3, 7);
  EXPECT_TRUE(torch::equal(again->get(2).input, task->get(2).input));  // seeded choice
  EXPECT_EQ(task->get_batch({1, 6}).label[1].item<int64_t>(), 2);
  auto few = test::error_of([&] { selfsup::exemplar_task(images(x), 20, 3, 7); });
  EXPECT_NE(few.find("only 10 images"), std::string::npos) << few;
  EXPECT_THROW(selfsup::exemplar_task(images(x), 1, 3, 7), Error);
  EXPECT_NE(test::error_of([&] { selfsup::exemplar_task(images(torch::rand({0, 1, 4, 4})), 2, 1, 0); }).find("empty"),
            std::string::npos);
  // The default exemplar augmentation makes different samples of one class.
  auto aug = data::Pipeline::parse(selfsup::exemplar_augment({1, 28, 28}));
  std::mt19937_64 r1(1), r2(2);
  auto img = torch::rand({1, 28, 28});
  EXPECT_FALSE(torch::equal(aug.apply(img, r1), aug.apply(img, r2)));
}

TEST(Selfsup, ScaleAndCutoutTransforms) {
  auto p = data::Pipeline::parse("cutout=4");
  std::mt19937_64 rng(3);
  auto x = torch::zeros({1, 10, 10});
  auto y = p.apply(x, rng);
  const int64_t grey = (y == 0.5).sum().item<int64_t>();
  EXPECT_GT(grey, 0);
  EXPECT_LE(grey, 16);
  EXPECT_EQ(p.spec(), "cutout=4");
  auto s = data::Pipeline::parse("scale=0.3");
  auto z = s.apply(torch::ones({3, 9, 9}), rng);
  EXPECT_EQ(z.sizes(), (std::vector<int64_t>{3, 9, 9}));
  EXPECT_THROW(data::Pipeline::parse("scale=1.5"), Error);
  EXPECT_THROW(data::Pipeline::parse("cutout=0"), Error);
}

TEST(Selfsup, PretrainCliGivesABackboneOtherCommandsTake) {
  test::TempDir d;
  auto spec = toy_spec(d, 256);
  auto r = test::cli("pretrain --task rotation --model mlp:32 --data " + spec +
                     " --epochs 3 --batch-size 32 --lr 0.05 --val-split 0.25 "
                     "--quiet --workers 1 --out " + (d / "rot"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("surrogate task ignores them"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("backbone saved to"), std::string::npos) << r.out;
  auto ck = io::load_checkpoint(d / "rot/model.ckpt");
  EXPECT_EQ(ck.meta.class_names, (std::vector<std::string>{"rot0", "rot90", "rot180", "rot270"}));
  // The surrogate task is learnt: held-out rotation accuracy well above chance (25%).
  std::ifstream m(d / "rot/metrics.jsonl");
  std::string line, last;
  while (std::getline(m, line))
    if (line.find("\"epoch\"") != std::string::npos && line.find("val_acc") != std::string::npos) last = line;
  ASSERT_FALSE(last.empty());
  EXPECT_GT(nlohmann::json::parse(last)["val_acc"].get<double>(), 0.5) << last;
  // finetune cuts its head and trains a new one on the labelled task
  auto ft = test::cli("finetune --model " + (d / "rot/model.ckpt") + " --cut fc1 --data " + spec +
                      " --epochs 1 --batch-size 32 --quiet --workers 1 --out " + (d / "ft"));
  EXPECT_EQ(ft.code, 0) << ft.out;
  auto ex = test::cli("pretrain --task exemplar --classes 16 --copies 4 --model mlp:32 --data " + spec +
                      " --epochs 1 --batch-size 16 --augment random-crop=8:1,hflip --quiet --workers 1 --out " +
                      (d / "ex"));
  EXPECT_EQ(ex.code, 0) << ex.out;
  EXPECT_EQ(io::load_checkpoint(d / "ex/model.ckpt").meta.num_classes(), 16);
  // bad input
  auto many = test::cli("pretrain --task exemplar --classes 1000 --model mlp:32 --data " + spec + " --out " + (d / "x"));
  EXPECT_NE(many.code, 0);
  EXPECT_NE(many.out.find("only 256 images"), std::string::npos) << many.out;
  io::write_npy(d / "none.npy", at::zeros({0, 1, 28, 28}));
  auto empty = test::cli("pretrain --task rotation --model dann_mnist --data npy:" + (d / "none.npy") + " --out " +
                         (d / "x"));
  EXPECT_NE(empty.code, 0);
  EXPECT_NE(empty.out.find("empty"), std::string::npos) << empty.out;
  auto task = test::cli("pretrain --task jigsaw --model mlp:32 --data " + spec + " --out " + (d / "x"));
  EXPECT_NE(task.out.find("--task 'jigsaw'"), std::string::npos) << task.out;
  EXPECT_FALSE(std::filesystem::exists(d / "x/model.ckpt"));
}

namespace {
using test::Crashing;
}  // namespace

TEST(Selfsup, FixMatchResumesExactlyAndReportsItsPseudoLabels) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 240, 4, 1);
  auto all = data::load_idx_dataset(d / "x", d / "y", {}, "toy");
  auto lab = data::labels_per_class(all, 4, 1);  // 16 labelled
  io::ModelMeta meta{"mlp:32", {1, 8, 8}, all->class_names(), "normalize=0.5:0.5", {}};
  train::TrainConfig cfg;
  cfg.epochs = 3;
  cfg.batch_size = 8;
  cfg.lr = 0.05;
  cfg.quiet = true;
  cfg.workers = 0;
  cfg.seed = 2;
  cfg.checkpoint_every = 7;
  selfsup::SemisupOptions o;
  o.mu = 3;  // 24 unlabelled per step: 10 steps per epoch
  o.threshold = 0.7;
  o.weak = "random-crop=8:1";
  o.strong = "random-crop=8:1,cutout=3,jitter=0.3";
  cfg.out_dir = d / "a";
  auto straight = models::create_model(meta.arch, meta.input_shape, 4, 5);
  selfsup::SemisupStats st;
  selfsup::train_semisup(straight, meta, cfg, o, lab, all, nullptr, nullptr, &st);
  EXPECT_EQ(st.unlabelled_seen, 3 * 10 * 24);
  EXPECT_GT(st.confident, 0);
  ASSERT_GE(st.correct, 0);  // the toy set's labels are visible: pseudo-label accuracy is measured
  EXPECT_GT(static_cast<double>(st.correct) / static_cast<double>(st.confident), 0.6);
  // metrics carry the unlabelled term
  std::ifstream m(d / "a/metrics.jsonl");
  std::string text((std::istreambuf_iterator<char>(m)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("unlabelled_loss"), std::string::npos);

  // Crash in step 7 of epoch 2 (10 steps each) after the mid-epoch checkpoint at global step 14, then resume.
  cfg.out_dir = d / "c";
  auto crashing = std::make_shared<Crashing>();
  crashing->base = lab;
  crashing->budget = 10 * 8 + 6 * 8 + 3;  // epoch 1, 6 steps of epoch 2, then 3 reads into step 7
  auto doomed = models::create_model(meta.arch, meta.input_shape, 4, 5);
  EXPECT_THROW(selfsup::train_semisup(doomed, meta, cfg, o, crashing, all, nullptr, nullptr), std::runtime_error);
  auto ck = io::load_checkpoint(d / "c/checkpoint.ckpt");
  ASSERT_TRUE(ck.has_state);
  EXPECT_EQ(ck.state.global_step, 14);
  cfg.resume = true;
  auto resumed = models::create_model(meta.arch, meta.input_shape, 4, 77);
  selfsup::train_semisup(resumed, meta, cfg, o, lab, all, nullptr, nullptr);
  auto a = straight->named_parameters(), c = resumed->named_parameters();
  ASSERT_EQ(a.size(), c.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, c[i].second)) << a[i].first;
}

TEST(Selfsup, SemisupCliAndBadInput) {
  test::TempDir d;
  auto spec = toy_spec(d, 200);
  auto base = "semisup --model mlp:32 --labelled " + spec + "@per-class=5 --unlabelled " + spec +
              "@unlabelled --epochs 2 --batch-size 8 --mu 2 --weak random-crop=8:1 --strong random-crop=8:1,cutout=3 "
              "--quiet --workers 1 --test " + spec + " ";
  auto r = test::cli(base + "--out " + (d / "fm"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("unlabelled draws above the threshold"), std::string::npos) << r.out;
  std::ifstream js(d / "fm/semisup.json");
  auto j = nlohmann::json::parse(js);
  EXPECT_FALSE(j.contains("pseudo_label_accuracy"));  // @unlabelled hides the labels
  EXPECT_TRUE(j.contains("test_accuracy"));
  auto sup = test::cli(base + "--method supervised --out " + (d / "sup"));
  EXPECT_EQ(sup.code, 0) << sup.out;
  auto thr = test::cli(base + "--threshold 0 --out " + (d / "x"));
  EXPECT_NE(thr.code, 0);
  EXPECT_NE(thr.out.find("--threshold"), std::string::npos) << thr.out;
  auto thr2 = test::cli(base + "--threshold 1.01 --out " + (d / "x"));
  EXPECT_NE(thr2.out.find("(0, 1]"), std::string::npos) << thr2.out;
  io::write_npy(d / "none.npy", at::zeros({0, 1, 8, 8}));
  auto empty = test::cli("semisup --model mlp:32 --labelled " + spec + "@per-class=5 --unlabelled npy:" +
                         (d / "none.npy") + " --out " + (d / "x"));
  EXPECT_NE(empty.code, 0);
  EXPECT_NE(empty.out.find("none.npy' is empty"), std::string::npos) << empty.out;
  auto unl = test::cli("semisup --model mlp:32 --labelled " + spec + "@unlabelled --unlabelled " + spec + " --out " +
                       (d / "unl"));
  EXPECT_NE(unl.out.find("without labels"), std::string::npos) << unl.out;
  EXPECT_FALSE(std::filesystem::exists(d / "unl/model.ckpt"));
}
