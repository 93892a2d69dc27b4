// RunLock: one writer per run folder. Two trainings into one folder used to interleave
// metrics.jsonl lines, and leave a config.yaml that described another seed than the
// checkpoint beside it; the second one now stops before it writes anything.
//
// The lock is an advisory flock(2) on RUN_DIR/.lock, which holds the holder's pid as
// text; the kernel releases it when the holder exits, however it exits (a kill included),
// so a stale lock never blocks a folder. Readers (eval, inspect) take no lock.
//
//   RunLock lock("runs/copy");   // std::runtime_error if another process holds it:
//   // "run folder 'runs/copy' is in use by another qkv (pid 4242, holding
//   //  runs/copy/.lock): wait for it to finish, or train into another folder with --out"
#pragma once

#include <string>

namespace qkv::train {

class RunLock {
 public:
  // `folder` must exist. Throws std::runtime_error when the lock is held elsewhere (this
  // process's other locks included) or the lock file cannot be made.
  explicit RunLock(const std::string& folder);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace qkv::train
