#include "graft/data/transforms.h"

#include <ATen/ATen.h>

#include <cmath>
#include <sstream>

#include "graft/core/check.h"

namespace graft::data {
namespace {

std::vector<double> parse_doubles(const std::string& s, char sep, const std::string& step) {
  std::vector<double> v;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, sep)) {
    try {
      size_t used = 0;
      v.push_back(std::stod(tok, &used));
      GRAFT_CHECK(used == tok.size(), "");
    } catch (const std::exception&) {
      GRAFT_FAIL("transform '", step, "': '", tok, "' is not a number");
    }
  }
  GRAFT_CHECK(!v.empty(), "transform '", step, "' needs a value");
  return v;
}

std::pair<int64_t, int64_t> parse_size(const std::string& s, const std::string& step) {
  auto x = s.find('x');
  auto a = parse_doubles(s.substr(0, x), ',', step);
  auto b = x == std::string::npos ? a : parse_doubles(s.substr(x + 1), ',', step);
  GRAFT_CHECK(a[0] >= 1 && b[0] >= 1 && a[0] <= 16384 && b[0] <= 16384, "transform '", step,
              "': size must be between 1 and 16384");
  // Same bound as decoded images (--max-pixels' default): an output size is memory too.
  GRAFT_CHECK(a[0] * b[0] <= 64.0 * (1 << 20), "transform '", step, "': ", a[0], "x", b[0],
              " is more than 64 megapixels");
  return {static_cast<int64_t>(a[0]), static_cast<int64_t>(b[0])};
}

/// Bilinear resize matching torchvision's tensor path, `Resize(size, antialias=True)` on
/// float tensors (both call ATen's antialiased bilinear kernel when shrinking). With one
/// number (h_ > 0, w_ == 0) the shorter side becomes h_ and the longer one
/// int(h_ * long / short), as torchvision computes it; with HxW the size is exact.
class Resize : public Transform {
 public:
  Resize(int64_t h, int64_t w) : h_(h), w_(w) {}
  at::Tensor apply(const at::Tensor& x, std::mt19937_64&) const override {
    int64_t H = x.size(-2), W = x.size(-1), oh = h_, ow = w_;
    if (w_ == 0) {
      bool tall = H > W;
      int64_t shorter = tall ? W : H, longer = tall ? H : W;
      int64_t new_long = static_cast<int64_t>(static_cast<double>(h_) * static_cast<double>(longer) /
                                              static_cast<double>(shorter));
      oh = tall ? new_long : h_;
      ow = tall ? h_ : new_long;
    }
    if (H == oh && W == ow) return x;
    bool single = x.dim() == 3;
    auto b = single ? x.unsqueeze(0) : x;
    bool shrink = oh < H || ow < W;
    auto y = shrink ? at::_upsample_bilinear2d_aa(b, {oh, ow}, /*align_corners=*/false)
                    : at::upsample_bilinear2d(b, {oh, ow}, /*align_corners=*/false);
    return single ? y.squeeze(0) : y;
  }
  std::string spec() const override { return w_ == 0 ? str("resize=", h_) : str("resize=", h_, "x", w_); }

 private:
  int64_t h_, w_;
};

class CenterCrop : public Transform {
 public:
  CenterCrop(int64_t h, int64_t w) : h_(h), w_(w) {}
  at::Tensor apply(const at::Tensor& x, std::mt19937_64&) const override {
    int64_t H = x.size(-2), W = x.size(-1);
    GRAFT_CHECK(H >= h_ && W >= w_, "center-crop=", h_, "x", w_, " is larger than the image (", H, "x", W,
                "); resize first (e.g. resize=", std::max(h_, w_), " before the crop)");
    // torchvision: int(round((H - h) / 2)), rounding halves to even
    int64_t top = static_cast<int64_t>(std::nearbyint((H - h_) / 2.0));
    int64_t left = static_cast<int64_t>(std::nearbyint((W - w_) / 2.0));
    return x.narrow(-2, top, h_).narrow(-1, left, w_).contiguous();
  }
  std::string spec() const override { return str("center-crop=", h_, "x", w_); }

 private:
  int64_t h_, w_;
};

/// A random step: one example is a batch of one with its own draws, so that an example
/// transformed alone and the same example inside a batch come out equal.
class RandomStep : public Transform {
 public:
  bool random() const override { return true; }
  at::Tensor apply(const at::Tensor& x, std::mt19937_64& rng) const override {
    return apply_drawn(x.unsqueeze(0), {draw({x.size(0), x.size(1), x.size(2)}, rng)}).squeeze(0);
  }
};

/// Draw k of every example, as a float64 CPU tensor (N).
at::Tensor drawn(const std::vector<std::vector<double>>& d, size_t k) {
  std::vector<double> v(d.size());
  for (size_t i = 0; i < d.size(); ++i) v[i] = d[i].at(k);
  return at::tensor(v, at::kDouble);
}

/// Draw k of every example as per-example factors (N,1,1,1) of x's type on x's device.
at::Tensor drawn_factor(const std::vector<std::vector<double>>& d, size_t k, const at::Tensor& x) {
  return drawn(d, k).to(x.options()).view({x.size(0), 1, 1, 1});
}

/// Sampling grids of per-example affine maps; theta (N,2,3) float64 on the CPU.
at::Tensor warp(const at::Tensor& x, const at::Tensor& theta) {
  auto grid = at::affine_grid_generator(theta.to(x.options()), {x.size(0), x.size(1), x.size(2), x.size(3)}, false);
  return at::grid_sampler(x, grid, 0, 0, false);
}

class RandomCrop : public RandomStep {
 public:
  RandomCrop(int64_t s, int64_t pad) : s_(s), pad_(pad) {}
  std::vector<double> draw(const std::vector<int64_t>& chw, std::mt19937_64& rng) const override {
    const int64_t H = chw[1] + 2 * pad_, W = chw[2] + 2 * pad_;
    GRAFT_CHECK(H >= s_ && W >= s_, "random-crop=", s_, " is larger than the padded image (", H, "x", W, ")");
    const auto top = std::uniform_int_distribution<int64_t>(0, H - s_)(rng);
    const auto left = std::uniform_int_distribution<int64_t>(0, W - s_)(rng);
    return {static_cast<double>(top), static_cast<double>(left)};
  }
  at::Tensor apply_drawn(const at::Tensor& x, const std::vector<std::vector<double>>& d) const override {
    auto p = pad_ > 0 ? at::constant_pad_nd(x, {pad_, pad_, pad_, pad_}, 0.0) : x;
    const int64_t N = p.size(0), C = p.size(1), W = p.size(3);
    if (N == 1)
      return p.narrow(2, static_cast<int64_t>(d[0][0]), s_).narrow(3, static_cast<int64_t>(d[0][1]), s_).contiguous();
    // Rows, then columns, gathered per example: one pass over the batch on any device.
    auto offsets = at::arange(s_, at::kLong).view({1, s_});
    auto rows = (drawn(d, 0).to(at::kLong).view({N, 1}) + offsets).to(p.device());
    auto cols = (drawn(d, 1).to(at::kLong).view({N, 1}) + offsets).to(p.device());
    auto y = p.gather(2, rows.view({N, 1, s_, 1}).expand({N, C, s_, W}));
    return y.gather(3, cols.view({N, 1, 1, s_}).expand({N, C, s_, s_}));
  }
  std::string spec() const override { return str("random-crop=", s_, ":", pad_); }

 private:
  int64_t s_, pad_;
};

class HFlip : public RandomStep {
 public:
  explicit HFlip(double p) : p_(p) {}
  std::vector<double> draw(const std::vector<int64_t>&, std::mt19937_64& rng) const override {
    return {std::uniform_real_distribution<double>(0, 1)(rng) < p_ ? 1.0 : 0.0};
  }
  at::Tensor apply_drawn(const at::Tensor& x, const std::vector<std::vector<double>>& d) const override {
    std::vector<int64_t> flipped;
    for (size_t i = 0; i < d.size(); ++i)
      if (d[i][0] != 0) flipped.push_back(static_cast<int64_t>(i));
    if (flipped.empty()) return x;
    if (flipped.size() == d.size()) return x.flip({-1});
    auto idx = at::tensor(flipped, at::kLong).to(x.device());
    return x.clone().index_copy_(0, idx, x.index_select(0, idx).flip({-1}));
  }
  std::string spec() const override { return str("hflip=", p_); }

 private:
  double p_;
};

class Channels : public Transform {
 public:
  explicit Channels(int64_t c) : c_(c) {}
  at::Tensor apply(const at::Tensor& x, std::mt19937_64&) const override { return convert_channels(x, c_); }
  std::string spec() const override { return c_ == 3 ? "rgb" : "gray"; }

 private:
  int64_t c_;
};

class Normalize : public Transform {
 public:
  Normalize(std::vector<double> m, std::vector<double> s) : m_(std::move(m)), s_(std::move(s)) {
    GRAFT_CHECK(m_.size() == s_.size(), "normalize: give as many means as standard deviations");
    for (double v : s_) GRAFT_CHECK(v > 0, "normalize: standard deviations must be positive, got ", v);
  }
  at::Tensor apply(const at::Tensor& x, std::mt19937_64&) const override {
    if (m_.size() == 1) return (x - m_[0]) / s_[0];
    int64_t c = x.size(-3);
    GRAFT_CHECK(c == static_cast<int64_t>(m_.size()), "normalize has ", m_.size(), " channel values but the image has ",
                c, " channel(s); for gray data feeding an RGB model add 'rgb' before it or pass --channels 3");
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[shape.size() - 3] = c;
    auto m = at::tensor(m_, x.options()).view(shape), s = at::tensor(s_, x.options()).view(shape);
    return (x - m) / s;
  }
  std::string spec() const override {
    std::string a, b;
    for (size_t i = 0; i < m_.size(); ++i) {
      a += (i ? "/" : "") + str(m_[i]);
      b += (i ? "/" : "") + str(s_[i]);
    }
    return "normalize=" + a + ":" + b;
  }

 private:
  std::vector<double> m_, s_;
};

class Jitter : public RandomStep {
 public:
  explicit Jitter(double b) : b_(b) { GRAFT_CHECK(b >= 0 && b < 1, "jitter must be in [0, 1), got ", b); }
  std::vector<double> draw(const std::vector<int64_t>&, std::mt19937_64& rng) const override {
    std::uniform_real_distribution<double> u(1 - b_, 1 + b_);
    const double bright = u(rng);
    return {bright, u(rng)};
  }
  at::Tensor apply_drawn(const at::Tensor& x, const std::vector<std::vector<double>>& d) const override {
    auto mean = x.mean({1, 2, 3}, /*keepdim=*/true);
    return ((x - mean) * drawn_factor(d, 1, x) + mean * drawn_factor(d, 0, x)).clamp(0, 1);
  }
  std::string spec() const override { return str("jitter=", b_); }

 private:
  double b_;
};

class Rotate : public RandomStep {
 public:
  explicit Rotate(double d) : d_(d) {}
  std::vector<double> draw(const std::vector<int64_t>&, std::mt19937_64& rng) const override {
    return {std::uniform_real_distribution<double>(-d_, d_)(rng)};
  }
  at::Tensor apply_drawn(const at::Tensor& x, const std::vector<std::vector<double>>& d) const override {
    auto a = drawn(d, 0) * (M_PI / 180.0), c = a.cos(), s = a.sin(), z = at::zeros_like(a);
    return warp(x, at::stack({c, -s, z, s, c, z}, 1).view({-1, 2, 3}));
  }
  std::string spec() const override { return str("rotate=", d_); }

 private:
  double d_;
};

/// Random zoom about the centre by a factor in [1-a, 1+a] (zooming out pads with zeros).
class Scale : public RandomStep {
 public:
  explicit Scale(double a) : a_(a) { GRAFT_CHECK(a >= 0 && a < 1, "scale must be in [0, 1), got ", a); }
  std::vector<double> draw(const std::vector<int64_t>&, std::mt19937_64& rng) const override {
    return {std::uniform_real_distribution<double>(1 - a_, 1 + a_)(rng)};
  }
  at::Tensor apply_drawn(const at::Tensor& x, const std::vector<std::vector<double>>& d) const override {
    auto inv = 1.0 / drawn(d, 0), z = at::zeros_like(inv);
    return warp(x, at::stack({inv, z, z, z, inv, z}, 1).view({-1, 2, 3}));
  }
  std::string spec() const override { return str("scale=", a_); }

 private:
  double a_;
};

/// Cutout (DeVries & Taylor 2017): an S x S square centred at a random pixel (it may
/// reach past the border) set to mid-grey 0.5.
class Cutout : public RandomStep {
 public:
  explicit Cutout(int64_t s) : s_(s) { GRAFT_CHECK(s >= 1 && s <= 4096, "cutout size must be in [1, 4096], got ", s); }
  std::vector<double> draw(const std::vector<int64_t>& chw, std::mt19937_64& rng) const override {
    const auto cy = std::uniform_int_distribution<int64_t>(0, chw[1] - 1)(rng);
    const auto cx = std::uniform_int_distribution<int64_t>(0, chw[2] - 1)(rng);
    return {static_cast<double>(cy), static_cast<double>(cx)};
  }
  at::Tensor apply_drawn(const at::Tensor& x, const std::vector<std::vector<double>>& d) const override {
    const int64_t N = x.size(0), h = x.size(2), w = x.size(3);
    if (N == 1) {
      const auto cy = static_cast<int64_t>(d[0][0]), cx = static_cast<int64_t>(d[0][1]);
      int64_t y0 = std::max<int64_t>(0, cy - s_ / 2), y1 = std::min<int64_t>(h, cy - s_ / 2 + s_);
      int64_t x0 = std::max<int64_t>(0, cx - s_ / 2), x1 = std::min<int64_t>(w, cx - s_ / 2 + s_);
      auto out = x.clone();
      if (y1 > y0 && x1 > x0) out.narrow(2, y0, y1 - y0).narrow(3, x0, x1 - x0).fill_(0.5);
      return out;
    }
    // The square of every example as a mask: rows [c - s/2, c - s/2 + s) times the same for columns.
    auto inside = [&](size_t k, int64_t len) {
      auto lo = (drawn(d, k).to(at::kLong) - s_ / 2).view({N, 1}).to(x.device());
      auto at_ = at::arange(len, at::TensorOptions().dtype(at::kLong).device(x.device())).view({1, len});
      return (at_ >= lo) & (at_ < lo + s_);
    };
    auto mask = inside(0, h).view({N, 1, h, 1}) & inside(1, w).view({N, 1, 1, w});
    return x.masked_fill(mask, 0.5);
  }
  std::string spec() const override { return str("cutout=", s_); }

 private:
  int64_t s_;
};

}  // namespace

std::string preset_spec(const std::string& name) {
  if (name == "imagenet") return "resize=256,center-crop=224,normalize=0.485/0.456/0.406:0.229/0.224/0.225";
  if (name == "inception") return "resize=299,center-crop=299,normalize=0.5:0.5";
  GRAFT_FAIL("unknown preprocessing preset '", name, "'; known: imagenet, inception");
}

at::Tensor convert_channels(const at::Tensor& x, int64_t channels) {
  int64_t c = x.size(-3);
  if (c == channels) return x;
  if (c == 1 && channels == 3) {
    std::vector<int64_t> rep(static_cast<size_t>(x.dim()), 1);
    rep[rep.size() - 3] = 3;
    return x.repeat(rep);
  }
  if (c == 3 && channels == 1) {
    std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
    shape[shape.size() - 3] = 3;
    auto w = at::tensor({0.299, 0.587, 0.114}, x.options()).view(shape);
    return (x * w).sum(-3, /*keepdim=*/true);
  }
  GRAFT_FAIL("cannot convert images with ", c, " channels to ", channels, " channels");
}

uint64_t example_seed(uint64_t seed, int64_t epoch, int64_t index) {
  // splitmix64 over the three values: independent streams per (seed, epoch, index)
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(index));
}

Pipeline Pipeline::parse(const std::string& spec) {
  Pipeline p;
  std::stringstream ss(spec);
  std::string step;
  while (std::getline(ss, step, ',')) {
    if (step.empty()) continue;
    // normalize=0.485,0.456,...: the commas split the step; say how channels are separated.
    GRAFT_CHECK(step.find_first_not_of("0123456789.-e+:") != std::string::npos || p.steps_.empty() ||
                    p.steps_.back()->spec().rfind("normalize=", 0) != 0,
                "transform '", step, "' in '", spec, "' is not a step: channel values of normalize are separated by '/' "
                "(normalize=0.485/0.456/0.406:0.229/0.224/0.225), steps by ','");
    auto eq = step.find('=');
    std::string name = step.substr(0, eq), val = eq == std::string::npos ? "" : step.substr(eq + 1);
    auto need = [&]() {
      GRAFT_CHECK(!val.empty(), "transform '", step, "' needs a value, e.g. ", name, "=32");
    };
    if (name == "imagenet" || name == "inception") {
      GRAFT_CHECK(val.empty(), "preset '", name, "' takes no value");
      p.then(parse(preset_spec(name)));
    } else if (name == "resize") {
      need();
      auto [h, w] = parse_size(val, step);
      p.add(std::make_shared<Resize>(h, val.find('x') == std::string::npos ? 0 : w));
    } else if (name == "center-crop") {
      need();
      auto [h, w] = parse_size(val, step);
      p.add(std::make_shared<CenterCrop>(h, w));
    } else if (name == "random-crop") {
      need();
      auto c = val.find(':');
      auto s = parse_size(val.substr(0, c), step).first;
      // Range-checked as a double: casting 1e300 to an integer is undefined (found by fuzz_transform).
      double pad_d = c == std::string::npos ? 0 : parse_doubles(val.substr(c + 1), ',', step)[0];
      GRAFT_CHECK(pad_d >= 0 && pad_d < 1024, "transform '", step, "': padding out of range");
      auto pad = static_cast<int64_t>(pad_d);
      p.add(std::make_shared<RandomCrop>(s, pad));
    } else if (name == "hflip") {
      double pr = val.empty() ? 0.5 : parse_doubles(val, ',', step)[0];
      GRAFT_CHECK(pr >= 0 && pr <= 1, "transform '", step, "': probability must be in [0, 1]");
      p.add(std::make_shared<HFlip>(pr));
    } else if (name == "rgb") {
      p.add(std::make_shared<Channels>(3));
    } else if (name == "gray") {
      p.add(std::make_shared<Channels>(1));
    } else if (name == "normalize") {
      need();
      auto c = val.find(':');
      GRAFT_CHECK(c != std::string::npos, "transform '", step, "': use normalize=MEAN:STD, per-channel values "
                  "separated by '/', e.g. normalize=0.485/0.456/0.406:0.229/0.224/0.225");
      p.add(std::make_shared<Normalize>(parse_doubles(val.substr(0, c), '/', step),
                                        parse_doubles(val.substr(c + 1), '/', step)));
    } else if (name == "jitter") {
      need();
      p.add(std::make_shared<Jitter>(parse_doubles(val, ',', step)[0]));
    } else if (name == "rotate") {
      need();
      p.add(std::make_shared<Rotate>(parse_doubles(val, ',', step)[0]));
    } else if (name == "scale") {
      need();
      p.add(std::make_shared<Scale>(parse_doubles(val, ',', step)[0]));
    } else if (name == "cutout") {
      need();
      p.add(std::make_shared<Cutout>(parse_size(val, step).first));
    } else {
      GRAFT_FAIL("unknown transform '", name, "' in '", spec,
                 "'; known: imagenet, inception (presets), resize, center-crop, random-crop, hflip, rgb, gray, normalize, jitter, rotate, scale, "
                 "cutout");
    }
  }
  return p;
}

std::string Pipeline::spec() const {
  std::string s;
  for (const auto& t : steps_) s += (s.empty() ? "" : ",") + t->spec();
  return s;
}

bool Pipeline::random() const {
  for (const auto& t : steps_)
    if (t->random()) return true;
  return false;
}

at::Tensor Pipeline::apply(at::Tensor x, std::mt19937_64& rng) const {
  // Every random step is an image operation: say so instead of libtorch's padding error.
  GRAFT_CHECK(x.dim() == 3 || !random(), "the transforms '", spec(), "' work on images (C,H,W) but these examples ",
              "have shape ", x.sizes(), ": drop the image augmentation (--augment, --weak, --strong) for such data");
  for (const auto& t : steps_) x = t->apply(x, rng);
  return x;
}

at::Tensor Pipeline::apply_batch(at::Tensor x) const {
  std::mt19937_64 unused(0);
  for (const auto& t : steps_) {
    GRAFT_CHECK(!t->random(), "internal: apply_batch on random transform ", t->spec());
    x = t->apply(x, unused);
  }
  return x;
}

at::Tensor Pipeline::apply_batch(at::Tensor x, const std::vector<uint64_t>& seeds) const {
  if (!random()) return apply_batch(x);
  GRAFT_CHECK(x.dim() == 4, "the transforms '", spec(), "' work on images (C,H,W) but these examples have shape ",
              x.sizes().slice(1), ": drop the image augmentation (--augment, --weak, --strong) for such data");
  GRAFT_CHECK(static_cast<int64_t>(seeds.size()) == x.size(0), "internal: ", seeds.size(), " seeds for a batch of ",
              x.size(0));
  std::vector<std::mt19937_64> rngs;
  rngs.reserve(seeds.size());
  for (auto s : seeds) rngs.emplace_back(s);
  std::vector<std::vector<double>> draws(seeds.size());
  for (const auto& t : steps_) {
    if (!t->random()) {
      x = t->apply_drawn(x, {});
      continue;
    }
    // Each example's numbers come from its own stream, in step order: as apply() takes them.
    const std::vector<int64_t> chw{x.size(1), x.size(2), x.size(3)};
    for (size_t i = 0; i < rngs.size(); ++i) draws[i] = t->draw(chw, rngs[i]);
    x = t->apply_drawn(x, draws);
  }
  return x;
}

Pipeline& Pipeline::then(const Pipeline& other) {
  steps_.insert(steps_.end(), other.steps_.begin(), other.steps_.end());
  return *this;
}

Pipeline& Pipeline::add(std::shared_ptr<const Transform> t) {
  steps_.push_back(std::move(t));
  return *this;
}

}  // namespace graft::data
