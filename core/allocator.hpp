// tune_allocator: makes glibc's malloc keep freed memory for reuse instead of returning
// it to the system, which a training loop needs to avoid page faults on every step.
//
// Each training step frees and reallocates the same activation and gradient buffers.
// glibc serves the large ones (>= 128 KiB) with fresh mmap'ed pages and gives the heap's
// top back to the system, so every step would pay page faults to zero-fill them again;
// keeping freed memory in the heap makes the next step reuse it. The cost is that the
// process holds on to its peak heap (up to 1 GiB of freed memory) until it exits.
//
//   int main() {
//     qkv::core::tune_allocator();  // first thing, before the model allocates
//     ...
//   }
//
// It changes process-wide allocator settings, so it is for programs (the trainer, a user's
// binary), never called by the library on its own. Calling it more than once is harmless;
// only the first call acts. Where malloc is not glibc's it does nothing.
#pragma once

namespace qkv::core {

void tune_allocator();

}  // namespace qkv::core
