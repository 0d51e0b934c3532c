// The SynDigits-style domain: seeded output, balanced labels, disjoint font families
// between train and test, readable (non-blank, coloured) images, clear bad-input errors.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "graft/core/check.h"
#include "graft/data/builders.h"
#include "graft/data/readers.h"
#include "test_util.h"

using namespace graft;
using namespace graft::data;
using graft::test::error_of;

namespace {

// Fonts of the machine; tests that need them skip (saying why) when none draw digits.
const std::vector<FontFace>& system_fonts() {
  static const auto k = find_digit_fonts(SynDigitsOptions().font_dirs);
  return k;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

SynDigitsOptions small(const std::string& out, uint64_t seed) {
  SynDigitsOptions o;
  o.out_dir = out;
  o.seed = seed;
  o.n_train = 60;
  o.n_test = 40;
  return o;
}

#define NEED_FONTS()                                                                                      \
  if (system_fonts().size() < 2)                                                                          \
  GTEST_SKIP() << "fewer than two digit fonts under /usr/share/fonts; install the font packages of " \
                  "scripts/setup.sh"

}  // namespace

TEST(SynDigits, FindsManyFacesAndOnlyDigitFonts) {
  NEED_FONTS();
  std::set<std::string> families;
  for (const auto& f : system_fonts()) families.insert(f.family);
  std::cout << "[ info ] " << system_fonts().size() << " faces of " << families.size() << " families\n";
  // one entry per (family, style)
  std::set<std::pair<std::string, std::string>> keys;
  for (const auto& f : system_fonts()) EXPECT_TRUE(keys.insert({f.family, f.style}).second) << f.family << " " << f.style;
  // URW's dingbat face maps '4' to a check mark; keycap faces frame every glyph
  for (const auto& f : system_fonts()) {
    EXPECT_NE(f.family, "D050000L") << f.file;
    EXPECT_EQ(f.family.find("Dingbat"), std::string::npos) << f.file;
    EXPECT_EQ(f.family.find("Keyboard"), std::string::npos) << f.file;
  }
}

TEST(SynDigits, SameSeedSameBytesOtherSeedOtherImages) {
  NEED_FONTS();
  test::TempDir d;
  make_syndigits(small(d / "a", 3));
  make_syndigits(small(d / "b", 3));
  make_syndigits(small(d / "c", 4));
  for (std::string f : {"train-images-idx4-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx4-ubyte",
                        "t10k-labels-idx1-ubyte", "fonts.txt"}) {
    auto a = slurp(d / ("a/" + f));
    ASSERT_FALSE(a.empty()) << f;
    EXPECT_EQ(a, slurp(d / ("b/" + f))) << f;
  }
  EXPECT_NE(slurp(d / "a/train-images-idx4-ubyte"), slurp(d / "c/train-images-idx4-ubyte"));
}

TEST(SynDigits, BalancedLabelsColourImagesWithAVisibleDigit) {
  NEED_FONTS();
  test::TempDir d;
  auto o = small(d / "s", 1);
  o.n_train = 200;
  make_syndigits(o);
  auto ds = load_idx_dataset(d / "s/train-images-idx4-ubyte", d / "s/train-labels-idx1-ubyte", {}, "s");
  EXPECT_EQ(ds->input_shape(), (std::vector<int64_t>{3, 28, 28}));  // MNIST's size, RGB
  auto lab = read_idx(d / "s/train-labels-idx1-ubyte").to(at::kLong);
  ASSERT_EQ(lab.size(0), 200);
  EXPECT_TRUE(at::equal(at::bincount(lab, {}, 10), at::full({10}, 20, at::kLong)));
  // labels are shuffled, not 0,1,2,...
  EXPECT_FALSE(at::equal(lab, at::arange(200, at::kLong).remainder(10)));
  auto img = read_idx(d / "s/train-images-idx4-ubyte").to(at::kFloat);  // (N,28,28,3)
  ASSERT_EQ(img.sizes(), at::IntArrayRef({200, 28, 28, 3}));
  // every image has contrast (the digit differs from the background by >= 0.3 luminance
  // over its strokes): the luminance range of each image is wide
  auto lum = (img * at::tensor({0.299f, 0.587f, 0.114f})).sum(3).flatten(1);
  auto range = std::get<0>(lum.max(1)) - std::get<0>(lum.min(1));
  EXPECT_GT(range.min().item<float>(), 40.0f) << "an image without a visible digit";
  // colour, not gray
  EXPECT_GT((img.select(3, 0) - img.select(3, 1)).abs().mean().item<float>(), 5.0f);
}

TEST(SynDigits, TestFontsAreOtherFamilies) {
  NEED_FONTS();
  auto [train, test] = split_fonts_by_family(system_fonts(), 0.25);
  EXPECT_EQ(train.size() + test.size(), system_fonts().size());
  ASSERT_FALSE(train.empty());
  ASSERT_FALSE(test.empty());
  // groups: the family name's first word (Go / Go Mono stay on one side)
  auto group = [](const std::string& fam) { return fam.substr(0, fam.find(' ')); };
  std::set<std::string> ftr, fte;
  for (const auto& f : train) ftr.insert(group(f.family));
  for (const auto& f : test) fte.insert(group(f.family));
  for (const auto& f : fte) EXPECT_EQ(ftr.count(f), 0u) << f << " is in both splits";
  // the split written next to the data says the same
  test::TempDir d;
  make_syndigits(small(d / "s", 0));
  std::istringstream in(slurp(d / "s/fonts.txt"));
  std::string line;
  std::set<std::string> wtr, wte;
  while (std::getline(in, line)) {
    auto tab = line.find('\t');
    auto fam = line.substr(tab + 1, line.find('\t', tab + 1) - tab - 1);
    (line.substr(0, tab) == "train" ? wtr : wte).insert(group(fam));
  }
  EXPECT_EQ(wtr, ftr);
  EXPECT_EQ(wte, fte);
}

TEST(SynDigits, SplitByFamilyOnMadeUpFaces) {
  std::vector<FontFace> faces;
  for (int fam = 0; fam < 8; ++fam)
    for (std::string style : {"Regular", "Bold"}) faces.push_back({"f" + std::to_string(fam), 0, "Fam" + std::to_string(fam), style});
  auto [tr, te] = split_fonts_by_family(faces, 0.25);
  EXPECT_EQ(te.size(), 4u);  // 2 of 8 families, both styles each
  EXPECT_EQ(tr.size(), 12u);
  for (const auto& a : te)
    for (const auto& b : tr) EXPECT_NE(a.family, b.family);
  // a tiny share still leaves one family for test, a large one one for train
  EXPECT_EQ(split_fonts_by_family(faces, 0.01).second.size(), 2u);
  EXPECT_EQ(split_fonts_by_family(faces, 0.99).first.size(), 2u);
  faces.push_back({"g1", 0, "Go", "Regular"});
  faces.push_back({"g2", 0, "Go Mono", "Regular"});
  auto [tr2, te2] = split_fonts_by_family(faces, 0.25);
  int go_test = 0;
  for (const auto& f : te2) go_test += f.family.rfind("Go", 0) == 0;
  EXPECT_TRUE(go_test == 0 || go_test == 2) << "Go and Go Mono were split";
  faces.resize(2);  // one family only
  EXPECT_NE(error_of([&] { split_fonts_by_family(faces, 0.25); }).find("at least two families"), std::string::npos);
}

TEST(SynDigits, BadInputSaysWhatAndHow) {
  test::TempDir d;
  auto o = small(d / "out", 0);
  o.font_dirs = {d.path()};  // no fonts here
  auto e = error_of([&] { make_syndigits(o); });
  EXPECT_NE(e.find("draws the ten digits"), std::string::npos) << e;
  EXPECT_NE(e.find("--fonts"), std::string::npos) << e;
  EXPECT_FALSE(std::filesystem::exists(d / "out/train-images-idx4-ubyte"));
  o.n_test = 3;
  EXPECT_NE(error_of([&] { make_syndigits(o); }).find("--n-test"), std::string::npos);
}
