// Races over real HTTP against a real PostgreSQL: simultaneous creates of one name, delete racing
// restore, force-delete racing restore, concurrent secret rotation (issue 2 §3, PROTOCOL.md §2.5,
// §8 A26). Threads are released together by a latch; every request is bounded by the client's
// timeout and every wait by run_together's limit.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <map>
#include <set>

#include "tests/support/lifecycle_test_helpers.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire::testing;

namespace {

HttpClient bounded_client(const TestControlPlane& cp) { return HttpClient(cp.port(), std::chrono::seconds(10)); }

// n threads create the same name at once: exactly one 201, every other answer 409 with the
// SDK's "already taken" detail, and the list holds the name once.
void race_same_name(int n, const std::string& name) {
  TestControlPlane cp;
  auto client = bounded_client(cp);
  std::vector<HttpResult> results(static_cast<std::size_t>(n));
  run_together(n, [&](int i) {
    results[static_cast<std::size_t>(i)] = client.post(kTunnels, cp.admin_key(), create_body(name));
  });

  int created = 0;
  std::string winner_id;
  for (const auto& r : results) {
    if (r.status == 201) {
      ++created;
      winner_id = str(r.json().at("tunnel"), "id");
    } else {
      EXPECT_EQ(r.status, 409) << describe(r);
      EXPECT_EQ(r.detail(), "tunnel_name already taken") << describe(r);
    }
  }
  EXPECT_EQ(created, 1) << n << " simultaneous creates of '" << name << "'";

  auto listed = client.get(kTunnels, cp.admin_key());
  ASSERT_EQ(listed.status, 200) << describe(listed);
  int with_name = 0;
  const auto body = listed.json();  // (a temporary here would die before the loop)
  for (const auto& t : body.at("tunnels").as_array())
    if (str(t, "tunnel_name") == name) {
      ++with_name;
      EXPECT_EQ(str(t, "id"), winner_id);
    }
  EXPECT_EQ(with_name, 1);
}

// The consistent outcomes of the delete/restore races (PROTOCOL.md §2.3).
void expect_consistent(const TunnelState& s, const std::string& context) {
  ASSERT_EQ(s.http_status, 200) << context << ": the tunnel vanished: " << s.body;
  if (s.status == "delete_pending") {
    EXPECT_TRUE(s.has_deadline) << context << ": delete_pending without restore_deadline_at: " << s.body;
  } else {
    EXPECT_EQ(s.status, "active") << context << ": " << s.body;
    EXPECT_FALSE(s.has_deadline) << context << ": active with a restore_deadline_at: " << s.body;
  }
}

}  // namespace

TEST(Concurrency, TwoSimultaneousCreatesOfOneNameExactlyOneWins) { race_same_name(2, "contested"); }

TEST(Concurrency, EightSimultaneousCreatesOfOneNameExactlyOneWins) { race_same_name(8, "very-contested"); }

TEST(Concurrency, OneNameAcrossOrganisationsExactlyOneWins) {
  // Names are global DNS labels: two organisations racing for one name get one winner too.
  TestControlPlane cp;
  auto client = bounded_client(cp);
  const std::array<std::string, 2> keys = {cp.admin_key(), cp.other_org_admin_key()};
  std::array<HttpResult, 2> results;
  for (int round = 0; round < 10; ++round) {
    const std::string name = "global-" + std::to_string(round);
    run_together(2, [&](int i) {
      results[static_cast<std::size_t>(i)] =
          client.post(kTunnels, keys[static_cast<std::size_t>(i)], create_body(name));
    });
    const int wins = (results[0].status == 201) + (results[1].status == 201);
    EXPECT_EQ(wins, 1) << name << ": " << describe(results[0]) << " / " << describe(results[1]);
    for (const auto& r : results)
      if (r.status != 201) {
        EXPECT_EQ(r.status, 409) << describe(r);
      }
  }
}

TEST(Concurrency, ManyConcurrentCreatesOfDistinctNamesAllSucceed) {
  TestControlPlane cp;
  auto client = bounded_client(cp);
  constexpr int kThreads = 8, kPerThread = 5;
  std::vector<std::vector<HttpResult>> results(kThreads);
  run_together(kThreads, [&](int i) {
    for (int j = 0; j < kPerThread; ++j)
      results[static_cast<std::size_t>(i)].push_back(client.post(
          kTunnels, cp.admin_key(), create_body("distinct-" + std::to_string(i) + "-" + std::to_string(j))));
  });
  std::set<std::string> ids, secrets;
  for (const auto& per_thread : results)
    for (const auto& r : per_thread) {
      ASSERT_EQ(r.status, 201) << describe(r);
      ids.insert(str(r.json().at("tunnel"), "id"));
      secrets.insert(str(r.json(), "connect_secret"));
    }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(secrets.size(), static_cast<std::size_t>(kThreads * kPerThread));
  auto listed = client.get(kTunnels, cp.admin_key());
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.json().at("tunnels").as_array().size(), static_cast<std::size_t>(kThreads * kPerThread));
}

TEST(Concurrency, DeleteRacingRestoreEndsConsistent) {
  TestControlPlane cp;
  auto client = bounded_client(cp);
  std::string id = create_tunnel(client, cp.admin_key(), "racer").first;
  constexpr int kRounds = 150;
  std::map<std::string, int> outcomes;  // "DELETE/restore -> final" counts, for the report
  std::vector<std::string> anomalies;
  for (int round = 0; round < kRounds && anomalies.size() < 5; ++round) {
    // Even rounds start active (the delete should land, the restore may come before or after it);
    // odd rounds start delete_pending (the restore should land, the delete before or after it).
    const bool from_pending = round % 2 == 1;
    const auto before = get_state(client, cp.admin_key(), id);
    ASSERT_EQ(before.http_status, 200) << "round " << round << ": " << before.body;
    if (from_pending && before.status == "active") {
      ASSERT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 200);
    } else if (!from_pending && before.status == "delete_pending") {
      ASSERT_EQ(client.post(tunnel_path(id, "/restore"), cp.admin_key(), std::nullopt).status, 200);
    }
    std::array<HttpResult, 2> r;
    run_together(2, [&](int i) {
      r[static_cast<std::size_t>(i)] = i == 0 ? client.del(tunnel_path(id), cp.admin_key())
                                              : client.post(tunnel_path(id, "/restore"), cp.admin_key(), std::nullopt);
    });
    const auto after = get_state(client, cp.admin_key(), id);
    const std::string final_state = after.http_status == 200 ? after.status : std::to_string(after.http_status);
    outcomes[std::to_string(r[0].status) + "/" + std::to_string(r[1].status) + " -> " + final_state]++;
    const std::string context = "round " + std::to_string(round) +
                                (from_pending ? " (from delete_pending)" : " (from active)") + ": DELETE " +
                                describe(r[0]) + " | restore " + describe(r[1]) + " | final GET " +
                                std::to_string(after.http_status) + " " + after.body;
    std::vector<std::string> wrong;
    for (const auto& x : r)
      if (x.status != 200 && x.status != 409) wrong.push_back("a response other than 200/409");
    if (after.http_status != 200) {
      wrong.push_back("the tunnel is gone");
    } else if (after.status == "delete_pending") {
      if (!after.has_deadline) wrong.push_back("delete_pending without restore_deadline_at");
    } else if (after.status != "active" || after.has_deadline) {
      wrong.push_back("not (active, null restore_deadline_at)");
    }
    // The final state agrees with the answers.
    if (r[0].status == 200 && r[1].status == 409 && final_state != "delete_pending")
      wrong.push_back("only the delete landed but the final state is not delete_pending");
    if (r[0].status == 409 && r[1].status == 200 && final_state != "active")
      wrong.push_back("only the restore landed but the final state is not active");
    if (r[0].status == 409 && r[1].status == 409) wrong.push_back("both refused");
    if (r[0].status == 200 &&
        (str(r[0].json(), "status") != "delete_pending" || is_null_member(r[0].json(), "restore_deadline_at")))
      wrong.push_back("the DELETE answer is not delete_pending with a deadline");
    if (r[1].status == 200 &&
        (str(r[1].json(), "status") != "active" || !is_null_member(r[1].json(), "restore_deadline_at")))
      wrong.push_back("the restore answer is not active with a null deadline");
    if (!wrong.empty()) {
      std::string why;
      for (const auto& w : wrong) why += (why.empty() ? "" : "; ") + w;
      anomalies.push_back(context + " => " + why);
      // Keep racing on a fresh tunnel if this one is gone.
      if (after.http_status != 200) id = create_tunnel(client, cp.admin_key(), "racer-" + std::to_string(round)).first;
    }
  }
  std::string histogram;
  for (const auto& [k, v] : outcomes) histogram += " [" + k + "] x" + std::to_string(v) + "\n";
  for (const auto& a : anomalies) ADD_FAILURE() << a;
  EXPECT_TRUE(anomalies.empty()) << "outcomes (DELETE/restore -> final GET):\n" << histogram;
  RecordProperty("outcomes", histogram);
}

TEST(Concurrency, ForceDeleteRacingRestoreEndsConsistent) {
  TestControlPlane cp;
  auto client = bounded_client(cp);
  int force_won = 0, restore_won = 0;
  for (int round = 0; round < 40; ++round) {
    const std::string name = "forced-" + std::to_string(round);
    const std::string id = create_tunnel(client, cp.admin_key(), name).first;
    ASSERT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 200);
    std::array<HttpResult, 2> r;
    run_together(2, [&](int i) {
      r[static_cast<std::size_t>(i)] = i == 0 ? client.del(tunnel_path(id, "/force"), cp.admin_key())
                                              : client.post(tunnel_path(id, "/restore"), cp.admin_key(), std::nullopt);
    });
    const std::string context =
        "round " + std::to_string(round) + ": force " + describe(r[0]) + " | restore " + describe(r[1]);
    const auto after = get_state(client, cp.admin_key(), id);
    if (r[0].status == 200) {
      // Force-delete first: the restore found nothing to restore, the tunnel is gone, the name free.
      ++force_won;
      EXPECT_EQ(r[1].status, 404) << context;
      EXPECT_EQ(after.http_status, 404) << context << " final " << after.body;
      EXPECT_EQ(client.post(kTunnels, cp.admin_key(), create_body(name)).status, 201) << context << ": name not freed";
    } else {
      // Restore first: force-delete refuses a tunnel that is no longer pending.
      ++restore_won;
      EXPECT_EQ(r[0].status, 409) << context;
      EXPECT_EQ(r[1].status, 200) << context;
      expect_consistent(after, context);
      EXPECT_EQ(after.status, "active") << context;
    }
    if (::testing::Test::HasFailure()) break;
  }
  RecordProperty("force_won", force_won);
  RecordProperty("restore_won", restore_won);
}

TEST(Concurrency, ConcurrentRotateSecretCallsAllSucceedWithDistinctSecrets) {
  TestControlPlane cp;
  auto client = bounded_client(cp);
  const auto [id, original] = create_tunnel(client, cp.admin_key(), "rotating");
  const std::string tunnel = id;
  constexpr int kThreads = 8;
  std::vector<HttpResult> results(kThreads);
  run_together(kThreads, [&](int i) {
    results[static_cast<std::size_t>(i)] =
        client.post(tunnel_path(tunnel, "/rotate-secret"), cp.admin_key(), std::nullopt);
  });
  std::set<std::string> secrets = {original};
  for (const auto& r : results) {
    ASSERT_EQ(r.status, 200) << describe(r);
    const auto s = str(r.json(), "connect_secret");
    EXPECT_TRUE(s.starts_with("tsec_")) << s;
    secrets.insert(s);
  }
  EXPECT_EQ(secrets.size(), static_cast<std::size_t>(kThreads + 1)) << "secrets repeated";
  auto after = get_state(client, cp.admin_key(), id);
  EXPECT_EQ(after.status, "active");
}
