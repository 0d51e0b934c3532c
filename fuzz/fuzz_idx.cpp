// libFuzzer harness: IDX reader (raw and gzip) and the IDX dataset checks.
#include "fuzz_common.h"
#include "graft/data/readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& path = graft::fuzz::scratch(".idx");
  graft::fuzz::write_file(path, data, size);
  graft::fuzz::expect_clean([&] {
    auto t = graft::data::read_idx(path);
    if (t.dim() >= 3) graft::data::load_idx_dataset(path, path, {}, "fuzz");  // images and labels from one file
  });
  return 0;
}
