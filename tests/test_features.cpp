#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "graft/core/check.h"
#include "graft/data/readers.h"
#include "graft/features/extract.h"
#include "graft/io/npy.h"
#include "graft/models/zoo.h"
#include "graft/train/trainer.h"
#include "test_util.h"

using namespace graft;

TEST(Features, PoolingAndNormalisation) {
  auto a = torch::arange(2 * 3 * 4 * 4, torch::kFloat).view({2, 3, 4, 4});
  EXPECT_EQ(features::pool(a, "flatten").sizes(), at::IntArrayRef({2, 48}));
  EXPECT_TRUE(torch::allclose(features::pool(a, "avg"), a.mean({2, 3})));
  EXPECT_TRUE(torch::equal(features::pool(a, "max"), a.amax({2, 3})));
  auto spp = features::pool(a, "spp");
  EXPECT_EQ(spp.sizes(), at::IntArrayRef({2, 3 + 12}));
  EXPECT_EQ(spp[0][3].item<float>(), 5.f);  // top-left 2x2 cell of channel 0: max of {0,1,4,5}
  auto v = torch::randn({5, 7});
  EXPECT_TRUE(torch::equal(features::pool(v, "avg"), v));
  auto l2 = features::normalize(v, "l2");
  EXPECT_TRUE(torch::allclose(l2.norm(2, 1), torch::ones({5})));
  auto pw = features::normalize(torch::tensor({{4.f, -9.f}}), "power");
  EXPECT_TRUE(torch::allclose(pw, torch::tensor({{2.f, -3.f}}) / std::sqrt(13.f)));
  EXPECT_THROW(features::pool(a, "median"), Error);
  EXPECT_THROW(features::normalize(v, "l3"), Error);
}

TEST(Features, ExtractStreamsTapsToNpyWithSidecar) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 50, 5);
  auto ds = data::load_idx_dataset(d / "x", d / "y", {}, "toy");
  io::ModelMeta meta{"dann_mnist", {1, 8, 8}, ds->class_names(), "normalize=0.5:0.5", {}};
  auto model = models::create_model("mlp:16,8", {1, 8, 8}, 5, 2);
  meta.arch = "mlp:16,8";
  features::ExtractOptions o;
  o.layers = {"fc2", "fc1"};
  o.batch_size = 16;
  o.norm = "l2";
  auto r = features::extract(*model, meta, ds, o, d / "f.npy", d / "f.labels.npy", "mlp");
  EXPECT_EQ(r.rows, 50);
  EXPECT_EQ(r.dim, 24);
  auto f = io::read_npy(d / "f.npy");
  auto y = io::read_npy(d / "f.labels.npy");
  EXPECT_EQ(f.sizes(), at::IntArrayRef({50, 24}));
  EXPECT_EQ(y.scalar_type(), at::kLong);
  EXPECT_TRUE(torch::equal(y, torch::tensor(ds->labels())));
  // the same numbers as a direct forward pass
  model->train(false);
  torch::NoGradGuard ng;
  auto x = (ds->get_batch({0, 1, 2}).input - 0.5) / 0.5;
  auto taps = model->forward_taps(x, {model->layer_index("fc2"), model->layer_index("fc1")});
  auto want = features::normalize(torch::cat({taps[0], taps[1]}, 1), "l2");
  EXPECT_TRUE(torch::allclose(f.narrow(0, 0, 3), want, 1e-5, 1e-6));
  std::ifstream js(d / "f.npy.json");
  auto j = nlohmann::json::parse(js);
  EXPECT_EQ(j["layers"][0]["layer"], "fc2");
  EXPECT_EQ(j["dim"], 24);

  o.layers = {"fc9"};
  try {
    features::extract(*model, meta, ds, o, d / "g.npy", d / "g.labels.npy", "mlp");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(d / "g.npy"));
}

TEST(Features, CliExtractsFromACheckpoint) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 40, 4);
  auto spec = "idx:" + (d / "x") + "," + (d / "y");
  ASSERT_EQ(test::cli("train --model mlp:16 --data " + spec + " --epochs 1 --out " + (d / "run") + " --quiet").code, 0);
  auto r = test::cli("extract --model " + (d / "run/model.ckpt") + " --layers fc1 --data " + spec + " --out " +
                     (d / "feat.npy") + " --norm power");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(io::read_npy(d / "feat.npy").sizes(), at::IntArrayRef({40, 16}));
  EXPECT_EQ(io::read_npy(d / "feat.labels.npy").size(0), 40);
  auto bad = test::cli("extract --model " + (d / "run/model.ckpt") + " --layers fc7 --data " + spec + " --out " +
                       (d / "bad.npy"));
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("unknown layer 'fc7'"), std::string::npos) << bad.out;
  EXPECT_FALSE(std::filesystem::exists(d / "bad.npy"));
}
