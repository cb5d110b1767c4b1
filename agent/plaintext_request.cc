#include "agent/plaintext_request.h"

#include "agent/http1_request_parser.h"

namespace inkwire::agent {

Expected<ParsedRequest, RequestError> parse_http1_request(std::string_view bytes, const Http1Limits& limits) {
  Http1RequestParser parser(limits);
  for (;;) {
    std::size_t used = 0;
    const auto status = parser.feed(bytes, used);
    bytes.remove_prefix(used);
    switch (status) {
      case Http1RequestParser::Status::complete:
        return std::move(parser.request());
      case Http1RequestParser::Status::failed:
        return unexpected(parser.error());
      case Http1RequestParser::Status::head_complete:
        continue;
      case Http1RequestParser::Status::need_more:
        // All of `bytes` was offered: a parser asking for more means the request was cut short.
        return unexpected(RequestError{400, "incomplete-request"});
    }
  }
}

Expected<ParsedRequest, RequestError> parse_h2_request(std::span<const proto::HeaderField> fields) {
  ParsedRequest request;
  request.headers.reserve(fields.size());
  std::string_view protocol;
  bool has_path = false;
  bool regular_seen = false;
  for (const auto& field : fields) {
    std::string name = proto::lowercase_ascii(field.name);
    if (name.starts_with(':')) {
      // RFC 9113 §8.3: pseudo-header fields precede the regular ones, each at most once.
      if (regular_seen) return unexpected(RequestError{400, "pseudo-header-after-field"});
      for (const auto& seen : request.headers) {
        if (seen.name == name) return unexpected(RequestError{400, "repeated-pseudo-header"});
      }
      if (name == ":method") {
        request.method = field.value;
      } else if (name == ":path") {
        request.path = field.value;
        has_path = true;
      } else if (name == ":protocol") {
        protocol = field.value;
      } else if (name != ":scheme" && name != ":authority") {
        return unexpected(RequestError{400, "unknown-pseudo-header"});
      }
    } else {
      regular_seen = true;
    }
    request.headers.push_back({std::move(name), field.value});
  }
  if (request.method.empty() || !proto::is_token(request.method)) return unexpected(RequestError{400, "bad-method"});
  const bool plain_connect = request.method == "CONNECT" && protocol.empty();
  if (!plain_connect && (!has_path || request.path.empty())) return unexpected(RequestError{400, "missing-path"});
  if (!protocol.empty() && request.method != "CONNECT") return unexpected(RequestError{400, "protocol-without-connect"});
  request.is_websocket = request.method == "CONNECT" && proto::iequals_ascii(protocol, "websocket");
  return request;
}

std::vector<proto::HeaderField> h2_request_fields(const proto::H2RequestHeaders& request) {
  std::vector<proto::HeaderField> fields;
  fields.reserve(request.headers.size() + 5);
  fields.push_back({":method", request.method});
  if (!request.scheme.empty()) fields.push_back({":scheme", request.scheme});
  if (!request.authority.empty()) fields.push_back({":authority", request.authority});
  if (!request.path.empty()) fields.push_back({":path", request.path});
  if (!request.protocol.empty()) fields.push_back({":protocol", request.protocol});
  for (const auto& field : request.headers) fields.push_back({field.name, field.value});
  return fields;
}

}  // namespace inkwire::agent
