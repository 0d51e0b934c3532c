#pragma once
/// Transforms on float image tensors, seeded per example so that results do not
/// depend on thread scheduling. Each works on one example (C,H,W) or on a batch
/// (N,C,H,W) in one vectorised call, on whatever device the tensor is on. A random
/// step first draws its numbers for each example from that example's own stream
/// (draw), then applies them to the whole batch (apply_drawn): a batch made this way
/// equals the same examples transformed one by one with the same streams.
#include <ATen/core/Tensor.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace graft::data {

/// One transform step.
class Transform {
 public:
  virtual ~Transform() = default;
  /// Shape: x is (C,H,W), or (N,C,H,W) when !random(). Returns a new tensor.
  virtual at::Tensor apply(const at::Tensor& x, std::mt19937_64& rng) const = 0;
  /// True when the output depends on rng.
  virtual bool random() const { return false; }
  /// Random steps: the numbers that one example of shape `chw` (C,H,W) at this step
  /// takes from its stream rng, in the order apply() takes them.
  virtual std::vector<double> draw(const std::vector<int64_t>& /*chw*/, std::mt19937_64& /*rng*/) const { return {}; }
  /// Random steps: the step applied to a batch x (N,C,H,W) with draws[i] (from draw())
  /// for example i. Deterministic steps ignore draws and call apply().
  virtual at::Tensor apply_drawn(const at::Tensor& x, const std::vector<std::vector<double>>& /*draws*/) const {
    std::mt19937_64 unused(0);
    return apply(x, unused);
  }
  /// The spec that recreates this step, e.g. "resize=32".
  virtual std::string spec() const = 0;
};

/// A sequence of transforms, parsed from and printed as a comma-separated spec:
///   imagenet            preset: resize=256,center-crop=224,normalize=ImageNet mean/std
///                       (torchvision's ImageNet evaluation transform)
///   inception           preset: resize=299,center-crop=299,normalize=0.5:0.5 (values in [-1, 1])
///   resize=N            scale the shorter side to N, the longer to int(N * long / short)
///   resize=HxW          resize to exactly H x W
///                       Both are bilinear, antialiased when shrinking, and equal torchvision's
///                       Resize(..., antialias=True) on float tensors (after ToTensor); the PIL
///                       path differs by its uint8 rounding (docs/ARCHITECTURE.md).
///   center-crop=H[xW]   crop the centre (offsets rounded as torchvision's CenterCrop)
///   random-crop=S[:P]   pad by P (zeros) then crop S x S at a random place
///   hflip[=p]           horizontal flip with probability p (default 0.5)
///   rgb | gray          channel conversion (gray repeated; RGB to luma)
///   normalize=M:S       (x - M) / S, M and S scalars or per channel "0.5/0.5/0.5:0.2/0.2/0.2"
///   jitter=B            random brightness/contrast scale in [1-B, 1+B]
///   rotate=D            random rotation in [-D, D] degrees
///   scale=A             random zoom about the centre by a factor in [1-A, 1+A]
///   cutout=S            an S x S square at a random place set to 0.5
class Pipeline {
 public:
  Pipeline() = default;
  /// Throws graft::Error naming the step for an unknown or malformed one.
  static Pipeline parse(const std::string& spec);
  std::string spec() const;
  bool empty() const { return steps_.empty(); }
  bool random() const;
  /// Applies all steps to one example.
  at::Tensor apply(at::Tensor x, std::mt19937_64& rng) const;
  /// Applies all steps to a batch; requires !random().
  at::Tensor apply_batch(at::Tensor x) const;
  /// Applies all steps to a batch (N,C,H,W) whose example i has the random stream
  /// seeded with seeds[i]: the result equals apply() of each example with
  /// std::mt19937_64(seeds[i]), computed in one vectorised pass per step on x's device.
  at::Tensor apply_batch(at::Tensor x, const std::vector<uint64_t>& seeds) const;
  /// Appends the steps of other.
  Pipeline& then(const Pipeline& other);
  Pipeline& add(std::shared_ptr<const Transform> t);

 private:
  std::vector<std::shared_ptr<const Transform>> steps_;
};

/// The steps a preset name stands for ("imagenet", "inception"); throws graft::Error otherwise.
std::string preset_spec(const std::string& name);

/// Converts an image (C,H,W) or batch (N,C,H,W) to `channels` (1 or 3) channels.
at::Tensor convert_channels(const at::Tensor& x, int64_t channels);

/// Seed of the random stream for example `index` in `epoch` of a run seeded with `seed`.
uint64_t example_seed(uint64_t seed, int64_t epoch, int64_t index);

}  // namespace graft::data
