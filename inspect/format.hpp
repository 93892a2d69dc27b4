// Number formatting shared by inspect's renderers (internal): fixed decimals, as printf.
//
//   fixed(0.9312) == "0.93";  fixed(2.5, 1) == "2.5"
#pragma once

#include <cstdio>
#include <string>

namespace qkv::inspect {

inline std::string fixed(double v, int decimals = 2) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, v);
  return text;
}

}  // namespace qkv::inspect
