#include "controlplane/api/json_codec.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "common/time_format.h"

using namespace inkwire;
using namespace inkwire::controlplane;

namespace {

TunnelRecord sample() {
  TunnelRecord t;
  t.id = *Uuid::parse("67e166e4-eebf-4e2f-9ad1-31500426dbc9");
  t.organization_id = *Uuid::parse("11111111-2222-4333-8444-555555555555");
  t.tunnel_name = "my-agent";
  t.description = std::string("quote \" backslash \\ newline \n tab \t bell \x07 caf\xc3\xa9");
  t.tls_mode = TlsMode::passthrough;
  t.status = TunnelStatus::delete_pending;
  t.cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  t.restore_deadline_at = from_unix_micros(1778241600123456);
  t.metadata_json = R"({"b":1,"a":[true,null,"x"]})";
  t.created_at = from_unix_micros(1778241600000000);
  t.updated_at = from_unix_micros(1778241600000001);
  return t;
}

}  // namespace

TEST(JsonCodec, TunnelJsonIsValidAndComplete) {
  const auto t = sample();
  const std::string host = "my-agent.example.com", zone = "example.com";
  std::string out;
  append_tunnel_json(out, {t, host, zone});
  boost::system::error_code ec;
  auto v = boost::json::parse(out, ec);
  ASSERT_FALSE(ec) << out;
  const auto& o = v.as_object();
  EXPECT_EQ(o.size(), 18u);
  EXPECT_EQ(o.at("id").as_string(), "67e166e4-eebf-4e2f-9ad1-31500426dbc9");
  EXPECT_EQ(o.at("description").as_string(), *t.description);
  EXPECT_EQ(o.at("tls_mode").as_string(), "passthrough");
  EXPECT_EQ(o.at("status").as_string(), "delete_pending");
  EXPECT_EQ(o.at("cert_pem").as_string(), *t.cert_pem);
  EXPECT_TRUE(o.at("cert_fingerprint_sha256").is_null());
  EXPECT_TRUE(o.at("last_connected_at").is_null());
  EXPECT_EQ(o.at("restore_deadline_at").as_string(), "2026-05-08T12:00:00.123456Z");
  EXPECT_EQ(o.at("currently_connected").as_bool(), false);
  EXPECT_EQ(o.at("public_host").as_string(), host);
  EXPECT_EQ(o.at("zone").as_string(), zone);
  EXPECT_EQ(o.at("metadata").as_object().at("b").as_int64(), 1);
  EXPECT_EQ(o.at("created_at").as_string(), "2026-05-08T12:00:00.000000Z");
  // The metadata object is passed through as stored, key order included.
  EXPECT_NE(out.find(R"("metadata":{"b":1,"a":[true,null,"x"]})"), std::string::npos);
}

TEST(JsonCodec, StringEscapingRoundTripsEveryByteBelow0x80) {
  std::string all;
  for (int c = 1; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  std::string out;
  append_json_string(out, all);
  auto v = boost::json::parse(out);
  EXPECT_EQ(v.as_string(), all);
}

TEST(JsonCodec, BodiesAreObjectsWithKnownMembers) {
  EXPECT_EQ(parse_object_body("{not json", false).error().status, 400);
  EXPECT_EQ(parse_object_body("[1]", false).error().status, 422);
  EXPECT_EQ(parse_object_body("", false).error().status, 422);
  EXPECT_TRUE(parse_object_body("  ", true).has_value());
  auto o = parse_object_body(R"({"a":"x","b":null,"c":3})", false);
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(only_members(*o, {"a", "b"}).error().detail, "unknown member 'c'");
  EXPECT_EQ(string_member(*o, "c").error().status, 422);
  EXPECT_EQ(**string_member(*o, "a"), "x");
  EXPECT_FALSE(string_member(*o, "zz")->has_value());
  auto b = nullable_string_member(*o, "b");
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(b->has_value());
  EXPECT_FALSE(b->value().has_value());
  // Nesting is bounded rather than recursed into without limit.
  std::string deep(100, '[');
  deep = R"({"m":)" + deep + std::string(100, ']') + "}";
  EXPECT_EQ(parse_object_body(deep, false).error().status, 400);
}
