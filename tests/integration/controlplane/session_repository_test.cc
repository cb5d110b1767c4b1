#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "common/encoding.h"
#include "common/secret_hash.h"
#include "controlplane/repo/pg/pg_session_repository.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire;
using namespace inkwire::controlplane;
using namespace inkwire::testing;

namespace {

// Runs one repository coroutine to completion on a private io_context (bounded).
// (Wrapped in optional because use_future needs a default-constructible result.)
template <typename T>
T run(boost::asio::awaitable<T> op) {
  boost::asio::io_context io;
  auto wrapped = [&]() -> boost::asio::awaitable<std::optional<T>> { co_return co_await std::move(op); };
  auto f = boost::asio::co_spawn(io, wrapped(), boost::asio::use_future);
  io.run_for(std::chrono::seconds(10));
  if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) throw std::runtime_error("timed out");
  return *f.get();
}

}  // namespace

// The relay's hello lookup and connection facts (§4.3, §8 A1, A34), against tunnels made by the API.
TEST(SessionRepository, HelloLookupAndConnectionFacts) {
  TestControlPlane cp;
  auto client = cp.client();
  // Registered on the running pool after the control plane's own statements.
  PgSessionRepository sessions(cp.control_plane().pool());

  auto created = client.post("/api/v1/tunnels/", cp.admin_key(), R"({"tunnel_name":"hello-one"})");
  ASSERT_EQ(created.status, 201) << created.body;
  const auto id = *Uuid::parse(std::string(created.json().at("tunnel").at("id").as_string()));
  const std::string secret(created.json().at("connect_secret").as_string());

  auto found = run(sessions.lookup_for_hello(id, cp.clock().now()));
  ASSERT_TRUE(found.has_value());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->status, TunnelStatus::active);
  EXPECT_EQ((*found)->tls_mode, TlsMode::edge);
  EXPECT_EQ((*found)->secret_sha256, hex_encode(sha256(secret)));
  EXPECT_FALSE((*found)->organization_disabled);

  ASSERT_TRUE(run(sessions.mark_connected(id, "192.0.2.7", cp.clock().now())).has_value());
  auto got = client.get("/api/v1/tunnels/" + id.to_string(), cp.admin_key()).json().as_object();
  EXPECT_TRUE(got.at("currently_connected").as_bool());
  EXPECT_EQ(got.at("last_connected_ip_addr").as_string(), "192.0.2.7");
  EXPECT_FALSE(got.at("last_connected_at").is_null());
  ASSERT_TRUE(run(sessions.mark_disconnected(id)).has_value());
  got = client.get("/api/v1/tunnels/" + id.to_string(), cp.admin_key()).json().as_object();
  EXPECT_FALSE(got.at("currently_connected").as_bool());
  EXPECT_EQ(got.at("last_connected_ip_addr").as_string(), "192.0.2.7");  // the last one stays on record

  // delete_pending is reported (the relay answers 409 so the agent retries), past the window: gone.
  ASSERT_EQ(client.del("/api/v1/tunnels/" + id.to_string(), cp.admin_key()).status, 200);
  auto pending = run(sessions.lookup_for_hello(id, cp.clock().now()));
  ASSERT_TRUE(pending.has_value() && pending->has_value());
  EXPECT_EQ((*pending)->status, TunnelStatus::delete_pending);
  cp.clock().advance(std::chrono::hours(25));
  auto expired = run(sessions.lookup_for_hello(id, cp.clock().now()));
  ASSERT_TRUE(expired.has_value());
  EXPECT_FALSE(expired->has_value());
  auto unknown = run(sessions.lookup_for_hello(Uuid{}, cp.clock().now()));
  ASSERT_TRUE(unknown.has_value());
  EXPECT_FALSE(unknown->has_value());
}
