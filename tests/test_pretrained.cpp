// Real pretrained backbones: models converted from tfjs (scripts/convert_tfjs.py), the
// torchvision-exact preprocessing presets, and models exported back to TorchScript.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <torch/script.h>
#include <torch/torch.h>

#include <filesystem>
#include <random>

#include "graft/core/check.h"
#include "graft/data/transforms.h"
#include "graft/io/checkpoint.h"
#include "graft/io/npy.h"
#include "graft/models/compose.h"
#include "graft/models/zoo.h"
#include "test_util.h"

using namespace graft;
namespace fs = std::filesystem;

namespace {
std::string fx(const std::string& name) { return test::fixtures() + "/" + name; }

/// A smooth colour image of h x w (photo-like: blurred noise), written as PNG.
void write_photo(const std::string& path, int h, int w, uint64_t seed) {
  cv::Mat m(h, w, CV_8UC3);
  cv::RNG rng(seed);
  rng.fill(m, cv::RNG::UNIFORM, 0, 256);
  cv::GaussianBlur(m, m, cv::Size(0, 0), 3.0);
  cv::imwrite(path, m);
}
}  // namespace

// The converter's fixture (ctest convert_tfjs writes it after checking it against NumPy):
// graft opens it as a chain of the named stages, reads the preprocessing stored inside,
// and reproduces Python's output.
TEST(Pretrained, ConvertedTfjsModelIsAChainThatCarriesItsPreprocessing) {
  if (!fs::exists(fx("tiny_tfjs.pt"))) GTEST_SKIP() << "tiny_tfjs.pt missing: run ctest (convert_tfjs makes it)";
  auto m = models::load_torchscript(fx("tiny_tfjs.pt"));
  EXPECT_EQ(m->layer_names(), (std::vector<std::string>{"stem_conv", "b1_add", "mixed0", "max_pool", "classifier"}));
  EXPECT_EQ(models::torchscript_preprocess(*m), "resize=11x9");
  auto x = io::read_npy(fx("tiny_tfjs_input.npy"));
  auto want = io::read_npy(fx("tiny_tfjs_out.npy"));
  m->train(false);
  torch::NoGradGuard ng;
  EXPECT_TRUE(torch::allclose(m->forward(x), want, 1e-5, 1e-6));
  // Taps between stages work on an odd-sized input (TF 'same' padding computed per size).
  auto taps = m->forward_taps(torch::rand({1, 3, 15, 13}), {1, 2});
  EXPECT_EQ(taps[0].size(2), 8);  // ceil(15 / 2)
  EXPECT_EQ(taps[1].size(1), 5);  // 3 + 2 channels concatenated
}

TEST(Pretrained, PresetsAndShorterSideResize) {
  EXPECT_EQ(data::Pipeline::parse("imagenet").spec(),
            "resize=256,center-crop=224x224,normalize=0.485/0.456/0.406:0.229/0.224/0.225");
  EXPECT_EQ(data::Pipeline::parse("inception").spec(), "resize=299,center-crop=299x299,normalize=0.5:0.5");
  std::mt19937_64 rng(0);
  // torchvision: shorter side 256, longer int(256 * 451 / 300) = 384
  auto y = data::Pipeline::parse("resize=256").apply(torch::rand({3, 300, 451}), rng);
  EXPECT_EQ(y.sizes(), (at::IntArrayRef{3, 256, 384}));
  y = data::Pipeline::parse("resize=256").apply(torch::rand({3, 451, 300}), rng);
  EXPECT_EQ(y.sizes(), (at::IntArrayRef{3, 384, 256}));
  EXPECT_EQ(data::Pipeline::parse("resize=20x30").apply(torch::rand({1, 7, 9}), rng).sizes(),
            (at::IntArrayRef{1, 20, 30}));
  // CenterCrop offsets as torchvision: round((H - h) / 2) with halves to even: (5 - 2) / 2 = 1.5 -> 2
  auto img = torch::arange(5 * 5, torch::kFloat).view({1, 5, 5});
  auto c = data::Pipeline::parse("center-crop=2").apply(img, rng);
  EXPECT_EQ(c[0][0][0].item<float>(), img[0][2][2].item<float>());
  // The channel separator is named when commas are used.
  auto e = test::error_of([] { data::Pipeline::parse("normalize=0.485,0.456,0.406:0.229,0.224,0.225"); });
  EXPECT_NE(e.find("separated by '/'"), std::string::npos) << e;
  // A preset on a gray image says how to fix it.
  e = test::error_of([&] { data::Pipeline::parse("imagenet").apply(torch::rand({1, 300, 300}), rng); });
  EXPECT_NE(e.find("--channels 3"), std::string::npos) << e;
  // An image smaller than the crop.
  e = test::error_of([&] { data::Pipeline::parse("resize=100x100,center-crop=224").apply(torch::rand({3, 300, 300}), rng); });
  EXPECT_NE(e.find("larger than the image"), std::string::npos) << e;
}

// graft's --preprocess imagenet equals torchvision's tensor path (ToTensor, Resize(256,
// antialias=True), CenterCrop(224), Normalize) followed by the model: features of a
// torchvision ResNet-18 after layer2 on a folder of odd-sized photos agree to 1e-4.
TEST(Pretrained, ImagenetPresetMatchesTorchvisionOnOddSizedPhotos) {
  if (!fs::exists(fx("resnet18.pt"))) GTEST_SKIP() << "resnet18.pt missing: run ctest (make_fixtures makes it)";
  test::TempDir d;
  fs::create_directories(d / "photos/a");
  write_photo(d / "photos/a/p1.png", 301, 457, 1);
  write_photo(d / "photos/a/p2.png", 389, 263, 2);
  write_photo(d / "photos/a/p3.png", 200, 211, 3);  // smaller than the crop: upscaled by the resize
  auto r = test::run(test::python() + " " + test::source_dir() + "/scripts/torchvision_features.py " +
                     fx("resnet18.pt") + " " + (d / "photos/a") + " imagenet layer2 " + (d / "ref.npy"));
  ASSERT_EQ(r.code, 0) << r.out;
  auto g = test::cli("extract --model " + fx("resnet18.pt") + " --data folder:" + (d / "photos") +
                     " --layers layer2 --pool flatten --preprocess imagenet --threads 1 --out " + (d / "g.npy"));
  ASSERT_EQ(g.code, 0) << g.out;
  auto ref = io::read_npy(d / "ref.npy"), got = io::read_npy(d / "g.npy");
  ASSERT_EQ(ref.sizes(), got.sizes());
  double diff = (ref - got).abs().max().item<double>();
  EXPECT_LE(diff, 1e-4) << "max abs difference to torchvision " << diff;
}

// A TorchScript base cut and given a new head exports as one TorchScript file that
// Python's torch.jit.load runs with graft's outputs; native models refuse clearly.
TEST(Pretrained, ExportedCutModelRunsInPython) {
  if (!fs::exists(fx("tiny_tfjs.pt"))) GTEST_SKIP() << "tiny_tfjs.pt missing: run ctest (convert_tfjs makes it)";
  test::TempDir d;
  for (std::string pool : {"flatten", "avg"}) {
    auto base = models::load_torchscript(fx("tiny_tfjs.pt"));
    models::HeadSpec h;
    h.kind = pool == "avg" ? "mlp" : "linear";
    h.pool = pool;
    auto cut = models::cut_and_add_head(base, "mixed0", 4, {3, 11, 9}, h, 3);
    io::ModelMeta meta{"cut", {3, 11, 9}, {"w", "x", "y", "z"}, "resize=11x9", {}};
    models::export_torchscript(*cut, meta, d / "m.pt");
    cut->train(false);
    auto x = torch::rand({2, 3, 11, 9});
    at::Tensor want;
    {
      torch::NoGradGuard ng;
      want = cut->forward(x);
    }
    io::write_npy(d / "x.npy", x);
    io::write_npy(d / "y.npy", want);
    auto r = test::run(test::python() + " " + test::source_dir() + "/scripts/check_torchscript_load.py " + (d / "m.pt") +
                       " " + (d / "x.npy") + " " + (d / "y.npy"));
    EXPECT_EQ(r.code, 0) << pool << ": " << r.out;
    // graft reads its own export back, with the classes and preprocessing inside.
    auto back = models::load_torchscript(d / "m.pt");
    EXPECT_NE(models::torchscript_meta(*back).find("\"w\""), std::string::npos);
    EXPECT_EQ(models::torchscript_preprocess(*back), "resize=11x9");
  }
}

// Every zoo model (C++ modules) exports as TorchScript that Python runs with graft's outputs,
// BatchNorm statistics and residual blocks included; so does a zoo model cut and given a
// new head (fine-tuned from a graft-trained network).
TEST(Pretrained, ExportedZooModelsRunInPython) {
  test::TempDir d;
  struct Case {
    std::string arch;
    std::vector<int64_t> shape;
  };
  const std::vector<Case> cases = {{"dann_mnist", {3, 28, 28}}, {"dann_mnist_bn", {1, 28, 28}},
                                   {"dann_svhn", {3, 32, 32}},  {"convnet6", {1, 28, 28}},
                                   {"resnet8", {3, 32, 32}},    {"mlp_bn:8,6", {5}}};
  auto check = [&](models::Backbone& m, const std::vector<int64_t>& shape, const std::string& name) {
    torch::NoGradGuard ng;
    for (auto& [n, b] : m.named_buffers())  // statistics that are not the defaults 0 and 1
      if (n.find("running_") != std::string::npos) b.copy_(torch::rand_like(b) + 0.5);
    m.train(false);
    io::ModelMeta meta{m.arch(), shape, {"a", "b", "c"}, "", {}};
    models::export_torchscript(m, meta, d / (name + ".pt"));
    std::vector<int64_t> s{2};
    s.insert(s.end(), shape.begin(), shape.end());
    auto x = torch::rand(s);
    io::write_npy(d / "x.npy", x);
    io::write_npy(d / "y.npy", m.forward(x));
    auto r = test::run(test::python() + " " + test::source_dir() + "/scripts/check_torchscript_load.py " +
                       (d / (name + ".pt")) + " " + (d / "x.npy") + " " + (d / "y.npy"));
    EXPECT_EQ(r.code, 0) << name << ": " << r.out;
  };
  for (const auto& c : cases) {
    auto m = models::create_model(c.arch, c.shape, 3, 1);
    check(*m, c.shape, c.arch.substr(0, c.arch.find(':')));
  }
  auto base = models::create_model("resnet8", {3, 32, 32}, 10, 2);
  models::HeadSpec h;
  h.kind = "mlp";
  auto cut = models::cut_and_add_head(base, "layer1", 3, {3, 32, 32}, h, 3);
  check(*cut, {3, 32, 32}, "resnet8_cut");
}

// finetune on a TorchScript base also writes model.pt, which predict and export take.
TEST(Pretrained, FinetuneWritesTorchScriptThatPredictRuns) {
  if (!fs::exists(fx("tiny_tfjs.pt"))) GTEST_SKIP() << "tiny_tfjs.pt missing: run ctest (convert_tfjs makes it)";
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 40, 2, 1);
  auto spec = "idx:" + (d / "x") + "," + (d / "y");
  auto r = test::cli("finetune --model " + fx("tiny_tfjs.pt") + " --cut mixed0 --channels 3 --data " + spec +
                     " --epochs 1 --val-split 0 --threads 1 --quiet --out " + (d / "ft"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("using the preprocessing stored in"), std::string::npos) << r.out;
  ASSERT_TRUE(fs::exists(d / "ft/model.pt")) << r.out;
  auto p = test::cli("predict --model " + (d / "ft/model.pt") + " --data " + spec + " --out " + (d / "p.csv"));
  EXPECT_EQ(p.code, 0) << p.out;
  auto e = test::cli("export " + (d / "ft/model.ckpt") + " --out " + (d / "e.pt"));
  EXPECT_EQ(e.code, 0) << e.out;
  EXPECT_NE(e.out.find("max |difference| to graft 0"), std::string::npos) << e.out;
}

// A model whose forward() is not its children in order (a scripted ViT) fails in one line
// that names the layer and points to the chain recipe, not with a TorchScript traceback.
TEST(Pretrained, NonChainModelFailsInOneLine) {
  test::TempDir d;
  auto r = test::run(test::python() + " " + test::source_dir() + "/scripts/export_vit_chain.py " + (d / "vit.pt") +
                     " --tiny");
  ASSERT_EQ(r.code, 0) << r.out;
  auto bad = test::cli("layers " + (d / "vit_raw.pt") + " --input-shape 3,32,32");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("layer 'encoder'"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("Models that are not a chain"), std::string::npos) << bad.out;
  EXPECT_EQ(bad.out.find("Traceback"), std::string::npos) << bad.out;
  auto good = test::cli("layers " + (d / "vit.pt") + " --input-shape 3,32,32");
  EXPECT_EQ(good.code, 0) << good.out;
  EXPECT_NE(good.out.find("reproduce forward()"), std::string::npos) << good.out;
}
