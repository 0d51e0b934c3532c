// SynDigits-style domain: digits rendered with FreeType from the installed fonts.
#include <ATen/ATen.h>
#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_OUTLINE_H

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <set>

#include "graft/core/check.h"
#include "graft/data/builders.h"
#include "graft/data/readers.h"
#include "graft/core/files.h"

namespace fs = std::filesystem;

namespace graft::data {
namespace {

constexpr int kGlyphPx = 64;  // em size the glyphs are rendered at before the affine warp

struct FtLibrary {
  FT_Library lib = nullptr;
  FtLibrary() { GRAFT_CHECK(FT_Init_FreeType(&lib) == 0, "FreeType failed to initialise"); }
  ~FtLibrary() { FT_Done_FreeType(lib); }
  FtLibrary(const FtLibrary&) = delete;
  FtLibrary& operator=(const FtLibrary&) = delete;
};

struct FaceCloser {
  void operator()(FT_FaceRec_* f) const { FT_Done_Face(f); }
};
using FacePtr = std::unique_ptr<FT_FaceRec_, FaceCloser>;

FacePtr open_face(FT_Library lib, const std::string& file, int64_t index) {
  FT_Face f = nullptr;
  if (FT_New_Face(lib, file.c_str(), static_cast<FT_Long>(index), &f) != 0) return nullptr;
  FacePtr p(f);
  // Type 1 faces get a Unicode charmap synthesised from their glyph names.
  if (!FT_IS_SCALABLE(f) || FT_Select_Charmap(f, FT_ENCODING_UNICODE) != 0) return nullptr;
  return p;
}

// Coverage mask (CV_8U, cropped to the ink) of character ch at em size px, its outline
// grown by embolden_px pixels (negative: thinned). Empty when the face cannot draw it.
cv::Mat render_glyph(FT_Face face, char ch, int px, double embolden_px) {
  if (FT_Set_Pixel_Sizes(face, 0, static_cast<FT_UInt>(px)) != 0) return {};
  const FT_UInt gi = FT_Get_Char_Index(face, static_cast<FT_ULong>(ch));
  if (gi == 0 || FT_Load_Glyph(face, gi, FT_LOAD_NO_BITMAP | FT_LOAD_NO_HINTING) != 0) return {};
  FT_GlyphSlot g = face->glyph;
  if (g->format != FT_GLYPH_FORMAT_OUTLINE) return {};
  if (embolden_px != 0) FT_Outline_Embolden(&g->outline, static_cast<FT_Pos>(std::lround(embolden_px * 64)));
  if (FT_Render_Glyph(g, FT_RENDER_MODE_NORMAL) != 0) return {};
  const FT_Bitmap& b = g->bitmap;
  if (b.rows == 0 || b.width == 0 || b.pixel_mode != FT_PIXEL_MODE_GRAY || b.pitch < 0) return {};
  cv::Mat m(static_cast<int>(b.rows), static_cast<int>(b.width), CV_8U);
  for (unsigned r = 0; r < b.rows; ++r) std::memcpy(m.ptr(static_cast<int>(r)), b.buffer + r * b.pitch, b.width);
  if (cv::countNonZero(m) == 0) return {};
  return m;
}

// Faces that name their glyphs must call the digits' glyphs zero, one, ... (a dingbat face
// such as URW's D050000L maps '4' to a check mark named a20).
bool digit_glyphs_named_as_digits(FT_Face face) {
  if (!FT_HAS_GLYPH_NAMES(face)) return true;
  static const char* kNames[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
  for (int d = 0; d < 10; ++d) {
    char name[64] = {0};
    const FT_UInt gi = FT_Get_Char_Index(face, static_cast<FT_ULong>('0' + d));
    if (FT_Get_Glyph_Name(face, gi, name, sizeof(name)) != 0) return true;  // names unreadable: judge by drawing
    if (std::string(name).rfind(kNames[d], 0) != 0 && std::string(name).rfind("uni003", 0) != 0) return false;
  }
  return true;
}

// Keycap faces draw a frame around every character: not a digit style.
bool is_keycap_face(const std::string& family) { return family.find("Keyboard") != std::string::npos; }

bool draws_ten_distinct_digits(FT_Face face) {
  if (!digit_glyphs_named_as_digits(face)) return false;
  std::vector<cv::Mat> g;
  for (char c = '0'; c <= '9'; ++c) {
    auto m = render_glyph(face, c, 48, 0);
    if (m.empty()) return false;
    for (const auto& o : g)
      if (o.size() == m.size() && cv::countNonZero(o != m) == 0) return false;  // e.g. a fallback box
    g.push_back(m);
  }
  return true;
}

// Families named alike are variants of one design (Go and Go Mono, Nimbus Sans and Nimbus
// Sans Narrow, Quicksand and Quicksand Light): the split keeps them on one side, by the
// family name's first word.
std::string family_group(const std::string& family) { return family.substr(0, family.find(' ')); }

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

double luminance(const cv::Vec3f& c) { return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]; }

using Rng = std::mt19937_64;
double uni(Rng& r, double a, double b) { return std::uniform_real_distribution<double>(a, b)(r); }
cv::Vec3f random_colour(Rng& r) { return {float(uni(r, 0, 1)), float(uni(r, 0, 1)), float(uni(r, 0, 1))}; }

// Photos as float RGB images, each at a few scales (patches show structure at several sizes).
std::vector<cv::Mat> load_backgrounds(const std::vector<std::string>& photos, int canvas) {
  std::vector<cv::Mat> out;
  for (const auto& p : photos) {
    auto t = decode_image(p, 0);
    if (t.size(0) != 3) continue;
    auto hwc = t.permute({1, 2, 0}).contiguous().to(at::kFloat);
    cv::Mat m(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_32FC3, hwc.data_ptr<float>());
    for (double s : {0.25, 0.5, 1.0}) {
      cv::Mat r;
      cv::resize(m, r, cv::Size(), s, s, cv::INTER_AREA);
      if (r.rows >= canvas && r.cols >= canvas) out.push_back(r.clone());
    }
  }
  return out;
}

cv::Mat background(Rng& r, int s, const std::vector<cv::Mat>& photos) {
  const int kinds = photos.empty() ? 2 : 3;
  const int kind = std::uniform_int_distribution<int>(0, kinds - 1)(r);
  if (kind == 0) return cv::Mat(s, s, CV_32FC3, cv::Scalar(random_colour(r)));
  if (kind == 1) {  // linear gradient between two colours along a random direction
    cv::Vec3f a = random_colour(r), b = random_colour(r);
    double ang = uni(r, 0, 2 * M_PI), cx = std::cos(ang), cy = std::sin(ang);
    cv::Mat m(s, s, CV_32FC3);
    for (int y = 0; y < s; ++y)
      for (int x = 0; x < s; ++x) {
        double t = 0.5 + ((x - s / 2.0) * cx + (y - s / 2.0) * cy) / (1.42 * s);
        m.at<cv::Vec3f>(y, x) = a * float(1 - t) + b * float(t);
      }
    return m;
  }
  const auto& ph = photos[std::uniform_int_distribution<size_t>(0, photos.size() - 1)(r)];
  int top = std::uniform_int_distribution<int>(0, ph.rows - s)(r);
  int left = std::uniform_int_distribution<int>(0, ph.cols - s)(r);
  return ph(cv::Rect(left, top, s, s)).clone();
}

// A colour whose luminance differs from `bg` by at least 0.3 (of the 0..1 range).
cv::Vec3f contrasting_colour(Rng& r, double bg) {
  for (int i = 0; i < 100; ++i) {
    auto c = random_colour(r);
    if (std::abs(luminance(c) - bg) >= 0.3) return c;
  }
  return bg > 0.5 ? cv::Vec3f(0, 0, 0) : cv::Vec3f(1, 1, 1);
}

// Coverage of the digit on a canvas of side s: random stroke weight, height, aspect,
// shear, rotation and position.
cv::Mat placed_glyph(Rng& r, FT_Face face, int digit, int s) {
  auto g = render_glyph(face, static_cast<char>('0' + digit), kGlyphPx, uni(r, -1.0, 4.0));
  if (g.empty()) g = render_glyph(face, static_cast<char>('0' + digit), kGlyphPx, 0);  // thinned away
  GRAFT_CHECK(!g.empty(), "font ", face->family_name, " failed to draw digit ", digit);
  double sy = uni(r, 0.45, 0.85) * s / g.rows;
  double sx = sy * uni(r, 0.8, 1.2);
  sx = std::min(sx, 0.9 * s / g.cols);
  const double shear = uni(r, -0.2, 0.2), th = uni(r, -15, 15) * M_PI / 180;
  const double c = std::cos(th), sn = std::sin(th);
  // A = R(th) * [[sx, shear*sy], [0, sy]]
  const double a00 = c * sx, a01 = c * shear * sy - sn * sy, a10 = sn * sx, a11 = sn * shear * sy + c * sy;
  const double gx = (g.cols - 1) / 2.0, gy = (g.rows - 1) / 2.0;
  const double tx = (s - 1) / 2.0 + uni(r, -0.1, 0.1) * s, ty = (s - 1) / 2.0 + uni(r, -0.1, 0.1) * s;
  cv::Mat M = (cv::Mat_<double>(2, 3) << a00, a01, tx - a00 * gx - a01 * gy, a10, a11, ty - a10 * gx - a11 * gy);
  cv::Mat out;
  cv::warpAffine(g, out, M, cv::Size(s, s), cv::INTER_LINEAR, cv::BORDER_CONSTANT, 0);
  out.convertTo(out, CV_32F, 1.0 / 255);
  return out;
}

void composite(cv::Mat& img, const cv::Mat& alpha, const cv::Vec3f& colour) {
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      float a = alpha.at<float>(y, x);
      auto& p = img.at<cv::Vec3f>(y, x);
      p = p * (1 - a) + colour * a;
    }
}

// One RGB image (size x size, CV_8UC3) of `digit`.
cv::Mat render_sample(Rng& r, FT_Face face, int digit, int size, const std::vector<cv::Mat>& photos) {
  const int s = 2 * size;  // drawn at twice the size, then reduced: anti-aliased edges
  cv::Mat img = background(r, s, photos);
  const cv::Scalar m = cv::mean(img);
  const double bg = luminance(cv::Vec3f(float(m[0]), float(m[1]), float(m[2])));
  cv::Mat alpha = placed_glyph(r, face, digit, s);
  if (uni(r, 0, 1) < 0.25) {  // an outline in a second colour around the fill
    cv::Mat outer;
    int k = std::uniform_int_distribution<int>(1, 2)(r) * 2 + 1;
    cv::dilate(alpha, outer, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(k, k)));
    composite(img, outer, contrasting_colour(r, bg));
  }
  composite(img, alpha, contrasting_colour(r, bg));
  if (uni(r, 0, 1) < 0.5) cv::GaussianBlur(img, img, cv::Size(0, 0), uni(r, 0.3, 1.5));
  cv::Mat small;
  cv::resize(img, small, cv::Size(size, size), 0, 0, cv::INTER_AREA);
  if (uni(r, 0, 1) < 0.5) {
    cv::Mat noise(small.size(), CV_32FC3);
    cv::RNG cvr(r());
    cvr.fill(noise, cv::RNG::NORMAL, 0.0, uni(r, 0.005, 0.03));
    small += noise;
  }
  cv::Mat out;
  small.convertTo(out, CV_8UC3, 255.0);  // saturating
  return out;
}

void write_split(FT_Library lib, const std::vector<FontFace>& fonts, const SynDigitsOptions& o, int64_t n,
                 const std::string& stem, uint64_t split_id, const std::vector<cv::Mat>& photos) {
  std::vector<FacePtr> faces;
  for (const auto& f : fonts) {
    faces.push_back(open_face(lib, f.file, f.index));
    GRAFT_CHECK(faces.back() != nullptr, "font ", f.file, " could not be reopened");
  }
  std::seed_seq ss{static_cast<uint32_t>(o.seed), static_cast<uint32_t>(o.seed >> 32), static_cast<uint32_t>(split_id)};
  Rng r(ss);
  std::vector<int64_t> labels(n);
  for (int64_t i = 0; i < n; ++i) labels[i] = i % 10;
  std::shuffle(labels.begin(), labels.end(), r);
  const int size = static_cast<int>(o.size);
  auto images = at::empty({n, size, size, 3}, at::kByte);
  auto lab = at::empty({n}, at::kByte);
  std::uniform_int_distribution<size_t> pick(0, faces.size() - 1);
  for (int64_t i = 0; i < n; ++i) {
    auto img = render_sample(r, faces[pick(r)].get(), static_cast<int>(labels[i]), size, photos);
    GRAFT_CHECK(img.isContinuous() && img.type() == CV_8UC3, "internal: rendered image layout");
    std::memcpy(images[i].data_ptr<uint8_t>(), img.data, static_cast<size_t>(size * size * 3));
    lab[i] = static_cast<uint8_t>(labels[i]);
  }
  write_idx(o.out_dir + "/" + stem + "-images-idx4-ubyte", images);
  write_idx(o.out_dir + "/" + stem + "-labels-idx1-ubyte", lab);
}

}  // namespace

std::vector<FontFace> find_digit_fonts(const std::vector<std::string>& dirs) {
  std::vector<std::string> files;
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    for (auto it = fs::recursive_directory_iterator(d, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
      auto ext = it->path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (ext == ".ttf" || ext == ".otf" || ext == ".ttc" || ext == ".t1" || ext == ".pfb")
        files.push_back(it->path().string());
    }
  }
  std::sort(files.begin(), files.end());
  FtLibrary ft;
  std::map<std::pair<std::string, std::string>, std::pair<int, FontFace>> best;  // (family, style) -> (rank, face)
  for (const auto& file : files) {
    auto ext = fs::path(file).extension().string();
    const int rank = (ext == ".t1" || ext == ".pfb") ? 1 : 0;  // prefer the OpenType/TrueType copy
    auto first = open_face(ft.lib, file, 0);
    FT_Face probe = nullptr;
    if (!first && FT_New_Face(ft.lib, file.c_str(), 0, &probe) != 0) continue;
    int64_t count = first ? first->num_faces : probe->num_faces;
    if (probe) FT_Done_Face(probe);
    for (int64_t i = 0; i < count; ++i) {
      auto f = i == 0 ? std::move(first) : open_face(ft.lib, file, i);
      if (!f || !f->family_name || is_keycap_face(f->family_name) || !draws_ten_distinct_digits(f.get())) continue;
      FontFace face{file, i, f->family_name, f->style_name ? f->style_name : ""};
      auto key = std::make_pair(face.family, face.style);
      auto it = best.find(key);
      if (it == best.end() || rank < it->second.first) best[key] = {rank, face};
    }
  }
  std::vector<FontFace> out;
  for (auto& [k, v] : best) out.push_back(v.second);  // map order: family, then style
  return out;
}

std::pair<std::vector<FontFace>, std::vector<FontFace>> split_fonts_by_family(const std::vector<FontFace>& faces,
                                                                              double test_share) {
  GRAFT_CHECK(test_share > 0 && test_share < 1, "syndigits: the test share of font families must be in (0, 1), got ",
              test_share);
  std::set<std::string> fam_set;
  for (const auto& f : faces) fam_set.insert(family_group(f.family));
  std::vector<std::string> fams(fam_set.begin(), fam_set.end());
  GRAFT_CHECK(fams.size() >= 2, "syndigits: need fonts of at least two families (one for train, one for test), found ",
              fams.size(), "; install Debian's font packages (scripts/setup.sh lists them) or pass --fonts DIR");
  std::stable_sort(fams.begin(), fams.end(),
                   [](const std::string& a, const std::string& b) { return fnv1a(a) < fnv1a(b); });
  const auto n = static_cast<int64_t>(fams.size());
  const int64_t n_test = std::clamp<int64_t>(std::llround(test_share * static_cast<double>(n)), 1, n - 1);
  std::set<std::string> test_fams(fams.begin(), fams.begin() + n_test);
  std::pair<std::vector<FontFace>, std::vector<FontFace>> out;
  for (const auto& f : faces) (test_fams.count(family_group(f.family)) ? out.second : out.first).push_back(f);
  return out;
}

void make_syndigits(const SynDigitsOptions& o) {
  GRAFT_CHECK(!o.out_dir.empty(), "make syndigits: --out is required");
  GRAFT_CHECK(o.n_train >= 10 && o.n_test >= 10, "make syndigits: need at least 10 images per split, got --n-train ",
              o.n_train, " --n-test ", o.n_test);
  GRAFT_CHECK(o.size >= 8 && o.size <= 256, "make syndigits: --size must be in [8, 256], got ", o.size);
  auto faces = find_digit_fonts(o.font_dirs);
  std::string dirs;
  for (const auto& d : o.font_dirs) dirs += (dirs.empty() ? "" : ", ") + d;
  GRAFT_CHECK(!faces.empty(), "make syndigits: no font under ", dirs, " draws the ten digits; install Debian's font "
              "packages (scripts/setup.sh lists them) or pass --fonts DIR");
  auto [train, test] = split_fonts_by_family(faces, o.test_share);
  auto photos = load_backgrounds(o.photos, static_cast<int>(2 * o.size));
  graft::ensure_dir(o.out_dir);
  FtLibrary ft;
  write_split(ft.lib, train, o, o.n_train, "train", 0, photos);
  write_split(ft.lib, test, o, o.n_test, "t10k", 1, photos);
  std::string list;
  for (const auto& [name, fs_] : {std::pair{"train", &train}, std::pair{"test", &test}})
    for (const auto& f : *fs_) list += str(name, "\t", f.family, "\t", f.style, "\t", f.file, "\t", f.index, "\n");
  graft::write_text_atomically(o.out_dir + "/fonts.txt", list);
  graft::write_text_atomically(
      o.out_dir + "/README.txt",
      str("SynDigits-style domain made by 'graft data make syndigits' (seed ", o.seed, "): digits 0-9 rendered with ",
          "FreeType from ", faces.size(), " font faces under ", dirs, " (", train.size(), " faces for train, ", test.size(),
          " of other families for test; fonts.txt lists them), varied stroke, height, rotation, shear, position, blur, ",
          "colour and background (solid, gradient", photos.empty() ? "" : ", photo crops", "), ", o.size, "x", o.size,
          " RGB; ", o.n_train, " train and ", o.n_test, " test images, labels balanced. In the manner of Ganin & ",
          "Lempitsky 2015's SynDigits.\n"));
}

}  // namespace graft::data
