// Transferability scores, the HTML report and the `graft study` commands.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "graft/analysis/plot.h"
#include "graft/analysis/report.h"
#include "graft/core/check.h"
#include "graft/io/checkpoint.h"
#include "graft/study/scores.h"
#include "graft/study/transferability.h"
#include "test_util.h"

using namespace graft;

namespace {

/// log N(y; 0, I/beta + F F^T/alpha) / N, computed directly (Cholesky).
double direct_evidence(const at::Tensor& f, const at::Tensor& y, double alpha, double beta) {
  auto F = f.to(at::kDouble);
  const int64_t n = F.size(0);
  auto C = torch::eye(n, at::kDouble) / beta + F.mm(F.t()) / alpha;
  auto L = torch::linalg_cholesky(C);
  auto z = torch::linalg_solve_triangular(L, y.to(at::kDouble).reshape({n, 1}), /*upper=*/false);
  const double logdet = 2 * L.diagonal().log().sum().item<double>();
  return (-0.5 * z.pow(2).sum().item<double>() - 0.5 * logdet - 0.5 * n * std::log(2 * M_PI)) / n;
}

std::string read(const std::string& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Renders a page in headless Chromium and returns the DOM after its scripts ran ("" and a
/// skip reason when no Chromium is installed; scripts/setup.sh installs it and the test
/// suite then requires it through GRAFT_REQUIRE_CHROMIUM=1).
std::string render(const std::string& html_path, std::string* skip) {
  std::string bin;
  for (const char* c : {"chromium", "chromium-browser", "google-chrome"})
    if (test::run(std::string("command -v ") + c + " >/dev/null 2>&1").code == 0) {
      bin = c;
      break;
    }
  if (bin.empty()) {
    *skip = "no chromium on PATH (scripts/setup.sh installs Debian's chromium)";
    return "";
  }
  test::TempDir profile;
  auto r = test::run(bin + " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run "
                           "--user-data-dir=" + profile.path() + " --virtual-time-budget=3000 --dump-dom 'file://" +
                     html_path + "' 2>/dev/null");
  EXPECT_EQ(r.code, 0) << r.out.substr(0, 2000);
  return r.out;
}

void expect_rendered(const std::string& html_path, int figures, int tables) {
  std::string skip;
  auto dom = render(html_path, &skip);
  if (!skip.empty()) {
    if (std::getenv("GRAFT_REQUIRE_CHROMIUM")) {
      ADD_FAILURE() << skip;
      return;
    }
    GTEST_SKIP() << skip;
  }
  EXPECT_NE(dom.find("data-figures=\"" + std::to_string(figures) + "\""), std::string::npos) << dom.substr(0, 600);
  EXPECT_NE(dom.find("data-tables=\"" + std::to_string(tables) + "\""), std::string::npos) << dom.substr(0, 600);
  EXPECT_NE(dom.find("<svg"), std::string::npos);
  EXPECT_NE(dom.find("<table"), std::string::npos);
}

}  // namespace

TEST(Study, LogMEReachesTheEvidenceMaximumOfTheGaussianModel) {
  torch::manual_seed(0);
  // Both code paths: more examples than dimensions, and fewer.
  for (auto shape : {std::vector<int64_t>{60, 5}, std::vector<int64_t>{20, 40}}) {
    auto f = torch::randn(shape, at::kDouble);
    auto y = (f.narrow(1, 0, 3) + 0.5 * torch::randn({shape[0], 3}, at::kDouble)).argmax(1);
    auto r = study::logme(f, y);
    ASSERT_EQ(r.evidence.size(), 3u);
    for (int64_t k = 0; k < 3; ++k) {
      auto yk = (y == k).to(at::kDouble);
      const double a = r.alpha[k], b = r.beta[k];
      // the closed form through the spectrum equals the Gaussian density evaluated directly
      EXPECT_NEAR(r.evidence[k], direct_evidence(f, yk, a, b), 1e-8) << shape[0] << "x" << shape[1];
      EXPECT_NEAR(study::logme_evidence(f, yk, a, b), r.evidence[k], 1e-10);
      // and the fixed point is a maximum in alpha and in beta
      // (an optimum at the clamp 1e12 is a boundary: the evidence still rises towards it)
      for (double s : {0.8, 1.25}) {
        if (a < 1e11) {
          EXPECT_LE(study::logme_evidence(f, yk, a * s, b), r.evidence[k] + 1e-10);
        }
        if (b < 1e11) {
          EXPECT_LE(study::logme_evidence(f, yk, a, b * s), r.evidence[k] + 1e-10);
        }
      }
    }
    double mean = 0;
    for (double e : r.evidence) mean += e / 3;
    EXPECT_NEAR(r.score, mean, 1e-12);
  }
}

TEST(Study, LogMERanksInformativeFeaturesAboveNoise) {
  torch::manual_seed(1);
  auto y = torch::arange(300) % 3;
  auto noise = torch::randn({300, 8});
  auto informative = noise.clone();
  informative.narrow(1, 0, 3).add_(torch::one_hot(y, 3).to(at::kFloat) * 3);
  const double good = study::logme(informative, y).score, bad = study::logme(noise, y).score;
  EXPECT_GT(good, bad + 0.1) << good << " vs " << bad;
  EXPECT_NE(test::error_of([&] { study::logme(torch::full({4, 2}, NAN), torch::tensor({0, 1, 0, 1})); })
                .find("NaN"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { study::logme(noise, y.narrow(0, 0, 10)); }).find("labels for 300"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { study::logme(noise, torch::zeros({300}, at::kLong)); }).find("at least 2 classes"),
            std::string::npos);
}

TEST(Study, LeepOfPerfectAndUninformativeSources) {
  // A source whose (one-hot) class determines the target label: LEEP = log 1 = 0.
  auto z = torch::arange(40) % 4;
  auto theta = torch::one_hot(z, 4).to(at::kDouble);
  EXPECT_NEAR(study::leep(theta, z % 2), 0.0, 1e-12);
  // A source that says nothing (uniform): the empirical predictor is the label prior.
  auto uniform = torch::full({40, 4}, 0.25, at::kDouble);
  EXPECT_NEAR(study::leep(uniform, z % 2), std::log(0.5), 1e-12);
  // Partly informative sits in between.
  auto mixed = 0.5 * theta + 0.5 * uniform;
  const double l = study::leep(mixed, z % 2);
  EXPECT_LT(l, 0.0);
  EXPECT_GT(l, std::log(0.5));
  EXPECT_NE(test::error_of([&] { study::leep(theta * 2, z); }).find("sum to 1"), std::string::npos);
  EXPECT_NE(test::error_of([&] { study::leep(theta, z.narrow(0, 0, 5)); }).find("labels for 40"), std::string::npos);
}

TEST(Study, SpearmanWithTies) {
  EXPECT_NEAR(study::spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0, 1e-12);
  EXPECT_NEAR(study::spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0, 1e-12);
  EXPECT_NEAR(study::spearman({1, 2, 2, 3}, {1, 2, 3, 4}), 4.5 / std::sqrt(22.5), 1e-12);
  EXPECT_TRUE(std::isnan(study::spearman({1, 1, 1}, {1, 2, 3})));
  EXPECT_NE(test::error_of([] { study::spearman({1}, {2}); }).find("at least 2"), std::string::npos);
}

// The findings' rules on constructed tables: the shape of the paper's Figure 2 (ImageNet
// top-1, read off the figure) passes all five; a study where nothing depends on n fails the
// ones that need an effect.
TEST(Study, FindingsRulesOnPaperShapedAndFlatTables) {
  auto table = [](const std::map<std::string, std::vector<double>>& v, double base) {
    study::TransferabilityResult r;
    r.ns = {1, 2, 3, 4, 5, 6, 7};
    for (uint64_t seed : {1, 2}) {
      r.runs.push_back({"baseB", 0, seed, base, ""});
      for (const auto& [variant, acc] : v)
        for (size_t i = 0; i < acc.size(); ++i) r.runs.push_back({variant, static_cast<int64_t>(i + 1), seed, acc[i], ""});
    }
    return r.findings();
  };
  auto paper = table({{"BnB", {0.625, 0.62, 0.60, 0.585, 0.59, 0.615, 0.625}},
                      {"BnB+", {0.625, 0.625, 0.625, 0.625, 0.625, 0.625, 0.625}},
                      {"AnB", {0.625, 0.62, 0.61, 0.59, 0.57, 0.53, 0.49}},
                      {"AnB+", {0.645, 0.645, 0.645, 0.645, 0.645, 0.645, 0.645}}},
                     0.625);
  ASSERT_EQ(paper.size(), 5u);
  for (const auto& f : paper) EXPECT_TRUE(f.holds) << f.claim << ": " << f.evidence;
  const std::vector<double> flat(7, 0.625);
  auto none = table({{"BnB", flat}, {"BnB+", flat}, {"AnB", flat}, {"AnB+", flat}}, 0.625);
  ASSERT_EQ(none.size(), 5u);
  EXPECT_TRUE(none[0].holds);   // general lower layers
  EXPECT_FALSE(none[1].holds);  // no specificity
  EXPECT_FALSE(none[2].holds);  // no co-adaptation dip
  EXPECT_TRUE(none[3].holds);   // nothing to repair
  EXPECT_FALSE(none[4].holds);  // no boost
}

TEST(Study, ChartTicksAreRoundNumbersOrTheOnesAsked) {
  analysis::Panel p;
  p.title = "t";
  p.series.push_back({"s", {-0.15, 6.15}, {82.7, 96.6}, {}, true, false});
  analysis::Series level{"level", {0, 6}, {95.2, 95.2}, {}, false, true};
  p.series.push_back(level);
  auto svg = analysis::svg_chart({p});
  for (auto t : {">85<", ">90<", ">95<", ">0<", ">2<", ">4<", ">6<"}) EXPECT_NE(svg.find(t), std::string::npos) << t;
  EXPECT_EQ(svg.find(">1.538<"), std::string::npos);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);  // the reference line is dashed
  p.xticks = {0, 1, 2, 3, 4, 5, 6};
  svg = analysis::svg_chart({p});
  for (auto t : {">1<", ">3<", ">5<"}) EXPECT_NE(svg.find(t), std::string::npos) << t;
}

TEST(Study, HtmlReportRendersInHeadlessChromium) {
  test::TempDir d;
  analysis::HtmlReport rep("A <report> & more");
  rep.paragraph("text with <b>markup</b> is shown as text");
  analysis::Panel p;
  p.title = "curve";
  p.series.push_back({"s", {1, 2, 3}, {3, 1, 2}, {}, false, false});
  rep.figure(analysis::svg_chart({p}), "a figure");
  rep.table({"a", "b"}, {{"1", "2"}, {"3", "4"}}, "a table");
  EXPECT_NE(test::error_of([&] { rep.table({"a", "b"}, {{"1"}}); }).find("1 cells for 2 columns"), std::string::npos);
  rep.save(d / "r.html");
  auto html = read(d / "r.html");
  EXPECT_NE(html.find("A &lt;report&gt; &amp; more"), std::string::npos);
  EXPECT_EQ(html.find("<b>markup"), std::string::npos);
  EXPECT_EQ(html.find("http"), html.find("http://www.w3.org/2000/svg"));  // no link leaves the page
  expect_rendered(d / "r.html", 1, 1);
}

TEST(Study, TransferabilityStudyFreezesCopiesResumesAndReports) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 320, 4, 3);
  const std::string data = "idx:" + (d / "x") + "," + (d / "y");
  const std::string base = "study transferability --data " + data + " --test " + data +
                           " --split 0-1/2-3 --model convnet6 --n 2,6 --seeds 1 --batch-size 16 "
                           "--lr 0.05 --score-examples 40 --workers 1 --quiet --out ";
  auto r = test::cli(base + (d / "s") + " --epochs 2");
  ASSERT_EQ(r.code, 0) << r.out;
  for (auto f : {"study.json", "results.json", "table.md", "transferability.svg", "report.html"})
    EXPECT_TRUE(std::filesystem::exists(d / ("s/" + std::string(f)))) << f;
  std::ifstream js(d / "s/results.json");
  auto j = nlohmann::json::parse(js);
  EXPECT_EQ(j["runs"].size(), 10u);  // baseA, baseB, 4 variants x 2 n
  EXPECT_EQ(j["layers"].get<std::vector<std::string>>(),
            (std::vector<std::string>{"conv1", "conv2", "conv3", "conv4", "fc5", "fc6"}));
  EXPECT_EQ(j["logme_a"].size(), 2u);
  EXPECT_EQ(j["findings"].size(), 5u);
  EXPECT_NE(r.out.find("Findings of Yosinski"), std::string::npos);
  // A2B: conv1 and conv2 are baseA's, frozen; conv3 and up were re-initialised and trained.
  auto weights = [&](const std::string& run) {
    std::map<std::string, at::Tensor> w;
    for (auto& [n, p] : io::load_checkpoint(d / ("s/seed-1/" + run + "/model.ckpt")).model->named_parameters())
      w[n] = p.detach().clone();
    return w;
  };
  auto a = weights("baseA"), a2b = weights("A2B"), a2bp = weights("A2B+"), b2b = weights("B2B"), bb = weights("baseB");
  EXPECT_TRUE(torch::equal(a2b["conv1.0.weight"], a["conv1.0.weight"]));
  EXPECT_TRUE(torch::equal(a2b["conv2.0.weight"], a["conv2.0.weight"]));
  EXPECT_FALSE(torch::equal(a2b["conv3.0.weight"], a["conv3.0.weight"]));
  EXPECT_FALSE(torch::equal(a2bp["conv1.0.weight"], a["conv1.0.weight"]));  // fine-tuned
  EXPECT_TRUE(torch::equal(b2b["conv2.0.weight"], bb["conv2.0.weight"]));
  // Resume: finished runs are read back, a missing one is redone, the table is unchanged.
  std::filesystem::remove_all(d / "s/seed-1/B6B+");
  auto again = test::cli(base + (d / "s") + " --epochs 2");
  ASSERT_EQ(again.code, 0) << again.out;
  EXPECT_TRUE(std::filesystem::exists(d / "s/seed-1/B6B+/model.ckpt"));
  auto first = test::run("cat " + (d / "s/table.md")).out;
  auto verbose = test::cli(base.substr(0, base.find("--quiet")) + "--out " + (d / "s") + " --epochs 2");
  EXPECT_EQ(verbose.out.find("] seed 1"), std::string::npos) << verbose.out;  // nothing retrained
  EXPECT_NE(verbose.out.find("resuming the study"), std::string::npos) << verbose.out;
  EXPECT_EQ(test::run("cat " + (d / "s/table.md")).out, first);
  expect_rendered(d / "s/report.html", 1, 2);
  // Another configuration in the same folder is refused and named.
  auto other = test::cli(base + (d / "s") + " --epochs 3");
  EXPECT_NE(other.code, 0);
  EXPECT_NE(other.out.find("another configuration"), std::string::npos) << other.out;
  EXPECT_NE(other.out.find("epochs"), std::string::npos) << other.out;
}

TEST(Study, TransferabilityRejectsBadSplitsAndLayers) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 80, 4, 3);
  const std::string data = "idx:" + (d / "x") + "," + (d / "y");
  auto run = [&](const std::string& extra) {
    return test::cli("study transferability --data " + data + " --test " + data + " --epochs 1 --quiet " + extra +
                     " --out " + (d / "bad"));
  };
  auto overlap = run("--split 0-2/2-3");
  EXPECT_NE(overlap.code, 0);
  EXPECT_NE(overlap.out.find("class 2 is in both halves"), std::string::npos) << overlap.out;
  auto empty = run("--split 0-1/");
  EXPECT_NE(empty.out.find("half B is empty"), std::string::npos) << empty.out;
  auto noslash = run("--split 0-3");
  EXPECT_NE(noslash.out.find("A/B"), std::string::npos) << noslash.out;
  auto beyond = run("--split 0-1/2-3 --n 7");
  EXPECT_NE(beyond.code, 0);
  EXPECT_NE(beyond.out.find("--n 7 is beyond convnet6's 6 transferable layers"), std::string::npos) << beyond.out;
  auto absent = run("--split 0-1/2-9");
  EXPECT_NE(absent.code, 0);
  EXPECT_NE(absent.out.find("9"), std::string::npos) << absent.out;
  auto file = run("--split 0-1/2-3 --model " + (d / "x"));
  EXPECT_NE(file.out.find("zoo architecture"), std::string::npos) << file.out;
  EXPECT_FALSE(std::filesystem::exists(d / "bad/results.json"));
}

TEST(Study, LayerStudyProbesEveryLayerBesideLogME) {
  test::TempDir d;
  test::write_toy_idx(d / "x", d / "y", 200, 4, 5);
  const std::string data = "idx:" + (d / "x") + "," + (d / "y");
  ASSERT_EQ(test::cli("train --model convnet6 --data " + data + " --epochs 2 --batch-size 16 --lr 0.05 --quiet "
                      "--workers 1 --out " + (d / "m")).code,
            0);
  auto r = test::cli("study layers --model " + (d / "m/model.ckpt") + " --train " + data + " --test " + data +
                     " --labels-per-class 10 --seeds 1,2 --quiet --out " + (d / "l"));
  ASSERT_EQ(r.code, 0) << r.out;
  std::ifstream js(d / "l/results.json");
  auto j = nlohmann::json::parse(js);
  ASSERT_EQ(j["layers"].size(), 7u);  // conv1..conv4, flatten, fc5, fc6
  for (auto& l : j["layers"]) {
    EXPECT_GT(l["probe_mean"].get<double>(), 0.0);
    EXPECT_TRUE(std::isfinite(l["logme"].get<double>()));
  }
  EXPECT_TRUE(j.contains("spearman_logme_probe"));
  EXPECT_LE(j["leep"].get<double>(), 0.0);
  EXPECT_NE(r.out.find("Spearman"), std::string::npos);
  expect_rendered(d / "l/report.html", 1, 1);
  auto unknown = test::cli("study layers --model " + (d / "m/model.ckpt") + " --train " + data + " --test " + data +
                           " --layers conv1,conv9 --quiet --out " + (d / "u"));
  EXPECT_NE(unknown.code, 0);
  EXPECT_NE(unknown.out.find("unknown layer 'conv9'"), std::string::npos) << unknown.out;
  EXPECT_FALSE(std::filesystem::exists(d / "u/report.html"));
}

// Near-chance base networks make every finding inconclusive; claims cite only the n run.
TEST(Study, FindingsAreInconclusiveWhenTheBaseNetworksAreNearChance) {
  auto table = [](double base, const std::vector<int64_t>& ns) {
    study::TransferabilityResult r;
    r.classes_a = r.classes_b = 5;
    r.ns = ns;
    for (uint64_t seed : {1, 2}) {
      r.runs.push_back({"baseA", 0, seed, base, ""});
      r.runs.push_back({"baseB", 0, seed, base, ""});
      for (auto v : {"BnB", "BnB+", "AnB", "AnB+"})
        for (auto n : ns) r.runs.push_back({v, n, seed, base + 0.01 * static_cast<double>(n), ""});
    }
    return r.findings();
  };
  EXPECT_TRUE(study::near_chance(0.21, 5));
  EXPECT_FALSE(study::near_chance(0.60, 5));
  EXPECT_TRUE(study::near_chance(0.54, 2));
  auto chance = table(0.20, {2, 4});
  ASSERT_EQ(chance.size(), 5u);
  for (const auto& f : chance) {
    EXPECT_TRUE(f.inconclusive) << f.claim;
    EXPECT_EQ(f.verdict(), "inconclusive");
    EXPECT_NE(f.evidence.find("near chance (20.00%)"), std::string::npos) << f.evidence;
  }
  EXPECT_NE(chance[0].claim.find("n = 2 "), std::string::npos) << chance[0].claim;  // n = 1 was not run
  EXPECT_EQ(chance[0].claim.find("1, 2"), std::string::npos) << chance[0].claim;
  auto learnt = table(0.80, {1, 2, 4});
  for (const auto& f : learnt) EXPECT_FALSE(f.inconclusive) << f.claim;
  EXPECT_NE(learnt[0].claim.find("n = 1, 2 "), std::string::npos) << learnt[0].claim;
}

// The robust y range keeps the bulk of the points readable and marks the outlier.
TEST(Study, ChartYRangeIsRobustToAnOutlierAndSaysSo) {
  analysis::Panel p;
  p.title = "acc";
  analysis::Series s{"AnB", {1, 2, 3, 4, 5, 6}, {91.2, 90.8, 92.0, 22.0, 91.5, 90.1}, {}, true, false};
  p.series.push_back(s);
  auto plain = analysis::y_range(p);
  EXPECT_LE(plain.first, 22.0);
  p.robust_y = true;
  auto robust = analysis::y_range(p);
  EXPECT_GT(robust.first, 85.0) << robust.first;  // the outlier is outside
  EXPECT_LE(robust.first, 90.1);                  // every other point is inside
  EXPECT_GE(robust.second, 92.0);
  p.xticks = {1, 2, 3, 4, 5, 6};
  p.xtick_labels = {"conv1", "conv2", "conv3", "conv4", "fc5", "fc6"};
  auto svg = analysis::svg_chart({p});
  EXPECT_NE(svg.find("1 point outside the range shown"), std::string::npos);
  EXPECT_NE(svg.find(">22<"), std::string::npos);  // its value is written beside its marker
  EXPECT_NE(svg.find(">conv3<"), std::string::npos);
  int yticks = 0;  // y tick labels are the right-aligned texts left of the axis
  for (size_t at = svg.find("text-anchor=\"end\">"); at != std::string::npos;
       at = svg.find("text-anchor=\"end\">", at + 1))
    ++yticks;
  EXPECT_GE(yticks, 3) << svg;
  // A legitimate trend (one point lower, not far out) keeps the full range.
  analysis::Panel trend;
  trend.robust_y = true;
  trend.series.push_back({"AnB", {1, 2, 3, 4, 5, 6}, {90, 90, 89, 88, 85, 70}, {}, true, false});
  EXPECT_LE(analysis::y_range(trend).first, 70.0);
  p.xtick_labels.pop_back();
  EXPECT_NE(test::error_of([&] { analysis::svg_chart({p}); }).find("5 x tick labels for 6 ticks"), std::string::npos);
}

// Embedding scatter by class and by domain, tables aligned by content, rendered in
// Chromium; the PNG is kept for a person to look at when GRAFT_FIGURES_DIR is set.
TEST(Study, ScatterByClassAndDomainAndAlignedTablesRender) {
  test::TempDir d;
  torch::manual_seed(0);
  analysis::ScatterPanel by_class, by_domain;
  for (int i = 0; i < 200; ++i) {
    const int64_t c = i % 4, dom = (i / 4) % 2;
    by_class.x.push_back(3.0 * static_cast<double>(c) + torch::randn({1}).item<double>() + 0.8 * static_cast<double>(dom));
    by_class.y.push_back(static_cast<double>(c % 2) * 4.0 + torch::randn({1}).item<double>());
    by_class.label.push_back(c);
    by_class.domain.push_back(dom);
  }
  by_class.title = "after: by class";
  by_class.xlabel = "PC 1";
  by_class.ylabel = "PC 2";
  by_domain = by_class;
  by_domain.title = "after: by domain";
  by_domain.colour_by = "domain";
  auto svg = analysis::svg_scatter({by_class, by_domain}, {"zero", "one", "two", "three"}, {"source", "target"});
  EXPECT_NE(svg.find("three"), std::string::npos);
  EXPECT_NE(svg.find("target"), std::string::npos);
  EXPECT_NE(svg.find("<path d=\"M"), std::string::npos);  // target points are triangles
  auto bad = by_class;
  bad.label.pop_back();
  EXPECT_NE(test::error_of([&] { analysis::svg_scatter({bad}, {"a"}, {"s"}); }).find("one entry per point"),
            std::string::npos);
  analysis::HtmlReport rep("Figures");
  rep.figure(svg, "embedding");
  rep.table({"layer", "accuracy (%)", "LogME"}, {{"conv1", "91.20 ± 0.50", "-0.7512"}, {"fc5", "n/a", "0.1"}},
            "aligned");
  auto html = rep.html();
  EXPECT_NE(html.find("<th class=\"text\">layer</th><th class=\"num\">accuracy (%)</th>"), std::string::npos);
  EXPECT_NE(html.find("<td class=\"text\">conv1</td><td class=\"num\">91.20 ± 0.50</td>"), std::string::npos);
  rep.save(d / "fig.html");
  expect_rendered(d / "fig.html", 1, 1);
  if (const char* keep = std::getenv("GRAFT_FIGURES_DIR")) {
    test::run("chromium --headless --no-sandbox --disable-gpu --user-data-dir=" + (d / "profile") +
              " --screenshot=" + std::string(keep) + "/scatter.png --window-size=900,900 file://" + (d / "fig.html") +
              " 2>/dev/null");
    analysis::HtmlReport chart("Chart");
    analysis::Panel p;
    p.title = "Test accuracy on B";
    p.ylabel = "accuracy (%)";
    p.robust_y = true;
    p.series.push_back({"AnB", {1, 2, 3, 4, 5, 6}, {91.2, 90.8, 92.0, 22.0, 91.5, 90.1}, {0.3, 0.4, 0.2, 1, 0.5, 0.6},
                        true, false});
    p.xticks = {1, 2, 3, 4, 5, 6};
    p.xtick_labels = {"1 conv1", "2 conv2", "3 conv3", "4 conv4", "5 fc5", "6 fc6"};
    chart.figure(analysis::svg_chart({p}, 520, 340), "robust range");
    chart.save(d / "chart.html");
    test::run("chromium --headless --no-sandbox --disable-gpu --user-data-dir=" + (d / "profile") +
              " --screenshot=" + std::string(keep) + "/chart.png --window-size=700,600 file://" + (d / "chart.html") +
              " 2>/dev/null");
  }
}
