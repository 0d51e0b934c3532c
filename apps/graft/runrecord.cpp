// Run records (the exact command line, graft's version, a replayable config) and
// `--config FILE` replay, plus the "did you mean" check of subcommand names.
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common.h"
#include "graft/dist/context.h"
#include "graft/core/check.h"
#include "graft/core/files.h"
#include "graft/version.h"

namespace fs = std::filesystem;

namespace graft::cli {
namespace {

std::vector<std::string> g_argv;
std::string g_cwd;
bool g_recorded = false;

/// Single-quotes a word for a POSIX shell when it needs quoting.
std::string shell_quote(const std::string& w) {
  if (!w.empty() && w.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=+:,./@%") ==
                        std::string::npos)
    return w;
  std::string q = "'";
  for (char c : w) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

const CLI::App* find_sub(const CLI::App& app, const std::string& name) {
  for (const auto* s : app.get_subcommands([](const CLI::App*) { return true; }))
    if (s->get_name() == name) return s;
  return nullptr;
}

/// The leaf subcommand named by the leading words of args; *words receives how many.
const CLI::App* leaf_of(const CLI::App& app, const std::vector<std::string>& args, size_t* words) {
  const CLI::App* cur = &app;
  size_t i = 0;
  while (i < args.size() && !args[i].empty() && args[i][0] != '-') {
    const auto* s = find_sub(*cur, args[i]);
    if (!s) break;
    cur = s, ++i;
  }
  *words = i;
  return cur;
}

std::string major_of(const std::string& v) { return v.substr(0, v.find('.')); }

}  // namespace

void set_invocation(int argc, char** argv) {
  g_argv.assign(argv, argv + argc);
  std::error_code ec;
  g_cwd = fs::current_path(ec).string();
}

std::string verb_of(const CLI::App& sub) {
  std::string v;
  for (const CLI::App* a = &sub; a && a->get_parent(); a = a->get_parent())
    v = a->get_name() + (v.empty() ? "" : " " + v);
  return v;
}

const std::vector<std::string>& recorded_verbs() {
  static const std::vector<std::string> v = {"train",   "finetune", "adapt",   "pretrain",
                                             "semisup", "transfer", "extract", "study transferability",
                                             "study layers"};
  return v;
}

void enable_replay(CLI::App& app) {
  for (const auto& verb : recorded_verbs()) {
    std::vector<std::string> args;
    std::stringstream ss(verb);
    for (std::string w; ss >> w;) args.push_back(w);
    size_t words = 0;
    auto* leaf = const_cast<CLI::App*>(leaf_of(app, args, &words));
    GRAFT_CHECK(words == args.size(), "internal: no subcommand '", verb, "' to enable --config on");
    // Never set by CLI11: main expands it before parsing. Registered for --help.
    leaf->add_option("--config", "replay a run: the graft.toml written in its folder (options given on the "
                                 "command line win)")
        ->configurable(false);
  }
}

bool run_recorded() { return g_recorded; }

void record_run(const CLI::App& sub, const std::string& prefix) {
  if (g_recorded || prefix.empty() || !dist::is_main_process()) return;  // rank 0 records a data-parallel run
  const auto dir = fs::path(prefix).parent_path().string();
  if (!dir.empty()) graft::ensure_dir(dir);
  const auto verb = verb_of(sub);
  std::ostringstream cmd;
  for (size_t i = 0; i < g_argv.size(); ++i) cmd << (i ? " " : "") << shell_quote(i == 0 ? "graft" : g_argv[i]);
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  graft::write_text_atomically(prefix + "command.txt", "# graft " + std::string(kVersion) + ", " + when + ", in " +
                                                        shell_quote(g_cwd) + "\n" + cmd.str() + "\n");
  // The options given (after --config expansion), as CLI11 writes them: exact replay
  // under the same graft; defaults are those of the replaying version.
  std::string body = sub.config_to_str(/*default_also=*/false, /*write_description=*/false);
  graft::write_text_atomically(prefix + "graft.toml",
                            "# Replay: cd " + shell_quote(g_cwd) + " && graft " + verb + " --config " +
                                shell_quote(prefix + "graft.toml") + " [--out NEW_FOLDER]\n" +
                                "graft-verb=\"" + verb + "\"\ngraft-version=\"" + kVersion + "\"\n" + body);
  g_recorded = true;
}

void expand_config(const CLI::App& app, std::vector<std::string>& args) {
  size_t words = 0;
  const CLI::App* leaf = leaf_of(app, args, &words);
  std::string file;
  size_t at = args.size(), span = 0;
  for (size_t i = words; i < args.size(); ++i) {
    if (args[i] == "--") break;
    if (args[i] == "--config") {
      if (i + 1 >= args.size()) throw UsageError("--config needs a file (a run folder's graft.toml)", verb_of(*leaf));
      file = args[i + 1], at = i, span = 2;
      break;
    }
    if (args[i].rfind("--config=", 0) == 0) {
      file = args[i].substr(9), at = i, span = 1;
      break;
    }
  }
  if (span == 0) return;
  const auto verb = verb_of(*leaf);
  if (!leaf->get_option_no_throw("--config"))
    throw UsageError("--config: 'graft " + (verb.empty() ? std::string("COMMAND") : verb) +
                         "' takes no config file; replay a run with the verb that made it (see its command.txt)",
                     verb);
  if (!fs::is_regular_file(file))
    throw UsageError("--config '" + file + "' does not exist; give the graft.toml of a run folder", verb);
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_file(file);
  } catch (const std::exception& e) {
    throw UsageError("--config '" + file + "' is not a graft config file (" + e.what() + ")", verb);
  }
  std::string file_verb, file_version;
  for (const auto& it : items) {
    if (it.name == "graft-verb" && !it.inputs.empty()) file_verb = it.inputs.front();
    if (it.name == "graft-version" && !it.inputs.empty()) file_version = it.inputs.front();
  }
  if (file_verb.empty() || file_version.empty())
    throw UsageError("--config '" + file + "' has no graft-verb/graft-version lines; give the graft.toml that graft "
                     "wrote in a run folder", verb);
  if (file_verb != verb)
    throw UsageError("--config '" + file + "' is a config of 'graft " + file_verb + "', not 'graft " + verb +
                         "'; replay it with: graft " + file_verb + " --config " + file, verb);
  if (major_of(file_version) != major_of(kVersion))
    throw UsageError("--config '" + file + "' was written by graft " + file_version + " and this is graft " +
                         kVersion + ": another major version, whose options may mean other things; rerun it "
                         "with graft " + file_version + " or write the command anew (see command.txt)", verb);
  std::vector<std::string> injected;
  for (const auto& it : items) {
    if (it.name == "++" || it.name == "--") continue;  // section markers
    const std::string value = it.inputs.empty() ? "" : it.inputs.front();
    if (it.name == "graft-verb" || it.name == "graft-version") continue;
    if (!it.parents.empty())
      throw UsageError("--config '" + file + "': section [" + it.parents.front() + "] is not part of a graft run config", verb);
    const CLI::Option* opt = leaf->get_option_no_throw("--" + it.name);
    if (!opt) opt = leaf->get_option_no_throw("-" + it.name);
    if (!opt || opt->get_positional())
      throw UsageError("--config '" + file + "': '" + it.name + "' is not an option of graft " + verb, verb);
    const std::string flag = "--" + it.name;
    bool given = false;
    for (size_t i = words; i < args.size(); ++i)
      if (args[i] == flag || args[i].rfind(flag + "=", 0) == 0) given = true;
    if (given) continue;  // the command line wins
    if (opt->get_expected_min() == 0) {
      if (value == "true") injected.push_back(flag);
      continue;
    }
    if (it.inputs.size() == 1) {
      injected.push_back(flag + "=" + value);
    } else {
      injected.push_back(flag);
      injected.insert(injected.end(), it.inputs.begin(), it.inputs.end());
    }
  }
  args.erase(args.begin() + static_cast<long>(at), args.begin() + static_cast<long>(at + span));
  args.insert(args.begin() + static_cast<long>(words), injected.begin(), injected.end());
}

void check_subcommands(const CLI::App& app, const std::vector<std::string>& args) {
  const CLI::App* cur = &app;
  for (const auto& w : args) {
    auto subs = cur->get_subcommands([](const CLI::App*) { return true; });
    if (subs.empty() || w.empty() || w[0] == '-') return;
    const auto* s = find_sub(*cur, w);
    if (!s) {
      if (cur->get_require_subcommand_min() == 0) return;  // a positional argument
      std::vector<std::string> names;
      for (const auto* x : subs) names.push_back(x->get_name());
      auto close = close_matches(w, names, 1);
      const auto where = verb_of(*cur);
      std::string hint = close.empty() ? "" : "; did you mean '" + close.front() + "'?";
      std::string list;
      for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
      throw UsageError("'" + w + "' is not a graft" + (where.empty() ? "" : " " + where) + " command" + hint +
                           " (commands: " + list + ")",
                       where);
    }
    cur = s;
  }
}

}  // namespace graft::cli
