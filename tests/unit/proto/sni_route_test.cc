// The shared listener's routing by SNI (PROTOCOL.md §8 A31).
#include "proto/sni_route.h"

#include <gtest/gtest.h>

namespace inkwire::proto {
namespace {

TEST(SniRouteTest, NoSniOrTheZoneGoesToTheRelay) {
  EXPECT_EQ(route_by_sni(std::nullopt, "tunnels.example.com").target, SniTarget::relay);
  EXPECT_EQ(route_by_sni(std::string(""), "tunnels.example.com").target, SniTarget::relay);
  EXPECT_EQ(route_by_sni(std::string("tunnels.example.com"), "tunnels.example.com").target, SniTarget::relay);
}

TEST(SniRouteTest, OneLabelUnderTheZoneIsATunnel) {
  auto r = route_by_sni(std::string("my-agent.tunnels.example.com"), "tunnels.example.com");
  EXPECT_EQ(r.target, SniTarget::tunnel);
  EXPECT_EQ(r.tunnel_name, "my-agent");
}

TEST(SniRouteTest, DeeperNamesAndBadLabelsUnderTheZoneAreUnknown) {
  EXPECT_EQ(route_by_sni(std::string("a.b.tunnels.example.com"), "tunnels.example.com").target,
            SniTarget::unknown_name);
  EXPECT_EQ(route_by_sni(std::string("-bad.tunnels.example.com"), "tunnels.example.com").target,
            SniTarget::unknown_name);
}

TEST(SniRouteTest, AnythingElseIsOutsideTheZone) {
  for (const char* host : {"example.com", "tunnels.example.com.evil", "xtunnels.example.com", "other.org",
                           ".tunnels.example.com"}) {
    EXPECT_EQ(route_by_sni(std::string(host), "tunnels.example.com").target, SniTarget::outside_zone) << host;
  }
}

}  // namespace
}  // namespace inkwire::proto
