// The memory estimate and the machine's cores and available memory (see resources.hpp).
#include "train/resources.hpp"

#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace qkv::train {

namespace {

// Rows of an evaluation batch (make_eval_batches' default).
constexpr double kEvalRows = 256;
constexpr double kFloatBytes = 4;

std::size_t to_bytes(double floats) {
  const double bytes = floats * kFloatBytes;
  const double limit = static_cast<double>(std::numeric_limits<std::size_t>::max());
  return bytes >= limit ? std::numeric_limits<std::size_t>::max() : static_cast<std::size_t>(bytes);
}

// A key of a built-in slot, read without recording a default (its factory records it).
std::string peek(const TypedSection& slot, const char* key, const std::string& fallback) {
  return slot.options.has(key) ? slot.options.get<std::string>(key) : fallback;
}

double attention_parameters(const layers::TransformerOptions& m) {
  const double C = static_cast<double>(m.d_model), H = static_cast<double>(m.heads);
  const double matrix = C * C + C;  // a projection with its bias
  if (m.attention.type != "multi_head_attention") return 4 * matrix;
  if (peek(m.attention, "projections", "learned") == "none") return 0;
  const std::string qk = peek(m.attention, "qk", "separate");
  const double scores = qk == "merged" ? H * C * C : qk == "tied" ? matrix : 2 * matrix;
  return scores + 2 * matrix;  // wv, wo
}

// The feed-forward's hidden width F, 0 for attention-only blocks.
double hidden_width(const layers::TransformerOptions& m) {
  if (m.ffn.type == "none") return 0;
  if (m.ffn.type == "feed_forward" && m.ffn.options.has("hidden"))
    return static_cast<double>(m.ffn.options.get<std::size_t>("hidden"));
  return static_cast<double>(m.d_ff);
}

double parameters(const layers::TransformerOptions& m, double V, double T) {
  const double C = static_cast<double>(m.d_model), F = hidden_width(m);
  const double positions = m.positional.type == "learned_positions" ? T * C : 0;
  const double norms = F > 0 ? 4 * C : 2 * C;  // ln1 (and ln2), weight and bias
  const double ffn = F > 0 ? 2 * C * F + F + C : 0;
  const double block = attention_parameters(m) + norms + ffn;
  return V * C + positions + static_cast<double>(m.layers) * block + 2 * C + C * V + V;
}

// The values one forward pass keeps over `rows` rows of T positions.
double forward_values(const layers::TransformerOptions& m, double rows, double V, double T) {
  const double C = static_cast<double>(m.d_model), F = hidden_width(m);
  const double H = static_cast<double>(m.heads);
  const double per_layer = rows * T * (12 * C + 2 * F) + 2 * rows * H * T * T;
  return static_cast<double>(m.layers) * per_layer + rows * T * (4 * C + 3 * V);
}

double optimizer_buffers(const optim::OptimizerOptions& o) {
  if (o.type == "adam" || o.type == "adamw") return 2;
  return o.momentum > 0 ? 1 : 0;
}

}  // namespace

std::size_t MemoryEstimate::total() const {
  std::size_t sum = 0;
  for (const std::size_t part : {parameters, gradients, optimizer, activations}) {
    if (part > std::numeric_limits<std::size_t>::max() - sum)
      return std::numeric_limits<std::size_t>::max();
    sum += part;
  }
  return sum;
}

MemoryEstimate estimate_memory(const Config& config, std::size_t vocab, std::size_t positions,
                               bool training) {
  const layers::TransformerOptions& m = config.model;
  const double V = static_cast<double>(vocab), T = static_cast<double>(positions);
  const double P = parameters(m, V, T);
  const double eval_rows =
      std::min(kEvalRows, static_cast<double>(config.train.eval_samples));
  const double eval = forward_values(m, eval_rows, V, T);
  MemoryEstimate e;
  e.parameters = to_bytes(P);
  e.positions = positions;
  e.activations = to_bytes(eval);
  e.batch_rows = static_cast<std::size_t>(eval_rows);
  if (!training) return e;
  const double rows = static_cast<double>(config.train.batch_size);
  const double step = 2 * forward_values(m, rows, V, T);  // the values and their gradients
  if (step >= eval) {
    e.activations = to_bytes(step);
    e.batch_rows = config.train.batch_size;
  }
  e.gradients = to_bytes(P);
  e.optimizer = to_bytes(optimizer_buffers(config.optim) * P);
  e.optimizer_name = config.optim.type;
  return e;
}

std::optional<std::size_t> available_memory() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string key, unit;
    std::size_t value = 0;
    if (fields >> key >> value >> unit && key == "MemAvailable:" && unit == "kB")
      return value * 1024;
  }
  return std::nullopt;
}

void check_memory(const MemoryEstimate& need, std::optional<std::size_t> available) {
  if (!available || need.total() <= *available) return;
  std::string parts = "parameters " + format_bytes(static_cast<double>(need.parameters));
  if (need.gradients > 0)
    parts += ", their gradients " + format_bytes(static_cast<double>(need.gradients));
  if (!need.optimizer_name.empty())
    parts += ", optimizer state (" + need.optimizer_name + ") " +
             format_bytes(static_cast<double>(need.optimizer));
  parts += ", activations of one step (" + std::to_string(need.batch_rows) + " rows x " +
           std::to_string(need.positions) + " positions) " +
           format_bytes(static_cast<double>(need.activations));
  throw std::runtime_error(
      "the run needs about " + format_bytes(static_cast<double>(need.total())) +
      " of memory, and " + format_bytes(static_cast<double>(*available)) +
      " are available (MemAvailable in /proc/meminfo): " + parts +
      "; lower model.d_model, model.layers, train.batch_size or the task's lengths");
}

std::size_t available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
    return static_cast<std::size_t>(CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string format_bytes(double bytes) {
  static const char* const units[] = {"bytes", "kB", "MB", "GB", "TB", "PB", "EB"};
  std::size_t unit = 0;
  while (bytes >= 1000 && unit + 1 < std::size(units)) {
    bytes /= 1000;
    ++unit;
  }
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return buffer;
}

}  // namespace qkv::train
