#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>

#include "graft/core/check.h"
#include "graft/io/npy.h"
#include "test_util.h"

using namespace graft;

TEST(Npy, RoundTripsEveryDtype) {
  test::TempDir d;
  for (auto t : {at::kFloat, at::kDouble, at::kLong, at::kInt, at::kByte}) {
    auto x = (at::rand({3, 4, 5}) * 100).to(t);
    io::write_npy(d / "a.npy", x);
    auto y = io::read_npy(d / "a.npy");
    EXPECT_EQ(y.scalar_type(), t);
    EXPECT_TRUE(at::equal(x, y));
  }
  auto v = at::arange(7, at::kLong);
  io::write_npy(d / "v.npy", v);
  EXPECT_TRUE(at::equal(io::read_npy(d / "v.npy"), v));
}

TEST(Npy, WriterStreamsRowsAndLeavesNothingUntilClosed) {
  test::TempDir d;
  {
    io::NpyWriter w(d / "s.npy", {2, 3}, at::kFloat);
    w.append(at::ones({4, 2, 3}));
    w.append(at::zeros({1, 2, 3}));
    EXPECT_FALSE(std::filesystem::exists(d / "s.npy"));
    w.close();
  }
  auto x = io::read_npy(d / "s.npy");
  EXPECT_EQ(x.sizes(), at::IntArrayRef({5, 2, 3}));
  EXPECT_EQ(x.sum().item<float>(), 24.f);
  {
    io::NpyWriter w(d / "abandoned.npy", {2}, at::kFloat);
    w.append(at::ones({1, 2}));
    EXPECT_THROW(w.append(at::ones({1, 3})), Error);
  }  // destroyed without close(): no file, no temp left behind
  for (auto& e : std::filesystem::directory_iterator(d.path())) EXPECT_EQ(e.path().filename(), "s.npy");
}

TEST(Npy, NumpyReadsWhatWeWrite) {
  test::TempDir d;
  io::write_npy(d / "x.npy", at::arange(6, at::kFloat).view({2, 3}));
  auto r = test::run(test::python() + " -c \"import numpy as n; a=n.load('" + (d / "x.npy") +
                     "'); assert a.dtype==n.float32 and a.shape==(2,3) and a[1,2]==5; print('ok')\"");
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST(Npy, RejectsBadFiles) {
  test::TempDir d;
  EXPECT_THROW(io::read_npy(d / "missing.npy"), Error);
  std::ofstream(d / "bad.npy") << "not numpy at all";
  try {
    io::read_npy(d / "bad.npy");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.npy"), std::string::npos);
  }
  io::write_npy(d / "t.npy", at::ones({100}, at::kFloat));
  std::filesystem::resize_file(d / "t.npy", std::filesystem::file_size(d / "t.npy") - 10);
  EXPECT_THROW(io::read_npy(d / "t.npy"), Error);
  auto r = test::run(test::python() + " -c \"import numpy as n; n.save('" + (d / "c.npy") +
                     "', n.ones(3, dtype=n.complex64)); n.save('" + (d / "f.npy") +
                     "', n.asfortranarray(n.ones((3,2), dtype=n.float32)))\"");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_THROW(io::read_npy(d / "c.npy"), Error);
  EXPECT_THROW(io::read_npy(d / "f.npy"), Error);
}
