#pragma once
/// Model sources behind the Backbone interface: the native zoo defined in C++ and
/// TorchScript files exported from PyTorch.
#include <string>
#include <vector>

#include "graft/models/backbone.h"

namespace torch::jit {
struct Module;
}
namespace graft::io {
struct ModelMeta;
}

namespace graft::models {

/// Names of the native architectures, for --help and error messages.
std::vector<std::string> zoo_names();

/// Builds a freshly initialised native model.
///   dann_mnist   the MNIST network of Ganin & Lempitsky 2015: conv(32,5x5)-pool-conv(48,5x5)-pool-fc100-fc100-fcK
///   dann_mnist_bn  the same with BatchNorm after each hidden conv/linear layer (for AdaBN)
///   dann_svhn    their SVHN network: conv(64,5x5)-pool-conv(64,5x5)-pool-conv(128,5x5)-fc3072-fc2048-fcK
///   convnet6     conv(16)-conv(16)-pool-conv(32)-conv(32)-pool-fc128-fc64-fcK, 3x3 convs: six
///                transferable layers with parameters, for `graft study transferability`
///   resnet8, resnet20   CIFAR-style ResNets (He et al. 2016), widths 16/32/64, 1 or 3 blocks per stage
///   mlp[:H1,H2,...]     fully connected ReLU network (default hidden sizes 100,100)
///   mlp_bn[:H1,...]     the same with BatchNorm before each ReLU
/// Shape: input_shape is one example's shape, (C,H,W) for the conv nets or (D) / any for mlp.
/// Throws graft::Error for an unknown name (close matches listed) or an input too small for the net.
BackbonePtr create_model(const std::string& arch, const std::vector<int64_t>& input_shape, int64_t num_classes,
                         uint64_t seed = 0);

/// True for graft's own zoo models (layers are C++ modules).
bool is_native(const Backbone& b);

/// Export of a native model: registers its first n layers on `out` as scripted children
/// named after the layers (same tensors, the same ATen calls in their forward) and
/// appends their calls to the forward code. Throws graft::Error naming a part that has
/// no TorchScript translation.
void add_native_layers(const Backbone& b, size_t n, torch::jit::Module& out, std::string& code);

/// Wraps a TorchScript module: its top-level children are the layers, in order.
/// Between a child whose output has spatial dimensions and a child that starts with
/// a Linear layer, the activations are flattened (or globally averaged when the
/// Linear expects the channel count), as torchvision's forward() does.
/// Throws graft::Error naming the file and how to export one when loading fails.
BackbonePtr load_torchscript(const std::string& path);

/// Wraps an already loaded TorchScript module (path is used in messages only). `extra`
/// is the JSON text of its graft.json extra file ("" when it has none).
BackbonePtr wrap_torchscript(const torch::jit::Module& module, const std::string& path, const std::string& extra = "");

/// The graft.json extra file carried inside a TorchScript model ("" for none or native
/// models): {"preprocess": spec, "input_shape": [C,H,W], "class_names": [...], ...}.
/// scripts/convert_tfjs.py and `graft export` write it.
std::string torchscript_meta(const Backbone& b);
/// Its "preprocess" entry, or "" when absent.
std::string torchscript_preprocess(const Backbone& b);

/// Writes b as one TorchScript file that Python's torch.jit.load runs (eval mode),
/// with meta's preprocessing, input shape and class names in its graft.json extra file.
/// Works for TorchScript models and for a TorchScript base cut and given a new head
/// (the head becomes a scripted child "head"; graft's flatten between children is kept).
/// Throws graft::Error for native zoo models and native bases, which graft cannot express.
void export_torchscript(const Backbone& b, const io::ModelMeta& meta, const std::string& path);

/// For TorchScript models: an inference-only copy whose children are frozen and
/// optimised by libtorch (torch::jit::optimize_for_inference: constants folded,
/// BatchNorm folded into convolutions). Make it after moving the model to its device.
/// Children that cannot be optimised are listed in `skipped` and run unoptimised.
/// Returns null for native models (already run in inference mode without a graph).
BackbonePtr optimized_for_inference(const Backbone& b, std::vector<std::string>* skipped = nullptr);

/// True when b wraps a TorchScript module.
bool is_torchscript(const Backbone& b);

/// Saves a TorchScript-backed model as TorchScript (atomically) that Python's
/// torch.jit.load opens. Throws graft::Error for native models.
void save_torchscript(const Backbone& b, const std::string& path);

/// Serialises/deserialises a TorchScript-backed model to bytes (for checkpoints). With
/// weights=false every parameter and buffer of more than one element is stored as a single
/// element broadcast to its shape: code and structure only, for a checkpoint that stores the
/// weights beside it. torchscript_from_bytes with weights_follow=true gives such tensors
/// memory of their own again (zeros: the caller then writes every parameter and buffer).
std::string torchscript_bytes(const Backbone& b, bool weights = true);
BackbonePtr torchscript_from_bytes(const std::string& bytes, const std::string& origin, bool weights_follow = false);

/// Checks that running the children in order reproduces the module's own forward()
/// on a random input of this shape (so taps and cuts mean what they say).
/// Returns the max absolute difference; throws graft::Error when they differ.
double verify_torchscript_chain(Backbone& b, const std::vector<int64_t>& input_shape);

}  // namespace graft::models
