#pragma once
/// A self-contained HTML report (inline CSS and SVG, no network, no external files) that
/// opens in any browser: headings, paragraphs, tables and figures in order.
#include <string>
#include <vector>

namespace graft::analysis {

class HtmlReport {
 public:
  explicit HtmlReport(std::string title);
  void heading(const std::string& text);
  /// Plain text; HTML special characters are escaped.
  void paragraph(const std::string& text);
  /// A table with a header row; every row must have the header's length.
  void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
             const std::string& caption = "");
  /// An inline SVG document (e.g. from svg_chart) with a caption.
  void figure(const std::string& svg, const std::string& caption);
  /// The whole page. A small inline script counts the figures and tables a browser
  /// rendered and records them on <body data-figures=.. data-tables=..>, so that a
  /// headless browser can check the page (tests do).
  std::string html() const;
  /// Writes html() atomically (never a half-written page).
  void save(const std::string& path) const;

 private:
  std::string title_;
  std::vector<std::string> parts_;
  int figures_ = 0, tables_ = 0;
};

/// Escapes &, <, > and " for HTML text and attributes.
std::string html_escape(const std::string& s);

}  // namespace graft::analysis
