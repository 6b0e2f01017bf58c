#include "cache/cache_key.h"

#include <cmath>
#include <cstdint>
#include <iterator>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "core/sha256.h"

namespace isartor::cache {
namespace {

// Bump when the canonical form changes so old entries (e.g. in Redis) stop matching.
constexpr std::string_view kVersion = "v1";

// Top-level fields that change how the answer is delivered or billed, not what it says.
bool ignored_field(std::string_view name) {
  return name == "stream" || name == "stream_options" || name == "user" || name == "metadata" ||
         name == "store" || name == "service_tier";
}

void append_hex(std::string& out, unsigned char byte) {
  constexpr char kHex[] = "0123456789abcdef";
  out += kHex[byte >> 4];
  out += kHex[byte & 0xf];
}

// JSON string escaping with one fixed spelling per character. Bytes >= 0x80 are copied as-is, so
// "\u00e9" and a literal "é" (both UTF-8 after parsing) agree, and invalid UTF-8 cannot throw.
void append_string(std::string& out, std::string_view s) {
  out += '"';
  // Runs of bytes that need no escaping (nearly all of them) are appended in one go.
  const auto plain = [](char c) { return c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20; };
  for (std::size_t i = 0; i < s.size();) {
    std::size_t run = i;
    while (run < s.size() && plain(s[run])) ++run;
    out.append(s.substr(i, run - i));
    if (run == s.size()) break;
    i = run + 1;
    switch (const char c = s[run]) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:  // the other control characters
        out += "\\u00";
        append_hex(out, static_cast<unsigned char>(c));
    }
  }
  out += '"';
}

// A float that holds an integer value is written as that integer, so 1, 1.0, 1e0 and -0.0 all
// spell the same; everything else gets the shortest text that round-trips.
void append_float(std::string& out, double x) {
  auto sink = std::back_inserter(out);
  if (!std::isfinite(x)) {
    out += "null";  // what nlohmann's dump writes; parsed JSON never holds these
  } else if (x == std::trunc(x) && x >= -0x1p63 && x < 0x1p63) {
    fmt::format_to(sink, "{}", static_cast<std::int64_t>(x));
  } else if (x == std::trunc(x) && x >= 0 && x < 0x1p64) {
    fmt::format_to(sink, "{}", static_cast<std::uint64_t>(x));
  } else {
    fmt::format_to(sink, "{}", x);
  }
}

// Leaves are written directly; containers only get their opening bracket (the caller walks them).
void append_leaf_or_open(std::string& out, const api::Json& v) {
  using T = api::Json::value_t;
  switch (v.type()) {
    case T::null: out += "null"; break;
    case T::boolean: out += v.get_ref<const api::Json::boolean_t&>() ? "true" : "false"; break;
    case T::number_integer:
      fmt::format_to(std::back_inserter(out), "{}", v.get_ref<const api::Json::number_integer_t&>());
      break;
    case T::number_unsigned:
      fmt::format_to(std::back_inserter(out), "{}", v.get_ref<const api::Json::number_unsigned_t&>());
      break;
    case T::number_float: append_float(out, v.get_ref<const api::Json::number_float_t&>()); break;
    case T::string: append_string(out, v.get_ref<const api::Json::string_t&>()); break;
    case T::array: out += '['; break;
    case T::object: out += '{'; break;
    case T::binary:  // never produced by parsing; a non-JSON spelling so it cannot collide
      out += "b\"";
      for (auto byte : v.get_binary()) append_hex(out, byte);
      out += '"';
      break;
    case T::discarded: out += "discarded"; break;
  }
}

// Iterative rather than recursive: the body is untrusted and nlohmann parses arbitrarily deep
// nesting without recursion, so a recursive writer could be driven into a stack overflow.
// Object keys come out sorted because nlohmann::json keeps objects in a std::map.
void append_value(std::string& out, const api::Json& root) {
  struct Frame {
    api::Json::const_iterator it;
    api::Json::const_iterator end;
    bool object;
    bool first;
  };
  append_leaf_or_open(out, root);
  if (!root.is_structured()) return;
  std::vector<Frame> stack;
  stack.push_back({root.cbegin(), root.cend(), root.is_object(), true});
  while (!stack.empty()) {
    Frame& top = stack.back();
    if (top.it == top.end) {
      out += top.object ? '}' : ']';
      stack.pop_back();
      continue;
    }
    if (!top.first) out += ',';
    top.first = false;
    if (top.object) {
      append_string(out, top.it.key());
      out += ':';
    }
    const api::Json& child = *top.it++;
    append_leaf_or_open(out, child);
    if (child.is_structured()) {  // invalidates `top`
      stack.push_back({child.cbegin(), child.cend(), child.is_object(), true});
    }
  }
}

}  // namespace

std::string canonical_request(api::WireFormat format, const api::Json& openai_body) {
  std::string out;
  out.reserve(1024);
  out += kVersion;
  out += '|';
  out += api::to_string(format);
  out += '|';
  if (!openai_body.is_object()) {
    append_value(out, openai_body);
    return out;
  }
  out += '{';
  bool first = true;
  for (auto it = openai_body.cbegin(); it != openai_body.cend(); ++it) {
    if (ignored_field(it.key())) continue;
    if (!first) out += ',';
    first = false;
    append_string(out, it.key());
    out += ':';
    append_value(out, *it);
  }
  out += '}';
  return out;
}

std::string exact_cache_key(api::WireFormat format, const api::Json& openai_body) {
  return to_hex(sha256(canonical_request(format, openai_body)));
}

std::string partitioned_key(std::string_view partition, std::string key) {
  if (partition.empty()) return key;
  return "p:" + to_hex(sha256(partition), 16) + ":" + key;
}

}  // namespace isartor::cache
