#include "graft/study/transferability.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <numeric>
#include <set>
#include <sstream>

#include "graft/analysis/plot.h"
#include "graft/analysis/report.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/core/stats.h"
#include "graft/features/extract.h"
#include "graft/io/checkpoint.h"
#include "graft/core/files.h"
#include "graft/models/zoo.h"
#include "graft/study/scores.h"
#include "format.h"

namespace graft::study {
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kVariants = {"BnB", "BnB+", "AnB", "AnB+"};

std::string pm(const Stat& s) { return s.n == 0 ? "n/a" : pct(s.mean) + " ± " + pct(s.std); }

/// Yosinski's names: A3B+, B2B, ...
std::string run_name(const std::string& variant, int64_t n) {
  if (n == 0) return variant;
  const bool plus = variant.back() == '+';
  return std::string(1, variant[0]) + std::to_string(n) + "B" + (plus ? "+" : "");
}

/// Lists the top-level keys in which two configurations differ.
std::string differences(const nlohmann::json& a, const nlohmann::json& b) {
  std::string out;
  std::set<std::string> keys;
  for (auto& [k, v] : a.items()) keys.insert(k);
  for (auto& [k, v] : b.items()) keys.insert(k);
  for (const auto& k : keys) {
    auto va = a.contains(k) ? a[k].dump() : "(none)", vb = b.contains(k) ? b[k].dump() : "(none)";
    if (va != vb) out += (out.empty() ? "" : "; ") + k + ": " + vb + " in the folder, " + va + " now";
  }
  return out;
}

std::string join_ids(const std::vector<int64_t>& v) {
  std::string s;
  for (auto x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

}  // namespace

Stat stat_of(const std::vector<double>& v) {
  const auto m = mean_std(v);
  return {m.mean, m.std, m.n};
}

std::vector<std::string> transferable_layers(const models::Backbone& model) {
  std::vector<std::string> with_params;
  std::set<std::string> seen;
  for (auto& [n, p] : model.named_parameters()) seen.insert(models::layer_of_param(n));
  for (const auto& l : model.layer_names())
    if (seen.count(l)) with_params.push_back(l);
  if (!with_params.empty()) with_params.pop_back();  // the classifier is never transferred
  return with_params;
}

void TransferabilityOptions::validate() const {
  GRAFT_CHECK(!classes_a.empty() && !classes_b.empty(),
              "--split: half ", classes_a.empty() ? "A" : "B", " is empty; give two class lists, e.g. 0-4/5-9");
  for (auto c : classes_a)
    GRAFT_CHECK(std::find(classes_b.begin(), classes_b.end(), c) == classes_b.end(), "--split: class ", c,
                " is in both halves; the halves must not overlap (e.g. 0-4/5-9)");
  GRAFT_CHECK(classes_a.size() >= 2 && classes_b.size() >= 2, "--split: each half needs at least 2 classes");
  GRAFT_CHECK(!seeds.empty(), "--seeds is empty; give e.g. 1,2,3");
  for (auto n : ns) GRAFT_CHECK(n >= 1, "--n: layer counts start at 1, got ", n);
  GRAFT_CHECK(per_class >= 0, "--per-class must be >= 0 (0: every training image)");
  GRAFT_CHECK(score_examples >= 20, "--score-examples must be >= 20");
  const auto zoo = models::zoo_names();
  GRAFT_CHECK(std::any_of(zoo.begin(), zoo.end(),
                          [&](const std::string& z) { return arch == z || arch.rfind(z + ":", 0) == 0; }),
              "--model '", arch, "': the study retrains every network from fresh weights, so it needs a zoo "
              "architecture (e.g. convnet6), not a file");
  auto t = train;
  t.out_dir = "x";
  t.validate();
}

nlohmann::json TransferabilityOptions::to_json() const {
  auto t = train.to_json();
  for (auto k : {"out_dir", "workers", "device", "seed", "cache", "checkpoint_every"}) t.erase(k);
  return {{"arch", arch},     {"classes_a", classes_a},   {"classes_b", classes_b},
          {"seeds", seeds},   {"per_class", per_class},   {"score_examples", score_examples},
          {"preprocess", preprocess}, {"train", t}};
}

bool near_chance(double acc, int64_t classes) {
  if (classes < 2) return false;
  const double chance = 1.0 / static_cast<double>(classes);
  return acc < chance + 0.1 * (1 - chance);
}

Stat TransferabilityResult::cell(const std::string& variant, int64_t n) const {
  std::vector<double> v;
  for (const auto& r : runs)
    if (r.variant == variant && r.n == n) v.push_back(r.test_acc);
  return stat_of(v);
}

std::vector<TransferabilityResult::Finding> TransferabilityResult::findings() const {
  std::vector<Finding> f;
  const auto base = cell("baseB", 0);
  if (ns.empty() || base.n == 0) return f;
  const int64_t top = ns.back();
  auto gap = [&](const std::string& v, int64_t n) { return 100 * (cell(v, n).mean - base.mean); };
  {  // 1. first layers are general
    Finding x;
    std::string low;
    for (auto n : ns)
      if (n <= 2) low += (low.empty() ? "" : ", ") + std::to_string(n);
    x.claim = "Lower layers are general: AnB at " + (low.empty() ? std::string("n <= 2 (not run)") : "n = " + low) +
              " is as good as baseB (within 1 point)";
    double worst = 1e9;
    std::ostringstream ev;
    for (auto n : ns)
      if (n <= 2) {
        worst = std::min(worst, gap("AnB", n));
        ev << "AnB n=" << n << ": " << fixed(gap("AnB", n), 2) << " points vs baseB; ";
      }
    x.holds = worst != 1e9 && worst >= -1.0;
    x.evidence = ev.str().empty() ? "no n <= 2 in the study" : ev.str();
    f.push_back(x);
  }
  {  // 2. top layers are specific
    Finding x;
    x.claim = "Higher layers are specific: AnB at the top n falls more than 1 point below baseB";
    x.holds = gap("AnB", top) < -1.0;
    x.evidence = "AnB n=" + std::to_string(top) + ": " + fixed(gap("AnB", top), 2) + " points vs baseB";
    f.push_back(x);
  }
  {  // 3. fragile co-adaptation in the middle
    Finding x;
    x.claim = "Fragile co-adaptation: frozen BnB drops more than 1 point below baseB at some middle n "
              "(2 <= n < top) and recovers at the top";
    double worst = 1e9;
    int64_t at = -1;
    for (auto n : ns)
      if (n >= 2 && n < top && gap("BnB", n) < worst) worst = gap("BnB", n), at = n;
    x.holds = at > 0 && worst < -1.0 && gap("BnB", top) > worst;
    x.evidence = at > 0 ? "lowest BnB at n=" + std::to_string(at) + ": " + fixed(worst, 2) + " points; at n=" +
                              std::to_string(top) + ": " + fixed(gap("BnB", top), 2) + " points"
                        : "no middle n in the study";
    f.push_back(x);
  }
  {  // 4. fine-tuning repairs co-adaptation
    Finding x;
    x.claim = "Fine-tuning repairs it: BnB+ stays within 1 point of baseB at every n";
    double worst = 1e9;
    for (auto n : ns) worst = std::min(worst, gap("BnB+", n));
    x.holds = worst >= -1.0;
    x.evidence = "lowest BnB+: " + fixed(worst, 2) + " points vs baseB";
    f.push_back(x);
  }
  {  // 5. transfer plus fine-tuning beats training from scratch
    Finding x;
    x.claim = "Transferring and fine-tuning beats training from scratch: AnB+ above baseB on average over n";
    double sum = 0;
    int64_t above = 0;
    for (auto n : ns) sum += gap("AnB+", n), above += gap("AnB+", n) > 0;
    const double mean = sum / static_cast<double>(ns.size());
    x.holds = mean > 0;
    x.evidence = "AnB+ minus baseB: " + fixed(mean, 2) + " points on average, above at " + std::to_string(above) +
                 " of " + std::to_string(ns.size()) + " n";
    f.push_back(x);
  }
  // Base networks at chance have learnt nothing to transfer or to compare against.
  const auto base_a = cell("baseA", 0);
  const bool a_chance = base_a.n > 0 && near_chance(base_a.mean, classes_a);
  const bool b_chance = near_chance(base.mean, classes_b);
  if (a_chance || b_chance) {
    std::string why = "inconclusive: ";
    if (b_chance) why += "baseB " + pct(base.mean) + "% is near chance (" + pct(1.0 / static_cast<double>(classes_b)) + "%)";
    if (a_chance)
      why += std::string(b_chance ? "; " : "") + "baseA " + pct(base_a.mean) + "% is near chance (" +
             pct(1.0 / static_cast<double>(classes_a)) + "%)";
    why += "; train longer or on more examples. ";
    for (auto& x : f) x.inconclusive = true, x.evidence = why + x.evidence;
  }
  return f;
}

std::string TransferabilityResult::table_markdown() const {
  std::ostringstream s;
  s << "| n | last copied layer | BnB | BnB+ | AnB | AnB+ | LogME of baseA's layer on B |\n|---|---|---|---|---|---|---|\n";
  s << "| 0 | (baseB: trained on B from scratch) | " << pm(cell("baseB", 0)) << " | | | | |\n";
  for (size_t i = 0; i < ns.size(); ++i) {
    const auto n = ns[i];
    s << "| " << n << " | " << layers[static_cast<size_t>(n - 1)];
    for (const auto& v : kVariants) s << " | " << pm(cell(v, n));
    s << " | " << (i < logme_a.size() ? fixed(logme_a[i], 4) : "") << " |\n";
  }
  s << "\nbaseA (on A's test images): " << pm(cell("baseA", 0)) << "\n";
  s << "Spearman correlation of LogME with accuracy over n: AnB " << fixed(spearman_anb, 3) << ", AnB+ "
    << fixed(spearman_anb_plus, 3) << "\n";
  return s.str();
}

std::string TransferabilityResult::figure_svg() const {
  analysis::Panel acc, score;
  acc.title = "Test accuracy on B against layers copied";
  acc.xlabel = "n (layers copied from the base network)";
  acc.ylabel = "accuracy (%)";
  auto base = cell("baseB", 0);
  analysis::Series b{"baseB", {0.0}, {100 * base.mean}, {100 * base.std}, true, false};
  acc.series.push_back(b);
  if (!ns.empty()) {  // baseB's level across n, the reference every variant is read against
    analysis::Series level{"baseB level", {0.0, static_cast<double>(ns.back())}, {100 * base.mean, 100 * base.mean}, {}};
    level.reference = true;
    acc.series.push_back(level);
  }
  acc.robust_y = true;  // one failed run must not flatten the others onto one line
  acc.xticks.push_back(0);
  acc.xtick_labels.push_back("0 (baseB)");
  for (auto n : ns) {
    acc.xticks.push_back(static_cast<double>(n));
    acc.xtick_labels.push_back(std::to_string(n) + " " + layers[static_cast<size_t>(n - 1)]);
  }
  acc.xlabel = "n: layers copied, up to and including this one";
  const double offset[] = {-0.15, -0.05, 0.05, 0.15};
  for (size_t v = 0; v < kVariants.size(); ++v) {
    analysis::Series s;
    s.name = kVariants[v];
    s.markers_only = true;
    for (auto n : ns) {
      auto c = cell(kVariants[v], n);
      if (c.n == 0) continue;
      s.x.push_back(static_cast<double>(n) + offset[v]);
      s.y.push_back(100 * c.mean);
      s.err.push_back(100 * c.std);
    }
    acc.series.push_back(s);
  }
  score.title = "LogME of baseA's layer-n features on B (no training)";
  score.xlabel = "n";
  score.ylabel = "LogME";
  analysis::Series l;
  l.name = "LogME";
  for (size_t i = 0; i < ns.size() && i < logme_a.size(); ++i) {
    l.x.push_back(static_cast<double>(ns[i]));
    l.y.push_back(logme_a[i]);
  }
  score.series.push_back(l);
  for (auto n : ns) {
    score.xticks.push_back(static_cast<double>(n));
    score.xtick_labels.push_back(std::to_string(n) + " " + layers[static_cast<size_t>(n - 1)]);
  }
  score.xlabel = "n: baseA's features after this layer";
  return analysis::svg_chart({acc, score}, 520, 340);
}

nlohmann::json TransferabilityResult::to_json() const {
  nlohmann::json j;
  j["layers"] = layers;
  j["ns"] = ns;
  j["logme_a"] = logme_a;
  j["spearman_logme_anb"] = spearman_anb;
  j["spearman_logme_anb_plus"] = spearman_anb_plus;
  j["runs"] = nlohmann::json::array();
  for (const auto& r : runs)
    j["runs"].push_back({{"variant", r.variant}, {"n", r.n}, {"seed", r.seed}, {"test_acc", r.test_acc}, {"dir", r.dir}});
  j["cells"] = nlohmann::json::array();
  auto add = [&](const std::string& v, int64_t n) {
    auto c = cell(v, n);
    j["cells"].push_back({{"variant", v}, {"n", n}, {"mean", c.mean}, {"std", c.std}, {"seeds", c.n}});
  };
  add("baseA", 0);
  add("baseB", 0);
  for (auto n : ns)
    for (const auto& v : kVariants) add(v, n);
  j["findings"] = nlohmann::json::array();
  for (const auto& f : findings())
    j["findings"].push_back(
        {{"claim", f.claim}, {"holds", f.holds}, {"verdict", f.verdict()}, {"evidence", f.evidence}});
  return j;
}

TransferabilityResult run_transferability(const data::DatasetPtr& train, const data::DatasetPtr& test,
                                          const TransferabilityOptions& opts, const std::string& out_dir,
                                          const std::function<void(const std::string&)>& progress) {
  opts.validate();
  auto say = [&](const std::string& s) {
    if (progress) progress(s);
  };
  // Halves (select_classes names a class outside the dataset).
  auto train_a = data::select_classes(train, opts.classes_a), train_b = data::select_classes(train, opts.classes_b);
  auto test_a = data::select_classes(test, opts.classes_a), test_b = data::select_classes(test, opts.classes_b);
  if (opts.per_class > 0) {
    train_a = data::labels_per_class(train_a, opts.per_class, 0);
    train_b = data::labels_per_class(train_b, opts.per_class, 0);
  }
  GRAFT_CHECK(train_a->size() > 0 && train_b->size() > 0 && test_a->size() > 0 && test_b->size() > 0,
              "transfer study: a half has no training or test images (", train_a->size(), ", ", train_b->size(), ", ",
              test_a->size(), ", ", test_b->size(), ")");
  const auto shape = train->input_shape();
  auto probe = models::create_model(opts.arch, shape, static_cast<int64_t>(opts.classes_b.size()), 0);
  TransferabilityResult res;
  res.classes_a = static_cast<int64_t>(opts.classes_a.size());
  res.classes_b = static_cast<int64_t>(opts.classes_b.size());
  res.layers = transferable_layers(*probe);
  const auto N = static_cast<int64_t>(res.layers.size());
  GRAFT_CHECK(N >= 1, "--model ", opts.arch, " has no transferable layer");
  std::string names;
  for (const auto& l : res.layers) names += (names.empty() ? "" : ", ") + l;
  res.ns = opts.ns;
  if (res.ns.empty())
    for (int64_t n = 1; n <= N; ++n) res.ns.push_back(n);
  std::sort(res.ns.begin(), res.ns.end());
  res.ns.erase(std::unique(res.ns.begin(), res.ns.end()), res.ns.end());
  for (auto n : res.ns)
    GRAFT_CHECK(n <= N, "--n ", n, " is beyond ", opts.arch, "'s ", N, " transferable layers (", names, ")");

  // The folder belongs to one configuration.
  graft::ensure_dir(out_dir);
  auto cfg = opts.to_json();
  cfg["ns"] = res.ns;
  cfg["train_data"] = train->describe();
  cfg["test_data"] = test->describe();
  const auto cfg_path = out_dir + "/study.json";
  if (fs::exists(cfg_path)) {
    std::ifstream in(cfg_path);
    nlohmann::json old;
    try {
      in >> old;
    } catch (const std::exception& e) {
      GRAFT_FAIL(cfg_path, " is unreadable (", e.what(), "); delete it or use another --out");
    }
    auto diff = differences(cfg, old);
    GRAFT_CHECK(diff.empty(), out_dir, " holds a study of another configuration (", diff,
                "); resume it with the same options or give another --out");
    say("resuming the study in " + out_dir);
  } else {
    graft::write_text_atomically(cfg_path, cfg.dump(2) + "\n");
  }

  auto meta_for = [&](const data::DatasetPtr& d) {
    io::ModelMeta m;
    m.arch = opts.arch;
    m.input_shape = shape;
    m.class_names = d->class_names();
    m.preprocess = opts.preprocess;
    return m;
  };
  const auto meta_a = meta_for(train_a), meta_b = meta_for(train_b);
  const int64_t total = static_cast<int64_t>(opts.seeds.size()) * (2 + 4 * static_cast<int64_t>(res.ns.size()));
  int64_t done = 0, trained = 0;
  double trained_seconds = 0;
  auto run_one = [&](const std::string& variant, int64_t n, uint64_t seed, uint64_t run_seed,
                     const std::string& base_ckpt, bool frozen) {
    const bool on_a = variant == "baseA";
    const auto dir = out_dir + "/seed-" + std::to_string(seed) + "/" + run_name(variant, n);
    StudyRun r{variant, n, seed, 0, dir};
    ++done;
    const auto result_path = dir + "/result.json";
    if (fs::exists(result_path)) {
      std::ifstream in(result_path);
      auto j = nlohmann::json::parse(in, nullptr, false);
      if (!j.is_discarded() && j.contains("test")) {
        r.test_acc = j["test"]["accuracy"].get<double>();
        return r;
      }
    }
    const auto& meta = on_a ? meta_a : meta_b;
    auto model = models::create_model(opts.arch, shape, meta.num_classes(), run_seed);
    auto cfg_t = opts.train;
    cfg_t.out_dir = dir;
    cfg_t.seed = run_seed;
    cfg_t.resume = true;
    cfg_t.quiet = true;
    if (n > 0) {
      auto base = io::load_checkpoint(base_ckpt).model;
      std::set<std::string> copied(res.layers.begin(), res.layers.begin() + n);
      io::copy_weights(*base, *model, &copied);
      // AnB / BnB: the copied layers stay as they are (the layer plan freezes them by name).
      if (frozen) cfg_t.policy.freeze_through = res.layers[static_cast<size_t>(n - 1)];
    }
    auto t0 = std::chrono::steady_clock::now();
    train::Trainer trainer(model, meta, cfg_t);
    auto tr = trainer.fit(on_a ? train_a : train_b, nullptr, on_a ? test_a : test_b);
    r.test_acc = tr.test.accuracy;
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    trained_seconds += sec, ++trained;
    // Runs still to do take about as long as the ones trained so far (frozen ones are faster).
    const double eta = trained_seconds / static_cast<double>(trained) * static_cast<double>(total - done);
    say("[" + std::to_string(done) + "/" + std::to_string(total) + "] seed " + std::to_string(seed) + " " +
        run_name(variant, n) + ": test accuracy " + pct(r.test_acc) + "% (" + fixed(sec, 1) + " s, ETA " +
        format_duration(eta) + ")");
    return r;
  };

  std::vector<std::vector<double>> logme_per_seed;
  for (auto seed : opts.seeds) {
    const uint64_t s0 = seed * 1000;
    res.runs.push_back(run_one("baseA", 0, seed, s0 + 1, "", false));
    res.runs.push_back(run_one("baseB", 0, seed, s0 + 2, "", false));
    const auto ckpt_a = res.runs[res.runs.size() - 2].dir + "/model.ckpt";
    const auto ckpt_b = res.runs.back().dir + "/model.ckpt";
    for (auto n : res.ns)
      for (size_t v = 0; v < kVariants.size(); ++v) {
        const auto& name = kVariants[v];
        res.runs.push_back(run_one(name, n, seed, s0 + 10 + 4 * static_cast<uint64_t>(n) + v,
                                   name[0] == 'A' ? ckpt_a : ckpt_b, name.back() != '+'));
      }
    // LogME of baseA's layers on B's training images (cached per seed).
    const auto score_path = out_dir + "/seed-" + std::to_string(seed) + "/logme.json";
    std::vector<double> per_n;
    if (fs::exists(score_path)) {
      std::ifstream in(score_path);
      auto j = nlohmann::json::parse(in, nullptr, false);
      if (!j.is_discarded() && j.contains("logme") && j["logme"].size() == res.ns.size())
        per_n = j["logme"].get<std::vector<double>>();
    }
    if (per_n.empty()) {
      int64_t q = opts.score_examples / static_cast<int64_t>(opts.classes_b.size());
      if (opts.per_class > 0) q = std::min(q, opts.per_class);
      auto sample = data::labels_per_class(train_b, std::max<int64_t>(q, 2), seed);
      auto ck = io::load_checkpoint(ckpt_a);
      features::ExtractOptions eo;
      eo.pool = "flatten";
      eo.workers = opts.train.workers;
      for (auto n : res.ns) eo.layers.push_back(res.layers[static_cast<size_t>(n - 1)]);
      auto fsx = features::extract_in_memory(*ck.model, ck.meta, sample, eo);
      for (size_t i = 0; i < res.ns.size(); ++i) per_n.push_back(logme(fsx.layers[i], fsx.labels).score);
      graft::write_text_atomically(score_path, nlohmann::json({{"logme", per_n}, {"examples", sample->size()}}).dump(2));
      say("seed " + std::to_string(seed) + ": LogME of baseA's layers on B computed on " +
          std::to_string(sample->size()) + " images");
    }
    logme_per_seed.push_back(per_n);
  }
  res.logme_a.assign(res.ns.size(), 0.0);
  for (const auto& v : logme_per_seed)
    for (size_t i = 0; i < v.size(); ++i) res.logme_a[i] += v[i] / static_cast<double>(logme_per_seed.size());
  if (res.ns.size() >= 2) {
    std::vector<double> anb, anbp;
    for (auto n : res.ns) anb.push_back(res.cell("AnB", n).mean), anbp.push_back(res.cell("AnB+", n).mean);
    res.spearman_anb = spearman(res.logme_a, anb);
    res.spearman_anb_plus = spearman(res.logme_a, anbp);
  } else {
    res.spearman_anb = res.spearman_anb_plus = std::numeric_limits<double>::quiet_NaN();
  }

  // Outputs.
  graft::write_text_atomically(out_dir + "/results.json", res.to_json().dump(2) + "\n");
  graft::write_text_atomically(out_dir + "/table.md", res.table_markdown());
  const auto svg = res.figure_svg();
  graft::write_text_atomically(out_dir + "/transferability.svg", svg);
  analysis::HtmlReport rep("Transferability study: " + opts.arch + ", halves A = {" + join_ids(opts.classes_a) +
                           "} and B = {" + join_ids(opts.classes_b) + "}, " + std::to_string(train_a->size()) + " + " +
                           std::to_string(train_b->size()) + " training examples");
  std::ostringstream about;
  about << "Data: " << train->describe() << ", of which " << train_a->size() << " training examples of A and "
        << train_b->size() << " of B are used ("
        << (opts.per_class > 0 ? std::to_string(opts.per_class) + " per class, one draw shared by every seed"
                               : std::string("every example of each class"))
        << "); tested on " << test_a->size() << " test examples of A and " << test_b->size() << " of B from "
        << test->describe() << ". Transferable layers of " << opts.arch << ": " << names
        << ". AnB: the first n layers of baseA copied and frozen, the rest re-initialised and trained on B; "
           "AnB+: the same, fine-tuned; BnB and BnB+: the same from baseB. Test accuracy on B's test images, "
           "mean ± std over seeds.";
  std::ostringstream protocol;
  const auto& t = opts.train;
  protocol << "Protocol: every network trained for " << t.epochs << " epochs, batch " << t.batch_size << ", "
           << t.optimizer << " (lr " << t.lr << (t.optimizer == "sgd" ? ", momentum " + fixed(t.momentum, 2) : "")
           << ", weight decay " << t.weight_decay << ", " << t.schedule << " schedule)"
           << (t.augment.empty() ? std::string(", no augmentation") : ", augmentation " + t.augment) << "; "
           << opts.seeds.size() << " seed(s): ";
  for (size_t i = 0; i < opts.seeds.size(); ++i) protocol << (i ? ", " : "") << opts.seeds[i];
  protocol << "; n = " << join_ids(res.ns) << "; LogME on up to " << opts.score_examples
           << " training examples of B. Chance is " << pct(1.0 / static_cast<double>(res.classes_b)) << "% on B.";
  rep.paragraph(protocol.str());
  rep.paragraph(about.str());
  rep.figure(svg, "Accuracy on B against the number of layers copied (error bars: std over seeds), and LogME");
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"0", "baseB", pm(res.cell("baseB", 0)), "", "", "", ""});
  for (size_t i = 0; i < res.ns.size(); ++i) {
    auto n = res.ns[i];
    std::vector<std::string> r{std::to_string(n), res.layers[static_cast<size_t>(n - 1)]};
    for (const auto& v : kVariants) r.push_back(pm(res.cell(v, n)));
    r.push_back(fixed(res.logme_a[i], 4));
    rows.push_back(r);
  }
  rep.table({"n", "last copied layer", "BnB", "BnB+", "AnB", "AnB+", "LogME (baseA layer n, on B)"}, rows,
            "Test accuracy on B (%)");
  std::vector<std::vector<std::string>> frows;
  for (const auto& f : res.findings()) frows.push_back({f.claim, f.verdict(), f.evidence});
  rep.table({"finding of Yosinski et al. 2014", "here", "numbers"}, frows, "The paper's findings");
  rep.paragraph("Spearman rank correlation of LogME with measured accuracy over n: AnB " +
                fixed(res.spearman_anb, 3) + ", AnB+ " + fixed(res.spearman_anb_plus, 3) + ". baseA on A: " +
                pm(res.cell("baseA", 0)) + "%.");
  rep.save(out_dir + "/report.html");
  return res;
}

}  // namespace graft::study
