// `qkv inspect`'s terminal output: the weight tables, the head-to-head similarities, each
// head's attention map as a grid of Unicode shade blocks with the tokens on both axes, the
// pattern scores and the head importance.
//
// A map's row is the query (the position reading), its column the key (the position read);
// a cell's shade is the attention weight:
//
//   layer 1 head 0            row b attends mostly to a:   a  ██
//   (query ↓, key →)                                       b  ██··
//
// Weights below 0.1 are a dot, so the causal triangle stays visible; masked (future)
// positions are blank.
//
//   std::string text = text_report(inspection);   // what `qkv inspect` prints
//   std::string grid = shade_grid(map, tokens);    // one map
#pragma once

#include <string>
#include <vector>

#include "inspect/inspection.hpp"
#include "inspect/matrix.hpp"

namespace qkv::inspect {

// The shade of one weight in [0, 1], two columns wide: "  " for exactly 0 (masked), "··"
// below 0.1, then ░░ ▒▒ ▓▓ ██ at 0.1, 0.3, 0.55 and 0.8.
const char* shade(double weight);

// One map (T × T) with the tokens as row labels and, written downwards, column labels.
// Returns its lines.
std::vector<std::string> shade_grid(const Matrix& map, const std::vector<std::string>& tokens);

// Everything: tables, the first `maps_of` samples' maps (heads of a layer side by side
// when they fit in `width` columns), scores and importance.
std::string text_report(const Inspection& inspection, std::size_t maps_of = 1,
                        std::size_t width = 120);

}  // namespace qkv::inspect
