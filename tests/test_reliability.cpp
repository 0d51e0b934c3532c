// Hostile inputs and failures (issue 15): memory bounded by the data, one clear line
// per bad input, checkpoint integrity, durable writes on a full disk, run folders,
// divergence without NaN, RFC 4180 CSV and seed parsing.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <csignal>
#include <random>
#include <set>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "graft/classify/linear.h"
#include "graft/core/check.h"
#include "graft/core/parse.h"
#include "graft/data/dataset.h"
#include "graft/data/readers.h"
#include "graft/data/registry.h"
#include "graft/data/transforms.h"
#include "graft/io/archive.h"
#include "graft/io/checkpoint.h"
#include "graft/core/files.h"
#include "graft/io/npy.h"
#include "graft/io/run_dir.h"
#include "graft/models/zoo.h"
#include "graft/train/divergence.h"
#include "test_util.h"

using namespace graft;
using graft::test::error_of;
using graft::test::TempDir;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A .npy file with a hand-written header (to lie about the shape).
std::string npy_with_header(const std::string& descr, const std::string& shape, const std::string& data) {
  std::string h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  while ((10 + h.size() + 1) % 64) h += ' ';
  h += '\n';
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(h.size() & 0xff);
  out += char(h.size() >> 8);
  return out + h + data;
}

std::string idx_header(const std::vector<uint32_t>& dims) {
  std::string h = {0, 0, 8, static_cast<char>(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) h += static_cast<char>((d >> s) & 0xff);
  return h;
}

}  // namespace

// ---- 1, 2: memory bounded by the data; one clear line per bad input ----

TEST(Reliability, ParseIntNamesTheThingAndNeverWraps) {
  EXPECT_EQ(parse_int("42", 0, 100, "x"), 42);
  EXPECT_EQ(parse_int("-1", -1, 5, "x"), -1);
  EXPECT_TRUE(contains(error_of([] { parse_int("-1", 0, 10, "--seed"); }), "--seed: '-1' is not an integer in [0, 10]"));
  EXPECT_TRUE(contains(error_of([] { parse_int("99999999999999999999", 0, INT64_MAX, "n"); }), "not an integer"));
  EXPECT_TRUE(contains(error_of([] { parse_int("", 0, 1, "n"); }), "n: ''"));
  EXPECT_TRUE(contains(error_of([] { parse_int("1e3", 0, 10000, "n"); }), "not an integer"));
  EXPECT_TRUE(contains(error_of([] { parse_int("9223372036854775808", 0, INT64_MAX, "n"); }), "not an integer"));
  EXPECT_EQ(parse_int("9223372036854775807", 0, INT64_MAX, "n"), INT64_MAX);
}

TEST(Reliability, LabelFilesWithHugeOrNegativeLabelsAreRefusedNamingFileAndValue) {
  TempDir tmp;
  auto x = at::zeros({10, 4});
  io::write_npy(tmp / "x.npy", x);
  auto labels_with = [&](int64_t v) {
    auto y = at::arange(10, at::kLong).remainder(3);
    y[7] = static_cast<int64_t>(v);
    io::write_npy(tmp / "y.npy", y);
    return error_of([&] { data::load_npy_dataset(tmp / "x.npy", tmp / "y.npy", "t"); });
  };
  auto e = labels_with(1000000000000LL);  // 10^12: used to allocate 10^12 class names
  EXPECT_TRUE(contains(e, tmp / "y.npy") && contains(e, "1000000000000") && contains(e, "too large")) << e;
  e = labels_with(1000000);  // 10^6 with 10 examples: used to train a 1,000,001-class model
  EXPECT_TRUE(contains(e, "label 1000000 is too large") && contains(e, "at most 100000 classes")) << e;
  e = labels_with(50000);  // under the class limit, but 50001 classes from 10 examples
  EXPECT_TRUE(contains(e, "label 50000 implies 50001 classes but only 10 examples are labelled")) << e;
  e = labels_with(-5);
  EXPECT_TRUE(contains(e, "label -5 is negative") && contains(e, tmp / "y.npy")) << e;
  EXPECT_EQ(labels_with(data::kNoLabel), "");  // -1 marks one unlabelled example
  auto d = data::load_npy_dataset(tmp / "x.npy", tmp / "y.npy", "t");
  EXPECT_EQ(d->num_classes(), 3);
  EXPECT_EQ(d->labels()[7], data::kNoLabel);
  EXPECT_EQ(labels_with(999), "");  // up to 1000 classes are accepted even from few examples
}

TEST(Reliability, LinearFitRefusesAHugeLabelInsteadOfBadAlloc) {
  auto X = at::randn({20, 3});
  auto y = at::arange(20, at::kLong).remainder(2);
  y[3] = static_cast<int64_t>(1000000000000LL);
  classify::LinearClassifier c;
  auto e = error_of([&] { c.fit(X, y); });
  EXPECT_TRUE(contains(e, "1000000000000") && contains(e, "too large")) << e;
}

TEST(Reliability, NpyGarbageOrHugeShapesAreRefusedBeforeAllocating) {
  TempDir tmp;
  write_bytes(tmp / "garbage.npy", npy_with_header("<f4", "(abc, 3)", std::string(12, '\0')));
  auto e = error_of([&] { io::read_npy(tmp / "garbage.npy"); });
  EXPECT_TRUE(contains(e, tmp / "garbage.npy") && contains(e, "malformed .npy shape")) << e;
  EXPECT_FALSE(contains(e, "stoll"));
  // 10^12 x 10^6 floats claimed by a 200-byte file: refused from the header, no allocation.
  write_bytes(tmp / "huge.npy", npy_with_header("<f4", "(1000000000000, 1000000)", std::string(64, '\0')));
  e = error_of([&] { io::read_npy(tmp / "huge.npy"); });
  EXPECT_TRUE(contains(e, tmp / "huge.npy") && contains(e, "declares shape [1000000000000, 1000000]") &&
              contains(e, "holds 64 bytes"))
      << e;
  write_bytes(tmp / "ovf.npy", npy_with_header("<f4", "(1000000000000, 1000000000000)", std::string(64, '\0')));
  e = error_of([&] { io::read_npy(tmp / "ovf.npy"); });
  EXPECT_TRUE(contains(e, tmp / "ovf.npy") && contains(e, "overflows")) << e;
  write_bytes(tmp / "big.npy", npy_with_header("<f4", "(100000000, 100)", std::string(64, '\0')));
  e = error_of([&] { io::read_npy(tmp / "big.npy"); });
  EXPECT_TRUE(contains(e, tmp / "big.npy") && contains(e, "40000000000 bytes") && contains(e, "holds 64 bytes")) << e;
  write_bytes(tmp / "neg.npy", npy_with_header("<f4", "(-3, 2)", std::string(24, '\0')));
  EXPECT_TRUE(contains(error_of([&] { io::read_npy(tmp / "neg.npy"); }), "malformed .npy shape"));
  EXPECT_TRUE(contains(error_of([&] { io::read_npy(tmp.path()); }), "is a folder"));
  // A well-formed file still reads, from disk and from memory.
  auto t = at::arange(6, at::kFloat).reshape({2, 3});
  io::write_npy(tmp / "ok.npy", t);
  EXPECT_TRUE(at::equal(io::read_npy(tmp / "ok.npy"), t));
  auto bytes = read_bytes(tmp / "ok.npy");
  EXPECT_TRUE(at::equal(io::read_npy_buffer(bytes.data(), bytes.size(), "mem"), t));
}

TEST(Reliability, IdxSizesAreCheckedAgainstTheFileBeforeAllocating) {
  TempDir tmp;
  // The header promises 60000 28x28 images; the file holds 10 bytes of data.
  write_bytes(tmp / "short", idx_header({60000, 28, 28}) + std::string(10, '\0'));
  auto e = error_of([&] { data::read_idx(tmp / "short"); });
  EXPECT_TRUE(contains(e, tmp / "short") && contains(e, "promises 47040000 bytes") && contains(e, "holds 10")) << e;
  // 4 dims of 2^32-1 overflow 64 bits.
  write_bytes(tmp / "ovf", idx_header({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}));
  EXPECT_TRUE(contains(error_of([&] { data::read_idx(tmp / "ovf"); }), "overflows"));
  // gzip: a header promising 10^11 bytes in a file of a few hundred bytes.
  std::string raw = idx_header({100000, 1000, 1000}) + std::string(1000, '\0');
  gzFile g = gzopen((tmp / "bomb.gz").c_str(), "wb");
  gzwrite(g, raw.data(), static_cast<unsigned>(raw.size()));
  gzclose(g);
  e = error_of([&] { data::read_idx(tmp / "bomb.gz"); });
  EXPECT_TRUE(contains(e, tmp / "bomb.gz") && contains(e, "more than the")) << e;
  // Zero-sized images: refused when the dataset is opened, naming the file.
  write_bytes(tmp / "img0", idx_header({5, 0, 0}));
  write_bytes(tmp / "lab0", idx_header({5}) + std::string(5, '\0'));
  e = error_of([&] { data::load_idx_dataset(tmp / "img0", tmp / "lab0", {}, "t"); });
  EXPECT_TRUE(contains(e, tmp / "img0") && contains(e, "size 0")) << e;
  EXPECT_TRUE(contains(error_of([&] { data::read_idx(tmp.path()); }), "is a folder"));
  // A good gzip file still reads.
  std::string good = idx_header({2, 2, 2}) + std::string("\1\2\3\4\5\6\7\10", 8);
  g = gzopen((tmp / "good.gz").c_str(), "wb");
  gzwrite(g, good.data(), static_cast<unsigned>(good.size()));
  gzclose(g);
  auto t = data::read_idx(tmp / "good.gz");
  EXPECT_EQ(t.sizes(), at::IntArrayRef({2, 2, 2}));
  EXPECT_EQ(t[1][1][1].item<int>(), 8);
}

TEST(Reliability, ListFileLabelsAreBoundedAndAFolderIsNamed) {
  TempDir tmp;
  write_bytes(tmp / "l.txt", "a.png 0\nb.png 99999999999999999999\n");
  auto e = error_of([&] { data::load_list_file(tmp / "l.txt"); });
  EXPECT_TRUE(contains(e, tmp / "l.txt") && contains(e, "99999999999999999999")) << e;
  write_bytes(tmp / "l.txt", "a.png 0\nb.png 50000\n");
  e = error_of([&] { data::load_list_file(tmp / "l.txt"); });
  EXPECT_TRUE(contains(e, "implies 50001 classes")) << e;
  e = error_of([&] { data::load_list_file(tmp.path()); });
  EXPECT_TRUE(contains(e, "is a folder")) << e;
  auto lf = data::parse_list_file("x.png 1\ny.png 0 # comment\n", tmp / "l.txt");
  ASSERT_EQ(lf.items.size(), 2u);
  EXPECT_EQ(lf.class_names.size(), 2u);
}

TEST(Reliability, DatasetSpecNumbersNeverThrowBareStoll) {
  TempDir tmp;
  io::write_npy(tmp / "x.npy", at::zeros({6, 2}));
  io::write_npy(tmp / "y.npy", at::arange(6, at::kLong).remainder(2));
  std::string base = "npy:" + (tmp / "x.npy") + "," + (tmp / "y.npy");
  for (std::string v : {"@limit=99999999999999999999", "@seed=99999999999999999999", "@classes=0-99999999999",
                        "@per-class=99999999999999999999999"}) {
    auto e = error_of([&] { data::open_dataset(base + v); });
    EXPECT_FALSE(e.empty()) << v;
    EXPECT_FALSE(contains(e, "stoll")) << e;
  }
}

TEST(Reliability, ImageHeaderSizeReadsEveryFormatWithoutDecoding) {
  TempDir tmp;
  cv::Mat m(37, 53, CV_8UC3, cv::Scalar(10, 200, 30));
  for (std::string ext : {".png", ".jpg", ".bmp", ".ppm", ".pgm", ".tif", ".webp"}) {
    std::string p = tmp / ("im" + ext);
    bool ok = false;
    try {
      cv::Mat gray;
      cv::cvtColor(m, gray, cv::COLOR_BGR2GRAY);
      ok = cv::imwrite(p, ext == ".pgm" ? gray : m);
    } catch (const cv::Exception&) {
    }
    if (!ok) {
      std::cout << "[  SKIP    ] no OpenCV encoder for " << ext << "\n";
      continue;
    }
    auto b = read_bytes(p);
    int64_t w = 0, h = 0;
    ASSERT_TRUE(data::image_header_size(reinterpret_cast<const unsigned char*>(b.data()), b.size(), w, h)) << ext;
    EXPECT_EQ(h, 37) << ext;
    EXPECT_EQ(w, 53) << ext;
  }
}

TEST(Reliability, ImagesAboveThePixelCapAreRefusedFromTheirHeader) {
  TempDir tmp;
  cv::Mat m(200, 300, CV_8UC3, cv::Scalar(1, 2, 3));
  cv::imwrite(tmp / "a.png", m);
  auto e = error_of([&] { data::decode_image(tmp / "a.png", data::ImageFileOptions().max_pixels_(1000)); });
  EXPECT_TRUE(contains(e, tmp / "a.png") && contains(e, "300x200") && contains(e, "--max-pixels")) << e;
  EXPECT_EQ(data::decode_image(tmp / "a.png", data::ImageFileOptions().max_pixels_(60000)).sizes(),
            at::IntArrayRef({3, 200, 300}));
  // A 20000x20000 claim (the 1.1 MB PNG took 10.7 GB): a forged IHDR is enough.
  auto b = read_bytes(tmp / "a.png");
  for (int i = 0; i < 2; ++i) {
    uint32_t v = 20000;
    for (int s = 0; s < 4; ++s) b[16 + 4 * i + s] = static_cast<char>((v >> (24 - 8 * s)) & 0xff);
  }
  write_bytes(tmp / "huge.png", b);
  e = error_of([&] { data::decode_image(tmp / "huge.png"); });
  EXPECT_TRUE(contains(e, "20000x20000") && contains(e, "400000000 pixels")) << e;
  // The process-wide cap (--max-pixels) applies when the options leave it at 0.
  data::set_max_pixels(100);
  e = error_of([&] { data::decode_image(tmp / "a.png"); });
  data::set_max_pixels(data::kDefaultMaxPixels);
  EXPECT_TRUE(contains(e, "limit of 100")) << e;
  EXPECT_TRUE(contains(error_of([&] { data::decode_image(tmp.path()); }), "is a folder, not an image file"));
  // The @max-pixels view reaches the decoder.
  fs::create_directories(tmp / "f/c0");
  cv::imwrite(tmp / "f/c0/a.png", m);
  auto d = data::open_dataset("folder:" + (tmp / "f") + "@max-pixels=1000");
  EXPECT_TRUE(contains(error_of([&] { d->get(0); }), "limit of 1000"));
}

TEST(Reliability, DecodingMatchesTheDirectConversionBitForBit) {
  TempDir tmp;
  cv::Mat rgb(9, 7, CV_8UC3), rgba(9, 7, CV_8UC4), gray(9, 7, CV_8UC1);
  cv::randu(rgb, 0, 256);
  cv::randu(rgba, 0, 256);
  cv::randu(gray, 0, 256);
  cv::imwrite(tmp / "rgb.png", rgb);
  cv::imwrite(tmp / "rgba.png", rgba);
  cv::imwrite(tmp / "gray.png", gray);
  auto reference = [](cv::Mat m) {  // the conversion graft used before (BGR(A) -> RGB, /255)
    if (m.channels() == 4) cv::cvtColor(m, m, cv::COLOR_BGRA2BGR);
    if (m.channels() == 3) cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
    auto t = at::from_blob(m.data, {m.rows, m.cols, m.channels()}, at::kByte);
    return t.permute({2, 0, 1}).to(at::kFloat).div_(255.0).contiguous();
  };
  EXPECT_TRUE(at::equal(data::decode_image(tmp / "rgb.png"), reference(rgb)));
  EXPECT_TRUE(at::equal(data::decode_image(tmp / "rgba.png"), reference(rgba)));
  EXPECT_TRUE(at::equal(data::decode_image(tmp / "gray.png"), reference(gray)));
  EXPECT_TRUE(at::equal(data::decode_image(tmp / "rgb.png", 1),
                        reference(cv::imread(tmp / "rgb.png", cv::IMREAD_GRAYSCALE))));
}

TEST(Reliability, ReducedDecodingStaysAtLeastTheRequestedSize) {
  TempDir tmp;
  cv::Mat m(300, 400, CV_8UC3);
  cv::randu(m, 0, 256);
  cv::imwrite(tmp / "a.jpg", m);
  cv::imwrite(tmp / "a.png", m);
  for (std::string f : {"a.jpg", "a.png"}) {
    auto opts = data::ImageFileOptions().channels_(3).decode_size_(100, 100);
    EXPECT_EQ(data::decode_image(tmp / f, opts).sizes(), at::IntArrayRef({3, 150, 200})) << f;  // /2; /4 is too small
    opts.decode_size_(30, 40);
    EXPECT_EQ(data::decode_image(tmp / f, opts).sizes(), at::IntArrayRef({3, 37, 50})) << f;  // /8
    opts.decode_size_(200, 300);
    EXPECT_EQ(data::decode_image(tmp / f, opts).sizes(), at::IntArrayRef({3, 300, 400})) << f;  // no reduction
  }
  write_bytes(tmp / "l.txt", "a.jpg 0\na.png 1\n");
  auto d = data::open_dataset("list:" + (tmp / "l.txt") + "@decode-size=100x100");
  EXPECT_EQ(d->get(0).input.sizes(), at::IntArrayRef({3, 150, 200}));
  EXPECT_EQ(d->get(1).input.sizes(), at::IntArrayRef({3, 150, 200}));
}

// ---- 4: checkpoints and saved artefacts ----

namespace {

struct Saved {
  models::BackbonePtr model;
  io::ModelMeta meta;
};

Saved small_model(uint64_t seed = 1) {
  Saved s;
  s.meta.arch = "mlp";
  s.meta.input_shape = {8};
  s.meta.class_names = {"a", "b", "c"};
  s.model = models::create_model("mlp", s.meta.input_shape, 3, seed);
  return s;
}

void save_state(const std::string& path, const Saved& s, int64_t step) {
  io::TrainState st;
  st.global_step = step;
  st.epoch = step / 10;
  st.config = {{"lr", 0.1}};
  io::save_checkpoint(path, *s.model, s.meta, &st, nullptr);
}

bool same_weights(const models::Backbone& a, const models::Backbone& b) {
  auto pa = a.named_parameters(), pb = b.named_parameters();
  if (pa.size() != pb.size()) return false;
  for (size_t i = 0; i < pa.size(); ++i)
    if (pa[i].first != pb[i].first || !at::equal(pa[i].second, pb[i].second)) return false;
  return true;
}

}  // namespace

TEST(Reliability, BitFlippedCheckpointIsRefusedNeverLoadedWrong) {
  TempDir tmp;
  auto s = small_model();
  save_state(tmp / "c.ckpt", s, 7);
  const auto good = read_bytes(tmp / "c.ckpt");
  EXPECT_GT(io::verify_zip(good.data(), good.size(), "c"), 3);
  // Flip one bit at many places: each load either refuses with graft::Error or gives
  // exactly the saved model (the flip hit bytes no reader uses, such as padding).
  int refused = 0, identical = 0;
  const size_t stride = std::max<size_t>(1, good.size() / 400);
  for (size_t pos = 0; pos < good.size(); pos += stride) {
    auto bad = good;
    bad[pos] = static_cast<char>(bad[pos] ^ (1 << (pos % 8)));
    write_bytes(tmp / "bad.ckpt", bad);
    try {
      auto ck = io::load_checkpoint(tmp / "bad.ckpt");
      ASSERT_TRUE(same_weights(*ck.model, *s.model)) << "flip at byte " << pos << " loaded different weights";
      ASSERT_EQ(ck.meta.class_names, s.meta.class_names) << pos;
      ASSERT_EQ(ck.state.global_step, 7) << pos;
      ++identical;
    } catch (const Error& e) {
      ++refused;
    }
  }
  std::cout << "flipped " << refused + identical << " positions: " << refused << " refused, " << identical
            << " harmless\n";
  EXPECT_GT(refused, identical);
  // A flip inside the weights' bytes names the file and the CRC check.
  auto bad = good;
  size_t mid = good.size() / 2;
  bad[mid] = static_cast<char>(bad[mid] ^ 0x10);
  write_bytes(tmp / "bad.ckpt", bad);
  auto e = error_of([&] { io::load_checkpoint(tmp / "bad.ckpt"); });
  EXPECT_TRUE(contains(e, tmp / "bad.ckpt") && contains(e, "damaged")) << e;
  // Truncated copies are refused too.
  write_bytes(tmp / "cut.ckpt", good.substr(0, good.size() * 2 / 3));
  EXPECT_TRUE(contains(error_of([&] { io::load_checkpoint(tmp / "cut.ckpt"); }), tmp / "cut.ckpt"));
}

TEST(Reliability, DamagedLinearClassifierIsRefused) {
  TempDir tmp;
  classify::LinearOptions lo;
  lo.C = 1.0;
  classify::LinearClassifier c(lo);
  auto X = at::randn({30, 4});
  auto y = at::arange(30, at::kLong).remainder(3);
  c.fit(X, y);
  c.save(tmp / "c.bin");
  auto b = read_bytes(tmp / "c.bin");
  b[b.size() / 3] ^= 0x01;
  write_bytes(tmp / "c.bin", b);
  auto e = error_of([&] { classify::LinearClassifier::load(tmp / "c.bin"); });
  EXPECT_TRUE(contains(e, "damaged") && contains(e, tmp / "c.bin")) << e;
}

TEST(Reliability, NewestValidCheckpointFallsBackToThePreviousOne) {
  TempDir tmp;
  auto s = small_model();
  EXPECT_EQ(io::newest_valid_checkpoint(tmp.path()).path, "");
  save_state(tmp / "checkpoint.prev.ckpt", s, 10);
  save_state(tmp / "checkpoint.ckpt", s, 20);
  auto c = io::newest_valid_checkpoint(tmp.path());
  EXPECT_EQ(c.path, tmp / "checkpoint.ckpt");
  EXPECT_EQ(c.global_step, 20);
  EXPECT_TRUE(c.rejected.empty());
  // Corrupt the newest: the previous one is chosen and the damage is reported.
  auto b = read_bytes(tmp / "checkpoint.ckpt");
  b[b.size() / 2] ^= 0x40;
  write_bytes(tmp / "checkpoint.ckpt", b);
  c = io::newest_valid_checkpoint(tmp.path());
  EXPECT_EQ(c.path, tmp / "checkpoint.prev.ckpt");
  ASSERT_EQ(c.rejected.size(), 1u);
  EXPECT_TRUE(contains(c.rejected[0], "damaged")) << c.rejected[0];
  // Non-finite weights are never "last good".
  {
    torch::NoGradGuard ng;
    s.model->named_parameters()[0].second.view(-1)[0] = NAN;
  }
  save_state(tmp / "checkpoint.ckpt", s, 30);
  c = io::newest_valid_checkpoint(tmp.path());
  EXPECT_EQ(c.path, tmp / "checkpoint.prev.ckpt");
  ASSERT_EQ(c.rejected.size(), 1u);
  EXPECT_TRUE(contains(c.rejected[0], "not finite")) << c.rejected[0];
}

namespace {

// Saves under a file-size limit (the same EFBIG path as a full disk: the write fails
// part-way). SIGXFSZ is ignored so the write returns an error instead of killing us.
std::string save_under_size_limit(const std::string& path, rlim_t limit, const Saved& s) {
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  rlimit lim = old;
  lim.rlim_cur = limit;
  setrlimit(RLIMIT_FSIZE, &lim);
  auto e = error_of([&] { save_state(path, s, 1); });
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  return e;
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

TEST(Reliability, CheckpointOnAFullDiskFailsCleanlyAndKeepsTheOldFile) {
  TempDir tmp;
  auto s = small_model();
  write_bytes(tmp / "c.ckpt", "old contents");
  auto e = save_under_size_limit(tmp / "c.ckpt", 4096, s);
  EXPECT_TRUE(contains(e, tmp / "c.ckpt") && contains(e, "write failed")) << e;
  EXPECT_EQ(names_in(tmp.path()), std::vector<std::string>{"c.ckpt"});  // no temp file left
  EXPECT_EQ(read_bytes(tmp / "c.ckpt"), "old contents");
  e = error_of([&] {
    auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit old{};
    getrlimit(RLIMIT_FSIZE, &old);
    rlimit lim = old;
    lim.rlim_cur = 10;
    setrlimit(RLIMIT_FSIZE, &lim);
    std::string err = error_of([&] { graft::write_text_atomically(tmp / "t.json", std::string(100, 'x')); });
    setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    if (!err.empty()) throw Error(err);
  });
  EXPECT_TRUE(contains(e, "t.json") && contains(e, "write failed")) << e;
  EXPECT_EQ(names_in(tmp.path()), std::vector<std::string>{"c.ckpt"});
}

TEST(Reliability, CheckpointOnAFullTmpfsFailsCleanly) {
  TempDir tmp;
  std::string mnt = tmp / "small";
  fs::create_directories(mnt);
  if (geteuid() != 0 || ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a 64 KiB tmpfs (needs root and mount rights); the file-size-limit test covers "
                    "the same write path";
  }
  auto s = small_model();
  // Large enough not to fit in 64 KiB.
  s.meta.input_shape = {4096};
  s.model = models::create_model("mlp", s.meta.input_shape, 3, 1);
  auto e = error_of([&] { save_state(mnt + "/c.ckpt", s, 1); });
  auto left = names_in(mnt);
  ::umount(mnt.c_str());
  EXPECT_TRUE(contains(e, "no space left") && contains(e, "c.ckpt")) << e;
  EXPECT_TRUE(left.empty()) << left.size() << " files left, first " << (left.empty() ? "" : left[0]);
}

TEST(Reliability, OneRecordOfAnArchiveIsReadWithoutLoadingIt) {
  TempDir tmp;
  auto s = small_model();
  save_state(tmp / "c.ckpt", s, 1);
  auto bytes = read_bytes(tmp / "c.ckpt");
  auto pkl = io::zip_record(bytes.data(), bytes.size(), "data.pkl", "c.ckpt");
  ASSERT_TRUE(pkl.has_value());
  EXPECT_NE(pkl->find("graft_meta"), std::string::npos);
  EXPECT_FALSE(io::zip_record(bytes.data(), bytes.size(), "no such record", "c.ckpt").has_value());
  EXPECT_TRUE(io::is_checkpoint(tmp / "c.ckpt"));
  // A truncated archive is an error naming it (sizes are checked against the file before any
  // record is copied or inflated, as in verify_zip).
  auto e = error_of([&] { io::zip_record(bytes.data(), bytes.size() / 2, "data.pkl", "half.ckpt"); });
  EXPECT_TRUE(contains(e, "half.ckpt") && contains(e, "damaged")) << e;
}

TEST(Reliability, FilesOfUnknownSizeAreReadToTheirEnd) {
  // /proc reports a size of 0 for files that are not empty; the size is only a hint.
  auto status = graft::read_file_bytes("/proc/self/status", "status");
  EXPECT_NE(status.find("Pid:"), std::string::npos);
  EXPECT_EQ(status.back(), '\n');
  TempDir tmp;
  std::string big(3 << 20, 'a');
  big[12345] = 'b';
  write_bytes(tmp / "big", big);
  EXPECT_EQ(graft::read_file_bytes(tmp / "big", "file"), big);
  write_bytes(tmp / "empty", "");
  EXPECT_EQ(graft::read_file_bytes(tmp / "empty", "file"), "");
}

TEST(Reliability, FilesWrittenInPiecesAreAtomicAndAProducersErrorLeavesNothing) {
  TempDir tmp;
  graft::write_chunks_atomically(tmp / "f", [](const graft::ChunkSink& sink) {
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(sink("0123456789", 10));
  });
  std::string ten;
  for (int i = 0; i < 1000; ++i) ten += "0123456789";
  EXPECT_EQ(read_bytes(tmp / "f"), ten);
  auto e = error_of([&] {
    graft::write_chunks_atomically(tmp / "f", [](const graft::ChunkSink& sink) {
      sink("partial", 7);
      throw graft::Error("the producer failed");
    });
  });
  EXPECT_EQ(e, "the producer failed");
  EXPECT_EQ(read_bytes(tmp / "f"), ten);  // the old file, and no temp file beside it
  EXPECT_EQ(names_in(tmp.path()), std::vector<std::string>{"f"});
}

TEST(Reliability, StaleTempFilesOfDeadProcessesAreCleaned) {
  TempDir tmp;
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);  // child is now dead; its pid is free
  write_bytes(tmp / ("model.ckpt.tmp." + std::to_string(child)), "x");
  write_bytes(tmp / ("model.ckpt.tmp." + std::to_string(getpid())), "mine");
  write_bytes(tmp / "prefix_cache.tmp.f32", "not a pid");
  auto removed = graft::clean_stale_temp_files(tmp.path());
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0], tmp / ("model.ckpt.tmp." + std::to_string(child)));
  EXPECT_TRUE(fs::exists(tmp / ("model.ckpt.tmp." + std::to_string(getpid()))));
  EXPECT_TRUE(fs::exists(tmp / "prefix_cache.tmp.f32"));
}

// ---- 5: run folders ----

TEST(Reliability, RunDirLocksTheFolderForItsLifetime) {
  TempDir tmp;
  std::string out = tmp / "run";
  {
    io::RunDir a(out);
    auto e = error_of([&] { io::RunDir b(out, io::RunDirOptions().mode_(io::RunMode::kResume)); });
    EXPECT_EQ(e, out + " is in use by another graft run (pid " + std::to_string(getpid()) +
                     "); wait for it or choose another --out");
    // Another process is refused the same way.
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t child = fork();
    if (child == 0) {
      std::string msg = error_of([&] { io::RunDir c(out, io::RunDirOptions().mode_(io::RunMode::kResume)); });
      (void)!write(fds[1], msg.data(), msg.size());
      _exit(0);
    }
    close(fds[1]);
    char buf[512] = {};
    (void)!read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    waitpid(child, nullptr, 0);
    EXPECT_TRUE(contains(buf, "is in use by another graft run (pid " + std::to_string(getpid()) + ")")) << buf;
  }
  io::RunDir again(out, io::RunDirOptions().mode_(io::RunMode::kResume));  // released with its owner
}

TEST(Reliability, FreshRunRefusesAnotherRunsFilesUnlessResumeOrOverwrite) {
  TempDir tmp;
  std::string out = tmp / "run";
  { io::RunDir fresh(out); }  // an empty folder is fine
  write_bytes(out + "/config.json", "{}");
  write_bytes(out + "/metrics.jsonl", "{}\n");
  write_bytes(out + "/notes.txt", "the user's own file");
  auto e = error_of([&] { io::RunDir d(out); });
  EXPECT_TRUE(contains(e, "holds the files of another run (config.json, metrics.jsonl)") && contains(e, "--resume") &&
              contains(e, "--overwrite"))
      << e;
  {
    io::RunDir r(out, io::RunDirOptions().mode_(io::RunMode::kResume));
    EXPECT_EQ(r.found().size(), 2u);
    EXPECT_TRUE(fs::exists(out + "/config.json"));
  }
  {
    io::RunDir o(out, io::RunDirOptions().mode_(io::RunMode::kOverwrite));
    EXPECT_FALSE(fs::exists(out + "/config.json"));
    EXPECT_FALSE(fs::exists(out + "/metrics.jsonl"));
    EXPECT_TRUE(fs::exists(out + "/notes.txt"));
  }
  io::RunDir fresh_again(out);
}

TEST(Reliability, CheckSameConfigNamesTheFirstDifferingOption) {
  nlohmann::json saved = {{"train", {{"lr", 0.01}, {"epochs", 5}, {"workers", 2}, {"seed", 1}}},
                          {"data", {{"train", "mnist:train"}}}};
  auto cur = saved;
  cur["train"]["workers"] = 8;  // may change
  cur["train"]["out_dir"] = "elsewhere";
  cur["train"].erase("out_dir");
  EXPECT_EQ(error_of([&] { io::check_same_config(saved, cur); }), "");
  cur["train"]["lr"] = 0.1;
  auto e = error_of([&] { io::check_same_config(saved, cur); });
  EXPECT_TRUE(contains(e, "train.lr was 0.01, now 0.1")) << e;
  cur = saved;
  cur["train"]["epochs"] = 8;  // epochs may not change: the schedule spans them
  EXPECT_TRUE(contains(error_of([&] { io::check_same_config(saved, cur); }), "train.epochs was 5, now 8"));
  cur = saved;
  cur["data"]["train"] = "fashion-mnist:train";
  EXPECT_TRUE(contains(error_of([&] { io::check_same_config(saved, cur); }), "data.train was \"mnist:train\""));
  cur = saved;
  cur["train"]["new_option"] = true;
  EXPECT_TRUE(contains(error_of([&] { io::check_same_config(saved, cur); }), "train.new_option was (absent), now true"));
}

// ---- 6: divergence without NaN ----

TEST(Reliability, DivergenceGuardIgnoresNoiseAndCatchesBlowUps) {
  train::DivergenceGuard quiet;
  std::mt19937_64 rng(3);
  std::normal_distribution<double> noise(0, 0.3);
  for (int i = 0; i < 2000; ++i) {  // a decaying, noisy curve with a few single spikes
    double loss = 2.3 * std::exp(-i / 300.0) + 0.05 + std::abs(noise(rng)) * 0.2;
    if (i % 97 == 0) loss *= 30;
    ASSERT_FALSE(quiet.update(loss)) << quiet.reason();
  }
  train::DivergenceGuard nan;
  nan.update(2.3);
  EXPECT_TRUE(nan.update(NAN));
  EXPECT_TRUE(contains(nan.reason(), "nan") || contains(nan.reason(), "NaN")) << nan.reason();
  train::DivergenceGuard blow;
  int tripped = -1;
  for (int i = 0; i < 200 && tripped < 0; ++i)
    if (blow.update(i < 20 ? 2.3 - i * 0.05 : std::pow(10.0, (i - 20) / 2.0))) tripped = i;
  EXPECT_GE(tripped, 20);
  EXPECT_LE(tripped, 30);
  EXPECT_TRUE(contains(blow.reason(), "diverged") && contains(blow.reason(), "--lr")) << blow.reason();
  // A slow climb that the running median follows is still caught against the first loss.
  train::DivergenceGuard slow;
  tripped = -1;
  for (int i = 0; i < 2000 && tripped < 0; ++i)
    if (slow.update(2.3 * std::pow(1.01, i))) tripped = i;
  EXPECT_GT(tripped, 100);
  EXPECT_LT(tripped, 400);
  // Negative losses switch the ratio tests off instead of tripping on them.
  train::DivergenceGuard neg;
  for (int i = 0; i < 100; ++i) ASSERT_FALSE(neg.update(i % 2 ? -1.0 : 5.0));
}

namespace {

// Trains an MLP for `steps` SGD steps (momentum 0.9) and returns the step at which the
// guard tripped (-1: never) and the largest loss / reference ratio seen.
std::pair<int, double> train_and_watch(const data::DatasetPtr& d, double lr, int steps, uint64_t seed) {
  torch::manual_seed(seed);
  auto model = models::create_model("mlp", d->input_shape(), d->num_classes(), seed);
  std::vector<at::Tensor> params;
  for (auto& [n, p] : model->named_parameters()) params.push_back(p);
  torch::optim::SGD opt(params, torch::optim::SGDOptions(lr).momentum(0.9));
  train::DivergenceGuard guard;
  double worst = 0;
  std::vector<double> seen;
  for (int s = 0; s < steps; ++s) {
    std::vector<int64_t> idx;
    for (int i = 0; i < 64; ++i) idx.push_back((s * 64 + i) % d->size());
    auto b = d->get_batch(idx);
    auto loss = at::cross_entropy_loss(model->forward(b.input), b.label);
    double lv = loss.item<double>();
    if (s > 5 && std::isfinite(lv)) worst = std::max(worst, lv / std::max(guard.running_median(), seen[0]));
    seen.push_back(lv);
    if (guard.update(lv)) return {s, worst};
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  return {-1, worst};
}

}  // namespace

TEST(Reliability, DivergenceGuardOnRealTrainingCurves) {
  data::DatasetPtr d;
  std::string what;
  try {
    d = data::open_dataset("mnist:train@limit=19200");
    what = "MNIST";
  } catch (const Error& e) {
    TempDir tmp;
    std::cout << "[  NOTE    ] MNIST not in the cache (" << e.what() << "); using generated 8x8 data\n";
    graft::test::write_toy_idx(tmp / "x", tmp / "y", 2000, 10);
    d = data::open_dataset("idx:" + (tmp / "x") + "," + (tmp / "y"));
    auto x = data::read_idx(tmp / "x");
    d = std::make_shared<data::TensorDataset>(x.unsqueeze(1), data::read_idx(tmp / "y"), std::vector<std::string>{},
                                              "toy");
    what = "toy";
  }
  for (double lr : {0.01, 0.05, 0.1}) {
    auto [trip, worst] = train_and_watch(d, lr, 300, 1);
    std::cout << what << " mlp lr " << lr << ": tripped at " << trip << ", largest loss/reference " << worst << "\n";
    EXPECT_EQ(trip, -1) << "normal training at lr " << lr << " tripped the guard";
  }
  auto [trip, worst] = train_and_watch(d, 100, 300, 1);
  std::cout << what << " mlp lr 100: tripped at " << trip << "\n";
  EXPECT_GE(trip, 0) << "lr 100 was not caught";
  EXPECT_LT(trip, 60);
}

TEST(Reliability, AllFiniteFindsANaNOrInfWeight) {
  auto s = small_model();
  EXPECT_TRUE(train::all_finite(*s.model));
  auto [name, p] = s.model->named_parameters().back();
  {
    torch::NoGradGuard ng;
    p.view(-1)[0] = INFINITY;
  }
  EXPECT_FALSE(train::all_finite(*s.model));
  EXPECT_EQ(train::first_non_finite(*s.model), name);
}

// ---- 6, 7 through the CLI: eval/predict refuse NaN models; CSV; seeds ----

TEST(Reliability, EvalAndPredictRefuseAModelWithNonFiniteWeights) {
  TempDir tmp;
  auto s = small_model();
  {
    torch::NoGradGuard ng;
    s.model->named_parameters()[0].second.view(-1)[3] = NAN;
  }
  io::save_checkpoint(tmp / "nan.ckpt", *s.model, s.meta, nullptr, nullptr);
  io::write_npy(tmp / "x.npy", at::rand({5, 8}));
  io::write_npy(tmp / "y.npy", at::arange(5, at::kLong).remainder(3));
  std::string data = "npy:" + (tmp / "x.npy") + "," + (tmp / "y.npy");
  for (std::string verb : {"eval", "predict"}) {
    auto r = graft::test::cli(verb + " --threads 1 --model " + (tmp / "nan.ckpt") + " --data " + data);
    EXPECT_NE(r.code, 0) << verb;
    EXPECT_TRUE(contains(r.out, "graft: error: model '" + (tmp / "nan.ckpt") + "' has non-finite weights")) << r.out;
  }
}

namespace {

// Splits RFC 4180 CSV text into rows of fields.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false, was_quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
      else if (c == '"') quoted = false;
      else field += c;
    } else if (c == '"' && field.empty()) {
      quoted = was_quoted = true;
    } else if (c == ',') {
      rows.back().push_back(field), field.clear();
    } else if (c == '\n') {
      rows.back().push_back(field), field.clear();
      rows.emplace_back();
    } else {
      field += c;
    }
  }
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

}  // namespace

TEST(Reliability, CsvFieldsFollowRfc4180) {
  EXPECT_EQ(graft::csv_field("plain"), "plain");
  EXPECT_EQ(graft::csv_field("a,b"), "\"a,b\"");
  EXPECT_EQ(graft::csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(graft::csv_field("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(graft::csv_field("cr\r"), "\"cr\r\"");
  EXPECT_EQ(graft::csv_field(""), "");
}

TEST(Reliability, PredictCsvQuotesClassNamesWithCommasQuotesAndNewlines) {
  TempDir tmp;
  auto s = small_model();
  s.meta.class_names = {"cat, large", "the \"dog\"", "two\nlines"};
  io::save_checkpoint(tmp / "m.ckpt", *s.model, s.meta, nullptr, nullptr);
  io::write_npy(tmp / "x.npy", at::rand({4, 8}));
  auto r = graft::test::cli("predict --threads 1 --top 3 --model " + (tmp / "m.ckpt") + " --data npy:" +
                            (tmp / "x.npy") + " --out " + (tmp / "p.csv"));
  ASSERT_EQ(r.code, 0) << r.out;
  auto rows = parse_csv(read_bytes(tmp / "p.csv"));
  ASSERT_EQ(rows.size(), 5u);
  for (const auto& row : rows) EXPECT_EQ(row.size(), 8u);  // index,label,class1,score1,...,class3,score3
  std::set<std::string> names(rows[1].begin() + 2, rows[1].end());
  for (const auto& n : s.meta.class_names) EXPECT_TRUE(names.count(n)) << n;
}

TEST(Reliability, EmptyOrNegativeSeedsAreErrors) {
  TempDir tmp;
  for (std::string args : std::vector<std::string>{"train --seed -1 --model mlp --data npy:x.npy --out " + (tmp / "o"),
                           "train --seed '' --model mlp --data npy:x.npy --out " + (tmp / "o"),
                           "transfer --seeds '' --model x.ckpt --train a --test b",
                           "transfer --seeds 1,-2 --model x.ckpt --train a --test b",
                           "adapt --seeds '' --source a --target b --out " + (tmp / "o"),
                           "linear fit --seed -1 --features f.npy --out c.bin"}) {
    auto r = graft::test::cli(args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_TRUE(contains(r.out, "seed")) << args << "\n" << r.out;
    EXPECT_FALSE(contains(r.out, "18446744073709551615")) << r.out;
  }
}

TEST(Reliability, TransformSizesAreBoundedLikeImages) {
  // Found by fuzz_transform: resize=14414 asked for a 2.5 GB float image per example.
  auto e = error_of([] { data::Pipeline::parse("resize=14414"); });
  EXPECT_TRUE(contains(e, "resize=14414") && contains(e, "more than 64 megapixels")) << e;
  EXPECT_EQ(error_of([] { data::Pipeline::parse("resize=224x224"); }), "");
}

TEST(Reliability, LibraryMessagesAreCutToOnePrintableLine) {
  EXPECT_EQ(graft::brief("\n  \n  Unexpected token\x01\xff here \nFile \"code/x.py\", line 1"), "Unexpected token?? here");
  EXPECT_EQ(graft::brief(""), "");
  EXPECT_EQ(graft::brief(std::string(500, 'a')).size(), 200u);
}

TEST(Reliability, DamagedCodeInsideAModelFileIsOneLine) {
  // The regression input of fuzz_checkpoint, given to a command as a model.
  const std::string code = graft::test::source_dir() + "/fuzz/corpus/checkpoint/regress-jit-code";
  auto r = graft::test::cli("eval --threads 1 --model " + code + " --data mnist:test@limit=10");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_TRUE(contains(r.out, "graft: error: ") && contains(r.out, code)) << r.out;
}

TEST(Reliability, FuzzFindingsStayFixed) {
  // fuzz_checkpoint: a 49-byte file claiming a zip64 directory read before its start.
  std::string zip64;
  {
    std::ifstream in(graft::test::source_dir() + "/fuzz/corpus/checkpoint/regress-zip64-short", std::ios::binary);
    zip64.assign((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  ASSERT_FALSE(zip64.empty());
  EXPECT_TRUE(contains(error_of([&] { io::verify_zip(zip64.data(), zip64.size(), "z"); }), "z is damaged"));
  // fuzz_checkpoint: damaged TorchScript code inside a checkpoint threw the TorchScript
  // compiler's own exception (not a c10::Error) out of the loader.
  const std::string code = graft::test::source_dir() + "/fuzz/corpus/checkpoint/regress-jit-code";
  auto ce = error_of([&] { io::load_checkpoint(code); });
  EXPECT_TRUE(contains(ce, code) && contains(ce, "cannot be read")) << ce;
  // fuzz_spec: a dataset name too long for the file system threw std::filesystem_error.
  auto e = error_of([] { data::open_dataset(std::string(300, 'z') + ":train"); });
  EXPECT_TRUE(contains(e, "dataset '") && contains(e, "too long")) << e;
}

TEST(Reliability, TransformNumbersAreRangeCheckedBeforeConversion) {
  // Found by fuzz_transform (UBSan): a padding of 2.3e85 was cast to an integer.
  auto e = error_of([] { data::Pipeline::parse("random-crop=6:2e85"); });
  EXPECT_TRUE(contains(e, "padding out of range")) << e;
}
