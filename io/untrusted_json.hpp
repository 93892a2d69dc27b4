// Internal to io/: JSON and text that come from a file someone else wrote.
//
// A checkpoint's header and its metadata values are parsed here, never with a plain
// json::parse: nesting is limited (nlohmann's parser is iterative, but copying, dumping
// and comparing a value recurse, so a 100k-deep value overflows the stack later), and a
// key given twice is refused (json::parse keeps the last one silently, so two readers of
// one file could see different tensors). Text from such a file reaches error messages
// only through printable(), which cuts it short and escapes control bytes (a name
// holding "\x1b[2J" must not clear the user's terminal).
//
//   json header = parse_untrusted_json(text, 16, "safetensors file 'a.safetensors': header");
//   fail("tensor '" + printable(name) + "' must be an object, found " + describe(entry));
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace qkv::io::detail {

// Parses `text` as one JSON value. Throws std::runtime_error starting with `context`:
// "<context> is not valid JSON: ...", "<context> has containers nested 17 deep (the
// limit is 16)", "<context> has the key 'k' twice (inside 'parent')". A top-level object
// or array is one level deep; a scalar is zero.
nlohmann::json parse_untrusted_json(const std::string& text, std::size_t max_depth,
                                    const std::string& context);

// `text` for an error message: at most `max_bytes` of it (cut at a UTF-8 character
// boundary, then "... (N bytes)"), control bytes and DEL as \xNN.
std::string printable(const std::string& text, std::size_t max_bytes = 100);

// A JSON value for an error message: "an object" or "an array" for containers (never a
// dump: that recurses), the JSON text of a scalar through printable().
std::string describe(const nlohmann::json& value);

}  // namespace qkv::io::detail
