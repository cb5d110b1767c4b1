#include "agent/upstream_request_builder.h"

#include <algorithm>

#include "proto/protocol_constants.h"

namespace inkwire::agent {

bool is_unforwarded_request_header(std::string_view name) {
  if (name.empty() || name.front() == ':') return true;
  if (proto::is_hop_by_hop_request_header(name)) return true;  // §4.6 rule 3, from the fixture
  // Beyond the fixture's list: the forwarding fields the agent writes itself (§6.3), the framing
  // the forwarder derives from the body, and fields that mean nothing past this hop.
  static constexpr std::string_view kAgentOwned[] = {"proxy-connection", "http2-settings",  "expect",
                                                     "x-forwarded-for",  "x-forwarded-host", "x-forwarded-proto",
                                                     "forwarded",        "content-length"};
  return std::find(std::begin(kAgentOwned), std::end(kAgentOwned), name) != std::end(kAgentOwned);
}

bool is_unposted_response_header(std::string_view name) {
  return proto::is_hop_by_hop_response_header(name) || name == "content-length" || name == "proxy-connection";
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
