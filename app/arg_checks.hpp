// Checks of command-line values that CLI11's own validators let through (internal to
// app/): a seed of -1 (CLI11 reads it as 2^64 - 1 into an unsigned), an accuracy of nan
// (CLI::Range compares, and every comparison with NaN is false), and counts of examples
// past train::kMaxEvalSamples (CLI::PositiveNumber printed DBL_MAX as its upper bound).
//
//   command.add_option("--seed", args->seed, "...")->check(seed_check());
//   command.add_option("--samples", args->samples, "...")->check(sample_count_check());
#pragma once

#include <cmath>
#include <string>

#include <CLI/CLI.hpp>

#include "train/config.hpp"

namespace qkv::app {

inline CLI::Validator seed_check() {
  return CLI::Validator(
      [](std::string& text) {
        const bool digits = !text.empty() && text.size() <= 20 &&
                            text.find_first_not_of("0123456789") == std::string::npos &&
                            (text.size() < 20 || text <= "18446744073709551615");
        return digits ? std::string()
                      : "expected a seed from 0 to 18446744073709551615, found " + text;
      },
      "SEED >= 0");
}

inline CLI::Validator accuracy_check() {
  return CLI::Validator(
      [](std::string& text) {
        double value = NAN;
        try {
          std::size_t used = 0;
          value = std::stod(text, &used);
          if (used != text.size()) value = NAN;
        } catch (const std::exception&) {
          value = NAN;
        }
        return value >= 0 && value <= 1 ? std::string()
                                        : "expected an accuracy in [0, 1], found " + text;
      },
      "ACC in [0, 1]");
}

inline CLI::Validator sample_count_check() {
  return CLI::Range(std::size_t{1}, train::kMaxEvalSamples);
}

}  // namespace qkv::app
