// StopSignals: sigaction handlers that record the first SIGINT/SIGTERM and let a second
// one take its default action (see stop_signals.hpp).
#include "train/stop_signals.hpp"

#include <signal.h>

#include <mutex>

namespace qkv::train {

namespace {

volatile sig_atomic_t g_received = 0;
std::mutex g_mutex;    // guards the count and the saved handlers
int g_installed = 0;  // StopSignals alive
struct sigaction g_previous_int, g_previous_term;

extern "C" void on_stop_signal(int signal) {
  if (g_received == 0) {
    g_received = signal;
    return;
  }
  // The second one: die of it now (it stays blocked until this handler returns).
  ::signal(signal, SIG_DFL);
  ::raise(signal);
}

}  // namespace

StopSignals::StopSignals() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  if (g_installed++ > 0) return;  // installed already: share its handlers and its signal
  g_received = 0;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // a signal during a write does not fail the write
  ::sigaction(SIGINT, &action, &g_previous_int);
  ::sigaction(SIGTERM, &action, &g_previous_term);
}

StopSignals::~StopSignals() {
  const std::lock_guard<std::mutex> lock(g_mutex);
  if (--g_installed > 0) return;
  ::sigaction(SIGINT, &g_previous_int, nullptr);
  ::sigaction(SIGTERM, &g_previous_term, nullptr);
}

int StopSignals::pending() const { return g_received; }

const char* StopSignals::name(int signal) {
  switch (signal) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
  }
}

}  // namespace qkv::train
