// The delete grace window and the reaper, driven by the injected FakeClock (PROTOCOL.md §2.3,
// §2.5.5–§2.5.7, §8 A26, A29, A30; issue 2 §2 "Lifecycle").
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "tests/support/lifecycle_test_helpers.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire;
using namespace inkwire::testing;
using namespace std::chrono_literals;

namespace {

// The value of an unlabelled counter, read from the registry the server registers its metrics in.
double counter_value(prometheus::Registry& registry, const std::string& name) {
  for (const auto& family : registry.Collect())
    if (family.name == name) {
      double total = 0;
      for (const auto& m : family.metric) total += m.counter.value;
      return total;
    }
  throw std::runtime_error("no metric family " + name);
}

bool listed(const HttpClient& client, const std::string& key, const std::string& id) {
  auto r = client.get(kTunnels, key);
  if (r.status != 200) throw std::runtime_error("list: " + describe(r));
  const auto body = r.json();  // (a temporary here would die before the loop)
  for (const auto& t : body.at("tunnels").as_array())
    if (str(t, "id") == id) return true;
  return false;
}

}  // namespace

TEST(Lifecycle, DeleteSetsRestoreDeadlineTwentyFourHoursAfterFakeNow) {
  TestControlPlane cp;
  auto client = cp.client();
  auto [id, secret] = create_tunnel(client, cp.admin_key(), "graceful");
  cp.clock().advance(90min);  // the deadline follows the injected clock, not the wall clock
  const Timestamp deleted_at = cp.clock().now();
  auto del = client.del(tunnel_path(id), cp.admin_key());
  ASSERT_EQ(del.status, 200) << describe(del);
  EXPECT_EQ(str(del.json(), "status"), "delete_pending");
  EXPECT_EQ(format_time(parse_time(str(del.json(), "restore_deadline_at"))), format_time(deleted_at + 24h)) << del.body;

  auto got = client.get(tunnel_path(id), cp.admin_key());
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(str(got.json(), "status"), "delete_pending");
  EXPECT_EQ(format_time(parse_time(str(got.json(), "restore_deadline_at"))), format_time(deleted_at + 24h));
  EXPECT_TRUE(listed(client, cp.admin_key(), id)) << "delete_pending tunnels must be listed (§2.5.1)";
  EXPECT_TRUE(listed(client, cp.member_key(), id));

  // The name stays held while pending, in every organisation.
  auto again = client.post(kTunnels, cp.other_org_admin_key(), create_body("graceful"));
  EXPECT_EQ(again.status, 409) << describe(again);
  EXPECT_EQ(again.detail(), "tunnel_name already taken");
  // A second DELETE is a state conflict (§8 A26).
  auto twice = client.del(tunnel_path(id), cp.admin_key());
  EXPECT_EQ(twice.status, 409) << describe(twice);
  EXPECT_NE(twice.detail().find("delete_pending"), std::string::npos) << twice.detail();
}

TEST(Lifecycle, GraceWindowRestoreBeforeDeadlineThenReaperFinalisesAfterIt) {
  TestControlPlane cp;
  auto client = cp.client();
  auto [id, secret] = create_tunnel(client, cp.admin_key(), "windowed");

  // Just inside the window: the reaper leaves it alone and restore still works.
  ASSERT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 200);
  cp.clock().advance(23h + 59min);
  EXPECT_EQ(cp.run_reaper_once(), 0);
  auto restored = client.post(tunnel_path(id, "/restore"), cp.admin_key(), std::nullopt);
  ASSERT_EQ(restored.status, 200) << describe(restored);
  EXPECT_EQ(str(restored.json(), "status"), "active");
  EXPECT_TRUE(is_null_member(restored.json(), "restore_deadline_at")) << restored.body;
  auto got = client.get(tunnel_path(id), cp.admin_key());
  EXPECT_EQ(str(got.json(), "status"), "active");

  // Delete again: a fresh 24 h window from the new now; past it the reaper finalises the tunnel.
  const Timestamp second_delete = cp.clock().now();
  auto del = client.del(tunnel_path(id), cp.admin_key());
  ASSERT_EQ(del.status, 200);
  EXPECT_EQ(format_time(parse_time(str(del.json(), "restore_deadline_at"))), format_time(second_delete + 24h));
  cp.clock().advance(24h + 1s);
  EXPECT_EQ(cp.run_reaper_once(), 1);
  EXPECT_EQ(cp.run_reaper_once(), 0) << "a finalised tunnel is finalised once";

  auto gone = client.get(tunnel_path(id), cp.admin_key());
  EXPECT_EQ(gone.status, 404) << describe(gone);
  EXPECT_EQ(gone.detail(), "tunnel not found");
  EXPECT_FALSE(listed(client, cp.admin_key(), id));

  // The name is free again: a new tunnel with a new id; the old id stays 404 for everything.
  auto [new_id, new_secret] = create_tunnel(client, cp.admin_key(), "windowed");
  EXPECT_NE(new_id, id);
  EXPECT_NE(new_secret, secret);
  EXPECT_EQ(client.get(tunnel_path(id), cp.admin_key()).status, 404);
  EXPECT_EQ(client.post(tunnel_path(id, "/restore"), cp.admin_key(), std::nullopt).status, 404);
  EXPECT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 404);
  EXPECT_EQ(client.del(tunnel_path(id, "/force"), cp.admin_key()).status, 404);
  EXPECT_EQ(client.post(tunnel_path(id, "/rotate-secret"), cp.admin_key(), std::nullopt).status, 404);
  EXPECT_EQ(client.patch(tunnel_path(id), cp.admin_key(), R"({"description":"x"})").status, 404);
  auto fresh = client.get(tunnel_path(new_id), cp.admin_key());
  ASSERT_EQ(fresh.status, 200);
  EXPECT_EQ(str(fresh.json(), "status"), "active");
  EXPECT_TRUE(listed(client, cp.admin_key(), new_id));
}

TEST(Lifecycle, RestoreAfterDeadlineBeforeReaperRanIs404AndFreesTheName) {
  TestControlPlane cp;
  auto client = cp.client();
  auto [id, secret] = create_tunnel(client, cp.admin_key(), "too-late");
  ASSERT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 200);
  cp.clock().advance(24h + 1s);
  // No reaper pass yet: the restore itself sees the window has ended and finalises the tunnel.
  auto restore = client.post(tunnel_path(id, "/restore"), cp.admin_key(), std::nullopt);
  EXPECT_EQ(restore.status, 404) << describe(restore);
  EXPECT_EQ(restore.detail(), "tunnel not found");
  EXPECT_EQ(client.get(tunnel_path(id), cp.admin_key()).status, 404);
  EXPECT_FALSE(listed(client, cp.admin_key(), id));
  EXPECT_EQ(cp.run_reaper_once(), 0) << "already finalised by the restore";
  auto [new_id, new_secret] = create_tunnel(client, cp.other_org_admin_key(), "too-late");
  EXPECT_NE(new_id, id);
}

TEST(Lifecycle, PastTheDeadlineTheTunnelIsGoneEvenBeforeTheReaperRuns) {
  // "When the window ends the server finalises it" (§2.3): the reaper runs only every
  // reaper_interval_seconds, but reads and the name must not wait for it.
  TestControlPlane cp;
  auto client = cp.client();
  auto [id, secret] = create_tunnel(client, cp.admin_key(), "expired");
  ASSERT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 200);
  cp.clock().advance(24h + 1s);
  auto got = client.get(tunnel_path(id), cp.admin_key());
  EXPECT_EQ(got.status, 404) << describe(got);
  EXPECT_FALSE(listed(client, cp.admin_key(), id));
  EXPECT_EQ(client.post(tunnel_path(id, "/rotate-secret"), cp.admin_key(), std::nullopt).status, 404);
  EXPECT_EQ(client.patch(tunnel_path(id), cp.admin_key(), R"({"description":"late"})").status, 404);
  EXPECT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 404);
  // The name is free for anyone, at once.
  auto again = client.post(kTunnels, cp.other_org_admin_key(), create_body("expired"));
  EXPECT_EQ(again.status, 201) << describe(again);
  EXPECT_EQ(cp.run_reaper_once(), 0) << "the create finalised the expired holder";
}

TEST(Lifecycle, ForceDeleteAfterTheDeadlineIs404LikeEveryOtherCall) {
  // Past its window a tunnel "must already behave as removed" (pg_tunnel_repository.cc, LIVE):
  // GET says 404, so force-delete must not answer 200 with the tunnel as if it still existed.
  TestControlPlane cp;
  auto client = cp.client();
  auto [id, secret] = create_tunnel(client, cp.admin_key(), "expired-forced");
  ASSERT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 200);
  cp.clock().advance(24h + 1s);
  ASSERT_EQ(client.get(tunnel_path(id), cp.admin_key()).status, 404);
  auto forced = client.del(tunnel_path(id, "/force"), cp.admin_key());
  EXPECT_EQ(forced.status, 404) << "GET says the tunnel is gone, force-delete answered " << describe(forced);
}

TEST(Lifecycle, RestoreExactlyAtTheDeadlineIsTooLate) {
  // restore_deadline_at is "the end of the grace window": at that instant the window is over,
  // and the reaper (which finalises deadline <= now) and restore must agree on it.
  TestControlPlane cp;
  auto client = cp.client();
  auto [id, secret] = create_tunnel(client, cp.admin_key(), "on-the-dot");
  auto [id2, secret2] = create_tunnel(client, cp.admin_key(), "on-the-dot-2");
  ASSERT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 200);
  ASSERT_EQ(client.del(tunnel_path(id2), cp.admin_key()).status, 200);
  cp.clock().advance(24h - 1us);
  EXPECT_EQ(cp.run_reaper_once(), 0);
  EXPECT_EQ(client.post(tunnel_path(id, "/restore"), cp.admin_key(), std::nullopt).status, 200);
  cp.clock().advance(1us);
  EXPECT_EQ(client.post(tunnel_path(id2, "/restore"), cp.admin_key(), std::nullopt).status, 404);
  EXPECT_EQ(cp.run_reaper_once(), 0);
}

TEST(Lifecycle, ConfiguredGraceWindowOfSixtySeconds) {
  TestControlPlane cp([](Config& c) { c.controlplane.delete_grace_seconds = 60; });
  auto client = cp.client();
  auto [id, secret] = create_tunnel(client, cp.admin_key(), "short-grace");
  const Timestamp now = cp.clock().now();
  auto del = client.del(tunnel_path(id), cp.admin_key());
  ASSERT_EQ(del.status, 200);
  EXPECT_EQ(format_time(parse_time(str(del.json(), "restore_deadline_at"))), format_time(now + 60s)) << del.body;
  cp.clock().advance(59s);
  EXPECT_EQ(cp.run_reaper_once(), 0);
  EXPECT_EQ(client.get(tunnel_path(id), cp.admin_key()).status, 200);
  cp.clock().advance(2s);
  EXPECT_EQ(cp.run_reaper_once(), 1);
  EXPECT_EQ(client.get(tunnel_path(id), cp.admin_key()).status, 404);
}

TEST(Lifecycle, ReaperFinalisesOnlyExpiredTunnelsOfEveryOrganisation) {
  TestControlPlane cp;
  auto client = cp.client();
  auto [active_id, s1] = create_tunnel(client, cp.admin_key(), "stays-active");
  auto [awaiting_id, s2] = create_tunnel(client, cp.admin_key(), "stays-awaiting", "passthrough");
  auto [old_a, s3] = create_tunnel(client, cp.admin_key(), "old-pending-a");
  auto [old_b, s4] = create_tunnel(client, cp.other_org_admin_key(), "old-pending-b");
  auto [old_c, s5] = create_tunnel(client, cp.admin_key(), "old-pending-c", "passthrough");
  auto [young, s6] = create_tunnel(client, cp.admin_key(), "young-pending");
  ASSERT_EQ(client.del(tunnel_path(old_a), cp.admin_key()).status, 200);
  ASSERT_EQ(client.del(tunnel_path(old_b), cp.other_org_admin_key()).status, 200);
  ASSERT_EQ(client.del(tunnel_path(old_c), cp.admin_key()).status, 200);
  cp.clock().advance(12h);
  ASSERT_EQ(client.del(tunnel_path(young), cp.admin_key()).status, 200);
  cp.clock().advance(12h + 1s);

  EXPECT_EQ(cp.run_reaper_once(), 3);
  EXPECT_EQ(client.get(tunnel_path(old_a), cp.admin_key()).status, 404);
  EXPECT_EQ(client.get(tunnel_path(old_b), cp.other_org_admin_key()).status, 404);
  EXPECT_EQ(client.get(tunnel_path(old_c), cp.admin_key()).status, 404);
  EXPECT_EQ(str(client.get(tunnel_path(active_id), cp.admin_key()).json(), "status"), "active");
  EXPECT_EQ(str(client.get(tunnel_path(awaiting_id), cp.admin_key()).json(), "status"), "awaiting_cert");
  EXPECT_EQ(str(client.get(tunnel_path(young), cp.admin_key()).json(), "status"), "delete_pending");

  cp.clock().advance(12h);
  EXPECT_EQ(cp.run_reaper_once(), 1);
  EXPECT_EQ(client.get(tunnel_path(young), cp.admin_key()).status, 404);
  for (const auto* name : {"old-pending-a", "old-pending-b", "old-pending-c", "young-pending"})
    create_tunnel(client, cp.other_org_admin_key(), name);
}

TEST(Lifecycle, ReaperMetricCountsFinalisedTunnels) {
  TestControlPlane cp;
  auto client = cp.client();
  // The pass the server runs at start is queued on its io_context; one pass of ours runs after it,
  // so the baseline below no longer moves on its own.
  EXPECT_EQ(cp.run_reaper_once(), 0);
  const double before = counter_value(cp.registry(), "inkwire_reaper_finalized_total");
  const double runs_before = counter_value(cp.registry(), "inkwire_reaper_runs_total");
  for (int i = 0; i < 3; ++i) {
    auto [id, secret] = create_tunnel(client, cp.admin_key(), "counted-" + std::to_string(i));
    ASSERT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 200);
  }
  cp.clock().advance(25h);
  EXPECT_EQ(cp.run_reaper_once(), 3);
  EXPECT_EQ(cp.run_reaper_once(), 0);
  EXPECT_EQ(counter_value(cp.registry(), "inkwire_reaper_finalized_total") - before, 3.0);
  EXPECT_EQ(counter_value(cp.registry(), "inkwire_reaper_runs_total") - runs_before, 2.0);

  // The same numbers on the API listener's /metrics (Prometheus text format).
  auto metrics = client.get("/metrics", "");
  ASSERT_EQ(metrics.status, 200) << describe(metrics);
  EXPECT_EQ(metric_value(metrics.body, "inkwire_reaper_finalized_total"), before + 3.0) << metrics.body;
  EXPECT_EQ(metric_value(metrics.body, "inkwire_reaper_runs_total"), runs_before + 2.0);
}

TEST(Lifecycle, ForceDeleteFinalisesAtOnceAndFreesTheName) {
  TestControlPlane cp;
  auto client = cp.client();
  auto [id, secret] = create_tunnel(client, cp.admin_key(), "forceful");
  // Not pending → 409 (A26); a member key → 403 (A33).
  auto early = client.del(tunnel_path(id, "/force"), cp.admin_key());
  EXPECT_EQ(early.status, 409) << describe(early);
  ASSERT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 200);
  EXPECT_EQ(client.del(tunnel_path(id, "/force"), cp.member_key()).status, 403);
  EXPECT_EQ(client.del(tunnel_path(id, "/force"), cp.other_org_admin_key()).status, 404);

  auto forced = client.del(tunnel_path(id, "/force"), cp.admin_key());
  ASSERT_EQ(forced.status, 200) << describe(forced);
  EXPECT_EQ(str(forced.json(), "id"), id);
  EXPECT_EQ(str(forced.json(), "status"), "deleted") << "recommended status at finalisation (§2.5.7)";
  EXPECT_EQ(client.get(tunnel_path(id), cp.admin_key()).status, 404);
  EXPECT_FALSE(listed(client, cp.admin_key(), id));
  EXPECT_EQ(client.del(tunnel_path(id, "/force"), cp.admin_key()).status, 404);
  EXPECT_EQ(client.post(tunnel_path(id, "/restore"), cp.admin_key(), std::nullopt).status, 404);
  auto [new_id, new_secret] = create_tunnel(client, cp.admin_key(), "forceful");
  EXPECT_NE(new_id, id);
  cp.clock().advance(25h);
  EXPECT_EQ(cp.run_reaper_once(), 0) << "force-deleted tunnels are not finalised twice";
  EXPECT_EQ(client.get(tunnel_path(new_id), cp.admin_key()).status, 200);
}

TEST(Lifecycle, RestoreConflictAndPassthroughWithoutCertificateRestoresToAwaitingCert) {
  TestControlPlane cp;
  auto client = cp.client();
  // Restore of a tunnel that is not pending → 409 with the documented text.
  auto [edge_id, s1] = create_tunnel(client, cp.admin_key(), "not-pending");
  auto conflict = client.post(tunnel_path(edge_id, "/restore"), cp.admin_key(), std::nullopt);
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.detail(), "tunnel is not in delete_pending state");

  // A29: a passthrough tunnel without a certificate comes back as awaiting_cert.
  auto [pt_id, s2] = create_tunnel(client, cp.admin_key(), "pt-no-cert", "passthrough");
  ASSERT_EQ(client.del(tunnel_path(pt_id), cp.admin_key()).status, 200);
  auto r1 = client.post(tunnel_path(pt_id, "/restore"), cp.admin_key(), std::nullopt);
  ASSERT_EQ(r1.status, 200) << describe(r1);
  EXPECT_EQ(str(r1.json(), "status"), "awaiting_cert");
  EXPECT_TRUE(is_null_member(r1.json(), "restore_deadline_at"));
  EXPECT_TRUE(is_null_member(r1.json(), "cert_pem"));
}

TEST(Lifecycle, PassthroughWithACertificateRestoresToActive) {
  TestControlPlane cp;
  auto client = cp.client();
  auto [pt_id, secret] = create_tunnel(client, cp.admin_key(), "pt-cert", "passthrough");
  const std::string host = "pt-cert." + cp.config().zone;
  boost::json::object body;
  body["csr_pem"] = make_ec_csr(host, {host}).csr_pem;
  auto signed_cert = client.post(tunnel_path(pt_id, "/sign-csr"), cp.admin_key(), boost::json::serialize(body));
  ASSERT_EQ(signed_cert.status, 200) << describe(signed_cert);
  ASSERT_EQ(client.del(tunnel_path(pt_id), cp.admin_key()).status, 200);
  // sign-csr while pending is a state conflict whose text the SDK must not read as a mode mismatch.
  auto pending_sign = client.post(tunnel_path(pt_id, "/sign-csr"), cp.admin_key(), boost::json::serialize(body));
  EXPECT_EQ(pending_sign.status, 409);
  std::string lower = pending_sign.detail();
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"edge", "tls_mode", "passthrough"})
    EXPECT_EQ(lower.find(word), std::string::npos) << pending_sign.detail();
  // A29: a certificate on record → active.
  auto restored = client.post(tunnel_path(pt_id, "/restore"), cp.admin_key(), std::nullopt);
  ASSERT_EQ(restored.status, 200) << describe(restored);
  EXPECT_EQ(str(restored.json(), "status"), "active");
  EXPECT_EQ(str(restored.json(), "cert_pem"), str(signed_cert.json(), "cert_pem"));
}
