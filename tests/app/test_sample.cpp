// `qkv sample` and `qkv eval --show` on a copy model trained here: the answer is the prompt
// and ends at EOS, prompts from stdin (a file, and a terminal: a pseudo-terminal here),
// attention maps of the generated positions, unknown tokens listed, WRONG marks with
// data-file lines, and one-line errors for files that are not a usable checkpoint.
#include <doctest/doctest.h>

#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/atomic_file.hpp"
#include "io/safetensors.hpp"
#include "tests/run_util.hpp"

using qkv::test::CliResult;
using qkv::test::fresh_dir;
using qkv::test::run_qkv;
using qkv::test::write_text;

namespace {

// A copy model that answers its held-out prompts exactly (trained once per test run).
const std::string& copy_checkpoint() {
  static const std::string path = [] {
    const std::string dir = fresh_dir("sample_copy");
    const std::string config = write_text(dir + "/copy.yaml", R"(name: copy
seed: 1
task: {type: copy, symbols: 6, min_len: 2, max_len: 5}
model: {d_model: 32, heads: 2, layers: 2, d_ff: 64}
optim: {type: adam, lr: 0.003}
train: {steps: 400, batch_size: 32, eval_every: 400, eval_samples: 128, threads: 1}
)");
    const CliResult trained = run_qkv({"train", config, "--out", dir + "/run"});
    REQUIRE_MESSAGE(trained.code == 0, trained.err);
    const std::string best = dir + "/run/best.safetensors";
    const auto eval = nlohmann::json::parse(run_qkv({"eval", best}).out);
    REQUIRE(eval["seq_acc"].get<double>() == 1.0);
    return best;
  }();
  return path;
}

void check_error(const CliResult& result, const std::string& text) {
  CAPTURE(result.out);
  CAPTURE(result.err);
  CHECK(result.code != 0);
  CHECK(result.err.rfind("qkv: error: ", 0) == 0);
  CHECK(result.err.find(text) != std::string::npos);
  CHECK(std::count(result.err.begin(), result.err.end(), '\n') == 1);
  CHECK(result.err.back() == '\n');
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::string line;
  for (char c : text) {
    if (c == '\n') {
      lines.push_back(line);
      line.clear();
    } else {
      line += c;
    }
  }
  return lines;
}

// The qkv command in a forked child whose stdin is `input` (a file, not a terminal).
CliResult run_qkv_with_stdin(std::vector<std::string> args, const std::string& input) {
  const std::string dir = fresh_dir("sample_stdin");
  const std::string in = write_text(dir + "/in", input);
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    std::FILE* out = std::fopen((dir + "/out").c_str(), "w");
    std::FILE* err = std::fopen((dir + "/err").c_str(), "w");
    if (!std::freopen(in.c_str(), "r", stdin) || !out || !err) _exit(255);
    args.insert(args.begin(), "qkv");
    const int code = qkv::app::run_cli(args, out, err);
    std::fflush(nullptr);
    _exit(code);
  }
  int status = 0;
  REQUIRE(child > 0);
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  return {WEXITSTATUS(status), qkv::test::read_text(dir + "/out"),
          qkv::test::read_text(dir + "/err")};
}

// The qkv command in a forked child on a pseudo-terminal (stdin and stdout), typing `typed`
// and then Ctrl-D; returns its exit code and what the terminal showed (echo included).
CliResult run_qkv_on_terminal(std::vector<std::string> args, const std::string& typed) {
  std::fflush(nullptr);
  int terminal = -1;
  const pid_t child = forkpty(&terminal, nullptr, nullptr, nullptr);
  if (child == 0) {
    args.insert(args.begin(), "qkv");
    const int code = qkv::app::run_cli(args, stdout, stdout);
    std::fflush(nullptr);
    _exit(code);
  }
  REQUIRE(child > 0);
  const std::string input = typed + "\x04";  // Ctrl-D at a line's start: end of input
  REQUIRE(write(terminal, input.data(), input.size()) == static_cast<ssize_t>(input.size()));
  CliResult result;
  for (;;) {  // until the child closes the terminal (EIO) or a minute passes
    pollfd ready{terminal, POLLIN, 0};
    if (poll(&ready, 1, 60000) <= 0) break;
    char buffer[4096];
    const ssize_t n = read(terminal, buffer, sizeof buffer);
    if (n <= 0) break;
    result.out.append(buffer, static_cast<std::size_t>(n));
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  close(terminal);
  REQUIRE(WIFEXITED(status));
  result.code = WEXITSTATUS(status);
  return result;
}

}  // namespace

TEST_CASE("sample: --help names the options, and qkv --help the verb") {
  CHECK(run_qkv({"--help"}).out.find("sample") != std::string::npos);
  const CliResult r = run_qkv({"sample", "--help"});
  CHECK(r.code == 0);
  for (const char* option :
       {"--prompt", "--temperature", "--top-k", "--max-tokens", "--seed", "--attention"})
    CHECK_MESSAGE(r.out.find(option) != std::string::npos, option);
}

TEST_CASE("sample: a trained copy model answers with the prompt and stops at EOS") {
  const std::string& checkpoint = copy_checkpoint();
  for (const std::string prompt : {"a c f b", "e e", "f d c b a"}) {
    CAPTURE(prompt);
    const CliResult r = run_qkv({"sample", checkpoint, "--prompt", prompt});
    REQUIRE_MESSAGE(r.code == 0, r.err);
    CHECK(r.out == prompt + "\n");  // no "[no EOS ...]": the model ended the answer itself
    CHECK(r.err.empty());
  }
  SUBCASE("max-tokens cuts an answer short, and says so") {
    const CliResult r = run_qkv({"sample", checkpoint, "--prompt", "a c f b", "--max-tokens", "2"});
    CHECK(r.out == "a c  [no EOS after 2 tokens]\n");
  }
  SUBCASE("top-k 1 is greedy whatever the temperature; a seed repeats a sample") {
    CHECK(run_qkv({"sample", checkpoint, "--prompt", "a c f b", "--temperature", "5", "--top-k",
                   "1"}).out == "a c f b\n");
    const std::vector<std::string> hot = {"sample", checkpoint, "--prompt", "a c f b",
                                          "--temperature", "5", "--seed", "3"};
    const CliResult first = run_qkv(hot);
    REQUIRE(first.code == 0);
    CHECK(run_qkv(hot).out == first.out);
  }
}

TEST_CASE("sample: --attention draws each head's map over the generated positions") {
  const CliResult r =
      run_qkv({"sample", copy_checkpoint(), "--prompt", "a c f b", "--attention"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const std::vector<std::string> lines = lines_of(r.out);
  REQUIRE(!lines.empty());
  CHECK(lines[0] == "a c f b");
  std::size_t maps = 0;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("layer ", 0) != 0) continue;
    ++maps;
    // Three rows of column labels (S, E, P read downwards), then one row per generated
    // token: "SEP -> a", "a -> c", "c -> f", "f -> b", "b -> EOS".
    REQUIRE(i + 8 < lines.size());
    CHECK(lines[i + 3].find("a c f b P a c f b") != std::string::npos);
    const std::vector<std::string> rows = {"SEP -> a", "  a -> c", "  c -> f", "  f -> b",
                                           "b -> EOS"};
    for (std::size_t j = 0; j < rows.size(); ++j) {
      CAPTURE(lines[i + 4 + j]);
      CHECK(lines[i + 4 + j].rfind(rows[j] + " ", 0) == 0);
    }
  }
  CHECK(maps == 4);  // 2 layers x 2 heads
  CHECK(r.out.find("layer 1 head 1") != std::string::npos);
}

TEST_CASE("sample: prompts from stdin, one answer per line") {
  const CliResult r = run_qkv_with_stdin({"sample", copy_checkpoint()}, "a b\n\nc d e\nf a");
  REQUIRE_MESSAGE(r.code == 0, r.err);
  CHECK(r.out == "a b\nc d e\nf a\n");  // the blank line skipped, the last one unterminated
  // From a pipe, a bad line ends the command with its error.
  const CliResult bad = run_qkv_with_stdin({"sample", copy_checkpoint()}, "a b\nzz\nc d\n");
  CHECK(bad.out == "a b\n");
  check_error(bad, "unknown token 'zz'");
}

TEST_CASE("sample: on a terminal, an interactive session that a bad prompt does not end") {
  // Typed ahead, so the terminal echoes the lines first; then each "> " meets its answer.
  CliResult r = run_qkv_on_terminal({"sample", copy_checkpoint()}, "a b\nzz\nc d e\n");
  r.out.erase(std::remove(r.out.begin(), r.out.end(), '\r'), r.out.end());  // the tty's CR LF
  CAPTURE(r.out);
  CHECK(r.code == 0);
  CHECK(r.out.find("\ncopy task; tokens: a b c d e f\nType a prompt (end with Ctrl-D).\n"
                   "> a b\n"
                   "> error: prompt: unknown token 'zz'; the copy task's tokens are: a b c d e f\n"
                   "> c d e\n"  // the session went on after the bad line
                   "> \n") != std::string::npos);
}

TEST_CASE("sample: a prompt token the task does not know lists the known ones") {
  const std::string& checkpoint = copy_checkpoint();
  check_error(run_qkv({"sample", checkpoint, "--prompt", "a zz c"}),
              "prompt: unknown token 'zz'; the copy task's tokens are: a b c d e f");
  check_error(run_qkv({"sample", checkpoint, "--prompt", "a SEP"}),
              "'SEP' is not a prompt token");
  check_error(run_qkv({"sample", checkpoint, "--prompt", ""}), "prompt: it is empty");
  check_error(run_qkv({"sample", checkpoint, "--prompt", "a b c d e f a b c d e"}),
              "the prompt has 11 tokens; the model reads at most 11 positions");
  check_error(run_qkv({"sample", checkpoint, "--prompt", "a", "--temperature", "-1"}),
              "--temperature: expected a number of at least 0, found -1");
  check_error(run_qkv({"sample", checkpoint, "--prompt", "a", "--top-k", "-1"}),
              "--top-k: expected a whole number of at least 0, found -1");
  check_error(run_qkv({"sample", checkpoint, "--prompt", "a", "--max-tokens", "0"}),
              "--max-tokens: expected a whole number of at least 1, found 0");
}

TEST_CASE("sample and eval: files that are not a usable checkpoint are one-line errors") {
  const std::string dir = fresh_dir("sample_bad_files");
  const std::string good = qkv::io::read_file(copy_checkpoint());
  std::string file;
  std::string message;
  SUBCASE("not a checkpoint") {
    file = write_text(dir + "/text.safetensors", "hello, I am not a checkpoint\n");
    message = "text.safetensors";
  }
  SUBCASE("empty") {
    file = write_text(dir + "/empty.safetensors", "");
    message = "empty.safetensors";
  }
  SUBCASE("truncated") {
    file = write_text(dir + "/truncated.safetensors", good.substr(0, good.size() / 2));
    message = "truncated.safetensors";
  }
  SUBCASE("plain safetensors without qkv's metadata") {
    qkv::io::Safetensors plain;
    plain.tensors["w"] = qkv::core::Tensor::zeros({2, 2});
    file = dir + "/plain.safetensors";
    qkv::io::write_safetensors(file, plain);
    message = "metadata has no 'format'";
  }
  SUBCASE("a weight of the wrong shape (checksums rewritten to match)") {
    qkv::io::Safetensors contents = qkv::io::decode_safetensors(good, "good");
    contents.tensors["blocks.0.attn.wq.weight"] = qkv::core::Tensor::zeros({16, 32});
    file = dir + "/shapes.safetensors";
    qkv::io::write_safetensors(file, contents);
    message = "'blocks.0.attn.wq.weight' has shape [16, 32]; model expects [32, 32]";
  }
  SUBCASE("a weight missing") {
    qkv::io::Safetensors contents = qkv::io::decode_safetensors(good, "good");
    contents.tensors.erase("head.bias");
    file = dir + "/missing.safetensors";
    qkv::io::write_safetensors(file, contents);
    message = "head.bias";
  }
  SUBCASE("a config that no longer reads") {
    qkv::io::Safetensors contents = qkv::io::decode_safetensors(good, "good");
    contents.metadata["config"] = "model: [not, a, mapping";
    file = dir + "/config.safetensors";
    qkv::io::write_safetensors(file, contents);
    message = "config.safetensors (its config)";
  }
  CAPTURE(file);
  check_error(run_qkv({"sample", file, "--prompt", "a b"}), message);
  check_error(run_qkv({"eval", file}), message);
}

TEST_CASE("eval --show: a line per example, the wrong ones marked, with their data lines") {
  const std::string dir = fresh_dir("eval_show");
  // Line 3 asks for the prompt reversed: the copy model answers the copy, which is WRONG.
  const std::string data =
      write_text(dir + "/examples.tsv", "a b\ta b\n\nc d\td c\nf e d\tf e d\n");
  const CliResult r = run_qkv({"eval", copy_checkpoint(), "--data", data, "--show"});
  REQUIRE_MESSAGE(r.code == 0, r.err);
  const std::vector<std::string> lines = lines_of(r.out);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == data + ":1: ok     prompt: a b | target: a b | predicted: a b");
  CHECK(lines[1] == data + ":3: WRONG  prompt: c d | target: d c | predicted: c d");
  CHECK(lines[2] == data + ":4: ok     prompt: f e d | target: f e d | predicted: f e d");
  const auto summary = nlohmann::json::parse(lines[3]);  // the JSON line stays last
  CHECK(summary["samples"] == 3);
  CHECK(summary["seq_acc"].get<double>() == doctest::Approx(2.0 / 3.0));

  SUBCASE("generated examples: one line each, as many WRONG as seq_acc says") {
    const CliResult g = run_qkv({"eval", copy_checkpoint(), "--samples", "20", "--show"});
    REQUIRE_MESSAGE(g.code == 0, g.err);
    const std::vector<std::string> shown = lines_of(g.out);
    REQUIRE(shown.size() == 21);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < 20; ++i) {
      CAPTURE(shown[i]);
      CHECK((shown[i].rfind("ok     prompt: ", 0) == 0 || shown[i].rfind("WRONG  prompt: ", 0) == 0));
      wrong += shown[i].rfind("WRONG", 0) == 0;
    }
    const auto result = nlohmann::json::parse(shown[20]);
    CHECK(double(wrong) == doctest::Approx(20 * (1 - result["seq_acc"].get<double>())));
  }
}
