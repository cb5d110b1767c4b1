#include "proto/protocol_constants.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <fstream>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace {

namespace proto = inkwire::proto;
namespace json = boost::json;

// The SDKs' manifest; the C++ constants must say exactly what it says.
json::object load_fixture() {
  std::ifstream in(INKWIRE_TESTDATA_DIR "/tunnel_protocol_constants.json", std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open the fixture";
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value v = json::parse(text.str(), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(v.is_object());
  return v.is_object() ? v.as_object() : json::object{};
}

// Upstream commentary, not a wire name.
constexpr std::string_view kSchemaNote = "$schema-note";

struct Scalar {
  std::string_view group;  // empty for top-level keys
  std::string_view key;
  std::string_view value;
};

// One row per fixture leaf: adding a constant on either side without the other fails below.
const std::vector<Scalar>& scalars() {
  static const std::vector<Scalar> rows = {
      {"", "INKBOX_NAMESPACE_PREFIX", proto::kInkboxNamespacePrefix},
      {"", "INKBOX_FORWARDED_HEADER_PREFIX", proto::kInkboxForwardedHeaderPrefix},
      {"TunnelMetaHeader", "REQUEST_ID", proto::meta_header::kRequestId},
      {"TunnelMetaHeader", "METHOD", proto::meta_header::kMethod},
      {"TunnelMetaHeader", "PATH", proto::meta_header::kPath},
      {"TunnelMetaHeader", "ROUTE_KIND", proto::meta_header::kRouteKind},
      {"TunnelMetaHeader", "STATUS", proto::meta_header::kStatus},
      {"TunnelMetaHeader", "WS_ID", proto::meta_header::kWsId},
      {"TunnelMetaHeader", "TCP_ID", proto::meta_header::kTcpId},
      {"TunnelMetaHeader", "SNI_HOST", proto::meta_header::kSniHost},
      {"TunnelMetaHeader", "BODY_URI", proto::meta_header::kBodyUri},
      {"TunnelMetaHeader", "FORWARDED_FOR", proto::meta_header::kForwardedFor},
      {"TunnelMetaHeader", "REASON", proto::meta_header::kReason},
      {"TunnelRouteKind", "WEBHOOK", proto::route_kind::kWebhook},
      {"TunnelRouteKind", "WS_UPGRADE", proto::route_kind::kWsUpgrade},
      {"TunnelRouteKind", "TCP_STREAM", proto::route_kind::kTcpStream},
      {"TunnelSubprotocol", "WS", proto::subprotocol::kWs},
      {"TunnelSubprotocol", "TCP", proto::subprotocol::kTcp},
      {"ControlPaths", "HELLO", proto::control_path::kHello},
      {"ControlPaths", "INTAKE", proto::control_path::kIntake},
      {"ControlPaths", "RESPONSE_PREFIX", proto::control_path::kResponsePrefix},
      {"ControlPaths", "WS_PREFIX", proto::control_path::kWsPrefix},
      {"ControlPaths", "TCP_PREFIX", proto::control_path::kTcpPrefix},
      {"ControlHeaders", "TUNNEL_ID", proto::control_header::kTunnelId},
      {"ControlHeaders", "TUNNEL_SECRET", proto::control_header::kTunnelSecret},
      {"ControlHeaders", "OWNER_TOKEN", proto::control_header::kOwnerToken},
      {"ControlHeaders", "POOL_SLOT", proto::control_header::kPoolSlot},
      {"ControlHeaders", "POOL_SIZE", proto::control_header::kPoolSize},
  };
  return rows;
}

const std::vector<std::pair<std::string_view, std::span<const std::string_view>>>& lists() {
  static const std::vector<std::pair<std::string_view, std::span<const std::string_view>>> rows = {
      {"HopByHopRequest", proto::kHopByHopRequest},
      {"HopByHopResponse", proto::kHopByHopResponse},
  };
  return rows;
}

std::string path_of(std::string_view group, std::string_view key) {
  return group.empty() ? std::string(key) : std::string(group) + "." + std::string(key);
}

TEST(ProtocolConstants, EveryScalarMatchesTheFixture) {
  const json::object fixture = load_fixture();
  for (const Scalar& row : scalars()) {
    SCOPED_TRACE(path_of(row.group, row.key));
    const json::value* v = nullptr;
    if (row.group.empty()) {
      v = fixture.if_contains(row.key);
    } else if (const json::value* g = fixture.if_contains(row.group); g && g->is_object()) {
      v = g->as_object().if_contains(row.key);
    }
    ASSERT_NE(v, nullptr) << "the C++ side has a constant the fixture lacks";
    ASSERT_TRUE(v->is_string());
    EXPECT_EQ(std::string_view(v->as_string()), row.value);
  }
}

TEST(ProtocolConstants, EveryListMatchesTheFixtureInOrder) {
  const json::object fixture = load_fixture();
  for (const auto& [key, constants] : lists()) {
    SCOPED_TRACE(std::string(key));
    const json::value* v = fixture.if_contains(key);
    ASSERT_NE(v, nullptr);
    ASSERT_TRUE(v->is_array());
    const json::array& arr = v->as_array();
    ASSERT_EQ(arr.size(), constants.size());
    for (std::size_t i = 0; i < arr.size(); ++i) {
      ASSERT_TRUE(arr[i].is_string());
      EXPECT_EQ(std::string_view(arr[i].as_string()), constants[i]) << "index " << i;
    }
  }
}

TEST(ProtocolConstants, NoFixtureKeyIsMissingOnTheCppSide) {
  const json::object fixture = load_fixture();
  std::set<std::string> known;
  for (const Scalar& row : scalars()) known.insert(path_of(row.group, row.key));
  for (const auto& [key, constants] : lists()) known.insert(std::string(key));

  std::size_t leaves = 0;
  for (const auto& [key, value] : fixture) {
    if (key == kSchemaNote) continue;
    if (value.is_object()) {
      EXPECT_FALSE(value.as_object().empty()) << key;
      for (const auto& [inner, inner_value] : value.as_object()) {
        ++leaves;
        EXPECT_TRUE(inner_value.is_string()) << key << "." << inner;
        EXPECT_TRUE(known.count(path_of(key, inner))) << "no C++ constant for " << key << "." << inner;
      }
    } else {
      ++leaves;
      EXPECT_TRUE(value.is_string() || value.is_array()) << key;
      EXPECT_TRUE(known.count(std::string(key))) << "no C++ constant for " << key;
    }
  }
  // Together with the two tests above this makes the mapping a bijection.
  EXPECT_EQ(leaves, known.size());
}

TEST(ProtocolConstants, RouteKindNamesRoundTrip) {
  for (auto kind : {proto::RouteKind::webhook, proto::RouteKind::ws_upgrade, proto::RouteKind::tcp_stream}) {
    auto parsed = proto::parse_route_kind(proto::route_kind_name(kind));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_FALSE(proto::parse_route_kind("WEBHOOK").has_value());  // the SDKs compare exactly
  EXPECT_FALSE(proto::parse_route_kind("").has_value());
}

TEST(ProtocolConstants, HopByHopMembership) {
  EXPECT_TRUE(proto::is_hop_by_hop_request_header("host"));
  EXPECT_TRUE(proto::is_hop_by_hop_request_header("sec-websocket-key"));
  EXPECT_FALSE(proto::is_hop_by_hop_request_header("sec-websocket-protocol"));
  EXPECT_FALSE(proto::is_hop_by_hop_request_header("cookie"));
  EXPECT_TRUE(proto::is_hop_by_hop_response_header("trailer"));
  EXPECT_FALSE(proto::is_hop_by_hop_response_header("host"));
  EXPECT_FALSE(proto::is_hop_by_hop_response_header("set-cookie"));
}

TEST(ProtocolConstants, PrefixesNest) {
  // Stripping "inkbox-h-" relies on it being a longer form of the namespace prefix.
  EXPECT_TRUE(proto::kInkboxForwardedHeaderPrefix.starts_with(proto::kInkboxNamespacePrefix));
}

}  // namespace
