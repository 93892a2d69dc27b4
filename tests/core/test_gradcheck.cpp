// gradcheck itself: it must catch a wrong backward and report where.
#include <doctest/doctest.h>

#include <stdexcept>

#include "core/op.hpp"
#include "tests/core/gradcheck_util.hpp"

using namespace qkv::core;

namespace {

// y = x² with a deliberately wrong backward (x instead of 2x) for one element.
Tensor broken_square(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), DType::f64);
  for (std::size_t i = 0; i < x.numel(); ++i) out.data<double>()[i] = x.data<double>()[i] * x.data<double>()[i];
  record(out, "broken_square", {x}, [](const Tensor& g, const Inputs& in) {
    const double* px = in[0].data<double>();
    const double* pg = g.data<double>();
    add_to_grad<double>(in[0], [&](std::size_t i) { return pg[i] * (i == 2 ? 1.0 : 2.0) * px[i]; });
  });
  return out;
}

}  // namespace

TEST_CASE("gradcheck: passes a correct op and catches a wrong backward, naming the element") {
  Tensor x = qkv::test::rand64({2, 3}, 1, 0.5, 1.5);
  const auto good = gradcheck("square", [](const std::vector<Tensor>& in) { return mul(in[0], in[0]); }, {x});
  CHECK(good.ok);
  CHECK(good.checked == 6);
  const auto bad = gradcheck("broken_square", [](const std::vector<Tensor>& in) { return broken_square(in[0]); }, {x});
  CHECK_FALSE(bad.ok);
  CHECK(bad.message.find("gradcheck 'broken_square': input 0 [2, 3] element [0, 2]") != std::string::npos);
  CHECK(bad.message.find("numeric") != std::string::npos);
  const auto bad_dir = gradcheck("broken_square", [](const std::vector<Tensor>& in) { return broken_square(in[0]); },
                                 {x}, GradcheckOptions{1e-6, 1e-8, 1e-6, 3, 4});
  CHECK_FALSE(bad_dir.ok);
  CHECK_THROWS_WITH_AS(gradcheck("f32", [](const std::vector<Tensor>& in) { return in[0]; }, {Tensor::zeros({2})}),
                       doctest::Contains("must be a defined float64 tensor"), std::invalid_argument);
}
