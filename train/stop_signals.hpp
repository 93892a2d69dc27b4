// StopSignals: Ctrl-C and SIGTERM end a training run cleanly instead of killing it. While
// one lives, the first SIGINT or SIGTERM is only recorded (pending()); the trainer
// finishes its current step, writes last.safetensors and returns, and the command exits
// with 130 or 143 (128 + the signal, what a shell reports for a kill by it). A second
// signal kills the process at once, as if no handler were installed: a run that hangs
// (a huge evaluation, a slow disk) can still be stopped, and since checkpoints are
// replaced atomically, the last good one on disk still loads.
//
//   StopSignals signals;                 // installs the handlers; the old ones come back
//   while (...) { step(); if (signals.pending() != 0) { save(); break; } }
//
// One may live at a time (std::logic_error otherwise): the handlers are process-wide.
#pragma once

namespace qkv::train {

class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // 0, or the first signal received (SIGINT or SIGTERM).
  int pending() const;

  // "SIGINT", "SIGTERM" (for messages).
  static const char* name(int signal);
};

}  // namespace qkv::train
