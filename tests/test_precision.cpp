// Reduced precision (--precision): parsing, autocast in extraction and training.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include "graft/adapt/method.h"
#include "graft/core/precision.h"
#include "graft/core/runtime.h"
#include "graft/data/loader.h"
#include "graft/data/registry.h"
#include "graft/io/checkpoint.h"
#include "graft/train/trainer.h"
#include "graft/features/extract.h"
#include "graft/models/zoo.h"
#include "test_util.h"

namespace graft::test {
namespace {

TEST(Precision, NamesAreCheckedAndFp16NeedsAGpu) {
  EXPECT_EQ(parse_precision("bf16", "cpu"), Precision::kBf16);
  EXPECT_EQ(parse_precision("fp32", "cpu"), Precision::kFp32);
  EXPECT_EQ(parse_precision("fp16", "cuda:0"), Precision::kFp16);
  EXPECT_NE(error_of([] { parse_precision("fp16", "cpu"); }).find("--precision fp16 needs --device cuda"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_precision("bf17", "cpu"); }).find("bf16"), std::string::npos);
}

TEST(Precision, Bf16FeaturesAreCloseToFp32ButComputedInBf16) {
  torch::manual_seed(0);
  auto model = models::create_model("dann_mnist", {3, 28, 28}, 10, 1);
  model->train(false);
  auto x = torch::rand({16, 3, 28, 28});
  features::ExtractOptions o;
  o.layers = {"flatten", "fc2"};
  features::FeatureExtractor f32(*model, o);
  o.precision = Precision::kBf16;
  // The model's layout stays as it is (bf16 would put it in channels-last, which changes the
  // float32 rounding of the later f32 pass: a layout effect, not autocast leaking).
  o.channels_last = "off";
  features::FeatureExtractor b16(*model, o);
  auto a = f32.concatenated(x), b = b16.concatenated(x);
  ASSERT_EQ(b.scalar_type(), at::kFloat);  // returned as float32 either way
  const double cos = at::cosine_similarity(a, b, 1).min().item<double>();
  EXPECT_GT(cos, 0.999) << "bf16 features too far from fp32";
  EXPECT_GT((a - b).abs().max().item<double>(), 0) << "bf16 gave the fp32 result bit for bit: autocast did not act";
  // Autocast is scoped: after the extraction, plain fp32 again.
  EXPECT_TRUE(f32.concatenated(x).equal(a));
}

TEST(Precision, Bf16ExtractionOfATorchScriptModel) {
  // TorchScript models are extracted through an inference-optimised copy in fp32; bf16 must
  // not reach that copy's prepacked float32 weights.
  auto m = models::load_torchscript(fixtures() + "/resnet_tiny.pt");
  m->train(false);
  auto x = torch::rand({4, 3, 32, 32});
  features::ExtractOptions o;
  o.layers = {m->layer_names()[m->num_layers() - 2]};
  features::FeatureExtractor f32(*m, o);
  o.precision = Precision::kBf16;
  features::FeatureExtractor b16(*m, o);
  auto a = f32.concatenated(x), b = b16.concatenated(x);
  EXPECT_GT(at::cosine_similarity(a, b, 1).min().item<double>(), 0.99);
}

TEST(Precision, TrainingInBf16IsRecordedAndAResumeInAnotherPrecisionIsRefused) {
  TempDir d;
  write_toy_idx(d / "x", d / "y", 96, 4);
  const std::string base = "train --model mlp:16 --data idx:" + (d / "x") + "," + (d / "y") +
                           " --epochs 2 --batch-size 32 --quiet --workers 1 --threads 1 --out " + (d / "run");
  auto r = cli(base + " --precision bf16");
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream in(d / "run/config.json");
  auto cfg = nlohmann::json::parse(in);
  EXPECT_EQ(cfg["train"]["precision"], "bf16");
  std::ifstream res(d / "run/result.json");
  EXPECT_TRUE(res.good());
  auto again = cli(base + " --precision fp32 --resume");
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.out.find("precision"), std::string::npos) << again.out;
  auto fp16 = cli(base + "-2 --precision fp16");
  EXPECT_EQ(fp16.code, 2) << fp16.out;
  EXPECT_NE(fp16.out.find("--precision fp16 needs --device cuda"), std::string::npos) << fp16.out;
}

TEST(Precision, Tf32PolicyIsAnOptionOfEveryVerb) {
  auto ok = cli("layers dann_mnist --tf32 off --quiet");
  EXPECT_EQ(ok.code, 0) << ok.out;
  auto bad = cli("layers dann_mnist --tf32 maybe");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--tf32"), std::string::npos) << bad.out;
}

/// Devices the suite runs on: the CPU always, CUDA when this build and machine have it.
class OnDevice : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "cuda" && !torch::cuda::is_available())
      GTEST_SKIP() << "no CUDA device: this libtorch build or this machine has none (the case runs on a GPU machine)";
  }
};

// Train on the device, then: the checkpoint evaluates identically on the CPU, and the run
// resumes on the CPU from a checkpoint written on the device (optimizer state mapped).
TEST_P(OnDevice, TrainsAndItsCheckpointsMoveBetweenDevices) {
  TempDir d;
  write_toy_idx(d / "x", d / "y", 96, 4);
  const std::string data = " --data idx:" + (d / "x") + "," + (d / "y");
  const std::string base = "train --model mlp:16" + data + " --batch-size 32 --quiet --workers 1 --threads 1 "
                           "--optimizer sgd --momentum 0.9 --checkpoint-every 2 ";
  auto r = cli(base + "--epochs 2 --device " + GetParam() + " --out " + (d / "run"));
  ASSERT_EQ(r.code, 0) << r.out;
  auto on_dev = cli("eval --model " + (d / "run/model.ckpt") + data + " --device " + GetParam() + " --json " +
                    (d / "a.json"));
  auto on_cpu = cli("eval --model " + (d / "run/model.ckpt") + data + " --device cpu --json " + (d / "b.json"));
  ASSERT_EQ(on_dev.code, 0) << on_dev.out;
  ASSERT_EQ(on_cpu.code, 0) << on_cpu.out;
  std::ifstream a(d / "a.json"), b(d / "b.json");
  auto ja = nlohmann::json::parse(a), jb = nlohmann::json::parse(b);
  EXPECT_NEAR(ja.begin()->at("accuracy").get<double>(), jb.begin()->at("accuracy").get<double>(), 1e-9);
  // Killed on the device after step 3, resumed on the CPU: the run completes.
  auto k = run("GRAFT_TEST_KILL_AFTER_STEP=3 " + graft_bin() + " " + base + "--epochs 2 --device " + GetParam() +
               " --out " + (d / "moved") + " 2>&1");
  ASSERT_EQ(k.code, 137) << k.out;
  auto res = cli(base + "--epochs 2 --device cpu --resume --out " + (d / "moved"));
  EXPECT_EQ(res.code, 0) << res.out;
  EXPECT_TRUE(std::filesystem::exists(d / "moved/model.ckpt"));
}

// Data held on the device: batches gathered and augmented there equal the CPU loader's, and
// training with them takes the same steps as training with per-batch copies.
TEST_P(OnDevice, DataHeldOnTheDeviceGiveTheCpuLoadersBatchesAndTraining) {
  TempDir d;
  write_toy_idx(d / "x", d / "y", 96, 4);
  auto ds = data::open_dataset("idx:" + (d / "x") + "," + (d / "y"));
  const at::Device dev(GetParam());
  auto aug = data::Pipeline::parse("random-crop=8:1,hflip,jitter=0.3,rotate=10,normalize=0.5:0.5");
  data::Loader cpu(ds, aug, data::LoaderOptions().batch_size_(32).seed_(5).workers_(0));
  data::Loader held(ds, aug, data::LoaderOptions().batch_size_(32).seed_(5).resident_on_(dev));
  EXPECT_TRUE(held.is_resident());
  cpu.start_epoch(2);
  held.start_epoch(2);
  int batches = 0;
  while (auto a = cpu.next()) {
    auto b = held.next();
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->input.device(), dev);
    EXPECT_TRUE(at::equal(a->index, b->index));
    EXPECT_TRUE(at::equal(a->label, b->label.cpu()));
    EXPECT_LT((a->input - b->input.cpu()).abs().max().item<double>(), 1e-5);
    ++batches;
  }
  EXPECT_EQ(batches, 3);
  EXPECT_FALSE(held.next().has_value());

  const std::string base = "train --model mlp:16 --data idx:" + (d / "x") + "," + (d / "y") +
                           " --batch-size 32 --epochs 2 --quiet --workers 0 --threads 1 --augment random-crop=8:1,hflip "
                           "--device " + GetParam() + " --data-on-device ";
  auto on = cli(base + "on --out " + (d / "on")), off = cli(base + "off --out " + (d / "off"));
  ASSERT_EQ(on.code, 0) << on.out;
  ASSERT_EQ(off.code, 0) << off.out;
  std::ifstream a(d / "on/metrics.jsonl"), b(d / "off/metrics.jsonl");
  std::string la, lb;
  int rows = 0;
  while (std::getline(a, la) && std::getline(b, lb)) {
    auto ja = nlohmann::json::parse(la), jb = nlohmann::json::parse(lb);
    EXPECT_NEAR(ja["train_loss"].get<double>(), jb["train_loss"].get<double>(), 1e-5) << la << "\n" << lb;
    ++rows;
  }
  EXPECT_EQ(rows, 2);
  auto bad = cli(base + "sometimes --out " + (d / "bad"));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("--data-on-device"), std::string::npos) << bad.out;
}

// Every adaptation method runs on the device: the terms' own modules, pseudo-labels and
// statistics must live where the model does. On the CPU the registry suite
// (Registry/EveryMethod) covers every method; here the CPU case runs DANN alone.
TEST_P(OnDevice, AdaptationMethodsRunOnTheDevice) {
  TempDir d;
  ASSERT_EQ(cli("data make moons --n 200 --out " + (d / "s")).code, 0);
  ASSERT_EQ(cli("data make moons --n 200 --rotate 30 --out " + (d / "t")).code, 0);
  const std::string src = "npy:" + (d / "s/train_x.npy") + "," + (d / "s/train_y.npy");
  const std::string tgt = "npy:" + (d / "t/train_x.npy");
  const std::string tst = "npy:" + (d / "t/test_x.npy") + "," + (d / "t/test_y.npy");
  std::vector<std::string> names;
  if (GetParam() == "cpu") names = {"dann"};
  else
    for (const auto& m : adapt::methods()) names.push_back(m.name);
  const std::string common = " --target " + tgt + " --target-test " + tst +
                             " --batch-size 32 --epochs 2 --preprocess '' --quiet --seeds 1 --device " + GetParam();
  for (const auto& name : names) {
    const auto& info = adapt::find_method(name);
    const std::string model = info.needs_batchnorm ? "mlp_bn:16" : "mlp:16", out = d / ("m-" + name);
    std::string args = "adapt --method " + name + common;
    if (info.source_free) {
      auto s = cli("adapt --method source-only --model " + model + " --source " + src + common + " --out " + out + "-src");
      ASSERT_EQ(s.code, 0) << name << ": " << s.out;
      args += " --model " + out + "-src/seed-1/model.ckpt";
    } else {
      args += " --model " + model + " --source " + src;
    }
    auto r = cli(args + " --out " + out);
    ASSERT_EQ(r.code, 0) << name << ": " << r.out;
    std::ifstream js(out + "/seed-1/result.json");
    auto j = nlohmann::json::parse(js);
    EXPECT_GE(j["selected_epoch"].get<int64_t>(), 1) << name;
  }
}

// Reduced precision on the device: bf16 everywhere, fp16 (with loss scaling) on a GPU; the
// run finishes with finite losses and learns the toy task about as well as fp32.
TEST_P(OnDevice, TrainsInReducedPrecision) {
  TempDir d;
  write_toy_idx(d / "x", d / "y", 192, 4);
  const std::string base = "train --model mlp:32 --data idx:" + (d / "x") + "," + (d / "y") +
                           " --batch-size 32 --epochs 4 --lr 0.05 --quiet --workers 0 --threads 1 --device " + GetParam();
  auto acc = [&](const std::string& prec) {
    auto r = cli(base + " --precision " + prec + " --out " + (d / prec));
    EXPECT_EQ(r.code, 0) << prec << ": " << r.out;
    std::ifstream in(d / (prec + "/metrics.jsonl"));
    double last = -1;
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      EXPECT_TRUE(std::isfinite(j["train_loss"].get<double>())) << prec << ": " << line;
      last = j["train_acc"].get<double>();
    }
    return last;
  };
  const double fp32 = acc("fp32");
  EXPECT_GT(fp32, 0.6);  // the toy task is learnable in 4 epochs (chance is 0.25)
  std::vector<std::string> reduced = {"bf16"};
  if (GetParam() == "cuda") reduced.push_back("fp16");
  for (const auto& p : reduced) EXPECT_GT(acc(p), fp32 - 0.1) << p;
}

// --- fast defaults and channels-last (issue 17) ---------------------------------------------

TEST(Defaults, BatchSizeAndLoaderThreadsFollowTheInputSizeAndTheCores) {
  EXPECT_EQ(default_batch_size(28 * 28, 64), 64);  // digits keep the historical defaults
  EXPECT_EQ(default_batch_size(3 * 28 * 28, 128), 128);
  EXPECT_EQ(default_batch_size(3 * 128 * 128, 64), 64);
  EXPECT_EQ(default_batch_size(3 * 224 * 224, 64), 32);
  EXPECT_EQ(default_batch_size(3 * 224 * 224, 256), 32);
  EXPECT_EQ(default_batch_size(3 * 299 * 299, 64), 16);
  EXPECT_EQ(default_batch_size(3 * 4096 * 4096, 64), 8);  // never below 8
  EXPECT_EQ(default_batch_size(3 * 224 * 224, 128, /*inference=*/true), 8);
  EXPECT_EQ(default_batch_size(3 * 64 * 64, 128, /*inference=*/true), 128);
  EXPECT_EQ(default_batch_size(28 * 28, 256, /*inference=*/true), 256);
  EXPECT_GE(default_workers(), 0);
  EXPECT_LE(default_workers(), 8);
  // The Trainer resolves 0 / -1 from the model's input size and records the result.
  train::TrainConfig c;
  c.batch_size = 0, c.workers = -1, c.out_dir = "unused";
  io::ModelMeta photos{"mlp:8", {3, 224, 224}, {"a", "b"}, "", {}};
  EXPECT_EQ(train::Trainer(models::create_model("mlp:8", {3, 224, 224}, 2), photos, c).config().batch_size, 32);
  io::ModelMeta digits{"mlp:8", {1, 28, 28}, {"a", "b"}, "", {}};
  train::Trainer t(models::create_model("mlp:8", {1, 28, 28}, 2), digits, c);
  EXPECT_EQ(t.config().batch_size, 64);
  EXPECT_EQ(t.config().workers, default_workers());
}

TEST(ChannelsLast, TrainingInNhwcMatchesNchwAndIsRecorded) {
  TempDir d;
  write_toy_idx(d / "x", d / "y", 96, 4);
  const std::string base = "train --model resnet8 --data idx:" + (d / "x") + "," + (d / "y") +
                           " --epochs 1 --batch-size 32 --quiet --workers 1 --threads 1 --seed 2 --out ";
  auto on = cli(base + (d / "on") + " --channels-last on");
  auto off = cli(base + (d / "off") + " --channels-last off");
  ASSERT_EQ(on.code, 0) << on.out;
  ASSERT_EQ(off.code, 0) << off.out;
  std::ifstream in(d / "on/config.json");
  EXPECT_EQ(nlohmann::json::parse(in)["train"]["channels_last"], "on");
  auto a = io::load_checkpoint(d / "on/model.ckpt"), b = io::load_checkpoint(d / "off/model.ckpt");
  auto pa = a.model->named_parameters(), pb = b.model->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  bool any_conv = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    any_conv = any_conv || pa[i].second.dim() == 4;
    EXPECT_TRUE(at::allclose(pa[i].second, pb[i].second, 1e-3, 1e-4)) << pa[i].first;
  }
  EXPECT_TRUE(any_conv);
  auto bad = cli(base + (d / "bad") + " --channels-last maybe");
  EXPECT_EQ(bad.code, 2) << bad.out;
  EXPECT_NE(bad.out.find("--channels-last"), std::string::npos) << bad.out;
}

// A TorchScript chain whose second child views the convolution's output, as LeNet-style code
// does: it cannot run channels-last. auto trains it in NCHW with a note; on is refused.
TEST(ChannelsLast, AModelThatNeedsNchwTrainsUnderAutoAndIsRefusedUnderOn) {
  TempDir d;
  write_toy_idx(d / "x", d / "y", 64, 4);
  auto part = [](const std::string& name, const std::string& param, at::Tensor w, const std::string& body) {
    torch::jit::Module m(name);
    m.register_attribute("training", c10::BoolType::get(), true);
    m.register_parameter(param, w, false);
    m.define("def forward(self, x):\n    return " + body + "\n");
    return m;
  };
  torch::manual_seed(0);
  torch::jit::Module net("Net");
  net.register_attribute("training", c10::BoolType::get(), true);
  // One child convolves and views its own output (graft flattens between children itself).
  auto body = part("Body", "w", torch::randn({4, 3, 3, 3}) * 0.3, "torch.conv2d(x, self.w).view(x.size(0), -1)");
  net.register_module("body", body);
  net.register_module("fc", part("Fc", "w", torch::randn({4, 4 * 6 * 6}) * 0.1, "torch.linear(x, self.w)"));
  net.define("def forward(self, x):\n    return self.fc.forward(self.body.forward(x))\n");
  net.save(d / "lenet.pt");
  // RGB input (gray repeated): with one channel NCHW and NHWC are the same layout.
  const std::string base = "train --model " + (d / "lenet.pt") + " --channels 3 --data idx:" + (d / "x") + "," +
                           (d / "y") + " --epochs 1 --batch-size 16 --threads 1 --quiet --out ";
  auto a = cli(base + (d / "auto"));
  ASSERT_EQ(a.code, 0) << a.out;
  EXPECT_NE(a.out.find("does not run in channels-last format"), std::string::npos) << a.out;
  auto on = cli(base + (d / "on") + " --channels-last on");
  EXPECT_EQ(on.code, 2) << on.out;  // the option does not suit this model: a usage error
  EXPECT_NE(on.out.find("--channels-last on: model"), std::string::npos) << on.out;
  EXPECT_NE(on.out.find("use --channels-last off"), std::string::npos) << on.out;
}

TEST(ChannelsLast, Bf16ExtractionRunsTheModelInNhwc) {
  torch::manual_seed(0);
  auto model = models::create_model("dann_mnist", {3, 28, 28}, 10, 1);
  model->train(false);
  auto x = torch::rand({8, 3, 28, 28});
  features::ExtractOptions o;
  o.layers = {"flatten"};
  o.precision = Precision::kBf16;
  o.channels_last = "off";
  features::FeatureExtractor plain(*model, o);
  auto a = plain.concatenated(x);
  o.channels_last = "auto";  // bf16 on the CPU: channels-last
  features::FeatureExtractor nhwc(*model, o);
  auto b = nhwc.concatenated(x);
  bool converted = false;
  for (const auto& [name, p] : model->named_parameters())
    if (p.dim() == 4) converted = p.is_contiguous(at::MemoryFormat::ChannelsLast) && !p.is_contiguous();
  EXPECT_TRUE(converted) << "the convolution weights were not put in channels-last format";
  EXPECT_GT(at::cosine_similarity(a, b, 1).min().item<double>(), 0.999);
}

INSTANTIATE_TEST_SUITE_P(Devices, OnDevice, ::testing::Values("cpu", "cuda"));

}  // namespace
}  // namespace graft::test
