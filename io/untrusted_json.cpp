// Depth-limited, duplicate-refusing JSON parsing and short, printable quotes (see
// untrusted_json.hpp).
#include "io/untrusted_json.hpp"

#include <cstdio>
#include <functional>
#include <set>
#include <stdexcept>
#include <vector>

namespace qkv::io::detail {

namespace {

using json = nlohmann::json;
using Event = json::parse_event_t;

// nlohmann's messages quote the last token read, which can be a whole long string.
constexpr std::size_t kParserMessageBytes = 300;

// The parser's callback: sees every container open and close and every key, so it can
// stop a deep value before it is built and remember the keys of each open object.
class Guard {
 public:
  Guard(std::size_t max_depth, const std::string& context)
      : max_depth_(max_depth), context_(context) {}

  bool operator()(int /*depth*/, Event event, const json& parsed) {
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        open(event == Event::object_start);
        break;
      case Event::object_end:
      case Event::array_end:
        levels_.pop_back();
        break;
      case Event::key:
        add_key(parsed.get_ref<const std::string&>());
        break;
      case Event::value:
        break;
    }
    return true;  // keep every value: the guard only refuses, it never filters
  }

 private:
  struct Level {
    bool is_object;
    std::string name;  // the key this container is the value of ("" at the top, in arrays)
    std::set<std::string> keys;
  };

  void open(bool is_object) {
    if (levels_.size() == max_depth_)
      throw std::runtime_error(context_ + " has containers nested " +
                               std::to_string(max_depth_ + 1) + " deep (the limit is " +
                               std::to_string(max_depth_) + ")");
    std::string name;
    if (!levels_.empty() && levels_.back().is_object) name = last_key_;
    levels_.push_back(Level{is_object, name, {}});
  }

  void add_key(const std::string& key) {
    Level& level = levels_.back();
    if (!level.keys.insert(key).second) {
      std::string where = level.name.empty() ? "" : " (inside '" + printable(level.name) + "')";
      throw std::runtime_error(context_ + " has the key '" + printable(key) + "' twice" + where);
    }
    last_key_ = key;
  }

  std::size_t max_depth_;
  const std::string& context_;
  std::vector<Level> levels_;
  std::string last_key_;
};

// Where a cut at `size` bytes must move back to so as not to split a UTF-8 character.
std::size_t character_boundary(const std::string& text, std::size_t size) {
  while (size > 0 && (static_cast<unsigned char>(text[size]) & 0xC0) == 0x80) --size;
  return size;
}

// nlohmann's message without its "[json.exception.parse_error.101] " tag, which tells a
// user nothing.
std::string without_exception_tag(const std::string& message) {
  const std::size_t end = message.find("] ");
  if (message.rfind("[json.exception.", 0) != 0 || end == std::string::npos) return message;
  return message.substr(end + 2);
}

}  // namespace

json parse_untrusted_json(const std::string& text, std::size_t max_depth,
                          const std::string& context) {
  Guard guard(max_depth, context);
  try {
    return json::parse(text, std::ref(guard));
  } catch (const json::exception& error) {
    // parse_error and out_of_range (a number too large for a double, "1e999") alike.
    throw std::runtime_error(context + " is not valid JSON: " +
                             printable(without_exception_tag(error.what()), kParserMessageBytes));
  }
}

std::string printable(const std::string& text, std::size_t max_bytes) {
  const bool cut = text.size() > max_bytes;
  const std::size_t keep = cut ? character_boundary(text, max_bytes) : text.size();
  std::string quoted;
  quoted.reserve(keep + 16);
  for (std::size_t i = 0; i < keep; ++i) {
    const unsigned char byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x20 || byte == 0x7F) {
      char escaped[5];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
      quoted += escaped;
    } else {
      quoted += text[i];
    }
  }
  if (cut) quoted += "... (" + std::to_string(text.size()) + " bytes)";
  return quoted;
}

std::string describe(const json& value) {
  if (value.is_object()) return "an object";
  if (value.is_array()) return "an array";
  return printable(value.dump());
}

}  // namespace qkv::io::detail
