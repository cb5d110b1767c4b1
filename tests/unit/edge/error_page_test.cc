// The edge's own answers and its Host parsing: pure functions, no sockets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "edge/error_page.h"
#include "edge/tunnel_gateway.h"

namespace inkwire::edge {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string header(const ErrorResponse& r, std::string_view name) {
  for (const auto& h : r.headers) {
    if (h.name == name) return h.value;
  }
  return "<absent>";
}

TEST(ErrorPageTest, HtmlForBrowsersJsonWhenAsked) {
  const EdgeError error{404, error_code::unknown_tunnel};
  const ErrorResponse html = render_error(error, "text/html,application/xhtml+xml,application/json;q=0.9");
  EXPECT_EQ(html.status, 404);
  EXPECT_EQ(header(html, "content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(header(html, "x-inkwire-error"), "unknown-tunnel");
  EXPECT_THAT(html.body, HasSubstr("404 Not Found"));
  EXPECT_THAT(html.body, HasSubstr("There is no tunnel with this name."));

  const ErrorResponse json = render_error(error, "application/json");
  EXPECT_EQ(header(json, "content-type"), "application/json");
  EXPECT_EQ(json.body, "{\"status\":404,\"error\":\"unknown-tunnel\",\"detail\":\"There is no tunnel with this name.\"}\n");
  EXPECT_EQ(header(render_error(error, "application/problem+json"), "content-type"), "application/json");
  EXPECT_EQ(header(render_error(error, ""), "content-type"), "text/html; charset=utf-8");
}

TEST(ErrorPageTest, RetryAfterNoStoreAndWebSocketVersion) {
  const ErrorResponse busy = render_error(EdgeError{503, error_code::overloaded}, "", 5);
  EXPECT_EQ(header(busy, "retry-after"), "5");
  EXPECT_EQ(header(busy, "cache-control"), "no-store");
  EXPECT_EQ(header(render_error(EdgeError{503, error_code::no_agent}, ""), "retry-after"), "<absent>");
  EXPECT_EQ(header(render_error(EdgeError{426, error_code::upgrade_required}, ""), "sec-websocket-version"), "13");
}

TEST(ErrorPageTest, EveryCodeHasItsOwnSentence) {
  for (std::string_view code : {error_code::unknown_tunnel, error_code::pending_removal, error_code::no_agent,
                                error_code::agent_gone, error_code::deadline, error_code::overloaded,
                                error_code::misdirected, error_code::body_too_large, error_code::headers_too_large}) {
    EXPECT_THAT(std::string(error_message(code)), Not(HasSubstr("could not be completed"))) << code;
  }
}

TEST(TunnelGatewayTest, HostWithoutPort) {
  EXPECT_EQ(host_without_port("Web.Example.COM:8443"), "web.example.com");
  EXPECT_EQ(host_without_port("web.example.com."), "web.example.com");
  EXPECT_EQ(host_without_port("web.example.com"), "web.example.com");
  EXPECT_EQ(host_without_port("web.example.com:abc"), "");
  EXPECT_EQ(host_without_port("[::1]:443"), "");
  EXPECT_EQ(host_without_port(""), "");
}

TEST(TunnelGatewayTest, RelayFailuresBecomeTheIssuesStatuses) {
  EXPECT_EQ(error_for_failure(relay::DispatchFailure{503, "no-session"}).code, error_code::no_agent);
  EXPECT_EQ(error_for_failure(relay::DispatchFailure{503, "queue-full"}).code, error_code::overloaded);
  EXPECT_EQ(error_for_failure(relay::DispatchFailure{504, "response-deadline"}).status, 504);
  EXPECT_EQ(error_for_failure(relay::DispatchFailure{502, "session-lost"}).code, error_code::agent_gone);
  EXPECT_EQ(error_for_failure(relay::DispatchFailure{503, "tunnel-removed"}).code, error_code::pending_removal);
  proto::EnvelopeError too_many{proto::EnvelopeError::Code::too_many_headers, 431, "x", {}};
  EXPECT_EQ(error_for_envelope(too_many).status, 431);
  proto::EnvelopeError trace{proto::EnvelopeError::Code::method_not_allowed, 405, "x", {}};
  EXPECT_EQ(error_for_envelope(trace).status, 405);
}

}  // namespace
}  // namespace inkwire::edge
