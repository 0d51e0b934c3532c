// libFuzzer harness: dataset specs ("npy:X,Y@classes=0-1@per-class=2", ...) against small
// real datasets made once in a scratch folder, which is also $GRAFT_DATA and the
// working directory, so relative names in the spec resolve there.
#include <ATen/ATen.h>
#include <sys/stat.h>

#include <filesystem>

#include "fuzz_common.h"
#include "graft/data/readers.h"
#include "graft/data/registry.h"
#include "graft/io/npy.h"

namespace {

void write(const std::string& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

void setup() {
  std::string dir = graft::fuzz::scratch(".spec");
  std::filesystem::create_directories(dir + "/f/a");
  std::filesystem::create_directories(dir + "/f/b");
  std::filesystem::create_directories(dir + "/toy");
  graft::io::write_npy(dir + "/x.npy", at::rand({12, 2}));
  graft::io::write_npy(dir + "/y.npy", at::arange(12, at::kLong).remainder(3));
  graft::io::write_npy(dir + "/toy/train_x.npy", at::rand({6, 2}));
  graft::io::write_npy(dir + "/toy/train_y.npy", at::arange(6, at::kLong).remainder(2));
  std::string idx_img = std::string("\0\0\x08\x03\0\0\0\x04\0\0\0\x02\0\0\0\x02", 16) + std::string(16, '\x7f');
  std::string idx_lab = std::string("\0\0\x08\x01\0\0\0\x04", 8) + std::string("\0\1\0\1", 4);
  write(dir + "/img.idx", idx_img);
  write(dir + "/lab.idx", idx_lab);
  // A 2x2 8-bit gray PGM per class: valid images for folder: and list:.
  std::string pgm = std::string("P5\n2 2\n255\n") + std::string("\x10\x20\x30\x40", 4);
  write(dir + "/f/a/1.pgm", pgm);
  write(dir + "/f/b/1.pgm", pgm);
  write(dir + "/list.txt", "f/a/1.pgm 0\nf/b/1.pgm 1\n");
  setenv("GRAFT_DATA", dir.c_str(), 1);
  std::filesystem::current_path(dir);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setup();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 512) return 0;
  std::string spec(reinterpret_cast<const char*>(data), size);
  // Datasets in the cache folder only: mnist:/fashion-mnist: read 60000 images per input.
  if (spec.rfind("mnist", 0) == 0 || spec.rfind("fashion-mnist", 0) == 0) return 0;
  // Stay inside the scratch folder: no absolute paths, no way up (folder:/ would walk the disk).
  if (spec.find('/') != std::string::npos || spec.find("..") != std::string::npos) return 0;
  graft::fuzz::expect_clean([&] {
    auto d = graft::data::open_dataset(spec);
    d->labels();
    d->input_shape();
    if (d->size() > 0) d->get(d->size() - 1);
  });
  return 0;
}
