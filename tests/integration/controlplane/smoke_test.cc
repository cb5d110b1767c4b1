#include <gtest/gtest.h>

#include "tests/support/test_control_plane.h"

using namespace inkwire::testing;

TEST(ControlPlaneSmoke, CreateGetListOverRealHttp) {
  TestControlPlane cp;
  auto client = cp.client();
  auto created = client.post("/api/v1/tunnels/", cp.admin_key(), R"({"tunnel_name":"my-agent","tls_mode":"edge"})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto id = std::string(created.json().at("tunnel").at("id").as_string());
  auto got = client.get("/api/v1/tunnels/" + id, cp.admin_key());
  EXPECT_EQ(got.status, 200);
  auto listed = client.get("/api/v1/tunnels/", cp.member_key());
  EXPECT_EQ(listed.status, 200);
  EXPECT_EQ(listed.json().at("tunnels").as_array().size(), 1u);
}
