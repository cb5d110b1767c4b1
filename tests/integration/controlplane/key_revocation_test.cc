#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/uuid.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire;
using namespace inkwire::testing;

// A key revoked elsewhere (another node, or `inkwired admin revoke-api-key`) reaches this node
// through NOTIFY inkwire_api_key_events: the cached authentication is dropped at once, not after
// controlplane.api_key_cache_seconds.
TEST(KeyRevocation, RevocationOnAnotherNodeEndsTheCachedKey) {
  TestControlPlane cp([](Config& c) { c.controlplane.api_key_cache_seconds = 3600; });
  auto client = cp.client();
  ASSERT_EQ(client.get("/api/v1/tunnels/", cp.member_key()).status, 200);  // now cached

  const auto id = Uuid::parse(cp.member_key().substr(7, 36));
  ASSERT_TRUE(id.has_value());
  // The repository call is what the CLI does: it commits the revocation and NOTIFYs, but does not
  // touch this node's cache directly.
  auto revoked = cp.control_plane().access_repository().revoke_api_key_blocking(
      *id, std::nullopt, controlplane::Actor{}, cp.clock().now());
  ASSERT_TRUE(revoked.has_value());
  ASSERT_TRUE(*revoked);

  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    status = client.get("/api/v1/tunnels/", cp.member_key()).status;
    if (status == 401) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(status, 401);
  EXPECT_EQ(client.get("/api/v1/tunnels/", cp.admin_key()).status, 200);
}

// `inkwired admin set-org --disabled true`: the organisation's keys get 403 (not 401: the key is
// right, the organisation is not allowed), and its daily limit can be overridden per organisation.
TEST(OrganizationState, DisabledOrganisationGets403AndLimitOverridesTheDefault) {
  TestControlPlane cp([](Config& c) {
    c.controlplane.api_key_cache_seconds = 0;
    c.controlplane.daily_create_limit = 100;
  });
  auto client = cp.client();
  auto& access = cp.control_plane().access_repository();
  const auto org = *Uuid::parse(cp.org_id());

  ASSERT_TRUE(*access.update_organization(org, std::nullopt, std::optional<int>(1)));
  EXPECT_EQ(client.post("/api/v1/tunnels/", cp.admin_key(), R"({"tunnel_name":"first-one"})").status, 201);
  auto over = client.post("/api/v1/tunnels/", cp.admin_key(), R"({"tunnel_name":"second-one"})");
  EXPECT_EQ(over.status, 429) << over.body;

  ASSERT_TRUE(*access.update_organization(org, true, std::nullopt));
  auto refused = client.get("/api/v1/tunnels/", cp.admin_key());
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.detail(), "organization is disabled");
  EXPECT_EQ(client.get("/api/v1/tunnels/", cp.other_org_admin_key()).status, 200);

  ASSERT_TRUE(*access.update_organization(org, false, std::optional<std::optional<int>>(std::optional<int>{})));
  EXPECT_EQ(client.get("/api/v1/tunnels/", cp.admin_key()).status, 200);
  EXPECT_EQ(client.post("/api/v1/tunnels/", cp.admin_key(), R"({"tunnel_name":"second-one"})").status, 201);
  EXPECT_FALSE(*access.update_organization(Uuid{}, true, std::nullopt));
}
