// The inspect report as self-contained HTML (see html_report.hpp).
#include "inspect/html_report.hpp"

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "inspect/format.hpp"
#include "inspect/svg.hpp"

namespace qkv::inspect {

namespace {

constexpr std::size_t kMaxInputsShown = 8;

std::string value(const std::optional<double>& v, const char* missing = "–") {
  return v ? fixed(*v) : missing;
}

std::string td(const std::string& text, const std::string& cls = "") {
  return "<td" + (cls.empty() ? "" : " class=\"" + cls + "\"") + ">" + text + "</td>";
}

// A cell shaded by its value in [0, 1] (the maps' colours), for similarity tables.
std::string shaded_td(const std::optional<double>& v) {
  if (!v) return td("–");
  const double w = std::clamp(*v, 0.0, 1.0);
  return "<td class=\"num\" style=\"background:" + weight_color(w) + (w > 0.4 ? ";color:#fff" : "") +
         "\">" + fixed(*v) + "</td>";
}

std::string section_weights(const Inspection& in) {
  std::string h =
      "<h2>Weights (no input needed)</h2><p>Per head: the Frobenius norms of its slices of Wq, "
      "Wk, Wv, Wo (<i>id</i>: an identity side, <i>–</i>: none), and its two circuits. "
      "<b>QK</b> = Wq<sub>h</sub><sup>T</sup>Wk<sub>h</sub>/&radic;D<sub>k</sub> is the form "
      "x&middot;QK&middot;y<sup>T</sup> that scores a query x against a key y; <b>OV</b> = "
      "Wo<sub>h</sub>Wv<sub>h</sub> is what a read position adds to the output. <i>id-cos</i>: "
      "cosine similarity to the identity (1 = the raw dot product, or a plain copy); <i>sym</i>: "
      "symmetry &#8214;(W+W<sup>T</sup>)/2&#8214;/&#8214;W&#8214;; <i>rank</i>: effective rank, "
      "exp of the entropy of &sigma;<sub>i</sub>/&Sigma;&sigma;; &sigma;<sub>1</sub>: the largest "
      "singular value.</p>\n<table class=\"grid\" id=\"weights\"><tr><th>layer</th><th>head</th>"
      "<th>&#8214;Wq&#8214;</th><th>&#8214;Wk&#8214;</th><th>&#8214;Wv&#8214;</th><th>&#8214;Wo&#8214;</th>"
      "<th>QK id-cos</th><th>sym</th><th>rank</th><th>&sigma;<sub>1</sub></th>"
      "<th>OV id-cos</th><th>sym</th><th>rank</th><th>&sigma;<sub>1</sub></th></tr>\n";
  const auto circuit = [](const CircuitStats& s) {
    return td(fixed(s.identity_cosine), "num") + td(fixed(s.symmetry), "num") +
           td(fixed(s.effective_rank), "num") +
           td(s.top_singular_values.empty() ? "–" : fixed(s.top_singular_values[0]), "num");
  };
  for (std::size_t l = 0; l < in.weights.layers.size(); ++l) {
    const LayerWeightStats& layer = in.weights.layers[l];
    if (!layer.analyzed) {
      h += "<tr>" + td(std::to_string(l)) + "<td colspan=\"13\">" + escape_xml(layer.note) + "</td></tr>\n";
      continue;
    }
    for (std::size_t hd = 0; hd < layer.heads.size(); ++hd) {
      const HeadWeightStats& s = layer.heads[hd];
      // qk merged has one matrix where Wq and Wk would be: its norm spans both columns.
      const std::string qk_norms =
          s.wqk_norm ? "<td colspan=\"2\" class=\"num\">W<sub>qk</sub> " + fixed(*s.wqk_norm) + "</td>"
                     : td(value(s.wq_norm, "id"), "num") + td(value(s.wk_norm, "id"), "num");
      h += "<tr>" + td(std::to_string(l)) + td(std::to_string(hd)) + qk_norms + td(value(s.wv_norm, "id"), "num") +
           td(value(s.wo_norm), "num") + circuit(s.qk) + circuit(s.ov) + "</tr>\n";
    }
  }
  return h + "</table>\n";
}

std::string similarity_table(const std::string& title, const Matrix& m) {
  std::string h = "<table class=\"grid sim\"><caption>" + title + "</caption><tr><th></th>";
  for (std::size_t b = 0; b < m.cols; ++b) h += "<th>h" + std::to_string(b) + "</th>";
  h += "</tr>";
  for (std::size_t a = 0; a < m.rows; ++a) {
    h += "<tr><th>h" + std::to_string(a) + "</th>";
    for (std::size_t b = 0; b < m.cols; ++b) h += shaded_td(m(a, b));
    h += "</tr>";
  }
  return h + "</table>";
}

std::string section_similarity(const Inspection& in) {
  std::string h = "<h2>Head-to-head similarity</h2><p>Cosine similarity of two heads' circuits "
                  "(flattened) and of their attention maps on the inputs: 1 = the two heads are "
                  "the same head. With raw dot products (<code>projections: none</code>) every "
                  "entry is 1.</p>\n";
  for (std::size_t l = 0; l < in.layers; ++l) {
    h += "<div class=\"row\"><h3>layer " + std::to_string(l) + "</h3>";
    const LayerWeightStats& weights = in.weights.layers[l];
    if (weights.analyzed) {
      h += similarity_table("QK circuits", weights.qk_similarity);
      h += similarity_table("OV circuits", weights.ov_similarity);
    }
    if (l < in.pattern_similarity.size())
      h += similarity_table("attention maps", in.pattern_similarity[l]);
    h += "</div>\n";
  }
  h += "<p>Mean over pairs of heads: QK circuits <b>" + value(in.mean_qk_similarity) +
       "</b>, attention maps <b>" + value(in.mean_pattern_similarity) + "</b>.</p>\n";
  return h;
}

std::string section_maps(const Inspection& in) {
  if (in.samples.empty())
    return "<h2>Attention maps</h2><p>No input was given (<code>--input</code> or "
           "<code>--sample N</code>).</p>\n";
  const std::size_t shown = std::min(in.samples.size(), kMaxInputsShown);
  std::string h = "<h2>Attention maps</h2><p>Row: the position reading (query); column: the "
                  "position read (key); darker = more attention; each row sums to 1. Point at "
                  "a cell to read its weight and its two tokens.</p>\n";
  if (shown > 1) {
    h += "<p><label>input <select id=\"qkv-input\">";
    for (std::size_t n = 0; n < shown; ++n)
      h += "<option value=\"" + std::to_string(n) + "\">" + std::to_string(n + 1) + "</option>";
    h += "</select></label> of " + std::to_string(in.samples.size()) + "</p>\n";
  }
  for (std::size_t n = 0; n < shown; ++n) {
    const AttentionSample& sample = in.samples[n];
    h += "<div class=\"sample\" data-n=\"" + std::to_string(n) + "\" data-tokens=\"" +
         escape_xml(nlohmann::json(sample.tokens).dump()) + "\"" + (n > 0 ? " hidden" : "") + ">";
    SvgOptions options;
    options.standalone = false;
    options.cell_titles = false;
    h += heads_svg(sample, in.source, options) + "</div>\n";
  }
  return h;
}

std::string section_scores(const Inspection& in) {
  if (in.scores.empty()) return "";
  const std::size_t n = in.samples.size();
  std::string h = "<h2>Pattern scores</h2><p>Mean attention, over " + std::to_string(n) +
                  (n == 1 ? " input" : " inputs") + ", to the position itself, the previous one, the first, SEP (rows "
                  "from SEP on) and the answer's <i>source</i>: the prompt position the token "
                  "being predicted is read from (copy: the same position; reverse: the mirrored "
                  "one; sort: every copy of the token; agreement: the subject; recall: the "
                  "queried key's value). A shaded cell is a strong pattern.</p>\n"
                  "<table class=\"grid\" id=\"scores\"><tr><th>layer</th><th>head</th><th>self</th>"
                  "<th>previous</th><th>first</th><th>SEP</th><th>source</th></tr>\n";
  for (std::size_t l = 0; l < in.scores.size(); ++l)
    for (std::size_t hd = 0; hd < in.scores[l].size(); ++hd) {
      const PatternScores& s = in.scores[l][hd];
      h += "<tr>" + td(std::to_string(l)) + td(std::to_string(hd)) + shaded_td(s.self) +
           shaded_td(s.previous) + shaded_td(s.first) + shaded_td(s.sep) + shaded_td(s.source) +
           "</tr>\n";
    }
  return h + "</table>\n";
}

std::string section_importance(const Inspection& in) {
  if (!in.importance) return "";
  const ImportanceReport& r = *in.importance;
  std::string h = "<h2>Head importance</h2><p>What switching one head off costs on " +
                  std::to_string(r.intact.samples) + " held-out examples (intact: seq_acc " +
                  fixed(r.intact.seq_acc, 3) + ", loss " + fixed(r.intact.loss, 3) +
                  "). <i>zero</i>: its output set to 0; <i>mean</i>: set to its mean output "
                  "(Michel et al. 2019).";
  if (r.heads_are_one) h += " The heads are one head (projections none): each row switches all off.";
  if (!r.note.empty()) h += " " + escape_xml(r.note);
  h += "</p>\n<table class=\"grid\" id=\"importance\"><tr><th>layer</th><th>head</th>"
       "<th>zero: seq_acc drop</th><th>loss rise</th><th>mean: seq_acc drop</th><th>loss rise</th></tr>\n";
  for (std::size_t l = 0; l < r.layers.size(); ++l)
    for (std::size_t hd = 0; hd < r.layers[l].size(); ++hd) {
      const HeadImportance& i = r.layers[l][hd];
      h += "<tr>" + td(std::to_string(l)) + td(std::to_string(hd)) + shaded_td(i.zero.seq_acc_drop) +
           td(fixed(i.zero.loss_rise, 3), "num") + shaded_td(i.mean.seq_acc_drop) +
           td(fixed(i.mean.loss_rise, 3), "num") + "</tr>\n";
    }
  return h + "</table>\n";
}

const char* kStyle = R"(
body{font:15px/1.45 'DejaVu Sans',sans-serif;color:#222;margin:24px auto;max-width:1200px;padding:0 16px}
h1{font-size:22px;margin-bottom:4px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:8px 0}p{max-width:900px}code{background:#f3f3f3;padding:0 3px}
table.grid{border-collapse:collapse;margin:6px 18px 10px 0}
table.grid td,table.grid th{border:1px solid #ccc;padding:2px 7px;text-align:right}
table.grid th{background:#f5f5f5}td.num{font-family:'DejaVu Sans Mono',monospace}
table.sim{display:inline-table;vertical-align:top}caption{font-weight:bold;text-align:left}
.row{margin-bottom:8px}.meta{color:#555}pre.config{background:#f7f7f7;padding:8px;overflow:auto;font-size:13px}
#qkv-tip{position:fixed;pointer-events:none;background:#222;color:#fff;padding:4px 8px;
border-radius:4px;font:13px 'DejaVu Sans Mono',monospace;display:none;z-index:10}
#qkv-errors{color:#b00}svg rect.hover{stroke:#e6550d;stroke-width:2}
.charts{display:flex;flex-wrap:wrap;gap:12px}.sample svg{width:100%;max-width:980px;height:auto}
)";

// Hover: weight and tokens of the cell under the pointer; the input switch. Errors of any
// script on the page are written into #qkv-errors, and the body is marked ready at the end.
const char* kScript = R"(
(function () {
  var errors = document.getElementById('qkv-errors');
  window.addEventListener('error', function (e) {
    errors.textContent += 'script error: ' + e.message + '\n';
  });
  var tip = document.getElementById('qkv-tip');
  var hovered = null;
  document.addEventListener('mousemove', function (e) {
    var cell = e.target.closest ? e.target.closest('rect[data-w]') : null;
    if (hovered && hovered !== cell) hovered.classList.remove('hover');
    hovered = cell;
    if (!cell) { tip.style.display = 'none'; return; }
    cell.classList.add('hover');
    var tokens = JSON.parse(cell.closest('.sample').getAttribute('data-tokens'));
    var q = +cell.getAttribute('data-q'), k = +cell.getAttribute('data-k');
    tip.textContent = 'layer ' + cell.getAttribute('data-l') + ' head ' + cell.getAttribute('data-h') +
      ': \u2018' + tokens[q] + '\u2019 (query ' + q + ') reads \u2018' + tokens[k] + '\u2019 (key ' + k +
      '): ' + cell.getAttribute('data-w');
    tip.style.left = (e.clientX + 14) + 'px';
    tip.style.top = (e.clientY + 14) + 'px';
    tip.style.display = 'block';
  });
  var select = document.getElementById('qkv-input');
  if (select) select.addEventListener('change', function () {
    var samples = document.querySelectorAll('.sample');
    for (var i = 0; i < samples.length; ++i) samples[i].hidden = samples[i].getAttribute('data-n') !== select.value;
  });
  if (location.hash === '#qkv-selftest') {  // a headless browser's check: hover one cell
    var first = document.querySelector('.sample:not([hidden]) rect[data-w]');
    if (first) {
      var box = first.getBoundingClientRect();
      first.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: box.left + 1, clientY: box.top + 1}));
    }
  }
  document.body.setAttribute('data-qkv-ready', '1');
})();
)";

}  // namespace

std::string inspect_section_html(const Inspection& in) {
  return "<section id=\"inspect\"><p class=\"meta\">" + escape_xml(in.source) + " &middot; task " +
         escape_xml(in.task) + " &middot; " + escape_xml(in.model) + "</p>\n" + section_weights(in) +
         section_similarity(in) + section_maps(in) + section_scores(in) + section_importance(in) +
         "</section>\n";
}

std::string html_page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" +
         escape_xml(title) + "</title><style>" + kStyle + "</style></head>\n<body>\n<h1>" +
         escape_xml(title) + "</h1>\n<pre id=\"qkv-errors\"></pre>\n" + body +
         "<div id=\"qkv-tip\"></div>\n<script>" + kScript + "</script>\n</body></html>\n";
}

std::string inspect_html(const Inspection& in) {
  return html_page("qkv inspect: " + in.source, inspect_section_html(in));
}

}  // namespace qkv::inspect
