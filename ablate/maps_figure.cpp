// Two models' heads_svg side by side in one SVG (see maps_figure.hpp).
#include "ablate/maps_figure.hpp"

#include <algorithm>
#include <stdexcept>

#include <fmt/format.h>

#include "inspect/attention_maps.hpp"
#include "inspect/load_model.hpp"
#include "inspect/svg.hpp"

namespace qkv::ablate {

namespace {

struct Size {
  double width = 0, height = 0;
};

// The width and height attributes of an <svg> element's opening tag (heads_svg writes
// both, in pixels).
Size svg_size(const std::string& svg) {
  const std::string tag = svg.substr(0, svg.find('>'));
  const auto attribute = [&](const char* name) {
    const std::string key = std::string(" ") + name + "=\"";
    const std::size_t at = tag.find(key);
    if (at == std::string::npos)
      throw std::logic_error(std::string("maps_figure: heads_svg wrote no ") + name);
    return std::stod(tag.substr(at + key.size()));
  };
  return {attribute("width"), attribute("height")};
}

std::string side_svg(const inspect::LoadedModel& model, const std::vector<tasks::Token>& input,
                     const std::string& caption) {
  const std::vector<inspect::AttentionSample> samples =
      inspect::collect_attention(*model.model, *model.task, {input});
  inspect::SvgOptions options;
  options.standalone = false;
  return inspect::heads_svg(samples.front(), caption, options);
}

}  // namespace

std::string maps_figure(const FigureSide& left, const FigureSide& right) {
  const inspect::LoadedModel a = inspect::load_model(left.checkpoint);
  const inspect::LoadedModel b = inspect::load_model(right.checkpoint);
  if (a.vocabulary != b.vocabulary)
    throw std::runtime_error("maps_figure: '" + left.checkpoint + "' and '" + right.checkpoint +
                             "' have different vocabularies: they read different inputs");
  const tasks::Example example = a.task->eval_examples(1, a.config.seed).front();
  const std::vector<tasks::Token> input = inspect::model_input(*a.task, example);
  const std::string first = side_svg(a, input, left.caption);
  const std::string second = side_svg(b, input, right.caption);
  const Size s1 = svg_size(first), s2 = svg_size(second);
  const double width = s1.width + s2.width, height = std::max(s1.height, s2.height);
  return fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:.1f}\" height=\"{1:.1f}\" "
      "viewBox=\"0 0 {0:.1f} {1:.1f}\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<g>\n{2}</g>\n<g transform=\"translate({3:.1f},0)\">\n{4}</g>\n</svg>\n",
      width, height, first, s1.width, second);
}

}  // namespace qkv::ablate
