#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "graft/core/check.h"
#include "graft/features/extract.h"
#include "graft/io/npy.h"
#include "graft/models/zoo.h"
#include "test_util.h"

using namespace graft;
using namespace graft::models;

namespace {
std::string fx(const std::string& name) { return test::fixtures() + "/" + name; }
}  // namespace

TEST(Zoo, NamedLayersShapesAndParameters) {
  auto m = create_model("dann_mnist", {1, 28, 28}, 10);
  auto info = m->describe({1, 28, 28});
  ASSERT_EQ(info.size(), 8u);
  EXPECT_EQ(info[0].name, "conv1");
  EXPECT_EQ(info[3].out_shape, (std::vector<int64_t>{48, 4, 4}));
  EXPECT_EQ(info[7].out_shape, (std::vector<int64_t>{10}));
  EXPECT_EQ(info[0].params, 32 * 25 + 32);
  for (const auto& [n, p] : m->named_parameters()) EXPECT_NO_THROW(m->layer_index(layer_of_param(n))) << n;

  for (std::string arch : {"dann_svhn", "resnet8", "resnet20"}) {
    auto r = create_model(arch, {3, 32, 32}, 7);
    EXPECT_EQ(r->forward(torch::zeros({2, 3, 32, 32})).sizes(), at::IntArrayRef({2, 7})) << arch;
  }
  auto mlp = create_model("mlp:8,4", {2}, 2);
  EXPECT_EQ(mlp->layer_names(), (std::vector<std::string>{"fc1", "fc2", "out"}));
}

TEST(Zoo, TapsEqualRangesAndUnknownNamesSuggest) {
  auto m = create_model("dann_mnist", {3, 28, 28}, 10);
  m->train(false);
  auto x = torch::randn({2, 3, 28, 28});
  auto taps = m->forward_taps(x, {m->layer_index("fc1"), m->layer_index("pool2")});
  EXPECT_TRUE(torch::allclose(taps[1], m->forward_range(x, 0, 4)));
  EXPECT_TRUE(torch::allclose(taps[0], m->forward_range(taps[1], 4, 6)));
  EXPECT_TRUE(torch::allclose(m->forward(x), m->forward_range(taps[0], 6, 8)));
  try {
    m->layer_index("conv3");
    FAIL();
  } catch (const Error& e) {
    std::string s = e.what();
    EXPECT_NE(s.find("did you mean"), std::string::npos) << s;
    EXPECT_NE(s.find("conv1"), std::string::npos) << s;
  }
  EXPECT_THROW(create_model("dann_mnst", {1, 28, 28}, 10), Error);
  EXPECT_THROW(create_model("dann_mnist", {1, 8, 8}, 10), Error);
  EXPECT_THROW(create_model("dann_mnist", {1, 28, 28}, 1), Error);
}

TEST(TorchScript, ActivationsMatchPythonAtSeveralLayers) {
  auto m = load_torchscript(fx("resnet_tiny.pt"));
  m->train(false);
  torch::NoGradGuard ng;
  auto x = io::read_npy(fx("resnet_tiny_input.npy"));
  std::vector<std::string> names = {"layer2", "layer4", "avgpool", "fc"};
  std::vector<size_t> idx;
  for (auto& n : names) idx.push_back(m->layer_index(n));
  auto outs = m->forward_taps(x, idx);
  for (size_t i = 0; i < names.size(); ++i) {
    auto want = io::read_npy(fx("resnet_tiny_" + names[i] + ".npy"));
    EXPECT_EQ(outs[i].sizes(), want.sizes()) << names[i];
    EXPECT_TRUE(torch::allclose(outs[i], want, 1e-4, 1e-5)) << names[i];
  }
  EXPECT_EQ(verify_torchscript_chain(*m, {3, 32, 32}), 0.0);
}

TEST(TorchScript, PoolsBeforeALinearChildLikeTorchvision) {
  auto m = load_torchscript(fx("mobilenet.pt"));
  m->train(false);
  torch::NoGradGuard ng;
  auto x = io::read_npy(fx("mobilenet_input.npy"));
  EXPECT_TRUE(torch::allclose(m->forward(x), io::read_npy(fx("mobilenet_out.npy")), 1e-4, 1e-5));
  auto twisted = load_torchscript(fx("scripted_fn.pt"));
  EXPECT_THROW(verify_torchscript_chain(*twisted, {4}), Error);
}

// "features.3": a child of the Sequential 'features' of torchvision's MobileNetV2, tapped by
// its dotted path, equals Python's model.features[:4](x); paths into a child that is not a
// chain, or to a child that does not exist, are refused naming the level.
TEST(TorchScript, DottedTapsReachInsideNestedChains) {
  auto m = load_torchscript(fx("mobilenet.pt"));
  m->train(false);
  auto x = io::read_npy(fx("mobilenet_input.npy"));
  features::ExtractOptions o;
  o.layers = {"features.3", "classifier"};
  o.pool = "flatten";
  features::FeatureExtractor fe(*m, o);
  auto f = fe.per_layer(x);
  auto want = io::read_npy(fx("mobilenet_features3.npy"));
  ASSERT_EQ(f[0].sizes(), want.sizes());
  EXPECT_TRUE(torch::allclose(f[0], want, 1e-4, 1e-5)) << (f[0] - want).abs().max().item<double>();
  EXPECT_TRUE(torch::allclose(f[1], io::read_npy(fx("mobilenet_out.npy")), 1e-4, 1e-5));
  o.layers = {"features.4.conv"};  // features[4] is an InvertedResidual (a residual forward)
  auto e1 = test::error_of([&] { features::FeatureExtractor bad(*m, o); });
  EXPECT_NE(e1.find("'features.4' is a InvertedResidual, not a Sequential"), std::string::npos) << e1;
  o.layers = {"features.99"};
  auto e2 = test::error_of([&] { features::FeatureExtractor bad(*m, o); });
  EXPECT_NE(e2.find("'features' has no child '99'; its children are 0, 1,"), std::string::npos) << e2;
  auto native = create_model("dann_mnist", {1, 28, 28}, 10, 0);
  o.layers = {"conv1.0"};
  auto e3 = test::error_of([&] { features::FeatureExtractor bad(*native, o); });
  EXPECT_NE(e3.find("has no nested children to tap"), std::string::npos) << e3;
}

TEST(TorchScript, ParametersReallyTrain) {
  auto m = load_torchscript(fx("resnet_tiny.pt"));
  auto params = m->named_parameters();
  ASSERT_GT(params.size(), 20u);
  EXPECT_EQ(params.front().first, "conv1.weight");
  std::vector<torch::Tensor> ps;
  for (auto& [n, p] : params) ps.push_back(p);
  torch::optim::SGD opt(ps, torch::optim::SGDOptions(0.1));
  auto before = params.front().second.clone();
  m->train(true);
  auto loss = torch::nn::functional::cross_entropy(m->forward(torch::randn({4, 3, 32, 32})), torch::tensor({0, 1, 2, 3}));
  loss.backward();
  for (auto& [n, p] : params) EXPECT_TRUE(p.grad().defined()) << n;
  opt.step();
  EXPECT_FALSE(torch::equal(before, m->named_parameters().front().second));
}

TEST(TorchScript, BadFilesSayWhatToDo) {
  test::TempDir d;
  std::ofstream(d / "junk.pt") << "this is not a zip archive";
  try {
    load_torchscript(d / "junk.pt");
    FAIL();
  } catch (const Error& e) {
    std::string s = e.what();
    EXPECT_NE(s.find("junk.pt"), std::string::npos);
    EXPECT_NE(s.find("torch.jit.script"), std::string::npos);
  }
  std::filesystem::copy_file(fx("resnet_tiny.pt"), d / "trunc.pt");
  std::filesystem::resize_file(d / "trunc.pt", 4000);
  EXPECT_THROW(load_torchscript(d / "trunc.pt"), Error);
  EXPECT_THROW(load_torchscript(d / "missing.pt"), Error);
}
