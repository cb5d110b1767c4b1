// PROTOCOL.md §2.9 replayed request by request as the official SDK sends it (headers of §2.1:
// X-API-Key, Accept: application/json, Content-Type only with a JSON body, bodiless POSTs with
// neither body nor Content-Type), against the real server over loopback. Every response of every
// sequence is also checked for redirects and for 2xx answers without a JSON body.
#include <gtest/gtest.h>

#include "common/uuid.h"
#include "tests/support/lifecycle_test_helpers.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire;
using namespace inkwire::testing;
using namespace std::chrono_literals;

namespace {

// Step 4 of connect(): the whole list, searched by name (nullopt: no such tunnel).
std::optional<boost::json::value> find_by_name(SdkClient& sdk, const std::string& name) {
  auto r = sdk.get(kTunnels);
  if (r.status != 200) throw std::runtime_error("list: " + describe(r));
  const auto body = r.json();  // (a temporary here would die before the loop)
  for (const auto& t : body.at("tunnels").as_array())
    if (str(t, "tunnel_name") == name) return t;
  return std::nullopt;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// What the Python SDK checks on a Tunnel it received (§2.2): a canonical UUID id, the required
// fields, and non-empty public_host and zone.
void expect_sdk_tunnel(const boost::json::value& t, const std::string& name, const std::string& tls_mode) {
  ASSERT_TRUE(t.is_object()) << boost::json::serialize(t);
  const auto id = str(t, "id");
  EXPECT_TRUE(Uuid::parse(id).has_value() && Uuid::parse(id)->to_string() == id) << "id " << id;
  EXPECT_EQ(str(t, "tunnel_name"), name);
  EXPECT_EQ(str(t, "tls_mode"), tls_mode);
  EXPECT_FALSE(str(t, "organization_id").empty());
  EXPECT_FALSE(str(t, "public_host").empty());
  EXPECT_FALSE(str(t, "zone").empty());
  EXPECT_TRUE(parse_rfc3339(str(t, "created_at")).has_value());
  EXPECT_TRUE(parse_rfc3339(str(t, "updated_at")).has_value());
}

}  // namespace

TEST(ConnectSequence, FirstConnectOfAnEdgeTunnelThenReconnectWithTheStoredId) {
  TestControlPlane cp;
  SdkClient sdk(cp.client(), cp.admin_key());

  // (a) No state file: list (no match), then create with tls_mode edge and no description.
  EXPECT_FALSE(find_by_name(sdk, "my-agent").has_value());
  auto created = sdk.post_json(kTunnels, R"({"tunnel_name":"my-agent","tls_mode":"edge"})");
  ASSERT_TRUE(created.status == 200 || created.status == 201) << describe(created);
  EXPECT_EQ(created.status, 201) << "A25";
  auto body = created.json();
  const std::string secret = str(body, "connect_secret");
  EXPECT_TRUE(secret.starts_with("tsec_") && secret.size() == 5 + 43) << secret;
  for (char c : secret) EXPECT_TRUE(c > 0x20 && c < 0x7f) << "secret must be visible ASCII (an HTTP/2 header value)";
  const auto& tunnel = body.at("tunnel");
  expect_sdk_tunnel(tunnel, "my-agent", "edge");
  const std::string id = str(tunnel, "id");
  EXPECT_EQ(str(tunnel, "status"), "active");
  EXPECT_EQ(str(tunnel, "public_host"), "my-agent." + cp.config().zone);
  EXPECT_TRUE(is_null_member(tunnel, "restore_deadline_at"));

  // (b) Reconnect with the stored tunnel_id: GET /tunnels/{id} (no trailing slash) → active.
  auto again = sdk.get(tunnel_path(id));
  ASSERT_EQ(again.status, 200) << describe(again);
  expect_sdk_tunnel(again.json(), "my-agent", "edge");
  EXPECT_EQ(str(again.json(), "status"), "active");

  // Reconnect without a state file: the list now finds it by name; no second create.
  auto found = find_by_name(sdk, "my-agent");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(str(*found, "id"), id);
  EXPECT_EQ(str(*found, "status"), "active");

  // Both list forms answer the same, without a redirect (§2.1, A32).
  auto with_slash = sdk.get("/api/v1/tunnels/");
  auto without_slash = sdk.get("/api/v1/tunnels");
  EXPECT_EQ(with_slash.status, 200);
  EXPECT_EQ(without_slash.status, 200);
  EXPECT_EQ(with_slash.json(), without_slash.json());
  auto create_no_slash = sdk.post_json("/api/v1/tunnels", R"({"tunnel_name":"no-slash","tls_mode":"edge"})");
  EXPECT_EQ(create_no_slash.status, 201) << describe(create_no_slash);
  sdk.check_all_responses();
}

TEST(ConnectSequence, StaleStateFileWithAForceDeletedIdIsTunnelRemoved) {
  TestControlPlane cp;
  SdkClient sdk(cp.client(), cp.admin_key());
  auto created = sdk.post_json(kTunnels, R"({"tunnel_name":"stale-agent","tls_mode":"edge"})");
  ASSERT_EQ(created.status, 201);
  const std::string id = str(created.json().at("tunnel"), "id");
  ASSERT_EQ(sdk.del(tunnel_path(id)).status, 200);
  ASSERT_EQ(sdk.del(tunnel_path(id, "/force")).status, 200);

  // (c) Step 3 with the stored id: 404 → TunnelRemoved (fatal; the SDK does not fall back to create).
  auto got = sdk.get(tunnel_path(id));
  EXPECT_EQ(got.status, 404) << describe(got);
  EXPECT_EQ(got.detail(), "tunnel not found");
  EXPECT_FALSE(find_by_name(sdk, "stale-agent").has_value());
  sdk.check_all_responses();
}

TEST(ConnectSequence, PendingRemovalIsAutoRestoredAndActiveInTheRestoreAnswer) {
  TestControlPlane cp;
  SdkClient sdk(cp.client(), cp.admin_key());
  auto created = sdk.post_json(kTunnels, R"({"tunnel_name":"pending-agent","tls_mode":"edge"})");
  ASSERT_EQ(created.status, 201);
  const std::string id = str(created.json().at("tunnel"), "id");
  auto deleted = sdk.del(tunnel_path(id));
  ASSERT_EQ(deleted.status, 200) << describe(deleted);
  EXPECT_EQ(str(deleted.json(), "status"), "delete_pending");

  // (d) connect(): GET by id shows delete_pending → restore (no body, no Content-Type).
  auto got = sdk.get(tunnel_path(id));
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(str(got.json(), "status"), "delete_pending");
  EXPECT_FALSE(is_null_member(got.json(), "restore_deadline_at"));
  auto restored = sdk.post_empty(tunnel_path(id, "/restore"));
  ASSERT_EQ(restored.status, 200) << describe(restored);
  expect_sdk_tunnel(restored.json(), "pending-agent", "edge");
  EXPECT_EQ(str(restored.json(), "status"), "active") << "the Python SDK checks the restore answer itself";
  EXPECT_TRUE(is_null_member(restored.json(), "restore_deadline_at"));

  // The same through the list (no state file): found by name in delete_pending, then restored.
  ASSERT_EQ(sdk.del(tunnel_path(id)).status, 200);
  auto found = find_by_name(sdk, "pending-agent");
  ASSERT_TRUE(found.has_value()) << "delete_pending tunnels must be listed (§2.5.1)";
  EXPECT_EQ(str(*found, "status"), "delete_pending");
  auto restored2 = sdk.post_empty(tunnel_path(id, "/restore"));
  ASSERT_EQ(restored2.status, 200);
  EXPECT_EQ(str(restored2.json(), "status"), "active");
  sdk.check_all_responses();
}

TEST(ConnectSequence, LostSecretRecoveryRotatesWhilePendingThenRestores) {
  TestControlPlane cp;
  SdkClient sdk(cp.client(), cp.admin_key());
  auto created = sdk.post_json(kTunnels, R"({"tunnel_name":"forgetful","tls_mode":"edge"})");
  ASSERT_EQ(created.status, 201);
  const std::string id = str(created.json().at("tunnel"), "id");
  const std::string old_secret = str(created.json(), "connect_secret");
  ASSERT_EQ(sdk.del(tunnel_path(id)).status, 200);

  // (e) rotate-secret is allowed in delete_pending (§2.5.8), then restore.
  auto rotated = sdk.post_empty(tunnel_path(id, "/rotate-secret"));
  ASSERT_EQ(rotated.status, 200) << describe(rotated);
  const std::string new_secret = str(rotated.json(), "connect_secret");
  EXPECT_NE(new_secret, old_secret);
  EXPECT_TRUE(new_secret.starts_with("tsec_"));
  EXPECT_EQ(rotated.json().as_object().size(), 1u) << "RotatedSecret is {\"connect_secret\"}: " << rotated.body;
  auto still = sdk.get(tunnel_path(id));
  EXPECT_EQ(str(still.json(), "status"), "delete_pending") << "rotation does not restore";
  auto restored = sdk.post_empty(tunnel_path(id, "/restore"));
  ASSERT_EQ(restored.status, 200) << describe(restored);
  EXPECT_EQ(str(restored.json(), "status"), "active");
  sdk.check_all_responses();
}

TEST(ConnectSequence, PassthroughSignsACsrAndIsActiveOnTheRefetch) {
  TestControlPlane cp;
  SdkClient sdk(cp.client(), cp.admin_key());

  // (f) First connect of a passthrough tunnel: list, create → awaiting_cert.
  EXPECT_FALSE(find_by_name(sdk, "secure-agent").has_value());
  auto created = sdk.post_json(kTunnels, R"({"tunnel_name":"secure-agent","tls_mode":"passthrough"})");
  ASSERT_EQ(created.status, 201) << describe(created);
  const auto tunnel = created.json().at("tunnel");
  expect_sdk_tunnel(tunnel, "secure-agent", "passthrough");
  EXPECT_EQ(str(tunnel, "status"), "awaiting_cert");
  const std::string id = str(tunnel, "id");
  const std::string host = str(tunnel, "public_host");
  EXPECT_EQ(host, "secure-agent." + cp.config().zone);

  // The SDK's CSR: EC P-256, CN=<public_host>, one non-critical SAN DNS:<public_host>, ECDSA-SHA256.
  auto csr = make_ec_csr(host, {host});
  boost::json::object req;
  req["csr_pem"] = csr.csr_pem;
  auto signed_cert = sdk.post_json(tunnel_path(id, "/sign-csr"), boost::json::serialize(req));
  ASSERT_EQ(signed_cert.status, 200) << describe(signed_cert);
  auto sc = signed_cert.json();
  const std::string cert_pem = str(sc, "cert_pem");
  const std::string chain_pem = str(sc, "chain_pem");
  const std::string fingerprint = str(sc, "cert_fingerprint_sha256");
  const std::string expires = str(sc, "cert_expires_at");
  EXPECT_TRUE(cert_pem.ends_with("\n")) << "Python joins cert_pem + chain_pem with no separator";
  EXPECT_TRUE(chain_pem.ends_with("\n"));
  EXPECT_EQ(read_certs(cert_pem + chain_pem).size(), 1 + read_certs(chain_pem).size()) << "the joined PEM parses";
  EXPECT_EQ(verify_leaf(cert_pem, chain_pem, csr.key.get(), host, cp.clock().now() + 1h), "");
  auto leaves = read_certs(cert_pem);
  ASSERT_EQ(leaves.size(), 1u);
  EXPECT_EQ(fingerprint, sha256_fingerprint(leaves[0].get())) << "A22: lowercase hex over the leaf DER";
  const auto not_after = parse_time(expires);
  EXPECT_GT(not_after, cp.clock().now() + 24h * 14) << "well above the SDK's 14-day renewal threshold";

  // Python re-fetches and requires active; the Tunnel carries the same certificate.
  auto refetched = sdk.get(tunnel_path(id));
  ASSERT_EQ(refetched.status, 200);
  EXPECT_EQ(str(refetched.json(), "status"), "active");
  EXPECT_EQ(str(refetched.json(), "cert_pem"), cert_pem);
  EXPECT_EQ(str(refetched.json(), "cert_fingerprint_sha256"), fingerprint);
  EXPECT_EQ(str(refetched.json(), "cert_expires_at"), expires);

  // Reconnect later with a new key (renewal): signing again on an active tunnel keeps it active.
  auto csr2 = make_ec_csr(host, {host});
  req["csr_pem"] = csr2.csr_pem;
  auto renewed = sdk.post_json(tunnel_path(id, "/sign-csr"), boost::json::serialize(req));
  ASSERT_EQ(renewed.status, 200) << describe(renewed);
  EXPECT_EQ(verify_leaf(str(renewed.json(), "cert_pem"), str(renewed.json(), "chain_pem"), csr2.key.get(), host,
                        cp.clock().now() + 1h),
            "");
  EXPECT_NE(str(renewed.json(), "cert_fingerprint_sha256"), fingerprint);
  EXPECT_EQ(str(sdk.get(tunnel_path(id)).json(), "status"), "active");

  // A CSR without a SAN (the later CLI example) is accepted too (A23).
  auto csr3 = make_ec_csr(host, {});
  req["csr_pem"] = csr3.csr_pem;
  auto no_san = sdk.post_json(tunnel_path(id, "/sign-csr"), boost::json::serialize(req));
  EXPECT_EQ(no_san.status, 200) << describe(no_san);
  sdk.check_all_responses();
}

TEST(ConnectSequence, ConflictTextsTheSdkMaps) {
  TestControlPlane cp;
  SdkClient sdk(cp.client(), cp.admin_key());
  auto created = sdk.post_json(kTunnels, R"({"tunnel_name":"mapped","tls_mode":"edge"})");
  ASSERT_EQ(created.status, 201);
  const std::string id = str(created.json().at("tunnel"), "id");

  // (g) create conflict → TunnelNameUnavailable.
  auto taken = sdk.post_json(kTunnels, R"({"tunnel_name":"mapped","tls_mode":"edge"})");
  EXPECT_EQ(taken.status, 409);
  EXPECT_EQ(taken.detail(), "tunnel_name already taken");
  auto reserved = sdk.post_json(kTunnels, R"({"tunnel_name":"www","tls_mode":"edge"})");
  EXPECT_EQ(reserved.status, 409);
  EXPECT_NE(reserved.detail().find("reserved"), std::string::npos) << reserved.detail();

  // restore conflict → TunnelStateConflict with the documented text.
  auto restore = sdk.post_empty(tunnel_path(id, "/restore"));
  EXPECT_EQ(restore.status, 409);
  EXPECT_EQ(restore.detail(), "tunnel is not in delete_pending state");

  // sign-csr on an edge tunnel → TunnelTLSModeMismatch: the detail names tls_mode.
  const std::string host = "mapped." + cp.config().zone;
  boost::json::object req;
  req["csr_pem"] = make_ec_csr(host, {host}).csr_pem;
  auto mismatch = sdk.post_json(tunnel_path(id, "/sign-csr"), boost::json::serialize(req));
  EXPECT_EQ(mismatch.status, 409);
  EXPECT_NE(lower(mismatch.detail()).find("tls_mode"), std::string::npos) << mismatch.detail();

  // sign-csr in the wrong state → TunnelCSRStateConflict: none of edge/tls_mode/passthrough.
  auto pt = sdk.post_json(kTunnels, R"({"tunnel_name":"mapped-pt","tls_mode":"passthrough"})");
  ASSERT_EQ(pt.status, 201);
  const std::string pt_id = str(pt.json().at("tunnel"), "id");
  ASSERT_EQ(sdk.del(tunnel_path(pt_id)).status, 200);
  const std::string pt_host = "mapped-pt." + cp.config().zone;
  req["csr_pem"] = make_ec_csr(pt_host, {pt_host}).csr_pem;
  auto state = sdk.post_json(tunnel_path(pt_id, "/sign-csr"), boost::json::serialize(req));
  EXPECT_EQ(state.status, 409);
  for (const char* word : {"edge", "tls_mode", "passthrough"})
    EXPECT_EQ(lower(state.detail()).find(word), std::string::npos) << state.detail();

  // A CN that is not the public host → 422, not a 409 the SDK would misread.
  auto restored = sdk.post_empty(tunnel_path(pt_id, "/restore"));
  ASSERT_EQ(restored.status, 200);
  req["csr_pem"] = make_ec_csr("someone-else." + cp.config().zone, {"someone-else." + cp.config().zone}).csr_pem;
  EXPECT_EQ(sdk.post_json(tunnel_path(pt_id, "/sign-csr"), boost::json::serialize(req)).status, 422);

  // delete of a pending tunnel and force-delete of a live one → 409 (A26).
  auto force_live = sdk.del(tunnel_path(id, "/force"));
  EXPECT_EQ(force_live.status, 409);
  ASSERT_EQ(sdk.del(tunnel_path(id)).status, 200);
  EXPECT_EQ(sdk.del(tunnel_path(id)).status, 409);
  sdk.check_all_responses();
}

TEST(ConnectSequence, BodilessPostsAreAcceptedInEveryForm) {
  // The SDKs send restore and rotate-secret with no body and no Content-Type (§2.1). Other
  // clients may send Content-Length: 0 or an empty JSON object; all three must work.
  TestControlPlane cp;
  auto client = cp.client();
  auto [id, secret] = create_tunnel(client, cp.admin_key(), "bodiless");
  const auto send = [&](const std::string& target, std::optional<std::string> body, std::string type) {
    HttpRequestSpec spec;
    spec.method = "POST";
    spec.target = target;
    spec.headers = {{"X-API-Key", cp.admin_key()}};
    spec.body = std::move(body);
    spec.content_type = std::move(type);
    return client.send(spec);
  };
  EXPECT_EQ(send(tunnel_path(id, "/rotate-secret"), std::nullopt, "").status, 200);
  EXPECT_EQ(send(tunnel_path(id, "/rotate-secret"), std::string(), "").status, 200);
  EXPECT_EQ(send(tunnel_path(id, "/rotate-secret"), std::string("{}"), "application/json").status, 200);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(client.del(tunnel_path(id), cp.admin_key()).status, 200);
    auto r = i == 0   ? send(tunnel_path(id, "/restore"), std::nullopt, "")
             : i == 1 ? send(tunnel_path(id, "/restore"), std::string(), "")
                      : send(tunnel_path(id, "/restore"), std::string("{}"), "application/json");
    EXPECT_EQ(r.status, 200) << "form " << i << ": " << describe(r);
    EXPECT_EQ(str(r.json(), "status"), "active");
  }
}
