#pragma once
/// Layer-by-layer transfer studies. run_transferability reproduces the experiment of
/// Yosinski et al. (NIPS 2014) on a split of one dataset's classes into halves A and B;
/// run_layer_study (graft/study/layer_study.h) measures, for one pretrained model and one
/// target, the linear-probe accuracy of every layer beside a training-free score (LogME).
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "graft/data/dataset.h"
#include "graft/features/offtheshelf.h"
#include "graft/models/backbone.h"
#include "graft/train/trainer.h"

namespace graft::study {

/// Options of `graft study transferability`.
struct TransferabilityOptions {
  std::string arch = "convnet6";       ///< a zoo architecture (fresh initialisations are needed)
  std::vector<int64_t> classes_a, classes_b;
  std::vector<int64_t> ns;             ///< layers copied; empty: 1 .. every transferable layer
  std::vector<uint64_t> seeds = {1, 2, 3};
  int64_t per_class = 0;               ///< training examples per class of each half (0: all)
  int64_t score_examples = 2000;       ///< B training examples for the LogME score per layer
  std::string preprocess = "normalize=0.5:0.5";
  train::TrainConfig train;            ///< every run's recipe; out_dir and seed are set per run
  /// Throws graft::Error naming the bad option (overlapping or empty halves, ...).
  void validate() const;
  /// The configuration a study folder is tied to (compared on resume).
  nlohmann::json to_json() const;
};

/// One trained network of the study.
struct StudyRun {
  std::string variant;  ///< baseA, baseB, AnB, AnB+, BnB, BnB+
  int64_t n = 0;        ///< layers copied (0 for the base networks)
  uint64_t seed = 0;
  double test_acc = 0;  ///< on the test images of half B (half A for baseA)
  std::string dir;
};

/// Mean and sample standard deviation over seeds.
struct Stat {
  double mean = 0, std = 0;
  int64_t n = 0;
};
Stat stat_of(const std::vector<double>& v);

/// True when accuracy `acc` of a `classes`-way classifier is within a tenth of the way
/// from chance (1/classes) to perfect: such a network has not learnt its task, and any
/// comparison built on it says nothing.
bool near_chance(double acc, int64_t classes);

struct TransferabilityResult {
  std::vector<std::string> layers;     ///< the transferable layers, in order (n counts them)
  int64_t classes_a = 0, classes_b = 0;  ///< classes in each half (0: unknown, no chance check)
  std::vector<int64_t> ns;
  std::vector<StudyRun> runs;
  /// LogME of baseA's layer-n features (flattened) on half B's training images, per n
  /// (mean over seeds), and Spearman correlations of it with AnB and AnB+ accuracy over n.
  std::vector<double> logme_a;
  double spearman_anb = 0, spearman_anb_plus = 0;
  /// Mean and spread of one variant at one n over seeds (baseB: n = 0).
  Stat cell(const std::string& variant, int64_t n) const;
  /// The paper's findings, each with the numbers that decide it here. Claims cite only the
  /// n that were run; every finding is inconclusive when baseA or baseB is near chance.
  struct Finding {
    std::string claim, evidence;
    bool holds = false;
    /// The base networks are near chance (see near_chance): the numbers cannot decide.
    bool inconclusive = false;
    /// "holds", "does not hold" or "inconclusive".
    std::string verdict() const { return inconclusive ? "inconclusive" : holds ? "holds" : "does not hold"; }
  };
  std::vector<Finding> findings() const;
  std::string table_markdown() const;
  /// Accuracy against n, one marker per variant (mean, error bars = std over seeds), and
  /// LogME against n: the layout of the paper's Figure 2.
  std::string figure_svg() const;
  nlohmann::json to_json() const;
};

/// Runs (or resumes) the study in out_dir: per seed baseA and baseB, then AnB, AnB+, BnB
/// and BnB+ for every n; finished runs are read back, an interrupted one resumes from its
/// checkpoint. Writes study.json (the configuration; a folder made by another one is
/// refused), results.json, table.md, transferability.svg and report.html.
TransferabilityResult run_transferability(const data::DatasetPtr& train, const data::DatasetPtr& test,
                                          const TransferabilityOptions& opts, const std::string& out_dir,
                                          const std::function<void(const std::string&)>& progress = {});

/// The layers of a model that have parameters, except the last one (the classifier):
/// the layers a transfer study can copy.
std::vector<std::string> transferable_layers(const models::Backbone& model);

}  // namespace graft::study
