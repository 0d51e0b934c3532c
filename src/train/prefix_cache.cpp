#include "prefix_cache.h"

#include <filesystem>

#include "graft/core/check.h"
#include "graft/data/loader.h"

namespace graft::train {

void PrefixCache::build(models::Backbone& model, size_t prefix, const data::DatasetPtr& ds, const data::Pipeline& pipe,
                        int workers, const std::string& mode, int64_t memory_mb, c10::Device dev,
                        const std::string& disk_path) {
  data::Loader l(ds, pipe, data::LoaderOptions().batch_size_(256).shuffle_(false).workers_(workers));
  l.start_epoch(0);
  torch::NoGradGuard no_grad;
  int64_t n = ds->size(), row = 0;
  std::ofstream file;
  while (auto b = l.next()) {
    auto h = model.forward_range(b->input.to(dev), 0, prefix).to(at::kCPU).contiguous();
    if (!labels_.defined()) {
      shape_ = h.sizes().vec();
      shape_[0] = n;
      row_elems_ = h[0].numel();
      labels_ = at::empty({n}, at::kLong);
      double mb = static_cast<double>(n * row_elems_) * 4 / (1 << 20);
      on_disk_ = mode == "disk" || (mode == "auto" && mb > static_cast<double>(memory_mb));
      if (on_disk_) {
        path_ = disk_path;
        file.open(path_, std::ios::binary | std::ios::trunc);
        GRAFT_CHECK(file, path_, ": cannot write the activation cache; free disk space or use --cache memory");
      } else {
        mem_ = at::empty(shape_, at::kFloat);
      }
    }
    GRAFT_CHECK(b->index[0].item<int64_t>() == row, "activation cache: examples arrived out of order");
    auto hf = h.to(at::kFloat).contiguous();  // rows are written as bytes: NCHW order, whatever the model's layout
    if (on_disk_) file.write(static_cast<const char*>(hf.data_ptr()), hf.numel() * 4);
    else mem_.narrow(0, row, hf.size(0)).copy_(hf);
    labels_.narrow(0, row, hf.size(0)).copy_(b->label);
    row += hf.size(0);
  }
  GRAFT_CHECK(row == n, "activation cache: ", row, " of ", n, " examples could be read");
  if (on_disk_) {
    file.close();
    GRAFT_CHECK(file, path_, ": writing the activation cache failed (disk full?)");
    in_.open(path_, std::ios::binary);
  }
}

std::pair<at::Tensor, at::Tensor> PrefixCache::rows(const std::vector<int64_t>& idx) {
  auto index = at::tensor(idx, at::kLong);
  auto y = labels_.index_select(0, index);
  if (!on_disk_) return {mem_.index_select(0, index), y};
  auto shape = shape_;
  shape[0] = static_cast<int64_t>(idx.size());
  auto x = at::empty(shape, at::kFloat);
  auto* dst = static_cast<char*>(x.data_ptr());
  const int64_t bytes = row_elems_ * 4;
  for (size_t k = 0; k < idx.size(); ++k) {
    in_.seekg(idx[k] * bytes);
    in_.read(dst + static_cast<int64_t>(k) * bytes, bytes);
  }
  GRAFT_CHECK(in_, path_, ": reading the activation cache failed");
  return {x, y};
}

PrefixCache::~PrefixCache() {
  if (in_.is_open()) in_.close();
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove(path_, ec);
}

}  // namespace graft::train
