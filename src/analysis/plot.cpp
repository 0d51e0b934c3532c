#include "graft/analysis/plot.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

namespace graft::analysis {
namespace {

const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string esc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '&') o += "&amp;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

/// Round-number tick positions (steps of 1, 2 or 5 times a power of ten) inside [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  const double raw = (hi - lo) / 4;
  if (!(raw > 0) || !std::isfinite(raw)) return {lo};
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

std::string num(double v) {
  std::ostringstream o;
  o << std::setprecision(4) << v;
  return o.str();
}

}  // namespace

std::string svg_chart(const std::vector<Panel>& panels, int W, int H) {
  const int ml = 60, mr = 15, mt = 30, mb = 45;
  const int total_w = W * static_cast<int>(std::max<size_t>(panels.size(), 1));
  const int legend_h = 22;
  std::ostringstream s;
  s << std::fixed << std::setprecision(2);
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << total_w << "\" height=\"" << H + legend_h
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (size_t p = 0; p < panels.size(); ++p) {
    const auto& pn = panels[p];
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    for (const auto& se : pn.series)
      for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
        if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) continue;
        double e = i < se.err.size() && std::isfinite(se.err[i]) ? se.err[i] : 0;
        x0 = std::min(x0, se.x[i]), x1 = std::max(x1, se.x[i]);
        y0 = std::min(y0, se.y[i] - e), y1 = std::max(y1, se.y[i] + e);
      }
    if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x1 == x0) x0 -= 0.5, x1 += 0.5;
    if (y1 == y0) y0 -= 0.5, y1 += 0.5;
    double pad = (y1 - y0) * 0.05;
    y0 -= pad, y1 += pad;
    const double ox = static_cast<double>(p) * W + ml, pw = W - ml - mr, ph = H - mt - mb;
    auto X = [&](double v) { return ox + (v - x0) / (x1 - x0) * pw; };
    auto Y = [&](double v) { return mt + (1 - (v - y0) / (y1 - y0)) * ph; };
    s << "<g class=\"panel\">\n<text x=\"" << ox + pw / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">"
      << esc(pn.title) << "</text>\n";
    s << "<rect x=\"" << ox << "\" y=\"" << mt << "\" width=\"" << pw << "\" height=\"" << ph
      << "\" fill=\"none\" stroke=\"#888\"/>\n";
    for (double yv : ticks(y0, y1))
      s << "<line x1=\"" << ox << "\" x2=\"" << ox + pw << "\" y1=\"" << Y(yv) << "\" y2=\"" << Y(yv)
        << "\" stroke=\"#eee\"/><text x=\"" << ox - 4 << "\" y=\"" << Y(yv) + 4 << "\" text-anchor=\"end\">" << num(yv)
        << "</text>\n";
    for (double xv : pn.xticks.empty() ? ticks(x0, x1) : pn.xticks)
      s << "<text x=\"" << X(xv) << "\" y=\"" << mt + ph + 14 << "\" text-anchor=\"middle\">" << num(xv) << "</text>\n";
    s << "<text x=\"" << ox + pw / 2 << "\" y=\"" << H - 8 << "\" text-anchor=\"middle\">" << esc(pn.xlabel)
      << "</text>\n<text transform=\"translate(" << ox - 45 << "," << mt + ph / 2
      << ") rotate(-90)\" text-anchor=\"middle\">" << esc(pn.ylabel) << "</text>\n";
    for (size_t k = 0; k < pn.series.size(); ++k) {
      const auto& se = pn.series[k];
      const char* c = kColours[k % 8];
      std::ostringstream pts;
      pts << std::fixed << std::setprecision(2);
      for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
        if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) continue;
        pts << X(se.x[i]) << "," << Y(se.y[i]) << " ";
        if (se.reference) continue;
        s << "<circle cx=\"" << X(se.x[i]) << "\" cy=\"" << Y(se.y[i]) << "\" r=\"" << (se.markers_only ? 3.5 : 2.5)
          << "\" fill=\"" << c << "\"/>\n";
        if (i < se.err.size() && std::isfinite(se.err[i]) && se.err[i] > 0)
          s << "<line x1=\"" << X(se.x[i]) << "\" x2=\"" << X(se.x[i]) << "\" y1=\"" << Y(se.y[i] - se.err[i])
            << "\" y2=\"" << Y(se.y[i] + se.err[i]) << "\" stroke=\"" << c << "\"/>\n";
      }
      if (!se.markers_only)
        s << "<polyline points=\"" << pts.str() << "\" fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.5\""
          << (se.reference ? " stroke-dasharray=\"5,4\"" : "") << "/>\n";
      if (p == 0)
        s << "<text x=\"" << 10 + 150 * static_cast<double>(k) << "\" y=\"" << H + 14 << "\" fill=\"" << c << "\">&#9632; "
          << esc(se.name) << "</text>\n";
    }
    s << "</g>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace graft::analysis
