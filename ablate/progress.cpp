// The sweep's progress block and lines (see progress.hpp).
#include "ablate/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

namespace qkv::ablate {

namespace {

using Clock = std::chrono::steady_clock;

constexpr double kRedrawSeconds = 0.1;
constexpr std::size_t kBarWidth = 20;

std::string bar(std::size_t step, std::size_t steps) {
  const std::size_t filled = steps == 0 ? kBarWidth : std::min(kBarWidth, step * kBarWidth / steps);
  return "[" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "]";
}

}  // namespace

std::string format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

SweepProgress::SweepProgress(std::FILE* out, bool terminal, std::string name,
                             std::size_t total_runs, std::size_t steps_to_train)
    : out_(out),
      terminal_(terminal),
      name_(std::move(name)),
      total_runs_(total_runs),
      steps_to_train_(steps_to_train) {}

std::size_t SweepProgress::width() const {
  winsize size{};
  if (::ioctl(::fileno(out_), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

std::string SweepProgress::headline(std::size_t running, std::size_t runs_done,
                                    std::size_t steps_done) const {
  std::string line = fmt::format("ablate {}: {}/{} runs done, {} running", name_, runs_done,
                                 total_runs_, running);
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  if (steps_done == 0 || elapsed <= 0) return line;
  const double rate = static_cast<double>(steps_done) / elapsed;
  const std::size_t left = steps_to_train_ > steps_done ? steps_to_train_ - steps_done : 0;
  return line + fmt::format(", {:.1f} steps/s, ETA {}", rate,
                            format_duration(static_cast<double>(left) / rate));
}

void SweepProgress::draw(const std::vector<RunningView>& running, std::size_t runs_done,
                         std::size_t steps_done) {
  if (out_ == nullptr || !terminal_) return;
  const Clock::time_point now = Clock::now();
  if (lines_shown_ > 0 && std::chrono::duration<double>(now - last_draw_).count() < kRedrawSeconds)
    return;
  last_draw_ = now;
  std::vector<std::string> lines = {headline(running.size(), runs_done, steps_done)};
  std::size_t label_width = 0;
  for (const RunningView& run : running) label_width = std::max(label_width, run.label.size());
  for (const RunningView& run : running)
    lines.push_back(fmt::format("  {:<{}}  {} {:>{}}/{}", run.label, label_width,
                                bar(run.step, run.steps), run.step,
                                std::to_string(run.steps).size(), run.steps));
  // The block keeps its height: a run that ended leaves an empty line, not a stale one.
  lines.resize(std::max(lines.size(), lines_shown_));
  const std::size_t columns = width();
  std::string text = lines_shown_ > 0 ? fmt::format("\x1b[{}A", lines_shown_) : std::string();
  for (const std::string& line : lines)
    text += "\r\x1b[2K" + line.substr(0, columns > 1 ? columns - 1 : columns) + "\n";
  std::fputs(text.c_str(), out_);
  std::fflush(out_);
  lines_shown_ = lines.size();
}

void SweepProgress::run_finished(const std::string& line) {
  if (out_ == nullptr || terminal_) return;
  std::fprintf(out_, "%s\n", line.c_str());
  std::fflush(out_);
}

void SweepProgress::finish() {
  if (out_ == nullptr || !terminal_ || lines_shown_ == 0) return;
  std::string text = fmt::format("\x1b[{}A", lines_shown_);
  for (std::size_t i = 0; i < lines_shown_; ++i) text += "\r\x1b[2K\n";
  text += fmt::format("\x1b[{}A", lines_shown_);
  std::fputs(text.c_str(), out_);
  std::fflush(out_);
  lines_shown_ = 0;
}

}  // namespace qkv::ablate
