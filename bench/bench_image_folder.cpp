// Times one pass over an image folder: lazy JPEG/PNG decode + transforms + batching
// with the parallel loader. Prints one JSON line. Peer: bench/py/image_folder.py.
#include <ATen/Parallel.h>

#include <chrono>
#include <iostream>
#include <string>

#include "graft/core/runtime.h"

#include "graft/data/loader.h"
#include "graft/data/readers.h"

int main(int argc, char** argv) {
  graft::tune_allocator();  // as the graft CLI does
  std::string root, transforms = "resize=128,center-crop=112,hflip,normalize=0.485/0.456/0.406:0.229/0.224/0.225";
  int64_t batch = 64;
  int workers = 2, epochs = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--root") root = v;
    else if (k == "--transforms") transforms = v;
    else if (k == "--batch") batch = std::stoll(v);
    else if (k == "--workers") workers = std::stoi(v);
    else if (k == "--epochs") epochs = std::stoi(v);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  at::set_num_threads(1);
  auto ds = graft::data::load_image_folder(root, graft::data::ImageFileOptions().channels_(3));
  graft::data::Loader loader(ds, graft::data::Pipeline::parse(transforms),
                             graft::data::LoaderOptions().batch_size_(batch).workers_(workers).seed_(0));
  double best = 1e30;
  int64_t n = 0;
  for (int e = 0; e < epochs; ++e) {
    auto t0 = std::chrono::steady_clock::now();
    loader.start_epoch(e);
    n = 0;
    double checksum = 0;
    while (auto b = loader.next()) {
      n += b->size();
      checksum += b->input[0][0][0][0].item<double>();
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    (void)checksum;
  }
  std::cout << "{\"impl\": \"graft\", \"images\": " << n << ", \"workers\": " << workers
            << ", \"images_per_s\": " << n / best << "}\n";
}
