#include "graft/io/checkpoint.h"

#include <torch/optim/optimizer.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include <filesystem>

#include "graft/core/check.h"
#include "graft/io/archive.h"
#include "graft/core/files.h"
#include "graft/models/compose.h"
#include "graft/models/zoo.h"
#include "graft/train/divergence.h"

namespace graft::io {
namespace {

at::Tensor bytes_tensor(const std::string& s) {
  auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), s.data(), s.size());
  return t;
}
std::string tensor_bytes(const at::Tensor& t) {
  auto c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), static_cast<size_t>(c.numel()));
}

torch::serialize::InputArchive open_archive(const std::string& path,
                                            c10::optional<c10::Device> device = c10::nullopt) {
  torch::serialize::InputArchive in;
  load_archive_verified(path, in, "checkpoint", device);
  return in;
}

}  // namespace

nlohmann::json ModelMeta::to_json() const {
  nlohmann::json j = {{"arch", arch}, {"input_shape", input_shape}, {"class_names", class_names},
                      {"preprocess", preprocess}};
  if (!arch_config.is_null()) j["arch_config"] = arch_config;
  return j;
}

ModelMeta ModelMeta::from_json(const nlohmann::json& j) {
  ModelMeta m;
  m.arch = j.at("arch").get<std::string>();
  m.input_shape = j.at("input_shape").get<std::vector<int64_t>>();
  m.class_names = j.at("class_names").get<std::vector<std::string>>();
  m.preprocess = j.value("preprocess", "");
  if (j.contains("arch_config")) m.arch_config = j["arch_config"];
  return m;
}

const at::Tensor& Attachment::tensor(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  GRAFT_FAIL("checkpoint attachment '", meta.value("kind", "?"), "' lacks tensor '", name, "'");
}

void save_checkpoint(const std::string& path, const models::Backbone& model, const ModelMeta& meta,
                     const TrainState* state, torch::optim::Optimizer* optimizer, const Attachment* attachment) {
  torch::serialize::OutputArchive out;
  // Version 2: a cut TorchScript model's base is stored without its weights (they are the
  // param/ and buffer/ entries). Other checkpoints stay version 1, readable by older graft.
  const auto* cut = models::as_cut(model);
  const bool weightless_base = cut && models::is_torchscript(*cut->base());
  nlohmann::json j = {{"format", "graft-checkpoint"}, {"version", weightless_base ? 2 : 1}, {"model", meta.to_json()}};
  if (state) {
    j["state"] = {{"epoch", state->epoch},
                  {"step_in_epoch", state->step_in_epoch},
                  {"global_step", state->global_step},
                  {"config", state->config},
                  {"extra", state->extra}};
  }
  if (attachment) {
    nlohmann::json names = nlohmann::json::array();
    for (const auto& [n, t] : attachment->tensors) {
      names.push_back(n);
      out.write("attachment/" + n, t.detach().cpu());
    }
    j["attachment"] = {{"meta", attachment->meta}, {"tensors", names}};
  }
  out.write("graft_meta", c10::IValue(j.dump()));
  if (cut) {
    GRAFT_CHECK(meta.arch == "cut" && meta.arch_config.contains("base"), path,
                ": a cut model needs its base model's description in ModelMeta::arch_config");
    if (weightless_base)
      out.write("torchscript", bytes_tensor(models::torchscript_bytes(*cut->base(), /*weights=*/false)));
    for (const auto& [n, p] : model.named_parameters()) out.write("param/" + n, p.detach().cpu());
    for (const auto& [n, b] : model.named_buffers()) out.write("buffer/" + n, b.detach().cpu(), /*is_buffer=*/true);
  } else if (models::is_torchscript(model)) {
    out.write("torchscript", bytes_tensor(models::torchscript_bytes(model)));
  } else {
    for (const auto& [n, p] : model.named_parameters()) out.write("param/" + n, p.detach().cpu());
    for (const auto& [n, b] : model.named_buffers()) out.write("buffer/" + n, b.detach().cpu(), /*is_buffer=*/true);
  }
  if (optimizer) {
    torch::serialize::OutputArchive opt;
    optimizer->save(opt);
    out.write("optimizer", opt);
  }
  out.write("rng/cpu", at::detail::getDefaultCPUGenerator().get_state());
  save_archive_atomically(path, out);
}

bool is_checkpoint(const std::string& path) {
  std::string bytes;
  try {
    bytes = read_file_bytes(path, "model");
  } catch (const Error&) {
    return false;
  }
  if (bytes.rfind("PK\x03\x04", 0) != 0) return false;
  // A damaged archive is an error whatever it holds, not "some other kind of file".
  const std::string name = "model file '" + path + "'";
  verify_zip(bytes.data(), bytes.size(), name);
  // A checkpoint's object carries the attribute "graft_meta" (save_checkpoint), whose name the
  // object record stores as is. Only that record is read: loading the archive with libtorch to
  // find out would cost a whole model load on every --model.
  auto pkl = zip_record(bytes.data(), bytes.size(), "data.pkl", name);
  return pkl && pkl->find("graft_meta") != std::string::npos;
}

Checkpoint load_checkpoint(const std::string& path, bool restore_rng) {
  auto in = open_archive(path);
  c10::IValue v;
  GRAFT_CHECK(in.try_read("graft_meta", v) && v.isString(), path,
              " is not a graft checkpoint (no graft metadata); for a TorchScript file pass it as --model FILE.pt");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(v.toStringRef());
  } catch (const std::exception& e) {
    GRAFT_FAIL(path, ": corrupt checkpoint metadata (", e.what(), ")");
  }
  int version = j.value("version", 0);
  GRAFT_CHECK(version >= 1 && version <= kCheckpointVersion, path, ": checkpoint format version ", version,
              " is not supported by this graft (reads 1 to ", kCheckpointVersion, "); upgrade graft");
  Checkpoint ck;
  ck.path = path;
  ck.meta = ModelMeta::from_json(j.at("model"));
  if (j.contains("state")) {
    const auto& s = j["state"];
    ck.has_state = true;
    ck.state.epoch = s.value("epoch", 0);
    ck.state.step_in_epoch = s.value("step_in_epoch", 0);
    ck.state.global_step = s.value("global_step", 0);
    ck.state.config = s.value("config", nlohmann::json::object());
    ck.state.extra = s.value("extra", nlohmann::json::object());
  }
  if (j.contains("attachment")) {
    Attachment a;
    a.meta = j["attachment"].value("meta", nlohmann::json::object());
    for (const auto& n : j["attachment"].value("tensors", nlohmann::json::array())) {
      at::Tensor t;
      GRAFT_CHECK(in.try_read("attachment/" + n.get<std::string>(), t), path, ": checkpoint lacks attached tensor '",
                  n.get<std::string>(), "'; the file is damaged");
      a.tensors.emplace_back(n.get<std::string>(), t);
    }
    ck.attachment = std::move(a);
  }
  if (ck.meta.arch == "torchscript") {
    at::Tensor bytes;
    GRAFT_CHECK(in.try_read("torchscript", bytes), path, ": checkpoint of a TorchScript model lacks the model");
    ck.model = models::torchscript_from_bytes(tensor_bytes(bytes), path);
  } else {
    if (ck.meta.arch == "cut") {
      models::BackbonePtr base;
      try {
        auto bm = ModelMeta::from_json(ck.meta.arch_config.at("base"));
        const auto& c = ck.meta.arch_config.at("cut");
        if (bm.arch == "torchscript") {
          at::Tensor bytes;
          GRAFT_CHECK(in.try_read("torchscript", bytes), path, ": checkpoint of a cut TorchScript model lacks the base");
          base = models::torchscript_from_bytes(tensor_bytes(bytes), path, /*weights_follow=*/true);
        } else {
          base = models::create_model(bm.arch, bm.input_shape, bm.num_classes());
        }
        ck.model = std::make_shared<models::CutModel>(base, c.at("keep").get<size_t>(),
                                                      models::HeadSpec::from_json(c.at("head")),
                                                      ck.meta.num_classes(),
                                                      // the shape the head was sized on (after preprocessing)
                                                      c.value("input_shape", ck.meta.input_shape), 0);
      } catch (const nlohmann::json::exception& e) {
        GRAFT_FAIL(path, ": damaged description of a cut model (", e.what(), ")");
      }
    } else {
      ck.model = models::create_model(ck.meta.arch, ck.meta.input_shape, ck.meta.num_classes());
    }
    torch::NoGradGuard ng;
    for (auto& [n, p] : ck.model->named_parameters()) {
      at::Tensor t;
      GRAFT_CHECK(in.try_read("param/" + n, t), path, ": checkpoint lacks parameter '", n, "'");
      GRAFT_CHECK(t.sizes() == p.sizes(), path, ": parameter '", n, "' has shape ", t.sizes(), ", model expects ",
                  p.sizes());
      p.copy_(t);
    }
    for (auto& [n, b] : ck.model->named_buffers()) {
      at::Tensor t;
      GRAFT_CHECK(in.try_read("buffer/" + n, t, true), path, ": checkpoint lacks buffer '", n, "'");
      b.copy_(t);
    }
  }
  if (restore_rng) {
    at::Tensor rng;
    if (in.try_read("rng/cpu", rng)) {
      auto gen = at::detail::getDefaultCPUGenerator();
      gen.set_state(rng);
    }
  }
  return ck;
}

CheckpointChoice newest_valid_checkpoint(const std::string& dir, const std::vector<std::string>& names) {
  CheckpointChoice out;
  for (const auto& name : names) {
    std::string path = dir + "/" + name;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) continue;
    try {
      auto ck = load_checkpoint(path);
      GRAFT_CHECK(ck.has_state, "holds no training state");
      auto bad = train::first_non_finite(*ck.model);
      GRAFT_CHECK(bad.empty(), "weight '", bad, "' is not finite");
      if (ck.state.global_step > out.global_step) {
        out.path = path;
        out.global_step = ck.state.global_step;
      }
    } catch (const std::exception& e) {
      out.rejected.push_back(path + ": " + e.what());
    }
  }
  return out;
}

void load_optimizer_state(const std::string& path, torch::optim::Optimizer& optimizer) {
  // The state (momentum, Adam's moments) goes to the device of the parameters it belongs
  // to: a checkpoint written on a GPU resumes on a CPU and the other way round.
  c10::optional<c10::Device> device;
  for (const auto& g : optimizer.param_groups())
    if (!g.params().empty() && !device) device = g.params().front().device();
  auto in = open_archive(path, device);
  torch::serialize::InputArchive opt;
  GRAFT_CHECK(in.try_read("optimizer", opt), path, ": checkpoint holds no optimizer state; cannot resume from it");
  try {
    optimizer.load(opt);
  } catch (const c10::Error& e) {
    std::string m = e.what_without_backtrace();
    GRAFT_FAIL(path, ": optimizer state does not fit this run (", m.substr(0, m.find('\n')),
               "); resume with the same model and options");
  }
}

void copy_weights(const models::Backbone& from, models::Backbone& to, const std::set<std::string>* layers) {
  torch::NoGradGuard ng;
  auto src = from.named_parameters();
  auto srcb = from.named_buffers();
  src.insert(src.end(), srcb.begin(), srcb.end());
  std::map<std::string, at::Tensor> m(src.begin(), src.end());
  auto dst = to.named_parameters();
  auto dstb = to.named_buffers();
  dst.insert(dst.end(), dstb.begin(), dstb.end());
  for (auto& [n, t] : dst) {
    if (layers && !layers->count(models::layer_of_param(n))) continue;
    auto it = m.find(n);
    GRAFT_CHECK(it != m.end(), "weights lack '", n, "'");
    GRAFT_CHECK(it->second.sizes() == t.sizes(), "weight '", n, "' has shape ", it->second.sizes(), ", expected ",
                t.sizes());
    t.copy_(it->second);
  }
}

}  // namespace graft::io
