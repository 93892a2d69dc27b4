// Ready-made hooks (layers/hooks.hpp) for the usual interventions: ablating one attention
// head, and patching an activation with the value from another run. Hand them to
// run_with_hooks or run_with_cache (activation_cache.hpp) or to Transformer::add_hook.
//
//   zero_ablate_head(l, h)        head h of block l outputs zeros: its slice of
//                                 blocks.<l>.attn.hook_z becomes 0, the same as zeroing
//                                 the columns of wo that read it (Michel et al. 2019)
//   mean_ablate_head(l, h, mean)  that slice becomes `mean`: (Dv), one vector for every
//                                 position, or (T, Dv), one per position
//   patch(name, value)            the activation at `name` becomes `value` (its shape)
//
// The ablations use the built-in attention's hook_z (B, T, h, Dv), so they need a
// MultiHeadAttention in block l; a head outside 0..h-1 is std::out_of_range when the hook
// runs, naming the point and its shape. They are products with 0/1 masks, so every other
// head's values pass bit for bit, and a graph (when grad is on) flows through them.
//
//   ActivationCache clean = run_with_cache(model, ids);
//   Tensor mean = head_mean(clean["blocks.0.attn.hook_z"], 1);            // (Dv)
//   Tensor ablated = run_with_hooks(model, ids, {mean_ablate_head(0, 1, mean)});
//   Tensor patched = run_with_hooks(model, corrupted_ids,
//                                   {patch("blocks.1.hook_resid_pre", clean["blocks.1.hook_resid_pre"])});
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.hpp"
#include "layers/hooks.hpp"

namespace qkv::inspect {

layers::Hook zero_ablate_head(std::size_t layer, std::size_t head);
// `mean` is checked here (rank 1 or 2) and against the activation when the hook runs.
layers::Hook mean_ablate_head(std::size_t layer, std::size_t head, const core::Tensor& mean);
layers::Hook patch(const std::string& name, const core::Tensor& value);

// The mean (Dv) of head `head`'s output z (B, T, h, Dv) over the positions whose
// `positions` byte (B·T, as a batch's mask) is nonzero; every position when empty.
core::Tensor head_mean(const core::Tensor& z, std::size_t head,
                       const std::vector<std::uint8_t>& positions = {});

}  // namespace qkv::inspect
