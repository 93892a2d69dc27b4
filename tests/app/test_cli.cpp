// The qkv command: help, exit codes, one-line errors, and what train and eval produce.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "tests/run_util.hpp"
#include "io/atomic_file.hpp"

using qkv::test::CliResult;
using qkv::test::check_one_line_error;
using qkv::test::fresh_dir;
using qkv::test::run_qkv;
using qkv::test::write_text;

namespace {

constexpr const char* kTinyConfig = R"(name: tiny_cli
seed: 5
task: {type: copy, symbols: 6, min_len: 2, max_len: 4}
model: {d_model: 16, heads: 2, layers: 1, d_ff: 32}
optim: {type: adam, lr: 0.01}
train: {steps: 20, batch_size: 8, eval_every: 10, eval_samples: 32, log_every: 5}
)";

}  // namespace

TEST_CASE("cli: --help on the command and each verb exits 0") {
  SUBCASE("qkv --help") {
    CliResult r = run_qkv({"--help"});
    CHECK(r.code == 0);
    CHECK(r.out.find("train") != std::string::npos);
    CHECK(r.out.find("eval") != std::string::npos);
  }
  SUBCASE("qkv train --help") {
    CliResult r = run_qkv({"train", "--help"});
    CHECK(r.code == 0);
    for (const char* option : {"--out", "--set", "--resume"})
      CHECK_MESSAGE(r.out.find(option) != std::string::npos, option);
  }
  SUBCASE("qkv eval --help") {
    CliResult r = run_qkv({"eval", "--help"});
    CHECK(r.code == 0);
    for (const char* option : {"--samples", "--data", "--seed"})
      CHECK_MESSAGE(r.out.find(option) != std::string::npos, option);
  }
}

TEST_CASE("cli: bad arguments exit non-zero with a one-line message") {
  const std::string dir = fresh_dir("cli_errors");
  const std::string config = write_text(dir + "/tiny.yaml", kTinyConfig);
  SUBCASE("no verb") { check_one_line_error(run_qkv({}), "subcommand is required"); }
  SUBCASE("unknown verb, with a suggestion") {
    check_one_line_error(run_qkv({"trian", config}), "unknown command 'trian'; did you mean 'train'?");
  }
  SUBCASE("missing config file") {
    check_one_line_error(run_qkv({"train", dir + "/missing.yaml"}), "missing.yaml");
  }
  SUBCASE("unknown option") { check_one_line_error(run_qkv({"train", config, "--bogus"}), "--bogus"); }
  SUBCASE("misspelled --set key") {
    check_one_line_error(run_qkv({"train", config, "--out", dir + "/run", "--set", "optim.lrr=0.1"}),
                "optim.lrr");
  }
  SUBCASE("bad config value") {
    check_one_line_error(run_qkv({"train", config, "--out", dir + "/run", "--set", "model.heads=0"}),
                "model.heads");
  }
  SUBCASE("resume without a checkpoint") {
    check_one_line_error(run_qkv({"train", config, "--out", dir + "/none", "--resume"}), "cannot resume");
  }
  SUBCASE("missing checkpoint") {
    check_one_line_error(run_qkv({"eval", dir + "/missing.safetensors"}), "missing.safetensors");
  }
  SUBCASE("corrupt checkpoint") {
    const std::string bad = write_text(dir + "/bad.safetensors", "not a safetensors file");
    check_one_line_error(run_qkv({"eval", bad}), "bad.safetensors");
  }
  SUBCASE("--data and --samples together") {
    const std::string bad = write_text(dir + "/x.safetensors", "");
    check_one_line_error(run_qkv({"eval", bad, "--data", config, "--samples", "3"}), "excludes");
  }
}

TEST_CASE("cli: train writes the run folder, eval prints one JSON line") {
  const std::string dir = fresh_dir("cli_train_eval");
  const std::string config = write_text(dir + "/tiny.yaml", kTinyConfig);
  const std::string run = dir + "/run";

  CliResult trained = run_qkv({"train", config, "--out", run, "--set", "train.steps=30"});
  REQUIRE_MESSAGE(trained.code == 0, trained.err);
  CHECK(trained.out.find("steps: 30") != std::string::npos);  // the resolved config
  CHECK(trained.out.find("parameters") != std::string::npos);
  for (const char* file : {"config.yaml", "metrics.jsonl", "last.safetensors", "best.safetensors"})
    CHECK_MESSAGE(std::filesystem::exists(run + "/" + file), file);
  CHECK(qkv::io::read_file(run + "/config.yaml").find("steps: 30") != std::string::npos);

  SUBCASE("a second train into the same folder must say --resume") {
    check_one_line_error(run_qkv({"train", config, "--out", run}), "already holds a run");
  }
  SUBCASE("resuming into another model shape names the tensor and both shapes") {
    CliResult r = run_qkv({"train", config, "--out", run, "--resume", "--set", "model.d_ff=64",
                           "--set", "train.steps=40"});
    check_one_line_error(r, "cannot resume from");
    CHECK(r.err.find("'blocks.0.ffn.fc1.weight' has shape [32, 16]; model expects [64, 16]") !=
          std::string::npos);
  }
  SUBCASE("resuming a finished run trains nothing and succeeds") {
    CliResult r = run_qkv({"train", config, "--out", run, "--resume", "--set", "train.steps=30"});
    CHECK(r.code == 0);
    CHECK(r.out.find("nothing to train") != std::string::npos);
  }
  SUBCASE("eval on generated held-out examples") {
    CliResult r = run_qkv({"eval", run + "/last.safetensors", "--samples", "40", "--seed", "9"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out.find('\n') == r.out.size() - 1);
    const auto line = nlohmann::json::parse(r.out);
    CHECK(line["samples"] == 40);
    for (const char* key : {"loss", "token_acc", "seq_acc"}) {
      CAPTURE(key);
      REQUIRE(line[key].is_number());
      CHECK(line[key].get<double>() >= 0);
    }
    CHECK(line["seq_acc"].get<double>() <= line["token_acc"].get<double>() + 1e-12);
    // Deterministic: the same seed gives the same examples and numbers.
    CHECK(run_qkv({"eval", run + "/last.safetensors", "--samples", "40", "--seed", "9"}).out ==
          r.out);
  }
  SUBCASE("eval on examples from a file") {
    // Token names of the copy task: PAD, SEP, then the symbols (see tasks.hpp).
    const std::string data = write_text(dir + "/examples.txt", "a b\ta b\nc d e\tc d e\nf\tf\n");
    CliResult r = run_qkv({"eval", run + "/last.safetensors", "--data", data});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(nlohmann::json::parse(r.out)["samples"] == 3);
  }
  SUBCASE("eval names a bad line of a data file") {
    const std::string data = write_text(dir + "/broken.txt", "a b\ta b\nno tab here\n");
    check_one_line_error(run_qkv({"eval", run + "/last.safetensors", "--data", data}), "broken.txt:2");
  }
}

TEST_CASE("cli: a file-task checkpoint evaluates --data after its training file is gone") {
  const std::string dir = fresh_dir("cli_file_task");
  const std::string train_file = write_text(dir + "/train.tsv", "a b\tb a\nb c\tc b\nc a\ta c\n");
  const std::string config = write_text(dir + "/file.yaml", R"(name: file
task: {type: file, train_file: train.tsv}
model: {d_model: 16, heads: 2, layers: 1, d_ff: 32}
train: {steps: 5, batch_size: 4, eval_every: 5, eval_samples: 3}
)");
  const std::string run = dir + "/run";
  CliResult trained = run_qkv({"train", config, "--out", run});
  REQUIRE_MESSAGE(trained.code == 0, trained.err);
  std::filesystem::remove(train_file);

  const std::string data = write_text(dir + "/more.tsv", "b a\ta b\n");
  CliResult r = run_qkv({"eval", run + "/last.safetensors", "--data", data});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(nlohmann::json::parse(r.out)["samples"] == 1);
  // Without --data it evaluates the eval examples saved in the checkpoint (here the
  // training lines: there is no eval file), never opening a path the checkpoint names.
  CliResult saved = run_qkv({"eval", run + "/last.safetensors"});
  REQUIRE_MESSAGE(saved.code == 0, saved.err);
  CHECK(nlohmann::json::parse(saved.out)["samples"] == 3);
}
