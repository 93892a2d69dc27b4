// Head ablation and activation patching as hooks at blocks.<l>.attn.hook_z and any point.
#include "inspect/interventions.hpp"

#include <stdexcept>

#include "core/ops.hpp"

namespace qkv::inspect {

namespace {

std::string z_name(std::size_t layer) { return "blocks." + std::to_string(layer) + ".attn.hook_z"; }

void check_head(const char* who, const std::string& name, const core::Tensor& z, std::size_t head) {
  if (z.dim() != 4 || head >= z.size(2)) {
    throw std::out_of_range(std::string(who) + ": head " + std::to_string(head) +
                            " out of range: '" + name + "' is " + core::shape_str(z.shape()) +
                            " (B, T, heads, Dv)");
  }
}

// 0 for `head`, 1 for every other: (1, 1, h, 1) in z's dtype, to multiply z with.
core::Tensor keep_others(const core::Tensor& z, std::size_t head) {
  std::vector<double> keep(z.size(2), 1.0);
  keep[head] = 0.0;
  return core::Tensor::from_vector(keep, {1, 1, z.size(2), 1}).to(z.dtype());
}

// `mean` in head's slot and 0 elsewhere: (1, 1, h, Dv) or (1, T, h, Dv), to add to z.
core::Tensor mean_in_slot(const core::Tensor& z, std::size_t head, const core::Tensor& mean,
                          const std::string& name) {
  const std::size_t H = z.size(2), Dv = z.size(3);
  const bool per_position = mean.dim() == 2;
  const std::size_t T = per_position ? mean.size(0) : 1;
  if (mean.size(-1) != Dv || (per_position && T != z.size(1))) {
    throw std::invalid_argument("mean_ablate_head: the mean is " + core::shape_str(mean.shape()) +
                                "; '" + name + "' is " + core::shape_str(z.shape()) +
                                ", so it must be (" + std::to_string(Dv) + ") or (" +
                                std::to_string(z.size(1)) + ", " + std::to_string(Dv) + ")");
  }
  const std::vector<double> values = mean.to_vector();
  std::vector<double> fill(T * H * Dv, 0.0);
  for (std::size_t t = 0; t < T; ++t) {
    for (std::size_t d = 0; d < Dv; ++d) fill[(t * H + head) * Dv + d] = values[t * Dv + d];
  }
  return core::Tensor::from_vector(fill, {1, T, H, Dv}).to(z.dtype());
}

}  // namespace

layers::Hook zero_ablate_head(std::size_t layer, std::size_t head) {
  const std::string name = z_name(layer);
  return layers::replace_hook(name, [name, head](const core::Tensor& z) {
    check_head("zero_ablate_head", name, z, head);
    return core::mul(z, keep_others(z, head));
  });
}

layers::Hook mean_ablate_head(std::size_t layer, std::size_t head, const core::Tensor& mean) {
  if (!mean.defined() || mean.dim() < 1 || mean.dim() > 2) {
    throw std::invalid_argument("mean_ablate_head: the mean must be (Dv) or (T, Dv); got " +
                                (mean.defined() ? core::shape_str(mean.shape()) : std::string("an undefined tensor")));
  }
  const std::string name = z_name(layer);
  const core::Tensor kept = mean.detach();
  return layers::replace_hook(name, [name, head, kept](const core::Tensor& z) {
    check_head("mean_ablate_head", name, z, head);
    return core::add(core::mul(z, keep_others(z, head)), mean_in_slot(z, head, kept, name));
  });
}

layers::Hook patch(const std::string& name, const core::Tensor& value) {
  if (!value.defined()) throw std::invalid_argument("patch '" + name + "': the value is an undefined tensor");
  const core::Tensor kept = value.detach();
  return layers::replace_hook(name, [kept](const core::Tensor&) { return kept; });
}

core::Tensor head_mean(const core::Tensor& z, std::size_t head, const std::vector<std::uint8_t>& positions) {
  check_head("head_mean", "z", z, head);
  const std::size_t B = z.size(0), T = z.size(1), H = z.size(2), Dv = z.size(3);
  if (!positions.empty() && positions.size() != B * T) {
    throw std::invalid_argument("head_mean: positions has " + std::to_string(positions.size()) +
                                " entries; z " + core::shape_str(z.shape()) + " has B·T = " +
                                std::to_string(B * T));
  }
  const std::vector<double> values = z.to_vector();
  std::vector<double> sum(Dv, 0.0);
  std::size_t count = 0;
  for (std::size_t p = 0; p < B * T; ++p) {
    if (!positions.empty() && positions[p] == 0) continue;
    for (std::size_t d = 0; d < Dv; ++d) sum[d] += values[(p * H + head) * Dv + d];
    ++count;
  }
  if (count == 0) throw std::invalid_argument("head_mean: no position is selected");
  for (double& s : sum) s /= static_cast<double>(count);
  return core::Tensor::from_vector(sum, {Dv}).to(z.dtype());
}

}  // namespace qkv::inspect
