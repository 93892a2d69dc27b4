// report.html: an Inspection as one self-contained page that opens offline (no CDN, no
// network, no external file): the weight tables, the head-to-head similarities as shaded
// tables, each input's layers × heads maps (inline SVG, svg.hpp), the pattern scores and
// the head importance. A little vanilla JavaScript shows, under the pointer, a cell's
// weight and its two tokens, and switches between inputs. The page marks itself ready in
// <body data-qkv-ready="1"> once its script has run, and a script error is written into
// the page (#qkv-errors), so a headless browser's DOM dump shows both; opened as
// report.html#qkv-selftest it hovers the first map cell once, so the dump shows the
// tooltip too.
//
//   std::string page = inspect_html(inspection);          // report.html
//   std::string part = inspect_section_html(inspection);  // inside another page (run report)
//   std::string page = html_page("title", part);          // any body, with style and script
#pragma once

#include <string>

#include "inspect/inspection.hpp"

namespace qkv::inspect {

// The inspect section: <section id="inspect">…</section>.
std::string inspect_section_html(const Inspection& inspection);

// A whole page around `body`: the style sheet, the tooltip and the hover script.
std::string html_page(const std::string& title, const std::string& body);

std::string inspect_html(const Inspection& inspection);

}  // namespace qkv::inspect
