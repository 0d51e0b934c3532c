// The training verbs running data-parallel through the one Trainer (issue 18): several local
// ranks started by `graft launch`, compared with one process; kill -9 and exact resume on two
// ranks; a rank that dies; ranks that disagree; a world size too large for the data.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "graft/dist/launch.h"
#include "graft/io/checkpoint.h"
#include "test_util.h"

namespace graft::test {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<nlohmann::json> rows(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> v;
  for (std::string line; std::getline(in, line);) v.push_back(nlohmann::json::parse(line));
  return v;
}

/// Moons made once: 400 source, 400 rotated target examples.
class DistTrain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ASSERT_EQ(cli("data make moons --n 400 --out " + (*dir_ / "s")).code, 0);
    ASSERT_EQ(cli("data make moons --n 400 --rotate 30 --out " + (*dir_ / "t")).code, 0);
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string src() { return "npy:" + (*dir_ / "s/train_x.npy") + "," + (*dir_ / "s/train_y.npy"); }
  static std::string tgt() { return "npy:" + (*dir_ / "t/train_x.npy"); }
  static std::string tst() { return "npy:" + (*dir_ / "t/test_x.npy") + "," + (*dir_ / "t/test_y.npy"); }
  static std::string dir(const std::string& name) { return *dir_ / name; }
  static TempDir* dir_;
};
TempDir* DistTrain::dir_ = nullptr;

TEST_F(DistTrain, TwoRanksOfBatch32ReachTheWeightsOfOneProcessOfBatch64) {
  // 192 examples: 3 steps of 64 per epoch in one process; 3 steps of 32 on each of 2 ranks,
  // whose shards interleave the same permutation, so every step averages the same 64 examples.
  const std::string base = "train --model mlp:16 --data " + src() + "@limit=192 --optimizer sgd --lr 0.2 "
                           "--momentum 0.9 --epochs 3 --preprocess '' --quiet --workers 1 --threads 1 --seed 4 ";
  auto one = cli(base + "--batch-size 64 --out " + dir("one"));
  ASSERT_EQ(one.code, 0) << one.out;
  auto two = cli("launch --nproc 2 -- " + base + "--batch-size 32 --out " + dir("two"));
  ASSERT_EQ(two.code, 0) << two.out;
  auto a = io::load_checkpoint(dir("one/model.ckpt")), b = io::load_checkpoint(dir("two/model.ckpt"));
  auto named = [](const io::Checkpoint& ck) {
    std::map<std::string, at::Tensor> m;
    for (const auto& [n, p] : ck.model->named_parameters()) m[n] = p;
    return m;
  };
  const auto pa = named(a), pb = named(b);
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& [n, w] : pa) {
    ASSERT_TRUE(pb.count(n)) << n;
    EXPECT_TRUE(torch::allclose(w, pb.at(n), 1e-5, 1e-6))
        << n << ": max difference " << (w - pb.at(n)).abs().max().item<double>();
  }
  auto init = cli("train --model mlp:16 --data " + src() + "@limit=192 --epochs 1 --lr 1e-12 --optimizer sgd "
                  "--preprocess '' --quiet --workers 1 --threads 1 --seed 4 --batch-size 64 --out " + dir("init"));
  ASSERT_EQ(init.code, 0) << init.out;
  const auto pc = named(io::load_checkpoint(dir("init/model.ckpt")));
  bool moved = false;
  for (const auto& [n, w] : pa) moved |= !torch::allclose(w, pc.at(n));
  EXPECT_TRUE(moved) << "training changed nothing: the comparison would be empty";
  // The epoch records cover every rank's examples: the same loss and accuracy as one process.
  auto r1 = rows(dir("one/metrics.jsonl")), r2 = rows(dir("two/metrics.jsonl"));
  ASSERT_EQ(r1.size(), 3u);
  ASSERT_EQ(r2.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(r1[i]["train_loss"].get<double>(), r2[i]["train_loss"].get<double>(), 1e-5) << "epoch " << i + 1;
    EXPECT_DOUBLE_EQ(r1[i]["train_acc"].get<double>(), r2[i]["train_acc"].get<double>()) << "epoch " << i + 1;
  }
  // Rank 0 alone wrote the folder; its configuration records the world size.
  auto cfg = nlohmann::json::parse(slurp(dir("two/config.json")));
  EXPECT_EQ(cfg["world_size"], 2);
  EXPECT_TRUE(std::filesystem::exists(dir("two/command.txt")));
}

TEST_F(DistTrain, AdaptDannOnTwoRanksKilledThenResumedEqualsAnUninterruptedRun) {
  // 360 source examples after the 10% hold-out: 11 steps of 16 per rank per epoch, 33 in all;
  // a checkpoint every 4 steps besides each epoch's.
  const std::string base = "adapt --method dann --model mlp:16 --source " + src() + " --target " + tgt() +
                           " --target-test " + tst() + " --batch-size 16 --epochs 3 --checkpoint-every 4 "
                           "--preprocess '' --quiet --workers 1 --threads 1 ";
  auto straight = cli("launch --nproc 2 -- " + base + "--out " + dir("straight"));
  ASSERT_EQ(straight.code, 0) << straight.out;
  const std::string want = slurp(dir("straight/seed-1/model.ckpt"));
  ASSERT_FALSE(want.empty());
  EXPECT_TRUE(std::filesystem::exists(dir("straight/seed-1/result.json")));
  EXPECT_TRUE(std::filesystem::exists(dir("straight/summary.json")));

  struct Kill {
    std::string env, name;
  };
  // Rank 1 killed after step 9 (rank 0 must then stop on its own, naming it, well within the
  // launcher's grace); rank 0 killed inside its 5th checkpoint write (mid-epoch 2).
  const std::vector<Kill> kills = {{"GRAFT_TEST_KILL_AFTER_STEP=9 GRAFT_TEST_KILL_RANK=1", "rank 1 after step 9"},
                                   {"GRAFT_TEST_KILL_IN_CHECKPOINT=5", "rank 0 in checkpoint 5"}};
  int k = 0;
  for (const auto& kill : kills) {
    const std::string out = dir("killed-" + std::to_string(k++));
    auto t0 = std::chrono::steady_clock::now();
    auto r = run(kill.env + " " + graft_bin() + " launch --nproc 2 --grace 60 -- " + base + "--out " + out + " 2>&1");
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ASSERT_NE(r.code, 0) << kill.name << ": " << r.out;
    EXPECT_NE(r.out.find("exited with code 137"), std::string::npos) << kill.name << ": " << r.out;
    if (k == 1) {
      EXPECT_NE(r.out.find("rank 1 stopped"), std::string::npos) << r.out;
      EXPECT_LT(s, 45) << "rank 0 did not stop on its own";
    }
    // One process cannot continue a two-rank run.
    auto single = cli(base + "--resume --out " + out);
    EXPECT_NE(single.code, 0);
    EXPECT_NE(single.out.find("--resume needs the same world size"), std::string::npos) << single.out;
    auto done = cli("launch --nproc 2 -- " + base + "--resume --out " + out);
    ASSERT_EQ(done.code, 0) << kill.name << ": " << done.out;
    EXPECT_EQ(slurp(out + "/seed-1/model.ckpt"), want) << kill.name << ": the resumed model differs";
    auto strip = [](std::vector<nlohmann::json> v) {
      for (auto& j : v)
        for (auto key : {"seconds", "images_per_s", "allreduce_s"}) j.erase(key);
      return v;
    };
    EXPECT_EQ(strip(rows(out + "/seed-1/metrics.jsonl")), strip(rows(dir("straight/seed-1/metrics.jsonl"))))
        << kill.name;
  }
}

TEST_F(DistTrain, EveryTrainingVerbRunsOnTwoRanks) {
  const std::string common = " --preprocess '' --quiet --workers 1 --threads 1 --epochs 1 ";
  auto tr = cli("launch --nproc 2 -- train --model mlp:16 --data " + src() + " --batch-size 32" + common +
                "--out " + dir("v-train"));
  ASSERT_EQ(tr.code, 0) << tr.out;
  auto ft2 = cli("launch --nproc 2 -- finetune --model " + dir("v-train/model.ckpt") + " --data " + tst() +
                 " --batch-size 16 --freeze-through fc1" + common + "--out " + dir("v-ft"));
  EXPECT_EQ(ft2.code, 0) << ft2.out;
  EXPECT_TRUE(std::filesystem::exists(dir("v-ft/model.ckpt")));
  write_toy_idx(dir("toy-x"), dir("toy-y"), 200, 4);
  const std::string toy = "idx:" + dir("toy-x") + "," + dir("toy-y");
  auto ss = cli("launch --nproc 2 -- semisup --model mlp:16 --labelled " + toy + "@per-class=5 --unlabelled " + toy +
                "@unlabelled --batch-size 8 --mu 2 --weak random-crop=8:1 --strong random-crop=8:1,cutout=3" + common +
                "--out " + dir("v-ss"));
  EXPECT_EQ(ss.code, 0) << ss.out;
  auto j = nlohmann::json::parse(slurp(dir("v-ss/semisup.json")));
  EXPECT_GT(j["unlabelled_seen"].get<int64_t>(), 0);
  auto study = cli("launch --nproc 2 -- study transferability --data mnist --split 0-4/5-9 --out " + dir("v-study"));
  EXPECT_NE(study.code, 0);
  EXPECT_NE(study.out.find("graft study does not run data-parallel"), std::string::npos) << study.out;
}

TEST_F(DistTrain, RanksWithDifferentOptionsAreRefusedNamingTheOption) {
  const int port = dist::free_port("127.0.0.1");
  auto rank = [&](int r, const std::string& lr) {
    return "WORLD_SIZE=2 RANK=" + std::to_string(r) + " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) +
           " GRAFT_DIST_TIMEOUT=30 " + graft_bin() + " train --model mlp:16 --data " + src() +
           " --batch-size 32 --epochs 1 --preprocess '' --quiet --workers 1 --threads 1 --lr " + lr +
           " --out " + dir("differ") + " > " + dir("differ-" + std::to_string(r) + ".log") + " 2>&1";
  };
  auto r = run("(" + rank(0, "0.1") + ") & (" + rank(1, "0.2") + "); a=$?; wait $!; b=$?; echo codes $a $b");
  EXPECT_NE(r.out.find("codes 1 1"), std::string::npos) << r.out;
  for (int k : {0, 1}) {
    const auto log = slurp(dir("differ-" + std::to_string(k) + ".log"));
    EXPECT_NE(log.find("rank 1 runs a different configuration from rank 0's"), std::string::npos) << log;
    EXPECT_NE(log.find("train.lr (0.2 vs 0.1)"), std::string::npos) << log;
  }
  EXPECT_FALSE(std::filesystem::exists(dir("differ/model.ckpt")));
}

TEST_F(DistTrain, WorldSizeLargerThanTheBatchesOfAnEpochIsOneLine) {
  auto r = cli("launch --nproc 3 -- train --model mlp:16 --data " + src() + "@limit=64 --batch-size 64 --epochs 1 "
               "--preprocess '' --quiet --workers 1 --threads 1 --out " + dir("big"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("WORLD_SIZE=3 is larger than the 1 batch(es) of an epoch"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace graft::test
