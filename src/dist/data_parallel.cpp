#include "graft/dist/data_parallel.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <chrono>
#include <map>
#include <mutex>

#include "graft/core/check.h"

namespace graft::dist {

namespace {

// Groups tensors by dtype (one flat buffer each), keeping their order within a group.
std::map<at::ScalarType, std::vector<at::Tensor>> by_dtype(const std::vector<at::Tensor>& tensors) {
  std::map<at::ScalarType, std::vector<at::Tensor>> groups;
  for (const auto& t : tensors)
    if (t.defined() && t.numel() > 0) groups[t.scalar_type()].push_back(t);
  return groups;
}

at::Tensor flatten(const std::vector<at::Tensor>& ts) {
  std::vector<at::Tensor> flat;
  flat.reserve(ts.size());
  for (const auto& t : ts) flat.push_back(t.detach().reshape(-1));
  return at::cat(flat);
}

void unflatten_into(const at::Tensor& flat, const std::vector<at::Tensor>& ts) {
  at::NoGradGuard no_grad;
  int64_t off = 0;
  for (const auto& t : ts) {
    t.copy_(flat.narrow(0, off, t.numel()).view(t.sizes()));
    off += t.numel();
  }
}

}  // namespace

void broadcast_tensors(Context& ctx, const std::vector<at::Tensor>& tensors, int64_t root) {
  if (!ctx.distributed()) return;
  for (auto& [dtype, ts] : by_dtype(tensors)) {
    at::Tensor flat = flatten(ts);
    ctx.broadcast(flat, root);
    unflatten_into(flat, ts);
  }
}

void average_tensors(Context& ctx, const std::vector<at::Tensor>& tensors) {
  if (!ctx.distributed()) return;
  for (auto& [dtype, ts] : by_dtype(tensors)) {
    if (!at::isFloatingType(dtype)) continue;
    at::Tensor flat = flatten(ts);
    ctx.allreduce_sum(flat);
    flat.div_(static_cast<double>(ctx.world_size()));
    unflatten_into(flat, ts);
  }
}

std::vector<at::Tensor> batchnorm_stats(const std::vector<std::pair<std::string, at::Tensor>>& named_buffers) {
  auto ends_with = [](const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  std::vector<at::Tensor> out;
  for (const auto& [name, t] : named_buffers)
    if (ends_with(name, "running_mean") || ends_with(name, "running_var")) out.push_back(t);
  return out;
}

namespace {
/// "path (this rank's value vs rank 0's)" for each leaf that differs, descending into objects.
void differing_keys(const nlohmann::json& ref, const nlohmann::json& mine, const std::string& prefix, int64_t rank,
                    std::vector<std::string>& out) {
  for (auto it = ref.begin(); it != ref.end(); ++it) {
    const std::string path = prefix + it.key();
    if (!mine.contains(it.key())) {
      out.push_back(str(path, " (only on rank 0)"));
    } else if (it->is_object() && mine[it.key()].is_object()) {
      differing_keys(*it, mine[it.key()], path + ".", rank, out);
    } else if (mine[it.key()] != *it) {
      out.push_back(str(path, " (", mine[it.key()].dump(), " vs ", it->dump(), ")"));
    }
  }
  for (auto it = mine.begin(); it != mine.end(); ++it)
    if (!ref.contains(it.key())) out.push_back(str(prefix + it.key(), " (only on rank ", rank, ")"));
}
}  // namespace

void check_same_config(Context& ctx, const nlohmann::json& config) {
  if (!ctx.distributed()) return;
  const std::string text = config.dump();
  auto all = ctx.exchange("config", hash_text(text) + text);
  for (int64_t r = 1; r < ctx.world_size(); ++r) {
    if (all[r].compare(0, 16, all[0], 0, 16) == 0) continue;
    // Name the differing options (dotted paths into nested objects) when both texts parse.
    std::vector<std::string> diffs;
    auto mine = nlohmann::json::parse(all[r].substr(16), nullptr, /*allow_exceptions=*/false);
    auto ref = nlohmann::json::parse(all[0].substr(16), nullptr, /*allow_exceptions=*/false);
    if (mine.is_object() && ref.is_object()) differing_keys(ref, mine, "", r, diffs);
    std::string keys;
    for (size_t i = 0; i < diffs.size() && i < 3; ++i) keys += (i ? ", " : "") + diffs[i];
    if (diffs.size() > 3) keys += ", ...";
    GRAFT_FAIL("rank ", r, " runs a different configuration from rank 0's (hash ", all[r].substr(0, 16), " vs ",
               all[0].substr(0, 16), ")", keys.empty() ? "" : ": " + keys,
               "; start every rank with the same options and data");
  }
}

std::vector<double> sum_over_ranks(Context& ctx, std::vector<double> values) {
  if (!ctx.distributed() || values.empty()) return values;
  at::Tensor t = at::tensor(values, at::kDouble);
  ctx.allreduce_sum(t);
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

void check_resume_world_size(const Context& ctx, int64_t saved_world, const std::string& checkpoint) {
  GRAFT_CHECK(saved_world == ctx.world_size(), checkpoint, " was written by a run of WORLD_SIZE=", saved_world,
              " and this run has WORLD_SIZE=", ctx.world_size(), ": --resume needs the same world size (each rank's ",
              "shard and the batch of a step depend on it); restart with ", saved_world,
              " rank(s) or start a new run in another --out folder");
}

// ---------------------------------------------------------------------------------------
// GradientAverager

struct GradientAverager::Bucket {
  at::Tensor flat;
  std::vector<size_t> params;     ///< indices into params_
  std::vector<int64_t> offsets;   ///< element offset of each in flat
  std::vector<char> got;          ///< this step: its gradient is in flat
  size_t missing = 0;             ///< this step: parameters whose gradient has not arrived
  Pending work;
  std::mutex mu;
};

GradientAverager::GradientAverager(Context& ctx, std::vector<at::Tensor> params, GradientAveragerOptions opts)
    : ctx_(ctx), params_(std::move(params)), opts_(opts) {
  GRAFT_CHECK(opts_.bucket_bytes > 0, "gradient bucket size must be positive, got ", opts_.bucket_bytes);
  where_.resize(params_.size());
  int64_t bytes = 0;
  // Reverse order: backward produces the gradients of the last layers first.
  for (size_t k = params_.size(); k-- > 0;) {
    const at::Tensor& p = params_[k];
    GRAFT_CHECK(p.defined() && p.requires_grad(), "GradientAverager: parameter ", k,
                " does not require a gradient; pass only trainable parameters");
    const int64_t pb = p.numel() * static_cast<int64_t>(p.element_size());
    bool fresh = buckets_.empty() || bytes + pb > opts_.bucket_bytes ||
                 params_[buckets_.back()->params[0]].scalar_type() != p.scalar_type() ||
                 params_[buckets_.back()->params[0]].device() != p.device();
    if (fresh) {
      buckets_.push_back(std::make_unique<Bucket>());
      bytes = 0;
    }
    Bucket& b = *buckets_.back();
    where_[k] = {buckets_.size() - 1, b.params.size()};
    b.offsets.push_back(b.params.empty() ? 0 : b.offsets.back() + params_[b.params.back()].numel());
    b.params.push_back(k);
    bytes += pb;
  }
  for (auto& b : buckets_) {
    const at::Tensor& p0 = params_[b->params[0]];
    int64_t n = b->offsets.back() + params_[b->params.back()].numel();
    b->flat = at::zeros({n}, p0.options().requires_grad(false));
    b->got.assign(b->params.size(), 0);
  }
  if (!ctx_.distributed() || !opts_.overlap) return;
  for (size_t k = 0; k < params_.size(); ++k)
    hook_ids_.push_back(params_[k].register_hook([this, k](const at::Tensor& g) { on_grad(k, g); }));
}

GradientAverager::~GradientAverager() {
  for (size_t k = 0; k < hook_ids_.size(); ++k) {
    try {
      params_[k].remove_hook(hook_ids_[k]);
    } catch (...) {
    }
  }
}

std::vector<int64_t> GradientAverager::bucket_sizes() const {
  std::vector<int64_t> out;
  for (const auto& b : buckets_) out.push_back(b->flat.numel());
  return out;
}

void GradientAverager::prepare() {
  if (!ctx_.distributed()) return;
  // A step that failed half way may have left collectives running: finish them first so
  // that every rank's next collective is the same one.
  for (auto& b : buckets_)
    if (b->work.valid()) b->work.wait();
  for (auto& b : buckets_) {
    b->flat.zero_();
    std::fill(b->got.begin(), b->got.end(), 0);
    b->missing = b->params.size();
  }
  next_launch_ = 0;
  armed_ = opts_.overlap;
}

void GradientAverager::on_grad(size_t k, const at::Tensor& g) {
  if (!armed_) return;
  auto [bi, slot] = where_[k];
  Bucket& b = *buckets_[bi];
  {
    std::lock_guard<std::mutex> lk(b.mu);
    GRAFT_CHECK(!b.got[slot], "GradientAverager: parameter ", k, " received two gradients in one backward pass; ",
                "overlapped averaging needs exactly one (use overlap=false)");
    GRAFT_CHECK(g.layout() == at::kStrided, "GradientAverager: sparse gradients are not supported");
    at::NoGradGuard no_grad;
    b.flat.narrow(0, b.offsets[slot], g.numel()).view(g.sizes()).copy_(g);
    b.got[slot] = 1;
    --b.missing;
  }
  launch_ready();
}

void GradientAverager::launch_ready() {
  // Strictly in bucket order, whatever order the hooks fire in: the ranks' collectives match.
  std::lock_guard<std::mutex> lk(launch_mu_);
  while (next_launch_ < buckets_.size()) {
    Bucket& b = *buckets_[next_launch_];
    {
      std::lock_guard<std::mutex> blk(b.mu);
      if (b.missing > 0) return;
    }
    b.work = ctx_.allreduce_sum_async(b.flat);
    ++next_launch_;
  }
}

void GradientAverager::finish() {
  if (!ctx_.distributed()) return;
  const auto t0 = std::chrono::steady_clock::now();
  if (!armed_) {
    // After backward: gather the grads now (an undefined grad counts as zero).
    for (auto& b : buckets_) {
      if (b->work.valid()) b->work.wait();
      b->flat.zero_();
      for (size_t s = 0; s < b->params.size(); ++s) {
        const at::Tensor& g = params_[b->params[s]].grad();
        if (g.defined()) b->flat.narrow(0, b->offsets[s], g.numel()).view(g.sizes()).copy_(g);
      }
    }
    next_launch_ = 0;
  }
  armed_ = false;
  // Buckets with parameters that got no gradient this step are completed with zeros.
  for (auto& b : buckets_) b->missing = 0;
  launch_ready();
  at::NoGradGuard no_grad;
  const double inv = 1.0 / static_cast<double>(ctx_.world_size());
  for (auto& b : buckets_) {
    b->work.wait();
    b->flat.mul_(inv);
    for (size_t s = 0; s < b->params.size(); ++s) {
      at::Tensor& p = params_[b->params[s]];
      at::Tensor avg = b->flat.narrow(0, b->offsets[s], p.numel()).view(p.sizes());
      if (p.grad().defined())
        p.mutable_grad().copy_(avg);
      else
        p.mutable_grad() = avg.clone();
    }
  }
  wait_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace graft::dist
