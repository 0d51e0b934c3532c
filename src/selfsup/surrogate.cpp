#include "graft/selfsup/surrogate.h"

#include <torch/torch.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "graft/core/check.h"

namespace graft::selfsup {
namespace {

class RotationTask : public data::Dataset {
 public:
  explicit RotationTask(data::DatasetPtr base) : base_(std::move(base)) {}
  int64_t size() const override { return 4 * base_->size(); }
  data::Example get(int64_t i) const override {
    auto e = base_->get(i / 4);
    return {turn(e.input, i % 4), i % 4};
  }
  data::Batch get_batch(const std::vector<int64_t>& idx) const override {
    std::vector<int64_t> src(idx.size());
    for (size_t j = 0; j < idx.size(); ++j) src[j] = idx[j] / 4;
    auto b = base_->get_batch(src);
    std::vector<at::Tensor> xs;
    std::vector<int64_t> ys;
    for (size_t j = 0; j < idx.size(); ++j) {
      xs.push_back(turn(b.input[static_cast<int64_t>(j)], idx[j] % 4));
      ys.push_back(idx[j] % 4);
    }
    return {at::stack(xs), torch::tensor(ys, torch::kLong), torch::tensor(idx, torch::kLong)};
  }
  bool tensor_backed() const override { return base_->tensor_backed(); }
  bool skip_bad() const override { return base_->skip_bad(); }
  std::vector<int64_t> input_shape() const override { return base_->input_shape(); }
  const std::vector<std::string>& class_names() const override { return names_; }
  std::vector<int64_t> labels() const override {
    std::vector<int64_t> y(static_cast<size_t>(size()));
    for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int64_t>(i % 4);
    return y;
  }
  std::string describe() const override { return "rotation task over " + base_->describe(); }

 private:
  static at::Tensor turn(const at::Tensor& x, int64_t k) { return k == 0 ? x : torch::rot90(x, k, {-2, -1}).contiguous(); }
  data::DatasetPtr base_;
  std::vector<std::string> names_ = {"rot0", "rot90", "rot180", "rot270"};
};

}  // namespace

data::DatasetPtr rotation_task(const data::DatasetPtr& images) {
  GRAFT_CHECK(images && images->size() > 0, "the unlabelled set is empty: the rotation task needs images");
  auto s = images->input_shape();
  GRAFT_CHECK(s.size() == 3, "the rotation task needs images (C,H,W); ", images->describe(), " has examples of shape ",
              at::IntArrayRef(s));
  GRAFT_CHECK(s[1] == s[2], "the rotation task needs square images (turned by 90 degrees they keep their shape); ",
              images->describe(), " has ", s[1], "x", s[2], ". Add a center-crop or resize view first");
  return std::make_shared<RotationTask>(images);
}

data::DatasetPtr exemplar_task(const data::DatasetPtr& images, int64_t classes, int64_t copies, uint64_t seed) {
  GRAFT_CHECK(images && images->size() > 0, "the unlabelled set is empty: the exemplar task needs images");
  GRAFT_CHECK(classes >= 2, "--classes (exemplar pseudo-classes) must be at least 2, got ", classes);
  GRAFT_CHECK(copies >= 1 && copies <= 100000, "--copies must be in [1, 100000], got ", copies);
  GRAFT_CHECK(images->size() >= classes, "the exemplar task asks for ", classes, " pseudo-classes (one seed image each) "
              "but ", images->describe(), " has only ", images->size(), " images; lower --classes to at most ",
              images->size());
  std::vector<int64_t> order(static_cast<size_t>(images->size()));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  order.resize(static_cast<size_t>(classes));
  std::vector<int64_t> idx, label_map;
  idx.reserve(static_cast<size_t>(classes * copies));
  for (int64_t r = 0; r < copies; ++r) idx.insert(idx.end(), order.begin(), order.end());
  // The seed images as a view with their own labels hidden (they mean something else);
  // Exemplars below labels copy r of seed c as example r * classes + c, class c.
  std::vector<std::string> names(static_cast<size_t>(classes));
  for (int64_t c = 0; c < classes; ++c) names[static_cast<size_t>(c)] = "exemplar-" + std::to_string(c);
  auto base = std::make_shared<data::SubsetDataset>(images, order, std::vector<int64_t>{}, names, "exemplar seeds",
                                                    /*hide_labels=*/true);
  class Exemplars : public data::Dataset {
   public:
    Exemplars(data::DatasetPtr seeds, int64_t copies) : seeds_(std::move(seeds)), copies_(copies) {}
    int64_t size() const override { return seeds_->size() * copies_; }
    data::Example get(int64_t i) const override { return {seeds_->get(i % seeds_->size()).input, i % seeds_->size()}; }
    data::Batch get_batch(const std::vector<int64_t>& idx) const override {
      std::vector<int64_t> src(idx.size());
      for (size_t j = 0; j < idx.size(); ++j) src[j] = idx[j] % seeds_->size();
      auto b = seeds_->get_batch(src);
      return {b.input, torch::tensor(src, torch::kLong), torch::tensor(idx, torch::kLong)};
    }
    bool tensor_backed() const override { return seeds_->tensor_backed(); }
    std::vector<int64_t> input_shape() const override { return seeds_->input_shape(); }
    const std::vector<std::string>& class_names() const override { return seeds_->class_names(); }
    std::vector<int64_t> labels() const override {
      std::vector<int64_t> y(static_cast<size_t>(size()));
      for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<int64_t>(i) % seeds_->size();
      return y;
    }
    std::string describe() const override {
      return "exemplar task: " + std::to_string(seeds_->size()) + " pseudo-classes x " + std::to_string(copies_) +
             " augmented copies";
    }

   private:
    data::DatasetPtr seeds_;
    int64_t copies_;
  };
  return std::make_shared<Exemplars>(base, copies);
}

std::string exemplar_augment(const std::vector<int64_t>& s) {
  const int64_t h = s.size() == 3 ? s[1] : 28;
  return "random-crop=" + std::to_string(h) + ":" + std::to_string(std::max<int64_t>(2, h / 7)) +
         ",scale=0.2,rotate=20,hflip,jitter=0.4";
}

std::string rotation_augment(const std::vector<int64_t>& s) {
  const int64_t h = s.size() == 3 ? s[1] : 28;
  return "random-crop=" + std::to_string(h) + ":" + std::to_string(std::max<int64_t>(1, h / 14));
}

}  // namespace graft::selfsup
