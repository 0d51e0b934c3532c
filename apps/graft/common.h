#pragma once
// Shared pieces of the graft subcommands: common options, run records and replay,
// option parsing helpers, help generators.
#include <CLI/CLI.hpp>

#include <chrono>
#include <string>
#include <vector>

#include "graft/core/precision.h"
#include "graft/data/dataset.h"
#include "graft/io/checkpoint.h"
#include "graft/models/backbone.h"
#include "graft/models/open.h"
#include "graft/train/trainer.h"

namespace graft::cli {

/// Options every command that runs a model shares.
struct Common {
  std::string device = "cpu";
  int threads = 0;
  bool quiet = false;
  int64_t max_pixels = 0;  ///< 0: data::kDefaultMaxPixels
  std::string precision = "fp32";
  std::string tf32 = "default";
  std::string channels_last = "auto";
};
/// Adds --device, --threads and --quiet (the last only when the command has none yet).
void add_common(CLI::App& app, Common& c);
/// Applies --threads and --max-pixels, checks --device and --precision and warns once about a
/// reference BLAS.
void apply_common(const Common& c);
/// --precision of the common options, parsed for --device.
Precision precision_of(const Common& c);

/// Refuses to run `verb` as one rank of a data-parallel run (WORLD_SIZE > 1), saying why:
/// for verbs whose work does not split over ranks.
void refuse_data_parallel(const std::string& verb, const std::string& why);

/// Opening --model is a library call (zoo name, TorchScript file or checkpoint).
using models::open_model;
using models::OpenedModel;


/// Progress lines with an ETA on stderr for long loops of known length: at most one line
/// every `every_s` seconds (and the last one), silent when quiet.
class Progress {
 public:
  Progress(std::string label, bool quiet, double every_s = 5.0);
  /// `done` of `total` units finished; `unit` names them ("examples", "fits").
  void update(int64_t done, int64_t total, const std::string& unit);
  /// " [k/N, ETA 1 min 05 s]" for the k-th of N units done now (no printing).
  std::string suffix(int64_t done, int64_t total);

 private:
  std::string label_;
  bool quiet_;
  double every_s_, last_ = -1e9;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

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

/// --data-on-device (train::TrainConfig::data_on_device) on a training subcommand.
void add_data_on_device(CLI::App& sub, std::string& v);

/// The validation options shared by the training verbs: --val SPEC or --val-split FRACTION.
struct ValOptions {
  std::string val;            ///< --val: a dataset spec
  double split = 0;           ///< --val-split: the fraction of the training set held out
  CLI::Option* split_opt = nullptr;
};
/// Adds --val and --val-split (default `default_split`, of the set named `of`) to `sub`.
void add_val_options(CLI::App& sub, ValOptions& v, double default_split, const std::string& of);
/// The validation set: --val's, or --val-split of `train` (seeded split, `train` keeps the
/// rest), or none. --val replaces a default split; both given on the command line, or a
/// fraction outside [0, 1), is an error naming the option.
data::DatasetPtr take_validation(const ValOptions& v, data::DatasetPtr& train, uint64_t seed);

/// Registers the options of train::TrainConfig on a subcommand (train, finetune).
void add_train_config(CLI::App& sub, train::TrainConfig& c);

// ---- Run records and replay (runrecord.cpp) ---------------------------------------

/// Remembers the process's argv and working directory for run records (main calls it).
void set_invocation(int argc, char** argv);
/// "train", "study transferability": the subcommand path of `sub` below the main app.
std::string verb_of(const CLI::App& sub);
/// The verbs whose runs write a folder, record it and accept --config.
const std::vector<std::string>& recorded_verbs();
/// Adds --config FILE to every recorded verb under `app` (call after every add_*).
void enable_replay(CLI::App& app);
/// Writes the run record beside a run's outputs: PREFIX + "command.txt" (the exact argv,
/// the working directory, graft's version) and PREFIX + "graft.toml" (the options given,
/// replayed by `graft VERB --config FILE`). For a folder pass "DIR/" (it is created).
/// Writes once per process; later calls do nothing.
void record_run(const CLI::App& sub, const std::string& prefix);
/// True once record_run wrote a record in this process.
bool run_recorded();
/// Expands `--config FILE` in args (argv without the program name): checks that FILE
/// was written by the same verb and graft major version, and inserts its options after
/// the verb, leaving out those given on the command line (they win). Throws
/// CLI::ValidationError-like graft::UsageError for a bad file.
void expand_config(const CLI::App& app, std::vector<std::string>& args);

/// A usage error: printed as one line, exit code 2.
class UsageError : public std::runtime_error {
 public:
  UsageError(const std::string& msg, std::string verb) : std::runtime_error(msg), verb_(std::move(verb)) {}
  const std::string& verb() const { return verb_; }

 private:
  std::string verb_;
};
/// Throws UsageError "'X' is not a graft command; did you mean Y?" for an unknown
/// subcommand name anywhere in the leading words of args.
void check_subcommands(const CLI::App& app, const std::vector<std::string>& args);

// ---- Help generators (helpgen.cpp) -------------------------------------------------

/// A bash completion script for every subcommand and option of `app`.
std::string bash_completion(const CLI::App& app);
/// A man page (troff, section 1) from the help text of `app` and its subcommands.
std::string man_page(const CLI::App& app, const std::string& date);

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
void add_export(CLI::App& app);
void add_launch(CLI::App& app);  ///< graft launch and graft dist-check (cmd_launch.cpp)

}  // namespace graft::cli
