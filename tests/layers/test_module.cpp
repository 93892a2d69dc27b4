// Module: dotted names in registration order, modes, gradients, dtype conversion, and
// state export/import with errors that name the tensor and both shapes.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/ops.hpp"
#include "layers/module.hpp"
#include "layers/module_list.hpp"
#include "layer_test_util.hpp"

using namespace qkv;
using namespace qkv::layers;
using core::DType;
using core::Tensor;

namespace {

class Scale : public Module {
 public:
  explicit Scale(std::size_t n) {
    gain_ = register_parameter("gain", Tensor::ones({n}), ParamKind::norm);
    shift_ = register_parameter("shift", Tensor::zeros({n}), ParamKind::bias);
  }
  Tensor forward(const Tensor& x) { return core::add(core::mul(x, gain_), shift_); }
  // Exposes the protected registration calls to the error tests.
  void add_parameter(const std::string& name, Tensor value) { register_parameter(name, value); }
  void add_module(const std::string& name, std::shared_ptr<Module> m) { register_module(name, m); }

 private:
  Tensor gain_, shift_;
};

class Net : public Module {
 public:
  Net() {
    core::Rng rng(1);
    weight_ = register_parameter("weight", Tensor::randn({3, 2}, rng));
    first_ = register_module("first", std::make_shared<Scale>(2));
    stack_ = register_module("stack", std::make_shared<ModuleList>());
    stack_->append(std::make_shared<Scale>(3));
    stack_->append(std::make_shared<Scale>(3));
  }
  Tensor forward(const Tensor& x) {  // x (N, 2) -> (N, 3)
    return core::matmul(first_->forward(x), weight_, false, true);
  }
  std::shared_ptr<Scale> first_;
  std::shared_ptr<ModuleList> stack_;
  Tensor weight_;
};

std::vector<std::string> names_of(const Module& m) {
  std::vector<std::string> names;
  for (const auto& p : m.named_parameters()) names.push_back(p.name);
  return names;
}

}  // namespace

TEST_CASE("module: named_parameters are dotted paths in registration order") {
  Net net;
  CHECK(names_of(net) == std::vector<std::string>{"weight", "first.gain", "first.shift",
                                                  "stack.0.gain", "stack.0.shift",
                                                  "stack.1.gain", "stack.1.shift"});
  const auto params = net.named_parameters();
  CHECK(params[0].kind == ParamKind::weight);
  CHECK(params[1].kind == ParamKind::norm);
  CHECK(params[2].kind == ParamKind::bias);
  CHECK(net.parameter_count() == 6 + 2 * 2 + 2 * 3 * 2);
  CHECK(net.parameters().size() == 7);
  for (const auto& p : params) {
    CHECK(p.tensor.requires_grad());
    CHECK(p.tensor.is_leaf());
  }
  CHECK(params[1].tensor.same(net.first_->named_parameters()[0].tensor));
  CHECK(net.children().size() == 2);
  CHECK(net.stack_->size() == 2);
}

TEST_CASE("module: registration errors name the clash") {
  Scale s(2);
  CHECK_THROWS_WITH_AS(s.add_parameter("gain", Tensor::ones({2})),
                       doctest::Contains("parameter 'gain' registered twice"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(s.add_parameter("a.b", Tensor::ones({2})),
                       doctest::Contains("name 'a.b' must be non-empty and contain no '.'"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(s.add_module("gain", std::make_shared<Scale>(1)),
                       doctest::Contains("child module 'gain' clashes with a parameter"),
                       std::invalid_argument);
  s.add_module("child", std::make_shared<Scale>(1));
  CHECK_THROWS_WITH_AS(s.add_module("child", std::make_shared<Scale>(1)),
                       doctest::Contains("child module 'child' registered twice"),
                       std::invalid_argument);
  Tensor w = Tensor::ones({2}).requires_grad_();
  Tensor not_leaf = core::mul(w, 2.0);
  CHECK_THROWS_WITH_AS(s.add_parameter("derived", not_leaf),
                       doctest::Contains("'derived' must be a leaf tensor"), std::invalid_argument);
}

TEST_CASE("module: train and eval recurse into children") {
  Net net;
  CHECK(net.is_training());
  net.eval();
  CHECK_FALSE(net.is_training());
  CHECK_FALSE(net.first_->is_training());
  CHECK_FALSE(net.stack_->children()[1].second->is_training());
  net.train();
  CHECK(net.stack_->children()[1].second->is_training());
}

TEST_CASE("module: zero_grad drops every gradient") {
  Net net;
  Tensor x = test::random_input({4, 2}, 3);
  core::sum(net.forward(x)).backward();
  CHECK(net.weight_.grad().defined());
  CHECK(net.first_->named_parameters()[0].tensor.grad().defined());
  net.zero_grad();
  for (const auto& p : net.named_parameters()) CHECK_FALSE(p.tensor.grad().defined());
}

TEST_CASE("module: to(f64) converts in place, so the layer's own handles follow") {
  Net net;
  const Tensor x32 = test::random_input({4, 2}, 3);
  const Tensor y32 = net.forward(x32);
  const std::vector<double> before = net.weight_.to_vector();
  net.to(DType::f64);
  for (const auto& p : net.named_parameters()) {
    CHECK(p.tensor.dtype() == DType::f64);
    CHECK(p.tensor.requires_grad());
  }
  CHECK(net.weight_.dtype() == DType::f64);  // the handle the forward code reads
  CHECK(net.weight_.to_vector() == before);
  const Tensor y64 = net.forward(x32.to(DType::f64));
  CHECK(y64.dtype() == DType::f64);
  CHECK(test::max_abs_diff(y64, y32) < 1e-6);
  core::sum(y64).backward();
  CHECK(net.weight_.grad().dtype() == DType::f64);
}

TEST_CASE("module: state round-trips by name") {
  Net source, target;
  core::Rng rng(9);
  for (auto& p : source.named_parameters()) {
    Tensor t = p.tensor;
    t.copy_(Tensor::randn(t.shape(), rng));
  }
  const auto state = source.state();
  CHECK(state.size() == 7);
  CHECK(state.count("stack.1.shift") == 1);
  // A copy: changing the model afterwards leaves the exported state alone.
  const double first = state.at("weight").to_vector()[0];
  source.weight_.fill_(0.0);
  CHECK(state.at("weight").to_vector()[0] == first);

  target.load_state(state);
  for (const auto& p : target.named_parameters()) {
    CHECK(p.tensor.to_vector() == state.at(p.name).to_vector());
  }
}

TEST_CASE("module: load_state errors name the tensor and leave the model unchanged") {
  Net net;
  const std::vector<double> original = net.weight_.to_vector();
  SUBCASE("wrong shape") {
    auto state = net.state();
    state["weight"] = Tensor::zeros({2, 3});
    CHECK_THROWS_WITH_AS(net.load_state(state),
                         doctest::Contains("tensor 'weight' has shape [2, 3]; model expects [3, 2]"),
                         std::invalid_argument);
  }
  SUBCASE("missing tensor") {
    auto state = net.state();
    state["weight"] = Tensor::zeros({3, 2});
    state.erase("stack.0.gain");
    CHECK_THROWS_WITH_AS(net.load_state(state),
                         doctest::Contains("1 tensor(s) missing from the state: 'stack.0.gain'"),
                         std::invalid_argument);
  }
  SUBCASE("unknown tensor, with the closest name") {
    auto state = net.state();
    state["weight"] = Tensor::zeros({3, 2});
    state["first.gian"] = Tensor::zeros({2});
    CHECK_THROWS_WITH_AS(net.load_state(state),
                         doctest::Contains("unknown tensor 'first.gian'"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(net.load_state(state),
                         doctest::Contains("did you mean 'first.gain'?"), std::invalid_argument);
  }
  CHECK(net.weight_.to_vector() == original);
}

TEST_CASE("module: load_state converts values into the model's dtype") {
  Net net;
  auto state = net.state();
  for (auto& [name, t] : state) t = t.to(DType::f64);
  net.weight_.fill_(0.0);
  net.load_state(state);
  CHECK(net.weight_.dtype() == DType::f32);
  CHECK(test::max_abs_diff(net.weight_, state.at("weight")) < 1e-7);
}

TEST_CASE("module: freeze turns parameters into buffers that are saved but never trained") {
  Net net;
  const auto before = net.state();
  net.first_->freeze();
  CHECK(names_of(net) == std::vector<std::string>{"weight", "stack.0.gain", "stack.0.shift",
                                                  "stack.1.gain", "stack.1.shift"});
  std::vector<std::string> buffers;
  for (const auto& b : net.named_buffers()) buffers.push_back(b.name);
  CHECK(buffers == std::vector<std::string>{"first.gain", "first.shift"});
  CHECK(net.buffer_count() == 4);
  CHECK(net.parameter_count() == 6 + 2 * 3 * 2);
  // The same names and values in the state, so a checkpoint holds them as before.
  const auto after = net.state();
  REQUIRE(after.size() == before.size());
  for (const auto& [name, t] : before) CHECK(after.at(name).to_vector() == t.to_vector());

  const Tensor x = test::random_input({4, 2}, 3);
  core::sum(net.forward(x)).backward();
  for (const auto& b : net.named_buffers()) CHECK_FALSE(b.tensor.grad().defined());
  CHECK(net.weight_.grad().defined());

  Net other;
  other.first_->freeze();
  auto state = net.state();
  state["first.gain"] = Tensor::full({2}, 3.0);
  other.load_state(state);
  CHECK(other.named_buffers()[0].tensor.to_vector() == std::vector<double>{3.0, 3.0});
  state.erase("first.shift");
  CHECK_THROWS_WITH_AS(other.load_state(state),
                       doctest::Contains("1 tensor(s) missing from the state: 'first.shift'"),
                       std::invalid_argument);
}

TEST_CASE("module: a buffer's name is checked like a parameter's") {
  class WithBuffer : public Module {
   public:
    WithBuffer() {
      register_parameter("weight", Tensor::ones({2}));
      table_ = register_buffer("table", Tensor::ones({3}));
    }
    void add_buffer(const std::string& name, Tensor value) { register_buffer(name, value); }
    void add_parameter(const std::string& name, Tensor value) { register_parameter(name, value); }
    Tensor table_;
  };
  WithBuffer m;
  CHECK_FALSE(m.table_.requires_grad());
  CHECK(m.state().count("table") == 1);
  CHECK(m.parameter_count() == 2);
  CHECK_THROWS_WITH_AS(m.add_buffer("table", Tensor::ones({1})),
                       doctest::Contains("buffer 'table' registered twice"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(m.add_buffer("weight", Tensor::ones({1})),
                       doctest::Contains("buffer 'weight' clashes with a parameter"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(m.add_parameter("table", Tensor::ones({1})),
                       doctest::Contains("parameter 'table' clashes with a buffer"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(m.add_buffer("a.b", Tensor::ones({1})),
                       doctest::Contains("buffer name 'a.b' must be non-empty"), std::invalid_argument);
}
