// qkv::app::main, the entry point of qkv and of a user's own qkv binary: argv in, the
// command's exit code out, output on the process's stdout and errors on its stderr. Run in
// a forked child whose stdout and stderr go to files.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "app/main.hpp"
#include "tests/run_util.hpp"

namespace {

struct MainResult {
  int code = -1;
  std::string out, err;
};

MainResult run_main(std::vector<std::string> args) {
  const std::string dir = qkv::test::fresh_dir("app_main");
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    if (!std::freopen((dir + "/out").c_str(), "w", stdout) ||
        !std::freopen((dir + "/err").c_str(), "w", stderr))
      _exit(255);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int code = qkv::app::main(static_cast<int>(args.size()), argv.data());
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

}  // namespace

TEST_CASE("app::main: runs the command argv names and returns its exit code") {
  SUBCASE("--version prints on stdout, exit 0") {
    const MainResult r = run_main({"my_qkv", "--version"});
    CHECK(r.code == 0);
    CHECK(r.out == "qkv 0.1.0\n");
    CHECK(r.err.empty());
  }
  SUBCASE("an unknown verb is one line on stderr, exit 2") {
    const MainResult r = run_main({"my_qkv", "evl", "x.safetensors"});
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK(r.err == "qkv: error: unknown command 'evl'; did you mean 'eval'? "
                   "(commands: train, eval, sample, inspect, report, ablate; see qkv --help)\n");
  }
  SUBCASE("a failing verb: exit 1") {
    const std::string bad =
        qkv::test::write_text(qkv::test::fresh_dir("app_main_bad") + "/bad.safetensors", "x");
    const MainResult r = run_main({"my_qkv", "eval", bad});
    CHECK(r.code == 1);
    CHECK(r.err.rfind("qkv: error: ", 0) == 0);
  }
}
