#pragma once
/// Run folders (--out): one run at a time, no mixing of two runs' files, and resume
/// only with the configuration the run started with.
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace graft::io {

/// How a run treats the files an earlier run left in its folder.
enum class RunMode {
  kFresh,      ///< refuse a folder holding another run's files
  kResume,     ///< continue the run whose files are there (or start one if there are none)
  kOverwrite,  ///< remove graft's run files first (other files are kept)
};

/// The files graft writes into a run folder (the ones kOverwrite removes and whose
/// presence makes kFresh refuse): config.json, metrics.jsonl, result.json, model.ckpt,
/// model.pt, checkpoint.ckpt, checkpoint.prev.ckpt, best.ckpt, pretrained.ckpt,
/// report.html, curves.svg, prefix_cache.tmp.f32. Temp files "*.tmp.PID" count too.
const std::vector<std::string>& default_run_files();

/// Options of RunDir.
struct RunDirOptions {
  RunMode mode = RunMode::kFresh;
  std::vector<std::string> run_files = default_run_files();
  RunDirOptions& mode_(RunMode m) { mode = m; return *this; }
  RunDirOptions& run_files_(std::vector<std::string> v) { run_files = std::move(v); return *this; }
};

/// An open run folder. Construction creates the folder, takes an advisory lock
/// (flock on DIR/.lock, which records the holder's pid) held for the object's life,
/// removes temp files of dead processes (clean_stale_temp_files), then applies the mode.
/// Throws graft::Error:
///  - "DIR is in use by another graft run (pid N); wait for it or choose another --out"
///    when another process (or another RunDir in this process) holds the lock;
///  - in kFresh, naming the run files found, when the folder holds another run's files
///    ("pass --resume to continue it or --overwrite to replace it").
/// The lock is released by the destructor, or by the kernel when the process dies, so
/// a killed run never leaves the folder locked.
class RunDir {
 public:
  explicit RunDir(std::string dir, RunDirOptions opts = {});
  ~RunDir();
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;

  const std::string& path() const { return dir_; }
  /// DIR/name.
  std::string file(const std::string& name) const { return dir_ + "/" + name; }
  /// Run files present when the folder was opened (before kOverwrite removed them).
  const std::vector<std::string>& found() const { return found_; }
  /// Stale temp files removed when the folder was opened.
  const std::vector<std::string>& cleaned() const { return cleaned_; }

 private:
  std::string dir_;
  int fd_ = -1;
  std::vector<std::string> found_, cleaned_;
};

/// Options that may change when a run is resumed; every other option must be equal.
/// They change how the run is executed or reported, not what it computes: workers,
/// threads, quiet, log_every_s, checkpoint_every, cache (the cached and uncached paths
/// compute the same values), out_dir (the folder may be moved), resume, overwrite, and
/// device (a run may move between a GPU and the CPU; its figures then differ in the last bits).
/// Notably epochs may NOT change: the learning-rate schedule spans the planned epochs,
/// so more epochs would silently change the schedule of the epochs already run. To
/// train longer, start a new run from the model (graft finetune --model DIR/model.ckpt).
const std::vector<std::string>& resume_may_differ();

/// Compares the configuration saved by a run with the one a resume asks for. Keys are
/// compared recursively; an entry of may_differ matches a dotted path ("train.workers")
/// or its last component ("workers"). Throws graft::Error naming the first differing
/// option, with its saved and requested values:
///   "--resume with a different configuration: train.lr was 0.01, now 0.1; ..."
/// A key present on one side only counts as differing (value "(absent)").
void check_same_config(const nlohmann::json& saved, const nlohmann::json& current,
                       const std::vector<std::string>& may_differ = resume_may_differ());

}  // namespace graft::io
