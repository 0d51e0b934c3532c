// DAN's multi-kernel MMD: properties that keep it from rewarding collapsed features.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "graft/adapt/losses.h"

using namespace graft;

namespace {

// Sum over both samples of <d loss / d f, f>: the rate at which the loss changes when every
// feature is scaled by (1 + eps). Negative means a gradient step grows the features,
// positive that it shrinks them.
double radial_gradient(const at::Tensor& fs0, const at::Tensor& ft0) {
  auto fs = fs0.clone().requires_grad_(true), ft = ft0.clone().requires_grad_(true);
  adapt::mmd_loss(fs, ft).backward();
  return ((fs.grad() * fs).sum() + (ft.grad() * ft).sum()).item<double>();
}

}  // namespace

TEST(Mmd, ScaleInvariantSoNoPushToShrinkTheFeatures) {
  torch::manual_seed(0);
  auto fs = torch::randn({64, 30}).relu(), ft = (torch::randn({64, 30}) + 0.7).relu();
  const double l = adapt::mmd_loss(fs, ft).item<double>();
  ASSERT_GT(l, 0.05);  // the two samples differ
  for (double c : {0.01, 0.5, 20.0}) EXPECT_NEAR(adapt::mmd_loss(c * fs, c * ft).item<double>(), l, 1e-4 * l) << c;
  auto gs = fs.clone().requires_grad_(true), gt = ft.clone().requires_grad_(true);
  adapt::mmd_loss(gs, gt).backward();
  const double gnorm = std::sqrt(gs.grad().pow(2).sum().item<double>() + gt.grad().pow(2).sum().item<double>());
  const double fnorm = std::sqrt(fs.pow(2).sum().item<double>() + ft.pow(2).sum().item<double>());
  ASSERT_GT(gnorm, 1e-4);
  // With the bandwidth held fixed (detached) this was about 0.01 of gnorm * fnorm, positive:
  // every step shrank the features (measured on a replica before the change).
  EXPECT_LT(std::abs(radial_gradient(fs, ft)), 1e-4 * gnorm * fnorm);
}

TEST(Mmd, MatchingReluFeaturesDoesNotShrinkThem) {
  // The collapse DAN showed on MNIST-M, in small: ReLU features of a learnt linear map,
  // trained on the MMD alone. With a detached bandwidth the mean feature norm fell to about
  // 0.4 of its start here (measured on a replica before the change); now it stays.
  torch::manual_seed(3);
  auto xs = torch::randn({64, 8}), xt = torch::randn({64, 8}) + 1.0;
  auto w = (torch::randn({8, 16}) * 0.5).requires_grad_(true);
  auto norm = [&] { return torch::relu(torch::cat({xs, xt}).mm(w)).norm(2, 1).mean().item<double>(); };
  const double n0 = norm();
  double l0 = 0, l = 0;
  for (int i = 0; i < 300; ++i) {
    auto loss = adapt::mmd_loss(torch::relu(xs.mm(w)), torch::relu(xt.mm(w)));
    l = loss.item<double>();
    if (i == 0) l0 = l;
    w.mutable_grad() = at::Tensor();
    loss.backward();
    torch::NoGradGuard ng;
    w.sub_(w.grad());
  }
  EXPECT_LT(l, 0.1 * l0);     // the two samples were brought together
  EXPECT_GT(norm(), 0.7 * n0);  // without shrinking the features towards zero
}

TEST(Mmd, TightCloudFarFromTheOriginKeepsItsValue) {
  // 1e-3 spread around a point at distance ~280: squared distances through
  // |a|^2 + |b|^2 - 2ab without centring lose their digits in float32 (cdist's
  // matrix-product path gave 0.118 here instead of 0.091, and negative values in training).
  torch::manual_seed(2);
  auto a = 1e-3 * torch::randn({64, 50}), b = 1e-3 * torch::randn({64, 50});
  auto z = torch::full({1, 50}, 40.0);
  const double near = adapt::mmd_loss(a, b).item<double>();
  const double far = adapt::mmd_loss(a + z, b + z).item<double>();
  ASSERT_GT(near, 0.0);
  EXPECT_NEAR(far, near, 0.02 * near);  // translation invariant
}
