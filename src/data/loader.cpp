#include "graft/data/loader.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <random>

#include "graft/core/check.h"

namespace graft::data {

Loader::Loader(DatasetPtr dataset, Pipeline pipeline, LoaderOptions opts)
    : dataset_(std::move(dataset)), pipeline_(std::move(pipeline)), opts_(opts) {
  GRAFT_CHECK(dataset_ && dataset_->size() > 0, "cannot load batches from an empty dataset");
  GRAFT_CHECK(opts_.batch_size > 0 && opts_.batch_size <= (1 << 20), "--batch-size must be in [1, 1048576], got ",
              opts_.batch_size);
  GRAFT_CHECK(opts_.workers >= 0 && opts_.workers <= 256, "--workers must be in [0, 256], got ", opts_.workers);
  GRAFT_CHECK(opts_.world >= 1 && opts_.rank >= 0 && opts_.rank < opts_.world, "loader shard: rank ", opts_.rank,
              " is not in 0..", opts_.world - 1, " (world size ", opts_.world, ")");
  if (opts_.world > 1) {
    const int64_t n = dataset_->size(), one_process_batches = (n + opts_.batch_size - 1) / opts_.batch_size;
    GRAFT_CHECK(opts_.world <= one_process_batches, "WORLD_SIZE=", opts_.world, " is larger than the ",
                one_process_batches, " batch(es) of an epoch of ", dataset_->describe(), " (", n,
                " examples, --batch-size ", opts_.batch_size, "): lower the world size or --batch-size");
    GRAFT_CHECK(batches_per_epoch() > 0, "with WORLD_SIZE=", opts_.world, " each rank reads ", shard_size(n, opts_),
                " examples of ", dataset_->describe(), " per epoch, less than one --batch-size ", opts_.batch_size,
                " batch: lower --batch-size or the world size");
  }
  opts_.prefetch = std::max(1, opts_.prefetch);
  // Batches of tensors already in memory with deterministic transforms are a gather and a few
  // vectorised operations: a worker thread would only add a hand-off and compete with the
  // compute threads for the cores (13% slower DANN steps measured on a 2-core machine).
  if (dataset_->tensor_backed() && !pipeline_.random()) opts_.workers = 0;
  if (opts_.resident) {
    GRAFT_CHECK(dataset_->tensor_backed(), dataset_->describe(), " is decoded file by file and cannot be held on ",
                opts_.device, ": use --data-on-device off (or auto) for image folders");
    // Copied in slices, so that the host holds at most one slice in float32 at a time.
    const int64_t n = dataset_->size(), slice = 8192;
    for (int64_t lo = 0; lo < n; lo += slice) {
      std::vector<int64_t> idx(static_cast<size_t>(std::min(slice, n - lo)));
      std::iota(idx.begin(), idx.end(), lo);
      auto b = dataset_->get_batch(idx);
      if (lo == 0) {
        auto shape = b.input.sizes().vec();
        shape[0] = n;
        resident_x_ = at::empty(shape, b.input.options().device(opts_.device));
        resident_y_ = at::empty({n}, b.label.options().device(opts_.device));
      }
      resident_x_.narrow(0, lo, b.size()).copy_(b.input);
      resident_y_.narrow(0, lo, b.size()).copy_(b.label);
    }
    opts_.workers = 0;  // the work is queued on the device from the consumer's thread
    opts_.pin_memory = false;
  }
  opts_.skip_bad = opts_.skip_bad || dataset_->skip_bad();
}

Loader::~Loader() { stop_workers(); }

int64_t Loader::shard_size(int64_t n, const LoaderOptions& opts) {
  return opts.world > 1 ? (n + opts.world - 1) / opts.world : n;
}

int64_t Loader::batches_per_epoch() const {
  int64_t n = shard_size(dataset_->size(), opts_), b = opts_.batch_size;
  return opts_.drop_last ? n / b : (n + b - 1) / b;
}

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::lock_guard<std::mutex> lk(mu_);
  stopping_ = false;
  ready_.clear();
  error_ = nullptr;
  error_batch_ = -1;
}

std::vector<int64_t> Loader::epoch_order(int64_t n, const LoaderOptions& opts, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  if (opts.shuffle) {
    std::mt19937_64 rng(example_seed(opts.seed, epoch, -1));
    std::shuffle(order.begin(), order.end(), rng);
  }
  if (opts.world <= 1) return order;
  // DistributedSampler: pad to a multiple of world with the first indices (cyclically when the
  // padding is longer than the data), then take every world-th from this rank's position.
  const int64_t per_rank = shard_size(n, opts);
  std::vector<int64_t> shard;
  shard.reserve(static_cast<size_t>(per_rank));
  for (int64_t k = 0; k < per_rank; ++k) shard.push_back(order[static_cast<size_t>((k * opts.world + opts.rank) % n)]);
  return shard;
}

void Loader::start_epoch(int64_t epoch, int64_t skip_batches) {
  stop_workers();
  epoch_ = epoch;
  order_ = epoch_order(dataset_->size(), opts_, epoch);
  end_ = batches_per_epoch();
  next_ = std::clamp<int64_t>(skip_batches, 0, end_);
  // Each worker's first batch is fixed here: the consumer may advance next_ before a thread starts.
  for (int w = 0; w < opts_.workers; ++w) threads_.emplace_back([this, w, first = next_] { worker_loop(first + w); });
}

Batch Loader::make_tensor_batch(const std::vector<int64_t>& idx) const {
  Batch batch;
  if (resident_x_.defined()) {
    batch.index = at::tensor(idx, at::kLong);
    auto on_device = batch.index.to(opts_.device);
    batch.input = resident_x_.index_select(0, on_device);
    batch.label = resident_y_.index_select(0, on_device);
  } else {
    batch = dataset_->get_batch(idx);
  }
  if (pipeline_.random()) {
    // The streams the per-example path would give each example: the same augmentation.
    std::vector<uint64_t> seeds;
    seeds.reserve(idx.size());
    for (auto i : idx) seeds.push_back(example_seed(opts_.seed, epoch_, i));
    batch.input = pipeline_.apply_batch(batch.input, seeds);
  } else if (!pipeline_.empty()) {
    batch.input = pipeline_.apply_batch(batch.input);
  }
  if (opts_.pin_memory) batch.input = batch.input.pin_memory(), batch.label = batch.label.pin_memory();
  return batch;
}

Batch Loader::make_batch(int64_t b) const {
  int64_t lo = b * opts_.batch_size, hi = std::min<int64_t>(lo + opts_.batch_size, static_cast<int64_t>(order_.size()));
  std::vector<int64_t> idx(order_.begin() + lo, order_.begin() + hi);
  if (dataset_->tensor_backed()) return make_tensor_batch(idx);
  std::vector<at::Tensor> xs;
  std::vector<int64_t> ys, kept;
  for (auto i : idx) {
    Example e;
    try {
      e = dataset_->get(i);
    } catch (const Error&) {
      if (!opts_.skip_bad) throw;
      ++skipped_;
      continue;
    }
    std::mt19937_64 rng(example_seed(opts_.seed, epoch_, i));
    xs.push_back(pipeline_.apply(e.input, rng));
    ys.push_back(e.label);
    kept.push_back(i);
  }
  Batch batch;
  if (xs.empty()) return batch;  // every example of the batch was bad and skipped
  for (size_t k = 1; k < xs.size(); ++k)
    GRAFT_CHECK(xs[k].sizes() == xs[0].sizes(), dataset_->describe(), ": examples of different shapes (",
                xs[0].sizes(), " and ", xs[k].sizes(), ") in one batch; add a resize=HxW transform");
  if (opts_.pin_memory) {  // stacked straight into page-locked memory: no second copy
    auto shape = xs[0].sizes().vec();
    shape.insert(shape.begin(), static_cast<int64_t>(xs.size()));
    batch.input = at::empty(shape, xs[0].options().pinned_memory(true));
    at::stack_out(batch.input, xs, 0);
  } else {
    batch.input = at::stack(xs);
  }
  batch.label = at::tensor(ys, at::kLong);
  if (opts_.pin_memory) batch.label = batch.label.pin_memory();
  batch.index = at::tensor(kept, at::kLong);
  return batch;
}

void Loader::worker_loop(int64_t b) {
  const int64_t stride = opts_.workers;
  while (true) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || b >= end_ || b < next_ + opts_.prefetch * stride; });
      if (stopping_ || b >= end_) return;
    }
    Batch batch;
    std::exception_ptr err;
    try {
      batch = make_batch(b);
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (err) {
        if (!error_ || b < error_batch_) {
          error_ = err;
          error_batch_ = b;
        }
      } else {
        ready_.emplace(b, std::move(batch));
      }
    }
    cv_.notify_all();
    if (err) return;
    b += stride;
  }
}

std::optional<Batch> Loader::next() {
  while (next_ < end_) {
    Batch batch;
    if (opts_.workers == 0) {
      batch = make_batch(next_);
    } else {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return ready_.count(next_) > 0 || (error_ && error_batch_ <= next_); });
      auto it = ready_.find(next_);
      if (it == ready_.end()) std::rethrow_exception(error_);
      batch = std::move(it->second);
      ready_.erase(it);
      ++next_;  // under the lock: workers read next_ in their wait predicate
    }
    if (opts_.workers == 0) ++next_;
    cv_.notify_all();
    if (batch.size() > 0) return batch;
  }
  return std::nullopt;
}

}  // namespace graft::data
