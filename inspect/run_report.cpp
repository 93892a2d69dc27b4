// A training run's report page (see run_report.hpp).
#include "inspect/run_report.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "inspect/chart.hpp"
#include "inspect/format.hpp"
#include "inspect/html_report.hpp"
#include "inspect/svg.hpp"

namespace qkv::inspect {

namespace {

[[noreturn]] void bad_line(const std::string& path, std::size_t line, const std::string& what) {
  throw std::runtime_error(path + ":" + std::to_string(line) + ": " + what);
}

double number(const nlohmann::json& object, const char* key, const std::string& path,
              std::size_t line) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number())
    bad_line(path, line, std::string("expected a number '") + key + "' in a metrics line");
  return it->get<double>();
}

void add_line(const nlohmann::json& object, const std::string& path, std::size_t line,
              RunMetrics& m) {
  if (!object.is_object()) bad_line(path, line, "expected a JSON object per line");
  const auto split = object.find("split");
  if (split == object.end() || !split->is_string())
    bad_line(path, line, "expected a 'split' of \"train\" or \"eval\"");
  const double step = number(object, "step", path, line);
  if (*split == "train") {
    m.train_step.push_back(step);
    m.train_loss.push_back(number(object, "loss", path, line));
    m.lr.push_back(number(object, "lr", path, line));
    m.grad_norm.push_back(number(object, "grad_norm", path, line));
  } else if (*split == "eval") {
    m.eval_step.push_back(step);
    m.eval_loss.push_back(number(object, "loss", path, line));
    m.token_acc.push_back(number(object, "token_acc", path, line));
    m.seq_acc.push_back(number(object, "seq_acc", path, line));
  } else if (*split != "note") {  // a note records a deliberate change (--resume --force)
    bad_line(path, line, "expected a 'split' of \"train\" or \"eval\", found " + split->dump());
  }
}

std::string charts(const RunMetrics& m) {
  ChartOptions loss;
  loss.title = "loss (cross-entropy on answer tokens)";
  loss.x_label = "step";
  loss.x_min = 0;
  loss.y_label = "loss (log scale)";
  loss.log_y = true;
  loss.id = "chart-loss";
  ChartOptions acc;
  acc.title = "held-out accuracy";
  acc.x_label = "step";
  acc.x_min = 0;
  acc.y_label = "accuracy";
  acc.y_min = 0;
  acc.y_max = 1;
  acc.id = "chart-accuracy";
  ChartOptions lr;
  lr.title = "learning rate";
  lr.x_label = "step";
  lr.x_min = 0;
  lr.y_label = "lr";
  lr.y_min = 0;
  lr.id = "chart-lr";
  ChartOptions grad;
  grad.title = "gradient norm (before clipping)";
  grad.x_label = "step";
  grad.x_min = 0;
  grad.y_label = "norm (log scale)";
  grad.log_y = true;
  grad.id = "chart-grad-norm";
  return "<div class=\"charts\">" +
         line_chart_svg({{"train", "#1f77b4", m.train_step, m.train_loss, false},
                         {"held-out", "#d62728", m.eval_step, m.eval_loss, true}},
                        loss) +
         line_chart_svg({{"seq_acc (whole answer right)", "#2ca02c", m.eval_step, m.seq_acc, true},
                         {"token_acc", "#9467bd", m.eval_step, m.token_acc, true}},
                        acc) +
         line_chart_svg({{"lr", "#ff7f0e", m.train_step, m.lr, false}}, lr) +
         line_chart_svg({{"grad norm", "#8c564b", m.train_step, m.grad_norm, false}}, grad) +
         "</div>\n";
}

std::string summary(const RunMetrics& m) {
  if (m.eval_step.empty()) return "<p>No evaluation yet.</p>\n";
  std::size_t best = 0;
  for (std::size_t i = 1; i < m.seq_acc.size(); ++i)
    if (m.seq_acc[i] > m.seq_acc[best]) best = i;
  const std::size_t last = m.eval_step.size() - 1;
  return "<p>Last evaluation, step " + fixed(m.eval_step[last], 0) + ": loss " +
         fixed(m.eval_loss[last], 4) + ", token_acc " + fixed(m.token_acc[last], 3) + ", seq_acc " +
         fixed(m.seq_acc[last], 3) + ". Best seq_acc " + fixed(m.seq_acc[best], 3) + " at step " +
         fixed(m.eval_step[best], 0) + ".</p>\n";
}

}  // namespace

RunMetrics read_metrics(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read the run's metrics");
  std::stringstream text;
  text << in.rdbuf();
  const std::string content = text.str();
  RunMetrics metrics;
  std::size_t line = 0;
  for (std::size_t begin = 0; begin < content.size();) {
    ++line;
    const std::size_t end = content.find('\n', begin);
    if (end == std::string::npos) {  // killed while writing its last line
      metrics.cut_last_line = true;
      break;
    }
    const std::string row = content.substr(begin, end - begin);
    begin = end + 1;
    if (row.empty()) continue;
    const nlohmann::json object = nlohmann::json::parse(row, nullptr, /*allow_exceptions=*/false);
    if (object.is_discarded()) bad_line(path, line, "not JSON");
    add_line(object, path, line, metrics);
  }
  return metrics;
}

std::string run_report_html(const std::string& run_dir, const RunMetrics& metrics,
                            const std::string& config_yaml, const Inspection* inspection,
                            const std::string& inspect_note) {
  std::string body = "<p class=\"meta\">" + escape_xml(run_dir) + " &middot; " +
                     std::to_string(metrics.train_step.size()) + " train lines, " +
                     std::to_string(metrics.eval_step.size()) + " evaluations" +
                     (metrics.cut_last_line ? " (its last line was cut short and is left out)" : "") +
                     "</p>\n<h2>Training curves</h2>\n" + summary(metrics) + charts(metrics);
  body += "<h2>Inspecting best.safetensors</h2>\n";
  if (!inspect_note.empty()) body += "<p>" + escape_xml(inspect_note) + "</p>\n";
  if (inspection != nullptr) body += inspect_section_html(*inspection);
  body += "<h2>Resolved config</h2>\n<pre class=\"config\">" + escape_xml(config_yaml) + "</pre>\n";
  return html_page("qkv run report: " + run_dir, body);
}

}  // namespace qkv::inspect
