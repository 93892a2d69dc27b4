// A checkpoint names its task's tokens in id order (metadata "vocabulary"), generated
// tasks and the file task alike, so that a reader without qkv needs no convention; a
// version 1 file, from before EOS and the vocabulary, still loads.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "io/checkpoint.hpp"
#include "io/safetensors.hpp"
#include "tests/run_util.hpp"
#include "train/config.hpp"
#include "train/trainer.hpp"

using qkv::test::fresh_dir;
using qkv::test::write_text;

namespace {

// Trains `steps` steps of the config into `dir` and returns the task's token names.
std::vector<std::string> train_run(const std::string& yaml, const std::string& dir) {
  qkv::train::TrainerOptions options;
  options.out_dir = dir;
  options.out = nullptr;
  qkv::train::Trainer trainer(qkv::train::parse_config(yaml, dir + "/config.yaml"), options);
  trainer.run();
  return trainer.task().token_names();
}

}  // namespace

TEST_CASE("checkpoint vocabulary: every task's token names are saved in id order") {
  const std::string dir = fresh_dir("checkpoint_vocabulary");
  SUBCASE("a generated task") {
    const std::vector<std::string> names = train_run(R"(name: recall
task: {type: recall, keys: 3, values: 2, pairs: 2, queries: 1}
model: {d_model: 8, heads: 2, layers: 1, d_ff: 16}
train: {steps: 2, batch_size: 4, eval_every: 2, eval_samples: 4}
)", dir);
    const std::vector<std::string> expected = {"PAD", "SEP", "EOS", "a", "b", "c", "0", "1"};
    CHECK(names == expected);
    CHECK(qkv::io::load_checkpoint(dir + "/last.safetensors").vocabulary == expected);
    // As a reader without qkv sees it: a JSON list in the metadata.
    CHECK(qkv::io::read_safetensors(dir + "/best.safetensors").metadata.at("vocabulary") ==
          R"(["PAD","SEP","EOS","a","b","c","0","1"])");
  }
  SUBCASE("the file task") {
    const std::string data = write_text(dir + "/data.tsv", "x y\ty x\nz\tz z\n");
    const std::vector<std::string> names = train_run(R"(name: file
task: {type: file, train_file: ')" + data + R"('}
model: {d_model: 8, heads: 2, layers: 1, d_ff: 16}
train: {steps: 2, batch_size: 4, eval_every: 2, eval_samples: 2}
)", dir);
    const std::vector<std::string> expected = {"PAD", "SEP", "EOS", "x", "y", "z"};
    CHECK(names == expected);
    CHECK(qkv::io::load_checkpoint(dir + "/last.safetensors").vocabulary == expected);
  }
}

TEST_CASE("checkpoint vocabulary: a version 1 file loads with none; a bad one is named") {
  const std::string dir = fresh_dir("checkpoint_vocabulary_v1");
  train_run(R"(name: copy
task: {type: copy, symbols: 4, min_len: 2, max_len: 3}
model: {d_model: 8, heads: 2, layers: 1, d_ff: 16}
train: {steps: 2, batch_size: 4, eval_every: 2, eval_samples: 4}
)", dir);
  const std::string path = dir + "/last.safetensors";
  qkv::io::Safetensors file = qkv::io::read_safetensors(path);
  SUBCASE("version 1: no vocabulary key") {
    file.metadata["format_version"] = "1";
    file.metadata.erase("vocabulary");
    qkv::io::write_safetensors(path, file);
    const qkv::io::Checkpoint old = qkv::io::load_checkpoint(path);
    CHECK(old.vocabulary.empty());
    CHECK(old.step == 2);
  }
  SUBCASE("version 2 needs it") {
    file.metadata.erase("vocabulary");
    qkv::io::write_safetensors(path, file);
    CHECK_THROWS_WITH_AS(qkv::io::load_checkpoint(path),
                         doctest::Contains("last.safetensors': metadata has no 'vocabulary'"),
                         std::runtime_error);
  }
  SUBCASE("a vocabulary that is not a list of strings") {
    file.metadata["vocabulary"] = R"(["PAD", 1])";
    qkv::io::write_safetensors(path, file);
    CHECK_THROWS_WITH_AS(qkv::io::load_checkpoint(path),
                         doctest::Contains("metadata 'vocabulary' must be a list of strings, "
                                           "found [\"PAD\", 1]"),
                         std::runtime_error);
  }
  SUBCASE("a version from the future") {
    file.metadata["format_version"] = "3";
    qkv::io::write_safetensors(path, file);
    CHECK_THROWS_WITH_AS(qkv::io::load_checkpoint(path),
                         doctest::Contains("format version 3 is not supported (this qkv reads "
                                           "versions 1 to 2)"),
                         std::runtime_error);
  }
}
