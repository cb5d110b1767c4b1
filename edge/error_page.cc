#include "edge/error_page.h"

#include <boost/beast/http/status.hpp>

namespace inkwire::edge {

namespace {

struct Message {
  std::string_view code;
  std::string_view text;
};

constexpr Message kMessages[] = {
    {error_code::unknown_tunnel, "There is no tunnel with this name."},
    {error_code::pending_removal, "This tunnel has been deleted."},
    {error_code::tunnel_disabled, "This tunnel is not available."},
    {error_code::no_agent, "The tunnel exists, but no agent is connected to it right now."},
    {error_code::agent_gone, "The tunnel's agent went away before it answered."},
    {error_code::bad_agent_response, "The tunnel's agent sent an answer that cannot be passed on."},
    {error_code::deadline, "The tunnel's agent did not answer in time."},
    {error_code::overloaded, "The tunnel has too many requests waiting. Try again shortly."},
    {error_code::directory_unavailable, "The tunnel service cannot look this tunnel up right now. Try again shortly."},
    {error_code::bad_request, "The request is malformed."},
    {error_code::method_not_allowed, "This method cannot be sent through a tunnel."},
    {error_code::body_too_large, "The request body is larger than this service accepts."},
    {error_code::uri_too_long, "The request target is longer than this service accepts."},
    {error_code::headers_too_large, "The request headers are larger than this service accepts."},
    {error_code::misdirected, "The Host of this request does not match the name the connection was opened for."},
    {error_code::expectation_failed, "Only Expect: 100-continue is supported."},
    {error_code::version_not_supported, "Only HTTP/1.0, HTTP/1.1 and HTTP/2 are supported."},
    {error_code::upgrade_required, "Only WebSocket version 13 is supported."},
    {error_code::passthrough_only, "This tunnel is only served over HTTPS."},
    {error_code::shutting_down, "This server is restarting. Try again shortly."},
};

// The client asked for JSON: a JSON type is named and HTML is not (browsers list text/html).
bool wants_json(std::string_view accept) {
  const bool json = accept.find("application/json") != std::string_view::npos ||
                    accept.find("+json") != std::string_view::npos;
  return json && accept.find("text/html") == std::string_view::npos;
}

std::string json_escape(std::string_view text) {
  // Every text here is ours (static ASCII); only quotes and backslashes could need escaping.
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string_view error_message(std::string_view code) {
  for (const Message& m : kMessages) {
    if (m.code == code) return m.text;
  }
  return "The request could not be completed.";
}

ErrorResponse render_error(const EdgeError& error, std::string_view accept, std::optional<int> retry_after_seconds) {
  ErrorResponse out;
  out.status = error.status;
  const std::string_view message = error_message(error.code);
  const std::string_view reason = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(error.status));
  if (wants_json(accept)) {
    out.headers.push_back({"content-type", "application/json"});
    out.body = "{\"status\":" + std::to_string(error.status) + ",\"error\":\"" + json_escape(error.code) +
               "\",\"detail\":\"" + json_escape(message) + "\"}\n";
  } else {
    out.headers.push_back({"content-type", "text/html; charset=utf-8"});
    const std::string title = std::to_string(error.status) + " " + std::string(reason);
    out.body = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
               "<title>" + title + "</title>"
               "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}"
               "h1{font-size:1.4rem}code{color:#555}</style></head>"
               "<body><h1>" + title + "</h1><p>" + std::string(message) + "</p>"
               "<p><code>" + std::string(error.code) + "</code></p></body></html>\n";
  }
  out.headers.push_back({"x-inkwire-error", std::string(error.code)});
  out.headers.push_back({"cache-control", "no-store"});
  if (retry_after_seconds) out.headers.push_back({"retry-after", std::to_string(*retry_after_seconds)});
  if (error.code == error_code::upgrade_required) out.headers.push_back({"sec-websocket-version", "13"});
  return out;
}

}  // namespace inkwire::edge
