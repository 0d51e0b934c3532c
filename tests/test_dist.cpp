// Data-parallel pieces: the torchrun environment, collectives between real processes
// (fork()ed ranks on 127.0.0.1), bucketed gradient averaging, sharding, failures, launch.
#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/torch.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <thread>

#include "graft/core/check.h"
#include "graft/data/dataset.h"
#include "graft/data/loader.h"
#include "graft/dist/context.h"
#include "graft/dist/data_parallel.h"
#include "graft/dist/launch.h"
#include "graft/models/zoo.h"
#include "test_util.h"

namespace graft::test {
namespace {

using dist::Context;
using dist::ContextOptions;
using dist::Env;

dist::EnvLookup lookup_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

std::string env_error(std::map<std::string, std::string> vars) {
  return error_of([&] { dist::parse_env(lookup_of(vars)); });
}

// --- environment -----------------------------------------------------------------------

TEST(DistEnv, OneProcessWhenUnset) {
  Env e = dist::parse_env(lookup_of({}));
  EXPECT_FALSE(e.distributed());
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.rank, 0);
}

TEST(DistEnv, ReadsTorchrunVariables) {
  Env e = dist::parse_env(lookup_of({{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"},
                                     {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "10.0.0.1"}, {"MASTER_PORT", "29500"}}));
  EXPECT_TRUE(e.distributed());
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.1");
  EXPECT_EQ(e.master_port, 29500);
  EXPECT_FALSE(e.agent_store);
  Env t = dist::parse_env(lookup_of({{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "127.0.0.1"},
                                     {"MASTER_PORT", "29500"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                     {"TORCHELASTIC_RESTART_COUNT", "2"}}));
  EXPECT_TRUE(t.agent_store);
  EXPECT_EQ(t.restart_count, 2);
  // LOCAL_RANK defaults to RANK on one machine.
  Env d = dist::parse_env(
      lookup_of({{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "1234"}}));
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 2);
}

TEST(DistEnv, BadEnvironmentIsOneLineNamingTheVariable) {
  const std::map<std::string, std::string> ok = {
      {"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  auto with = [&](std::string k, std::string v) {
    auto m = ok;
    m[k] = v;
    return env_error(m);
  };
  EXPECT_EQ(with("MASTER_ADDR", ""),
            "WORLD_SIZE=2 but MASTER_ADDR is not set: set MASTER_ADDR to the address of rank 0's machine "
            "(127.0.0.1 on one machine), or use graft launch");
  EXPECT_EQ(with("MASTER_PORT", ""),
            "WORLD_SIZE=2 but MASTER_PORT is not set: set MASTER_PORT to a free TCP port on rank 0's machine "
            "(e.g. 29500), or use graft launch");
  EXPECT_EQ(with("WORLD_SIZE", "two"),
            "WORLD_SIZE='two' is not a whole number; set WORLD_SIZE to an integer (torchrun sets it for each process)");
  EXPECT_EQ(with("RANK", "1x"),
            "RANK='1x' is not a whole number; set RANK to an integer (torchrun sets it for each process)");
  EXPECT_EQ(with("RANK", "2"), "RANK=2 is not below WORLD_SIZE=2: ranks run from 0 to WORLD_SIZE-1");
  EXPECT_EQ(with("WORLD_SIZE", "0"), "WORLD_SIZE=0 is out of range: expected 1..65536");
  EXPECT_EQ(with("MASTER_PORT", "70000"), "MASTER_PORT=70000 is out of range: expected 1..65535");
  EXPECT_EQ(with("LOCAL_RANK", "5"),
            "LOCAL_RANK=5 is not below LOCAL_WORLD_SIZE=2: local ranks run from 0 to the number of processes "
            "on this machine - 1");
  EXPECT_EQ(env_error({{"WORLD_SIZE", "2"}}),
            "WORLD_SIZE is set (2) but RANK is not: set RANK to this process's rank in 0..WORLD_SIZE-1");
  EXPECT_EQ(env_error({{"RANK", "0"}}),
            "RANK is set (0) but WORLD_SIZE is not: set both, as torchrun does, or neither for one process");
  for (auto& msg : {with("MASTER_ADDR", ""), with("RANK", "2"), env_error({{"RANK", "0"}})})
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

// --- sharding (no processes needed) ---------------------------------------------------

TEST(DistShard, ShardsCoverThePermutationOnceWithPadding) {
  for (int64_t n : {10, 12, 3}) {
    for (int64_t world : {2, 3, 4}) {
      data::LoaderOptions one = data::LoaderOptions().seed_(7);
      auto full = data::Loader::epoch_order(n, one, /*epoch=*/2);
      const int64_t per = (n + world - 1) / world;
      std::vector<int64_t> interleaved(static_cast<size_t>(per * world));
      std::set<int64_t> seen;
      for (int64_t r = 0; r < world; ++r) {
        auto shard = data::Loader::epoch_order(n, data::LoaderOptions().seed_(7).shard_(r, world), 2);
        ASSERT_EQ(static_cast<int64_t>(shard.size()), per) << "n=" << n << " world=" << world;
        for (int64_t k = 0; k < per; ++k) interleaved[k * world + r] = shard[k];
      }
      // Rank r's k-th index is position k*world+r of the permutation padded with its own start.
      for (size_t p = 0; p < interleaved.size(); ++p) EXPECT_EQ(interleaved[p], full[p % n]) << p;
      // So: every example exactly once, plus the padding (the first indices again).
      std::map<int64_t, int> count;
      for (auto i : interleaved) ++count[i];
      EXPECT_EQ(static_cast<int64_t>(count.size()), n);
      int64_t extra = 0;
      for (auto& [i, c] : count) extra += c - 1;
      EXPECT_EQ(extra, per * world - n);
    }
  }
}

TEST(DistShard, ShardsAreDisjointWhenWorldDividesTheData) {
  std::set<int64_t> all;
  for (int64_t r = 0; r < 4; ++r)
    for (auto i : data::Loader::epoch_order(40, data::LoaderOptions().seed_(1).shard_(r, 4), 0))
      EXPECT_TRUE(all.insert(i).second) << "index " << i << " in two shards";
  EXPECT_EQ(all.size(), 40u);
}

TEST(DistShard, WorldOfOneIsTheWholeEpoch) {
  auto a = data::Loader::epoch_order(50, data::LoaderOptions().seed_(3), 1);
  auto b = data::Loader::epoch_order(50, data::LoaderOptions().seed_(3).shard_(0, 1), 1);
  EXPECT_EQ(a, b);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> iota(50);
  std::iota(iota.begin(), iota.end(), 0);
  EXPECT_EQ(sorted, iota);
  EXPECT_NE(a, iota);  // shuffled
}

data::DatasetPtr toy(int64_t n) {
  auto x = at::arange(n, at::kFloat).view({n, 1});
  auto y = at::arange(n, at::kLong);
  return std::make_shared<data::TensorDataset>(x, y, std::vector<std::string>{}, "toy");
}

TEST(DistShard, LoaderReadsItsShardInEqualBatchCounts) {
  auto ds = toy(21);
  std::vector<int64_t> seen;
  std::vector<int64_t> batches;
  for (int64_t r = 0; r < 2; ++r) {
    data::Loader l(ds, data::Pipeline(), data::LoaderOptions().batch_size_(4).seed_(5).workers_(1).shard_(r, 2));
    l.start_epoch(3);
    int64_t nb = 0;
    while (auto b = l.next()) {
      ++nb;
      for (int64_t k = 0; k < b->label.numel(); ++k) seen.push_back(b->label[k].item<int64_t>());
    }
    EXPECT_EQ(nb, l.batches_per_epoch());
    batches.push_back(nb);
  }
  EXPECT_EQ(batches[0], batches[1]);
  EXPECT_EQ(batches[0], 3);  // 11 examples per rank
  EXPECT_EQ(seen.size(), 22u);
  std::set<int64_t> distinct(seen.begin(), seen.end());
  EXPECT_EQ(distinct.size(), 21u);
}

TEST(DistShard, WorldLargerThanTheBatchesIsRefused) {
  auto ds = toy(100);
  EXPECT_EQ(error_of([&] { data::Loader(ds, data::Pipeline(), data::LoaderOptions().batch_size_(64).shard_(0, 3)); }),
            "WORLD_SIZE=3 is larger than the 2 batch(es) of an epoch of " + ds->describe() +
                " (100 examples, --batch-size 64): lower the world size or --batch-size");
  EXPECT_NE(error_of([&] {
              data::Loader(ds, data::Pipeline(), data::LoaderOptions().batch_size_(40).drop_last_(true).shard_(1, 3));
            }).find("each rank reads 34 examples"),
            std::string::npos);
  EXPECT_NE(error_of([&] { data::Loader(ds, data::Pipeline(), data::LoaderOptions().shard_(2, 2)); }).find("rank 2"),
            std::string::npos);
}

// --- real ranks: fork()ed processes on 127.0.0.1 ----------------------------------------

struct Outcome {
  int code = -1;
  std::string message;  ///< what the rank wrote to its report file
  double seconds = 0;
};

/// Runs body(rank, env) in `world` forked processes joined through a TCPStore on a free
/// 127.0.0.1 port (or a FileStore when file_store is set). A rank reports by returning (exit 0,
/// its returned text) or throwing (exit 1, the message). Ranks still running after limit_s are
/// killed (code 137).
std::vector<Outcome> run_ranks(int world, const std::function<std::string(int, const Env&)>& body,
                               double limit_s = 60) {
  TempDir dir;
  const int port = dist::free_port("127.0.0.1");
  std::vector<pid_t> pids;
  auto t0 = std::chrono::steady_clock::now();
  for (int r = 0; r < world; ++r) {
    pid_t pid = fork();
    if (pid == 0) {
      Env e;
      e.world_size = world;
      e.rank = e.local_rank = r;
      e.local_world_size = world;
      e.master_addr = "127.0.0.1";
      e.master_port = port;
      int code = 0;
      std::string msg;
      try {
        msg = body(r, e);
      } catch (const std::exception& ex) {
        msg = ex.what();
        code = 1;
      }
      std::ofstream(dir / ("rank" + std::to_string(r))) << msg;
      _exit(code);
    }
    pids.push_back(pid);
  }
  std::vector<Outcome> out(static_cast<size_t>(world));
  std::vector<bool> done(static_cast<size_t>(world), false), stopped(static_cast<size_t>(world), false);
  for (int left = world; left > 0;) {
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (int r = 0; r < world; ++r) {
      int st = 0;
      if (done[r]) continue;
      if (waitpid(pids[r], &st, WNOHANG | WUNTRACED) == pids[r]) {
        if (WIFSTOPPED(st)) {
          stopped[r] = true;
          continue;
        }
        done[r] = true;
        --left;
        out[r].code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        out[r].seconds = t;
      } else if (t > limit_s) {
        kill(pids[r], SIGKILL);
      }
    }
    // A stopped rank (SIGSTOP) is killed once every other rank has finished.
    int n_stopped = 0;
    for (int r = 0; r < world; ++r) n_stopped += !done[r] && stopped[r];
    if (n_stopped > 0 && n_stopped == left)
      for (int r = 0; r < world; ++r)
        if (!done[r]) kill(pids[r], SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (int r = 0; r < world; ++r) {
    std::ifstream f(dir / ("rank" + std::to_string(r)));
    std::stringstream ss;
    ss << f.rdbuf();
    out[r].message = ss.str();
  }
  return out;
}

ContextOptions fast() { return ContextOptions().timeout_s_(30).heartbeat_s_(0.5).heartbeat_timeout_s_(3); }

std::string values(const at::Tensor& t) {
  std::ostringstream os;
  auto c = t.to(at::kDouble).contiguous();
  for (int64_t i = 0; i < c.numel(); ++i) os << (i ? "," : "") << c.data_ptr<double>()[i];
  return os.str();
}

TEST(DistRanks, AllreduceAndBroadcastOverTcpStore) {
  auto res = run_ranks(2, [](int r, const Env& e) {
    Context ctx(e, fast());
    at::Tensor t = at::arange(6, at::kFloat) * static_cast<float>(r + 1);
    ctx.allreduce_sum(t);
    at::Tensor b = at::full({3}, static_cast<double>(10 + r), at::kDouble);
    ctx.broadcast(b, /*root=*/1);
    auto names = ctx.exchange("name", "r" + std::to_string(r));
    auto sums = dist::sum_over_ranks(ctx, {1.5, static_cast<double>(r)});
    ctx.finish();
    return values(t) + "|" + values(b) + "|" + names[0] + names[1] + "|" + values(at::tensor(sums));
  });
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(res[r].code, 0) << res[r].message;
    EXPECT_EQ(res[r].message, "0,3,6,9,12,15|11,11,11|r0r1|3,1") << "rank " << r;
  }
}

TEST(DistEnv, OneProcessContextIsANoOpAndResumeChecksTheWorldSize) {
  Context ctx;  // no environment: one process, no store
  EXPECT_FALSE(ctx.distributed());
  at::Tensor t = at::ones({3});
  ctx.allreduce_sum(t);
  ctx.barrier();
  EXPECT_TRUE(t.eq(1).all().item<bool>());
  EXPECT_EQ(dist::sum_over_ranks(ctx, {2.0}), std::vector<double>{2.0});
  EXPECT_EQ(error_of([&] { dist::check_resume_world_size(ctx, 1, "run/checkpoint.ckpt"); }), "");
  EXPECT_EQ(error_of([&] { dist::check_resume_world_size(ctx, 2, "run/checkpoint.ckpt"); }),
            "run/checkpoint.ckpt was written by a run of WORLD_SIZE=2 and this run has WORLD_SIZE=1: --resume needs "
            "the same world size (each rank's shard and the batch of a step depend on it); restart with 2 rank(s) "
            "or start a new run in another --out folder");
}

TEST(DistRanks, AllreduceOverFileStore) {
  TempDir dir;
  const std::string path = dir / "store";
  auto res = run_ranks(3, [&](int r, const Env& e) {
    Context ctx(e, fast().file_store_(path));
    at::Tensor t = at::full({4}, static_cast<double>(r), at::kDouble);
    ctx.allreduce_sum(t);
    ctx.finish();
    return values(t);
  });
  for (int r = 0; r < 3; ++r) EXPECT_EQ(res[r].message, "3,3,3,3") << "rank " << r << " code " << res[r].code;
}

TEST(DistRanks, BroadcastTensorsCopiesRankZerosParametersAndBuffers) {
  auto res = run_ranks(2, [](int r, const Env& e) {
    Context ctx(e, fast());
    at::manual_seed(100 + r);  // different start on each rank
    at::Tensor w = at::randn({5, 3}).requires_grad_(true);
    at::Tensor wt = at::randn({3, 4}).t();  // non-contiguous
    at::Tensor count = at::full({1}, 7 + r, at::kLong);
    dist::broadcast_tensors(ctx, {w, wt, count});
    ctx.finish();
    return values(w) + "|" + values(wt) + "|" + values(count) + "|" + (w.requires_grad() ? "grad" : "nograd");
  });
  at::manual_seed(100);
  at::Tensor w0 = at::randn({5, 3});
  at::Tensor wt0 = at::randn({3, 4}).t();
  const std::string expect = values(w0) + "|" + values(wt0) + "|7|grad";
  EXPECT_EQ(res[0].message, expect);
  EXPECT_EQ(res[1].message, expect);
}

// A two-layer network's gradient on rank r's own data, with parameter `c` used only on rank 0.
struct Net {
  std::vector<at::Tensor> params;
  Net() {
    at::manual_seed(3);
    params = {at::randn({6, 16}) * 0.3, at::randn({16}) * 0.1, at::randn({16, 4}) * 0.3, at::randn({4})};
    for (auto& p : params) p.requires_grad_(true);
  }
  at::Tensor loss(int rank) const {
    at::manual_seed(50 + rank);
    at::Tensor x = at::randn({8, 6});
    at::Tensor h = at::tanh(at::matmul(x, params[0]) + params[1]);
    at::Tensor out = at::matmul(h, params[2]);
    if (rank == 0) out = out + params[3];
    return out.pow(2).mean();
  }
};

std::string mean_grads_reference(int world) {
  Net net;
  std::vector<at::Tensor> sum;
  for (int r = 0; r < world; ++r) {
    for (auto& p : net.params) p.mutable_grad() = at::Tensor();
    net.loss(r).backward();
    for (size_t k = 0; k < net.params.size(); ++k) {
      at::Tensor g = net.params[k].grad().defined() ? net.params[k].grad() : at::zeros_like(net.params[k]);
      if (sum.size() <= k) sum.push_back(g.clone()); else sum[k] += g;
    }
  }
  std::string s;
  for (auto& g : sum) s += values(g / world) + "|";
  return s;
}

void expect_close_lists(const std::string& a, const std::string& b) {
  std::vector<double> x, y;
  for (auto* p : {&a, &b}) {
    std::string t = *p;
    for (char& c : t)
      if (c == '|' || c == ',') c = ' ';
    std::istringstream is(t);
    double v;
    auto& dst = p == &a ? x : y;
    while (is >> v) dst.push_back(v);
  }
  ASSERT_EQ(x.size(), y.size());
  ASSERT_GT(x.size(), 100u);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(x[i], y[i], 1e-6 + 1e-5 * std::abs(y[i])) << i;
}

void check_averaging(bool overlap) {
  auto res = run_ranks(2, [overlap](int r, const Env& e) {
    Context ctx(e, fast());
    Net net;
    // 200 bytes per bucket: several buckets, and the 6x16 matrix alone in one.
    dist::GradientAverager avg(ctx, net.params, dist::GradientAveragerOptions().bucket_bytes_(200).overlap_(overlap));
    GRAFT_CHECK(avg.bucket_sizes().size() >= 3, "expected several buckets, got ", avg.bucket_sizes().size());
    std::string s;
    for (int step = 0; step < 2; ++step) {  // twice: buckets are reset between steps
      for (auto& p : net.params) p.mutable_grad() = at::Tensor();
      avg.prepare();
      net.loss(r).backward();
      avg.finish();
    }
    for (auto& p : net.params) s += values(p.grad()) + "|";
    ctx.finish();
    return s;
  });
  const std::string ref = mean_grads_reference(2);
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(res[r].code, 0) << res[r].message;
    expect_close_lists(res[r].message, ref);
  }
  EXPECT_EQ(res[0].message, res[1].message);  // bit-identical on both ranks
}

TEST(DistRanks, BucketedGradientAveragingOverlappedWithBackwardIsTheMean) { check_averaging(true); }
TEST(DistRanks, BucketedGradientAveragingAfterBackwardIsTheMean) { check_averaging(false); }

// The pieces composed by hand into a data-parallel SGD loop: sharded loader, broadcast at start,
// averaged gradients. One process with batch 2B and `world` ranks with batch B each see the same
// examples per step (rank r's batch k holds positions 2j + r of the permutation, j in batch k),
// so they must reach the same weights.
std::string sgd_run(Context& ctx, int64_t batch, int steps) {
  const int64_t n = 256;
  at::manual_seed(0);
  auto x = at::randn({n, 8});
  auto y = at::randint(0, 4, {n}, at::kLong);
  auto ds = std::make_shared<data::TensorDataset>(x, y, std::vector<std::string>{}, "toy");
  auto model = models::create_model("mlp", {8}, 4, /*seed=*/1 + static_cast<uint64_t>(ctx.rank()));
  std::vector<at::Tensor> params;
  for (auto& [name, p] : model->named_parameters()) params.push_back(p);
  dist::broadcast_tensors(ctx, params);  // ranks started from different seeds
  torch::optim::SGD opt(params, torch::optim::SGDOptions(0.1).momentum(0.9));
  dist::GradientAverager avg(ctx, params);
  data::Loader loader(ds, data::Pipeline(),
                      data::LoaderOptions().batch_size_(batch).seed_(4).workers_(0).shard_(ctx.rank(), ctx.world_size()));
  int done = 0;
  for (int64_t epoch = 0; done < steps; ++epoch) {
    loader.start_epoch(epoch);
    while (auto b = loader.next()) {
      if (done++ == steps) break;
      opt.zero_grad();
      avg.prepare();
      at::cross_entropy_loss(model->forward(b->input), b->label).backward();
      avg.finish();
      opt.step();
    }
  }
  std::string s;
  for (auto& p : params) s += values(p) + "|";
  return s;
}

TEST(DistRanks, TwoRanksOfBatch32MatchOneProcessOfBatch64) {
  Context one;
  const std::string ref = sgd_run(one, 64, /*steps=*/10);  // 2.5 epochs
  auto res = run_ranks(2, [](int, const Env& e) {
    Context ctx(e, fast());
    std::string s = sgd_run(ctx, 32, 10);
    ctx.finish();
    return s;
  });
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(res[r].code, 0) << res[r].message;
    expect_close_lists(res[r].message, ref);
  }
  EXPECT_EQ(res[0].message, res[1].message);  // the ranks hold bit-identical weights
  // And it is a real check: one process with batch 32 ends elsewhere.
  Context again;
  EXPECT_NE(sgd_run(again, 32, 10), ref);
}

TEST(DistRanks, BatchNormStatisticsAveragedOnRequest) {
  auto res = run_ranks(2, [](int r, const Env& e) {
    Context ctx(e, fast());
    at::Tensor mean = at::full({3}, static_cast<double>(2 * r), at::kFloat);
    at::Tensor var = at::full({3}, static_cast<double>(1 + r), at::kFloat);
    at::Tensor tracked = at::full({1}, 5 + r, at::kLong);
    auto stats = dist::batchnorm_stats({{"bn1.running_mean", mean}, {"bn1.running_var", var},
                                        {"bn1.num_batches_tracked", tracked}, {"fc.weight", at::ones({2})}});
    GRAFT_CHECK(stats.size() == 2, "expected 2 statistics, got ", stats.size());
    dist::average_tensors(ctx, stats);
    ctx.finish();
    return values(mean) + "|" + values(var) + "|" + values(tracked);
  });
  EXPECT_EQ(res[0].message, "1,1,1|1.5,1.5,1.5|5");
  EXPECT_EQ(res[1].message, "1,1,1|1.5,1.5,1.5|6");
}

TEST(DistRanks, DifferentConfigurationIsRefusedOnEveryRank) {
  auto res = run_ranks(3, [](int r, const Env& e) {
    Context ctx(e, fast());
    nlohmann::json cfg = {{"lr", r == 2 ? 0.1 : 0.01}, {"epochs", 3}};
    dist::check_same_config(ctx, cfg);
    ctx.finish();
    return std::string("same");
  });
  for (int r = 0; r < 3; ++r) {
    EXPECT_EQ(res[r].code, 1) << "rank " << r;
    EXPECT_NE(res[r].message.find("rank 2 runs a different configuration from rank 0's"), std::string::npos)
        << res[r].message;
    EXPECT_NE(res[r].message.find("lr (0.1 vs 0.01)"), std::string::npos) << res[r].message;
  }
  auto same = run_ranks(2, [](int, const Env& e) {
    Context ctx(e, fast());
    dist::check_same_config(ctx, {{"lr", 0.01}});
    ctx.finish();
    return std::string("same");
  });
  EXPECT_EQ(same[0].message, "same");
  EXPECT_EQ(same[1].message, "same");
}

// --- failures -----------------------------------------------------------------------------

TEST(DistFailure, RankThatExitsMakesTheOtherFailNamingIt) {
  auto res = run_ranks(3, [](int r, const Env& e) -> std::string {
    Context ctx(e, fast());
    at::Tensor t = at::ones({4});
    ctx.allreduce_sum(t);
    if (r == 2) _exit(5);  // dies without a word, like a killed process
    for (int i = 0; i < 100; ++i) ctx.allreduce_sum(t);
    return "finished";
  });
  EXPECT_EQ(res[2].code, 5);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(res[r].code, 1) << res[r].message;
    EXPECT_NE(res[r].message.find("rank 2 stopped"), std::string::npos) << res[r].message;
    EXPECT_LT(res[r].seconds, 15) << "the stated bound: the next collective fails, then <= 3 heartbeats";
  }
}

TEST(DistFailure, RankZeroDeathIsNamedByTheOthers) {
  auto res = run_ranks(2, [](int r, const Env& e) -> std::string {
    Context ctx(e, fast());
    at::Tensor t = at::ones({4});
    ctx.allreduce_sum(t);
    if (r == 0) _exit(6);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ctx.allreduce_sum(t);
    return "finished";
  });
  EXPECT_EQ(res[0].code, 6);
  EXPECT_EQ(res[1].code, 1);
  EXPECT_NE(res[1].message.find("rank 0 stopped"), std::string::npos) << res[1].message;
  EXPECT_LT(res[1].seconds, 15);
}

TEST(DistFailure, FrozenRankIsDetectedByItsHeartbeatBeforeTheTimeout) {
  // Rank 1 stops (SIGSTOP): its sockets stay open, so only the heartbeat tells.
  auto res = run_ranks(
      2,
      [](int r, const Env& e) -> std::string {
        Context ctx(e, fast());  // collective timeout 30 s, heartbeat timeout 3 s
        at::Tensor t = at::ones({4});
        ctx.allreduce_sum(t);
        if (r == 1) raise(SIGSTOP);
        ctx.allreduce_sum(t);
        return "finished";
      },
      /*limit_s=*/25);
  EXPECT_EQ(res[1].code, 128 + SIGKILL);  // killed by run_ranks once rank 0 has finished
  EXPECT_EQ(res[0].code, 1);
  EXPECT_NE(res[0].message.find("rank 1 stopped (no heartbeat for 3 s)"), std::string::npos) << res[0].message;
  EXPECT_LT(res[0].seconds, 12);
}

TEST(DistFailure, ReasonPublishedByAFailingRankIsQuoted) {
  auto res = run_ranks(2, [](int r, const Env& e) -> std::string {
    Context ctx(e, fast());
    if (r == 1) {
      ctx.abort("cannot read data.csv");
      _exit(2);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    at::Tensor t = at::ones({4});
    ctx.allreduce_sum(t);
    return "finished";
  });
  EXPECT_EQ(res[0].code, 1);
  EXPECT_NE(res[0].message.find("rank 1 failed: cannot read data.csv"), std::string::npos) << res[0].message;
}

TEST(DistFailure, PortInUseIsOneLineNamingMasterPort) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(s, 1), 0);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  const int port = ntohs(a.sin_port);
  Env e;
  e.world_size = 2;
  e.master_addr = "127.0.0.1";
  e.master_port = port;
  std::string msg = error_of([&] { Context ctx(e, fast().timeout_s_(5)); });
  close(s);
  EXPECT_EQ(msg, "MASTER_PORT=" + std::to_string(port) +
                     " is in use on 127.0.0.1: rank 0 cannot host the store there; pick a free port "
                     "(graft launch finds one)");
}

TEST(DistFailure, MissingRankZeroIsATimeoutNamingTheStore) {
  Env e;
  e.world_size = 2;
  e.rank = 1;
  e.master_addr = "127.0.0.1";
  e.master_port = dist::free_port("127.0.0.1");
  auto t0 = std::chrono::steady_clock::now();
  std::string msg = error_of([&] { Context ctx(e, fast().timeout_s_(2)); });
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(msg.find("rank 1 could not reach the store at MASTER_ADDR:MASTER_PORT=127.0.0.1:"), std::string::npos)
      << msg;
  EXPECT_LT(s, 10);
}

// --- graft launch ---------------------------------------------------------------------------

TEST(DistLaunch, RunsRanksThatJoinAndCheck) {
  auto r = cli("launch --nproc 3 -- dist-check --mb 0.1 --steps 3");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("dist-check: 3 ranks joined at 127.0.0.1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("allreduce sums correctly"), std::string::npos) << r.out;
  // Only rank 0 reports.
  EXPECT_EQ(r.out.find("dist-check", r.out.find("dist-check") + 1), std::string::npos) << r.out;
}

TEST(DistLaunch, DeadRankStopsTheRunWithItsExitCode) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = cli("launch --nproc 2 --grace 20 -- dist-check --mb 0.1 --steps 100000 --exit-rank 1");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("graft launch: rank 1 exited with code 3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("graft: error: distributed run stopped on rank 0: rank 1 stopped"), std::string::npos) << r.out;
  EXPECT_LT(s, 20) << "rank 0 stopped on its own, before the grace period ran out";
}

TEST(DistLaunch, RanksThatDoNotStopAreKilledAfterTheGrace) {
  // Rank 0 needs about 3 s to name the dead rank (its heartbeat must go stale); with a grace of
  // 0.5 s launch terminates it first.
  auto t0 = std::chrono::steady_clock::now();
  auto r = cli("launch --nproc 2 --grace 0.5 -- dist-check --mb 0.1 --steps 100000 --exit-rank 1");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("graft launch: rank 1 exited with code 3; the others get 0.5 s to stop"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("distributed run stopped on rank 0"), std::string::npos) << r.out;
  EXPECT_LT(s, 15);
}

TEST(DistLaunch, TorchrunStartsGraftUnchanged) {
  if (!std::filesystem::exists("/usr/bin/torchrun")) GTEST_SKIP() << "no /usr/bin/torchrun (Debian python3-torch)";
  TempDir logs;
  // Debian's torchrun (torch 1.13, Python 3.11) cannot parse its default "-r 0 -t 0" (an IntFlag
  // change in 3.11 hides Std.NONE); "-r 1 -t 1" sends each rank's stdout to a file and the console.
  const int port = dist::free_port("127.0.0.1");
  auto r = run("GRAFT_NO_BLAS_WARNING=1 /usr/bin/torchrun --nproc_per_node 2 --no_python -r 1 -t 1 --log_dir " +
               logs.path() + " --master_port " + std::to_string(port) + " " + graft_bin() +
               " dist-check --mb 0.1 --steps 2");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("dist-check: 2 ranks joined at 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << r.out;
}

TEST(DistLaunch, BadInvocationsAreOneLine) {
  auto r = cli("launch --nproc 2 -- launch --nproc 2 -- dist-check");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("graft launch: the command to run is another launch"), std::string::npos) << r.out;
  auto bad = run("WORLD_SIZE=2 RANK=0 MASTER_PORT=29500 MASTER_ADDR= " + graft_bin() + " dist-check");
  EXPECT_EQ(bad.code, 1);
  EXPECT_NE(bad.out.find("graft: error: WORLD_SIZE=2 but MASTER_ADDR is not set"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace graft::test
