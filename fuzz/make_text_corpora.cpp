// Writes the seed corpora of the two text fuzzers: fuzz/corpus/config/ (a config's text,
// then NUL-separated --set overrides; config_fuzzer.cpp) and fuzz/corpus/data_file/ (a
// file task's data file, or, starting with '{', its saved state; data_file_fuzzer.cpp).
// The seeds are the shipped configs and data files and the hostile vectors of issue #12,
// each a file named for what it is. Run it from the repository's root, once, and again
// when the schema or the shipped configs change:
//
//   cmake --build build --target qkv_make_text_corpora
//   build/fuzz/qkv_make_text_corpora configs fuzz/corpus
//
// Inputs the fuzzers found (crash-* once fixed, found-* that reach code the seeds do not)
// live beside these.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

using Seeds = std::map<std::string, std::string>;  // file name -> bytes

const std::string kTinyTask = "{type: copy, symbols: 6, min_len: 2, max_len: 4}";
const std::string kTiny =
    "name: tiny\nseed: 5\ntask: " + kTinyTask + "\n"
    "model: {d_model: 16, heads: 2, layers: 1, d_ff: 32}\n"
    "optim: {type: adam, lr: 0.01}\n"
    "train: {steps: 20, batch_size: 8, eval_every: 10, eval_samples: 32, log_every: 5}\n";

std::string contents(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// `text` with the first `from` replaced by `to` (every seed's `from` is in it).
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  return text.replace(text.find(from), from.size(), to);
}

std::string joined(const std::vector<std::string>& words, const std::string& separator) {
  std::string text;
  for (const std::string& word : words) text += (text.empty() ? "" : separator) + word;
  return text;
}

std::string repeated(const std::string& word, std::size_t count, const std::string& separator) {
  return joined(std::vector<std::string>(count, word), separator);
}

// A flow sequence of `levels` anchors, each ten aliases of the one before: 10^levels
// values once expanded, in under 1 KB.
std::string alias_bomb(int levels) {
  std::string text = "[&a0 [" + repeated("x", 10, ", ") + "]";
  for (int level = 1; level < levels; ++level)
    text += ", &a" + std::to_string(level) + " [" +
            repeated("*a" + std::to_string(level - 1), 10, ", ") + "]";
  return text + "]";
}

// A config's text with --set overrides, as config_fuzzer.cpp splits it.
std::string with_sets(const std::string& text, const std::vector<std::string>& sets) {
  std::string input = text;
  for (const std::string& set : sets) input += '\0' + set;
  return input;
}

// Every regular file under `folder` whose name ends in `extension`, as
// "shipped_<its path below folder, '/' written '_'>".
Seeds shipped(const fs::path& folder, const std::string& extension) {
  Seeds seeds;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    if (!entry.is_regular_file() || entry.path().extension() != extension) continue;
    std::string name = fs::relative(entry.path(), folder).string();
    std::replace(name.begin(), name.end(), '/', '_');
    seeds["shipped_" + name] = contents(entry.path());
  }
  return seeds;
}

void add_valid_configs(Seeds& seeds) {
  seeds["valid_tiny.yaml"] = kTiny;
  const std::map<std::string, std::string> tasks = {
      {"reverse", "{type: reverse, symbols: 8}"}, {"sort", "{type: sort}"},
      {"recall", "{type: recall}"},               {"agreement", "{type: agreement, format: hard}"},
      {"induction", "{type: induction}"}};
  for (const auto& [name, task] : tasks)
    seeds["valid_task_" + name + ".yaml"] = replaced(kTiny, kTinyTask, task);
  seeds["valid_variants.yaml"] = with_sets(
      kTiny, {"model.attention.qk=merged", "model.ffn=none", "model.norm_placement=post",
              "model.positional=sinusoidal_positions",
              "optim.schedule={type: cosine, warmup_steps: 2}"});
  seeds["valid_sets.yaml"] =
      with_sets(kTiny, {"optim.lr=3e-4", "train.steps=50", "model.attention.wq=identity"});
  seeds["anchors.yaml"] = replaced(kTiny, "lr: 0.01", "lr: &rate 0.01, weight_decay: *rate");
  seeds["tag_and_quotes.yaml"] =
      replaced(replaced(kTiny, "steps: 20", "steps: !!str 20"), "lr: 0.01", "lr: '0.01'");
}

// The text's own hostile forms: expansion, nesting, documents, size, encoding.
void add_hostile_text(Seeds& seeds) {
  seeds["alias_bomb_file.yaml"] = kTiny + "bomb: " + alias_bomb(9) + "\n";
  seeds["alias_bomb_set.yaml"] = with_sets(kTiny, {"name=" + alias_bomb(9)});
  seeds["deep_nesting.yaml"] =
      kTiny + "deep: " + std::string(600, '[') + std::string(600, ']') + "\n";
  seeds["nesting_at_limit.yaml"] =
      kTiny + "deep: " + std::string(31, '[') + std::string(31, ']') + "\n";
  seeds["second_document.yaml"] = kTiny + "---\nname: other\n";
  seeds["second_document_set.yaml"] = with_sets(kTiny, {"name=a\n---\nb"});
  seeds["long_unknown_key.yaml"] = kTiny + "? " + std::string(100000, 'k') + "\n: 1\n";
  seeds["long_value.yaml"] = replaced(kTiny, "steps: 20", "steps: " + std::string(100000, '9'));
  seeds["invalid_utf8_name.yaml"] = replaced(kTiny, "name: tiny", "name: caf\xe9");
  seeds["invalid_utf8_key.yaml"] = kTiny + "na\xffme: 1\n";
  seeds["nul_escape_name.yaml"] = replaced(kTiny, "name: tiny", "name: \"a\\0b\"");
  seeds["nul_set.yaml"] = with_sets(kTiny, {"name=\"a\\0\""});
  seeds["duplicate_key.yaml"] = kTiny + "seed: 6\n";
  seeds["not_a_mapping.yaml"] = "- a\n- b\n";
  seeds["empty.yaml"] = "";
}

// Values past the schema's limits, overrides gone wrong, files that must not be read.
void add_hostile_values(Seeds& seeds) {
  seeds["name_slash.yaml"] = replaced(kTiny, "name: tiny", "name: ../x");
  seeds["huge_sizes.yaml"] = with_sets(kTiny, {"model.d_model=16384", "model.heads=1024",
                                               "model.layers=1024", "model.d_ff=65536"});
  seeds["layers_million.yaml"] = with_sets(kTiny, {"model.layers=1000000"});
  seeds["symbols_1e12.yaml"] = with_sets(kTiny, {"task.symbols=1000000000000"});
  seeds["recall_keys_huge.yaml"] =
      with_sets(kTiny, {"task={type: recall, keys: 10000000000, pairs: 4}"});
  seeds["batch_huge.yaml"] = with_sets(kTiny, {"train.batch_size=100000"});
  seeds["threads_64.yaml"] = with_sets(kTiny, {"train.threads=64"});
  seeds["eps_zero.yaml"] = with_sets(kTiny, {"optim.eps=0"});
  seeds["heads_not_dividing.yaml"] =
      with_sets(replaced(kTiny, "heads: 2", "heads: 3"), {"model.attention.causal=true"});
  seeds["set_not_a_mapping.yaml"] = with_sets(kTiny, {"name.x=1"});
  seeds["set_empty_key.yaml"] = with_sets(kTiny, {"model..heads=2"});
  seeds["set_no_equals.yaml"] = with_sets(kTiny, {"optim.lr"});
  seeds["set_not_yaml.yaml"] = with_sets(kTiny, {"seed=[1"});
  seeds["set_typo.yaml"] = with_sets(kTiny, {"optim.lrr=0.1"});
  seeds["file_task_dev_zero.yaml"] =
      replaced(kTiny, kTinyTask, "{type: file, train_file: /dev/zero}");
  seeds["file_task_missing.yaml"] =
      replaced(kTiny, kTinyTask, "{type: file, train_file: /nonexistent/data.tsv}");
}

Seeds config_seeds(const fs::path& configs) {
  Seeds seeds = shipped(configs, ".yaml");
  add_valid_configs(seeds);
  add_hostile_text(seeds);
  add_hostile_values(seeds);
  return seeds;
}

std::string numbered_lines(std::size_t count) {
  std::string text;
  for (std::size_t i = 0; i < count; ++i)
    text += "t" + std::to_string(i) + "\tu" + std::to_string(i) + "\n";
  return text;
}

void add_data_files(Seeds& seeds) {
  seeds["valid_small.tsv"] = "a b\tb a\nb c\tc b\n\nc a\ta c\n";
  seeds["valid_crlf.tsv"] = "c a t\tc a t s\r\nd o g\td o g s\r\n";
  seeds["valid_utf8.tsv"] = "\xc3\xa7" "a va\tbien\n\xe2\x82\xac 1\teuro one\n";
  seeds["no_tab.tsv"] = "a b\tb a\nno tab here\n";
  seeds["two_tabs.tsv"] = "a\tb\tc\n";
  seeds["empty_prompt.tsv"] = " \tb\n";
  seeds["empty_answer.tsv"] = "a\t \n";
  seeds["reserved_tokens.tsv"] = "a SEP\tb\nPAD\tEOS\n";
  seeds["blank_only.tsv"] = "\n\n \t \n";
  seeds["empty.tsv"] = "";
  seeds["invalid_utf8.tsv"] = "a\tb\ncaf\xe9\tc\n";
  seeds["nul_byte.tsv"] = std::string("a\tb\0\n", 5);
  seeds["long_line.tsv"] = "a\tb\n" + std::string(65536, 'x') + "\ty\n";
  seeds["long_example.tsv"] = repeated("t", 3000, " ") + "\t" + repeated("u", 1200, " ") + "\n";
  seeds["many_tokens.tsv"] = numbered_lines(2000);
}

void add_states(Seeds& seeds) {
  const std::string lengths = "{format: 3, max_example_len: 4, max_answer_len: 2, ";
  seeds["state_valid.txt"] = lengths + "vocabulary: [a, b, c], eval: [\"c a\\ta c\"]}";
  seeds["state_format_2.txt"] =
      "{format: 2, max_example_len: 4, max_answer_len: 2, vocabulary: [a, b, c]}";
  seeds["state_format_1.txt"] = "{format: 1, max_seq_len: 7, vocabulary: [a, c]}";
  seeds["state_alias_bomb.txt"] = lengths + "vocabulary: " + alias_bomb(9) + "}";
  seeds["state_huge_lengths.txt"] =
      "{format: 3, max_example_len: 99999, max_answer_len: 2, vocabulary: [a]}";
  seeds["state_unknown_token.txt"] = lengths + "vocabulary: [a, b], eval: [\"a\\tq\"]}";
  seeds["state_duplicate_token.txt"] = lengths + "vocabulary: [a, a]}";
  seeds["state_reserved_token.txt"] = lengths + "vocabulary: [SEP]}";
  seeds["state_not_a_mapping.txt"] = "{a";
}

Seeds data_file_seeds(const fs::path& configs) {
  Seeds seeds = shipped(configs / "data", ".tsv");
  add_data_files(seeds);
  add_states(seeds);
  return seeds;
}

bool write(const fs::path& folder, const Seeds& seeds) {
  fs::create_directories(folder);
  for (const auto& [name, bytes] : seeds) {
    std::ofstream out(folder / name, std::ios::binary);
    out << bytes;
    if (!out) {
      std::fprintf(stderr, "cannot write '%s'\n", (folder / name).c_str());
      return false;
    }
  }
  std::printf("wrote %zu seeds to '%s'\n", seeds.size(), folder.c_str());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <configs folder> <corpus folder>\n", argv[0]);
    return 2;
  }
  const fs::path configs = argv[1], corpus = argv[2];
  const bool written = write(corpus / "config", config_seeds(configs)) &&
                       write(corpus / "data_file", data_file_seeds(configs));
  return written ? 0 : 1;
}
