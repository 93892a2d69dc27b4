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
// The handlers are process-wide. Several StopSignals may live at once (the trainers of one
// sweep, each on its thread, and the sweep itself): the first installs the handlers, the
// last one gone restores the old ones, and all of them see the same signal.
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
