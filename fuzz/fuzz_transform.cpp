// libFuzzer harness: transform-spec parser, and applying what it accepts to a small image.
#include <ATen/ATen.h>

#include <random>

#include "fuzz_common.h"
#include "graft/data/transforms.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  std::string spec(reinterpret_cast<const char*>(data), size);
  graft::fuzz::expect_clean([&] {
    auto p = graft::data::Pipeline::parse(spec);
    std::mt19937_64 rng(0);
    static const at::Tensor img = at::rand({3, 12, 10});
    p.apply(img, rng);
  });
  return 0;
}
