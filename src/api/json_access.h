#pragma once
// Non-throwing accessors for untrusted JSON, shared by the wire-format translators (internal to
// src/api; nothing outside it should include this). All pure.
#include <cstdint>
#include <string>
#include <string_view>

#include "api/wire_format.h"

namespace isartor::api::detail {

// The member `key` of `obj`; nullptr when `obj` is not an object or the member is absent or null.
inline const Json* member(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// The string member `key`, or `fallback` when it is absent or not a string.
inline std::string string_member(const Json& obj, std::string_view key, std::string fallback = {}) {
  const Json* value = member(obj, key);
  return value && value->is_string() ? value->get<std::string>() : std::move(fallback);
}

// The integer member `key`, or `fallback` when it is absent or not an integer.
inline int64_t int_member(const Json& obj, std::string_view key, int64_t fallback = 0) {
  const Json* value = member(obj, key);
  return value && value->is_number_integer() ? value->get<int64_t>() : fallback;
}

inline const Json& empty_object() {
  static const Json kEmpty = Json::object();
  return kEmpty;
}

// The object/array member `key`, or an empty one of that kind when it is absent or ill-typed.
inline const Json& object_member(const Json& obj, std::string_view key) {
  const Json* value = member(obj, key);
  return value && value->is_object() ? *value : empty_object();
}
inline const Json& array_member(const Json& obj, std::string_view key) {
  static const Json kEmpty = Json::array();
  const Json* value = member(obj, key);
  return value && value->is_array() ? *value : kEmpty;
}

// Text of an OpenAI message content: the string itself, or the "text" parts of an array joined
// with `separator`; "" for anything else.
inline std::string content_text(const Json& content, std::string_view separator = "") {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  if (!content.is_array()) return text;
  bool first = true;
  for (const Json& part : content) {
    if (string_member(part, "type") != "text") continue;
    if (!first) text += separator;
    text += string_member(part, "text");
    first = false;
  }
  return text;
}

}  // namespace isartor::api::detail
