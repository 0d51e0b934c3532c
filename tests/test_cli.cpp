// End-to-end checks of the graft binary: exit codes, one-line errors, no partial output.
#include <gtest/gtest.h>

#include <fstream>

#include "test_util.h"

using graft::test::cli;
using graft::test::TempDir;

namespace {

bool has(const graft::test::Run& r, const std::string& s) { return r.out.find(s) != std::string::npos; }

// An error is one line starting "graft: error:" and a non-zero exit.
void expect_clean_error(const graft::test::Run& r, const std::string& needle) {
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.code, 134) << "aborted: " << r.out;
  EXPECT_NE(r.code, 139) << "crashed: " << r.out;
  EXPECT_TRUE(has(r, needle)) << "expected '" << needle << "' in: " << r.out;
}

std::string toy_spec(const TempDir& d, int64_t n = 64) {
  graft::test::write_toy_idx(d / "x", d / "y", n, 4);
  return "idx:" + (d / "x") + "," + (d / "y");
}

}  // namespace

TEST(Cli, HelpAndLayers) {
  auto h = cli("--help");
  EXPECT_EQ(h.code, 0);
  for (auto cmd : {"layers", "train", "eval", "predict", "data", "demo"}) EXPECT_TRUE(has(h, cmd)) << cmd;
  auto th = cli("train --help");
  EXPECT_TRUE(has(th, "--optimizer")) << th.out;
  auto l = cli("layers dann_mnist");
  EXPECT_EQ(l.code, 0) << l.out;
  EXPECT_TRUE(has(l, "conv1") && has(l, "[48, 4, 4]") && has(l, "fc3")) << l.out;
  auto j = cli("layers resnet8 --json");
  EXPECT_EQ(nlohmann::json::parse(j.out)["layers"].size(), 6u);
  auto ts = cli("layers " + graft::test::fixtures() + "/resnet_tiny.pt --input-shape 3,32,32");
  EXPECT_TRUE(has(ts, "layer4") && has(ts, "reproduce forward()")) << ts.out;
}

TEST(Cli, TrainEvalPredictRoundTrip) {
  TempDir d;
  auto spec = toy_spec(d, 128);
  auto t = cli("train --model mlp:32 --data " + spec + " --test " + spec +
                 " --epochs 3 --lr 0.05 --batch-size 16 --out " + (d / "run") + " --workers 1");
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(has(t, "epoch 3/3")) << t.out;
  EXPECT_TRUE(has(t, "img/s") && has(t, "ETA")) << t.out;
  EXPECT_TRUE(has(t, "confusion matrix")) << t.out;
  auto e = cli("eval --model " + (d / "run/model.ckpt") + " --data " + spec + " --json " + (d / "eval.json"));
  ASSERT_EQ(e.code, 0) << e.out;
  std::ifstream jf(d / "eval.json");
  auto j = nlohmann::json::parse(jf);
  EXPECT_GT(j[spec]["accuracy"].get<double>(), 0.9);
  auto p = cli("predict --model " + (d / "run/model.ckpt") + " --data " + spec + "@limit=5 --top 2");
  ASSERT_EQ(p.code, 0) << p.out;
  EXPECT_TRUE(has(p, "index,label,class1,score1,class2,score2")) << p.out;
  // resume of a finished run changes nothing and succeeds
  auto r = cli("train --model mlp:32 --data " + spec + " --epochs 3 --lr 0.05 --batch-size 16 --out " + (d / "run") +
                 " --resume --workers 1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r, "resuming")) << r.out;
}

TEST(Cli, BadInputGetsOneClearLine) {
  TempDir d;
  auto spec = toy_spec(d);
  expect_clean_error(cli("train --model mlp --data " + spec + " --optimizer sgdd --out " + (d / "o")),
                     "--optimizer 'sgdd' is not one of sgd, adam, adamw; did you mean sgd?");
  expect_clean_error(cli("train --model mlp --data idx:/nope/x,/nope/y --out " + (d / "o")), "does not exist");
  expect_clean_error(cli("train --model mlp --data " + spec + " --lr -1 --out " + (d / "o")), "--lr");
  expect_clean_error(cli("train --model mlp --data " + spec + " --lr nan --out " + (d / "o")), "--lr");
  expect_clean_error(cli("train --model dann_mnst --data " + spec + " --out " + (d / "o")), "did you mean dann_mnist");
  expect_clean_error(cli("train --model mlp --data " + spec + "@classes=1 --out " + (d / "o")), "at least 2 classes");
  expect_clean_error(cli("train --model mlp --data " + spec + "@per-class=100 --out " + (d / "o")),
                     "fewer than the 100");
  expect_clean_error(cli("train --model mlp --data " + spec + " --device cuda:7 --out " + (d / "o")), "--device");
  std::ofstream(d / "junk.pt") << "junk";
  expect_clean_error(cli("layers " + (d / "junk.pt")), "torch.jit.script");
  expect_clean_error(cli("eval --model " + (d / "junk.pt") + " --data " + spec), "junk.pt");
  expect_clean_error(cli("layers " + graft::test::fixtures() + "/resnet_tiny.pt --input-shape 3,x"), "--input-shape");
  expect_clean_error(cli("data info folder:" + (d / "nothing")), "does not exist");
  auto u = cli("train --bogus");
  EXPECT_NE(u.code, 0);
  // no partial outputs left by failed commands
  EXPECT_FALSE(std::filesystem::exists(d / "o/model.ckpt"));
}

TEST(Cli, PredictOnImageFilesAndMissingOnes) {
  TempDir d;
  auto spec = toy_spec(d, 64);
  ASSERT_EQ(cli("train --model mlp:16 --data " + spec + " --epochs 1 --out " + (d / "run") + " --quiet").code, 0);
  auto missing = cli("predict --model " + (d / "run/model.ckpt") + " " + (d / "nope.png") + " --out " + (d / "p.csv"));
  expect_clean_error(missing, "nope.png");
  EXPECT_FALSE(std::filesystem::exists(d / "p.csv"));
}

TEST(Cli, DemoRunsEndToEndOnASmallBudget) {
  // The quick-start demo, shortened: 6000 MNIST digits, two epochs. It makes the
  // MNIST-M-style target in the data cache when missing.
  TempDir d;
  auto r = cli("demo --epochs 2 --limit 6000 --out " + (d / "demo") + " --threads 2");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r, "in domain") && has(r, "out of domain") && has(r, "domain gap")) << r.out;
  std::ifstream f(d / "demo/summary.json");
  auto j = nlohmann::json::parse(f);
  EXPECT_GT(j["source_test"]["accuracy"].get<double>(), 0.85);
  EXPECT_LT(j["target_test"]["accuracy"].get<double>(), j["source_test"]["accuracy"].get<double>());
}

TEST(Cli, CorruptImagesStopTrainingOrAreSkippedWithACount) {
  TempDir d;
  for (int c = 0; c < 2; ++c) {
    std::filesystem::create_directories(d / ("imgs/c" + std::to_string(c)));
    for (int i = 0; i < 6; ++i) {
      // a 10x10 gray PGM whose brightness tells the class
      std::ofstream f(d / ("imgs/c" + std::to_string(c) + "/" + std::to_string(i) + ".pgm"), std::ios::binary);
      f << "P5\n10 10\n255\n" << std::string(100, static_cast<char>(c ? 220 : 30 + i));
    }
  }
  std::ofstream(d / "imgs/c1/zz_broken.png") << "not an image";
  auto args = " --model mlp:8 --epochs 1 --batch-size 4 --out " + (d / "run") + " --quiet --workers 1";
  auto strict = cli("train --data folder:" + (d / "imgs") + args);
  expect_clean_error(strict, "zz_broken.png");
  EXPECT_FALSE(std::filesystem::exists(d / "run/model.ckpt"));
  auto lenient = cli("train --data folder:" + (d / "imgs") + "@skip-bad" + args);
  EXPECT_EQ(lenient.code, 0) << lenient.out;
  EXPECT_TRUE(has(lenient, "skipped 1 undecodable")) << lenient.out;
}
