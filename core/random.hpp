// Rng: the project's own seeded random number generator.
//
// std::normal_distribution and friends produce different streams on different standard
// libraries, so a seed would not mean the same weights everywhere. This generator is
// xoshiro256** seeded through splitmix64, with uniform and normal (Box–Muller) draws
// defined here, so a seed gives the same numbers on every platform. Its whole state can be
// saved and restored (checkpoints store it for exact resume).
//
//   Rng rng(42);
//   double u = rng.uniform();      // [0, 1)
//   double z = rng.normal();       // N(0, 1)
//   std::uint64_t k = rng.below(10);  // 0..9
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace qkv::core {

class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0);

  std::uint64_t next_u64();
  double uniform();                     // [0, 1), 53 random bits
  double uniform(double lo, double hi);  // [lo, hi)
  double normal();                      // standard normal
  std::uint64_t below(std::uint64_t n);  // uniform integer in [0, n), n > 0, unbiased

  // A generator for an independent stream (e.g. held-out evaluation data) derived from
  // this one's seed and a stream id; this generator's state is not changed.
  Rng split(std::uint64_t stream) const;

  // Whole state as text ("s0 s1 s2 s3 seed [cached normal]") for checkpoints.
  std::string state() const;
  void set_state(const std::string& state);  // throws std::invalid_argument if malformed

 private:
  std::array<std::uint64_t, 4> s_{};
  std::uint64_t seed_ = 0;
  bool has_cached_normal_ = false;
  double cached_normal_ = 0.0;
};

}  // namespace qkv::core
