// The agent's reading of an intake's 200 reply (PROTOCOL.md §4.6): meta headers, forwarded headers
// in order without their prefix, defaults, and what is ignored.
#include <gtest/gtest.h>

#include "agent/envelope.h"

namespace inkwire::agent {
namespace {

TEST(EnvelopeParse, TakesMetaAndForwardedHeaders) {
  proto::H2Headers headers{{"inkbox-request-id", "r-1"},     {"inkbox-route-kind", "ws-upgrade"},
                           {"inkbox-method", "GET"},         {"inkbox-path", "/chat?room=1"},
                           {"inkbox-ws-id", "w-9"},          {"inkbox-forwarded-for", "2001:db8::1"},
                           {"inkbox-sni-host", "a.example"}, {"inkbox-h-sec-websocket-protocol", "chat.v1"},
                           {"inkbox-h-cookie", "a=1; b=2"},  {"inkbox-h-accept", "*/*"},
                           {"inkbox-h-accept", "text/html"}};
  const Envelope e = parse_envelope(std::move(headers));
  EXPECT_EQ(e.request_id, "r-1");
  EXPECT_EQ(e.kind, "ws-upgrade");
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.path, "/chat?room=1");
  EXPECT_EQ(e.ws_id, "w-9");
  EXPECT_EQ(e.forwarded_for, "2001:db8::1");
  EXPECT_EQ(e.sni_host, "a.example");
  ASSERT_EQ(e.forwarded.size(), 4u);
  EXPECT_EQ(e.forwarded[0], (proto::HeaderField{"sec-websocket-protocol", "chat.v1"}));
  EXPECT_EQ(e.forwarded[1], (proto::HeaderField{"cookie", "a=1; b=2"}));
  // Repeated fields stay separate values, in order (the Python SDK's reading).
  EXPECT_EQ(e.forwarded[2], (proto::HeaderField{"accept", "*/*"}));
  EXPECT_EQ(e.forwarded[3], (proto::HeaderField{"accept", "text/html"}));
  ASSERT_NE(e.header("cookie"), nullptr);
  EXPECT_EQ(*e.header("cookie"), "a=1; b=2");
  EXPECT_EQ(e.header("host"), nullptr);
}

TEST(EnvelopeParse, DefaultsWhenMetaHeadersAreAbsent) {
  const Envelope e = parse_envelope(proto::H2Headers{{"inkbox-request-id", "r-2"}});
  EXPECT_EQ(e.kind, "");  // handled as webhook
  EXPECT_EQ(e.method, "GET");
  EXPECT_EQ(e.path, "/");
  EXPECT_TRUE(e.forwarded.empty());
}

TEST(EnvelopeParse, IgnoresOtherFieldsAndAnEmptyForwardedName) {
  proto::H2Headers headers{{"content-type", "application/json"}, {"date", "x"},       {"inkbox-status", "200"},
                           {"inkbox-reason", "x"},               {"inkbox-extra", "y"}, {"inkbox-h-", "nameless"},
                           {"inkbox-tcp-id", "t-1"}};
  const Envelope e = parse_envelope(std::move(headers));
  EXPECT_TRUE(e.request_id.empty());  // the caller drops it, as the SDKs do
  EXPECT_EQ(e.tcp_id, "t-1");
  EXPECT_TRUE(e.forwarded.empty());
}

}  // namespace
}  // namespace inkwire::agent
