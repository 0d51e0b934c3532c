#include "common.h"

#include <ATen/ATen.h>

#include <cmath>
#include <iomanip>
#include <iostream>
#include <filesystem>
#include <sstream>

#include "graft/dist/context.h"
#include "graft/core/check.h"
#include "graft/core/parse.h"
#include "graft/core/runtime.h"
#include "graft/data/readers.h"
#include "graft/data/registry.h"
#include "graft/models/zoo.h"
#include "graft/train/divergence.h"

namespace fs = std::filesystem;

namespace graft::cli {

void add_common(CLI::App& app, Common& c) {
  app.add_option("--device", c.device, "cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", c.threads, "intra-op threads (0: libtorch's default, the number of cores)")
      ->capture_default_str();
  // Some commands register their own --quiet (bound to their config); keep theirs.
  if (!app.get_option_no_throw("--quiet"))
    app.add_flag("--quiet", c.quiet, "no progress lines (the one-line summary of the run, warnings and errors still show)");
  app.add_option("--precision", c.precision, "forward passes in fp32, bf16 (autocast; CPU or GPU) or fp16 (GPU, "
                                             "with dynamic loss scaling when training)")
      ->capture_default_str();
  app.add_option("--tf32", c.tf32, "CUDA float32 matrix products and convolutions in TF32: default (PyTorch's: "
                                   "convolutions yes, matrix products no), on or off (strict float32); no effect on CPUs")
      ->capture_default_str();
  app.add_option("--channels-last", c.channels_last,
                 "convolutional models in channels-last (NHWC) memory format: auto (on the CPU when training, and "
                 "when extracting in bf16; float32 extraction runs an optimised copy instead), on or off")
      ->capture_default_str();
  app.add_option("--max-pixels", c.max_pixels,
                 "refuse image files above this many pixels (width x height), read from their header before "
                 "decoding (default 67108864 = 64 Mpx)");
}

void add_data_on_device(CLI::App& sub, std::string& v) {
  sub.add_option("--data-on-device", v, "in-memory training data held on the device, batches gathered and augmented "
                                        "there: auto (on a GPU when they take at most 2 GiB as float32), on or off")
      ->capture_default_str();
}

void add_val_options(CLI::App& sub, ValOptions& v, double default_split, const std::string& of) {
  v.split = default_split;
  sub.add_option("--val", v.val, "validation set evaluated after each epoch (replaces --val-split; never the test set)");
  v.split_opt = sub.add_option("--val-split", v.split, "fraction of " + of + " held out for validation when --val is "
                                                       "not given (0: none)")
                    ->capture_default_str();
}

data::DatasetPtr take_validation(const ValOptions& v, data::DatasetPtr& train, uint64_t seed) {
  GRAFT_CHECK(v.val.empty() || !v.split_opt || v.split_opt->count() == 0, "--val and --val-split were both given: give one of them");
  GRAFT_CHECK(v.split >= 0 && v.split < 1, "--val-split must be in [0, 1), got ", v.split);
  if (!v.val.empty()) return data::open_dataset(v.val);
  if (v.split <= 0) return nullptr;
  data::DatasetPtr val;
  std::tie(train, val) = data::split(train, v.split, seed);
  return val;
}

void refuse_data_parallel(const std::string& verb, const std::string& why) {
  GRAFT_CHECK(!dist::env_from_process().distributed(), "graft ", verb, " does not run data-parallel (", why,
              "); run it as one process, without graft launch or torchrun");
}

Precision precision_of(const Common& c) { return parse_precision(c.precision, c.device); }

void apply_common(const Common& c) {
  warn_if_reference_blas();
  set_threads(c.threads);
  check_choice("tf32", c.tf32, {"default", "on", "off"});
  check_choice("channels-last", c.channels_last, {"auto", "on", "off"});
  if (c.tf32 != "default") {
    at::globalContext().setAllowTF32CuBLAS(c.tf32 == "on");
    at::globalContext().setAllowTF32CuDNN(c.tf32 == "on");
  }
  const auto prec = precision_of(c);
  if (prec == Precision::kBf16 && c.device == "cpu" && !cpu_has_native_bf16())
    std::cerr << "graft: note: this CPU has no native bfloat16 instructions (AVX512_BF16/AMX); --precision bf16 is "
                 "emulated and slower than fp32 here\n";
  GRAFT_CHECK(c.max_pixels >= 0, "--max-pixels must be positive, got ", c.max_pixels);
  if (c.max_pixels > 0) data::set_max_pixels(c.max_pixels);
  parse_device(c.device);
}

Progress::Progress(std::string label, bool quiet, double every_s)
    : label_(std::move(label)), quiet_(quiet), every_s_(every_s) {}

std::string Progress::suffix(int64_t done, int64_t total) {
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  const double eta = done > 0 ? el / static_cast<double>(done) * static_cast<double>(total - done) : 0;
  return " [" + std::to_string(done) + "/" + std::to_string(total) + ", " + format_duration(el) + " elapsed, ETA " +
         format_duration(eta) + "]";
}

void Progress::update(int64_t done, int64_t total, const std::string& unit) {
  if (quiet_ || total <= 0) return;
  const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  if (done < total && el - last_ < every_s_) return;
  last_ = el;
  const double rate = el > 0 ? static_cast<double>(done) / el : 0;
  std::ostringstream o;
  o << label_ << " " << done << "/" << total << " " << unit << " (" << 100 * done / total << "%), " << std::fixed
    << std::setprecision(0) << rate << " " << unit << "/s, "
    << (done < total ? "ETA " + format_duration(rate > 0 ? static_cast<double>(total - done) / rate : 0)
                     : "done in " + format_duration(el));
  std::cerr << o.str() << std::endl;
}

void require_finite(const models::BackbonePtr& model, const std::string& path) {
  auto bad = train::first_non_finite(*model);
  GRAFT_CHECK(bad.empty(), "model '", path, "' has non-finite weights (", bad,
              " holds NaN or inf): the run that saved it diverged; retrain with a lower --lr");
}

void require_finite(const io::Checkpoint& ck, const std::string& path) {
  require_finite(ck.model, path);
  if (ck.attachment)
    for (const auto& [name, t] : ck.attachment->tensors)
      GRAFT_CHECK(!t.is_floating_point() || at::isfinite(t).all().item<bool>(), "model '", path,
                  "' has a non-finite attached tensor (", name, "); refit the classifier");
}

uint64_t parse_seed(const std::string& text, const std::string& option) {
  GRAFT_CHECK(!text.empty(), option, " is empty; give a non-negative integer seed such as 1");
  return static_cast<uint64_t>(parse_int(text, 0, INT64_MAX, option));
}

CLI::Validator seed_check() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        try {
          parse_seed(v, "seed");
        } catch (const Error& e) {
          return e.what();
        }
        return "";
      },
      "SEED>=0");
}

std::vector<uint64_t> parse_seeds(const std::string& text, const std::string& option) {
  GRAFT_CHECK(!text.empty(), option, " is empty; give one or more non-negative seeds such as 1,2,3");
  std::vector<uint64_t> out;
  std::stringstream ss(text + ",");
  for (std::string item; std::getline(ss, item, ',');) out.push_back(parse_seed(item, option));
  return out;
}

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

std::vector<int64_t> parse_shape(const std::string& s, const std::string& option) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    GRAFT_CHECK(!tok.empty() && tok.find_first_not_of("0123456789") == std::string::npos, option, " '", s,
                "' is not a shape; use comma-separated sizes like 1,28,28");
    out.push_back(parse_int(tok, 1, 65536, str(option, " '", s, "'")));
    GRAFT_CHECK(out.back() > 0 && out.back() <= 65536, option, " '", s, "': sizes must be in [1, 65536]");
  }
  GRAFT_CHECK(!out.empty(), option, " is empty; use comma-separated sizes like 1,28,28");
  return out;
}

std::vector<int64_t> default_input_shape(const std::string& arch) {
  if (arch == "dann_mnist" || arch == "dann_mnist_bn" || arch == "convnet6") return {1, 28, 28};
  if (arch == "dann_svhn" || arch.rfind("resnet", 0) == 0) return {3, 32, 32};
  if (arch.rfind("mlp", 0) == 0) return {2};
  return {3, 224, 224};
}

}  // namespace graft::cli
