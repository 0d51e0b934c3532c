#pragma once
// Shared pieces of the graft subcommands: model opening, option parsing helpers.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "graft/data/dataset.h"
#include "graft/io/checkpoint.h"
#include "graft/models/backbone.h"
#include "graft/train/trainer.h"

namespace graft::cli {

/// Options every command shares.
struct Common {
  std::string device = "cpu";
  int threads = 0;
  int64_t max_pixels = 0;  ///< 0: data::kDefaultMaxPixels
};
void add_common(CLI::App& app, Common& c);
/// Applies --threads and --max-pixels, checks --device and warns once about a reference BLAS.
void apply_common(const Common& c);

/// A model opened from a CLI spec, with what is needed to feed it.
struct OpenedModel {
  models::BackbonePtr model;
  io::ModelMeta meta;
  bool from_checkpoint = false;
};

/// Opens --model: a graft checkpoint, a TorchScript file, or a zoo name.
/// For zoo names and TorchScript files the input shape and classes come from the
/// data (input_shape, class_names); `channels` (0 = the data's) overrides C.
OpenedModel open_model(const std::string& spec, std::vector<int64_t> input_shape,
                       const std::vector<std::string>& class_names, int channels, const std::string& preprocess,
                       uint64_t seed);

/// Throws graft::Error naming the file and the first parameter or buffer holding NaN
/// or inf (a diverged run's model must not produce scores); the Checkpoint form also
/// checks attached tensors (off-the-shelf classifiers).
void require_finite(const models::BackbonePtr& model, const std::string& path);
void require_finite(const io::Checkpoint& ck, const std::string& path);

/// Checks a seed given on the command line as text: a non-negative integer below
/// 2^63. Throws graft::Error naming the option ("--seed -1 is not ...") otherwise, so a
/// negative seed never wraps around to 2^64-1 and an empty one never means 0.
uint64_t parse_seed(const std::string& text, const std::string& option);
/// CLI11 validator for --seed/--seeds values (each item of a list): parse_seed's rule.
CLI::Validator seed_check();
/// The same for a comma-separated list of seeds (--seeds 1,2,3); empty items and an
/// empty list are errors.
std::vector<uint64_t> parse_seeds(const std::string& text, const std::string& option);

/// Splits a comma-separated list of names ("conv1,fc2"), dropping empty items.
std::vector<std::string> split_names(const std::string& s);

/// Parses "1,28,28" into {1,28,28}; throws graft::Error naming the option.
std::vector<int64_t> parse_shape(const std::string& s, const std::string& option);

/// The default example shape of a zoo model, used by `graft layers` without --input-shape.
std::vector<int64_t> default_input_shape(const std::string& arch);

/// Registers the options of train::TrainConfig on a subcommand (train, finetune).
void add_train_config(CLI::App& sub, train::TrainConfig& c);

void add_layers(CLI::App& app);
void add_finetune(CLI::App& app);
void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_predict(CLI::App& app);
void add_data(CLI::App& app);
void add_demo(CLI::App& app);
void add_extract(CLI::App& app);
void add_linear(CLI::App& app);
void add_transfer(CLI::App& app);
void add_adapt(CLI::App& app);
void add_pretrain(CLI::App& app);
void add_semisup(CLI::App& app);
void add_study(CLI::App& app);

}  // namespace graft::cli
