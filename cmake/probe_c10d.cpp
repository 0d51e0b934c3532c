// Configure-time probe (CMakeLists.txt, GRAFT_GLOO and NCCL): do libtorch's c10d process-group
// headers compile against the Gloo or NCCL headers found on this machine, and link?
#ifdef GRAFT_PROBE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
int main() { return c10d::ProcessGroupGloo::Options::create()->threads < 0; }
#else
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
int main() { return c10d::ProcessGroupNCCL::Options::create()->timeout.count() < 0; }
#endif
