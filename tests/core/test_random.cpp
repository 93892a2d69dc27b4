// Rng: determinism, independence of split streams, distribution sanity, state round trip.
#include <doctest/doctest.h>

#include <stdexcept>

#include <cmath>
#include <vector>

#include "core/random.hpp"

using qkv::core::Rng;

TEST_CASE("rng: same seed, same stream; different seeds differ") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    const auto x = a.next_u64();
    CHECK(x == b.next_u64());
    CHECK(x != c.next_u64());
  }
}

TEST_CASE("rng: the stream is fixed by the algorithm, not the platform") {
  // xoshiro256** seeded with splitmix64(0): the first outputs are part of our contract
  // (checkpoints and configs rely on a seed meaning the same data everywhere).
  Rng rng(0);
  const std::uint64_t first = rng.next_u64();
  Rng again(0);
  CHECK(again.next_u64() == first);
  CHECK(first == 0x99EC5F36CB75F2B4ULL);
}

TEST_CASE("rng: uniform, normal and below have the right moments and ranges") {
  Rng rng(7);
  double sum = 0, sum_sq = 0, usum = 0;
  bool in_range = true;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double z = rng.normal();
    sum += z;
    sum_sq += z * z;
    const double u = rng.uniform();
    in_range = in_range && u >= 0.0 && u < 1.0;
    usum += u;
  }
  CHECK(in_range);
  CHECK(sum / n == doctest::Approx(0.0).scale(1.0).epsilon(0.01));
  CHECK(sum_sq / n == doctest::Approx(1.0).epsilon(0.01));
  CHECK(usum / n == doctest::Approx(0.5).epsilon(0.01));
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 50000; ++i) ++counts[rng.below(5)];
  for (int c : counts) CHECK(std::abs(c - 10000) < 500);
  CHECK_THROWS(rng.below(0));
}

TEST_CASE("rng: state round trip continues the same stream, split streams differ") {
  Rng rng(9);
  rng.normal();  // leaves a cached normal in the state
  const std::string saved = rng.state();
  std::vector<double> expected;
  for (int i = 0; i < 5; ++i) expected.push_back(rng.normal());
  Rng restored(1);
  restored.set_state(saved);
  for (double e : expected) CHECK(restored.normal() == e);
  CHECK(Rng(9).split(1).next_u64() != Rng(9).next_u64());
  CHECK(Rng(9).split(1).next_u64() == Rng(9).split(1).next_u64());
  CHECK(Rng(9).split(1).next_u64() != Rng(9).split(2).next_u64());
  CHECK_THROWS_WITH_AS(restored.set_state("1 2 three"), doctest::Contains("malformed state"), std::invalid_argument);
}
