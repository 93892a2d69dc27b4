// metrics.jsonl writer (see metrics.hpp).
#include "train/metrics.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace qkv::train {

namespace {

using json = nlohmann::ordered_json;  // keys in the order written: step, split, loss, ...

// The lines of an existing log whose step is at most `last_step`; unreadable lines (a
// line cut short by a kill) are dropped too.
std::string lines_through(const std::string& path, std::size_t last_step) {
  std::ifstream in(path);
  std::string kept;
  std::string line;
  while (std::getline(in, line)) {
    json record = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object() || !record.contains("step") || !record["step"].is_number_unsigned())
      continue;
    if (record["step"].get<std::size_t>() <= last_step) kept += line + "\n";
  }
  return kept;
}


}  // namespace

MetricsLog::MetricsLog(const std::string& path, std::optional<std::size_t> resume_step)
    : path_(path) {
  const std::string kept = resume_step ? lines_through(path, *resume_step) : std::string();
  file_ = std::fopen(path.c_str(), "w");
  if (file_ == nullptr)
    throw std::runtime_error("cannot write '" + path + "': " + std::strerror(errno));
  if (std::fputs(kept.c_str(), file_) < 0 || std::fflush(file_) != 0)
    throw std::runtime_error("cannot write '" + path + "': " + std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsLog::write_line(const std::string& line) {
  if (std::fprintf(file_, "%s\n", line.c_str()) < 0 || std::fflush(file_) != 0)
    throw std::runtime_error("cannot write '" + path_ + "': " + std::strerror(errno));
}

void MetricsLog::train(const TrainMetrics& m) {
  json line = {{"step", m.step},           {"split", "train"},   {"loss", m.loss},
               {"lr", m.lr},               {"elapsed_s", m.elapsed_s},
               {"grad_norm", m.grad_norm}, {"tokens_per_s", m.tokens_per_s}};
  write_line(line.dump());
}

void MetricsLog::eval(const EvalMetrics& m) {
  const EvalResult& r = m.result;
  json line = {{"step", m.step},          {"split", "eval"},           {"loss", r.loss},
               {"lr", m.lr},              {"elapsed_s", m.elapsed_s},  {"token_acc", r.token_acc},
               {"seq_acc", r.seq_acc},    {"samples", r.samples}};
  if (!r.groups.empty()) {
    json groups = json::object();
    for (const GroupResult& g : r.groups)
      groups[g.name] = {{"token_acc", g.token_acc}, {"seq_acc", g.seq_acc}, {"samples", g.samples}};
    line["groups"] = groups;
  }
  write_line(line.dump());
}

void MetricsLog::note(std::size_t step, const std::string& note,
                      const std::vector<std::pair<std::string, std::string>>& details) {
  json line = {{"step", step}, {"split", "note"}, {"note", note}};
  for (const auto& [key, value] : details) line[key] = value;
  write_line(line.dump());
}

}  // namespace qkv::train
