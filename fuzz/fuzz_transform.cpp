// libFuzzer harness: transform-spec parser. Every spec it accepts must print back to a
// spec it accepts again, and is applied to a small image, alone and as the first example of
// a batch (the two must agree). Specs naming a number above
// 64 are parsed but not applied: their cost is the memory and time the user asks for (the
// parser bounds outputs at 64 megapixels), not a parser bug; every transform runs the same
// code at 64 as at 512, and applying a 512x512 resize under ASan held the run to about 2,000
// executions per second.
#include <ATen/ATen.h>

#include <cctype>
#include <cstdlib>
#include <random>

#include "fuzz_common.h"
#include "graft/data/transforms.h"

namespace {
bool names_a_large_number(const std::string& s) {
  // every run of digits and points, read as a decimal number ("0.485" is small, "100" large)
  for (size_t i = 0; i < s.size();) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.')) ++j;
    if (std::strtod(s.substr(i, j - i).c_str(), nullptr) > 64) return true;
    i = j;
  }
  return false;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string spec(reinterpret_cast<const char*>(data), size);
  graft::fuzz::expect_clean([&] {
    auto p = graft::data::Pipeline::parse(spec);
    auto again = graft::data::Pipeline::parse(p.spec());
    if (again.spec() != p.spec()) {
      std::fprintf(stderr, "spec does not round-trip: '%s' -> '%s'\n", p.spec().c_str(), again.spec().c_str());
      std::abort();
    }
    if (names_a_large_number(spec) || names_a_large_number(p.spec())) return;
    std::mt19937_64 rng(0);
    static const at::Tensor img = at::rand({3, 12, 10});
    auto one = p.apply(img, rng);
    // A batch whose first example is img, with img's stream first, must give img's result:
    // the loader augments batches, the per-example path is the reference.
    static const at::Tensor batch = at::stack({img, at::rand({3, 12, 10}), img.flip({-1})});
    at::Tensor many;
    try {
      many = p.apply_batch(batch, {0, 1, 2});
    } catch (const std::exception& e) {
      std::fprintf(stderr, "'%s': the batch failed where the example alone passed: %s\n", spec.c_str(), e.what());
      std::abort();
    }
    if (many.size(0) != 3 || !many[0].sizes().equals(one.sizes()) || !at::allclose(many[0], one, 1e-4, 1e-5)) {
      std::fprintf(stderr, "'%s': the batch's first example differs from the example alone\n", spec.c_str());
      std::abort();
    }
  });
  return 0;
}
