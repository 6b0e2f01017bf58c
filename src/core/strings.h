#pragma once
// The text helpers the areas share: blank trimming, ASCII case, percent escapes, base64. All pure and thread-safe.
#include <string>
#include <string_view>

namespace isartor::core {

// Without leading/trailing spaces, tabs, CR, LF, VT and FF.
std::string_view trim(std::string_view text);

// ASCII lower/upper case copies (other bytes, UTF-8 included, unchanged).
std::string to_lower(std::string_view text);
std::string to_upper(std::string_view text);

// Equal / a prefix, ignoring ASCII case (header names, auth schemes).
bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view text, std::string_view prefix);

// %XX escapes decoded (a URL path segment); a '%' not followed by two hex digits stays as it is.
std::string percent_decode(std::string_view text);

// Standard base64 (RFC 4648 section 4) with '=' padding.
std::string base64_encode(std::string_view bytes);

}  // namespace isartor::core
