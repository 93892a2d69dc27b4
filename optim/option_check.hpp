// Internal helper for validating optimizer and schedule options: one message shape for
// every bad value, "adam: option beta1 = 1.5 is out of range; expected [0, 1)".
// Not part of the public API (no usage example on purpose).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace qkv::optim::detail {

inline void check_option(bool ok, const std::string& who, const char* option, double value,
                         const char* expected) {
  if (ok) return;
  std::ostringstream message;
  message << who << ": option " << option << " = " << value << " is out of range; expected "
          << expected;
  throw std::invalid_argument(message.str());
}

}  // namespace qkv::optim::detail
