// Times training steps (forward, backward, SGD update) of a zoo model on a fixed
// random batch held in memory: the compute side of training, without data loading.
// Prints one JSON line. Peer: bench/py/train_step.py.
#include <torch/torch.h>

#include <chrono>
#include <iostream>
#include <string>

#include "graft/core/runtime.h"

#include "graft/models/zoo.h"

int main(int argc, char** argv) {
  graft::tune_allocator();  // as the graft CLI does
  std::string arch = "dann_mnist";
  int64_t batch = 128, steps = 200, warmup = 20, threads = 2, channels = 1, size = 28;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") arch = v;
    else if (k == "--batch") batch = std::stoll(v);
    else if (k == "--steps") steps = std::stoll(v);
    else if (k == "--threads") threads = std::stoll(v);
    else if (k == "--channels") channels = std::stoll(v);
    else if (k == "--size") size = std::stoll(v);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  torch::set_num_threads(static_cast<int>(threads));
  auto model = graft::models::create_model(arch, {channels, size, size}, 10, 0);
  std::vector<torch::Tensor> params;
  for (auto& [n, p] : model->named_parameters()) params.push_back(p);
  torch::optim::SGD opt(params, torch::optim::SGDOptions(0.01).momentum(0.9));
  torch::manual_seed(0);
  auto x = torch::randn({batch, channels, size, size});
  auto y = torch::randint(0, 10, {batch});
  model->train(true);
  auto step = [&] {
    opt.zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    opt.step();
    return loss.item<double>();
  };
  for (int64_t i = 0; i < warmup; ++i) step();
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i) step();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "{\"impl\": \"graft\", \"model\": \"" << arch << "\", \"batch\": " << batch << ", \"threads\": " << threads
            << ", \"ms_per_step\": " << 1000 * s / steps << "}\n";
}
