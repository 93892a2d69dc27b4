// The terminal report of an Inspection (see text_report.hpp).
#include "inspect/text_report.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <string>

#include "inspect/format.hpp"

namespace qkv::inspect {

namespace {

constexpr std::size_t kMaxLabel = 6;  // longer token names are cut in the grid's labels

std::string cell(const std::optional<double>& v, std::size_t width, const char* missing = "-") {
  const std::string text = v ? fixed(*v) : missing;
  return std::string(width > text.size() ? width - text.size() : 0, ' ') + text;
}

std::string pad_left(const std::string& text, std::size_t width) {
  return std::string(width > text.size() ? width - text.size() : 0, ' ') + text;
}

// Columns a UTF-8 string takes on a terminal (every code point one column).
std::size_t display_width(const std::string& text) {
  std::size_t n = 0;
  for (unsigned char c : text) n += (c & 0xC0) != 0x80;
  return n;
}

std::string pad_right(const std::string& text, std::size_t width) {
  const std::size_t w = display_width(text);
  return text + std::string(width > w ? width - w : 0, ' ');
}

std::string label(const std::string& token) { return token.substr(0, kMaxLabel); }

void add_weight_table(const Inspection& in, std::string& out) {
  out += "\nWeights, no input needed. Per head: Frobenius norms of its slices (id: identity,\n"
         "-: none; Wqk: the one C x C matrix of qk merged, across |Wq| and |Wk|), and its\n"
         "circuits: QK = Wq_h^T Wk_h / sqrt(Dk), the form x QK y^T that scores query x\n"
         "against key y; OV = Wo_h Wv_h, what a read position adds.\n"
         "id-cos: cosine to the identity (1 = the raw dot product, or a plain copy); sym:\n"
         "symmetry, |(W+W^T)/2| / |W|; rank: effective rank, exp(entropy of s_i / sum s);\n"
         "s1, s2: the largest singular values.\n\n";
  out += "layer head   |Wq|   |Wk|   |Wv|   |Wo| | QK id-cos   sym  rank    s1    s2 |"
         " OV id-cos   sym  rank    s1    s2\n";
  const auto norm = [](const std::optional<double>& v, bool identity) {
    return cell(v, 7, identity ? "id" : "-");
  };
  const auto circuit = [](const CircuitStats& s) {
    const auto sv = [&](std::size_t i) {
      return cell(i < s.top_singular_values.size() ? std::optional<double>(s.top_singular_values[i])
                                                   : std::nullopt, 6);
    };
    return cell(s.identity_cosine, 10) + cell(s.symmetry, 6) + cell(s.effective_rank, 6) + sv(0) +
           sv(1);
  };
  for (std::size_t l = 0; l < in.weights.layers.size(); ++l) {
    const LayerWeightStats& layer = in.weights.layers[l];
    if (!layer.analyzed) {
      out += pad_left(std::to_string(l), 5) + "    " + layer.note + "\n";
      continue;
    }
    for (std::size_t h = 0; h < layer.heads.size(); ++h) {
      const HeadWeightStats& s = layer.heads[h];
      // An identity side has no slice; a missing wo is "-" (none), not identity.
      const std::string qk_norms = s.wqk_norm ? pad_left("Wqk " + fixed(*s.wqk_norm), 14)
                                              : norm(s.wq_norm, true) + norm(s.wk_norm, true);
      out += pad_left(std::to_string(l), 5) + pad_left(std::to_string(h), 5) + qk_norms +
             norm(s.wv_norm, true) +
             norm(s.wo_norm, false) + " |" + circuit(s.qk) + " |" + circuit(s.ov) + "\n";
    }
  }
}

// One H × H table per line block, several tables side by side.
void add_similarity(const Inspection& in, std::string& out) {
  out += "\nHead-to-head similarity (cosine; 1 = the two heads are the same), per layer:\n";
  for (std::size_t l = 0; l < in.layers; ++l) {
    std::vector<std::pair<std::string, const Matrix*>> tables;
    const LayerWeightStats& weights = in.weights.layers[l];
    if (weights.analyzed) {
      tables.push_back({"QK circuits", &weights.qk_similarity});
      tables.push_back({"OV circuits", &weights.ov_similarity});
    }
    if (l < in.pattern_similarity.size()) tables.push_back({"attention maps", &in.pattern_similarity[l]});
    if (tables.empty()) continue;
    const std::size_t H = tables.front().second->rows;
    const std::size_t table_width = 4 + 6 * H + 3;
    std::string titles = "layer " + std::to_string(l) + "\n";
    for (const auto& [title, table] : tables) titles += pad_right("  " + title, table_width);
    out += titles + "\n";
    std::string header;
    for (std::size_t t = 0; t < tables.size(); ++t) {
      std::string part = "    ";
      for (std::size_t b = 0; b < H; ++b) part += pad_left("h" + std::to_string(b), 6);
      header += pad_right(part, table_width);
    }
    out += header + "\n";
    for (std::size_t a = 0; a < H; ++a) {
      std::string line;
      for (const auto& [title, table] : tables) {
        std::string part = pad_left("h" + std::to_string(a), 4);
        for (std::size_t b = 0; b < H; ++b) part += cell((*table)(a, b), 6);
        line += pad_right(part, table_width);
      }
      out += line + "\n";
    }
  }
  if (in.mean_qk_similarity)
    out += "mean head-to-head QK similarity: " + fixed(*in.mean_qk_similarity) + "\n";
  if (in.mean_pattern_similarity)
    out += "mean head-to-head attention-map similarity: " + fixed(*in.mean_pattern_similarity) + "\n";
}

void add_maps(const Inspection& in, std::size_t maps_of, std::size_t width, std::string& out) {
  out += "\nAttention maps: row = query (the position reading), column = key (the position\n"
         "read). Shade: '··' < 0.1, ░ 0.1-0.3, ▒ 0.3-0.55, ▓ 0.55-0.8, █ >= 0.8; blank: masked.\n";
  for (std::size_t n = 0; n < std::min(maps_of, in.samples.size()); ++n) {
    const AttentionSample& sample = in.samples[n];
    std::string text;
    for (const std::string& t : sample.tokens) text += (text.empty() ? "" : " ") + t;
    out += "\ninput " + std::to_string(n + 1) + " of " + std::to_string(in.samples.size()) + ": " +
           text + "\n";
    if (!sample.roles.sep)
      out += "(no SEP: no row reads an answer, so there is no SEP or source score; give\n"
             "\"prompt SEP answer\" to see the answer being read)\n";
    for (std::size_t l = 0; l < sample.maps.size(); ++l) {
      // Each head's block: a title, then its grid; blocks side by side while they fit.
      std::vector<std::vector<std::string>> blocks;
      for (std::size_t h = 0; h < sample.maps[l].size(); ++h) {
        std::vector<std::string> block = {"layer " + std::to_string(l) + " head " + std::to_string(h)};
        for (std::string& line : shade_grid(sample.maps[l][h], sample.tokens)) block.push_back(line);
        blocks.push_back(std::move(block));
      }
      std::size_t block_width = 0;
      for (const auto& block : blocks)
        for (const std::string& line : block) block_width = std::max(block_width, display_width(line));
      block_width += 4;
      const std::size_t per_row = std::max<std::size_t>(1, width / block_width);
      for (std::size_t first = 0; first < blocks.size(); first += per_row) {
        const std::size_t last = std::min(blocks.size(), first + per_row);
        std::size_t lines = 0;
        for (std::size_t b = first; b < last; ++b) lines = std::max(lines, blocks[b].size());
        for (std::size_t i = 0; i < lines; ++i) {
          std::string line;
          for (std::size_t b = first; b < last; ++b)
            line += pad_right(i < blocks[b].size() ? blocks[b][i] : "", block_width);
          while (!line.empty() && line.back() == ' ') line.pop_back();
          out += line + "\n";
        }
        out += "\n";
      }
    }
  }
}

void add_scores(const Inspection& in, std::string& out) {
  const std::size_t n = in.samples.size();
  out += "Pattern scores: mean attention over " + std::to_string(n) + (n == 1 ? " input" : " inputs") +
         " to the position itself, the previous one,\nthe first, SEP (rows from SEP on), and "
         "the prompt position that the predicted answer\ntoken is read from (source).\n\n";
  out += "layer head  self  prev first   SEP source\n";
  for (std::size_t l = 0; l < in.scores.size(); ++l)
    for (std::size_t h = 0; h < in.scores[l].size(); ++h) {
      const PatternScores& s = in.scores[l][h];
      out += pad_left(std::to_string(l), 5) + pad_left(std::to_string(h), 5) + cell(s.self, 6) +
             cell(s.previous, 6) + cell(s.first, 6) + cell(s.sep, 6) + cell(s.source, 7) + "\n";
    }
}

void add_importance(const Inspection& in, std::string& out) {
  const ImportanceReport& r = *in.importance;
  out += "\nHead importance: what switching one head off costs on " +
         std::to_string(r.intact.samples) + " held-out examples\n(intact: seq_acc " +
         fixed(r.intact.seq_acc, 3) + ", loss " + fixed(r.intact.loss, 3) +
         "). zero: its output set to 0; mean: set to its mean\noutput (Michel et al. 2019).\n";
  if (r.heads_are_one) out += "The heads are one head (projections none): each row switches all off.\n";
  if (!r.note.empty()) out += r.note + "\n";
  out += "\nlayer head | zero: seq_acc drop  loss rise | mean: seq_acc drop  loss rise\n";
  for (std::size_t l = 0; l < r.layers.size(); ++l)
    for (std::size_t h = 0; h < r.layers[l].size(); ++h) {
      const HeadImportance& i = r.layers[l][h];
      out += pad_left(std::to_string(l), 5) + pad_left(std::to_string(h), 5) + " |" +
             cell(i.zero.seq_acc_drop, 20) + cell(i.zero.loss_rise, 11) + " |" +
             cell(i.mean.seq_acc_drop, 20) + cell(i.mean.loss_rise, 11) + "\n";
    }
}

}  // namespace

const char* shade(double weight) {
  if (weight == 0.0) return "  ";
  if (weight < 0.1) return "··";
  if (weight < 0.3) return "░░";
  if (weight < 0.55) return "▒▒";
  if (weight < 0.8) return "▓▓";
  return "██";
}

std::vector<std::string> shade_grid(const Matrix& map, const std::vector<std::string>& tokens) {
  std::size_t row_label = 0, column_label = 0;
  for (const std::string& t : tokens) {
    row_label = std::max(row_label, label(t).size());
    column_label = std::max(column_label, label(t).size());
  }
  std::vector<std::string> lines;
  // Column labels read downwards, aligned at the bottom, one character per column.
  for (std::size_t k = 0; k < column_label; ++k) {
    std::string line(row_label + 1, ' ');
    for (std::size_t j = 0; j < map.cols; ++j) {
      const std::string name = label(j < tokens.size() ? tokens[j] : "?");
      const std::size_t start = column_label - name.size();
      line += k >= start ? name[k - start] : ' ';
      line += ' ';
    }
    lines.push_back(line);
  }
  for (std::size_t i = 0; i < map.rows; ++i) {
    std::string line = pad_left(label(i < tokens.size() ? tokens[i] : "?"), row_label) + " ";
    for (std::size_t j = 0; j < map.cols; ++j) line += shade(map(i, j));
    lines.push_back(line);
  }
  return lines;
}

std::string text_report(const Inspection& in, std::size_t maps_of, std::size_t width) {
  std::string out = "qkv inspect " + in.source + "\ntask " + in.task + "; model " + in.model + "\n";
  add_weight_table(in, out);
  add_similarity(in, out);
  if (!in.samples.empty()) {
    add_maps(in, maps_of, width, out);
    add_scores(in, out);
  }
  if (in.importance) add_importance(in, out);
  return out;
}

}  // namespace qkv::inspect
