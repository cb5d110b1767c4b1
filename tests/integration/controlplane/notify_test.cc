// NOTIFY observed by a listening test connection (issue 2 §2 "Lifecycle", §3): every tunnel change
// is announced once on inkwire_tunnel_events with {"event_id","event","tunnel_id","organization_id",
// "tunnel_name","status"} (written to the tunnel_events outbox in the changing transaction and
// NOTIFYd right after its commit); failed operations announce nothing; API-key revocation is
// announced on inkwire_api_key_events with the key id. Every wait is bounded (ChannelListener, 5 s).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/support/lifecycle_test_helpers.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire;
using namespace inkwire::testing;
using namespace std::chrono_literals;

namespace {

constexpr const char* kTunnelChannel = "inkwire_tunnel_events";
constexpr const char* kApiKeyChannel = "inkwire_api_key_events";

std::string show(const std::vector<boost::json::object>& events) {
  std::string s = "[";
  for (const auto& e : events) s += boost::json::serialize(e) + " ";
  return s + "]";
}

// Exactly one event, with these members (plus the outbox's event_id, which only grows).
void expect_one_event(ChannelListener& listener, const std::string& event, const std::string& tunnel_id,
                      const std::string& org_id, const std::string& name, const std::string& status,
                      std::int64_t* last_event_id = nullptr) {
  auto events = listener.collect_json();
  ASSERT_EQ(events.size(), 1u) << "after " << event << ": " << show(events);
  const auto& e = events[0];
  const auto* event_id = e.if_contains("event_id");
  ASSERT_TRUE(event_id && event_id->is_int64()) << show(events);
  if (last_event_id) {
    EXPECT_GT(event_id->as_int64(), *last_event_id) << "event ids go up in commit order: " << show(events);
    *last_event_id = event_id->as_int64();
  }
  EXPECT_EQ(member_string(e, "event"), event) << show(events);
  EXPECT_EQ(member_string(e, "tunnel_id"), tunnel_id) << show(events);
  EXPECT_EQ(member_string(e, "organization_id"), org_id) << show(events);
  EXPECT_EQ(member_string(e, "tunnel_name"), name) << show(events);
  EXPECT_EQ(member_string(e, "status"), status) << show(events);
  EXPECT_EQ(e.size(), 6u) << "payload members: " << show(events);
}

std::string csr_body(const std::string& host) {
  boost::json::object o;
  o["csr_pem"] = make_ec_csr(host, {host}).csr_pem;
  return boost::json::serialize(o);
}

}  // namespace

TEST(Notify, EveryTunnelChangeIsAnnouncedExactlyOnce) {
  TestControlPlane cp;
  ChannelListener listener(cp.database_url(), kTunnelChannel);
  auto client = cp.client();
  const std::string org = cp.org_id();
  const std::string& key = cp.admin_key();
  EXPECT_TRUE(listener.collect().empty());
  std::int64_t last = 0;

  auto [id, secret] = create_tunnel(client, key, "noisy");
  expect_one_event(listener, "tunnel.created", id, org, "noisy", "active", &last);

  ASSERT_EQ(client.patch(tunnel_path(id), key, R"({"description":"hello","metadata":{"a":1}})").status, 200);
  expect_one_event(listener, "tunnel.updated", id, org, "noisy", "active", &last);

  ASSERT_EQ(client.post(tunnel_path(id, "/rotate-secret"), key, std::nullopt).status, 200);
  expect_one_event(listener, "tunnel.secret_rotated", id, org, "noisy", "active", &last);

  ASSERT_EQ(client.del(tunnel_path(id), key).status, 200);
  expect_one_event(listener, "tunnel.deleted", id, org, "noisy", "delete_pending", &last);

  ASSERT_EQ(client.post(tunnel_path(id, "/rotate-secret"), key, std::nullopt).status, 200);
  expect_one_event(listener, "tunnel.secret_rotated", id, org, "noisy", "delete_pending", &last);

  ASSERT_EQ(client.patch(tunnel_path(id), key, R"({})").status, 200);
  expect_one_event(listener, "tunnel.updated", id, org, "noisy", "delete_pending", &last);

  ASSERT_EQ(client.post(tunnel_path(id, "/restore"), key, std::nullopt).status, 200);
  expect_one_event(listener, "tunnel.restored", id, org, "noisy", "active", &last);

  ASSERT_EQ(client.del(tunnel_path(id), key).status, 200);
  expect_one_event(listener, "tunnel.deleted", id, org, "noisy", "delete_pending", &last);
  ASSERT_EQ(client.del(tunnel_path(id, "/force"), key).status, 200);
  expect_one_event(listener, "tunnel.force_deleted", id, org, "noisy", "deleted", &last);

  auto [pt, pt_secret] = create_tunnel(client, key, "noisy-pt", "passthrough");
  expect_one_event(listener, "tunnel.created", pt, org, "noisy-pt", "awaiting_cert", &last);

  // Another organisation's change carries that organisation's id.
  auto [other, other_secret] = create_tunnel(client, cp.other_org_admin_key(), "noisy-globex");
  auto events = listener.collect_json();
  ASSERT_EQ(events.size(), 1u) << show(events);
  EXPECT_EQ(member_string(events[0], "tunnel_id"), other);
  EXPECT_NE(member_string(events[0], "organization_id"), org);
}

TEST(Notify, SignCsrAnnouncesCertificateIssued) {
  TestControlPlane cp;
  auto client = cp.client();
  const std::string& key = cp.admin_key();
  auto [pt, secret] = create_tunnel(client, key, "signed-pt", "passthrough");
  ChannelListener listener(cp.database_url(), kTunnelChannel);
  // The certificate makes the tunnel active; a renewal is announced again.
  const std::string host = "signed-pt." + cp.config().zone;
  auto signed_cert = client.post(tunnel_path(pt, "/sign-csr"), key, csr_body(host));
  ASSERT_EQ(signed_cert.status, 200) << describe(signed_cert);
  expect_one_event(listener, "tunnel.certificate_issued", pt, cp.org_id(), "signed-pt", "active");
  ASSERT_EQ(client.post(tunnel_path(pt, "/sign-csr"), key, csr_body(host)).status, 200);
  expect_one_event(listener, "tunnel.certificate_issued", pt, cp.org_id(), "signed-pt", "active");
  // A refused CSR (wrong host) announces nothing.
  EXPECT_EQ(client.post(tunnel_path(pt, "/sign-csr"), key, csr_body("other." + cp.config().zone)).status, 422);
  EXPECT_TRUE(listener.collect().empty());
}

TEST(Notify, ReaperAndLateRestoreAnnounceFinalisation) {
  TestControlPlane cp;
  auto client = cp.client();
  const std::string& key = cp.admin_key();
  auto [reaped, s1] = create_tunnel(client, key, "reaped");
  auto [late, s2] = create_tunnel(client, key, "late");
  ASSERT_EQ(client.del(tunnel_path(reaped), key).status, 200);
  cp.clock().advance(1h);
  ASSERT_EQ(client.del(tunnel_path(late), key).status, 200);

  ChannelListener listener(cp.database_url(), kTunnelChannel);
  cp.clock().advance(23h + 30min);  // past "reaped"'s deadline (+24 h) only ("late" is at +25 h)
  ASSERT_EQ(cp.run_reaper_once(), 1);
  expect_one_event(listener, "tunnel.finalized", reaped, cp.org_id(), "reaped", "deleted");
  ASSERT_EQ(cp.run_reaper_once(), 0);
  EXPECT_TRUE(listener.collect().empty()) << "an empty reaper pass announces nothing";

  cp.clock().advance(1h);  // past "late"'s deadline too; the restore finalises it on the spot
  ASSERT_EQ(client.post(tunnel_path(late, "/restore"), key, std::nullopt).status, 404);
  expect_one_event(listener, "tunnel.finalized", late, cp.org_id(), "late", "deleted");
  ASSERT_EQ(cp.run_reaper_once(), 0);
  EXPECT_TRUE(listener.collect().empty());
}

TEST(Notify, ABurstOfConcurrentChangesAnnouncesEachOnce) {
  TestControlPlane cp;
  ChannelListener listener(cp.database_url(), kTunnelChannel);
  HttpClient client(cp.port(), std::chrono::seconds(10));
  constexpr int kCreates = 12;
  std::vector<std::string> ids(kCreates);
  run_together(kCreates, [&](int i) {
    ids[static_cast<std::size_t>(i)] = create_tunnel(client, cp.admin_key(), "burst-" + std::to_string(i)).first;
  });
  auto events = listener.collect_json();
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kCreates)) << show(events);
  std::set<std::string> announced;
  std::set<std::int64_t> event_ids;
  for (const auto& e : events) {
    EXPECT_EQ(member_string(e, "event"), "tunnel.created");
    announced.insert(member_string(e, "tunnel_id"));
    ASSERT_TRUE(e.contains("event_id") && e.at("event_id").is_int64()) << show(events);
    event_ids.insert(e.at("event_id").as_int64());
  }
  EXPECT_EQ(announced, std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_EQ(event_ids.size(), static_cast<std::size_t>(kCreates)) << "event ids are unique: " << show(events);
}

TEST(Notify, EventsOfOneTunnelArriveInTheOrderOfItsChanges) {
  // Concurrent lifecycles on several tunnels: across tunnels events interleave (and event ids,
  // taken at insert, need not arrive in id order), but each tunnel's events arrive in the order
  // its changes committed, which is what a relay or edge applying them relies on.
  TestControlPlane cp;
  HttpClient client(cp.port(), std::chrono::seconds(10));
  constexpr int kTunnels = 6;
  std::vector<std::string> ids(kTunnels);
  for (int i = 0; i < kTunnels; ++i)
    ids[static_cast<std::size_t>(i)] = create_tunnel(client, cp.admin_key(), "ordered-" + std::to_string(i)).first;
  ChannelListener listener(cp.database_url(), kTunnelChannel);
  run_together(kTunnels, [&](int i) {
    const std::string& id = ids[static_cast<std::size_t>(i)];
    for (int round = 0; round < 3; ++round) {
      expect_status(
          client.patch(tunnel_path(id), cp.admin_key(), R"({"description":"r)" + std::to_string(round) + "\"}"), 200,
          "patch");
      expect_status(client.del(tunnel_path(id), cp.admin_key()), 200, "delete");
      expect_status(client.post(tunnel_path(id, "/rotate-secret"), cp.admin_key(), std::nullopt), 200, "rotate");
      expect_status(client.post(tunnel_path(id, "/restore"), cp.admin_key(), std::nullopt), 200, "restore");
    }
  });
  auto events = listener.collect_json();
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kTunnels * 3 * 4)) << show(events);
  const std::vector<std::pair<std::string, std::string>> cycle = {{"tunnel.updated", "active"},
                                                                  {"tunnel.deleted", "delete_pending"},
                                                                  {"tunnel.secret_rotated", "delete_pending"},
                                                                  {"tunnel.restored", "active"}};
  std::map<std::string, std::vector<const boost::json::object*>> per_tunnel;
  for (const auto& e : events) per_tunnel[member_string(e, "tunnel_id")].push_back(&e);
  ASSERT_EQ(per_tunnel.size(), static_cast<std::size_t>(kTunnels));
  for (const auto& [id, list] : per_tunnel) {
    ASSERT_EQ(list.size(), 12u) << id;
    std::int64_t last = 0;
    for (std::size_t k = 0; k < list.size(); ++k) {
      EXPECT_EQ(member_string(*list[k], "event"), cycle[k % 4].first) << id << " event " << k << ": " << show(events);
      EXPECT_EQ(member_string(*list[k], "status"), cycle[k % 4].second) << id << " event " << k;
      const auto event_id = list[k]->at("event_id").as_int64();
      EXPECT_GT(event_id, last) << id << ": one tunnel's event ids grow in delivery order";
      last = event_id;
    }
  }
}

TEST(Notify, OutboxSweepPublishesEventsNobodyPoked) {
  // An event committed by a node that died before publishing it is sent by the periodic sweep.
  TestControlPlane cp;
  ChannelListener listener(cp.database_url(), kTunnelChannel);
  {
    pqxx::connection c(cp.database_url());
    pqxx::work tx(c);
    tx.exec(R"(INSERT INTO tunnel_events (at, channel, payload) VALUES (now(), 'inkwire_tunnel_events',)"
            R"( '{"event":"tunnel.updated","tunnel_id":"00000000-0000-4000-8000-000000000000"}'))");
    tx.commit();
  }
  auto events = listener.collect_json();
  ASSERT_EQ(events.size(), 1u) << show(events);
  EXPECT_EQ(member_string(events[0], "event"), "tunnel.updated");
  EXPECT_TRUE(events[0].contains("event_id"));
}

TEST(Notify, CreatingAnExpiredNameAnnouncesTheFinalisationThenTheCreation) {
  TestControlPlane cp;
  auto client = cp.client();
  auto [old_id, s1] = create_tunnel(client, cp.admin_key(), "reused");
  ASSERT_EQ(client.del(tunnel_path(old_id), cp.admin_key()).status, 200);
  cp.clock().advance(24h + 1s);
  ChannelListener listener(cp.database_url(), kTunnelChannel);
  auto [new_id, s2] = create_tunnel(client, cp.other_org_admin_key(), "reused");
  auto events = listener.collect_json();
  ASSERT_EQ(events.size(), 2u) << show(events);
  EXPECT_EQ(member_string(events[0], "event"), "tunnel.finalized") << show(events);
  EXPECT_EQ(member_string(events[0], "tunnel_id"), old_id);
  EXPECT_EQ(member_string(events[0], "organization_id"), cp.org_id());
  EXPECT_EQ(member_string(events[1], "event"), "tunnel.created") << show(events);
  EXPECT_EQ(member_string(events[1], "tunnel_id"), new_id);
}

TEST(Notify, FailedOperationsAnnounceNothing) {
  TestControlPlane cp;
  auto client = cp.client();
  const std::string& key = cp.admin_key();
  auto [id, secret] = create_tunnel(client, key, "quiet");
  auto [pending, s2] = create_tunnel(client, key, "quiet-pending");
  ASSERT_EQ(client.del(tunnel_path(pending), key).status, 200);
  ChannelListener listener(cp.database_url(), kTunnelChannel);

  struct Case {
    const char* what;
    HttpResult result;
    int want;
  };
  const std::vector<Case> cases = {
      {"create a taken name", client.post(kTunnels, key, create_body("quiet")), 409},
      {"create a name held by a pending tunnel",
       client.post(kTunnels, cp.other_org_admin_key(), create_body("quiet-pending")), 409},
      {"create a reserved name", client.post(kTunnels, key, create_body("admin")), 409},
      {"create with a member key", client.post(kTunnels, cp.member_key(), create_body("quiet-member")), 403},
      {"create a bad name", client.post(kTunnels, key, create_body("Bad--Name")), 422},
      {"restore an active tunnel", client.post(tunnel_path(id, "/restore"), key, std::nullopt), 409},
      {"force-delete an active tunnel", client.del(tunnel_path(id, "/force"), key), 409},
      {"delete a pending tunnel", client.del(tunnel_path(pending), key), 409},
      {"force-delete with a member key", client.del(tunnel_path(pending, "/force"), cp.member_key()), 403},
      {"delete another organisation's tunnel", client.del(tunnel_path(id), cp.other_org_admin_key()), 404},
      {"rotate another organisation's secret",
       client.post(tunnel_path(id, "/rotate-secret"), cp.other_org_admin_key(), std::nullopt), 404},
      {"sign-csr on an edge tunnel",
       client.post(tunnel_path(id, "/sign-csr"), key, csr_body("quiet." + cp.config().zone)), 409},
      {"update with an unknown member", client.patch(tunnel_path(id), key, R"({"tls_mode":"passthrough"})"), 422},
      {"update with a member key", client.patch(tunnel_path(id), cp.member_key(), R"({"description":"x"})"), 403},
      {"get", client.get(tunnel_path(id), key), 200},
      {"list", client.get(kTunnels, cp.member_key()), 200},
  };
  for (const auto& c : cases) EXPECT_EQ(c.result.status, c.want) << c.what << ": " << describe(c.result);
  auto events = listener.collect_json();
  EXPECT_TRUE(events.empty()) << show(events);
}

TEST(Notify, ApiKeyRevocationIsAnnouncedWithTheKeyId) {
  TestControlPlane cp;
  auto client = cp.client();
  ChannelListener keys(cp.database_url(), kApiKeyChannel);
  ChannelListener tunnels(cp.database_url(), kTunnelChannel);

  auto created = client.post("/api/v1/api-keys", cp.admin_key(), R"({"scope":"member","description":"ci"})");
  ASSERT_EQ(created.status, 201) << describe(created);
  const std::string key_id = str(created.json(), "id");
  const std::string new_key = str(created.json(), "api_key");
  ASSERT_EQ(client.get(kTunnels, new_key).status, 200);  // works (and is now cached)
  EXPECT_TRUE(keys.collect().empty()) << "creating a key is not a revocation";

  auto revoked = client.del("/api/v1/api-keys/" + key_id, cp.admin_key());
  ASSERT_EQ(revoked.status, 200) << describe(revoked);
  auto payloads = keys.collect();
  ASSERT_EQ(payloads.size(), 1u);
  EXPECT_EQ(payloads[0], key_id);
  EXPECT_EQ(client.get(kTunnels, new_key).status, 401) << "a revoked key stops working at once";

  // Revoking again, or another organisation's key, fails and announces nothing.
  EXPECT_EQ(client.del("/api/v1/api-keys/" + key_id, cp.admin_key()).status, 404);
  EXPECT_EQ(client.del("/api/v1/api-keys/" + key_id, cp.other_org_admin_key()).status, 404);
  EXPECT_TRUE(keys.collect().empty());
  EXPECT_TRUE(tunnels.collect().empty()) << "key changes are not tunnel events";
}
