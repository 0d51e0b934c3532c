// Off-the-shelf transfer: test-time views, the raw-pixel tap, the per-layer study,
// the deployable model and bounded memory of streamed extraction.
#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <sys/resource.h>
#include <torch/torch.h>

#include <fstream>

#include "graft/core/check.h"
#include "graft/data/dataset.h"
#include "graft/data/readers.h"
#include "graft/features/offtheshelf.h"
#include "graft/io/npy.h"
#include "graft/models/zoo.h"
#include "test_util.h"

using namespace graft;

TEST(Features, TestTimeViews) {
  auto x = torch::rand({2, 3, 16, 16});
  EXPECT_EQ(features::tta_views(x, "none").size(), 1u);
  auto flip = features::tta_views(x, "flip");
  ASSERT_EQ(flip.size(), 2u);
  EXPECT_TRUE(torch::equal(flip[1], x.flip({3})));
  auto crops = features::tta_views(x, "crops");
  ASSERT_EQ(crops.size(), 5u);
  for (const auto& v : crops) EXPECT_EQ(v.sizes(), x.sizes());
  EXPECT_EQ(features::tta_views(x, "crops+flip").size(), 10u);
  // A constant image looks the same in every crop; the top-left crop of a ramp starts at the ramp's start.
  auto c = torch::full({1, 1, 16, 16}, 0.25f);
  for (const auto& v : features::tta_views(c, "crops")) EXPECT_TRUE(torch::allclose(v, c));
  auto ramp = torch::arange(16, torch::kFloat).view({1, 1, 1, 16}).expand({1, 1, 16, 16}).contiguous();
  auto views = features::tta_views(ramp, "crops");
  EXPECT_LT(views[1][0][0][0][15].item<float>(), 14.f);  // top-left crop never sees the last columns
  EXPECT_GT(views[2][0][0][0][0].item<float>(), 1.f);    // top-right crop never sees the first columns
  // Vectors have no spatial views.
  EXPECT_EQ(features::tta_views(torch::rand({4, 5}), "crops+flip").size(), 1u);
}

TEST(Features, ViewsAreAveragedAndInputTapIsRawPixels) {
  auto model = models::create_model("dann_mnist", {1, 28, 28}, 10, 3);
  model->train(false);
  auto x = torch::rand({3, 1, 28, 28});
  features::ExtractOptions o;
  o.layers = {"input", "conv2"};
  o.tta = "flip";
  features::FeatureExtractor fx(*model, o);
  auto f = fx.per_layer(x);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_TRUE(torch::allclose(f[0], (x.flatten(1) + x.flip({3}).flatten(1)) / 2));
  torch::NoGradGuard ng;
  auto i = model->layer_index("conv2");
  auto a = model->forward_taps(x, {i})[0].mean({2, 3});
  auto b = model->forward_taps(x.flip({3}), {i})[0].mean({2, 3});
  EXPECT_TRUE(torch::allclose(f[1], (a + b) / 2, 1e-5, 1e-6));
  // concatenated() normalises the joined vector
  o.norm = "l2";
  o.tta = "none";
  features::FeatureExtractor fx2(*model, o);
  EXPECT_TRUE(torch::allclose(fx2.concatenated(x).norm(2, 1), torch::ones({3}), 1e-5, 1e-6));
  o.tta = "crops4";
  EXPECT_NE(test::error_of([&] { features::FeatureExtractor bad(*model, o); }).find("--tta 'crops4'"),
            std::string::npos);
}

TEST(Transfer, StudyTablesLayersAndDeploysTheBest) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 200, 4, 1);
  test::write_toy_idx(d / "tx", d / "ty", 80, 4, 2);
  auto train = data::load_idx_dataset(d / "x", d / "y", {}, "toy");
  auto test_set = data::load_idx_dataset(d / "tx", d / "ty", {}, "toy-test");
  auto model = models::create_model("mlp:16", {1, 8, 8}, 4, 5);
  io::ModelMeta meta{"mlp:16", {1, 8, 8}, train->class_names(), "normalize=0.5:0.5", {}};
  features::TransferOptions t;
  t.features.layers = {"input", "fc1"};
  t.labels_per_class = {4, 10};
  t.seeds = {1, 2, 3};
  t.classifier.folds = 2;
  std::vector<std::string> lines;
  features::OffTheShelfModel deploy;
  auto r = features::run_offtheshelf(model, meta, train, test_set, t,
                                     [&](const std::string& s) { lines.push_back(s); }, &deploy);
  EXPECT_EQ(r.runs.size(), 2u * 2u * 3u);
  EXPECT_EQ(r.cells.size(), 4u);
  EXPECT_EQ(lines.size(), 1u + r.runs.size());
  for (const auto& run : r.runs) EXPECT_EQ(run.train_size, 4 * run.labels_per_class);
  // Row brightness separates the toy classes linearly: raw pixels classify them well.
  for (const auto& c : r.cells)
    if (c.layer == "input") {
      EXPECT_GT(c.mean, 0.8) << c.labels_per_class;
    }
  // Different seeds draw different labelled examples, so there is spread, and a best layer per budget.
  ASSERT_EQ(r.best.size(), 2u);
  auto table = r.table();
  EXPECT_NE(table.find("| input |"), std::string::npos) << table;
  EXPECT_NE(table.find(" *"), std::string::npos) << table;
  EXPECT_NE(r.to_csv().find("layer,labels_per_class,seed"), std::string::npos);

  // The deployable model round-trips through a checkpoint and scores like the study's classifier.
  ASSERT_TRUE(deploy.backbone);
  deploy.save(d / "ots.ckpt");
  auto ck = io::load_checkpoint(d / "ots.ckpt");
  ASSERT_TRUE(features::OffTheShelfModel::holds(ck));
  auto back = features::OffTheShelfModel::from_checkpoint(ck);
  EXPECT_EQ(back.class_names, train->class_names());
  EXPECT_EQ(back.recipe.layers, deploy.recipe.layers);
  auto x = (test_set->get_batch({0, 1, 2, 3, 4}).input - 0.5) / 0.5;
  EXPECT_TRUE(torch::allclose(back.scores(x), deploy.scores(x), 1e-5, 1e-5));
  // A plain training checkpoint is not an off-the-shelf model.
  io::save_checkpoint(d / "plain.ckpt", *model, meta, nullptr, nullptr);
  auto plain = io::load_checkpoint(d / "plain.ckpt");
  EXPECT_FALSE(features::OffTheShelfModel::holds(plain));
  EXPECT_NE(test::error_of([&] { features::OffTheShelfModel::from_checkpoint(plain); }).find("no off-the-shelf"),
            std::string::npos);

  // A budget larger than a class holds names the class.
  t.labels_per_class = {60};
  auto e = test::error_of([&] { features::run_offtheshelf(model, meta, train, test_set, t); });
  EXPECT_NE(e.find("fewer than the 60"), std::string::npos) << e;
  t.labels_per_class = {4};
  t.features.layers = {"fc"};
  e = test::error_of([&] { features::run_offtheshelf(model, meta, train, test_set, t); });
  EXPECT_NE(e.find("did you mean"), std::string::npos) << e;
  t.features.layers = {"input"};
  t.labels_per_class = {-1};
  EXPECT_NE(test::error_of([&] { t.validate(); }).find("--labels-per-class"), std::string::npos);
}

TEST(Transfer, CliTransferSavesAModelThatPredictRuns) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 120, 3, 1);
  test::write_toy_idx(d / "tx", d / "ty", 60, 3, 2);
  auto spec = "idx:" + (d / "x") + "," + (d / "y");
  auto tspec = "idx:" + (d / "tx") + "," + (d / "ty");
  ASSERT_EQ(test::cli("train --model mlp:16 --data " + spec + " --epochs 1 --out " + (d / "src") + " --quiet").code, 0);
  auto r = test::cli("transfer --recipe offtheshelf --model " + (d / "src/model.ckpt") + " --train " + spec +
                     " --test " + tspec + " --labels-per-class 5,10 --seeds 1,2 --folds 2 --out " + (d / "study") +
                     " --save " + (d / "best.ckpt"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("| input |"), std::string::npos) << r.out;  // the default layers include the pixel baseline
  EXPECT_NE(r.out.find("| fc1 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("layer chosen by cross-validation at 10 labels/class"), std::string::npos) << r.out;
  std::ifstream js(d / "study/results.json");
  auto j = nlohmann::json::parse(js);
  EXPECT_EQ(j["runs"].size(), 3u * 2u * 2u);  // layers input, flatten, fc1; 2 budgets; 2 seeds
  auto p = test::cli("predict --model " + (d / "best.ckpt") + " --data " + tspec + " --out " + (d / "p.csv"));
  ASSERT_EQ(p.code, 0) << p.out;
  std::ifstream csv(d / "p.csv");
  std::string line;
  int rows = 0, right = 0;
  std::getline(csv, line);
  EXPECT_EQ(line, "index,label,class1,score1");
  while (std::getline(csv, line)) {
    ++rows;
    auto a = line.find(','), b = line.find(',', a + 1), c = line.find(',', b + 1);
    right += line.substr(a + 1, b - a - 1) == line.substr(b + 1, c - b - 1);
  }
  EXPECT_EQ(rows, 60);
  EXPECT_GT(right, 40);  // toy classes are easy; the deployed classifier must actually classify
  auto bad = test::cli("transfer --recipe finetune --model mlp --train " + spec + " --test " + tspec);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("--recipe 'finetune'"), std::string::npos) << bad.out;
}

// Peak RSS of a child process tree, in KiB (the maximum over all children so far).
static long children_max_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_CHILDREN, &u);
  return u.ru_maxrss;
}

TEST(Features, StreamedExtractionMemoryDoesNotGrowWithImages) {
  if (test::kAddressSanitizer)
    GTEST_SKIP() << "AddressSanitizer keeps freed blocks in its quarantine: peak RSS measures ASan, not graft";
  // A list file naming the same few decoded-on-demand images many times: the dataset
  // holds only paths, so any growth of peak RSS would come from extraction itself.
  // 64x64x3 raw-pixel features are 48 KiB per image: 5000 images would add ~240 MiB.
  test::TempDir d;
  for (int i = 0; i < 4; ++i) {
    cv::Mat m(64, 64, CV_8UC3, cv::Scalar(40 * i, 255 - 40 * i, 7 * i));
    ASSERT_TRUE(cv::imwrite(d / ("im" + std::to_string(i) + ".png"), m));
  }
  auto write_list = [&](const std::string& path, int n) {
    std::ofstream f(path);
    for (int i = 0; i < n; ++i) f << d / ("im" + std::to_string(i % 4) + ".png") << " " << i % 2 << "\n";
  };
  write_list(d / "small.txt", 500);
  write_list(d / "large.txt", 5000);
  auto args = [&](const std::string& list, const std::string& out) {
    return "extract --model mlp:8 --layers input,fc1 --data list:" + (d / list) + " --out " + (d / out) +
           " --batch-size 64 --threads 1";
  };
  ASSERT_EQ(test::cli(args("small.txt", "s.npy")).code, 0);
  long small = children_max_rss_kib();
  auto r = test::cli(args("large.txt", "l.npy"));
  ASSERT_EQ(r.code, 0) << r.out;
  long both = children_max_rss_kib();
  EXPECT_EQ(io::read_npy(d / "l.npy").size(0), 5000);
  // Allow 40 MiB of noise (allocator, thread stacks); accumulating features would add ~215 MiB.
  EXPECT_LT(both, small + 40 * 1024) << "peak RSS grew from " << small << " KiB (500 images) to " << both
                                     << " KiB (5000 images)";
}

TEST(TorchScript, ResNet18FeaturesMatchPython) {
  // torchvision's ResNet-18 exported by scripts/make_fixtures.py; Python's features
  // come from the eager model, graft's from the TorchScript file cut at each layer.
  auto m = models::load_torchscript(test::fixtures() + "/resnet18.pt");
  auto x = io::read_npy(test::fixtures() + "/resnet18_input.npy");
  features::ExtractOptions o;
  o.layers = {"layer2", "layer4", "avgpool"};
  o.pool = "flatten";
  m->train(false);
  // Both the inference-optimised copy (frozen, BatchNorm folded: graft extract's default)
  // and the model as loaded.
  for (bool optimize : {true, false}) {
    o.optimize = optimize;
    features::FeatureExtractor fx(*m, o);
    auto f = fx.per_layer(x);
    for (size_t i = 0; i < o.layers.size(); ++i) {
      auto want = io::read_npy(test::fixtures() + "/resnet18_" + o.layers[i] + ".npy");
      ASSERT_EQ(f[i].sizes(), want.sizes()) << o.layers[i];
      auto diff = (f[i] - want).abs().max().item<double>();
      EXPECT_TRUE(torch::allclose(f[i], want, 1e-4, 1e-4))
          << o.layers[i] << (optimize ? " (optimised)" : "") << " max abs diff " << diff;
    }
  }
}

// The layer `--save` deploys is chosen by cross-validation on the labelled training images,
// never by test accuracy: with test labels that contradict the training task (shifted by
// one class), the layer that is best on the test set differs from the one CV picks, and the
// choice must follow CV.
TEST(Transfer, LayerIsChosenByCrossValidationNotByTest) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 200, 4, 1);
  test::write_toy_idx(d / "tx", d / "ty", 80, 4, 2);
  {
    at::manual_seed(2);
    auto x = (at::rand({80, 8, 8}) * 100).to(at::kByte);
    auto y = at::arange(80, at::kLong).remainder(4);
    for (int64_t i = 0; i < 80; ++i) x[i][y[i].item<int64_t>() % 8].fill_(250);
    data::write_idx(d / "tx", x);
    data::write_idx(d / "ty", ((y + 1) % 4).to(at::kByte));  // test labels contradict the training task
  }
  auto train = data::load_idx_dataset(d / "x", d / "y", {}, "toy");
  auto test_set = data::load_idx_dataset(d / "tx", d / "ty", {}, "toy-test");
  // fc1 of width 2 cannot separate 4 classes: lower CV accuracy than the pixels.
  auto model = models::create_model("mlp:2", {1, 8, 8}, 4, 5);
  io::ModelMeta meta{"mlp:2", {1, 8, 8}, train->class_names(), "normalize=0.5:0.5", {}};
  features::TransferOptions t;
  t.features.layers = {"input", "fc1"};
  t.labels_per_class = {10};
  t.seeds = {1, 2};
  t.classifier.folds = 2;
  t.classifier.C = 1.0;  // a given C is cross-validated too
  features::OffTheShelfModel deploy;
  auto r = features::run_offtheshelf(model, meta, train, test_set, t, {}, &deploy);
  const features::TransferCell *in = nullptr, *fc = nullptr;
  for (const auto& c : r.cells) (c.layer == "input" ? in : fc) = &c;
  ASSERT_TRUE(in && fc);
  for (const auto& run : r.runs) EXPECT_GT(run.cv_accuracy, 0.0) << run.layer;
  // The construction discriminates: CV prefers the pixels, the contradicting test set the other layer.
  ASSERT_GT(in->cv_mean, fc->cv_mean);
  ASSERT_LT(in->mean, fc->mean);
  ASSERT_EQ(r.best.size(), 1u);
  EXPECT_EQ(r.best[0].second, "input");
  EXPECT_EQ(deploy.recipe.layers, std::vector<std::string>{"input"});
  auto table = r.table();
  EXPECT_NE(table.find("| CV |"), std::string::npos) << table;
  EXPECT_NE(r.to_json().dump().find("cross-validation"), std::string::npos);
}
