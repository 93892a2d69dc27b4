// heads.svg: one input's attention as a layers × heads grid of heat maps, each with the
// tokens on both axes (query rows read down the left, key columns across the top), a
// title saying what the head mostly attends to on this input, and a colour scale. Each
// cell carries a <title> (a browser's tooltip: "layer 0 head 1: 'c' reads 'a': 0.93") and
// data attributes (data-l, data-h, data-q, data-k, data-w) that report.html's script reads.
//
// Colours run from white (0) to dark blue (1), a sequential scale that prints in grey;
// masked cells (a causal model's future, weight exactly 0) are light grey.
//
//   std::string svg = heads_svg(inspection.samples[0], "runs/copy/best.safetensors");
//   write it to heads.svg, or inline it in HTML with SvgOptions{.standalone = false}
#pragma once

#include <string>

#include "inspect/attention_maps.hpp"

namespace qkv::inspect {

struct SvgOptions {
  bool standalone = true;   // an XML declaration first (a file), or a bare <svg> (inline in HTML)
  bool cell_titles = true;  // each cell's <title> tooltip (report.html draws its own)
};

// "#rrggbb" of a weight in [0, 1] (clamped).
std::string weight_color(double weight);

// XML/HTML text with &, <, >, " and ' escaped.
std::string escape_xml(const std::string& text);

// `caption` names the model (a checkpoint path) under the title.
std::string heads_svg(const AttentionSample& sample, const std::string& caption,
                      const SvgOptions& options = {});

}  // namespace qkv::inspect
