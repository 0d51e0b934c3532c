// The torchrun environment, the store and the process group. Compiled with USE_C10D_GLOO
// (Debian's TorchConfig.cmake does not define it; the Gloo classes are in libtorch_cpu).
#include "graft/dist/context.h"

#include <c10/util/Exception.h>
#include <glog/logging.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#ifdef GRAFT_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/version.h>
#ifdef GRAFT_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "graft/core/check.h"

namespace graft::dist {

namespace {

using ms = std::chrono::milliseconds;

// What the Gloo and NCCL process groups derive from: c10d::ProcessGroup in libtorch 1.13,
// c10d::Backend from 2.0 on (a ProcessGroup there is a front for backends). graft calls
// broadcast, allreduce and barrier, which both declare alike.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

int64_t parse_int(const std::string& name, const std::string& v, int64_t lo, int64_t hi) {
  size_t pos = 0;
  long long x = 0;
  try {
    x = std::stoll(v, &pos);
  } catch (const std::exception&) {
    pos = 0;
  }
  GRAFT_CHECK(pos > 0 && pos == v.size(), name, "='", v, "' is not a whole number; set ", name,
              " to an integer (torchrun sets it for each process)");
  GRAFT_CHECK(x >= lo && x <= hi, name, "=", x, " is out of range: expected ", lo, "..", hi);
  return x;
}

// The first line of an exception's message, without libtorch's backtrace.
std::string first_line(const std::exception& e) {
  std::string m = e.what();
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) m = c->what_without_backtrace();
  m = m.substr(0, m.find('\n'));
  return m.size() > 300 ? m.substr(0, 300) + "..." : m;
}

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

std::string where(const Env& e) { return str(e.master_addr, ":", e.master_port); }

// c10d logs socket retries and failures through glog on stderr; graft reports a failure in one
// line of its own. GRAFT_DIST_DEBUG=1 keeps c10d's log (for network set-up problems).
void quiet_c10d_log() {
  const char* debug = std::getenv("GRAFT_DIST_DEBUG");
  if (!debug || !*debug || std::string(debug) == "0") FLAGS_minloglevel = google::GLOG_FATAL;
}

[[maybe_unused]] bool is_loopback(const std::string& addr) {  // (used by the Gloo backend)
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

}  // namespace

void Pending::wait() {
  GRAFT_CHECK(wait_, "Pending::wait on a collective that was never started");
  auto w = std::move(wait_);
  wait_ = nullptr;
  w();
}

Env parse_env(const EnvLookup& lookup) {
  auto ws = lookup("WORLD_SIZE"), rk = lookup("RANK");
  Env e;
  if (!ws && !rk) return e;
  GRAFT_CHECK(ws, "RANK is set (", *rk, ") but WORLD_SIZE is not: set both, as torchrun does, or neither for one process");
  GRAFT_CHECK(rk, "WORLD_SIZE is set (", *ws, ") but RANK is not: set RANK to this process's rank in 0..WORLD_SIZE-1");
  e.world_size = parse_int("WORLD_SIZE", *ws, 1, 65536);
  e.rank = parse_int("RANK", *rk, 0, 65535);
  GRAFT_CHECK(e.rank < e.world_size, "RANK=", e.rank, " is not below WORLD_SIZE=", e.world_size,
              ": ranks run from 0 to WORLD_SIZE-1");
  auto lws = lookup("LOCAL_WORLD_SIZE"), lr = lookup("LOCAL_RANK");
  e.local_world_size = lws ? parse_int("LOCAL_WORLD_SIZE", *lws, 1, e.world_size) : e.world_size;
  e.local_rank = lr ? parse_int("LOCAL_RANK", *lr, 0, 65535) : e.rank % e.local_world_size;
  GRAFT_CHECK(e.local_rank < e.local_world_size, "LOCAL_RANK=", e.local_rank, " is not below LOCAL_WORLD_SIZE=",
              e.local_world_size, ": local ranks run from 0 to the number of processes on this machine - 1");
  auto addr = lookup("MASTER_ADDR"), port = lookup("MASTER_PORT");
  if (e.world_size > 1) {
    GRAFT_CHECK(addr, "WORLD_SIZE=", e.world_size, " but MASTER_ADDR is not set: set MASTER_ADDR to the address of ",
                "rank 0's machine (127.0.0.1 on one machine), or use graft launch");
    GRAFT_CHECK(port, "WORLD_SIZE=", e.world_size, " but MASTER_PORT is not set: set MASTER_PORT to a free TCP port ",
                "on rank 0's machine (e.g. 29500), or use graft launch");
  }
  if (addr) e.master_addr = *addr;
  if (port) e.master_port = parse_int("MASTER_PORT", *port, 1, 65535);
  e.agent_store = lookup("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
  if (auto rc = lookup("TORCHELASTIC_RESTART_COUNT"); rc && e.agent_store)
    e.restart_count = parse_int("TORCHELASTIC_RESTART_COUNT", *rc, 0, 1 << 30);
  return e;
}

Env env_from_process() {
  return parse_env([](const std::string& k) -> std::optional<std::string> {
    const char* v = std::getenv(k.c_str());
    if (!v || !*v) return std::nullopt;
    return std::string(v);
  });
}

std::string hash_text(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

struct Context::Impl {
  Env env;
  ContextOptions opts;
  c10::intrusive_ptr<c10d::Store> store;     ///< the main thread's connection
  c10::intrusive_ptr<c10d::Store> hb_store;  ///< the heartbeat's own (a TCPStore wait holds its connection)
  c10::intrusive_ptr<Collectives> pg;
  std::thread heartbeat;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  bool finished = false;
  bool failed = false;
  int64_t seq = 0;  ///< numbers exchange() calls, the same on every rank
  // Liveness as this rank last saw it: each rank's heartbeat value and when it last changed.
  std::vector<std::string> hb_seen;
  std::vector<std::chrono::steady_clock::time_point> hb_changed;

  ~Impl() { stop_heartbeat(); }
  void start_heartbeat();
  void stop_heartbeat();
  /// Counts this rank in and waits (timeout) until every rank has, naming the missing ones.
  void join();
  /// Runs f; any failure becomes graft::Error(diagnose(...)) and marks the context failed.
  void guarded(const std::function<void()>& f);
  /// Waits for a started collective, checking every half second that no rank has stopped.
  void wait_work(const c10::intrusive_ptr<c10d::Work>& w);
  /// Waits until the store holds every key, failing early when a rank has stopped.
  void wait_keys(const std::vector<std::string>& keys);
  /// Waits until the counter `key` reaches target, failing early when a rank has stopped.
  void wait_count(const std::string& key, int64_t target);
  /// The first other rank that has stopped: one that published a reason, one whose heartbeat
  /// has not changed for stale_s, or rank 0 when the store it hosts is gone. "" when none has.
  std::string who_stopped(double stale_s);
  std::string diagnose(const std::string& what);
  /// Marks the context failed, publishes `who` (the cause) and returns the one-line message.
  std::string fail(std::string who, const std::string& what);
  /// Publishes a failure's cause for the other ranks (the first cause wins). Never throws.
  void publish(const std::string& cause) noexcept;
};

/// Thrown inside guarded() when a rank has been seen to stop; already diagnosed.
struct Stopped : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace {

c10::intrusive_ptr<c10d::Store> tcp_store(const Env& e, bool server, ms timeout) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(e.master_port);
  o.isServer = server;
  // TCPStore's own join wait gives up silently after the timeout; Context::join() waits instead.
  o.waitWorkers = false;
  o.timeout = timeout;
  try {
    return c10::make_intrusive<c10d::TCPStore>(e.master_addr, o);
  } catch (const std::exception& ex) {
    std::string m = first_line(ex);
    if (server && (m.find("Address already in use") != std::string::npos || m.find("errno: 98") != std::string::npos))
      GRAFT_FAIL("MASTER_PORT=", e.master_port, " is in use on ", e.master_addr, ": rank 0 cannot host the store there; ",
                 "pick a free port (graft launch finds one)");
    if (server && m.find("ailed to bind") != std::string::npos)
      GRAFT_FAIL("rank 0 cannot host the store at MASTER_ADDR:MASTER_PORT=", where(e), " (", m,
                 "): MASTER_ADDR must be an address of rank 0's machine");
    if (server) GRAFT_FAIL("rank 0 cannot host the store at ", where(e), ": ", m);
    GRAFT_FAIL("rank ", e.rank, " could not reach the store at MASTER_ADDR:MASTER_PORT=", where(e), " within ",
               timeout.count() / 1000, " s (", m, "): is rank 0 running, and are MASTER_ADDR and MASTER_PORT right?");
  }
}

#ifdef GRAFT_WITH_GLOO
std::shared_ptr<::gloo::transport::Device> gloo_device(const Env& e) {
  // One machine: loopback. Several: the interface GLOO_SOCKET_IFNAME names, else the address
  // this machine's hostname resolves to (what torch.distributed does).
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (is_loopback(e.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}
#endif

c10::intrusive_ptr<Collectives> process_group(const Env& e, const ContextOptions& o,
                                                     const c10::intrusive_ptr<c10d::Store>& store, ms timeout) {
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>("pg/", store);
  if (o.backend == "nccl") {
#ifdef GRAFT_WITH_NCCL
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, e.rank, e.world_size, opts);
#else
    GRAFT_FAIL("distributed backend nccl needs graft built against a CUDA libtorch; this build has Gloo only: ",
               "use --device cpu");
#endif
  }
  GRAFT_CHECK(o.backend == "gloo", "distributed backend '", o.backend, "' is not one of gloo, nccl");
#ifdef GRAFT_WITH_GLOO
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
  opts->devices.push_back(gloo_device(e));
  opts->threads = 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, e.rank, e.world_size, opts);
#else
  (void)e, (void)timeout;
  GRAFT_FAIL("distributed backend gloo (several processes on CPUs) is not in this build of graft (configured with "
             "GRAFT_GLOO=OFF, or without Gloo headers that fit its libtorch: see CMake's message); run one process, "
             "or rebuild with fitting Gloo headers and -DGRAFT_GLOO=ON");
#endif
}

}  // namespace

Context::Context(Env env, ContextOptions opts) : env_(std::move(env)), opts_(std::move(opts)) {
  impl_ = std::make_unique<Impl>();
  impl_->env = env_;
  impl_->opts = opts_;
  if (!env_.distributed()) return;
  GRAFT_CHECK(opts_.timeout_s >= 1 && opts_.timeout_s <= 86400, "distributed timeout must be in [1, 86400] s, got ",
              opts_.timeout_s);
  GRAFT_CHECK(opts_.heartbeat_s >= 0 && opts_.heartbeat_timeout_s >= 2 * opts_.heartbeat_s,
              "distributed heartbeat timeout (", opts_.heartbeat_timeout_s, " s) must be at least twice the period (",
              opts_.heartbeat_s, " s)");
  const ms timeout(static_cast<int64_t>(opts_.timeout_s * 1000));
  // A peer that dies leaves its sockets closed; the next write to one of them (the store or
  // a Gloo pair, neither sends with MSG_NOSIGNAL everywhere) would kill this rank with SIGPIPE
  // before it could name the peer. Ignored, the write fails with EPIPE and the failure is
  // reported like any other (Python ignores SIGPIPE for the same reason).
  ::signal(SIGPIPE, SIG_IGN);
  quiet_c10d_log();
  if (!opts_.file_store.empty()) {
    try {
      impl_->store = c10::make_intrusive<c10d::FileStore>(opts_.file_store, static_cast<int>(env_.world_size));
    } catch (const std::exception& ex) {
      GRAFT_FAIL("cannot use the file store '", opts_.file_store, "': ", first_line(ex));
    }
    impl_->store->setTimeout(timeout);
    impl_->hb_store = impl_->store;
  } else {
    impl_->store = tcp_store(env_, /*server=*/env_.rank == 0 && !env_.agent_store, timeout);
    impl_->hb_store = tcp_store(env_, /*server=*/false, timeout);
    if (env_.agent_store) {
      const std::string prefix = str("/worker/attempt_", env_.restart_count);
      impl_->store = c10::make_intrusive<c10d::PrefixStore>(prefix, impl_->store);
      impl_->hb_store = c10::make_intrusive<c10d::PrefixStore>(prefix, impl_->hb_store);
    }
  }
  impl_->start_heartbeat();
  impl_->join();
  impl_->guarded([&] { impl_->pg = process_group(env_, opts_, impl_->store, timeout); });
}

Context::~Context() {
  if (!impl_) return;
  impl_->stop_heartbeat();
  // After a failure a collective may still be queued on a dead peer; destroying the process
  // group would wait for it (up to the timeout). The process is about to report and exit.
  if (impl_->failed && impl_->pg) impl_->pg.release();
}

void Context::Impl::start_heartbeat() {
  if (opts.heartbeat_s <= 0) return;
  heartbeat = std::thread([this] {
    const std::string key = str("graft/hb/", env.rank);
    const auto period = ms(static_cast<int64_t>(opts.heartbeat_s * 1000));
    for (int64_t n = 1;; ++n) {
      try {
        hb_store->set(key, bytes(std::to_string(n)));
      } catch (const std::exception&) {
        return;  // the store is gone: the main thread's next wait reports it
      }
      std::unique_lock<std::mutex> lk(mu);
      if (cv.wait_for(lk, period, [&] { return stop; })) return;
    }
  });
}

void Context::Impl::join() {
  const auto start = std::chrono::steady_clock::now();
  try {
    store->add("graft/join", 1);
    while (store->add("graft/join", 0) < env.world_size) {
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > opts.timeout_s) {
        std::string missing;
        for (int64_t r = 0; r < env.world_size; ++r)
          if (!store->check({str("graft/hb/", r)})) missing += str(missing.empty() ? "" : ", ", r);
        GRAFT_FAIL("rank ", env.rank, " waited ", static_cast<int64_t>(opts.timeout_s), " s for the other ranks to join at ",
                   where(env), (missing.empty() ? std::string() : " (missing: rank " + missing + ")"),
                   ": start all WORLD_SIZE=", env.world_size, " ranks with the same MASTER_ADDR and MASTER_PORT");
      }
      std::this_thread::sleep_for(ms(20));
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& ex) {
    GRAFT_FAIL("rank ", env.rank, " lost the store at ", where(env), " while the ranks joined: ", first_line(ex));
  }
}

void Context::Impl::stop_heartbeat() {
  {
    std::lock_guard<std::mutex> lk(mu);
    stop = true;
  }
  cv.notify_all();
  if (heartbeat.joinable()) heartbeat.join();
}

std::string Context::Impl::who_stopped(double stale_s) {
  const auto now = std::chrono::steady_clock::now();
  try {
    if (store->check({"graft/abort"})) return text(store->get("graft/abort"));
    if (opts.heartbeat_s <= 0) return "";
    if (hb_seen.empty()) {
      hb_seen.assign(static_cast<size_t>(env.world_size), "");
      hb_changed.assign(static_cast<size_t>(env.world_size), now);
    }
    for (int64_t r = 0; r < env.world_size; ++r) {
      if (r == env.rank) continue;
      const std::string key = str("graft/hb/", r);
      if (!store->check({key})) continue;  // not started yet (every rank has once it joined)
      std::string v = text(store->get(key));
      if (v != hb_seen[r]) {
        hb_seen[r] = v;
        hb_changed[r] = now;
      } else if (std::chrono::duration<double>(now - hb_changed[r]).count() >= stale_s) {
        return str("rank ", r, " stopped (no heartbeat for ", static_cast<int64_t>(stale_s), " s)");
      }
    }
  } catch (const std::exception&) {
    if (env.rank == 0) return "";
    if (env.agent_store) return str("the store at ", where(env), " (torchrun's agent hosts it) is gone");
    return str("rank 0 stopped (the store it hosted at ", where(env), " is gone)");
  }
  return "";
}

std::string Context::Impl::diagnose(const std::string& what) {
  failed = true;
  std::string who = who_stopped(3 * opts.heartbeat_s);
  // A rank that died a moment ago still has a fresh heartbeat: watch it go stale.
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(3.5 * opts.heartbeat_s);
  while (who.empty() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(ms(200));
    who = who_stopped(3 * opts.heartbeat_s);
  }
  return fail(who, what);
}

std::string Context::Impl::fail(std::string who, const std::string& what) {
  failed = true;
  if (who.empty()) who = "no other rank was seen to stop";
  publish(who);
  return str("distributed run stopped on rank ", env.rank, ": ", who, what.empty() ? "" : " [" + what + "]");
}

void Context::Impl::publish(const std::string& cause) noexcept {
  try {
    // The first cause wins: later ones are usually its consequences.
    if (store->add("graft/abort_n", 1) == 1) store->set("graft/abort", bytes(cause));
    store->add("graft/failed", 1);
    if (env.rank != 0) return;
    // Rank 0 hosts the store: give the others (all but one dead rank) time to read the cause,
    // or they could only report that the store is gone.
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(opts.heartbeat_timeout_s);
    while (store->add("graft/failed", 0) < env.world_size - 1 && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(ms(50));
  } catch (...) {
  }
}

void Context::Impl::guarded(const std::function<void()>& f) {
  try {
    f();
  } catch (const Stopped& e) {
    failed = true;
    GRAFT_FAIL(e.what());
  } catch (const Error&) {
    failed = true;
    throw;
  } catch (const std::exception& e) {
    GRAFT_FAIL(diagnose(first_line(e)));
  }
}

void Context::Impl::wait_work(const c10::intrusive_ptr<c10d::Work>& w) {
  // Work::wait(timeout) throws "Operation timed out!" when the work is still running; polling
  // this way lets a stopped rank be noticed long before the collective's own timeout.
  const auto start = std::chrono::steady_clock::now();
  while (true) {
    try {
      w->wait(ms(500));
      return;
    } catch (const std::exception&) {
      if (!w->isCompleted()) {
        double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (std::string who = who_stopped(opts.heartbeat_timeout_s); !who.empty())
          throw Stopped(fail(who, str("waited ", static_cast<int64_t>(waited), " s in a collective")));
        continue;
      }
      throw;
    }
  }
}

void Context::Impl::wait_keys(const std::vector<std::string>& keys) {
  const auto start = std::chrono::steady_clock::now();
  while (!store->check(keys)) {
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > opts.timeout_s)
      throw Stopped(diagnose(str("waited ", static_cast<int64_t>(waited), " s for the other ranks in the store")));
    if (std::string who = who_stopped(opts.heartbeat_timeout_s); !who.empty())
      throw Stopped(fail(who, ""));
    std::this_thread::sleep_for(ms(20));
  }
}

void Context::Impl::wait_count(const std::string& key, int64_t target) {
  const auto start = std::chrono::steady_clock::now();
  while (store->add(key, 0) < target) {
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (waited > opts.timeout_s)
      throw Stopped(diagnose(str("waited ", static_cast<int64_t>(waited), " s for the other ranks to finish")));
    if (std::string who = who_stopped(opts.heartbeat_timeout_s); !who.empty())
      throw Stopped(fail(who, ""));
    std::this_thread::sleep_for(ms(20));
  }
}

void Context::broadcast(at::Tensor& t, int64_t root) {
  if (!distributed()) return;
  GRAFT_CHECK(root >= 0 && root < world_size(), "broadcast root ", root, " is not a rank");
  impl_->guarded([&] {
    std::vector<at::Tensor> v{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    impl_->wait_work(impl_->pg->broadcast(v, o));
  });
}

void Context::allreduce_sum(at::Tensor& t) { allreduce_sum_async(t).wait(); }

Pending Context::allreduce_sum_async(at::Tensor t) {
  if (!distributed()) return Pending([] {});
  c10::intrusive_ptr<c10d::Work> w;
  impl_->guarded([&] {
    std::vector<at::Tensor> v{t};
    w = impl_->pg->allreduce(v);
  });
  // The tensor is captured so that it lives until the collective is done.
  return Pending([this, w, t] { impl_->guarded([&] { impl_->wait_work(w); }); });
}

void Context::barrier() {
  if (!distributed()) return;
  impl_->guarded([&] { impl_->wait_work(impl_->pg->barrier()); });
}

std::vector<std::string> Context::exchange(const std::string& name, const std::string& value) {
  if (!distributed()) return {value};
  const int64_t id = impl_->seq++;
  auto key = [&](int64_t r) { return str("graft/x/", id, "/", name, "/", r); };
  std::vector<std::string> keys, out;
  for (int64_t r = 0; r < world_size(); ++r) keys.push_back(key(r));
  impl_->guarded([&] {
    impl_->store->set(key(rank()), bytes(value));
    impl_->wait_keys(keys);
    for (auto& k : keys) out.push_back(text(impl_->store->get(k)));
    // Rank 0 hosts the store: it returns (and may fail and exit on what it read) only once
    // every rank has read everything.
    const std::string read = str("graft/x/", id, "/", name, "/read");
    impl_->store->add(read, 1);
    if (is_main()) impl_->wait_count(read, world_size());
  });
  return out;
}

void Context::abort(const std::string& reason) noexcept {
  if (!distributed() || !impl_ || !impl_->store || impl_->failed) return;  // a failure already published
  impl_->failed = true;
  impl_->publish(str("rank ", rank(), " failed: ", reason));
}

void Context::finish() {
  if (!distributed() || impl_->finished) return;
  impl_->guarded([&] {
    // Every rank counts itself in and waits for the count to reach the world size; then rank 0,
    // which hosts the store, leaves last, once every rank has seen the count.
    impl_->store->add("graft/finish", 1);
    impl_->wait_count("graft/finish", world_size());
    impl_->store->add("graft/finished", 1);
    if (is_main()) impl_->wait_count("graft/finished", world_size());
  });
  impl_->stop_heartbeat();
  impl_->finished = true;
}

namespace {
std::mutex g_process_mu;
Context* g_process_ctx = nullptr;  // never destroyed: static destructors run in no useful order
}  // namespace

bool is_main_process() {
  const char* r = std::getenv("RANK");
  return !r || !*r || std::string(r) == "0";
}

void finish_process_context() {
  std::lock_guard<std::mutex> lk(g_process_mu);
  if (g_process_ctx) g_process_ctx->finish();
}

void abort_process_context(const std::string& reason) noexcept {
  try {
    std::lock_guard<std::mutex> lk(g_process_mu);
    if (g_process_ctx) g_process_ctx->abort(reason);
  } catch (...) {
  }
}

Context& process_context(const std::string& device) {
  std::lock_guard<std::mutex> lk(g_process_mu);
  auto& ctx = g_process_ctx;
  const std::string backend = device.rfind("cuda", 0) == 0 ? "nccl" : "gloo";
  if (!ctx) {
    ContextOptions o;
    o.backend = backend;
    if (const char* t = std::getenv("GRAFT_DIST_TIMEOUT"); t && *t) {
      char* end = nullptr;
      o.timeout_s = std::strtod(t, &end);
      GRAFT_CHECK(end && *end == 0 && o.timeout_s >= 1 && o.timeout_s <= 86400, "GRAFT_DIST_TIMEOUT='", t,
                  "' is not a number of seconds in [1, 86400]");
    }
    ctx = new Context(env_from_process(), o);
  }
  GRAFT_CHECK(!ctx->distributed() || ctx->options().backend == backend, "this process joined the run with backend ",
              ctx->options().backend, "; a later training asks for ", backend, " (--device ", device,
              "): use one device per process");
  return *ctx;
}

std::string Context::diagnose(const std::string& what) {
  if (!distributed()) return what;
  return impl_->diagnose(what);
}

}  // namespace graft::dist
