#include "graft/analysis/report.h"

#include <cctype>
#include <cstring>
#include <sstream>

#include "graft/core/check.h"
#include "graft/core/files.h"

namespace graft::analysis {

std::string html_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

HtmlReport::HtmlReport(std::string title) : title_(std::move(title)) {}

void HtmlReport::heading(const std::string& text) { parts_.push_back("<h2>" + html_escape(text) + "</h2>"); }

void HtmlReport::paragraph(const std::string& text) { parts_.push_back("<p>" + html_escape(text) + "</p>"); }

namespace {

bool looks_numeric(const std::string& cell) {
  // "97.25", "-0.4", "83.10 ± 0.52", "12 %", "1e-3", "n/a": numbers (and their
  // placeholders) align right so that digits line up; anything else is text.
  if (cell.empty() || cell == "n/a" || cell == "-" || cell == "—") return true;
  bool digit = false;
  for (size_t i = 0; i < cell.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(cell[i]);
    if (std::isdigit(c)) digit = true;
    else if (c == 0xC2 && i + 1 < cell.size() && static_cast<unsigned char>(cell[i + 1]) == 0xB1) ++i;  // ±
    else if (!std::strchr(" .,+-%eExX()*", c)) return false;
  }
  return digit;
}

}  // namespace

void HtmlReport::table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                       const std::string& caption) {
  // A column is numeric when every cell is: numbers right-aligned, text left-aligned,
  // header cells aligned with their column.
  std::vector<bool> numeric(header.size(), true);
  for (const auto& r : rows) {
    GRAFT_CHECK(r.size() == header.size(), "report table '", caption, "': a row has ", r.size(), " cells for ",
                header.size(), " columns");
    for (size_t c = 0; c < r.size(); ++c) numeric[c] = numeric[c] && looks_numeric(r[c]);
  }
  auto cls = [&](size_t c) { return numeric[c] ? " class=\"num\"" : " class=\"text\""; };
  std::ostringstream s;
  s << "<table class=\"graft-table\">";
  if (!caption.empty()) s << "<caption>" << html_escape(caption) << "</caption>";
  s << "<thead><tr>";
  for (size_t c = 0; c < header.size(); ++c) s << "<th" << cls(c) << ">" << html_escape(header[c]) << "</th>";
  s << "</tr></thead><tbody>";
  for (const auto& r : rows) {
    s << "<tr>";
    for (size_t c = 0; c < r.size(); ++c) s << "<td" << cls(c) << ">" << html_escape(r[c]) << "</td>";
    s << "</tr>";
  }
  s << "</tbody></table>";
  parts_.push_back(s.str());
  ++tables_;
}

void HtmlReport::figure(const std::string& svg, const std::string& caption) {
  GRAFT_CHECK(svg.find("<svg") != std::string::npos, "report figure '", caption, "' is not an SVG document");
  auto at = svg.find("<svg");  // drop any XML prolog: inline SVG starts at its element
  parts_.push_back("<figure class=\"graft-figure\">" + svg.substr(at) + "<figcaption>" + html_escape(caption) +
                   "</figcaption></figure>");
  ++figures_;
}

std::string HtmlReport::html() const {
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" << html_escape(title_)
    << "</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
       "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:3px 8px;text-align:left;vertical-align:top}"
       ".num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
       "th{background:#eee}caption{font-weight:bold;text-align:left;padding:4px 0}"
       "figure{margin:1em 0}figcaption{font-size:90%;color:#555}</style></head>\n<body data-figures=\"pending\" "
       "data-tables=\"pending\">\n<h1>"
    << html_escape(title_) << "</h1>\n";
  for (const auto& p : parts_) s << p << "\n";
  s << "<script>document.body.dataset.figures=document.querySelectorAll('figure svg').length;"
       "document.body.dataset.tables=document.querySelectorAll('table tbody tr').length?"
       "document.querySelectorAll('table').length:0;</script>\n</body></html>\n";
  return s.str();
}

void HtmlReport::save(const std::string& path) const { graft::write_text_atomically(path, html()); }

}  // namespace graft::analysis
