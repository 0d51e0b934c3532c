#pragma once
/// Small self-contained SVG charts (no scripts, no network), for learning curves and
/// study reports that open in any browser.
#include <string>
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
};

/// Panels side by side in one SVG document. Non-finite points are skipped.
std::string svg_chart(const std::vector<Panel>& panels, int panel_width = 420, int panel_height = 300);

}  // namespace graft::analysis
