#include "agent/upstream_request_builder.h"

namespace inkwire::agent {

bool is_unforwarded_request_header(std::string_view name) {
  if (name.empty() || name.front() == ':') return true;
  static constexpr std::string_view kSkip[] = {
      "host", "connection", "upgrade", "keep-alive", "te", "trailer", "transfer-encoding", "proxy-authenticate",
      "proxy-authorization", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
      "proxy-connection", "http2-settings", "expect", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto",
      "forwarded", "content-length"};
  for (auto skip : kSkip) {
    if (name == skip) return true;
  }
  return false;
}

UpstreamRequest build_upstream_request(const proto::ForwardTarget& target, UpstreamRequestInput input) {
  UpstreamRequest request;
  request.method = std::string(input.method);
  const std::string url = proto::join_forward_url(target, input.path);
  // join_forward_url gives scheme://authority/...: the request line takes what follows the authority.
  const auto authority_end = url.find('/', url.find("://") + 3);
  request.target = authority_end == std::string::npos ? "/" : url.substr(authority_end);
  request.headers.reserve(input.headers.size() + 5);
  request.headers.push_back({"Host", proto::host_header(target)});
  request.headers.push_back({"X-Forwarded-Host", std::string(input.public_host)});
  request.headers.push_back({"X-Forwarded-Proto", "https"});
  if (!input.forwarded_for.empty()) {
    const std::string ip(input.forwarded_for);
    request.headers.push_back({"X-Forwarded-For", ip});
    const bool v6 = ip.find(':') != std::string::npos;
    request.headers.push_back({"Forwarded", v6 ? "for=\"[" + ip + "]\"" : "for=" + ip});
  }
  std::size_t cookie_at = std::string::npos;
  for (const auto& field : input.headers) {
    if (is_unforwarded_request_header(field.name)) continue;
    if (field.name == "cookie") {
      if (cookie_at != std::string::npos) {
        request.headers[cookie_at].value += "; ";
        request.headers[cookie_at].value += field.value;
        continue;
      }
      cookie_at = request.headers.size();
    }
    request.headers.push_back(field);
  }
  request.send_body = input.method != "GET" && input.method != "HEAD";
  request.body = std::move(input.body);
  return request;
}

}  // namespace inkwire::agent
