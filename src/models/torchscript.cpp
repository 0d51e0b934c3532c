#include <torch/script.h>
#include <torch/torch.h>

#include <fstream>
#include <sstream>

#include "graft/core/check.h"
#include "graft/io/checkpoint.h"
#include "graft/io/archive.h"
#include "graft/core/files.h"
#include "graft/models/compose.h"
#include "graft/models/zoo.h"

namespace graft::models {
namespace {

const char* kMetaFile = "graft.json";  // extra file inside a .pt: preprocessing, input shape, classes

const char* kExportHint =
    "export one from Python with torch.jit.script(model) or torch.jit.trace(model, example) and then .save(path)";

/// The line of a TorchScript interpreter error that says what failed (its last
/// "SomethingError: ..." line), instead of the serialized-code traceback around it.
std::string root_cause(const std::string& msg) {
  std::string best, line;
  std::istringstream is(msg);
  while (std::getline(is, line)) {
    auto p = line.find("Error: ");
    if (p != std::string::npos && line.find_first_of(" ") > p) best = line;
  }
  if (best.empty()) best = msg.substr(0, msg.find('\n'));
  return best.size() > 300 ? best.substr(0, 300) + "..." : best;
}

class TorchScriptBackbone : public Backbone {
 public:
  TorchScriptBackbone(torch::jit::Module m, std::string path, std::string extra = "")
      : module_(std::move(m)), path_(std::move(path)), extra_(std::move(extra)) {
    for (const auto& c : module_.named_children()) {
      names_.push_back(c.name);
      children_.push_back(c.value);
      auto t = c.value.type()->name();
      kinds_.push_back(t ? t->name() : "Module");
      int64_t lin = -1;
      for (const auto& p : c.value.named_parameters(/*recurse=*/true)) {
        if (p.value.dim() == 2) lin = p.value.size(1);
        break;  // only the first parameter tells whether the child starts with a Linear
      }
      linear_in_.push_back(lin);
    }
    GRAFT_CHECK(!names_.empty(), path_, ": the TorchScript module has no child modules, so it has no layers to tap or cut; ",
                "graft needs a chain (children called in order, like torchvision's Sequential 'features'); export one as "
                "docs/ARCHITECTURE.md 'Models that are not a chain' shows");
    for (const auto& p : module_.named_parameters(true)) p.value.requires_grad_(true);
  }

  std::string arch() const override { return "torchscript"; }
  const std::vector<std::string>& layer_names() const override { return names_; }

  at::Tensor forward_range(const at::Tensor& x, size_t begin, size_t end) override {
    GRAFT_CHECK(begin <= end && end <= children_.size(), "layer range [", begin, ", ", end, ") outside the ",
                children_.size(), " layers");
    at::Tensor h = x;
    for (size_t i = begin; i < end; ++i) {
      h = prepare_input(h, i);
      try {
        h = children_[i].forward({h}).toTensor();
      } catch (const std::exception& e) {
        // c10::Error, and torch::jit::JITException (a scripted `assert` or `raise`), alike
        auto c = dynamic_cast<const c10::Error*>(&e);
        GRAFT_FAIL("layer '", names_[i], "' of ", path_, " failed on input of shape ", h.sizes(), " (",
                   root_cause(c ? c->what_without_backtrace() : e.what()), "). graft runs a TorchScript model's children in order; "
                   "a model whose forward() does more (ViT, timm models) must be exported as a chain of children, ",
                   "see docs/ARCHITECTURE.md 'Models that are not a chain'");
      }
    }
    return h;
  }

  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const override {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& p : module_.named_parameters(true)) out.emplace_back(p.name, p.value);
    return out;
  }
  std::vector<std::pair<std::string, at::Tensor>> named_buffers() const override {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& p : module_.named_buffers(true)) out.emplace_back(p.name, p.value);
    return out;
  }
  void train(bool on) override { module_.train(on); }
  bool is_training() const override { return module_.is_training(); }
  void train_layer(size_t i, bool on) override { children_.at(i).train(on); }
  void to(c10::Device d) override { module_.to(d); }
  std::string layer_kind(size_t i) const override { return kinds_.at(i); }

  void check_nested_tap(size_t layer, const std::vector<std::string>& path) const override {
    nested_chain(children_.at(layer), names_.at(layer), path);
  }

  at::Tensor forward_nested_tap(const at::Tensor& x, size_t layer, const std::vector<std::string>& path) override {
    auto steps = nested_chain(children_.at(layer), names_.at(layer), path);
    at::Tensor h = prepare_input(x, layer);
    // Each level: the children before the one on the path run whole, then descend into it;
    // at the last level the named child runs too, and its output is the tap.
    for (size_t d = 0; d < steps.size(); ++d) {
      const auto& [chain, index] = steps[d];
      size_t k = 0;
      for (auto c : chain.named_children()) {
        if (k == index && d + 1 < steps.size()) break;
        h = c.value.forward({h}).toTensor();
        if (k++ == index) break;
      }
    }
    return h;
  }

  /// An inference-only copy on the same device: each child cloned in eval mode, frozen
  /// (weights become graph constants) and passed through libtorch's inference passes
  /// (e.g. BatchNorm folded into the preceding convolution). Children that cannot be
  /// optimised run as they are, each named in `skipped` with the reason.
  std::shared_ptr<TorchScriptBackbone> inference_copy(std::vector<std::string>& skipped) const {
    auto copy = std::make_shared<TorchScriptBackbone>(module_.clone(), path_, extra_);
    copy->module_.eval();
    for (size_t i = 0; i < copy->children_.size(); ++i) {
      try {
        auto c = copy->children_[i].clone();
        c.eval();
        copy->children_[i] = torch::jit::optimize_for_inference(c);
      } catch (const c10::Error& e) {
        std::string m = e.what_without_backtrace();
        skipped.push_back(names_[i] + " (" + m.substr(0, m.find('\n')) + ")");
      }
    }
    return copy;
  }

  torch::jit::Module& module() { return module_; }
  const torch::jit::Module& module() const { return module_; }
  const std::string& path() const { return path_; }
  const std::string& extra() const { return extra_; }
  const std::vector<torch::jit::Module>& children() const { return children_; }
  int64_t linear_in(size_t i) const { return linear_in_.at(i); }

 private:
  /// What torchvision's forward does before a child that starts with a Linear: flatten, or
  /// average the spatial dimensions when the Linear expects the channel count.
  at::Tensor prepare_input(at::Tensor h, size_t i) const {
    const int64_t lin = linear_in_[i];
    if (lin > 0 && h.dim() > 2) {
      const int64_t per = h.numel() / std::max<int64_t>(h.size(0), 1);
      if (per == lin) return h.flatten(1);
      if (h.size(1) == lin) return h.mean({-2, -1}).flatten(1);
    }
    return h;
  }

  /// The chain at each level of `path` below `top` (named `name`) and the index of the
  /// path's child in it. Throws naming the level when it is not a Sequential or lacks the child.
  static std::vector<std::pair<torch::jit::Module, size_t>> nested_chain(const torch::jit::Module& top,
                                                                        const std::string& name,
                                                                        const std::vector<std::string>& path) {
    std::vector<std::pair<torch::jit::Module, size_t>> steps;
    torch::jit::Module cur = top;
    std::string where = name;
    for (const auto& part : path) {
      auto t = cur.type()->name();
      const std::string kind = t ? t->name() : "Module";
      GRAFT_CHECK(kind == "Sequential", "cannot tap '", where, ".", part, "': '", where, "' is a ", kind,
                  ", not a Sequential, so its children do not run in order; tap '", where, "' itself");
      size_t k = 0;
      bool found = false;
      std::string names;
      for (const auto& c : cur.named_children()) {
        names += (names.empty() ? "" : ", ") + c.name;
        if (c.name == part) {
          steps.emplace_back(cur, k);
          cur = c.value;
          found = true;
          break;
        }
        ++k;
      }
      GRAFT_CHECK(found, "'", where, "' has no child '", part, "'; its children are ", names);
      where += "." + part;
    }
    return steps;
  }

  torch::jit::Module module_;
  std::string path_, extra_;
  std::vector<std::string> names_, kinds_;
  std::vector<torch::jit::Module> children_;
  std::vector<int64_t> linear_in_;
};

const TorchScriptBackbone& as_ts(const Backbone& b) {
  auto p = dynamic_cast<const TorchScriptBackbone*>(&b);
  GRAFT_CHECK(p, "model '", b.arch(), "' is a native graft model, not TorchScript; save it as a graft checkpoint");
  return *p;
}

}  // namespace

BackbonePtr optimized_for_inference(const Backbone& b, std::vector<std::string>* skipped) {
  auto p = dynamic_cast<const TorchScriptBackbone*>(&b);
  if (!p) return nullptr;
  std::vector<std::string> s;
  auto copy = p->inference_copy(s);
  if (skipped) *skipped = s;
  return copy;
}

BackbonePtr wrap_torchscript(const torch::jit::Module& module, const std::string& path, const std::string& extra) {
  return std::make_shared<TorchScriptBackbone>(module, path, extra);
}

std::string torchscript_meta(const Backbone& b) {
  auto p = dynamic_cast<const TorchScriptBackbone*>(&b);
  return p ? p->extra() : std::string();
}

std::string torchscript_preprocess(const Backbone& b) {
  auto s = torchscript_meta(b);
  if (s.empty()) return "";
  auto j = nlohmann::json::parse(s, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j.value("preprocess", "") : "";
}

BackbonePtr load_torchscript(const std::string& path) {
  std::string bytes = graft::read_file_bytes(path, "TorchScript file");
  if (bytes.rfind("PK\x03\x04", 0) == 0) io::verify_zip(bytes.data(), bytes.size(), "TorchScript file '" + path + "'");
  torch::jit::Module m;
  torch::jit::ExtraFilesMap extra{{kMetaFile, ""}};
  try {
    std::istringstream is(bytes);
    m = torch::jit::load(is, torch::kCPU, extra);
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    GRAFT_FAIL(path, " is not a loadable TorchScript file (", brief(msg), "); ", kExportHint);
  } catch (const std::exception& e) {
    GRAFT_FAIL(path, " is not a loadable TorchScript file (", brief(e.what()), "); ", kExportHint);
  }
  return wrap_torchscript(m, path, extra[kMetaFile]);
}

bool is_torchscript(const Backbone& b) { return dynamic_cast<const TorchScriptBackbone*>(&b) != nullptr; }

void save_torchscript(const Backbone& b, const std::string& path) {
  const auto& ts = as_ts(b);
  std::ostringstream os;
  ts.module().save(os, {{kMetaFile, ts.extra()}});
  graft::write_bytes_atomically(path, os.str());
}

namespace {

// Every parameter and buffer of each module in m, direct ones only (so each is visited once),
// replaced by what f returns for it.
template <typename F>
void replace_tensors(torch::jit::Module& m, F&& f) {
  for (auto sub : m.modules()) {
    std::vector<std::pair<std::string, at::Tensor>> params, buffers;
    for (const auto& p : sub.named_parameters(/*recurse=*/false)) params.emplace_back(p.name, p.value);
    for (const auto& b : sub.named_buffers(/*recurse=*/false)) buffers.emplace_back(b.name, b.value);
    for (auto& [n, t] : params) sub.register_parameter(n, f(t), /*is_buffer=*/false);
    for (auto& [n, t] : buffers) sub.register_buffer(n, f(t));
  }
}

// True for a tensor stored as fewer elements than it spans (a broadcast placeholder).
bool is_placeholder(const at::Tensor& t) {
  return t.defined() && t.numel() > 1 &&
         t.storage().nbytes() < static_cast<size_t>(t.numel()) * static_cast<size_t>(t.element_size());
}

}  // namespace

std::string torchscript_bytes(const Backbone& b, bool weights) {
  std::ostringstream os;
  if (weights) {
    as_ts(b).module().save(os, {{kMetaFile, as_ts(b).extra()}});
  } else {
    auto code = as_ts(b).module().deepcopy();
    replace_tensors(code, [](const at::Tensor& t) {
      return t.numel() > 1 ? at::zeros({1}, t.options().requires_grad(false)).expand(t.sizes()) : t;
    });
    code.save(os, {{kMetaFile, as_ts(b).extra()}});
  }
  return os.str();
}

BackbonePtr torchscript_from_bytes(const std::string& bytes, const std::string& origin, bool weights_follow) {
  std::istringstream is(bytes);
  torch::jit::ExtraFilesMap extra{{kMetaFile, ""}};
  try {
    auto m = torch::jit::load(is, torch::kCPU, extra);
    if (weights_follow)  // only then is every placeholder overwritten by the caller
      replace_tensors(m, [](const at::Tensor& t) { return is_placeholder(t) ? at::zeros(t.sizes(), t.options()) : t; });
    return wrap_torchscript(m, origin, extra[kMetaFile]);
  } catch (const graft::Error&) {
    throw;
  } catch (const c10::Error& e) {
    GRAFT_FAIL(origin, ": the TorchScript model stored in it cannot be loaded (", brief(e.what_without_backtrace()), ")");
  } catch (const std::exception& e) {  // the TorchScript compiler's own errors (damaged code)
    GRAFT_FAIL(origin, ": the TorchScript model stored in it cannot be loaded (", brief(e.what()), ")");
  }
}

namespace {

/// TorchScript source of graft's step between children: flatten (or average) a spatial
/// activation before a child that starts with a Linear of `lin` inputs.
std::string flatten_code(int64_t lin) {
  return str("    if x.dim() > 2:\n"
             "        if x.numel() // max(x.size(0), 1) == ", lin, ":\n"
             "            x = x.flatten(1)\n"
             "        elif x.size(1) == ", lin, ":\n"
             "            x = x.mean([-2, -1]).flatten(1)\n");
}

bool is_identifier(const std::string& s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

/// The new head of a cut model as a TorchScript module (inference semantics: dropout off).
torch::jit::Module head_module(const CutModel& cut) {
  torch::jit::Module h(c10::QualifiedName("__torch__.graft.Head"));
  std::vector<std::pair<std::string, at::Tensor>> lin;
  for (auto& [n, p] : cut.named_parameters())
    if (n.rfind("head.", 0) == 0) lin.emplace_back(n, p.detach().clone());
  GRAFT_CHECK(lin.size() == 2 || lin.size() == 4, "internal: unexpected head parameters (", lin.size(), ")");
  std::string code = "def forward(self, x):\n    if x.dim() > 2:\n";
  code += cut.head_avg() ? "        x = x.flatten(2).mean(2)\n" : "        x = x.flatten(1)\n";
  for (size_t i = 0; i < lin.size(); i += 2) {
    h.register_parameter(str("weight", i / 2), lin[i].second, false);
    h.register_parameter(str("bias", i / 2), lin[i + 1].second, false);
    code += str("    x = torch.linear(x, self.weight", i / 2, ", self.bias", i / 2, ")\n");
    if (i + 2 < lin.size()) code += "    x = torch.relu(x)\n";
  }
  h.define(code + "    return x\n");
  return h;
}

}  // namespace

void export_torchscript(const Backbone& b, const io::ModelMeta& meta, const std::string& path) {
  nlohmann::json j = {{"preprocess", meta.preprocess}, {"input_shape", meta.input_shape},
                      {"class_names", meta.class_names}, {"exported_by", "graft export"}};
  if (auto ts = dynamic_cast<const TorchScriptBackbone*>(&b)) {
    auto m = ts->module().clone();
    m.eval();
    graft::write_atomically(path, [&](const std::string& tmp) { m.save(tmp, {{kMetaFile, j.dump()}}); });
    return;
  }
  torch::jit::Module out(c10::QualifiedName("__torch__.graft.Exported"));
  std::string code = "def forward(self, x):\n";
  auto save = [&](const std::string& rest) {
    out.define(code + rest + "    return x\n");
    out.eval();
    graft::write_atomically(path, [&](const std::string& tmp) { out.save(tmp, {{kMetaFile, j.dump()}}); });
  };
  const auto& names = b.layer_names();
  for (const auto& n : names)
    GRAFT_CHECK(is_identifier(n), "layer name '", n, "' is not a Python identifier; cannot export it");
  if (is_native(b)) {  // a zoo model: every layer translated
    add_native_layers(b, b.num_layers(), out, code);
    return save("");
  }
  auto cut = as_cut(b);
  GRAFT_CHECK(cut, "model '", b.arch(), "' cannot be expressed as TorchScript; graft exports TorchScript models, ",
              "its zoo models and either of them cut and given a new head");
  auto base = dynamic_cast<const TorchScriptBackbone*>(cut->base().get());
  if (!base) {  // a native base cut and given a new head
    add_native_layers(*cut->base(), cut->kept_layers(), out, code);
    out.register_module("head", head_module(*cut));
    return save("    x = self.head.forward(x)\n");
  }
  for (size_t i = 0; i < cut->kept_layers(); ++i) {
    auto child = base->children()[i].clone();
    child.eval();
    out.register_module(names[i], child);
    if (base->linear_in(i) > 0) code += flatten_code(base->linear_in(i));
    code += "    x = self." + names[i] + ".forward(x)\n";
  }
  out.register_module("head", head_module(*cut));
  j["base"] = base->path();
  save("    x = self.head.forward(x)\n");
}

double verify_torchscript_chain(Backbone& b, const std::vector<int64_t>& input_shape) {
  auto& ts = const_cast<TorchScriptBackbone&>(as_ts(b));
  torch::NoGradGuard ng;
  bool was = b.is_training();
  b.train(false);
  std::vector<int64_t> s{2};
  s.insert(s.end(), input_shape.begin(), input_shape.end());
  auto x = torch::randn(s, torch::TensorOptions().device(b.device()));
  auto chained = b.forward(x);
  auto direct = ts.module().forward({x}).toTensor();
  b.train(was);
  GRAFT_CHECK(chained.sizes() == direct.sizes(), ts.path(), ": running the children in order gives shape ",
              chained.sizes(), " but forward() gives ", direct.sizes(),
              "; its forward() does more than call its children in order, so layers cannot be cut reliably");
  double diff = (chained - direct).abs().max().item<double>();
  double scale = std::max(1.0, direct.abs().max().item<double>());
  GRAFT_CHECK(diff <= 1e-4 * scale, ts.path(), ": running the children in order differs from forward() by ", diff,
              "; its forward() does more than call its children in order");
  return diff;
}

}  // namespace graft::models
