// qkv inspect and qkv report on a trained copy model and a `projections: none` model: the
// terminal report, --json, attention.json's shape, heads.svg as XML (python3's minidom),
// both report.html pages in headless Chromium (DOM, console errors, a screenshot kept in
// the build folder), and one-line errors for hostile files and inputs. The tests that need
// python3 or chromium are skipped when it is not installed.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/inspect/inspect_test_util.hpp"
#include "tests/run_util.hpp"

using qkv::test::check_one_line_error;
using qkv::test::CliResult;
using qkv::test::fresh_dir;
using qkv::test::read_text;
using qkv::test::run_qkv;
using qkv::test::write_text;

namespace {

bool installed(const char* program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (std::size_t begin = 0; begin <= dirs.size();) {
    const std::size_t end = std::min(dirs.find(':', begin), dirs.size());
    const std::filesystem::path candidate = std::filesystem::path(dirs.substr(begin, end - begin)) / program;
    if (!candidate.parent_path().empty() && ::access(candidate.c_str(), X_OK) == 0) return true;
    begin = end + 1;
  }
  return false;
}

// The command's stdout.
std::string output_of(const std::string& command) {
  std::string out;
  if (std::FILE* pipe = ::popen(command.c_str(), "r")) {
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) out.append(buffer, n);
    ::pclose(pipe);
  }
  return out;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string best_checkpoint() { return qkv::test::trained_copy_run().dir + "/best.safetensors"; }

// `qkv inspect --sample 6 --out DIR` on the trained copy model, once.
const std::string& inspected_dir() {
  static const std::string dir = [] {
    const std::string d = fresh_dir("inspect_cli_out");
    const CliResult r = run_qkv({"inspect", best_checkpoint(), "--sample", "6", "--out", d,
                                 "--importance-samples", "64"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    write_text(d + "/stdout.txt", r.out);
    return d;
  }();
  return dir;
}

// A `projections: none` copy run of a few steps (its weights are the embeddings only).
std::string none_checkpoint() {
  static const std::string path = [] {
    const std::string d = fresh_dir("inspect_cli_none");
    const std::string config = write_text(d + "/none.yaml", R"(name: none
seed: 2
task: {type: copy, symbols: 6, min_len: 3, max_len: 5}
model: {d_model: 16, heads: 4, layers: 2, d_ff: 32, attention: {projections: none}}
optim: {type: adam, lr: 0.01}
train: {steps: 10, batch_size: 8, eval_every: 10, eval_samples: 16, log_every: 5}
)");
    const CliResult r = run_qkv({"train", config, "--out", d + "/run"});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    return d + "/run/best.safetensors";
  }();
  return path;
}

// Chromium, headless, on `url`: the DOM it ends with; its log (console messages) in `log`.
std::string chromium_dom(const std::string& url, const std::string& log) {
  const std::string profile = fresh_dir("chromium_profile");
  return output_of("chromium --headless --disable-gpu --no-sandbox --user-data-dir=" + profile +
                   " --enable-logging=stderr --v=0 --dump-dom '" + url + "' 2>" + log);
}

void chromium_screenshot(const std::string& url, const std::string& png, const char* size) {
  const std::string profile = fresh_dir("chromium_profile");
  output_of("chromium --headless --disable-gpu --no-sandbox --user-data-dir=" + profile +
            " --hide-scrollbars --window-size=" + size + " --screenshot=" + png + " '" + url +
            "' 2>/dev/null");
}

// What a page's script leaves in the DOM: ready, no error written into the page, and no
// console message in the browser's log.
void check_page_ran(const std::string& dom, const std::string& log_file) {
  CHECK(dom.find("data-qkv-ready=\"1\"") != std::string::npos);
  CHECK(dom.find("<pre id=\"qkv-errors\"></pre>") != std::string::npos);
  const std::string log = read_text(log_file);
  CAPTURE(log);
  CHECK(log.find(":CONSOLE") == std::string::npos);
}

}  // namespace

TEST_CASE("qkv inspect: weight tables, shaded maps, pattern scores and head importance") {
  const std::string out = read_text(inspected_dir() + "/stdout.txt");
  CAPTURE(out);
  for (const char* part : {"QK id-cos", "layer 1 head 1", "██", "Pattern scores", "source",
                           "costs on 64 held-out examples", "mean head-to-head QK similarity"})
    CHECK_MESSAGE(out.find(part) != std::string::npos, part);
  for (const char* file : {"attention.json", "heads.svg", "report.html"})
    CHECK(std::filesystem::file_size(inspected_dir() + "/" + file) > 0);
}

TEST_CASE("qkv inspect: attention.json is [layer][head][query][key] with rows summing to 1") {
  const nlohmann::json a = nlohmann::json::parse(read_text(inspected_dir() + "/attention.json"));
  CHECK(a["format"] == "qkv.attention/1");
  REQUIRE(a["examples"].size() == 6);
  CHECK(a["tokens"] == a["examples"][0]["tokens"]);
  CHECK(a["attention"] == a["examples"][0]["attention"]);
  for (const nlohmann::json& example : a["examples"]) {
    const std::size_t T = example["tokens"].size();
    REQUIRE(example["attention"].size() == 2);  // layers
    for (const nlohmann::json& layer : example["attention"]) {
      REQUIRE(layer.size() == 2);  // heads
      for (const nlohmann::json& head : layer) {
        REQUIRE(head.size() == T);
        for (std::size_t q = 0; q < T; ++q) {
          REQUIRE(head[q].size() == T);
          double sum = 0;
          for (std::size_t k = 0; k < T; ++k) {
            sum += head[q][k].get<double>();
            if (k > q) CHECK(head[q][k].get<double>() == 0.0);  // causal
          }
          CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
        }
      }
    }
  }
}

TEST_CASE("qkv inspect: heads.svg is well-formed XML with layers x heads maps" *
          doctest::skip(!installed("python3"))) {
  const std::string svg = inspected_dir() + "/heads.svg";
  const std::string result = output_of(
      "python3 -c 'import sys, xml.dom.minidom as m\n"
      "d = m.parse(sys.argv[1])\n"
      "panels = [g for g in d.getElementsByTagName(\"g\") if g.getAttribute(\"class\") == \"panel\"]\n"
      "cells = [r for r in d.getElementsByTagName(\"rect\") if r.hasAttribute(\"data-w\")]\n"
      "print(len(panels), len(cells), len(d.getElementsByTagName(\"linearGradient\")))' " + svg + " 2>&1");
  const nlohmann::json a = nlohmann::json::parse(read_text(inspected_dir() + "/attention.json"));
  const std::size_t T = a["tokens"].size();
  CHECK(result == "4 " + std::to_string(4 * T * T) + " 1\n");  // 2 layers x 2 heads, a colour scale
  const std::string text = read_text(svg);
  for (const nlohmann::json& token : a["tokens"])
    CHECK(text.find(">" + token.get<std::string>() + "</text>") != std::string::npos);
}

TEST_CASE("qkv inspect --json: projections none has similarity 1 to the identity and between heads") {
  const CliResult r = run_qkv({"inspect", none_checkpoint(), "--json", "--sample", "3"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const nlohmann::json t = nlohmann::json::parse(r.out);
  CHECK(t["mean_qk_similarity"].get<double>() == doctest::Approx(1.0));
  REQUIRE(t["weights"].size() == 2);
  for (const nlohmann::json& layer : t["weights"]) {
    REQUIRE(layer["heads"].size() == 4);
    for (const nlohmann::json& head : layer["heads"]) {
      CHECK(head["qk"]["identity_cosine"].get<double>() == doctest::Approx(1.0));
      CHECK(head["wq_norm"].is_null());
    }
    for (const char* table : {"qk_similarity", "ov_similarity"})
      for (const nlohmann::json& row : layer[table])
        for (const nlohmann::json& v : row) CHECK(v.get<double>() == doctest::Approx(1.0));
  }
  for (const nlohmann::json& layer : t["patterns"]["layers"])
    for (const nlohmann::json& row : layer["similarity"])
      for (const nlohmann::json& v : row) CHECK(v.get<double>() == doctest::Approx(1.0));
  CHECK(t["importance"]["heads_are_one"] == true);

  const CliResult learned = run_qkv({"inspect", best_checkpoint(), "--json"});
  REQUIRE_MESSAGE(learned.code == 0, learned.err);
  const nlohmann::json l = nlohmann::json::parse(learned.out);
  CHECK(l["mean_qk_similarity"].get<double>() < 0.9);
  CHECK(l["patterns"].is_null());  // no input: weights only
  CHECK(l["importance"].is_null());
}

TEST_CASE("qkv inspect --input: the typed tokens, and an unknown one listed against the known") {
  const CliResult r = run_qkv({"inspect", best_checkpoint(), "--input", "a b c SEP a b c",
                               "--importance-samples", "0"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out.find("input 1 of 1: a b c SEP a b c") != std::string::npos);
  CHECK(r.out.find("Head importance") == std::string::npos);
  check_one_line_error(run_qkv({"inspect", best_checkpoint(), "--input", "a zz"}),
              "--input: unknown token 'zz' (the copy task's tokens: SEP EOS a b c");
  std::string too_long;
  for (int i = 0; i < 40; ++i) too_long += "a ";
  check_one_line_error(run_qkv({"inspect", best_checkpoint(), "--input", too_long}),
              "--input has 40 tokens; the model reads at most");
  const CliResult no_sep = run_qkv({"inspect", best_checkpoint(), "--input", "a b c",
                                    "--importance-samples", "0"});
  REQUIRE_MESSAGE(no_sep.code == 0, no_sep.err);
  CHECK(no_sep.out.find("(no SEP: no row reads an answer") != std::string::npos);
}

TEST_CASE("qkv inspect: hostile or wrong files are one-line errors") {
  const std::string dir = fresh_dir("inspect_cli_hostile");
  SUBCASE("no such file") { check_one_line_error(run_qkv({"inspect", dir + "/missing.safetensors"}), "missing.safetensors"); }
  SUBCASE("not a checkpoint") {
    const std::string path = write_text(dir + "/notes.safetensors", "this is not a checkpoint\n");
    check_one_line_error(run_qkv({"inspect", path}), "notes.safetensors");
  }
  SUBCASE("truncated") {
    const std::string bytes = read_text(best_checkpoint());
    const std::string path = write_text(dir + "/half.safetensors", bytes.substr(0, bytes.size() / 2));
    check_one_line_error(run_qkv({"inspect", path}), "half.safetensors");
  }
  SUBCASE("a folder") { check_one_line_error(run_qkv({"inspect", dir}), dir); }
  SUBCASE("report on a folder without metrics") { check_one_line_error(run_qkv({"report", dir}), "metrics.jsonl"); }
  SUBCASE("report on a corrupt metrics.jsonl names the line") {
    write_text(dir + "/metrics.jsonl", "{\"step\":1,\"split\":\"train\",\"loss\":1,\"lr\":1,\"grad_norm\":1}\n{oops\n");
    check_one_line_error(run_qkv({"report", dir}), "metrics.jsonl:2: not JSON");
  }
}

TEST_CASE("qkv report: the run's curves, config and the inspect section of best.safetensors") {
  const std::string run = qkv::test::trained_copy_run().dir;
  const CliResult r = run_qkv({"report", run, "--importance-samples", "32"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const std::string page = read_text(run + "/report.html");
  for (const char* id : {"chart-loss", "chart-accuracy", "chart-lr", "chart-grad-norm"})
    CHECK_MESSAGE(page.find(std::string("id=\"") + id + "\"") != std::string::npos, id);
  CHECK(count(page, "<polyline class=\"series\"") == 6);  // train/eval loss, 2 accuracies, lr, norm
  // The resolved config, every default written (warmup_steps was given; betas was not).
  CHECK(page.find("warmup_steps: 50") != std::string::npos);
  CHECK(page.find("betas:") != std::string::npos);
  CHECK(count(page, "<g class=\"panel\"") == 4 * 4);  // 4 inputs x (2 layers x 2 heads)
  // Offline: nothing to fetch (the only URL is the SVG namespace).
  for (const char* fetch : {"src=", "href=", "<link", "url(http", "@import"})
    CHECK_MESSAGE(page.find(fetch) == std::string::npos, fetch);
}

TEST_CASE("report.html in headless Chromium: no console errors, the maps and the curves" *
          doctest::skip(!installed("chromium"))) {
  const std::filesystem::path artifacts = std::filesystem::path(QKV_BINARY_DIR) / "test_artifacts";
  std::filesystem::create_directories(artifacts);
  SUBCASE("qkv inspect's report.html, its hover included") {
    const std::string url = "file://" + std::filesystem::absolute(inspected_dir() + "/report.html").string();
    const std::string log = (artifacts / "inspect_report.log").string();
    const std::string dom = chromium_dom(url + "#qkv-selftest", log);
    check_page_ran(dom, log);
    CHECK(count(dom, "<g class=\"panel\"") == 6 * 4);  // 6 inputs, 2 layers x 2 heads each
    CHECK(dom.find("layer 0 head 0: \xe2\x80\x98") != std::string::npos);  // the tooltip's text
    chromium_screenshot(url, (artifacts / "inspect_report.png").string(), "1280,2600");
    chromium_screenshot("file://" + std::filesystem::absolute(inspected_dir() + "/heads.svg").string(),
                        (artifacts / "heads.png").string(), "760,700");
    CHECK(std::filesystem::file_size(artifacts / "inspect_report.png") > 10000);
  }
  SUBCASE("qkv report's report.html") {
    const std::string run = qkv::test::trained_copy_run().dir;
    REQUIRE(run_qkv({"report", run, "--importance-samples", "32"}).code == 0);
    const std::string url = "file://" + std::filesystem::absolute(run + "/report.html").string();
    const std::string log = (artifacts / "run_report.log").string();
    const std::string dom = chromium_dom(url, log);
    check_page_ran(dom, log);
    CHECK(count(dom, "class=\"chart\"") == 4);
    CHECK(count(dom, "<polyline class=\"series\"") == 6);
    CHECK(count(dom, "<g class=\"panel\"") == 4 * 4);
    chromium_screenshot(url, (artifacts / "run_report.png").string(), "1280,2600");
    CHECK(std::filesystem::file_size(artifacts / "run_report.png") > 10000);
  }
}
