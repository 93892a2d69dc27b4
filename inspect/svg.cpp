// The layers × heads heat maps of one input as SVG (see svg.hpp).
#include "inspect/svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "inspect/format.hpp"
#include "inspect/patterns.hpp"

namespace qkv::inspect {

namespace {

constexpr double kCharWidth = 7.0;  // of 11 px DejaVu Sans Mono, rounded up
constexpr double kMapSide = 240.0;  // a map's side, before the cell size is rounded

std::string num(double v) { return fixed(v, 1); }

// What the head does most on this input, in words, for its panel's title.
std::string strongest_pattern(const PatternScores& s) {
  const std::pair<const char*, std::optional<double>> kinds[] = {
      {"itself", s.self}, {"the previous token", s.previous}, {"the first token", s.first},
      {"SEP", s.sep}, {"the answer's source", s.source}};
  const char* best = nullptr;
  double top = -1;
  for (const auto& [name, v] : kinds)
    if (v && *v > top) top = *v, best = name;
  if (best == nullptr) return "";
  if (top < 0.3) return "spread out (most: " + std::string(best) + " " + fixed(top) + ")";
  return "mostly " + std::string(best) + " (" + fixed(top) + ")";
}

struct Layout {
  std::size_t T = 0;
  double cell = 0, map = 0, label = 0;  // label: the token labels' band on each axis
  double panel_w = 0, panel_h = 0;
  double top = 0, left = 20, scale_x = 0, width = 0, height = 0;
};

Layout layout_for(const AttentionSample& sample) {
  Layout g;
  g.T = sample.tokens.size();
  std::size_t longest = 1;
  for (const std::string& t : sample.tokens) longest = std::max(longest, t.size());
  g.cell = std::clamp(std::floor(kMapSide / static_cast<double>(g.T)), 9.0, 22.0);
  g.map = g.cell * static_cast<double>(g.T);
  g.label = static_cast<double>(longest) * kCharWidth + 8;
  g.panel_w = g.label + g.map + 36;
  g.panel_h = 40 + g.label + g.map + 24;  // two title lines, key labels, the map, a gap
  g.top = 78;
  const std::size_t L = sample.maps.size();
  const std::size_t H = L > 0 ? sample.maps[0].size() : 0;
  g.scale_x = g.left + g.panel_w * static_cast<double>(H) + 10;
  g.width = std::max(g.scale_x + 120, 600.0);
  g.height = g.top + g.panel_h * static_cast<double>(L) + 10;
  return g;
}

void add_panel(const AttentionSample& sample, std::size_t l, std::size_t h, const Layout& g,
               const SvgOptions& options, std::string& svg) {
  const Matrix& map = sample.maps[l][h];
  const double x0 = g.left + g.panel_w * static_cast<double>(h);
  const double y0 = g.top + g.panel_h * static_cast<double>(l);
  const double mx = x0 + g.label, my = y0 + 40 + g.label;  // the map's corner
  svg += "<g class=\"panel\" data-l=\"" + std::to_string(l) + "\" data-h=\"" + std::to_string(h) + "\">\n";
  svg += "<text x=\"" + num(x0) + "\" y=\"" + num(y0 + 14) + "\" class=\"head\">layer " +
         std::to_string(l) + " · head " + std::to_string(h) + "</text>\n";
  svg += "<text x=\"" + num(x0) + "\" y=\"" + num(y0 + 30) + "\" class=\"what\">" +
         escape_xml(strongest_pattern(pattern_scores(map, sample.roles))) + "</text>\n";
  for (std::size_t i = 0; i < g.T; ++i) {
    const std::string token = escape_xml(sample.tokens[i]);
    const double c = static_cast<double>(i) * g.cell + g.cell / 2;
    // Query label left of row i; key label above column i, reading upwards.
    svg += "<text x=\"" + num(mx - 4) + "\" y=\"" + num(my + c + 4) + "\" class=\"tok\" text-anchor=\"end\">" +
           token + "</text>\n";
    svg += "<text transform=\"translate(" + num(mx + c + 4) + "," + num(my - 4) +
           ") rotate(-90)\" class=\"tok\">" + token + "</text>\n";
  }
  for (std::size_t i = 0; i < g.T; ++i)
    for (std::size_t j = 0; j < g.T; ++j) {
      const double w = map(i, j);
      svg += "<rect x=\"" + num(mx + static_cast<double>(j) * g.cell) + "\" y=\"" +
             num(my + static_cast<double>(i) * g.cell) + "\" width=\"" + num(g.cell) +
             "\" height=\"" + num(g.cell) + "\" fill=\"" + (w == 0.0 ? "#eeeeee" : weight_color(w)) +
             "\" data-l=\"" + std::to_string(l) + "\" data-h=\"" + std::to_string(h) +
             "\" data-q=\"" + std::to_string(i) + "\" data-k=\"" + std::to_string(j) +
             "\" data-w=\"" + fixed(w) + "\">";
      if (options.cell_titles)
        svg += "<title>layer " + std::to_string(l) + " head " + std::to_string(h) + ": '" +
               escape_xml(sample.tokens[i]) + "' (query " + std::to_string(i) + ") reads '" +
               escape_xml(sample.tokens[j]) + "' (key " + std::to_string(j) + "): " + fixed(w) +
               "</title>";
      svg += "</rect>\n";
    }
  if (sample.roles.sep) {
    // Dashed lines before SEP's row and column: the prompt above and left of them.
    const double at = static_cast<double>(*sample.roles.sep) * g.cell;
    svg += "<path d=\"M" + num(mx) + " " + num(my + at) + "h" + num(g.map) + "M" + num(mx + at) + " " +
           num(my) + "v" + num(g.map) + "\" stroke=\"#e6550d\" stroke-width=\"1\" "
           "stroke-dasharray=\"3 2\" fill=\"none\"/>\n";
  }
  svg += "<rect x=\"" + num(mx) + "\" y=\"" + num(my) + "\" width=\"" + num(g.map) + "\" height=\"" +
         num(g.map) + "\" fill=\"none\" stroke=\"#888\" stroke-width=\"0.5\"/>\n</g>\n";
}

void add_scale(const Layout& g, std::string& svg) {
  const double x = g.scale_x + 20, y = g.top + 40, h = 200;
  svg += "<defs><linearGradient id=\"qkv-scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (int s = 0; s <= 4; ++s)
    svg += "<stop offset=\"" + fixed(s / 4.0) + "\" stop-color=\"" + weight_color(s / 4.0) + "\"/>";
  svg += "</linearGradient></defs>\n";
  svg += "<text x=\"" + num(x - 10) + "\" y=\"" + num(y - 22) + "\" class=\"head\">attention</text>\n";
  svg += "<text x=\"" + num(x - 10) + "\" y=\"" + num(y - 8) + "\" class=\"what\">weight</text>\n";
  svg += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"16\" height=\"" + num(h) +
         "\" fill=\"url(#qkv-scale)\" stroke=\"#888\" stroke-width=\"0.5\"/>\n";
  for (int s = 0; s <= 4; ++s) {
    const double ty = y + h - h * s / 4.0;
    svg += "<line x1=\"" + num(x + 16) + "\" y1=\"" + num(ty) + "\" x2=\"" + num(x + 20) + "\" y2=\"" +
           num(ty) + "\" stroke=\"#444\"/><text x=\"" + num(x + 23) + "\" y=\"" + num(ty + 4) +
           "\" class=\"tok\">" + fixed(s / 4.0) + "</text>\n";
  }
  svg += "<rect x=\"" + num(x) + "\" y=\"" + num(y + h + 14) +
         "\" width=\"16\" height=\"12\" fill=\"#eeeeee\" stroke=\"#888\" stroke-width=\"0.5\"/>"
         "<text x=\"" + num(x + 23) + "\" y=\"" + num(y + h + 24) + "\" class=\"tok\">masked</text>\n";
  svg += "<path d=\"M" + num(x) + " " + num(y + h + 40) + "h16\" stroke=\"#e6550d\" "
         "stroke-dasharray=\"3 2\"/><text x=\"" + num(x + 23) + "\" y=\"" + num(y + h + 44) +
         "\" class=\"tok\">SEP</text>\n";
}

}  // namespace

std::string weight_color(double weight) {
  // White to dark blue (ColorBrewer's Blues ends), linear in each channel.
  const double w = std::clamp(weight, 0.0, 1.0);
  const int from[3] = {0xf7, 0xfb, 0xff}, to[3] = {0x08, 0x30, 0x6b};
  char text[8];
  int rgb[3];
  for (int c = 0; c < 3; ++c) rgb[c] = static_cast<int>(std::lround(from[c] + (to[c] - from[c]) * w));
  std::snprintf(text, sizeof text, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  return text;
}

std::string escape_xml(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string heads_svg(const AttentionSample& sample, const std::string& caption,
                      const SvgOptions& options) {
  Layout g = layout_for(sample);
  std::string input;
  for (const std::string& t : sample.tokens) input += (input.empty() ? "" : " ") + t;
  const double title_chars = static_cast<double>(std::max(input.size() + 28, caption.size()));
  g.width = std::max(g.width, 40 + 8.0 * title_chars);
  std::string svg;
  if (options.standalone) svg += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"qkv-heads\" width=\"" + num(g.width) +
         "\" height=\"" + num(g.height) + "\" viewBox=\"0 0 " + num(g.width) + " " + num(g.height) +
         "\" font-family=\"DejaVu Sans, sans-serif\">\n";
  svg += "<style>.tok{font:11px 'DejaVu Sans Mono',monospace;fill:#333}"
         ".head{font:bold 13px 'DejaVu Sans',sans-serif;fill:#111}"
         ".what{font:12px 'DejaVu Sans',sans-serif;fill:#555}</style>\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"20\" y=\"24\" class=\"head\">Attention of each head on: " + escape_xml(input) +
         "</text>\n";
  svg += "<text x=\"20\" y=\"42\" class=\"what\">" + escape_xml(caption) + "</text>\n";
  svg += "<text x=\"20\" y=\"60\" class=\"what\">row: the position reading (query) · "
         "column: the position read (key) · darker = more · each row sums to 1</text>\n";
  for (std::size_t l = 0; l < sample.maps.size(); ++l)
    for (std::size_t h = 0; h < sample.maps[l].size(); ++h) add_panel(sample, l, h, g, options, svg);
  add_scale(g, svg);
  svg += "</svg>\n";
  return svg;
}

}  // namespace qkv::inspect
