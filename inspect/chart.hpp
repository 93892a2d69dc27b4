// Line charts as SVG, for the run report's curves (loss, accuracy, learning rate, gradient
// norm against step): axes with round-number ticks (powers of ten on a log axis), a legend,
// and optional dots with a <title> tooltip (the evaluation points).
//
//   Series loss{"train loss", "#1f77b4", steps, losses};
//   ChartOptions o;
//   o.title = "loss"; o.x_label = "step"; o.log_y = true;
//   std::string svg = line_chart_svg({loss}, o);
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace qkv::inspect {

struct Series {
  std::string name;
  std::string color;  // any SVG colour
  std::vector<double> x, y;
  bool dots = false;  // a dot with a tooltip at each point
};

struct ChartOptions {
  std::string title, x_label, y_label;
  bool log_y = false;             // positive values only; others are left out
  std::optional<double> x_min;          // the x axis reaches down to it (0 for steps)
  std::optional<double> y_min, y_max;  // fixed range (e.g. 0..1 for accuracy)
  double width = 560, height = 300;
  std::string id;  // the <svg>'s id attribute, if any
};

// Series with no (finite) points are listed in the legend as "(no data)".
std::string line_chart_svg(const std::vector<Series>& series, const ChartOptions& options);

}  // namespace qkv::inspect
