// The sweep's picture: two models' attention maps side by side on the same held-out input,
// one SVG (the `learned` model left, the `none` model right, by default). Each side is
// inspect's heads_svg of that model (its layers × heads maps, token labels, colour scale),
// placed next to the other in one outer <svg>.
//
//   std::string svg = maps_figure({"runs/copy-ablation/learned/seed-1/last.safetensors",
//                                  "learned: Wq, Wk, Wv, Wo learned"},
//                                 {"runs/copy-ablation/none/seed-1/last.safetensors",
//                                  "none: raw dot products"});
//
// The input is the first held-out example of the left model's task and seed (what its
// evaluation read), as the model reads it (prompt SEP answer). Both checkpoints must
// have the same vocabulary (std::runtime_error naming both otherwise); a checkpoint that
// does not load is load_model's error.
#pragma once

#include <string>

namespace qkv::ablate {

struct FigureSide {
  std::string checkpoint;
  std::string caption;  // under the side's title
};

std::string maps_figure(const FigureSide& left, const FigureSide& right);

}  // namespace qkv::ablate
