#pragma once
/// Adaptation methods as plug-ins: each method is one file holding its name, a one-line
/// help, the options it reads and its objective term; registry.cpp lists them, one line
/// each. `graft adapt --method`, its --help and the parameterised tests iterate over
/// the registry.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "graft/data/dataset.h"
#include "graft/data/transforms.h"
#include "graft/train/term.h"

namespace torch::nn {
class Module;
}

namespace graft::adapt {

/// The knobs a method may read. Each method lists the ones it uses (MethodInfo::options);
/// giving one that the chosen method ignores is an error.
struct MethodOptions {
  double trade_off = 1.0;      ///< weight of the adaptation term ("trade-off")
  double lambda_gamma = 10.0;  ///< GRL schedule: lambda_p = trade_off (2/(1+exp(-gamma p)) - 1) ("lambda-gamma")
  int64_t disc_hidden = 1024;  ///< width of discriminators and adversarial heads ("disc-hidden")
  double threshold = 0.9;      ///< confidence of pseudo-labels ("threshold")
  double temperature = 2.5;    ///< MCC's softmax temperature ("temperature")
  double margin = 4.0;         ///< MDD's margin gamma ("margin")
};

/// A method for one run: an objective term plus the hooks some methods need. The
/// trainer forwards the target batch with the source one when forwards_paired().
class Method : public train::Term {
 public:
  /// False for methods that train like source-only (source-only, AdaBN): no term is added.
  virtual bool has_term() const { return true; }
  /// Called before each epoch's target evaluation, and before the final one (AdaBN
  /// re-estimates BatchNorm statistics on the target here).
  virtual void before_target_eval(models::Backbone& /*model*/, const data::DatasetPtr& /*target*/,
                                  const data::Pipeline& /*pipe*/, uint64_t /*seed*/, int /*workers*/) {}
  /// Called after it, before training goes on (AdaBN puts the source statistics back).
  virtual void after_target_eval(models::Backbone& /*model*/) {}
  /// Parameters that may train (empty function: all). TENT trains BatchNorm's affine ones only.
  virtual std::function<bool(const std::string&)> param_filter(const models::Backbone& /*model*/) const { return {}; }
  /// Freezes layers in a per-layer multiplier plan; tap is the feature layer's index
  /// (SHOT freezes the classifier above it: the source hypothesis).
  virtual void adjust_plan(std::vector<double>& /*mult*/, size_t /*tap*/) const {}
  train::TermOutput loss(train::StepContext&) override { return {}; }
};

/// One line of the registry.
struct MethodInfo {
  std::string name;
  std::string help;                  ///< one line for --help
  bool source_free = false;          ///< reads only the target and a source-trained model
  bool needs_batchnorm = false;      ///< the model must have BatchNorm layers
  std::vector<std::string> options;  ///< names of the MethodOptions it reads, as on the command line
  double default_trade_off = 1.0;    ///< used when --trade-off is not given
  std::function<std::shared_ptr<Method>(const MethodOptions&)> make;
};

/// Every method, in the order --help lists them.
const std::vector<MethodInfo>& methods();
/// The method of that name; throws graft::Error listing the registry's names.
const MethodInfo& find_method(const std::string& name);
/// Names of all methods, comma-separated.
std::string method_names();
/// Every option some method reads (for the "does the method use it" check).
std::vector<std::string> all_method_options();

/// True when a parameter name belongs to a BatchNorm layer's affine pair (a module
/// with running statistics beside its weight and bias).
bool is_batchnorm_affine(const models::Backbone& model, const std::string& param);
/// True when the model has a BatchNorm layer (a running_mean buffer).
bool has_batchnorm(const models::Backbone& model);
/// The parameters and buffers of a module by name (a method's Term::save), and back.
train::TensorMap named(const torch::nn::Module& m);
void load_named(torch::nn::Module& m, const train::TensorMap& state);

// The methods (one file each under src/adapt/methods/).
MethodInfo source_only_method();
MethodInfo adabn_method();
MethodInfo dann_method();
MethodInfo cdan_method();
MethodInfo coral_method();
MethodInfo mmd_method();
MethodInfo self_train_method();
MethodInfo mcc_method();
MethodInfo mdd_method();
MethodInfo shot_method();
MethodInfo tent_method();

}  // namespace graft::adapt
