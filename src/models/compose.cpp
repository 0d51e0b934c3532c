#include "graft/models/compose.h"

#include <torch/torch.h>

#include "graft/core/check.h"

namespace graft::models {

void HeadSpec::validate() const {
  GRAFT_CHECK(kind == "linear" || kind == "mlp", "--head '", kind, "' is not one of linear, mlp");
  GRAFT_CHECK(pool == "auto" || pool == "flatten" || pool == "avg", "--head-pool '", pool,
              "' is not one of auto, flatten, avg");
  GRAFT_CHECK(hidden >= 1 && hidden <= 1 << 20, "--head-hidden must be in [1, 1048576], got ", hidden);
  GRAFT_CHECK(dropout >= 0 && dropout < 1, "--head-dropout must be in [0, 1), got ", dropout);
}

nlohmann::json HeadSpec::to_json() const {
  return {{"kind", kind}, {"hidden", hidden}, {"dropout", dropout}, {"pool", pool}};
}

HeadSpec HeadSpec::from_json(const nlohmann::json& j) {
  HeadSpec h;
  h.kind = j.value("kind", h.kind);
  h.hidden = j.value("hidden", h.hidden);
  h.dropout = j.value("dropout", h.dropout);
  h.pool = j.value("pool", h.pool);
  return h;
}

struct CutModel::Head : torch::nn::Module {
  bool avg = false;  // global average (else flatten) for spatial inputs
  torch::nn::Sequential seq;
  at::Tensor forward(const at::Tensor& x) {
    auto v = x.dim() > 2 ? (avg ? x.flatten(2).mean(2) : x.flatten(1)) : x;
    return seq->forward(v);
  }
};

CutModel::CutModel(BackbonePtr base, size_t keep, const HeadSpec& head, int64_t num_classes,
                   const std::vector<int64_t>& input_shape, uint64_t seed)
    : base_(std::move(base)), keep_(keep), spec_(head), input_shape_(input_shape), num_classes_(num_classes) {
  spec_.validate();
  GRAFT_CHECK(keep_ >= 1 && keep_ <= base_->num_layers(), "cannot keep ", keep_, " of ", base_->num_layers(), " layers");
  GRAFT_CHECK(num_classes >= 2, "the target needs at least 2 classes, got ", num_classes);
  names_.assign(base_->layer_names().begin(), base_->layer_names().begin() + static_cast<std::ptrdiff_t>(keep_));
  GRAFT_CHECK(std::find(names_.begin(), names_.end(), "head") == names_.end(),
              "the base model already has a layer named 'head'; cut below it");
  names_.push_back("head");
  // Size the head from the kept layers' output on one zero example.
  at::Tensor out;
  {
    torch::NoGradGuard ng;
    bool was = base_->is_training();
    base_->train(false);
    std::vector<int64_t> s{1};
    s.insert(s.end(), input_shape.begin(), input_shape.end());
    out = base_->forward_range(torch::zeros(s, torch::TensorOptions().device(base_->device())), 0, keep_);
    base_->train(was);
  }
  head_ = std::make_shared<Head>();
  int64_t spatial = out.dim() > 2 ? out[0][0].numel() : 1;
  int64_t flat = out.numel();
  head_->avg = out.dim() > 2 && (spec_.pool == "avg" || (spec_.pool == "auto" && flat > 8192));
  int64_t in = head_->avg ? flat / spatial : flat;
  torch::manual_seed(seed);
  if (spec_.kind == "linear") {
    head_->seq = torch::nn::Sequential(torch::nn::Linear(in, num_classes));
  } else {
    head_->seq = torch::nn::Sequential(torch::nn::Linear(in, spec_.hidden), torch::nn::ReLU(),
                                       torch::nn::Dropout(spec_.dropout), torch::nn::Linear(spec_.hidden, num_classes));
  }
  head_->register_module("seq", head_->seq);
  head_->to(base_->device());
  head_->train(base_->is_training());
}

CutModel::~CutModel() = default;

bool CutModel::head_avg() const { return head_->avg; }

at::Tensor CutModel::forward_range(const at::Tensor& x, size_t begin, size_t end) {
  GRAFT_CHECK(begin <= end && end <= names_.size(), "layer range [", begin, ", ", end, ") outside the ", names_.size(),
              " layers");
  at::Tensor h = x;
  if (begin < keep_) h = base_->forward_range(h, begin, std::min(end, keep_));
  if (end == names_.size() && begin <= keep_) h = head_->forward(h);
  return h;
}

std::vector<std::pair<std::string, at::Tensor>> CutModel::named_parameters() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  std::vector<std::string> kept(names_.begin(), names_.end() - 1);
  for (auto& [n, p] : base_->named_parameters())
    if (std::find(kept.begin(), kept.end(), layer_of_param(n)) != kept.end()) out.emplace_back(n, p);
  for (const auto& it : head_->named_parameters(true)) out.emplace_back("head." + it.key(), it.value());
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> CutModel::named_buffers() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  std::vector<std::string> kept(names_.begin(), names_.end() - 1);
  for (auto& [n, b] : base_->named_buffers())
    if (std::find(kept.begin(), kept.end(), layer_of_param(n)) != kept.end()) out.emplace_back(n, b);
  for (const auto& it : head_->named_buffers(true)) out.emplace_back("head." + it.key(), it.value());
  return out;
}

void CutModel::train(bool on) {
  base_->train(on);
  head_->train(on);
}
bool CutModel::is_training() const { return head_->is_training(); }
void CutModel::train_layer(size_t i, bool on) {
  if (i < keep_) base_->train_layer(i, on);
  else head_->train(on);
}
void CutModel::to(c10::Device device) {
  base_->to(device);
  head_->to(device);
}
std::string CutModel::layer_kind(size_t i) const {
  if (i < keep_) return base_->layer_kind(i);
  return spec_.kind == "linear" ? str("Head(Linear(", num_classes_, "))")
                                : str("Head(MLP(", spec_.hidden, ")->", num_classes_, ")");
}

nlohmann::json CutModel::config() const {
  return {{"base_arch", base_->arch()}, {"keep", keep_}, {"cut", names_[keep_ - 1]},
          {"head", spec_.to_json()},    {"input_shape", input_shape_}};
}

BackbonePtr cut_and_add_head(BackbonePtr base, const std::string& cut, int64_t num_classes,
                             const std::vector<int64_t>& input_shape, const HeadSpec& head, uint64_t seed) {
  GRAFT_CHECK(base, "no base model to cut");
  GRAFT_CHECK(!as_cut(*base), "this model was already cut and given a head; cut the original model instead");
  size_t i = base->layer_index(cut);
  return std::make_shared<CutModel>(std::move(base), i + 1, head, num_classes, input_shape, seed);
}

const CutModel* as_cut(const Backbone& b) { return dynamic_cast<const CutModel*>(&b); }

}  // namespace graft::models
