// SVG line charts (see chart.hpp).
#include "inspect/chart.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "inspect/format.hpp"
#include "inspect/svg.hpp"

namespace qkv::inspect {

namespace {

constexpr double kLeft = 64, kRight = 16, kTop = 46, kBottom = 46;  // title, legend above

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
  bool empty() const { return !(lo <= hi); }
};

bool usable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

// Round tick values covering [lo, hi]: 1, 2 or 5 times a power of ten apart.
std::vector<double> linear_ticks(double lo, double hi) {
  const double span = hi - lo;
  const double raw = span / 5;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * power) { step = m * power; break; }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::string tick_label(double v) {
  const double a = std::abs(v);
  if (a != 0 && (a < 1e-3 || a >= 1e5)) {
    char text[32];
    std::snprintf(text, sizeof text, "%.0e", v);
    return text;
  }
  std::string text = fixed(v, 4);
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text;
}

struct Axes {
  Range x, y;
  bool log_y = false;
  double w = 0, h = 0;  // the plot area
  double px(double v) const { return kLeft + (x.hi > x.lo ? (v - x.lo) / (x.hi - x.lo) : 0.5) * w; }
  double py(double v) const {
    const double t = log_y ? std::log10(v) : v;
    const double lo = log_y ? std::log10(y.lo) : y.lo, hi = log_y ? std::log10(y.hi) : y.hi;
    return kTop + h - (hi > lo ? (t - lo) / (hi - lo) : 0.5) * h;
  }
};

Axes axes_for(const std::vector<Series>& series, const ChartOptions& o) {
  Axes a;
  a.log_y = o.log_y;
  a.w = o.width - kLeft - kRight;
  a.h = o.height - kTop - kBottom;
  for (const Series& s : series)
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && usable(s.y[i], o.log_y)) a.x.add(s.x[i]), a.y.add(s.y[i]);
  if (o.x_min) a.x.lo = std::min(a.x.lo, *o.x_min);
  if (o.y_min) a.y.lo = *o.y_min;
  if (o.y_max) a.y.hi = *o.y_max;
  if (a.x.empty()) a.x = {0, 1};
  if (a.y.empty()) a.y = {o.log_y ? 0.1 : 0.0, 1};
  if (a.log_y) {  // whole decades
    a.y.lo = std::pow(10.0, std::floor(std::log10(a.y.lo)));
    a.y.hi = std::pow(10.0, std::ceil(std::log10(a.y.hi)));
    if (a.y.hi <= a.y.lo) a.y.hi = a.y.lo * 10;
  } else if (a.y.hi <= a.y.lo) {
    a.y.hi = a.y.lo + 1;
  }
  if (a.x.hi <= a.x.lo) a.x.hi = a.x.lo + 1;
  return a;
}

void add_grid(const Axes& a, const ChartOptions& o, std::string& svg) {
  std::vector<double> yticks;
  if (a.log_y) {
    for (double t = a.y.lo; t <= a.y.hi * 1.0001; t *= 10) yticks.push_back(t);
  } else {
    yticks = linear_ticks(a.y.lo, a.y.hi);
  }
  for (double t : yticks) {
    const std::string y = fixed(a.py(t), 1);
    svg += "<line x1=\"" + fixed(kLeft, 1) + "\" x2=\"" + fixed(kLeft + a.w, 1) + "\" y1=\"" + y +
           "\" y2=\"" + y + "\" stroke=\"#e5e5e5\"/><text x=\"" + fixed(kLeft - 6, 1) + "\" y=\"" +
           fixed(a.py(t) + 4, 1) + "\" text-anchor=\"end\" class=\"tick\">" + tick_label(t) + "</text>\n";
  }
  for (double t : linear_ticks(a.x.lo, a.x.hi)) {
    const std::string x = fixed(a.px(t), 1);
    svg += "<line x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + fixed(kTop, 1) + "\" y2=\"" +
           fixed(kTop + a.h, 1) + "\" stroke=\"#f0f0f0\"/><text x=\"" + x + "\" y=\"" +
           fixed(kTop + a.h + 16, 1) + "\" text-anchor=\"middle\" class=\"tick\">" + tick_label(t) +
           "</text>\n";
  }
  svg += "<rect x=\"" + fixed(kLeft, 1) + "\" y=\"" + fixed(kTop, 1) + "\" width=\"" + fixed(a.w, 1) +
         "\" height=\"" + fixed(a.h, 1) + "\" fill=\"none\" stroke=\"#999\"/>\n";
  svg += "<text x=\"" + fixed(kLeft + a.w / 2, 1) + "\" y=\"" + fixed(o.height - 8, 1) +
         "\" text-anchor=\"middle\" class=\"axis\">" + escape_xml(o.x_label) + "</text>\n";
  svg += "<text transform=\"translate(14," + fixed(kTop + a.h / 2, 1) +
         ") rotate(-90)\" text-anchor=\"middle\" class=\"axis\">" + escape_xml(o.y_label) + "</text>\n";
}

void add_series(const Series& s, const Axes& a, std::string& svg) {
  std::string points;
  std::string dots;
  for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
    if (!std::isfinite(s.x[i]) || !usable(s.y[i], a.log_y)) continue;
    const double y = std::clamp(s.y[i], a.y.lo, a.y.hi);
    const std::string px = fixed(a.px(s.x[i]), 1), py = fixed(a.py(y), 1);
    points += (points.empty() ? "" : " ") + px + "," + py;
    if (s.dots)
      dots += "<circle cx=\"" + px + "\" cy=\"" + py + "\" r=\"2.5\" fill=\"" + s.color + "\"><title>" +
              escape_xml(s.name) + " at step " + tick_label(s.x[i]) + ": " + fixed(s.y[i], 4) +
              "</title></circle>";
  }
  if (!points.empty())
    svg += "<polyline class=\"series\" data-name=\"" + escape_xml(s.name) + "\" fill=\"none\" stroke=\"" +
           s.color + "\" stroke-width=\"1.6\" points=\"" + points + "\"/>\n";
  svg += dots;
}

void add_legend(const std::vector<Series>& series, const ChartOptions& o, std::string& svg) {
  double x = kLeft;
  for (const Series& s : series) {
    bool any = false;
    for (std::size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) any = any || usable(s.y[i], o.log_y);
    const std::string name = s.name + (any ? "" : " (no data)");
    svg += "<rect x=\"" + fixed(x, 1) + "\" y=\"" + fixed(kTop - 14, 1) + "\" width=\"14\" height=\"3\" fill=\"" +
           s.color + "\"/><text x=\"" + fixed(x + 18, 1) + "\" y=\"" + fixed(kTop - 9, 1) +
           "\" class=\"legend\">" + escape_xml(name) + "</text>\n";
    x += 30 + 7.0 * static_cast<double>(name.size());
  }
}

}  // namespace

std::string line_chart_svg(const std::vector<Series>& series, const ChartOptions& o) {
  const Axes a = axes_for(series, o);
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\"" +
                    (o.id.empty() ? std::string() : " id=\"" + escape_xml(o.id) + "\"") + " width=\"" +
                    fixed(o.width, 0) + "\" height=\"" + fixed(o.height, 0) + "\" viewBox=\"0 0 " +
                    fixed(o.width, 0) + " " + fixed(o.height, 0) + "\">\n";
  svg += "<style>.tick{font:11px 'DejaVu Sans',sans-serif;fill:#555}.axis{font:12px 'DejaVu Sans',"
         "sans-serif;fill:#333}.legend{font:12px 'DejaVu Sans',sans-serif;fill:#333}.title{font:bold "
         "14px 'DejaVu Sans',sans-serif;fill:#111}</style>\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + fixed(kLeft, 1) + "\" y=\"20\" class=\"title\">" + escape_xml(o.title) + "</text>\n";
  add_grid(a, o, svg);
  for (const Series& s : series) add_series(s, a, svg);
  add_legend(series, o, svg);
  return svg + "</svg>\n";
}

}  // namespace qkv::inspect
