#include <gtest/gtest.h>

#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "test_util.h"

using namespace graft;

TEST(Runtime, ClassifiesBlasPaths) {
  EXPECT_EQ(classify_blas_path("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0"), "reference");
  EXPECT_EQ(classify_blas_path("/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3"), "openblas");
  EXPECT_EQ(classify_blas_path("/usr/lib/x86_64-linux-gnu/blis-openmp/libblas.so.3"), "blis");
  EXPECT_EQ(classify_blas_path(""), "unknown");
}

TEST(Runtime, ThisProcessRunsOnAFastBlas) {
  // scripts/setup.sh installs libopenblas0-openmp; the reference BLAS here would make
  // every benchmark meaningless.
  auto info = detect_blas();
  EXPECT_FALSE(info.path.empty());
  EXPECT_NE(info.vendor, "reference") << info.path;
}

TEST(Runtime, WarnsOnceWhenForcedOntoReferenceBlas) {
  const std::string ref = "/usr/lib/x86_64-linux-gnu/blas";
  ASSERT_TRUE(std::filesystem::exists(ref + "/libblas.so.3")) << "Debian's libblas3 is a dependency of libtorch";
  auto r = test::run("LD_LIBRARY_PATH=" + ref + " " + test::graft_bin() + " layers mlp");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("reference BLAS"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("libopenblas0-openmp"), std::string::npos) << r.out;
  auto fast = test::run(test::graft_bin() + " layers mlp");
  EXPECT_EQ(fast.out.find("reference BLAS"), std::string::npos) << fast.out;
}

TEST(Runtime, RejectsUnknownDevices) {
  EXPECT_EQ(parse_device("cpu").type(), c10::kCPU);
  EXPECT_THROW(parse_device("gpu"), Error);
  EXPECT_THROW(set_threads(-1), Error);
}

TEST(Runtime, AllocatorTuningIsAccepted) {
  if (test::kAddressSanitizer) GTEST_SKIP() << "AddressSanitizer's allocator replaces glibc's and ignores mallopt";
  EXPECT_TRUE(tune_allocator());
}
