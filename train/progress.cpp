// Progress bar and plain progress lines (see progress.hpp).
#include "train/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace qkv::train {

namespace {

constexpr auto kRedrawInterval = std::chrono::milliseconds(100);
constexpr std::size_t kBarWidth = 20;

std::string duration_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  auto total = static_cast<long long>(seconds + 0.5);
  if (total >= 3600) return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

std::string rate_text(double tokens_per_s) {
  if (tokens_per_s >= 1e6) return fmt::format("{:.2f}M tok/s", tokens_per_s / 1e6);
  if (tokens_per_s >= 1e3) return fmt::format("{:.1f}k tok/s", tokens_per_s / 1e3);
  return fmt::format("{:.0f} tok/s", tokens_per_s);
}

// The terminal's width in columns (80 when it can't be asked).
std::size_t terminal_columns(std::FILE* stream) {
  winsize size{};
  if (::ioctl(::fileno(stream), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

}  // namespace

bool is_terminal(std::FILE* stream) { return ::isatty(::fileno(stream)) == 1; }

Progress::Progress(std::FILE* out, bool terminal, std::size_t total_steps, std::size_t start_step)
    : out_(out),
      terminal_(terminal),
      total_steps_(total_steps),
      start_step_(start_step),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - kRedrawInterval) {}

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::eta(std::size_t step) const {
  const std::size_t done = step - start_step_;
  if (done == 0) return NAN;
  return elapsed() / static_cast<double>(done) * static_cast<double>(total_steps_ - step);
}

void Progress::draw(std::size_t step, double loss, double tokens_per_s) {
  const double fraction =
      total_steps_ > 0 ? static_cast<double>(step) / static_cast<double>(total_steps_) : 1.0;
  const auto filled = std::min(kBarWidth, static_cast<std::size_t>(fraction * kBarWidth));
  std::string text = "[" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') +
                     fmt::format("] {}/{}  loss {:.4f}", step, total_steps_, loss);
  if (eval_) text += fmt::format("  eval acc {:.3f} seq {:.3f}", eval_->token_acc, eval_->seq_acc);
  text += fmt::format("  {}  {} ETA {}", rate_text(tokens_per_s), duration_text(elapsed()),
                      duration_text(eta(step)));
  // A line wider than the terminal would wrap, and "\r" only returns to its last row.
  text.resize(std::min(text.size(), terminal_columns(out_) - 1));
  // "\r" returns to the line start, "\x1b[K" clears what a longer previous line left.
  std::fprintf(out_, "\r%s\x1b[K", text.c_str());
  std::fflush(out_);
  bar_shown_ = true;
  last_draw_ = std::chrono::steady_clock::now();
}

void Progress::update(std::size_t step, double loss, double tokens_per_s) {
  if (!terminal_) return;
  if (std::chrono::steady_clock::now() - last_draw_ < kRedrawInterval && step != total_steps_)
    return;
  draw(step, loss, tokens_per_s);
}

void Progress::evaluated(std::size_t step, double loss, double tokens_per_s,
                         const EvalResult& eval) {
  eval_ = eval;
  if (terminal_) {
    draw(step, loss, tokens_per_s);
    return;
  }
  std::fprintf(out_,
               "step %zu/%zu  loss %.4f  eval loss %.4f token_acc %.4f seq_acc %.4f  %s  "
               "elapsed %s  ETA %s\n",
               step, total_steps_, loss, eval.loss, eval.token_acc, eval.seq_acc,
               rate_text(tokens_per_s).c_str(), duration_text(elapsed()).c_str(),
               duration_text(eta(step)).c_str());
  std::fflush(out_);
}

void Progress::message(const std::string& text) {
  if (terminal_ && bar_shown_) {
    std::fprintf(out_, "\r\x1b[K");
    bar_shown_ = false;
  }
  std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
  last_draw_ = start_ - kRedrawInterval;  // redraw the bar below the message next time
}

void Progress::finish() {
  if (terminal_ && bar_shown_) {
    std::fprintf(out_, "\n");
    std::fflush(out_);
    bar_shown_ = false;
  }
}

}  // namespace qkv::train
