// ablate/sweep and ablate/table: a small sweep's table holds its runs' own numbers; two
// jobs at once train exactly what one job trains (in-process threads share nothing
// mutable); a sweep stopped by SIGINT and run again trains only what is missing and ends
// with the same runs and tables as one never stopped.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "tests/ablate/ablate_test_util.hpp"

using qkv::ablate::RunState;
using qkv::ablate::SweepPlan;
using qkv::test::fresh_dir;
using qkv::test::read_jsonl;
using qkv::test::read_text;
using qkv::test::write_text;

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Expected {
  double best = 0, final = 0, loss = 0;
  json steps_to_target = nullptr;
};

// What a run's metrics.jsonl says, read here independently of ablate/table.
Expected from_metrics(const std::string& dir, double target) {
  Expected e;
  for (const json& line : read_jsonl(dir + "/metrics.jsonl")) {
    if (line["split"] != "eval") continue;
    const double acc = line["seq_acc"].get<double>();
    e.best = std::max(e.best, acc);
    if (e.steps_to_target.is_null() && acc >= target) e.steps_to_target = line["step"];
    e.final = acc;
    e.loss = line["loss"].get<double>();
  }
  return e;
}

double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

// Waits until `path` holds a line. The limit only keeps a broken build from hanging.
void wait_for_line(const std::string& path) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < give_up) {
    std::error_code error;
    if (fs::file_size(path, error) > 0 && !error) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  FAIL("no line in " << path);
}

}  // namespace

TEST_CASE("ablate: the table's numbers are those in the runs' metrics.jsonl") {
  const std::string dir = fresh_dir("ablate_table");
  const std::string config = write_text(dir + "/tiny.yaml", qkv::test::tiny_sweep_config());
  const SweepPlan plan = qkv::test::run_tiny_sweep(config, dir + "/sweep", 1);
  const json table = json::parse(read_text(dir + "/sweep/ablation.json"));
  REQUIRE(table["variants"].size() == 2);
  const std::string csv = read_text(dir + "/sweep/ablation.csv");
  const std::string md = read_text(dir + "/sweep/ablation.md");
  for (const json& row : table["variants"]) {
    CAPTURE(row["variant"]);
    std::vector<double> best, final, loss;
    std::size_t reached = 0;
    REQUIRE(row["runs"].size() == 2);
    for (const json& run : row["runs"]) {
      const std::string run_dir = dir + "/sweep/" + row["variant"].get<std::string>() + "/seed-" +
                                  std::to_string(run["seed"].get<int>());
      const Expected e = from_metrics(run_dir, 0.3);
      CHECK(run["best_seq_acc"].get<double>() == e.best);
      CHECK(run["final_seq_acc"].get<double>() == e.final);
      CHECK(run["final_loss"].get<double>() == e.loss);
      CHECK(run["steps_to_target"] == e.steps_to_target);
      best.push_back(e.best), final.push_back(e.final), loss.push_back(e.loss);
      reached += e.steps_to_target.is_null() ? 0 : 1;
    }
    CHECK(row["best_seq_acc"]["mean"].get<double>() == doctest::Approx(mean(best)).epsilon(1e-12));
    CHECK(row["final_seq_acc"]["mean"].get<double>() == doctest::Approx(mean(final)).epsilon(1e-12));
    CHECK(row["final_loss"].get<double>() == doctest::Approx(mean(loss)).epsilon(1e-12));
    CHECK(row["steps_to_target"]["reached"] == reached);
    const double sd = std::sqrt((best[0] - mean(best)) * (best[0] - mean(best)) +
                                (best[1] - mean(best)) * (best[1] - mean(best)));
    CHECK(row["best_seq_acc"]["sd"].get<double>() == doctest::Approx(sd).epsilon(1e-12));
    // The CSV and the Markdown show the same numbers.
    CHECK(csv.find(row["variant"].get<std::string>() + "," +
                   std::to_string(row["attention_parameters"].get<std::size_t>()) + ",") !=
          std::string::npos);
    char cell[64];
    std::snprintf(cell, sizeof cell, "| %.3f ± %.3f |", mean(final),
                  row["final_seq_acc"]["sd"].get<double>());
    CHECK(md.find(cell) != std::string::npos);
    CHECK(md.find("(" + std::to_string(reached) + "/2)") != std::string::npos);
  }
  // The learned model has 4 projections of 16 x 16 + 16; raw dot products none, and every
  // head is the same head.
  CHECK(table["variants"][0]["attention_parameters"] == 4 * (16 * 16 + 16));
  CHECK(table["variants"][1]["attention_parameters"] == 0);
  CHECK(table["variants"][1]["qk_similarity"].get<double>() == doctest::Approx(1.0));
  CHECK(md.find("![attention maps of the learned and the none model](ablation_maps.svg)") !=
        std::string::npos);
  const std::string svg = read_text(dir + "/sweep/ablation_maps.svg");
  CHECK(svg.find("learned: Wq, Wk, Wv and Wo learned") != std::string::npos);
  CHECK(svg.find("none: raw dot products") != std::string::npos);
}

TEST_CASE("ablate: a sweep at two jobs trains exactly what it trains at one") {
  const std::string dir = fresh_dir("ablate_jobs");
  const std::string config = write_text(dir + "/tiny.yaml", qkv::test::tiny_sweep_config());
  const SweepPlan one = qkv::test::run_tiny_sweep(config, dir + "/one", 1);
  const SweepPlan two = qkv::test::run_tiny_sweep(config, dir + "/two", 2);
  qkv::test::check_same_runs(one, two);
  CHECK(qkv::test::tables_without_clock(dir + "/one") == qkv::test::tables_without_clock(dir + "/two"));
}

TEST_CASE("ablate: stopped by SIGINT and run again, a sweep trains only what is missing") {
  const std::string dir = fresh_dir("ablate_sigint");
  const std::string config = write_text(dir + "/tiny.yaml", qkv::test::tiny_sweep_config(400));
  const std::string out = dir + "/stopped";
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child == 0) {
    qkv::ablate::SweepRequest request;
    request.config_path = config;
    request.out_dir = out;
    try {
      const qkv::ablate::SweepOutcome outcome =
          qkv::ablate::run_sweep(qkv::ablate::plan_sweep(request), {1, nullptr, false});
      _exit(outcome.stopped_by == SIGINT ? 130 : 0);
    } catch (...) {
      _exit(3);
    }
  }
  // The second run has begun: the first is finished, the last two are not started.
  wait_for_line(out + "/learned/seed-2/metrics.jsonl");
  REQUIRE(::kill(child, SIGINT) == 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 130);

  qkv::ablate::SweepRequest request;
  request.config_path = config;
  request.out_dir = out;
  const SweepPlan stopped = qkv::ablate::plan_sweep(request);
  REQUIRE(stopped.runs.size() == 4);
  CHECK(stopped.runs[0].state == RunState::finished);
  CHECK(stopped.runs[1].state == RunState::partial);  // saved where SIGINT found it
  CHECK(stopped.runs[1].step > 0);
  CHECK(stopped.runs[2].state == RunState::fresh);
  const std::string finished_metrics = read_text(stopped.runs[0].dir + "/metrics.jsonl");

  const SweepPlan resumed = qkv::test::run_tiny_sweep(config, out, 1);
  // The finished run was not trained again: its log is the same to the clock's digits.
  CHECK(read_text(resumed.runs[0].dir + "/metrics.jsonl") == finished_metrics);
  const SweepPlan whole = qkv::test::run_tiny_sweep(config, dir + "/whole", 1);
  qkv::test::check_same_runs(whole, resumed, "eval");  // the resumed run went on bit for bit
  CHECK(qkv::test::tables_without_clock(out) == qkv::test::tables_without_clock(dir + "/whole"));
}

TEST_CASE("ablate: a run folder trained with another config is an error, not a finished run") {
  const std::string dir = fresh_dir("ablate_changed");
  const std::string config = write_text(dir + "/tiny.yaml", qkv::test::tiny_sweep_config());
  qkv::test::run_tiny_sweep(config, dir + "/sweep", 2);
  qkv::ablate::SweepRequest request;
  request.config_path = config;
  request.out_dir = dir + "/sweep";
  request.sets = {"optim.lr=0.02"};
  const std::string expected = "learned seed 1: '" + dir +
                               "/sweep/learned/seed-1/last.safetensors' was trained with another "
                               "config than this sweep's (the run's has `lr: 0.01`, this "
                               "sweep's `lr: 0.02`)";
  CHECK_THROWS_WITH_AS(qkv::ablate::plan_sweep(request), doctest::Contains(expected.c_str()),
                       std::runtime_error);
}
