// libFuzzer harness: checkpoint reader (zip integrity check, then libtorch's loader and
// graft's metadata), the checkpoint-or-TorchScript test, and the zip checker and record reader
// alone.
#include "fuzz_common.h"
#include "graft/io/archive.h"
#include "graft/io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  graft::fuzz::expect_clean([&] { graft::io::verify_zip(data, size, "fuzz"); });
  graft::fuzz::expect_clean([&] { graft::io::zip_record(data, size, "data.pkl", "fuzz"); });
  const auto& path = graft::fuzz::scratch(".ckpt");
  graft::fuzz::write_file(path, data, size);
  graft::fuzz::expect_clean([&] { graft::io::is_checkpoint(path); });
  graft::fuzz::expect_clean([&] { graft::io::load_checkpoint(path); });
  return 0;
}
