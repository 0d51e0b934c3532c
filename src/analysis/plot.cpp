#include "graft/analysis/plot.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

#include "graft/core/check.h"

namespace graft::analysis {
namespace {

const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                          "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};
constexpr size_t kNumColours = sizeof(kColours) / sizeof(kColours[0]);

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

/// Round-number tick positions (steps of 1, 2 or 5 times a power of ten) inside [lo, hi];
/// at least three when the range allows.
std::vector<double> ticks(double lo, double hi) {
  for (double parts : {4.0, 6.0, 10.0}) {
    const double raw = (hi - lo) / parts;
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
    if (t.size() >= 3) return t;
  }
  return {lo, (lo + hi) / 2, hi};
}

std::string num(double v) {
  std::ostringstream o;
  o << std::setprecision(4) << v;
  return o.str();
}

/// A panel's frame: data ranges and the mapping to pixels.
struct Frame {
  double x0, x1, y0, y1, ox, oy, pw, ph;
  double X(double v) const { return ox + (v - x0) / (x1 - x0) * pw; }
  double Y(double v) const { return oy + (1 - (v - y0) / (y1 - y0)) * ph; }
};

void draw_axes(std::ostringstream& s, const Frame& f, const std::string& title, const std::string& xlabel,
               const std::string& ylabel, const std::vector<double>& xt, const std::vector<std::string>& xlabels,
               double label_y) {
  s << "<g class=\"panel\">\n<text x=\"" << f.ox + f.pw / 2 << "\" y=\"" << f.oy - 12
    << "\" text-anchor=\"middle\" font-size=\"13\">" << esc(title) << "</text>\n";
  s << "<rect x=\"" << f.ox << "\" y=\"" << f.oy << "\" width=\"" << f.pw << "\" height=\"" << f.ph
    << "\" fill=\"none\" stroke=\"#888\"/>\n";
  for (double yv : ticks(f.y0, f.y1))
    s << "<line x1=\"" << f.ox << "\" x2=\"" << f.ox + f.pw << "\" y1=\"" << f.Y(yv) << "\" y2=\"" << f.Y(yv)
      << "\" stroke=\"#eee\"/><text x=\"" << f.ox - 4 << "\" y=\"" << f.Y(yv) + 4 << "\" text-anchor=\"end\">"
      << num(yv) << "</text>\n";
  size_t longest = 0;
  for (const auto& l : xlabels) longest = std::max(longest, l.size());
  const bool slant = longest > 6;
  for (size_t i = 0; i < xt.size(); ++i) {
    const double x = f.X(xt[i]), y = f.oy + f.ph + 14;
    const std::string text = i < xlabels.size() ? xlabels[i] : num(xt[i]);
    if (slant)
      s << "<text transform=\"translate(" << x + 3 << "," << y - 4 << ") rotate(30)\" text-anchor=\"start\">"
        << esc(text) << "</text>\n";
    else
      s << "<text x=\"" << x << "\" y=\"" << y << "\" text-anchor=\"middle\">" << esc(text) << "</text>\n";
  }
  s << "<text x=\"" << f.ox + f.pw / 2 << "\" y=\"" << label_y << "\" text-anchor=\"middle\">" << esc(xlabel)
    << "</text>\n<text transform=\"translate(" << f.ox - 45 << "," << f.oy + f.ph / 2
    << ") rotate(-90)\" text-anchor=\"middle\">" << esc(ylabel) << "</text>\n";
}

/// The series of one line-chart panel; returns how many points were clipped.
int draw_series(std::ostringstream& s, const Panel& pn, const Frame& f, bool legend, int legend_y) {
  int clipped = 0;
  for (size_t k = 0; k < pn.series.size(); ++k) {
    const auto& se = pn.series[k];
    const char* c = kColours[k % kNumColours];
    std::ostringstream pts;
    pts << std::fixed << std::setprecision(2);
    for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
      if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) continue;
      const double yv = std::clamp(se.y[i], f.y0, f.y1);
      pts << f.X(se.x[i]) << "," << f.Y(yv) << " ";
      if (se.reference) continue;
      if (yv != se.y[i]) {  // outside the robust range: an open triangle at the edge, with its value
        ++clipped;
        const double px = f.X(se.x[i]), py = f.Y(yv), d = yv == f.y0 ? 1 : -1;
        s << "<path d=\"M" << px - 5 << "," << py - 6 * d << " L" << px + 5 << "," << py - 6 * d << " L" << px << ","
          << py << " Z\" fill=\"white\" stroke=\"" << c << "\" stroke-width=\"1.5\"/>\n<text x=\"" << px + 7
          << "\" y=\"" << py - 8 * d + 4 << "\" fill=\"" << c << "\">" << num(se.y[i]) << "</text>\n";
        continue;
      }
      s << "<circle cx=\"" << f.X(se.x[i]) << "\" cy=\"" << f.Y(se.y[i]) << "\" r=\"" << (se.markers_only ? 3.5 : 2.5)
        << "\" fill=\"" << c << "\"/>\n";
      if (i < se.err.size() && std::isfinite(se.err[i]) && se.err[i] > 0)
        s << "<line x1=\"" << f.X(se.x[i]) << "\" x2=\"" << f.X(se.x[i]) << "\" y1=\""
          << f.Y(std::max(se.y[i] - se.err[i], f.y0)) << "\" y2=\"" << f.Y(std::min(se.y[i] + se.err[i], f.y1))
          << "\" stroke=\"" << c << "\"/>\n";
    }
    if (!se.markers_only)
      s << "<polyline points=\"" << pts.str() << "\" fill=\"none\" stroke=\"" << c << "\" stroke-width=\"1.5\""
        << (se.reference ? " stroke-dasharray=\"5,4\"" : "") << "/>\n";
    if (legend)
      s << "<text x=\"" << 10 + 150 * static_cast<double>(k) << "\" y=\"" << legend_y << "\" fill=\"" << c
        << "\">&#9632; " << esc(se.name) << "</text>\n";
  }
  return clipped;
}

}  // namespace

std::pair<double, double> y_range(const Panel& pn) {
  double y0 = std::numeric_limits<double>::infinity(), y1 = -y0;
  std::vector<double> ys;
  for (const auto& se : pn.series)
    for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
      if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i])) continue;
      const double e = i < se.err.size() && std::isfinite(se.err[i]) ? se.err[i] : 0;
      y0 = std::min(y0, se.y[i] - e), y1 = std::max(y1, se.y[i] + e);
      ys.push_back(se.y[i]);
    }
  if (!std::isfinite(y0)) return {0, 1};
  if (pn.robust_y && ys.size() >= 5) {
    // The widest gap between neighbouring values splits off an outlying group when that
    // group holds at most a quarter of the points and the gap is over three times the
    // spread of the rest: then the rest alone sets the range.
    std::sort(ys.begin(), ys.end());
    const size_t n = ys.size();
    size_t cut = 0;
    double widest = 0;
    for (size_t i = 1; i < n; ++i)
      if (ys[i] - ys[i - 1] > widest) widest = ys[i] - ys[i - 1], cut = i;
    const bool low = cut <= n / 4, high = n - cut <= n / 4;
    const double lo = low ? ys[cut] : ys.front(), hi = high ? ys[cut - 1] : ys.back();
    if ((low || high) && widest > 3 * (hi - lo)) {
      double r0 = std::numeric_limits<double>::infinity(), r1 = -r0;
      for (const auto& se : pn.series)
        for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i) {
          if (!std::isfinite(se.x[i]) || !std::isfinite(se.y[i]) || se.y[i] < lo || se.y[i] > hi) continue;
          const double e = i < se.err.size() && std::isfinite(se.err[i]) ? se.err[i] : 0;
          r0 = std::min(r0, se.y[i] - e), r1 = std::max(r1, se.y[i] + e);
        }
      const double room = 0.25 * widest;  // error bars may reach into the gap, not across it
      y0 = std::max(r0, lo - room), y1 = std::min(r1, hi + room);
    }
  }
  if (y1 == y0) y0 -= 0.5, y1 += 0.5;
  return {y0, y1};
}

std::string svg_chart(const std::vector<Panel>& panels, int W, int H) {
  bool slanted = false;
  for (const auto& p : panels)
    for (const auto& l : p.xtick_labels) slanted |= l.size() > 6;
  const int ml = 60, mr = slanted ? 50 : 15, mt = 30;  // slanted labels reach right of their tick
  const int mb = slanted ? 75 : 45;  // room for slanted layer names
  const int total_w = W * static_cast<int>(std::max<size_t>(panels.size(), 1));
  const int legend_h = 22;
  std::ostringstream s;
  s << std::fixed << std::setprecision(2);
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << total_w << "\" height=\"" << H + legend_h + mb - 45
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (size_t p = 0; p < panels.size(); ++p) {
    const auto& pn = panels[p];
    GRAFT_CHECK(pn.xtick_labels.empty() || pn.xtick_labels.size() == pn.xticks.size(), "chart '", pn.title, "': ",
                pn.xtick_labels.size(), " x tick labels for ", pn.xticks.size(), " ticks");
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0;
    for (const auto& se : pn.series)
      for (size_t i = 0; i < se.x.size() && i < se.y.size(); ++i)
        if (std::isfinite(se.x[i]) && std::isfinite(se.y[i])) x0 = std::min(x0, se.x[i]), x1 = std::max(x1, se.x[i]);
    for (double t : pn.xticks) x0 = std::min(x0, t), x1 = std::max(x1, t);
    if (!std::isfinite(x0)) x0 = 0, x1 = 1;
    if (x1 == x0) x0 -= 0.5, x1 += 0.5;
    const double xpad = (x1 - x0) * 0.04;  // markers and error bars off the frame
    x0 -= xpad, x1 += xpad;
    auto [y0, y1] = y_range(pn);
    const double pad = (y1 - y0) * 0.05;
    Frame f{x0, x1, y0 - pad, y1 + pad, static_cast<double>(p) * W + ml, static_cast<double>(mt),
            static_cast<double>(W - ml - mr), static_cast<double>(H - mt - 45)};
    draw_axes(s, f, pn.title, pn.xlabel, pn.ylabel, pn.xticks.empty() ? ticks(x0 + xpad, x1 - xpad) : pn.xticks,
              pn.xtick_labels, H + mb - 45 - 8);
    const int clipped = draw_series(s, pn, f, p == 0, H + mb - 45 + 14);
    if (clipped > 0)  // said on the legend line, right-aligned under the panel
      s << "<text x=\"" << f.ox + f.pw << "\" y=\"" << H + mb - 45 + 14 << "\" text-anchor=\"end\" fill=\"#555\">"
        << clipped << (clipped == 1 ? " point" : " points")
        << " outside the range shown: open triangle at the edge, value beside</text>\n";
    s << "</g>\n";
  }
  s << "</svg>\n";
  return s.str();
}

std::string svg_scatter(const std::vector<ScatterPanel>& panels, const std::vector<std::string>& class_names,
                        const std::vector<std::string>& domain_names, int columns, int W, int H) {
  GRAFT_CHECK(columns >= 1, "svg_scatter: columns must be >= 1, got ", columns);
  const int ml = 60, mr = 15, mt = 30, mb = 45;
  const int rows = static_cast<int>((panels.size() + static_cast<size_t>(columns) - 1) / static_cast<size_t>(columns));
  const int cols = std::min<int>(columns, static_cast<int>(std::max<size_t>(panels.size(), 1)));
  const int legend_h = 22 * 2;
  std::ostringstream s;
  s << std::fixed << std::setprecision(2);
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W * cols << "\" height=\"" << H * rows + legend_h
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  auto marker = [&](double x, double y, int64_t dom, const char* fill) {
    std::ostringstream m;
    m << std::fixed << std::setprecision(2);
    if (dom <= 0) m << "<circle cx=\"" << x << "\" cy=\"" << y << "\" r=\"2.6\"";
    else if (dom == 1) m << "<path d=\"M" << x << "," << y - 3.4 << " L" << x + 3 << "," << y + 2.2 << " L" << x - 3
                         << "," << y + 2.2 << " Z\"";
    else m << "<rect x=\"" << x - 2.4 << "\" y=\"" << y - 2.4 << "\" width=\"4.8\" height=\"4.8\"";
    m << " fill=\"" << fill << "\" fill-opacity=\"0.75\"/>\n";
    return m.str();
  };
  for (size_t p = 0; p < panels.size(); ++p) {
    const auto& pn = panels[p];
    const size_t n = pn.x.size();
    GRAFT_CHECK(pn.y.size() == n && pn.label.size() == n && pn.domain.size() == n, "scatter '", pn.title,
                "': x, y, label and domain must have one entry per point (", n, ", ", pn.y.size(), ", ",
                pn.label.size(), ", ", pn.domain.size(), ")");
    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
    for (size_t i = 0; i < n; ++i)
      if (std::isfinite(pn.x[i]) && std::isfinite(pn.y[i]))
        x0 = std::min(x0, pn.x[i]), x1 = std::max(x1, pn.x[i]), y0 = std::min(y0, pn.y[i]), y1 = std::max(y1, pn.y[i]);
    if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x1 == x0) x0 -= 0.5, x1 += 0.5;
    if (y1 == y0) y0 -= 0.5, y1 += 0.5;
    const double px = (x1 - x0) * 0.05, py = (y1 - y0) * 0.05;
    const int col = static_cast<int>(p) % cols, row = static_cast<int>(p) / cols;
    Frame f{x0 - px, x1 + px, y0 - py, y1 + py, static_cast<double>(col * W + ml), static_cast<double>(row * H + mt),
            static_cast<double>(W - ml - mr), static_cast<double>(H - mt - mb)};
    draw_axes(s, f, pn.title, pn.xlabel, pn.ylabel, ticks(f.x0, f.x1), {}, row * H + H - 8);
    const bool by_domain = pn.colour_by == "domain";
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(pn.x[i]) || !std::isfinite(pn.y[i])) continue;
      const int64_t key = by_domain ? pn.domain[i] : pn.label[i];
      const char* fill = key < 0 ? "#999999" : kColours[static_cast<size_t>(key) % kNumColours];
      s << marker(f.X(pn.x[i]), f.Y(pn.y[i]), pn.domain[i], fill);
    }
    s << "</g>\n";
  }
  // Legend: class colours on one line, domain markers (and domain colours) on the next.
  const double ly = H * rows + 14;
  double x = 10;
  s << "<text x=\"" << x << "\" y=\"" << ly << "\">class:</text>\n";
  x += 42;
  for (size_t c = 0; c < class_names.size(); ++c, x += 14 + 7.0 * static_cast<double>(class_names[c - 1].size()))
    s << "<text x=\"" << x << "\" y=\"" << ly << "\" fill=\"" << kColours[c % kNumColours] << "\">&#9632; "
      << esc(class_names[c]) << "</text>\n";
  x = 10;
  s << "<text x=\"" << x << "\" y=\"" << ly + 20 << "\">domain (marker; colour in the by-domain panels):</text>\n";
  x += 290;
  for (size_t d = 0; d < domain_names.size(); ++d) {
    s << marker(x, ly + 16, static_cast<int64_t>(d), kColours[d % kNumColours]) << "<text x=\"" << x + 7 << "\" y=\""
      << ly + 20 << "\">" << esc(domain_names[d]) << "</text>\n";
    x += 20 + 7.0 * static_cast<double>(domain_names[d].size());
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace graft::analysis
