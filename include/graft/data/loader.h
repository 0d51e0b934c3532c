#pragma once
/// A parallel, prefetching batch loader. Batch order and augmentation are fixed by
/// (seed, epoch) alone, so a run is reproducible and can resume mid-epoch.
#include <c10/core/Device.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "graft/data/dataset.h"
#include "graft/data/transforms.h"

namespace graft::data {

struct LoaderOptions {
  int64_t batch_size = 64;
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  /// Worker threads that gather, decode and transform batches (0: on the caller's thread).
  /// In-memory tensor data with deterministic transforms is always batched on the caller's
  /// thread (workers are then not worth their hand-off).
  int workers = 2;
  /// Batches prepared ahead of the consumer.
  int prefetch = 4;
  /// Drop examples whose decoding fails (counted by skipped()) instead of throwing.
  bool skip_bad = false;
  /// Data-parallel sharding with PyTorch DistributedSampler's semantics: every rank draws the
  /// same seeded permutation of the epoch, pads it to a multiple of `world` by repeating its
  /// first indices, and reads every world-th index from position `rank`. All ranks get the
  /// same number of examples and batches; the shards are disjoint except for the padding (at
  /// most world-1 examples seen twice per epoch). world = 1: the whole epoch, as before.
  int64_t rank = 0;
  int64_t world = 1;
  /// Data held where they are used: an in-memory (tensor-backed) dataset is copied to
  /// `device` once, as float32, and every batch is gathered and transformed there (no
  /// per-batch copy; workers are not used). Batches then live on `device`. Image folders
  /// are refused (their decoding is on the CPU).
  bool resident = false;
  c10::Device device = c10::kCPU;
  /// Batches built in page-locked (pinned) memory, so that their copy to a CUDA device can
  /// run asynchronously (Tensor::to(..., non_blocking=true)). Needs a CUDA build and GPU.
  bool pin_memory = false;
  LoaderOptions& batch_size_(int64_t v) { batch_size = v; return *this; }
  LoaderOptions& shuffle_(bool v) { shuffle = v; return *this; }
  LoaderOptions& drop_last_(bool v) { drop_last = v; return *this; }
  LoaderOptions& seed_(uint64_t v) { seed = v; return *this; }
  LoaderOptions& workers_(int v) { workers = v; return *this; }
  LoaderOptions& prefetch_(int v) { prefetch = v; return *this; }
  LoaderOptions& skip_bad_(bool v) { skip_bad = v; return *this; }
  LoaderOptions& shard_(int64_t r, int64_t w) { rank = r; world = w; return *this; }
  LoaderOptions& resident_on_(c10::Device d) { resident = true; device = d; return *this; }
  LoaderOptions& pin_memory_(bool v) { pin_memory = v; return *this; }
};

/// Iterates a dataset in batches, one epoch at a time:
///   Loader l(ds, pipeline, opts); l.start_epoch(e); while (auto b = l.next()) {...}
/// Errors raised while preparing a batch (e.g. an undecodable image) are rethrown by next().
class Loader {
 public:
  Loader(DatasetPtr dataset, Pipeline pipeline, LoaderOptions opts);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// Starts epoch `epoch`, skipping its first `skip_batches` batches (for resume).
  void start_epoch(int64_t epoch, int64_t skip_batches = 0);
  /// The next batch of the epoch, or nullopt at its end.
  std::optional<Batch> next();
  int64_t batches_per_epoch() const;
  /// The order in which an epoch visits the examples of a dataset of size n
  /// (the same order start_epoch uses), for consumers that batch cached data themselves.
  /// With opts.world > 1: this rank's shard of the epoch (shard_size(n, opts) indices).
  static std::vector<int64_t> epoch_order(int64_t n, const LoaderOptions& opts, int64_t epoch);
  /// Examples one rank reads per epoch from a dataset of size n: ceil(n / world).
  static int64_t shard_size(int64_t n, const LoaderOptions& opts);
  /// Examples dropped so far because they could not be decoded (skip_bad).
  int64_t skipped() const { return skipped_.load(); }
  const DatasetPtr& dataset() const { return dataset_; }
  /// Whether the dataset is held on a device (LoaderOptions::resident took effect).
  bool is_resident() const { return resident_x_.defined(); }

 private:
  Batch make_batch(int64_t b) const;
  /// A batch of an in-memory dataset: one gather and the pipeline over the whole batch.
  Batch make_tensor_batch(const std::vector<int64_t>& idx) const;
  void stop_workers();
  /// Produces batches first, first + workers, ... of the epoch.
  void worker_loop(int64_t first);

  DatasetPtr dataset_;
  Pipeline pipeline_;
  LoaderOptions opts_;
  std::vector<int64_t> order_;
  at::Tensor resident_x_, resident_y_;  ///< the dataset on opts_.device (resident loaders)
  int64_t epoch_ = 0, next_ = 0, end_ = 0;
  mutable std::atomic<int64_t> skipped_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
  int64_t error_batch_ = -1;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace graft::data
