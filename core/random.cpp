// xoshiro256** (Blackman & Vigna) seeded by splitmix64; normals by Box–Muller. Every draw
// is defined here, so a seed means the same numbers with every compiler and library.
#include "core/random.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace qkv::core {

namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Rng::Rng(std::uint64_t seed) : seed_(seed) {
  std::uint64_t x = seed;
  for (auto& word : s_) word = splitmix64(x);
}

std::uint64_t Rng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

double Rng::normal() {
  if (has_cached_normal_) {
    has_cached_normal_ = false;
    return cached_normal_;
  }
  // 1 - uniform() is in (0, 1], so the log is finite.
  const double radius = std::sqrt(-2.0 * std::log(1.0 - uniform()));
  const double angle = 2.0 * M_PI * uniform();
  cached_normal_ = radius * std::sin(angle);
  has_cached_normal_ = true;
  return radius * std::cos(angle);
}

std::uint64_t Rng::below(std::uint64_t n) {
  if (n == 0) throw std::invalid_argument("Rng::below: n must be positive");
  // Rejection of the short last block keeps every value equally likely.
  const std::uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  std::uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

Rng Rng::split(std::uint64_t stream) const {
  std::uint64_t x = seed_ ^ (0xD1B54A32D192ED03ULL * (stream + 1));
  return Rng(splitmix64(x));
}

std::string Rng::state() const {
  std::ostringstream out;
  out << s_[0] << ' ' << s_[1] << ' ' << s_[2] << ' ' << s_[3] << ' ' << seed_ << ' '
      << has_cached_normal_;
  if (has_cached_normal_) out << ' ' << std::hexfloat << cached_normal_;
  return out.str();
}

void Rng::set_state(const std::string& state) {
  std::istringstream in(state);
  std::array<std::uint64_t, 4> s{};
  std::uint64_t seed = 0;
  int cached = 0;
  double cached_value = 0.0;
  in >> s[0] >> s[1] >> s[2] >> s[3] >> seed >> cached;
  if (in && cached == 1) {
    std::string hex;
    in >> hex;
    cached_value = std::strtod(hex.c_str(), nullptr);
  }
  std::string rest;
  if (!in || (cached != 0 && cached != 1) || (in >> rest))
    throw std::invalid_argument("Rng::set_state: malformed state '" + state + "'");
  s_ = s;
  seed_ = seed;
  has_cached_normal_ = cached == 1;
  cached_normal_ = cached_value;
}

}  // namespace qkv::core
