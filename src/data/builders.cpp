#include "graft/data/builders.h"

#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "graft/core/check.h"
#include "graft/data/readers.h"
#include "graft/core/files.h"
#include "graft/io/npy.h"

namespace fs = std::filesystem;

namespace graft::data {

std::vector<std::string> cached_photos() {
  std::vector<std::string> out;
  auto dir = graft::data_cache_dir() + "/photos";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir)) {
    auto ext = e.path().extension().string();
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void make_mnistm(const MnistMOptions& o) {
  GRAFT_CHECK(!o.out_dir.empty(), "make mnistm: --out is required");
  std::vector<at::Tensor> photos;  // uint8 (3,H,W)
  for (const auto& p : o.photos) {
    auto t = decode_image(p, 0);
    if (t.size(0) != 3) continue;  // the recipe needs colour patches
    // Skip near-gray images: mean channel spread below 2%.
    if ((t - t.mean(0, true)).abs().mean().item<double>() < 0.02) continue;
    photos.push_back(t.mul(255).round().to(at::kByte));
  }
  GRAFT_CHECK(!photos.empty(), "make mnistm: no usable colour photos among ", o.photos.size(),
              " given; run scripts/fetch_data.sh (it unpacks photos from Debian's python3-skimage) or pass --photos");
  std::mt19937_64 rng(o.seed);
  graft::ensure_dir(o.out_dir);
  for (std::string stem : {"train", "t10k"}) {
    auto imgs = read_idx(o.mnist_dir + "/" + stem + "-images-idx3-ubyte");
    auto labs = read_idx(o.mnist_dir + "/" + stem + "-labels-idx1-ubyte");
    GRAFT_CHECK(imgs.dim() == 3 && imgs.size(0) == labs.size(0), o.mnist_dir, ": MNIST ", stem,
                " images and labels do not match");
    int64_t n = o.limit > 0 ? std::min(o.limit, imgs.size(0)) : imgs.size(0);
    int64_t h = imgs.size(1), w = imgs.size(2);
    auto out = at::empty({n, h, w, 3}, at::kByte);
    // Pre-scale each photo a few times so that patches show structure at several scales.
    std::vector<at::Tensor> scaled;
    for (const auto& ph : photos) {
      for (double s : {0.25, 0.5, 1.0}) {
        int64_t ph_h = std::max<int64_t>(h, static_cast<int64_t>(ph.size(1) * s));
        int64_t ph_w = std::max<int64_t>(w, static_cast<int64_t>(ph.size(2) * s));
        auto f = at::_upsample_bilinear2d_aa(ph.unsqueeze(0).to(at::kFloat), {ph_h, ph_w}, false);
        scaled.push_back(f.squeeze(0).round().clamp(0, 255).to(at::kByte).contiguous());
      }
    }
    std::uniform_int_distribution<size_t> pick(0, scaled.size() - 1);
    for (int64_t i = 0; i < n; ++i) {
      const auto& ph = scaled[pick(rng)];
      int64_t top = std::uniform_int_distribution<int64_t>(0, ph.size(1) - h)(rng);
      int64_t left = std::uniform_int_distribution<int64_t>(0, ph.size(2) - w)(rng);
      auto patch = ph.narrow(1, top, h).narrow(2, left, w).to(at::kShort);  // (3,h,w)
      auto digit = imgs[i].to(at::kShort).unsqueeze(0);                   // (1,h,w)
      out[i].copy_((patch - digit).abs().permute({1, 2, 0}).to(at::kByte));
    }
    write_idx(o.out_dir + "/" + stem + "-images-idx4-ubyte", out);
    write_idx(o.out_dir + "/" + stem + "-labels-idx1-ubyte", labs.narrow(0, 0, n).contiguous());
  }
  std::string readme = "MNIST-M-style domain made by 'graft data make mnistm' (seed " + std::to_string(o.seed) +
                       "): each MNIST digit blended with a random crop of a colour photo, out = |patch - digit| per "
                       "channel (Ganin & Lempitsky 2015).\nPhotos:\n";
  for (const auto& p : o.photos) readme += "  " + p + "\n";
  graft::write_text_atomically(o.out_dir + "/README.txt", readme);
}

void make_moons(const MoonsOptions& o) {
  GRAFT_CHECK(!o.out_dir.empty(), "make moons: --out is required");
  GRAFT_CHECK(o.n_train >= 2 && o.n_test >= 2, "make moons: need at least 2 points per split");
  GRAFT_CHECK(o.noise >= 0 && o.noise < 10, "make moons: --noise must be in [0, 10)");
  GRAFT_CHECK(std::isfinite(o.rotate_deg), "make moons: --rotate must be a number of degrees");
  graft::ensure_dir(o.out_dir);
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> gauss(0.0, o.noise);
  std::uniform_real_distribution<double> uni(0.0, M_PI);
  double a = o.rotate_deg * M_PI / 180.0, ca = std::cos(a), sa = std::sin(a);
  // Centre of the two moons (upper: centre (0,0), lower: centre (1,0.5)) is (0.5, 0.25).
  const double cx = 0.5, cy = 0.25;
  for (auto [name, n] : {std::pair<std::string, int64_t>{"train", o.n_train}, {"test", o.n_test}}) {
    auto x = at::empty({n, 2}, at::kFloat);
    auto y = at::empty({n}, at::kLong);
    auto xp = x.data_ptr<float>();
    auto yp = y.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      int64_t cls = i % 2;
      double t = uni(rng);
      double px = cls == 0 ? std::cos(t) : 1.0 - std::cos(t);
      double py = cls == 0 ? std::sin(t) : 0.5 - std::sin(t);
      px += gauss(rng);
      py += gauss(rng);
      double dx = px - cx, dy = py - cy;
      xp[2 * i] = static_cast<float>(cx + ca * dx - sa * dy);
      xp[2 * i + 1] = static_cast<float>(cy + sa * dx + ca * dy);
      yp[i] = cls;
    }
    io::write_npy(o.out_dir + "/" + name + "_x.npy", x);
    io::write_npy(o.out_dir + "/" + name + "_y.npy", y);
  }
}

}  // namespace graft::data
