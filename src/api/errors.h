#pragma once
// The one error boundary: maps an isartor::Error to the status and body of each wire format.
//   OpenAI:    {"error":{"message":..., "type":..., "param":..., "code":...}}
//   Anthropic: {"type":"error","error":{"type":..., "message":...}}
//   Native:    {"error":{"message":..., "type":..., "code":...}} (the OpenAI shape)
// API keys in messages are redacted before they reach a body.
#include <string>
#include <vector>

#include "api/wire_format.h"
#include "core/result.h"

namespace isartor::api {

struct ErrorResponse {
  int status = 500;
  std::string body;  // JSON
};

// The error object of a body in `format` (see above), message redacted. Pure.
Json error_body(WireFormat format, const Error& error);

// Pure.
ErrorResponse render_error(WireFormat format, const Error& error);

// The body as an SSE error event for a stream that already started (OpenAI: a data line with
// the error object; Anthropic: "event: error"; Responses: "event: error" with code, message,
// param). Pure.
std::string render_stream_error(WireFormat format, const Error& error);

// Replaces anything that looks like an API key (sk-..., Bearer tokens, x-api-key values, and the
// given secrets) with "[REDACTED]". Pure.
std::string redact(std::string text, const std::vector<std::string>& secrets = {});

}  // namespace isartor::api
