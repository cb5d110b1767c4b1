// libFuzzer target for the envelope builder and the response-post mapper (PROTOCOL.md §4.6, §4.7).
// The input is read as a header list: third-party headers for build_envelope_headers, and the same
// pairs (plus inkbox-h- forms) as a response post. Beyond "no crash, no sanitizer report" it traps
// when a result breaks a promise the callers rely on: every envelope the builder accepts must pass
// §4.1, and nothing the mapper passes on may carry control bytes or inkbox-* names.
//
// Not wired into CMake (the default build uses GCC). Build by hand, e.g.:
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/envelope_fuzz.cc \
//     proto/envelope.cc proto/header_rules.cc proto/protocol_constants.cc proto/request_target.cc \
//     proto/response_post.cc proto/set_cookie.cc proto/ws_handshake.cc -lcrypto -o envelope_fuzz
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "proto/envelope.h"
#include "proto/header_rules.h"
#include "proto/protocol_constants.h"
#include "proto/request_target.h"
#include "proto/response_post.h"
#include "proto/set_cookie.h"
#include "proto/ws_handshake.h"

namespace {

using namespace inkwire::proto;

void require(bool condition) {
  if (!condition) __builtin_trap();
}

bool has_control_byte(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return (c < 0x20 && c != '\t') || c == 0x7F;
  });
}

void check_envelope(const InboundRequest& request, RouteKind kind, std::string_view request_id,
                    std::string_view bridge_id, const EnvelopeLimits& limits) {
  auto envelope = build_envelope_headers(request, kind, request_id, bridge_id, limits);
  if (!envelope) {
    const int status = envelope.error().http_status;
    require(status == 400 || status == 405 || status == 414 || status == 431 || status == 500);
    return;
  }
  require(agent_header_list_error(*envelope).empty());
  require(envelope->size() >= 2 && envelope->front().name == meta_header::kRequestId);
  std::size_t forwarded = 0;
  std::size_t cookies = 0;
  for (const HeaderField& f : *envelope) {
    if (!f.name.starts_with(kInkboxForwardedHeaderPrefix)) continue;
    ++forwarded;
    const std::string_view name = std::string_view(f.name).substr(kInkboxForwardedHeaderPrefix.size());
    require(!is_hop_by_hop_request_header(name));
    require(name != "x-forwarded-for" && name != "forwarded" && name != "expect");
    if (name == "cookie") ++cookies;
  }
  require(cookies <= 1);
  require(kind != RouteKind::tcp_stream || forwarded == 0);
  // One field beyond the limit is the edge's own accept-encoding: identity.
  require(forwarded <= limits.max_fields + 1);
}

void check_set_cookie(std::string_view value) {
  // Pieces are non-empty, trimmed, and appear in the value in order: splitting only cuts.
  std::size_t from = 0;
  for (const std::string& piece : split_set_cookie(value)) {
    require(!piece.empty() && trim_ows(piece) == piece);
    const std::size_t at = value.find(piece, from);
    require(at != std::string_view::npos);
    from = at + piece.size();
  }
}

void check_post(const std::vector<HeaderField>& post_headers, const InboundRequest& request) {
  auto post = parse_response_post(post_headers);
  if (!post) {
    require(post.error().post_status == 400 && post.error().third_party_status == 502);
    return;
  }
  require(post->status >= 100 && post->status <= 599);
  for (const HeaderField& f : post->headers) {
    require(is_token(f.name) && lowercase_ascii(f.name) == f.name);
    require(!f.name.starts_with(kInkboxNamespacePrefix));
    require(!is_hop_by_hop_response_header(f.name) && f.name != "content-length");
    require(!has_control_byte(f.value) && trim_ows(f.value) == f.value);
    if (f.name == "set-cookie") require(!f.value.empty());
  }
  const std::vector<std::string> offered = offered_subprotocols(request.headers);
  auto accept = prepare_ws_accept(post->headers, offered, request.sni_host);
  if (!accept) return;
  if (!accept->subprotocol.empty()) {
    require(std::find(offered.begin(), offered.end(), accept->subprotocol) != offered.end());
  }
  for (const HeaderField& f : accept->headers) require(f.name != "sec-websocket-accept" && f.name != "sec-websocket-key");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider input(data, size);
  const auto flags = input.ConsumeIntegral<std::uint8_t>();
  const auto kind = static_cast<RouteKind>(flags % 3);
  EnvelopeLimits limits;
  limits.force_identity_encoding = (flags & 4) != 0;
  if ((flags & 8) != 0) {
    limits.max_fields = input.ConsumeIntegralInRange<std::size_t>(0, 300);
    limits.max_header_bytes = input.ConsumeIntegralInRange<std::size_t>(0, 100000);
    limits.max_target_bytes = input.ConsumeIntegralInRange<std::size_t>(0, 100000);
  }

  InboundRequest request;
  request.method = input.ConsumeRandomLengthString(16);
  request.target = input.ConsumeRandomLengthString(512);
  request.client_ip = input.ConsumeRandomLengthString(64);
  request.sni_host = input.ConsumeRandomLengthString(64);
  const std::string request_id = input.ConsumeRandomLengthString(16);
  const std::string bridge_id = input.ConsumeRandomLengthString(16);
  while (input.remaining_bytes() > 0 && request.headers.size() < 512) {
    std::string name = input.ConsumeRandomLengthString(32);
    std::string value = input.ConsumeRandomLengthString(1024);
    request.headers.emplace_back(std::move(name), std::move(value));
  }

  check_envelope(request, kind, request_id, bridge_id, limits);
  if (request_target_error(request.target).empty()) {
    require(percent_decode_strict(std::string_view(request.target).substr(0, request.target.find('?'))).has_value());
  }

  std::vector<HeaderField> post_headers;
  for (const auto& [name, value] : request.headers) {
    post_headers.push_back({name, value});
    post_headers.push_back({std::string(kInkboxForwardedHeaderPrefix) + name, value});
    check_set_cookie(value);
  }
  if ((flags & 16) != 0) post_headers.push_back({std::string(meta_header::kStatus), request.method});
  check_post(post_headers, request);
  return 0;
}
