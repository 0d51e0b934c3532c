#pragma once
/// Small self-contained SVG charts (no scripts, no network), for learning curves and
/// study reports that open in any browser.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace graft::analysis {

struct Series {
  std::string name;
  std::vector<double> x, y;
  std::vector<double> err;  ///< optional error bars (same length as y)
  bool markers_only = false;
  bool reference = false;  ///< a dashed line without markers (a level to read the others against)
};

struct Panel {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  std::vector<double> xticks;  ///< x tick positions; empty: round numbers chosen from the data range
  /// Text shown at the x ticks instead of their values (e.g. layer names); when given it
  /// must have the length of xticks. Long labels are drawn slanted.
  std::vector<std::string> xtick_labels{};
  /// Robust y range: when the widest gap between sorted y values splits off at most a
  /// quarter of the points and is over three times the spread of the others, the range
  /// covers the others only. Points outside it are drawn as an open triangle at the
  /// panel's edge with their value written beside, and the panel says how many were
  /// clipped, so one failed run does not flatten every other point onto one line.
  bool robust_y = false;
};

/// Panels side by side in one SVG document. Non-finite points are skipped.
/// Every axis gets at least three round-number ticks.
std::string svg_chart(const std::vector<Panel>& panels, int panel_width = 420, int panel_height = 300);

/// The y range svg_chart draws for a panel (before its 5% padding): the data range, or
/// with robust_y the fenced range described at Panel::robust_y. Exposed for tests.
std::pair<double, double> y_range(const Panel& panel);

/// One scatter panel of a 2-D embedding (PCA, t-SNE, ...): one point per example with
/// its class and its domain.
struct ScatterPanel {
  std::string title, xlabel, ylabel;
  std::vector<double> x, y;          ///< coordinates, one per example
  std::vector<int64_t> label;        ///< class of each example in [0, class_names.size()), -1: unknown
  std::vector<int64_t> domain;       ///< domain of each example in [0, domain_names.size())
  std::string colour_by = "class";   ///< "class" or "domain": what the fill colour shows
};

/// Scatter panels of embeddings in a grid of `columns` columns, e.g. {before by class,
/// before by domain, after by class, after by domain} with columns = 2. The colour shows
/// the class (or the domain), the marker the domain (circle: domain 0, triangle: 1,
/// square: 2, ...) in every panel; one legend lists both. Axes carry round-number ticks.
/// Throws graft::Error when the per-point vectors of a panel differ in length.
std::string svg_scatter(const std::vector<ScatterPanel>& panels, const std::vector<std::string>& class_names,
                        const std::vector<std::string>& domain_names, int columns = 2, int panel_width = 380,
                        int panel_height = 340);

}  // namespace graft::analysis
