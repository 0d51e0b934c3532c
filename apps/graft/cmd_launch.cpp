// graft launch: runs a graft verb as N local data-parallel ranks, the way torchrun would
// (WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), with rank 0
// hosting the store on a free port of 127.0.0.1.
#include <unistd.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/dist/data_parallel.h"
#include "graft/dist/launch.h"
#include "graft/models/zoo.h"

namespace graft::cli {

namespace {

std::string self_exe() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  GRAFT_CHECK(n > 0, "graft launch: cannot find its own executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Times data-parallel training steps of a zoo model on random data: forward+backward
// ("compute") and the gradient averaging, once after backward and once overlapped with it.
// Every rank runs the same steps; rank 0 prints. One process: compute alone (the baseline).
void step_benchmark(dist::Context& ctx, const std::string& arch, int64_t batch, int steps) {
  const auto shape = default_input_shape(arch);
  auto model = models::create_model(arch, shape, /*num_classes=*/10, /*seed=*/1);
  model->train(true);
  std::vector<at::Tensor> params;
  int64_t numel = 0;
  for (auto& [name, p] : model->named_parameters())
    if (p.requires_grad()) params.push_back(p), numel += p.numel();
  dist::broadcast_tensors(ctx, params);
  std::vector<int64_t> xs{batch};
  xs.insert(xs.end(), shape.begin(), shape.end());
  at::manual_seed(10 + static_cast<uint64_t>(ctx.rank()));
  const at::Tensor x = at::randn(xs), y = at::randint(0, 10, {batch}, at::kLong);
  std::ostringstream report;
  report << std::fixed << std::setprecision(2) << "dist-check: " << arch << ", " << numel << " parameters ("
         << numel * 4.0 / (1 << 20) << " MiB of gradients), batch " << batch << " per rank, " << ctx.world_size()
         << " rank(s), " << at::get_num_threads() << " thread(s) each, median of " << steps << " steps:";
  nlohmann::json row = {{"arch", arch}, {"world", ctx.world_size()}, {"batch_per_rank", batch},
                        {"threads", at::get_num_threads()}, {"grad_mib", numel * 4.0 / (1 << 20)}};
  for (bool overlap : {false, true}) {
    dist::GradientAverager avg(ctx, params, dist::GradientAveragerOptions().overlap_(overlap));
    std::vector<double> compute, wait;
    for (int s = 0; s < steps + 2; ++s) {  // two warm-up steps
      for (auto& p : params) p.mutable_grad() = at::Tensor();
      auto t0 = std::chrono::steady_clock::now();
      avg.prepare();
      at::cross_entropy_loss(model->forward(x), y).backward();
      auto t1 = std::chrono::steady_clock::now();
      avg.finish();
      auto t2 = std::chrono::steady_clock::now();
      if (s < 2) continue;
      compute.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      wait.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
    if (!ctx.distributed()) {
      report << " compute " << median(compute) << " ms/step";
      row["compute_ms"] = median(compute);
      break;
    }
    row[overlap ? "overlap_backward_ms" : "compute_ms"] = median(compute);
    row[overlap ? "overlap_wait_ms" : "allreduce_ms"] = median(wait);
    report << (overlap ? "; overlapped: backward " : " averaging after backward: compute ") << median(compute)
           << " ms + " << (overlap ? "wait " : "allreduce ") << median(wait) << " ms/step";
  }
  ctx.barrier();
  if (ctx.is_main()) std::cout << report.str() << "\n" << row.dump() << std::endl;
}

// graft dist-check: joins the run described by the torchrun environment, checks that an
// allreduce gives the right sum and times allreduces of one bucket's size.
void add_dist_check(CLI::App& app) {
  struct Opts {
    Common common;
    double mb = 25;
    int steps = 10;
    double timeout = 60;
    int exit_rank = -1;
    std::string model;
    int64_t batch = 32;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("dist-check",
                                 "Check a data-parallel set-up: run as every rank (graft launch --nproc 2 -- dist-check)");
  sub->add_option("--mb", o->mb, "MiB per timed allreduce")->check(CLI::Range(0.001, 4096.0))->capture_default_str();
  sub->add_option("--steps", o->steps, "timed allreduces")->check(CLI::Range(1, 100000))->capture_default_str();
  sub->add_option("--timeout", o->timeout, "seconds a collective may wait for the other ranks")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  sub->add_option("--model", o->model, "also time training steps of this zoo model (e.g. dann_mnist, resnet20)");
  sub->add_option("--batch", o->batch, "batch size per rank for --model")->check(CLI::Range(1, 65536))->capture_default_str();
  // Fault injection for the test suite: this rank exits with code 3 once it has joined.
  sub->add_option("--exit-rank", o->exit_rank, "")->group("");
  add_common(*sub, o->common);
  sub->callback([o] {
    apply_common(o->common);
    dist::Context ctx(dist::env_from_process(), dist::ContextOptions().timeout_s_(o->timeout));
    if (!o->model.empty()) step_benchmark(ctx, o->model, o->batch, o->steps);
    if (!ctx.distributed()) {
      std::cout << "dist-check: one process (WORLD_SIZE unset or 1): nothing to check" << std::endl;
      return;
    }
    dist::check_same_config(ctx, {{"mb", o->mb}, {"steps", o->steps}});
    if (ctx.rank() == o->exit_rank) {
      std::cerr << "dist-check: rank " << ctx.rank() << " exits now (--exit-rank)" << std::endl;
      std::_Exit(3);
    }
    const int64_t w = ctx.world_size();
    at::Tensor t = at::full({8}, static_cast<double>(ctx.rank() + 1), at::kDouble);
    ctx.allreduce_sum(t);
    GRAFT_CHECK(t.eq(static_cast<double>(w * (w + 1) / 2)).all().item<bool>(), "dist-check: the allreduce gave ",
                t[0].item<double>(), " instead of ", w * (w + 1) / 2);
    at::Tensor big = at::ones({std::max<int64_t>(1, static_cast<int64_t>(o->mb * (1 << 20) / 4))}, at::kFloat);
    std::vector<double> ms;
    for (int s = 0; s < o->steps; ++s) {
      auto t0 = std::chrono::steady_clock::now();
      ctx.allreduce_sum(big);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    const double med = ms[ms.size() / 2];
    ctx.finish();
    if (ctx.is_main())
      std::cout << "dist-check: " << w << " ranks joined at " << ctx.env().master_addr << ":" << ctx.env().master_port
                << "; allreduce sums correctly; " << o->mb << " MiB allreduce: median " << std::fixed
                << std::setprecision(2) << med << " ms (" << o->steps << " runs)" << std::endl;
  });
}

}  // namespace

void add_launch(CLI::App& app) {
  add_dist_check(app);
  struct Opts {
    dist::LaunchOptions launch;
    std::vector<std::string> command;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "launch", "Run a graft verb as N local data-parallel ranks: graft launch --nproc 2 -- train ARGS...");
  sub->add_option("--nproc", o->launch.nproc, "ranks to start on this machine")->required()->check(CLI::Range(1, 1024));
  sub->add_option("--port", o->launch.master_port, "MASTER_PORT of rank 0's store (0: a free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  sub->add_option("--grace", o->launch.grace_s,
                  "seconds the other ranks get to stop on their own after one fails, before SIGTERM")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  sub->add_flag("--all-output", o->launch.all_output, "also show the standard output of ranks other than 0");
  sub->add_option("command", o->command, "the graft verb and its arguments, after --")->required();
  sub->callback([o] {
    const std::string& verb = o->command.front();
    GRAFT_CHECK(verb != "launch", "graft launch: the command to run is another launch; give a training verb");
    GRAFT_CHECK(verb.empty() || verb[0] != '-', "graft launch: the command must start with a graft verb (got '", verb,
                "'); put launch's own options before --");
    std::vector<std::string> argv{self_exe()};
    argv.insert(argv.end(), o->command.begin(), o->command.end());
    int code = dist::launch(argv, o->launch);
    if (code != 0) throw CLI::RuntimeError(code);
  });
}

}  // namespace graft::cli
