// libFuzzer harness: list-file parser ("path label" lines).
#include "fuzz_common.h"
#include "graft/data/readers.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  graft::fuzz::expect_clean([&] { graft::data::parse_list_file(text, "/fuzz/list.txt"); });
  return 0;
}
