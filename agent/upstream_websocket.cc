#include "agent/upstream_websocket.h"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <algorithm>
#include <array>
#include <utility>

#include "agent/upstream_request_builder.h"
#include "common/encoding.h"
#include "proto/forward_target.h"
#include "proto/ws_handshake.h"

namespace inkwire::agent {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxHandshakeResponse = 16 * 1024;
constexpr std::size_t kReadStep = 4096;

// The request line's target: the joined URL's path and query.
std::string origin_form(const proto::ForwardTarget& target, std::string_view path) {
  const std::string url = proto::join_forward_url(target, path);
  const auto authority_end = url.find('/', url.find("://") + 3);
  return authority_end == std::string::npos ? std::string("/") : url.substr(authority_end);
}

std::string request_head(const proto::ForwardTarget& target, const UpstreamWebSocketRequest& request,
                         std::string_view key) {
  std::string head;
  head.reserve(512);
  head += "GET ";
  head += origin_form(target, request.path);
  head += " HTTP/1.1\r\nHost: ";
  head += proto::host_header(target);
  head += "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ";
  head += key;
  head += "\r\n";
  for (const auto& h : request.headers) {
    if (h.name == "sec-websocket-protocol") head += "Sec-WebSocket-Protocol: " + h.value + "\r\n";
  }
  head += "X-Forwarded-Host: ";
  head += request.public_host;
  head += "\r\nX-Forwarded-Proto: https\r\n";
  if (!request.forwarded_for.empty()) {
    head += "X-Forwarded-For: ";
    head += request.forwarded_for;
    head += "\r\n";
  }
  for (const auto& h : request.headers) {
    if (h.name.starts_with(':') || is_hop_or_websocket_handshake_field(h.name)) continue;
    head += h.name + ": " + h.value + "\r\n";
  }
  head += "\r\n";
  return head;
}

UpstreamWebSocketRefusal refusal(int status, std::string_view reason) {
  UpstreamWebSocketRefusal r;
  r.status = status;
  r.reason = reason;
  return r;
}

}  // namespace

bool is_hop_or_websocket_handshake_field(std::string_view name) {
  // The upstream request rule, plus the handshake fields each side computes for itself.
  return is_unforwarded_request_header(name) || name == "sec-websocket-accept" || name == "sec-websocket-protocol";
}

asio::awaitable<Expected<UpstreamWebSocketAccepted, UpstreamWebSocketRefusal>> upstream_websocket_handshake(
    UpstreamDialer& dialer, RandomSource& random, const UpstreamWebSocketRequest& request,
    SteadyClock::time_point deadline, const Logger& logger) {
  auto dialed = co_await dialer.dial(deadline);
  if (!dialed) {
    logger->info("agent: websocket {}: {}", request.path, dialed.error());
    const int status = dialed.error().find("timed out") != std::string::npos ? 504 : 502;
    co_return unexpected(refusal(status, "upstream-unreachable"));
  }
  std::unique_ptr<UpstreamSocket> upstream = std::move(*dialed);
  upstream->expires_at(deadline);
  std::array<std::uint8_t, 16> nonce{};
  random.fill(nonce);
  const std::string key = base64_encode(nonce);
  const std::string head = request_head(dialer.target(), request, key);
  auto ec = co_await upstream->stream().write_all(head);

  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxHandshakeResponse);
  parser.body_limit(boost::none);  // a refusal's body is bounded below, by max_refusal_body
  parser.eager(false);
  std::string in;
  std::size_t used_total = 0;
  // Reads more into `in`; false at an error (kept in `ec`) or the end of the stream (`eof`).
  bool eof = false;
  auto read_more = [&]() -> asio::awaitable<bool> {
    const std::size_t old = in.size();
    in.resize(old + kReadStep);
    auto [rec, n] =
        co_await upstream->stream().read_some(std::span(reinterpret_cast<std::uint8_t*>(in.data()) + old, kReadStep));
    in.resize(old + (rec ? 0 : n));
    if (rec == asio::error::eof) eof = true;
    if (rec) ec = rec;
    co_return !rec;
  };
  while (!ec && !parser.is_header_done()) {
    if (in.size() >= kMaxHandshakeResponse) {
      ec = http::error::header_limit;
      break;
    }
    const bool more = co_await read_more();
    if (!more) break;
    boost::beast::error_code pec;
    used_total += parser.put(asio::buffer(in.data() + used_total, in.size() - used_total), pec);
    if (pec && pec != http::error::need_more) ec = pec;
  }
  if (ec) {
    const bool timed_out = upstream->timed_out();
    logger->info("agent: websocket {}: the upstream handshake failed: {}", request.path,
                 timed_out ? std::string("timed out") : ec.message());
    co_return unexpected(refusal(timed_out ? 504 : 502, "ws-handshake-failed"));
  }
  const auto& response = parser.get();
  const int status = static_cast<int>(response.result_int());
  if (status != 101) {
    UpstreamWebSocketRefusal refused = refusal(status >= 200 ? status : 502, "ws-upstream-refused");
    if (status < 200) co_return unexpected(std::move(refused));
    for (const auto& field : response) {
      std::string name = proto::lowercase_ascii(field.name_string());
      if (!is_hop_or_websocket_handshake_field(name)) refused.headers.push_back({std::move(name), std::string(field.value())});
    }
    const auto length = parser.content_length();
    if (request.max_refusal_body > 0 && (!length || *length <= request.max_refusal_body)) {
      // The rest of the answer, within the same deadline and at most max_refusal_body bytes.
      parser.eager(true);
      bool failed = false;
      while (!parser.is_done()) {
        if (used_total < in.size()) {
          boost::beast::error_code pec;
          used_total += parser.put(asio::buffer(in.data() + used_total, in.size() - used_total), pec);
          if (pec && pec != http::error::need_more) {
            failed = true;
            break;
          }
          if (parser.is_done()) break;
        }
        if (parser.get().body().size() > request.max_refusal_body ||
            in.size() - used_total > request.max_refusal_body + kMaxHandshakeResponse) {
          failed = true;
          break;
        }
        const bool more = co_await read_more();
        if (!more) {
          boost::beast::error_code pec;
          if (eof) parser.put_eof(pec);
          if (!eof || pec) failed = true;
          break;
        }
      }
      if (!failed && parser.is_done() && parser.get().body().size() <= request.max_refusal_body) {
        refused.body = std::move(parser.get().body());
      }
    }
    co_return unexpected(std::move(refused));
  }
  upstream->expires_at(SteadyClock::time_point::max());
  const auto accept = response[http::field::sec_websocket_accept];
  const auto extensions = response[http::field::sec_websocket_extensions];
  const auto chosen = response[http::field::sec_websocket_protocol];
  bool ok = accept == proto::websocket_accept_value(key) && extensions.empty();
  if (ok && !chosen.empty()) {
    std::vector<std::pair<std::string, std::string>> offer;
    for (const auto& h : request.headers) {
      if (h.name == "sec-websocket-protocol") offer.emplace_back(h.name, h.value);
    }
    const auto offered = proto::offered_subprotocols(offer);
    ok = std::find(offered.begin(), offered.end(), std::string(chosen)) != offered.end();
  }
  if (!ok) {
    logger->info("agent: websocket {}: the upstream's 101 is not a valid answer to our handshake", request.path);
    co_return unexpected(refusal(502, "ws-handshake-failed"));
  }
  UpstreamWebSocketAccepted accepted;
  accepted.subprotocol = std::string(chosen);
  for (const auto& field : response) {
    std::string name = proto::lowercase_ascii(field.name_string());
    if (name == "sec-websocket-protocol" || !is_hop_or_websocket_handshake_field(name)) {
      accepted.headers.push_back({std::move(name), std::string(field.value())});
    }
  }
  accepted.leftover = in.substr(used_total);
  accepted.upstream = std::move(upstream);
  co_return std::move(accepted);
}

}  // namespace inkwire::agent
