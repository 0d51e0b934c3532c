#pragma once
/// `graft study layers`: for one pretrained model and one target, the linear-probe accuracy
/// of every layer beside training-free transferability scores (LogME per layer, LEEP of
/// the output layer).
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "graft/data/dataset.h"
#include "graft/features/offtheshelf.h"
#include "graft/models/backbone.h"

namespace graft::study {

/// What `graft study layers` measures for one layer.
struct LayerScore {
  std::string layer;
  int64_t dim = 0;
  double probe_mean = 0, probe_std = 0;  ///< linear-probe test accuracy over seeds
  double logme = 0;                      ///< on the labelled training examples (first seed)
};
struct LayerStudyResult {
  std::vector<LayerScore> layers;
  int64_t labels_per_class = 0;
  double spearman = 0;  ///< rank correlation of LogME with probe accuracy over the layers
  double leep = 0;      ///< LEEP of the model's own output layer on the target (NaN if not computed)
  std::string table_markdown() const;
  std::string figure_svg() const;
  nlohmann::json to_json() const;
};

/// Linear probe of every layer in opts.features.layers (one label budget, several seeds)
/// and LogME of the same features on the first seed's labelled examples; writes
/// results.json, table.md, layers.svg and report.html to out_dir.
LayerStudyResult run_layer_study(models::BackbonePtr model, const io::ModelMeta& meta, const data::DatasetPtr& train,
                                 const data::DatasetPtr& test, const features::TransferOptions& opts,
                                 const std::string& out_dir, const std::string& model_name,
                                 const std::function<void(const std::string&)>& progress = {});

}  // namespace graft::study
