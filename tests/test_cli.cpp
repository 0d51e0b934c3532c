// End-to-end checks of the graft binary: exit codes, one-line errors, no partial output.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "graft/io/checkpoint.h"
#include "test_util.h"

using graft::test::cli;
using graft::test::TempDir;

namespace {

bool has(const graft::test::Run& r, const std::string& s) { return r.out.find(s) != std::string::npos; }

// An error is one line starting "graft: error:" and a non-zero exit.
void expect_clean_error(const graft::test::Run& r, const std::string& needle) {
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.code, 134) << "aborted: " << r.out;
  EXPECT_NE(r.code, 139) << "crashed: " << r.out;
  EXPECT_TRUE(has(r, needle)) << "expected '" << needle << "' in: " << r.out;
}

std::string toy_spec(const TempDir& d, int64_t n = 64) {
  graft::test::write_toy_idx(d / "x", d / "y", n, 4);
  return "idx:" + (d / "x") + "," + (d / "y");
}

}  // namespace

TEST(Cli, HelpAndLayers) {
  auto h = cli("--help");
  EXPECT_EQ(h.code, 0);
  for (auto cmd : {"layers", "train", "eval", "predict", "data", "demo"}) EXPECT_TRUE(has(h, cmd)) << cmd;
  auto th = cli("train --help");
  EXPECT_TRUE(has(th, "--optimizer")) << th.out;
  auto l = cli("layers dann_mnist");
  EXPECT_EQ(l.code, 0) << l.out;
  EXPECT_TRUE(has(l, "conv1") && has(l, "[48, 4, 4]") && has(l, "fc3")) << l.out;
  auto j = cli("layers resnet8 --json");
  EXPECT_EQ(nlohmann::json::parse(j.out)["layers"].size(), 6u);
  auto ts = cli("layers " + graft::test::fixtures() + "/resnet_tiny.pt --input-shape 3,32,32");
  EXPECT_TRUE(has(ts, "layer4") && has(ts, "reproduce forward()")) << ts.out;
}

TEST(Cli, TrainEvalPredictRoundTrip) {
  TempDir d;
  auto spec = toy_spec(d, 128);
  auto t = cli("train --model mlp:32 --data " + spec + " --test " + spec +
                 " --epochs 3 --lr 0.05 --batch-size 16 --out " + (d / "run") + " --workers 1");
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(has(t, "epoch 3/3")) << t.out;
  EXPECT_TRUE(has(t, "img/s") && has(t, "ETA")) << t.out;
  EXPECT_TRUE(has(t, "confusion matrix")) << t.out;
  auto e = cli("eval --model " + (d / "run/model.ckpt") + " --data " + spec + " --json " + (d / "eval.json"));
  ASSERT_EQ(e.code, 0) << e.out;
  std::ifstream jf(d / "eval.json");
  auto j = nlohmann::json::parse(jf);
  EXPECT_GT(j[spec]["accuracy"].get<double>(), 0.9);
  auto p = cli("predict --model " + (d / "run/model.ckpt") + " --data " + spec + "@limit=5 --top 2");
  ASSERT_EQ(p.code, 0) << p.out;
  EXPECT_TRUE(has(p, "index,label,class1,score1,class2,score2")) << p.out;
  // resume of a finished run changes nothing and succeeds
  auto r = cli("train --model mlp:32 --data " + spec + " --epochs 3 --lr 0.05 --batch-size 16 --out " + (d / "run") +
                 " --resume --workers 1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r, "resuming")) << r.out;
}

TEST(Cli, BadInputGetsOneClearLine) {
  TempDir d;
  auto spec = toy_spec(d);
  expect_clean_error(cli("train --model mlp --data " + spec + " --optimizer sgdd --out " + (d / "o")),
                     "--optimizer 'sgdd' is not one of sgd, adam, adamw; did you mean sgd?");
  expect_clean_error(cli("train --model mlp --data idx:/nope/x,/nope/y --out " + (d / "o")), "does not exist");
  expect_clean_error(cli("train --model mlp --data " + spec + " --lr -1 --out " + (d / "o")), "--lr");
  expect_clean_error(cli("train --model mlp --data " + spec + " --lr nan --out " + (d / "o")), "--lr");
  expect_clean_error(cli("train --model dann_mnst --data " + spec + " --out " + (d / "o")), "did you mean dann_mnist");
  expect_clean_error(cli("train --model mlp --data " + spec + "@classes=1 --out " + (d / "o")), "at least 2 classes");
  expect_clean_error(cli("train --model mlp --data " + spec + "@per-class=100 --out " + (d / "o")),
                     "fewer than the 100");
  expect_clean_error(cli("train --model mlp --data " + spec + " --device cuda:7 --out " + (d / "o")), "--device");
  std::ofstream(d / "junk.pt") << "junk";
  expect_clean_error(cli("layers " + (d / "junk.pt")), "torch.jit.script");
  expect_clean_error(cli("eval --model " + (d / "junk.pt") + " --data " + spec), "junk.pt");
  expect_clean_error(cli("layers " + graft::test::fixtures() + "/resnet_tiny.pt --input-shape 3,x"), "--input-shape");
  expect_clean_error(cli("data info folder:" + (d / "nothing")), "does not exist");
  auto u = cli("train --bogus");
  EXPECT_NE(u.code, 0);
  // no partial outputs left by failed commands
  EXPECT_FALSE(std::filesystem::exists(d / "o/model.ckpt"));
}

TEST(Cli, PredictOnImageFilesAndMissingOnes) {
  TempDir d;
  auto spec = toy_spec(d, 64);
  ASSERT_EQ(cli("train --model mlp:16 --data " + spec + " --epochs 1 --out " + (d / "run") + " --quiet").code, 0);
  auto missing = cli("predict --model " + (d / "run/model.ckpt") + " " + (d / "nope.png") + " --out " + (d / "p.csv"));
  expect_clean_error(missing, "nope.png");
  EXPECT_FALSE(std::filesystem::exists(d / "p.csv"));
}

TEST(Cli, DemoRunsEndToEndOnASmallBudget) {
  // The quick-start demo, shortened: 6000 MNIST digits, two epochs of training and one of
  // DANN. It makes the MNIST-M-style target in the data cache when missing.
  TempDir d;
  auto r = cli("demo --epochs 2 --limit 6000 --adapt-epochs 1 --target-limit 2000 --labels-per-class 5 --out " +
               (d / "demo") + " --threads 2 --quiet");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(has(r, "in domain") && has(r, "out of domain") && has(r, "domain gap") && has(r, "DANN") &&
              has(r, "of the gap") && has(r, "off-the-shelf"))
      << r.out;
  std::ifstream f(d / "demo/summary.json");
  auto j = nlohmann::json::parse(f);
  EXPECT_GT(j["source_test"]["accuracy"].get<double>(), 0.85);
  EXPECT_LT(j["target_test"]["accuracy"].get<double>(), j["source_test"]["accuracy"].get<double>());
  // DANN and the probe ran and measured something above chance on the target.
  EXPECT_GT(j["dann"]["target_accuracy"].get<double>(), 0.2);
  EXPECT_GE(j["dann"]["selected_epoch"].get<int64_t>(), 1);
  EXPECT_GT(j["offtheshelf"]["accuracy"].get<double>(), 0.2);
  EXPECT_TRUE(std::filesystem::exists(d / "demo/report.html"));
}

TEST(Cli, CorruptImagesStopTrainingOrAreSkippedWithACount) {
  TempDir d;
  for (int c = 0; c < 2; ++c) {
    std::filesystem::create_directories(d / ("imgs/c" + std::to_string(c)));
    for (int i = 0; i < 6; ++i) {
      // a 10x10 gray PGM whose brightness tells the class
      std::ofstream f(d / ("imgs/c" + std::to_string(c) + "/" + std::to_string(i) + ".pgm"), std::ios::binary);
      f << "P5\n10 10\n255\n" << std::string(100, static_cast<char>(c ? 220 : 30 + i));
    }
  }
  std::ofstream(d / "imgs/c1/zz_broken.png") << "not an image";
  auto args = " --model mlp:8 --epochs 1 --batch-size 4 --out " + (d / "run") + " --quiet --workers 1";
  auto strict = cli("train --data folder:" + (d / "imgs") + args);
  expect_clean_error(strict, "zz_broken.png");
  EXPECT_FALSE(std::filesystem::exists(d / "run/model.ckpt"));
  // The failed run left its configuration: a new run into the folder must say --overwrite.
  auto lenient = cli("train --data folder:" + (d / "imgs") + "@skip-bad" + args + " --overwrite");
  EXPECT_EQ(lenient.code, 0) << lenient.out;
  EXPECT_TRUE(has(lenient, "skipped 1 undecodable")) << lenient.out;
}

namespace {

// A usage error: exit code 2, one "graft: error:" line, then the pointer to --help.
void expect_usage_error(const graft::test::Run& r, const std::string& needle, const std::string& help_of) {
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_EQ(r.out.rfind("graft: error: ", 0), 0u) << r.out;
  EXPECT_TRUE(has(r, needle)) << "expected '" << needle << "' in: " << r.out;
  EXPECT_TRUE(has(r, "Run 'graft " + help_of + "--help' for usage.")) << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2) << r.out;
}

}  // namespace

TEST(Cli, UsageErrorsAreOneLineWithExitCode2) {
  TempDir d;
  auto spec = toy_spec(d);
  expect_usage_error(cli("trian --model mlp"), "'trian' is not a graft command; did you mean 'train'?", "");
  expect_usage_error(cli("bogus"), "'bogus' is not a graft command", "");
  expect_usage_error(cli("study transferabilty"), "did you mean 'transferability'?", "study ");
  expect_usage_error(cli("train --model mlp --data " + spec + " --out " + (d / "o") + " --bogus"), "--bogus",
                     "train ");
  expect_usage_error(cli("train --model mlp --data " + spec), "--out", "train ");  // required option missing
  expect_usage_error(cli("train --model mlp --data " + spec + " --epochs abc --out " + (d / "o")), "--epochs",
                     "train ");
  expect_usage_error(cli("train --model mlp --data " + spec + " --optimizer sgdd --out " + (d / "o")),
                     "did you mean sgd?", "train ");
  expect_usage_error(cli(""), "subcommand", "");
  // A run that fails (here: the data do not exist) exits 1, also one line.
  auto fail = cli("train --model mlp --data idx:/nope/x,/nope/y --out " + (d / "o"));
  EXPECT_EQ(fail.code, 1) << fail.out;
  EXPECT_EQ(fail.out.rfind("graft: error: ", 0), 0u) << fail.out;
  EXPECT_FALSE(std::filesystem::exists(d / "o"));
  // Help and version exit 0; the help documents the exit codes.
  auto h = cli("--help");
  EXPECT_EQ(h.code, 0);
  EXPECT_TRUE(has(h, "Exit status: 0 success; 1 the run failed") && has(h, "2 usage error")) << h.out;
  EXPECT_EQ(cli("--version").code, 0);
}

TEST(Cli, ValidationOptionsMeanTheSameInEveryTrainingVerb) {
  TempDir d;
  auto spec = toy_spec(d, 80);
  const std::vector<std::string> verbs = {"train --model mlp:8 --data " + spec,
                                          "finetune --model mlp:8 --data " + spec,
                                          "semisup --model mlp:8 --labelled " + spec + " --unlabelled " + spec};
  for (const auto& v : verbs) {
    const std::string run = v + " --epochs 1 --quiet --preprocess '' --out " + (d / "o");
    expect_usage_error(cli(run + " --val " + spec + " --val-split 0.2"), "--val and --val-split were both given: give one of them",
                       v.substr(0, v.find(' ') + 1));
    expect_usage_error(cli(run + " --val-split 1.5"), "--val-split must be in [0, 1), got 1.5",
                       v.substr(0, v.find(' ') + 1));
    // A held-out fifth of the 80 examples: the validation figures appear in every epoch row.
    std::filesystem::remove_all(d / "o");
    auto ok = cli(run + " --val-split 0.2");
    ASSERT_EQ(ok.code, 0) << v << ": " << ok.out;
    std::ifstream m(d / "o/metrics.jsonl");
    std::string line;
    std::getline(m, line);
    EXPECT_NE(line.find("\"val_acc\""), std::string::npos) << v << ": " << line;
  }
}

TEST(Cli, CommonOptionsOnEveryVerbThatRunsAModel) {
  for (const std::string verb : {"layers", "train", "finetune", "extract", "transfer", "adapt", "pretrain", "semisup",
                                 "study transferability", "study layers", "eval", "predict", "data info", "demo"}) {
    auto h = cli(verb + " --help");
    EXPECT_EQ(h.code, 0) << verb;
    for (auto opt : {"--threads", "--device", "--quiet"}) EXPECT_TRUE(has(h, opt)) << verb << " lacks " << opt;
  }
  TempDir d;
  auto info = cli("data info " + toy_spec(d) + " --threads 1 --quiet --device cpu");
  EXPECT_EQ(info.code, 0) << info.out;
  EXPECT_TRUE(has(info, "classes 4")) << info.out;
}

TEST(Cli, ReplayingATrainRunFromItsConfigGivesTheIdenticalModel) {
  TempDir d;
  auto spec = toy_spec(d, 96);
  auto t = cli("train --model mlp:16 --data " + spec + " --epochs 2 --lr 0.05 --batch-size 16 --seed 7 --workers 1 "
               "--threads 1 --quiet --out " + (d / "run"));
  ASSERT_EQ(t.code, 0) << t.out;
  std::ifstream cf(d / "run/command.txt"), tf(d / "run/graft.toml");
  std::string command((std::istreambuf_iterator<char>(cf)), {}), toml((std::istreambuf_iterator<char>(tf)), {});
  EXPECT_NE(command.find("graft train --model mlp:16"), std::string::npos) << command;
  EXPECT_NE(command.find("# graft " GRAFT_TEST_VERSION), std::string::npos) << command;
  EXPECT_NE(toml.find("graft-verb=\"train\""), std::string::npos) << toml;
  EXPECT_NE(toml.find("graft-version=\"" GRAFT_TEST_VERSION "\""), std::string::npos) << toml;
  EXPECT_NE(toml.find("seed=7"), std::string::npos) << toml;
  // The replay: every option from the file, --out from the command line (it wins).
  auto r = cli("train --config " + (d / "run/graft.toml") + " --out " + (d / "replay"));
  ASSERT_EQ(r.code, 0) << r.out;
  auto a = graft::io::load_checkpoint(d / "run/model.ckpt").model->named_parameters();
  auto b = graft::io::load_checkpoint(d / "replay/model.ckpt").model->named_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  // The replay records itself too, with the --out it was given.
  std::ifstream rf(d / "replay/graft.toml");
  std::string replay_toml((std::istreambuf_iterator<char>(rf)), {});
  EXPECT_NE(replay_toml.find("replay"), std::string::npos) << replay_toml;
  // Refused clearly: another verb's config, another major version, a missing file.
  expect_usage_error(cli("finetune --config " + (d / "run/graft.toml")), "is a config of 'graft train'",
                     "finetune ");
  std::string other = toml;
  other.replace(other.find("graft-version=\"") + 15, std::string(GRAFT_TEST_VERSION).size(), "99.0.0");
  std::ofstream(d / "v99.toml") << other;
  expect_usage_error(cli("train --config " + (d / "v99.toml") + " --out " + (d / "v99")), "another major version",
                     "train ");
  expect_usage_error(cli("train --config " + (d / "nope.toml")), "does not exist", "train ");
  EXPECT_FALSE(std::filesystem::exists(d / "v99"));
}

TEST(Cli, ManPageAndBashCompletionNameEverySubcommand) {
  const std::vector<std::string> verbs = {"layers", "train",  "finetune", "extract", "linear", "transfer", "adapt",
                                          "pretrain", "semisup", "study", "eval", "predict", "data", "demo",
                                          "transferability", "make", "info", "mnistm"};
  auto man = cli("--generate man");
  ASSERT_EQ(man.code, 0) << man.out;
  EXPECT_EQ(man.out.rfind(".TH GRAFT 1", 0), 0u);
  auto comp = cli("--generate bash-completion");
  ASSERT_EQ(comp.code, 0) << comp.out;
  for (const auto& v : verbs) {
    EXPECT_TRUE(has(man, ".B " + v) || has(man, "graft " + v) || has(man, " " + v + "\"")) << "man page lacks " << v;
    EXPECT_TRUE(has(comp, " " + v)) << "completion lacks " << v;
  }
  EXPECT_TRUE(has(man, "\\-\\-lr") && has(man, "EXIT STATUS")) << man.out.substr(0, 400);
  // The build installs what it generated; check those files and that completion works.
  const std::string share = std::string(GRAFT_TEST_BUILD) + "/share";
  for (auto f : {"/graft.1", "/graft.bash-completion"}) EXPECT_TRUE(std::filesystem::exists(share + f)) << f;
  auto words = graft::test::run("bash -c 'source " + share + "/graft.bash-completion; COMP_WORDS=(graft tr); "
                                "COMP_CWORD=1; _graft; echo ${COMPREPLY[@]}; COMP_WORDS=(graft study transferability --ep); "
                                "COMP_CWORD=3; _graft; echo ${COMPREPLY[@]}'");
  EXPECT_EQ(words.code, 0) << words.out;
  EXPECT_TRUE(has(words, "train") && has(words, "transfer") && has(words, "--epochs")) << words.out;
  auto man_render = graft::test::run("command -v man >/dev/null || exit 77; man -l " + share + "/graft.1 | head -5");
  if (man_render.code != 77) {
    EXPECT_EQ(man_render.code, 0) << man_render.out;
  }
}

TEST(Cli, ExtractAndTransferShowProgressWithEta) {
  TempDir d;
  auto spec = toy_spec(d, 96);
  ASSERT_EQ(cli("train --model mlp:16 --data " + spec + " --epochs 1 --quiet --workers 1 --out " + (d / "m")).code, 0);
  auto e = cli("extract --model " + (d / "m/model.ckpt") + " --layers fc1 --data " + spec + " --batch-size 16 --out " +
               (d / "f.npy"));
  ASSERT_EQ(e.code, 0) << e.out;
  EXPECT_TRUE(has(e, "graft extract: 96/96 examples (100%)") && has(e, "done in")) << e.out;
  EXPECT_TRUE(std::filesystem::exists(d / "f.npy.graft.toml") && std::filesystem::exists(d / "f.npy.command.txt"));
  auto t = cli("transfer --model " + (d / "m/model.ckpt") + " --layers input,fc1 --train " + spec + " --test " + spec +
               " --labels-per-class 5 --seeds 1,2 --C 1 --out " + (d / "t"));
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(has(t, "[1/4, ") && has(t, "[4/4, ") && has(t, "ETA")) << t.out;
  EXPECT_TRUE(std::filesystem::exists(d / "t/graft.toml"));
  auto q = cli("transfer --model " + (d / "m/model.ckpt") + " --layers fc1 --train " + spec + " --test " + spec +
               " --labels-per-class 5 --C 1 --quiet");
  EXPECT_EQ(q.code, 0) << q.out;
  EXPECT_FALSE(has(q, "ETA")) << q.out;
}
