#include "graft/core/check.h"
#include "graft/core/parse.h"

#include <algorithm>
#include <utility>

namespace graft {

std::vector<std::string> close_matches(const std::string& name, const std::vector<std::string>& cands, size_t n) {
  auto dist = [](const std::string& a, const std::string& b) {
    std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& c : cands) {
    size_t d = dist(name, c);
    bool sub = c.find(name) != std::string::npos || name.find(c) != std::string::npos;
    if (d <= std::max<size_t>(2, name.size() / 2) || sub) scored.emplace_back(sub ? 0 : d, c);
  }
  std::stable_sort(scored.begin(), scored.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < n; ++i) out.push_back(scored[i].second);
  return out;
}

void check_choice(const std::string& option, const std::string& value, const std::vector<std::string>& allowed) {
  if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
  std::string list, hint;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  auto close = close_matches(value, allowed, 1);
  if (!close.empty()) hint = "; did you mean " + close[0] + "?";
  GRAFT_FAIL("--", option, " '", value, "' is not one of ", list, hint);
}

int64_t parse_int(const std::string& text, int64_t lo, int64_t hi, const std::string& what) {
  size_t i = !text.empty() && text[0] == '-' ? 1 : 0;
  bool ok = text.size() > i && text.size() - i <= 19 && text.find_first_not_of("0123456789", i) == std::string::npos;
  int64_t v = 0;
  if (ok) {
    // At most 19 digits: fits in unsigned 64 bits without overflow; then range-check.
    unsigned long long u = 0;
    for (size_t k = i; k < text.size(); ++k) u = u * 10 + static_cast<unsigned>(text[k] - '0');
    ok = u <= static_cast<unsigned long long>(INT64_MAX);
    v = i ? -static_cast<int64_t>(u) : static_cast<int64_t>(u);
  }
  GRAFT_CHECK(ok && v >= lo && v <= hi, what, ": '", text, "' is not an integer in [", lo, ", ", hi, "]");
  return v;
}

std::string brief(const std::string& message) {
  size_t begin = 0;
  std::string line;
  while (begin < message.size()) {
    size_t end = message.find('\n', begin);
    if (end == std::string::npos) end = message.size();
    line = message.substr(begin, end - begin);
    if (line.find_first_not_of(" \t\r") != std::string::npos) break;
    line.clear();
    begin = end + 1;
  }
  for (auto& c : line)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  const size_t first = line.find_first_not_of(' '), last = line.find_last_not_of(' ');
  line = first == std::string::npos ? std::string() : line.substr(first, last - first + 1);
  return line.size() > 200 ? line.substr(0, 197) + "..." : line;
}

}  // namespace graft
