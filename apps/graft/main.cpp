// graft: transfer learning and domain adaptation on libtorch. Each subcommand is a
// thin shell over the library. main() owns the conventions: usage errors are one line
// "graft: error: ..." with exit code 2, failed runs one line with exit code 1.
#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "common.h"
#include "graft/core/check.h"
#include "graft/core/runtime.h"
#include "graft/dist/context.h"
#include "graft/version.h"

namespace {

constexpr int kExitRunFailed = 1;
constexpr int kExitUsage = 2;

const char* kExitCodes =
    "Exit status: 0 success; 1 the run failed (bad data, unreadable model, diverged training, ...);\n"
    "2 usage error (unknown command or option, missing or bad option value: the message names the option);\n"
    "--help and --version exit 0.\n"
    "Runs that write a folder record command.txt and graft.toml in it: 'graft VERB --config DIR/graft.toml'\n"
    "replays the run.";

int usage_error(const std::string& msg, const std::string& verb) {
  std::cerr << "graft: error: " << msg << "\n"
            << "Run 'graft " << (verb.empty() ? "" : verb + " ") << "--help' for usage.\n";
  return kExitUsage;
}

/// The deepest subcommand the parser reached (for the --help pointer).
const CLI::App* deepest(const CLI::App& app) {
  const CLI::App* cur = &app;
  for (;;) {
    auto used = cur->get_subcommands();
    if (used.empty()) return cur;
    cur = used.front();
  }
}

void register_commands(CLI::App& app) {
  graft::cli::add_layers(app);
  graft::cli::add_train(app);
  graft::cli::add_finetune(app);
  graft::cli::add_extract(app);
  graft::cli::add_linear(app);
  graft::cli::add_transfer(app);
  graft::cli::add_adapt(app);
  graft::cli::add_pretrain(app);
  graft::cli::add_semisup(app);
  graft::cli::add_study(app);
  graft::cli::add_export(app);
  graft::cli::add_eval(app);
  graft::cli::add_predict(app);
  graft::cli::add_data(app);
  graft::cli::add_demo(app);
  graft::cli::add_launch(app);
  graft::cli::enable_replay(app);
}

/// Records a run whose command did not record itself (it wrote its --out folder).
void record_if_needed(const CLI::App& app) {
  if (graft::cli::run_recorded()) return;
  const auto* leaf = deepest(app);
  const auto& verbs = graft::cli::recorded_verbs();
  if (std::find(verbs.begin(), verbs.end(), graft::cli::verb_of(*leaf)) == verbs.end()) return;
  const auto* out = leaf->get_option_no_throw("--out");
  if (!out || out->count() == 0) return;
  const auto dir = out->as<std::string>();
  if (std::filesystem::is_directory(dir)) graft::cli::record_run(*leaf, dir + "/");
}

/// `graft --generate bash-completion|man`: prints a file generated from the help text.
int generate(const CLI::App& app, const std::string& what) {
  if (what == "bash-completion") {
    std::cout << graft::cli::bash_completion(app);
    return 0;
  }
  if (what == "man") {
    std::time_t now = std::time(nullptr);
    if (const char* e = std::getenv("SOURCE_DATE_EPOCH")) now = static_cast<std::time_t>(std::atoll(e));
    char date[16];
    std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
    std::cout << graft::cli::man_page(app, date);
    return 0;
  }
  return usage_error("--generate '" + what + "' is not one of bash-completion, man", "");
}

/// The --out of a command line ("--out X" or "--out=X"), or "".
std::string out_of(const std::vector<std::string>& args) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" && i + 1 < args.size()) return args[i + 1];
    if (args[i].rfind("--out=", 0) == 0) return args[i].substr(6);
  }
  return "";
}

/// What a run writes for --out: the folder or file itself and, for a file, the run record
/// beside it (FILE.command.txt, FILE.graft.toml).
std::vector<std::string> outputs_of(const std::string& out) {
  if (out.empty()) return {};
  return {out, out + ".command.txt", out + ".graft.toml"};
}

/// After a failed run: removes the outputs that this run created, unless the folder holds a
/// checkpoint to resume from, so that a failure leaves no half-written output. Never touches
/// what existed before the run; in a data-parallel run only rank 0 does it.
void remove_failed_outputs(const std::vector<std::string>& created) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (created.empty() || !graft::dist::is_main_process()) return;
  if (fs::is_directory(created[0], ec))
    for (auto it = fs::recursive_directory_iterator(created[0], ec); !ec && it != fs::recursive_directory_iterator();
         ++it)
      if (it->path().extension() == ".ckpt") return;  // resumable state: keep it
  for (const auto& p : created) fs::remove_all(p, ec);
}

}  // namespace

namespace {

/// Parses and runs the command; the exit code.
int run(CLI::App& app, std::vector<std::string> args) {
  try {
    graft::cli::check_subcommands(app, args);
    graft::cli::expand_config(app, args);
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
    app.parse(args);
    record_if_needed(app);
    graft::dist::finish_process_context();  // a data-parallel run: every rank leaves together
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command that ends with a code of its own (graft launch: the failing rank's)
  } catch (const CLI::ParseError& e) {
    return usage_error(e.what(), graft::cli::verb_of(*deepest(app)));
  } catch (const graft::cli::UsageError& e) {
    return usage_error(e.what(), e.verb());
  } catch (const graft::Error& e) {
    // The library names the option first when an option's value is bad ("--lr must be
    // > 0"): that is a usage error; anything else is a failed run.
    const std::string m = e.what();
    graft::dist::abort_process_context(m);
    if (m.rfind("--", 0) == 0) return usage_error(m, graft::cli::verb_of(*deepest(app)));
    std::cerr << "graft: error: " << m << "\n";
    return kExitRunFailed;
  } catch (const c10::Error& e) {
    std::string m = e.what_without_backtrace();
    graft::dist::abort_process_context(m.substr(0, m.find('\n')));
    std::cerr << "graft: error (libtorch): " << m.substr(0, m.find('\n')) << "\n";
    return kExitRunFailed;
  } catch (const std::exception& e) {
    graft::dist::abort_process_context(e.what());
    std::cerr << "graft: error: " << e.what() << "\n";
    return kExitRunFailed;
  }
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  graft::tune_allocator();
  graft::cli::set_invocation(argc, argv);
  CLI::App app{"transfer learning and domain adaptation of deep networks (libtorch)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("graft ") + graft::kVersion);
  app.footer(kExitCodes);
  register_commands(app);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 2 && args[0] == "--generate") return generate(app, args[1]);
  std::vector<std::string> fresh;  // outputs that do not exist yet
  for (const auto& p : outputs_of(out_of(args))) {
    std::error_code ec;
    if (!std::filesystem::exists(p, ec)) fresh.push_back(p);
  }
  const int code = run(app, args);
  if (code == kExitRunFailed && !fresh.empty() && fresh[0] == out_of(args)) remove_failed_outputs(fresh);
  return code;
}

