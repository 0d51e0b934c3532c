// libFuzzer harness: .npy parser (from memory) and the label checks of npy datasets.
#include "fuzz_common.h"
#include "graft/data/dataset.h"
#include "graft/io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  graft::fuzz::expect_clean([&] {
    auto t = graft::io::read_npy_buffer(data, size, "fuzz.npy");
    if (t.dim() == 1 && !t.is_floating_point()) graft::data::check_labels(t, "fuzz.npy");
  });
  return 0;
}
