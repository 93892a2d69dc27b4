// LossOn: its names in a config and back.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "strict_yaml/config_node.hpp"
#include "tasks/loss_on.hpp"

using namespace qkv::tasks;
using qkv::ConfigError;
using qkv::ConfigNode;

TEST_CASE("loss_on: names in a config") {
  const auto read = [](const std::string& yaml) {
    return read_loss_on(ConfigNode::parse(yaml, "test.yaml").child("train"), "loss_on");
  };
  CHECK(read("train: {loss_on: all}\n") == LossOn::all);
  CHECK(read("train: {loss_on: answer}\n") == LossOn::answer);
  CHECK(read("") == LossOn::answer);
  CHECK_THROWS_WITH_AS(read("train: {loss_on: answers}\n"),
                       doctest::Contains("train.loss_on: expected one of answer, all, found "
                                         "answers; did you mean 'answer'?"),
                       ConfigError);
  CHECK(std::string(loss_on_name(LossOn::all)) == "all");
  CHECK(std::string(loss_on_name(LossOn::answer)) == "answer");
  CHECK(loss_on_names() == std::vector<std::string>{"answer", "all"});
}
