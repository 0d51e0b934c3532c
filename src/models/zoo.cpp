#include "graft/models/zoo.h"

#include <torch/nn.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <atomic>
#include <optional>

#include "graft/core/check.h"
#include "graft/core/parse.h"

namespace nn = torch::nn;

namespace graft::models {
namespace {

// A CIFAR-style basic residual block (two 3x3 convs, identity or 1x1 projection).
struct BasicBlockImpl : nn::Module {
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride)
      : conv1(nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false)),
        bn1(out),
        conv2(nn::Conv2dOptions(out, out, 3).padding(1).bias(false)),
        bn2(out) {
    register_module("conv1", conv1);
    register_module("bn1", bn1);
    register_module("conv2", conv2);
    register_module("bn2", bn2);
    if (stride != 1 || in != out) {
      shortcut = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(stride).bias(false)),
                                nn::BatchNorm2d(out));
      register_module("shortcut", shortcut);
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::relu(bn1(conv1(x)));
    h = bn2(conv2(h));
    return torch::relu(h + (shortcut ? shortcut->forward(x) : x));
  }
  nn::Conv2d conv1;
  nn::BatchNorm2d bn1;
  nn::Conv2d conv2;
  nn::BatchNorm2d bn2;
  nn::Sequential shortcut{nullptr};
};
TORCH_MODULE(BasicBlock);

class NativeBackbone : public Backbone {
 public:
  explicit NativeBackbone(std::string arch) : arch_(std::move(arch)), root_(std::make_shared<nn::Module>("graft")) {}

  template <typename M>
  void add(const std::string& name, M module, std::string kind) {
    root_->register_module(name, module.ptr());
    names_.push_back(name);
    kinds_.push_back(std::move(kind));
    layers_.emplace_back([module](const torch::Tensor& x) mutable { return module->forward(x); });
  }

  std::string arch() const override { return arch_; }
  const std::vector<std::string>& layer_names() const override { return names_; }
  at::Tensor forward_range(const at::Tensor& x, size_t begin, size_t end) override {
    GRAFT_CHECK(begin <= end && end <= layers_.size(), "layer range [", begin, ", ", end, ") outside the ",
                layers_.size(), " layers");
    at::Tensor h = x;
    for (size_t i = begin; i < end; ++i) h = layers_[i](h);
    return h;
  }
  std::vector<std::pair<std::string, at::Tensor>> named_parameters() const override {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& it : root_->named_parameters(/*recurse=*/true)) out.emplace_back(it.key(), it.value());
    return out;
  }
  std::vector<std::pair<std::string, at::Tensor>> named_buffers() const override {
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& it : root_->named_buffers(/*recurse=*/true)) out.emplace_back(it.key(), it.value());
    return out;
  }
  void train(bool on) override { root_->train(on); }
  bool is_training() const override { return root_->is_training(); }
  void train_layer(size_t i, bool on) override { root_->children().at(i)->train(on); }
  void to(c10::Device d) override { root_->to(d); }
  std::string layer_kind(size_t i) const override { return kinds_.at(i); }
  /// The module of layer i (for export).
  std::shared_ptr<nn::Module> layer_module(size_t i) const { return root_->children().at(i); }

 private:
  std::string arch_;
  std::shared_ptr<nn::Module> root_;
  std::vector<std::string> names_, kinds_;
  std::vector<std::function<torch::Tensor(const torch::Tensor&)>> layers_;
};

int64_t flat_size(const std::shared_ptr<NativeBackbone>& b, const std::vector<int64_t>& input_shape) {
  torch::NoGradGuard ng;
  std::vector<int64_t> s{1};
  s.insert(s.end(), input_shape.begin(), input_shape.end());
  return b->forward(torch::zeros(s)).numel();
}

void require_image(const std::string& arch, const std::vector<int64_t>& s, int64_t min_hw) {
  GRAFT_CHECK(s.size() == 3, arch, " needs image inputs (C,H,W); got input shape ", at::IntArrayRef(s),
              ". Use mlp for vectors");
  GRAFT_CHECK(s[1] >= min_hw && s[2] >= min_hw, arch, " needs images of at least ", min_hw, "x", min_hw, "; got ", s[1],
              "x", s[2], ". Add a resize transform");
}

nn::Sequential conv_relu(int64_t in, int64_t out, int64_t k, int64_t pad = 0) {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, k).padding(pad)), nn::ReLU());
}
nn::Sequential linear_relu(int64_t in, int64_t out) { return nn::Sequential(nn::Linear(in, out), nn::ReLU()); }
nn::Sequential conv_bn_relu(int64_t in, int64_t out, int64_t k) {
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(in, out, k).bias(false)), nn::BatchNorm2d(out), nn::ReLU());
}
nn::Sequential linear_bn_relu(int64_t in, int64_t out) {
  return nn::Sequential(nn::Linear(nn::LinearOptions(in, out).bias(false)), nn::BatchNorm1d(out), nn::ReLU());
}

/// The DANN paper's MNIST network; with_bn puts BatchNorm after every hidden conv/linear layer.
BackbonePtr dann_mnist(const std::string& arch, bool with_bn, const std::vector<int64_t>& s, int64_t k) {
  require_image(arch, s, 20);
  auto b = std::make_shared<NativeBackbone>(arch);
  const std::string bn = with_bn ? "+BN" : "";
  b->add("conv1", with_bn ? conv_bn_relu(s[0], 32, 5) : conv_relu(s[0], 32, 5), "Conv2d(5x5,32)" + bn + "+ReLU");
  b->add("pool1", nn::MaxPool2d(2), "MaxPool2d(2)");
  b->add("conv2", with_bn ? conv_bn_relu(32, 48, 5) : conv_relu(32, 48, 5), "Conv2d(5x5,48)" + bn + "+ReLU");
  b->add("pool2", nn::MaxPool2d(2), "MaxPool2d(2)");
  b->add("flatten", nn::Flatten(), "Flatten");
  int64_t f = flat_size(b, s);
  b->add("fc1", with_bn ? linear_bn_relu(f, 100) : linear_relu(f, 100), "Linear(100)" + bn + "+ReLU");
  b->add("fc2", with_bn ? linear_bn_relu(100, 100) : linear_relu(100, 100), "Linear(100)" + bn + "+ReLU");
  b->add("fc3", nn::Linear(100, k), str("Linear(", k, ")"));
  return b;
}

/// A plain 6+1-layer network for layer-by-layer transfer studies on small images (the
/// role of Yosinski et al.'s 8-layer network, sized for a CPU): four 3x3 convolutions
/// (16, 16, 32, 32 channels, max-pooling after the second and fourth), two hidden linear
/// layers (128, 64) and the output layer; every transferable layer has parameters.
BackbonePtr convnet6(const std::vector<int64_t>& s, int64_t k) {
  require_image("convnet6", s, 8);
  auto b = std::make_shared<NativeBackbone>("convnet6");
  b->add("conv1", conv_relu(s[0], 16, 3, 1), "Conv2d(3x3,16)+ReLU");
  b->add("conv2", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(16, 16, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2)),
         "Conv2d(3x3,16)+ReLU+MaxPool2d(2)");
  b->add("conv3", conv_relu(16, 32, 3, 1), "Conv2d(3x3,32)+ReLU");
  b->add("conv4", nn::Sequential(nn::Conv2d(nn::Conv2dOptions(32, 32, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2)),
         "Conv2d(3x3,32)+ReLU+MaxPool2d(2)");
  b->add("flatten", nn::Flatten(), "Flatten");
  int64_t f = flat_size(b, s);
  b->add("fc5", linear_relu(f, 128), "Linear(128)+ReLU");
  b->add("fc6", linear_relu(128, 64), "Linear(64)+ReLU");
  b->add("out", nn::Linear(64, k), str("Linear(", k, ")"));
  return b;
}

BackbonePtr dann_svhn(const std::vector<int64_t>& s, int64_t k) {
  require_image("dann_svhn", s, 16);
  auto b = std::make_shared<NativeBackbone>("dann_svhn");
  auto pool = [] { return nn::MaxPool2d(nn::MaxPool2dOptions(3).stride(2)); };
  b->add("conv1", conv_relu(s[0], 64, 5, 2), "Conv2d(5x5,64)+ReLU");
  b->add("pool1", pool(), "MaxPool2d(3,s2)");
  b->add("conv2", conv_relu(64, 64, 5, 2), "Conv2d(5x5,64)+ReLU");
  b->add("pool2", pool(), "MaxPool2d(3,s2)");
  b->add("conv3", conv_relu(64, 128, 5, 2), "Conv2d(5x5,128)+ReLU");
  b->add("flatten", nn::Flatten(), "Flatten");
  int64_t f = flat_size(b, s);
  b->add("fc1", linear_relu(f, 3072), "Linear(3072)+ReLU");
  b->add("fc2", linear_relu(3072, 2048), "Linear(2048)+ReLU");
  b->add("fc3", nn::Linear(2048, k), str("Linear(", k, ")"));
  return b;
}

BackbonePtr resnet(const std::string& arch, int64_t blocks, const std::vector<int64_t>& s, int64_t k) {
  require_image(arch, s, 8);
  auto b = std::make_shared<NativeBackbone>(arch);
  b->add("stem",
         nn::Sequential(nn::Conv2d(nn::Conv2dOptions(s[0], 16, 3).padding(1).bias(false)), nn::BatchNorm2d(16),
                        nn::ReLU()),
         "Conv2d(3x3,16)+BN+ReLU");
  int64_t in = 16;
  for (int stage = 0; stage < 3; ++stage) {
    int64_t out = 16 << stage;
    nn::Sequential seq;
    for (int64_t j = 0; j < blocks; ++j) {
      seq->push_back(BasicBlock(in, out, (stage > 0 && j == 0) ? 2 : 1));
      in = out;
    }
    b->add(str("layer", stage + 1), seq, str(blocks, "xBasicBlock(", out, stage > 0 ? ",s2)" : ")"));
  }
  b->add("avgpool", nn::Sequential(nn::AdaptiveAvgPool2d(1), nn::Flatten()), "GlobalAvgPool");
  b->add("fc", nn::Linear(64, k), str("Linear(", k, ")"));
  return b;
}

BackbonePtr mlp(const std::string& arch, bool with_bn, const std::vector<int64_t>& s, int64_t k) {
  std::vector<int64_t> hidden{100, 100};
  auto colon = arch.find(':');
  if (colon != std::string::npos) {
    hidden.clear();
    std::stringstream ss(arch.substr(colon + 1));
    std::string tok;
    while (std::getline(ss, tok, ',')) {
      GRAFT_CHECK(!tok.empty() && tok.find_first_not_of("0123456789") == std::string::npos, "model '", arch,
                  "': hidden sizes must be positive integers, e.g. mlp:64,64");
      hidden.push_back(parse_int(tok, 1, 65536, str("model '", arch, "': hidden size")));
      GRAFT_CHECK(hidden.back() > 0 && hidden.back() <= 65536, "model '", arch, "': hidden size out of range");
    }
  }
  auto b = std::make_shared<NativeBackbone>(arch);
  int64_t in = 1;
  for (auto d : s) in *= d;
  if (s.size() > 1) b->add("flatten", nn::Flatten(), "Flatten");
  for (size_t i = 0; i < hidden.size(); ++i) {
    b->add(str("fc", i + 1), with_bn ? linear_bn_relu(in, hidden[i]) : linear_relu(in, hidden[i]),
           str("Linear(", hidden[i], ")", with_bn ? "+BN" : "", "+ReLU"));
    in = hidden[i];
  }
  b->add("out", nn::Linear(in, k), str("Linear(", k, ")"));
  return b;
}

}  // namespace

namespace {
// ---- Native models as TorchScript (graft export): each C++ module becomes a scripted
// module with the same tensors and a forward written with the same ATen calls.

std::string ints(c10::IntArrayRef v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

torch::jit::Module scripted(const std::string& kind) {
  static std::atomic<int64_t> id{0};  // every module its own class: their code differs
  torch::jit::Module m(c10::QualifiedName(str("__torch__.graft.native.", kind, id++)));
  m.register_attribute("training", c10::BoolType::get(), true);  // read by dropout and batch norm
  return m;
}

/// The module's own parameters and buffers, copied; "None" for a tensor it does not have.
std::string tensor_or_none(const nn::Module& m, const std::string& name, torch::jit::Module& out) {
  for (const auto& p : m.named_parameters(false))
    if (p.key() == name) return out.register_parameter(name, p.value().detach().clone(), false), "self." + name;
  for (const auto& b : m.named_buffers(false))
    if (b.key() == name) return out.register_buffer(name, b.value().detach().clone()), "self." + name;
  return "None";
}

torch::jit::Module script_module(const std::shared_ptr<nn::Module>& m, const std::string& where);

/// One-line modules: `return EXPR` of x.
std::optional<torch::jit::Module> script_leaf(const std::shared_ptr<nn::Module>& m, const std::string& where) {
  auto out = scripted("Leaf");
  std::string e;
  if (auto c = m->as<nn::Conv2d>()) {
    const auto& o = c->options;
    GRAFT_CHECK(c10::holds_alternative<torch::ExpandingArray<2>>(o.padding()) &&
                    c10::holds_alternative<torch::enumtype::kZeros>(o.padding_mode()),
                "cannot export ", where, ": only zero padding given as numbers is supported");
    e = str("torch.conv2d(x, ", tensor_or_none(*c, "weight", out), ", ", tensor_or_none(*c, "bias", out), ", ",
            ints(*o.stride()), ", ", ints(*c10::get<torch::ExpandingArray<2>>(o.padding())), ", ",
            ints(*o.dilation()), ", ", o.groups(), ")");
  } else if (auto l = m->as<nn::Linear>()) {
    e = str("torch.linear(x, ", tensor_or_none(*l, "weight", out), ", ", tensor_or_none(*l, "bias", out), ")");
  } else if (m->as<nn::BatchNorm1d>() || m->as<nn::BatchNorm2d>()) {
    auto b1 = m->as<nn::BatchNorm1d>();
    const auto& o = b1 ? b1->options : m->as<nn::BatchNorm2d>()->options;
    e = str("torch.batch_norm(x, ", tensor_or_none(*m, "weight", out), ", ", tensor_or_none(*m, "bias", out), ", ",
            tensor_or_none(*m, "running_mean", out), ", ", tensor_or_none(*m, "running_var", out),
            ", self.training, ", o.momentum().value_or(0.1), ", ", o.eps(), ", False)");
    tensor_or_none(*m, "num_batches_tracked", out);
  } else if (m->as<nn::ReLU>()) {
    e = "torch.relu(x)";
  } else if (auto p = m->as<nn::MaxPool2d>()) {
    const auto& o = p->options;
    e = str("torch.max_pool2d(x, ", ints(*o.kernel_size()), ", ", ints(*o.stride()), ", ", ints(*o.padding()), ", ",
            ints(*o.dilation()), ", ", o.ceil_mode() ? "True" : "False", ")");
  } else if (auto a = m->as<nn::AdaptiveAvgPool2d>()) {
    const auto& s = a->options.output_size();
    GRAFT_CHECK(s->at(0) && s->at(1), "cannot export ", where, ": adaptive pooling to an unset size");
    e = str("torch.adaptive_avg_pool2d(x, [", *s->at(0), ", ", *s->at(1), "])");
  } else if (auto f = m->as<nn::Flatten>()) {
    e = str("torch.flatten(x, ", f->options.start_dim(), ", ", f->options.end_dim(), ")");
  } else if (auto d = m->as<nn::Dropout>()) {
    e = str("torch.dropout(x, ", d->options.p(), ", self.training)");
  } else {
    return std::nullopt;
  }
  out.define("def forward(self, x):\n    return " + e + "\n");
  return out;
}

torch::jit::Module script_module(const std::shared_ptr<nn::Module>& m, const std::string& where) {
  if (auto leaf = script_leaf(m, where)) return *leaf;
  if (auto seq = m->as<nn::Sequential>()) {
    auto out = scripted("Sequential");
    std::string code = "def forward(self, x):\n";
    size_t i = 0;
    for (const auto& child : seq->children()) {
      out.register_module(str("m", i), script_module(child, str(where, ".", i)));
      code += str("    x = self.m", i++, ".forward(x)\n");
    }
    out.define(code + "    return x\n");
    return out;
  }
  if (auto b = m->as<BasicBlockImpl>()) {
    auto out = scripted("BasicBlock");
    for (const char* n : {"conv1", "bn1", "conv2", "bn2"}) out.register_module(n, script_module(b->named_children()[n], str(where, ".", n)));
    std::string skip = "x";
    if (b->shortcut) out.register_module("shortcut", script_module(b->shortcut.ptr(), where + ".shortcut")), skip = "self.shortcut.forward(x)";
    out.define("def forward(self, x):\n    h = torch.relu(self.bn1.forward(self.conv1.forward(x)))\n"
               "    h = self.bn2.forward(self.conv2.forward(h))\n    return torch.relu(h + " + skip + ")\n");
    return out;
  }
  GRAFT_FAIL("cannot export ", where, " (", m->name(), ") as TorchScript: graft has no translation for it");
}
}  // namespace

bool is_native(const Backbone& b) { return dynamic_cast<const NativeBackbone*>(&b) != nullptr; }

void add_native_layers(const Backbone& b, size_t n, torch::jit::Module& out, std::string& code) {
  auto nb = dynamic_cast<const NativeBackbone*>(&b);
  GRAFT_CHECK(nb, "internal: add_native_layers on a ", b.arch(), " model");
  const auto& names = b.layer_names();
  for (size_t i = 0; i < n; ++i) {
    out.register_module(names[i], script_module(nb->layer_module(i), "layer '" + names[i] + "'"));
    code += "    x = self." + names[i] + ".forward(x)\n";
  }
}

std::vector<std::string> zoo_names() {
  return {"dann_mnist", "dann_mnist_bn", "dann_svhn", "convnet6", "resnet8", "resnet20", "mlp", "mlp_bn"};
}

BackbonePtr create_model(const std::string& arch, const std::vector<int64_t>& input_shape, int64_t num_classes,
                         uint64_t seed) {
  GRAFT_CHECK(num_classes >= 2, "model '", arch, "' needs at least 2 classes, got ", num_classes);
  GRAFT_CHECK(!input_shape.empty(), "model '", arch, "': unknown input shape");
  torch::manual_seed(seed);
  if (arch == "dann_mnist" || arch == "dann_mnist_bn")
    return dann_mnist(arch, arch == "dann_mnist_bn", input_shape, num_classes);
  if (arch == "dann_svhn") return dann_svhn(input_shape, num_classes);
  if (arch == "convnet6") return convnet6(input_shape, num_classes);
  if (arch == "resnet8") return resnet(arch, 1, input_shape, num_classes);
  if (arch == "resnet20") return resnet(arch, 3, input_shape, num_classes);
  if (arch == "mlp" || arch.rfind("mlp:", 0) == 0) return mlp(arch, false, input_shape, num_classes);
  if (arch == "mlp_bn" || arch.rfind("mlp_bn:", 0) == 0) return mlp(arch, true, input_shape, num_classes);
  auto close = close_matches(arch, zoo_names());
  std::string hint;
  for (const auto& c : close) hint += (hint.empty() ? "" : ", ") + c;
  GRAFT_FAIL("unknown model '", arch, "'", hint.empty() ? "" : "; did you mean " + hint + "?",
             " Models: dann_mnist[_bn], dann_svhn, convnet6, resnet8, resnet20, mlp[_bn][:H,...], a TorchScript .pt file or a graft checkpoint");
}

}  // namespace graft::models
