#include "graft/data/dataset.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "graft/core/check.h"
#include "graft/core/parse.h"

namespace graft::data {

Batch Dataset::get_batch(const std::vector<int64_t>& indices) const {
  std::vector<at::Tensor> xs;
  std::vector<int64_t> ys;
  xs.reserve(indices.size());
  for (auto i : indices) {
    auto e = get(i);
    xs.push_back(e.input);
    ys.push_back(e.label);
  }
  Batch b;
  b.input = at::stack(xs);
  b.label = at::tensor(ys, at::kLong);
  b.index = at::tensor(indices, at::kLong);
  return b;
}

int64_t check_labels(const at::Tensor& labels, const std::string& file) {
  GRAFT_CHECK(!labels.is_floating_point(), file, ": labels must be integers, got ", labels.scalar_type());
  if (labels.numel() == 0) return 0;
  auto y = labels.to(at::kLong);
  int64_t lo = y.min().item<int64_t>(), hi = y.max().item<int64_t>();
  GRAFT_CHECK(lo >= kNoLabel, file, ": label ", lo, " is negative; labels are 0..K-1 (or -1 for unlabelled)");
  GRAFT_CHECK(hi < kMaxClasses, file, ": label ", hi, " is too large; labels are 0..K-1 with at most ", kMaxClasses,
              " classes (a corrupt or misread label file?)");
  int64_t k = hi + 1;
  int64_t labelled = y.ne(kNoLabel).sum().item<int64_t>();
  GRAFT_CHECK(k <= 1000 || k <= labelled, file, ": label ", hi, " implies ", k, " classes but only ", labelled,
              " examples are labelled; labels must be 0..K-1 (a corrupt or misread label file?)");
  return k;
}

TensorDataset::TensorDataset(at::Tensor inputs, at::Tensor labels, std::vector<std::string> class_names,
                             std::string name)
    : inputs_(std::move(inputs)), labels_(std::move(labels)), class_names_(std::move(class_names)),
      name_(std::move(name)) {
  GRAFT_CHECK(inputs_.dim() >= 2, name_, ": inputs must have a batch dimension and at least one more; got shape ",
              inputs_.sizes());
  GRAFT_CHECK(labels_.dim() == 1, name_, ": labels must be one-dimensional; got shape ", labels_.sizes());
  GRAFT_CHECK(inputs_.size(0) == labels_.size(0), name_, ": ", labels_.size(0), " labels for ", inputs_.size(0),
              " inputs; the label count must equal the input count");
  GRAFT_CHECK(inputs_.scalar_type() == at::kByte || inputs_.scalar_type() == at::kFloat, name_,
              ": inputs must be uint8 or float32, got ", inputs_.scalar_type());
  labels_ = labels_.to(at::kLong).contiguous();
  inputs_ = inputs_.contiguous();
  if (class_names_.empty() && labels_.numel() > 0) {
    int64_t k = check_labels(labels_, name_);
    for (int64_t c = 0; c < k; ++c) class_names_.push_back(std::to_string(c));
  }
  if (labels_.numel() > 0) {
    int64_t lo = labels_.min().item<int64_t>(), hi = labels_.max().item<int64_t>();
    GRAFT_CHECK(lo >= kNoLabel && hi < static_cast<int64_t>(class_names_.size()), name_, ": labels range over [", lo,
                ", ", hi, "] but there are ", class_names_.size(), " classes");
  }
}

int64_t TensorDataset::size() const { return inputs_.size(0); }

Example TensorDataset::get(int64_t i) const {
  GRAFT_CHECK(i >= 0 && i < size(), name_, ": index ", i, " out of range [0, ", size(), ")");
  auto x = inputs_[i];
  x = x.scalar_type() == at::kByte ? x.to(at::kFloat).div_(255.0) : x.clone();
  return {x, labels_.data_ptr<int64_t>()[i]};
}

Batch TensorDataset::get_batch(const std::vector<int64_t>& indices) const {
  auto idx = at::tensor(indices, at::kLong);
  Batch b;
  auto x = inputs_.index_select(0, idx);
  b.input = x.scalar_type() == at::kByte ? x.to(at::kFloat).div_(255.0) : x;
  b.label = labels_.index_select(0, idx);
  b.index = idx;
  return b;
}

std::vector<int64_t> TensorDataset::input_shape() const {
  return std::vector<int64_t>(inputs_.sizes().begin() + 1, inputs_.sizes().end());
}

std::vector<int64_t> TensorDataset::labels() const {
  auto p = labels_.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + labels_.numel());
}

std::string TensorDataset::describe() const { return str(name_, " (", size(), " examples)"); }

SubsetDataset::SubsetDataset(DatasetPtr base, std::vector<int64_t> indices, std::vector<int64_t> label_map,
                             std::vector<std::string> class_names, std::string what, bool hide_labels)
    : base_(std::move(base)), indices_(std::move(indices)), label_map_(std::move(label_map)),
      class_names_(std::move(class_names)), what_(std::move(what)), hide_labels_(hide_labels) {
  if (class_names_.empty()) class_names_ = base_->class_names();
}

int64_t SubsetDataset::map_label(int64_t l) const {
  if (hide_labels_) return kNoLabel;
  if (label_map_.empty() || l < 0) return l;
  return label_map_.at(static_cast<size_t>(l));
}

Example SubsetDataset::get(int64_t i) const {
  GRAFT_CHECK(i >= 0 && i < size(), describe(), ": index ", i, " out of range");
  auto e = base_->get(indices_[static_cast<size_t>(i)]);
  e.label = map_label(e.label);
  return e;
}

Batch SubsetDataset::get_batch(const std::vector<int64_t>& idx) const {
  std::vector<int64_t> inner;
  inner.reserve(idx.size());
  for (auto i : idx) inner.push_back(indices_.at(static_cast<size_t>(i)));
  auto b = base_->get_batch(inner);
  if (hide_labels_) {
    b.label.fill_(kNoLabel);
  } else if (!label_map_.empty()) {
    auto p = b.label.data_ptr<int64_t>();
    for (int64_t k = 0; k < b.label.numel(); ++k) p[k] = map_label(p[k]);
  }
  b.index = at::tensor(idx, at::kLong);
  return b;
}

std::vector<int64_t> SubsetDataset::labels() const {
  auto all = base_->labels();
  std::vector<int64_t> out;
  out.reserve(indices_.size());
  for (auto i : indices_) out.push_back(map_label(all[static_cast<size_t>(i)]));
  return out;
}

std::string SubsetDataset::describe() const {
  auto b = base_->describe();
  auto p = b.rfind(" (");
  if (p != std::string::npos) b = b.substr(0, p);
  return str(b, "@", what_, " (", size(), " examples)");
}

DatasetPtr take(DatasetPtr d, int64_t n) {
  GRAFT_CHECK(n > 0, "limit must be positive, got ", n);
  n = std::min(n, d->size());
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  return std::make_shared<SubsetDataset>(d, idx, std::vector<int64_t>{}, std::vector<std::string>{},
                                         str("limit=", n));
}

DatasetPtr select_classes(DatasetPtr d, const std::vector<int64_t>& classes) {
  GRAFT_CHECK(!classes.empty(), "class selection is empty; give classes such as 0-4");
  int64_t k = d->num_classes();
  std::vector<int64_t> map(static_cast<size_t>(k), kNoLabel);
  std::vector<std::string> names;
  std::string what = "classes=";
  for (size_t j = 0; j < classes.size(); ++j) {
    auto c = classes[j];
    GRAFT_CHECK(c >= 0 && c < k, d->describe(), ": class ", c, " does not exist; classes are 0-", k - 1);
    GRAFT_CHECK(map[static_cast<size_t>(c)] == kNoLabel, "class ", c, " is listed twice in the class selection");
    map[static_cast<size_t>(c)] = static_cast<int64_t>(j);
    names.push_back(d->class_names()[static_cast<size_t>(c)]);
    what += (j ? "," : "") + std::to_string(c);
  }
  auto labels = d->labels();
  std::vector<int64_t> idx;
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= 0 && map[static_cast<size_t>(labels[i])] != kNoLabel) idx.push_back(static_cast<int64_t>(i));
  GRAFT_CHECK(!idx.empty(), d->describe(), ": no examples of classes ", what.substr(8));
  return std::make_shared<SubsetDataset>(d, idx, map, names, what);
}

DatasetPtr labels_per_class(DatasetPtr d, int64_t n, uint64_t seed) {
  GRAFT_CHECK(n > 0, "--labels-per-class must be positive, got ", n);
  auto labels = d->labels();
  int64_t k = d->num_classes();
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(k));
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] >= 0) by_class[static_cast<size_t>(labels[i])].push_back(static_cast<int64_t>(i));
  std::mt19937_64 rng(seed);
  std::vector<int64_t> idx;
  for (int64_t c = 0; c < k; ++c) {
    auto& v = by_class[static_cast<size_t>(c)];
    GRAFT_CHECK(static_cast<int64_t>(v.size()) >= n, d->describe(), ": class ", c, " ('",
                d->class_names()[static_cast<size_t>(c)], "') holds ", v.size(), " examples, fewer than the ", n,
                " labels per class asked for; lower --labels-per-class");
    std::shuffle(v.begin(), v.end(), rng);
    idx.insert(idx.end(), v.begin(), v.begin() + n);
  }
  std::sort(idx.begin(), idx.end());
  return std::make_shared<SubsetDataset>(d, idx, std::vector<int64_t>{}, std::vector<std::string>{},
                                         str("per-class=", n, ",seed=", seed));
}

std::pair<DatasetPtr, DatasetPtr> split(DatasetPtr d, double val_fraction, uint64_t seed) {
  GRAFT_CHECK(val_fraction > 0 && val_fraction < 1, "validation fraction must be in (0, 1), got ", val_fraction);
  auto labels = d->labels();
  std::map<int64_t, std::vector<int64_t>> by_class;
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(static_cast<int64_t>(i));
  std::mt19937_64 rng(seed ^ 0x5eedULL);
  std::vector<int64_t> tr, va;
  for (auto& [c, v] : by_class) {
    std::shuffle(v.begin(), v.end(), rng);
    auto nv = static_cast<size_t>(std::llround(val_fraction * static_cast<double>(v.size())));
    if (v.size() >= 2) nv = std::clamp<size_t>(nv, 1, v.size() - 1);
    else nv = 0;
    va.insert(va.end(), v.begin(), v.begin() + static_cast<long>(nv));
    tr.insert(tr.end(), v.begin() + static_cast<long>(nv), v.end());
  }
  GRAFT_CHECK(!tr.empty() && !va.empty(), d->describe(), ": too few examples to split off a validation set");
  std::sort(tr.begin(), tr.end());
  std::sort(va.begin(), va.end());
  auto a = std::make_shared<SubsetDataset>(d, tr, std::vector<int64_t>{}, std::vector<std::string>{},
                                           str("train-split=", 1 - val_fraction));
  auto b = std::make_shared<SubsetDataset>(d, va, std::vector<int64_t>{}, std::vector<std::string>{},
                                           str("val-split=", val_fraction));
  return {a, b};
}

DatasetPtr complement(DatasetPtr whole, const SubsetDataset& part) {
  std::vector<char> used(static_cast<size_t>(whole->size()), 0);
  for (auto i : part.indices()) used.at(static_cast<size_t>(i)) = 1;
  std::vector<int64_t> rest;
  for (size_t i = 0; i < used.size(); ++i)
    if (!used[i]) rest.push_back(static_cast<int64_t>(i));
  return std::make_shared<SubsetDataset>(whole, rest, std::vector<int64_t>{}, std::vector<std::string>{}, "rest");
}

DatasetPtr unlabelled(DatasetPtr d) {
  const auto& y = d->labels();
  if (std::all_of(y.begin(), y.end(), [](int64_t v) { return v < 0; })) return d;  // already without labels
  std::vector<int64_t> idx(static_cast<size_t>(d->size()));
  std::iota(idx.begin(), idx.end(), 0);
  return std::make_shared<SubsetDataset>(d, idx, std::vector<int64_t>{}, std::vector<std::string>{}, "unlabelled",
                                         /*hide_labels=*/true);
}

std::vector<int64_t> parse_class_list(const std::string& s) {
  std::vector<int64_t> out;
  size_t pos = 0;
  auto num = [&](const std::string& t) -> int64_t {
    GRAFT_CHECK(!t.empty() && t.find_first_not_of("0123456789") == std::string::npos, "class list '", s,
                "': '", t, "' is not a class number; use forms like 0-4 or 0,2,4");
    return parse_int(t, 0, kMaxClasses - 1, str("class list '", s, "'"));
  };
  while (pos <= s.size()) {
    auto comma = s.find(',', pos);
    std::string part = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    auto dash = part.find('-');
    if (dash == std::string::npos) {
      out.push_back(num(part));
    } else {
      int64_t a = num(part.substr(0, dash)), b = num(part.substr(dash + 1));
      GRAFT_CHECK(a <= b, "class list '", s, "': range ", part, " is empty");
      for (int64_t c = a; c <= b; ++c) out.push_back(c);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  std::set<int64_t> seen(out.begin(), out.end());
  GRAFT_CHECK(seen.size() == out.size(), "class list '", s, "' names a class twice");
  return out;
}

std::vector<int64_t> class_counts(const Dataset& d) {
  std::vector<int64_t> c(static_cast<size_t>(d.num_classes()), 0);
  for (auto l : d.labels())
    if (l >= 0 && l < static_cast<int64_t>(c.size())) ++c[static_cast<size_t>(l)];
  return c;
}

}  // namespace graft::data
