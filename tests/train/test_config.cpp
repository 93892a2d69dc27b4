// Config: the typed sections composed, every error class by message (with suggestions and
// positions), --set overrides, base: inheritance, and the resolved YAML round trip.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/random.hpp"
#include "core/tensor.hpp"
#include "optim/factory.hpp"
#include "train/config.hpp"

using namespace qkv::train;

namespace {

const std::string kModel = "model: {d_model: 32, heads: 2, layers: 1}\n";

// A valid config with one line replaced or added: `base(extra)` appends extra sections.
std::string base(const std::string& task = "task: {type: copy, symbols: 8, min_len: 2, max_len: 6}\n",
                 const std::string& optim = "optim: {type: adam, lr: 0.001}\n",
                 const std::string& train = "train: {steps: 100, batch_size: 16}\n",
                 const std::string& model = kModel) {
  return "name: test\nseed: 3\n" + task + model + optim + train;
}

Config parse(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return parse_config(text, "test.yaml", overrides);
}

std::string temp_dir() {
  const std::filesystem::path dir = std::filesystem::path(QKV_BINARY_DIR) / "test_config";
  std::filesystem::create_directories(dir / "data");
  return dir.string();
}

void write(const std::string& path, const std::string& content) { std::ofstream(path) << content; }

// Builds the config's model once, as a trainer does: its layer sections are read then.
std::shared_ptr<qkv::layers::Transformer> build(const Config& c) {
  const auto task = c.make_task();
  qkv::core::Rng rng(c.seed);
  return qkv::layers::build_model(c.model, task->vocab_size(), task->max_seq_len(), rng);
}

}  // namespace

TEST_CASE("config: sections are read into typed structs") {
  const Config c = parse(
      "name: copy_run\n"
      "seed: 12345678901\n"
      "task:\n"
      "  type: reverse\n"
      "  symbols: 20\n"
      "  min_len: 4\n"
      "  max_len: 12\n" +
      kModel +
      "optim:\n"
      "  type: adamw\n"
      "  lr: 3e-4\n"
      "  betas: [0.9, 0.95]\n"
      "  eps: 1e-9\n"
      "  weight_decay: 0.1\n"
      "  decay_embeddings: true\n"
      "  clip_norm: 1.0\n"
      "  schedule: {type: cosine, warmup_steps: 10, min_lr: 1e-5}\n"
      "train:\n"
      "  steps: 500\n"
      "  batch_size: 64\n"
      "  eval_every: 50\n"
      "  eval_samples: 256\n"
      "  threads: 2\n"
      "  checkpoint_every: 100\n"
      "  log_every: 5\n"
      "  loss_on: all\n");
  CHECK(c.name == "copy_run");
  CHECK(c.seed == 12345678901ULL);
  CHECK(c.task.type == "reverse");
  const auto task = c.make_task();
  CHECK(task->vocab_size() == 23);  // PAD, SEP, EOS and 20 symbols
  CHECK(task->max_seq_len() == 25);  // 12 prompt tokens, SEP, 12 answer tokens
  CHECK(c.model.d_model == 32);
  CHECK(c.model.heads == 2);
  CHECK(c.model.layers == 1);
  CHECK(c.model.d_ff == 128);  // 4 * d_model
  CHECK(c.optim.type == "adamw");
  CHECK(c.optim.lr == 3e-4);
  CHECK(c.optim.betas[0] == 0.9);
  CHECK(c.optim.betas[1] == 0.95);
  CHECK(c.optim.eps == 1e-9);
  CHECK(c.optim.weight_decay == 0.1);
  CHECK(c.optim.decay_embeddings);
  CHECK(c.optim.clip_norm == 1.0);
  CHECK(c.optim.clip_value == 0.0);
  CHECK(c.optim.schedule.type == qkv::optim::ScheduleType::cosine);
  CHECK(c.optim.schedule.warmup_steps == 10);
  CHECK(c.optim.schedule.min_lr == 1e-5);
  CHECK(c.optim.schedule.total_steps == 500);
  CHECK(c.train.steps == 500);
  CHECK(c.train.batch_size == 64);
  CHECK(c.train.eval_every == 50);
  CHECK(c.train.eval_samples == 256);
  CHECK(c.train.threads == 2);
  CHECK(c.train.checkpoint_every == 100);
  CHECK(c.train.log_every == 5);
  CHECK(c.train.loss_on == qkv::tasks::LossOn::all);
}

TEST_CASE("config: defaults fill what the file leaves out") {
  const Config c = parse("task: {type: copy}\n" + kModel);
  CHECK(c.name == "test");  // the source's stem
  CHECK(c.seed == 0);
  CHECK(c.make_task()->vocab_size() == 19);  // 16 symbols by default
  const qkv::optim::OptimizerOptions optim;
  CHECK(c.optim.type == optim.type);
  CHECK(c.optim.lr == optim.lr);
  CHECK(c.optim.schedule.type == qkv::optim::ScheduleType::constant);
  const TrainConfig train;
  CHECK(c.train.steps == train.steps);
  CHECK(c.train.batch_size == train.batch_size);
  CHECK(c.train.loss_on == qkv::tasks::LossOn::answer);
}

TEST_CASE("config: every task type reads its own options, and they are written back") {
  SUBCASE("agreement") {
    const Config c = parse(base(
        "task:\n  type: agreement\n  singular_nouns: [cat, dog]\n  plural_nouns: [cats, dogs]\n"
        "  singular_verb: runs\n  plural_verb: run\n  fillers: [the, big]\n"
        "  max_attractors: 2\n  max_fillers: 1\n  max_leading: 0\n"));
    const std::vector<std::string> expected = {"PAD",  "SEP",  "EOS", "cat", "dog", "cats",
                                               "dogs", "runs", "run", "the", "big"};
    CHECK(c.make_task()->token_names() == expected);
    const std::string text = to_yaml(c);
    CHECK(text.find("  max_attractors: 2\n  max_fillers: 1\n  max_leading: 0\n") !=
          std::string::npos);
  }
  SUBCASE("recall") {
    const Config c = parse(base("task: {type: recall, keys: 10, values: 5, pairs: 3, queries: 2}\n"));
    CHECK(c.make_task()->vocab_size() == 18);  // PAD, SEP, EOS, 10 keys, 5 values
    CHECK(to_yaml(c).find("  keys: 10\n  values: 5\n  pairs: 3\n  queries: 2\n") !=
          std::string::npos);
  }
}

TEST_CASE("config: unknown keys name the full path and the closest valid key") {
  CHECK_THROWS_WITH_AS(parse(base() + "sede: 4\n"),
                       "test.yaml:7:1: unknown key 'sede'; did you mean 'seed'?", ConfigError);
  CHECK_THROWS_WITH_AS(
      parse(base("task: {type: copy, min_lne: 2}\n")),
      "test.yaml:3:20: unknown key 'task.min_lne'; did you mean 'task.min_len'?", ConfigError);
  CHECK_THROWS_WITH_AS(parse(base(), {"train.batchsize=4"}),
                       "--set: unknown key 'train.batchsize'; did you mean 'train.batch_size'?",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse(base(), {"optim.weigth_decay=0.1"}),
                       "--set: unknown key 'optim.weigth_decay'; did you mean "
                       "'optim.weight_decay'?",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse(base(), {"optim.schedule.warmup=5"}),
                       "--set: unknown key 'optim.schedule.warmup'; did you mean "
                       "'optim.schedule.warmup_steps'?",
                       ConfigError);
  // A layer section's keys are read by its layer's factory when the model is built, with
  // the same strictness.
  CHECK_THROWS_WITH_AS(
      build(parse(base("task: {type: copy}\n", "", "",
                       "model: {d_model: 32, heads: 2, layers: 1, attention: {projection: none}}\n"))),
      doctest::Contains("unknown key 'model.attention.projection'; did you mean "
                        "'model.attention.projections'?"),
      ConfigError);
  CHECK_THROWS_WITH_AS(parse(base("task: {type: copy}\n", "", "",
                                  "model: {d_modle: 32, heads: 2, layers: 1}\n")),
                       doctest::Contains("model.d_model: required key is missing"), ConfigError);
}

TEST_CASE("config: keys of another choice say where they belong") {
  CHECK_THROWS_WITH_AS(parse(base("task: {type: copy}\n", "optim: {type: adam, momentum: 0.9}\n")),
                       "test.yaml:5:31: optim.momentum: applies to sgd only; optim.type is adam",
                       ConfigError);
  // A task reads only its own keys: another task's key is unknown to it.
  CHECK_THROWS_WITH_AS(parse(base("task: {type: recall, min_len: 3}\n")),
                       doctest::Contains("unknown key 'task.min_len'"), ConfigError);
  CHECK_THROWS_WITH_AS(
      parse(base("task: {type: copy}\n", "optim: {schedule: {type: constant, gamma: 0.5}}\n")),
      doctest::Contains("optim.schedule.gamma: applies to step only; optim.schedule.type is "
                        "constant"),
      ConfigError);
}

TEST_CASE("config: duplicate keys are errors") {
  CHECK_THROWS_WITH_AS(parse(base() + "seed: 9\n"),
                       "test.yaml:7:1: duplicate key 'seed' (first given at line 2)", ConfigError);
  CHECK_THROWS_WITH_AS(parse(base("task:\n  type: copy\n  symbols: 4\n  symbols: 5\n")),
                       "test.yaml:6:3: duplicate key 'task.symbols' (first given at line 5)",
                       ConfigError);
}

TEST_CASE("config: wrong types name the path, expected, found and position") {
  CHECK_THROWS_WITH_AS(parse(base("task: {type: copy}\n", "", "train: {steps: many}\n")),
                       "test.yaml:5:16: train.steps: expected a non-negative integer, found many",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse(base("task: {type: copy}\n", "optim: {lr: fast}\n")),
                       "test.yaml:5:13: optim.lr: expected a finite number, found fast",
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse(base("task: {type: copy}\n", "optim: {betas: 0.9}\n")),
                       doctest::Contains("optim.betas: expected a sequence of numbers, found 0.9"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse(base("task: {type: copy}\n", "", "train: {loss_on: answers}\n")),
                       doctest::Contains("train.loss_on: expected one of answer, all, found "
                                         "answers; did you mean 'answer'?"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse(base("task: {type: cpoy}\n")),
                       doctest::Contains("task.type: unknown task type 'cpoy'"), ConfigError);
  CHECK_THROWS_WITH_AS(parse(base("task: {type: cpoy}\n")),
                       doctest::Contains("did you mean 'copy'?"), ConfigError);
  CHECK_THROWS_WITH_AS(parse("task: {type: copy}\n" + kModel + "optim: 3\n"),
                       "test.yaml:3:8: optim: expected a mapping, found 3", ConfigError);
  CHECK_THROWS_WITH_AS(parse("task: [copy\n"), doctest::Contains("test.yaml:2:1: not valid YAML"),
                       ConfigError);
}

TEST_CASE("config: out-of-range values name the path, expected and found") {
  const auto fails = [](const std::string& text, const std::string& message) {
    CHECK_THROWS_WITH_AS(parse(text), doctest::Contains(message.c_str()), ConfigError);
  };
  const std::string copy = "task: {type: copy}\n";
  fails(base(copy, "optim: {lr: -0.1}\n"),
        "test.yaml:5:13: optim.lr: expected a positive learning rate, found -0.1");
  fails(base(copy, "", "train: {steps: 0}\n"),
        "test.yaml:5:16: train.steps: expected a positive number of steps, found 0");
  fails(base(copy, "", "train: {stop_at_seq_acc: 1.5}\n"),
        "train.stop_at_seq_acc: expected an accuracy in [0, 1] (0: train every step), found 1.5");
  fails(base(copy, "", "", "model: {d_model: 32, heads: 0, layers: 1}\n"),
        "test.yaml:4:29: model.heads: expected a positive number of heads, found 0");
  // The attention layer checks its shapes when it is built.
  CHECK_THROWS_WITH_AS(build(parse(base(copy, "", "", "model: {d_model: 30, heads: 4, layers: 1}\n"))),
                       doctest::Contains("d_model divisible by heads"), ConfigError);
  fails(base(copy, "optim: {betas: [0.9, 1.5]}\n"),
        "optim.betas: expected values in [0, 1), found a sequence [0.9, 1.5]");
  fails(base(copy, "optim: {type: sgd, nesterov: true}\n"),
        "optim.nesterov: expected false unless optim.momentum is positive, found true");
  fails(base(copy, "optim: {schedule: {type: step}}\n"),
        "optim.schedule.step_size: required key is missing");
  fails(base(copy, "optim: {schedule: {warmup_steps: 200}}\n"),
        "optim.schedule.warmup_steps: expected at most train.steps (100), found 200");
  fails(base("task: {type: copy, min_len: 9, max_len: 4}\n"),
        "task.max_len: expected a length of at least task.min_len (9), found 4");
  fails(base("task: {type: recall, keys: 3, pairs: 4}\n"),
        "task.pairs: expected 1..task.keys (3) pairs: a prompt's keys differ, found 4");
  fails(base("task: {type: agreement, fillers: [the, cat]}\n"),
        "task.fillers: the word 'cat' is listed twice (also in task.singular_nouns)");
  fails(base("task: {type: copy, symbols: 1, min_len: 1, max_len: 1}\n"),
        "task.type: task copy: no evaluation prompt");
  fails("name: a/b\n" + base(copy).substr(11),
        "name: expected a run name usable as a folder name (no '/'), found a/b");
  fails("task: {type: copy}\n", "test.yaml:1:1: model: required section is missing");
}

TEST_CASE("config: --set overrides use the same paths and checks") {
  const Config c = parse(base(), {"optim.lr=3e-4", "train.steps=250", "optim.schedule.type=cosine",
                                  "optim.betas=[0.8, 0.9]", "model.heads=4", "name=other"});
  CHECK(c.optim.lr == 3e-4);
  CHECK(c.train.steps == 250);
  CHECK(c.optim.schedule.type == qkv::optim::ScheduleType::cosine);
  CHECK(c.optim.schedule.total_steps == 250);
  CHECK(c.optim.betas[0] == 0.8);
  CHECK(c.model.heads == 4);
  CHECK(c.name == "other");
  CHECK(c.make_task()->max_seq_len() == 13);  // untouched values stay (max_len 6)

  CHECK_THROWS_WITH_AS(parse(base(), {"optim.lr=-1"}),
                       "--set: optim.lr: expected a positive learning rate, found -1", ConfigError);
  CHECK_THROWS_WITH_AS(parse(base(), {"optim.lr"}),
                       "--set: expected key.path=value, found 'optim.lr'", ConfigError);
  CHECK_THROWS_WITH_AS(parse(base(), {"optim..lr=1"}), doctest::Contains("has an empty key"),
                       ConfigError);
  CHECK_THROWS_WITH_AS(parse(base(), {"optim.lr.x=1"}),
                       "--set: optim.lr.x=1: optim.lr is not a mapping (it holds 0.001)",
                       ConfigError);
  CHECK_THROWS_WITH_AS(build(parse(base(), {"model.heads=3"})),
                       doctest::Contains("d_model divisible by heads"), ConfigError);
  CHECK_THROWS_WITH_AS(parse(base(), {"seed=[1"}),
                       doctest::Contains("--set: seed=[1: the value is not YAML"), ConfigError);
  CHECK_THROWS_WITH_AS(parse(base(), {"tarin.steps=3"}),
                       "--set: unknown key 'tarin'; did you mean 'train'?", ConfigError);
  // An override can repair the file.
  const Config repaired = parse(base("task: {type: copy}\n", "optim: {lr: -1}\n"), {"optim.lr=0.01"});
  CHECK(repaired.optim.lr == 0.01);
  // The file's own errors are still reported with the file's position.
  CHECK_THROWS_WITH_AS(parse(base() + "sede: 1\n", {"optim.lr=0.1"}),
                       doctest::Contains("test.yaml:7:1: unknown key 'sede'"), ConfigError);
}

TEST_CASE("config: the resolved YAML reads back as the same config") {
  const std::string dir = temp_dir();
  write(dir + "/data/train.tsv", "a b\tb a\nc\tc\n");
  const std::vector<std::string> tasks = {
      "task: {type: copy, symbols: 8, min_len: 2, max_len: 6}\n",
      "task: {type: sort}\n",
      "task: {type: agreement, fillers: [\"the\", \"a b\"]}\n",
      "task: {type: recall, pairs: 3}\n",
      "task: {type: file, train_file: " + dir + "/data/train.tsv}\n"};
  const std::vector<std::string> optims = {
      "optim: {type: adamw, lr: 3e-4, betas: [0.9, 0.95], schedule: {type: cosine, min_lr: 1e-5}}\n",
      "optim: {type: sgd, lr: 0.1, momentum: 0.9, nesterov: true, clip_value: 0.5, "
      "schedule: {type: step, step_size: 10, gamma: 0.7, warmup_steps: 3}}\n"};
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    CAPTURE(tasks[i]);
    if (tasks[i].find("\"a b\"") != std::string::npos) {
      CHECK_THROWS_WITH_AS(parse(base(tasks[i])), doctest::Contains("words without spaces"),
                           ConfigError);
      continue;
    }
    const Config c = parse(base(tasks[i], optims[i % 2],
                                "train: {steps: 100, loss_on: all, threads: 2}\n",
                                "model:\n  d_model: 32\n  heads: 2\n  layers: 1\n"
                                "  attention: {projections: none}\n  ffn: none\n"));
    build(c);  // the model's layer sections record their defaults
    const std::string text = to_yaml(c);
    const Config again = parse_config(text, "config.yaml");
    build(again);
    CHECK(to_yaml(again) == text);
    CHECK(again.name == c.name);
    CHECK(again.seed == c.seed);
    CHECK(again.task.type == c.task.type);
    CHECK(again.make_task()->token_names() == c.make_task()->token_names());
    CHECK(again.optim.type == c.optim.type);
    CHECK(again.optim.lr == c.optim.lr);  // numbers are written to read back exactly
    CHECK(again.optim.betas == c.optim.betas);
    CHECK(again.optim.momentum == c.optim.momentum);
    CHECK(again.optim.nesterov == c.optim.nesterov);
    CHECK(again.optim.clip_value == c.optim.clip_value);
    CHECK(again.optim.schedule.type == c.optim.schedule.type);
    CHECK(again.optim.schedule.gamma == c.optim.schedule.gamma);
    CHECK(again.optim.schedule.warmup_steps == c.optim.schedule.warmup_steps);
    CHECK(again.optim.schedule.min_lr == c.optim.schedule.min_lr);
    CHECK(again.train.steps == c.train.steps);
    CHECK(again.train.loss_on == c.train.loss_on);
    CHECK(again.train.threads == 2);
    CHECK(again.model.d_model == c.model.d_model);
    CHECK(again.model.d_ff == c.model.d_ff);
    CHECK(again.model.attention.type == c.model.attention.type);
    CHECK(again.model.ffn.type == "none");
  }
  SUBCASE("every default is written") {
    const Config c = parse("task: {type: copy}\n" + kModel);
    build(c);
    const std::string text = to_yaml(c);
    for (const char* key : {"d_ff: 128", "activation: gelu", "norm_placement: pre",
                            "type: learned_positions", "eps: 1e-05", "type: multi_head_attention",
                            "wq: learned", "causal: true", "type: feed_forward", "hidden: 128",
                            "name:", "seed:", "symbols:", "min_len:", "max_len:", "betas:",
                            "eps:", "weight_decay:", "clip_norm:", "warmup_steps:", "steps:",
                            "batch_size:", "eval_every:", "eval_samples:", "threads:",
                            "checkpoint_every:", "log_every:", "loss_on: answer"}) {
      CHECK_MESSAGE(text.find(key) != std::string::npos, key);
    }
  }
}

TEST_CASE("config: files and relative data paths") {
  const std::string dir = temp_dir();
  write(dir + "/data/words.tsv", "a b\tb a\n");
  write(dir + "/file_task.yaml",
        "task:\n  type: file\n  train_file: data/words.tsv\n  eval_file: data/words.tsv\n" +
            kModel);
  const Config c = load_config(dir + "/file_task.yaml");
  CHECK(c.name == "file_task");
  const std::string expected =
      (std::filesystem::absolute(dir) / "data" / "words.tsv").lexically_normal().string();
  CHECK(c.task.options.get_path("train_file") == expected);
  CHECK(c.task.options.get_path("eval_file") == expected);
  CHECK(to_yaml(c).find("  train_file: " + expected + "\n") != std::string::npos);

  write(dir + "/missing_data.yaml", "task: {type: file, train_file: nope.tsv}\n" + kModel);
  CHECK_THROWS_WITH_AS(load_config(dir + "/missing_data.yaml"),
                       doctest::Contains("missing_data.yaml:1:32: task.train_file: cannot read "
                                         "data file"),
                       ConfigError);
  write(dir + "/bad_line.yaml", "task: {type: file, train_file: data/bad.tsv}\n" + kModel);
  write(dir + "/data/bad.tsv", "a\tb\nno tab here\n");
  CHECK_THROWS_WITH_AS(load_config(dir + "/bad_line.yaml"),
                       doctest::Contains("bad.tsv:2: expected 'prompt tokens<TAB>answer tokens'"),
                       ConfigError);
  SUBCASE("a data path given by --set is relative to the current folder") {
    const std::filesystem::path before = std::filesystem::current_path();
    std::filesystem::current_path(dir + "/data");
    write("other.tsv", "b\ta\n");
    const Config overridden = load_config(dir + "/file_task.yaml", {"task.train_file=other.tsv"});
    std::filesystem::current_path(before);
    CHECK(overridden.task.options.get_path("train_file") ==
          (std::filesystem::absolute(dir) / "data" / "other.tsv").lexically_normal().string());
    CHECK(overridden.task.options.get_path("eval_file") == expected);
  }
  CHECK_THROWS_WITH_AS(load_config(dir + "/nothing_here.yaml"),
                       doctest::Contains("cannot read config file"), std::runtime_error);
}

TEST_CASE("config: make_optimizer maps the optim section") {
  std::vector<qkv::core::NamedParameter> params = {
      {"w", qkv::core::Tensor::zeros({2, 2}).requires_grad_(), qkv::core::ParamKind::weight},
      {"b", qkv::core::Tensor::zeros({2}).requires_grad_(), qkv::core::ParamKind::bias}};
  const Config c = parse(base("task: {type: copy}\n",
                              "optim: {type: sgd, lr: 0.5, momentum: 0.9, weight_decay: 0.01, "
                              "schedule: {type: cosine, warmup_steps: 4, min_lr: 0.05}}\n"));
  const auto optimizer = qkv::optim::make_optimizer(c.optim, params);
  CHECK(optimizer->name() == "sgd");
  CHECK(optimizer->base_lr() == 0.5);
  CHECK(optimizer->group_count() == 2);  // decay on the weight, none on the bias
  CHECK(optimizer->weight_decay(0) == 0.01);
  CHECK(optimizer->weight_decay(1) == 0.0);
  CHECK(optimizer->lr() == doctest::Approx(0.5 / 4));  // the first warm-up step
  CHECK(optimizer->schedule().options().total_steps == 100);
  CHECK(optimizer->schedule().lr(100) == doctest::Approx(0.05));
}

TEST_CASE("config: every shipped config under configs/ loads") {
  const std::filesystem::path configs = std::filesystem::path(QKV_SOURCE_DIR) / "configs";
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(configs)) {
    if (entry.path().extension() != ".yaml") continue;
    CAPTURE(entry.path().string());
    if (entry.path().parent_path().filename() == "ablations") {
      // A sweep config (qkv ablate's, tested in tests/ablate) is not one run's config.
      CHECK_THROWS_WITH_AS(load_config(entry.path().string()),
                           doctest::Contains("ablate: this is a sweep config"), ConfigError);
      ++count;
      continue;
    }
    const Config c = load_config(entry.path().string());
    CHECK(c.name == entry.path().stem().string());  // runs/<name> matches the file
    CHECK_NOTHROW(build(c));                        // its layer sections are valid too
    ++count;
  }
  CHECK(count >= 12);  // six tasks and their sweeps
}

TEST_CASE("config: inheritance errors name the file and line a key came from") {
  const std::string dir = temp_dir() + "/inherit";
  std::filesystem::create_directories(dir + "/sub");
  write(dir + "/base.yaml", "task: {type: copy}\n" + kModel + "optim: {lr: -1}\n");
  write(dir + "/sub/child.yaml", "base: ../base.yaml\nname: child\ntrain: {steps: 5}\n");
  CHECK_THROWS_WITH_AS(load_config(dir + "/sub/child.yaml"),
                       (std::filesystem::path(dir + "/sub/../base.yaml").lexically_normal().string() +
                        ":3:13: optim.lr: expected a positive learning rate, found -1")
                           .c_str(),
                       ConfigError);
  // The child can repair its base; its own keys are blamed on it.
  write(dir + "/sub/fixed.yaml", "base: ../base.yaml\noptim: {lr: 0.01}\n");
  const Config fixed = load_config(dir + "/sub/fixed.yaml", {"train.steps=7"});
  CHECK(fixed.optim.lr == 0.01);
  CHECK(fixed.train.steps == 7);
  CHECK(fixed.model.d_model == 32);
  write(dir + "/sub/typo.yaml", "base: ../base.yaml\noptim: {lr: 0.01}\ntrain: {stepz: 5}\n");
  CHECK_THROWS_WITH_AS(load_config(dir + "/sub/typo.yaml"),
                       (dir + "/sub/typo.yaml:3:9: unknown key 'train.stepz'; did you mean "
                              "'train.steps'?").c_str(),
                       ConfigError);
  write(dir + "/a.yaml", "base: sub/b.yaml\n");
  write(dir + "/sub/b.yaml", "base: ../a.yaml\n");
  CHECK_THROWS_WITH_AS(load_config(dir + "/a.yaml"), doctest::Contains("a cycle of bases"),
                       ConfigError);
}
