// graft study layers: linear-probe accuracy and LogME/LEEP per layer of one network.
#include "graft/study/layer_study.h"

#include <torch/torch.h>

#include <cmath>
#include <sstream>

#include "graft/analysis/plot.h"
#include "graft/analysis/report.h"
#include "graft/core/check.h"
#include "graft/features/extract.h"
#include "graft/core/files.h"
#include "graft/study/scores.h"
#include "format.h"

namespace graft::study {

std::string LayerStudyResult::table_markdown() const {
  std::ostringstream s;
  s << "| layer | dim | linear probe (%) | LogME |\n|---|---|---|---|\n";
  for (const auto& l : layers)
    s << "| " << l.layer << " | " << l.dim << " | " << pct(l.probe_mean) << " ± " << pct(l.probe_std) << " | "
      << fixed(l.logme, 4) << " |\n";
  s << "\nSpearman correlation of LogME with probe accuracy over the layers: " << fixed(spearman, 3) << "\n";
  if (std::isfinite(leep)) s << "LEEP of the model's output layer on the target: " << fixed(leep, 4) << "\n";
  return s.str();
}

std::string LayerStudyResult::figure_svg() const {
  analysis::Panel a, b;
  a.title = "Linear-probe accuracy per layer";
  a.xlabel = "layer";
  a.ylabel = "accuracy (%)";
  b.title = "LogME per layer (no training)";
  b.xlabel = a.xlabel;
  b.ylabel = "LogME";
  analysis::Series sa, sb;
  sa.name = "probe", sb.name = "LogME";
  for (size_t i = 0; i < layers.size(); ++i) {
    sa.x.push_back(static_cast<double>(i + 1));
    sa.y.push_back(100 * layers[i].probe_mean);
    sa.err.push_back(100 * layers[i].probe_std);
    sb.x.push_back(static_cast<double>(i + 1));
    a.xticks.push_back(static_cast<double>(i + 1));
    a.xtick_labels.push_back(layers[i].layer);
    sb.y.push_back(layers[i].logme);
  }
  a.series.push_back(sa);
  b.series.push_back(sb);
  b.xticks = a.xticks;
  b.xtick_labels = a.xtick_labels;
  return analysis::svg_chart({a, b}, 480, 320);
}

nlohmann::json LayerStudyResult::to_json() const {
  nlohmann::json j;
  j["labels_per_class"] = labels_per_class;
  j["spearman_logme_probe"] = spearman;
  if (std::isfinite(leep)) j["leep"] = leep;
  j["layers"] = nlohmann::json::array();
  for (const auto& l : layers)
    j["layers"].push_back({{"layer", l.layer}, {"dim", l.dim}, {"probe_mean", l.probe_mean}, {"probe_std", l.probe_std},
                           {"logme", l.logme}});
  return j;
}

LayerStudyResult run_layer_study(models::BackbonePtr model, const io::ModelMeta& meta, const data::DatasetPtr& train,
                                 const data::DatasetPtr& test, const features::TransferOptions& opts,
                                 const std::string& out_dir, const std::string& model_name,
                                 const std::function<void(const std::string&)>& progress) {
  opts.validate();
  GRAFT_CHECK(opts.labels_per_class.size() == 1, "study layers takes one --labels-per-class budget, got ",
              opts.labels_per_class.size());
  GRAFT_CHECK(opts.features.layers.size() >= 2, "study layers needs at least 2 layers to compare");
  graft::ensure_dir(out_dir);
  auto tr = features::run_offtheshelf(model, meta, train, test, opts, progress);
  LayerStudyResult res;
  res.labels_per_class = opts.labels_per_class[0];
  // The first seed's labelled examples, as the probe saw them.
  auto sample = res.labels_per_class == 0 ? train : data::labels_per_class(train, res.labels_per_class, opts.seeds[0]);
  auto fsx = features::extract_in_memory(*model, meta, sample, opts.features);
  for (size_t i = 0; i < opts.features.layers.size(); ++i) {
    LayerScore l;
    l.layer = opts.features.layers[i];
    l.dim = fsx.layers[i].size(1);
    for (const auto& c : tr.cells)
      if (c.layer == l.layer) l.probe_mean = c.mean, l.probe_std = c.std;
    l.logme = logme(fsx.layers[i], fsx.labels).score;
    res.layers.push_back(l);
    if (progress) progress("LogME of " + l.layer + ": " + fixed(l.logme, 4));
  }
  std::vector<double> a, b;
  for (const auto& l : res.layers) a.push_back(l.logme), b.push_back(l.probe_mean);
  res.spearman = spearman(a, b);
  // LEEP needs the model's own class probabilities.
  features::ExtractOptions eo = opts.features;
  eo.layers = {model->layer_names().back()};
  eo.pool = "flatten";
  eo.norm = "none";
  eo.tta = "none";
  auto logits = features::extract_in_memory(*model, meta, sample, eo);
  res.leep = leep(torch::softmax(logits.layers[0].to(at::kDouble), 1), logits.labels);

  graft::write_text_atomically(out_dir + "/results.json", res.to_json().dump(2) + "\n");
  graft::write_text_atomically(out_dir + "/table.md", res.table_markdown());
  const auto svg = res.figure_svg();
  graft::write_text_atomically(out_dir + "/layers.svg", svg);
  analysis::HtmlReport rep("Layer study: " + model_name + ", " + std::to_string(sample->size()) +
                           " labelled examples of " + std::to_string(train->num_classes()) + " classes");
  rep.paragraph("Linear probe (" + opts.classifier.loss + ", " +
                (opts.classifier.C > 0 ? "C = " + fixed(opts.classifier.C, 4) : std::string("C by cross-validation")) +
                ") on " +
                (res.labels_per_class == 0 ? std::string("every") : std::to_string(res.labels_per_class)) +
                " labelled example(s) per class, tested on " + test->describe() + ", over " +
                std::to_string(opts.seeds.size()) + " seed(s); LogME on the first seed's labelled examples.");
  std::string seeds;
  for (auto x : opts.seeds) seeds += (seeds.empty() ? "" : ", ") + std::to_string(x);
  rep.paragraph("Protocol: labelled examples drawn from " + train->describe() + " (" +
                (res.labels_per_class == 0 ? std::string("all ") + std::to_string(train->size())
                                           : std::to_string(res.labels_per_class) + " per class, " +
                                                 std::to_string(sample->size()) + " in all") +
                ", one draw per seed; seeds " + seeds + "); features pooled by " + opts.features.pool +
                ", normalised by " + opts.features.norm + "; no network is trained (the probe is a linear "
                "classifier on frozen features). Chance is " + pct(1.0 / static_cast<double>(train->num_classes())) +
                "%.");
  rep.figure(svg, "Linear-probe accuracy (error bars: std over seeds) and LogME per layer");
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < res.layers.size(); ++i) {
    const auto& l = res.layers[i];
    rows.push_back({std::to_string(i + 1), l.layer, std::to_string(l.dim), pct(l.probe_mean) + " ± " + pct(l.probe_std),
                    fixed(l.logme, 4)});
  }
  rep.table({"#", "layer", "dim", "linear probe (%)", "LogME"}, rows, "Per layer");
  rep.paragraph("Spearman rank correlation of LogME with probe accuracy: " + fixed(res.spearman, 3) +
                ". LEEP of the model's output layer on the target: " + fixed(res.leep, 4) + ".");
  rep.save(out_dir + "/report.html");
  return res;
}

}  // namespace graft::study
