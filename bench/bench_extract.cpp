// Times feature extraction (inference mode, forward up to the tapped layer, pooling)
// of a TorchScript model on a fixed random batch, counts the model's convolution and
// linear FLOPs from the operators it runs, and measures the machine's float32 matrix
// product peak for comparison. Prints one JSON line. Peer: bench/py/extract_speed.py.
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <string>

#include "graft/core/runtime.h"
#include "graft/features/extract.h"
#include "graft/models/zoo.h"

namespace {

using Clock = std::chrono::steady_clock;

// Multiply-adds of one aten::conv2d / aten::linear call from its input shapes.
double macs_of(const at::RecordFunction& fn) {
  auto in = fn.inputs();
  std::string name = fn.name();
  if (name == "aten::conv2d" && in.size() >= 7 && in[0].isTensor() && in[1].isTensor()) {
    auto x = in[0].toTensor().sizes();
    auto w = in[1].toTensor().sizes();
    auto stride = in[3].toIntVector(), pad = in[4].toIntVector(), dil = in[5].toIntVector();
    int64_t groups = in[6].toInt();
    double out = 1;
    for (int d = 0; d < 2; ++d) {
      int64_t o = (x[2 + d] + 2 * pad[d] - dil[d] * (w[2 + d] - 1) - 1) / stride[d] + 1;
      out *= static_cast<double>(o);
    }
    return static_cast<double>(x[0]) * static_cast<double>(w[0]) * out * static_cast<double>(x[1] / groups) *
           static_cast<double>(w[2] * w[3]);
  }
  if (name == "aten::linear" && in.size() >= 2 && in[0].isTensor() && in[1].isTensor()) {
    auto x = in[0].toTensor(), w = in[1].toTensor();
    return static_cast<double>(x.numel() / x.size(-1)) * static_cast<double>(w.size(0) * w.size(1));
  }
  return 0;
}

std::atomic<double> g_macs{0};

double matmul_gflops(int64_t n, int reps) {
  auto a = torch::randn({n, n}), b = torch::randn({n, n});
  auto c = torch::mm(a, b);
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    torch::mm_out(c, a, b);
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 2.0 * n * n * n / s / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  graft::tune_allocator();  // as the graft CLI does
  std::string path, layers = "avgpool";
  int64_t batch = 16, iters = 10, warmup = 2, threads = 2, size = 224, optimize = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") path = v;
    else if (k == "--layers") layers = v;
    else if (k == "--batch") batch = std::stoll(v);
    else if (k == "--iters") iters = std::stoll(v);
    else if (k == "--warmup") warmup = std::stoll(v);
    else if (k == "--threads") threads = std::stoll(v);
    else if (k == "--size") size = std::stoll(v);
    else if (k == "--optimize") optimize = std::stoll(v);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  if (path.empty()) {
    std::cerr << "usage: bench_extract --model FILE.pt [--layers avgpool] [--batch 16] [--iters 10] [--size 224]\n";
    return 2;
  }
  torch::set_num_threads(static_cast<int>(threads));
  auto model = graft::models::load_torchscript(path);
  model->train(false);
  graft::features::ExtractOptions opts;
  opts.layers = {layers};
  opts.pool = "avg";
  opts.optimize = false;
  graft::features::FeatureExtractor plain(*model, opts);
  opts.optimize = optimize != 0;  // graft extract's default: an inference-optimised TorchScript copy
  graft::features::FeatureExtractor fx(*model, opts);
  torch::manual_seed(0);
  auto x = torch::randn({batch, 3, size, size});

  // One counted pass for the FLOPs per image, on the unoptimised graph (whose operators
  // carry their shapes; the optimised one does the same arithmetic in fused operators).
  {
    auto handle = at::addGlobalCallback(
        at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
          double m = macs_of(fn);
          if (m > 0) g_macs.store(g_macs.load() + m);
          return nullptr;
        }).needsInputs(true));
    plain.per_layer(x);
    at::removeCallback(handle);
  }
  double gflops_per_image = 2.0 * g_macs.load() / static_cast<double>(batch) / 1e9;

  for (int64_t i = 0; i < warmup; ++i) fx.per_layer(x);
  auto t0 = Clock::now();
  int64_t dim = 0;
  for (int64_t i = 0; i < iters; ++i) dim = fx.per_layer(x).front().size(1);
  double s = std::chrono::duration<double>(Clock::now() - t0).count();
  double peak = matmul_gflops(2048, 5);
  std::cout << "{\"impl\": \"graft\", \"layer\": \"" << layers << "\", \"batch\": " << batch << ", \"size\": " << size
            << ", \"threads\": " << threads << ", \"optimized\": " << optimize << ", \"dim\": " << dim
            << ", \"images_per_s\": " << static_cast<double>(batch * iters) / s
            << ", \"ms_per_batch\": " << 1000 * s / static_cast<double>(iters)
            << ", \"gflops_per_image\": " << gflops_per_image << ", \"matmul_gflops\": " << peak << "}\n";
}
