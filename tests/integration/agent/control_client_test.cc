// The agent's REST client (PROTOCOL.md §2) against the in-process control plane over plain HTTP
// on loopback, and over HTTPS through a TLS terminator with certificates from a test CA; plus what
// it sends and how it reads odd answers, against a canned server.
#include "agent/control_client.h"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/json/parse.hpp>

#include "agent/pki.h"
#include "tests/integration/agent/canned_server.h"
#include "tests/integration/agent/tls_front.h"
#include "tests/support/api_test_helpers.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire;
using namespace inkwire::agent;
using namespace inkwire::testing;
using namespace std::chrono_literals;

namespace {

std::string api_url(const TestControlPlane& cp) { return "http://127.0.0.1:" + std::to_string(cp.port()); }

ControlClient client_for(const std::string& url, const std::string& key, const std::string& ca_file = {},
                         std::chrono::milliseconds timeout = 10s) {
  ControlClientOptions o;
  o.api_url = url;
  o.api_key = key;
  o.ca_file = ca_file;
  o.connect_timeout = timeout;
  o.request_timeout = timeout;
  auto c = ControlClient::create(o);
  if (!c) throw std::runtime_error(c.error().message());
  return std::move(*c);
}

// The error ControlClient::create gives, or nullopt when it accepts the configuration.
std::optional<ControlError> config_error(const std::string& url, const std::string& key = "ApiKey_x.y",
                                         const std::string& ca = {}) {
  ControlClientOptions o;
  o.api_url = url;
  o.api_key = key;
  o.ca_file = ca;
  auto c = ControlClient::create(o);
  if (c) return std::nullopt;
  return c.error();
}

ControlErrorKind config_error_kind(const std::string& url, const std::string& key = "ApiKey_x.y") {
  auto e = config_error(url, key);
  return e ? e->kind : ControlErrorKind::http_status;  // (any other kind: accepted)
}

// A loopback port with nothing listening on it.
unsigned short closed_port() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor a(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

}  // namespace

TEST(ControlClient, TheWholeLifecycleOverLoopbackHttp) {
  TestControlPlane cp;
  ControlClient c = client_for(api_url(cp) + "/", cp.admin_key());
  EXPECT_EQ(c.api_base(), api_url(cp) + "/api/v1");

  auto empty = c.list();
  ASSERT_TRUE(empty) << empty.error().message();
  EXPECT_TRUE(empty->empty());

  CreateTunnelRequest req;
  req.tunnel_name = "my-agent";
  req.description = "webhooks";
  auto created = c.create(req);
  ASSERT_TRUE(created) << created.error().message();
  EXPECT_TRUE(created->connect_secret.starts_with("tsec_"));
  EXPECT_FALSE(created->metadata_error);
  const Tunnel& t = created->tunnel;
  EXPECT_EQ(t.tunnel_name, "my-agent");
  EXPECT_EQ(t.tls_mode, "edge");
  EXPECT_EQ(t.status, "active");
  EXPECT_EQ(t.description, "webhooks");
  EXPECT_EQ(t.public_host, "my-agent." + cp.config().zone);
  EXPECT_EQ(t.zone, cp.config().effective_data_plane_host());
  EXPECT_TRUE(t.metadata.empty());
  EXPECT_FALSE(t.currently_connected);
  EXPECT_EQ(t.organization_id, cp.org_id());
  EXPECT_FALSE(t.created_at.empty());
  EXPECT_EQ(t.json.at("id").as_string(), t.id);

  auto listed = c.list();
  ASSERT_TRUE(listed);
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, t.id);

  auto got = c.get(t.id);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->tunnel_name, "my-agent");

  TunnelUpdate update;
  update.description.emplace(std::nullopt);
  update.metadata = boost::json::object{{"team", "ops"}, {"n", 42}};
  auto updated = c.update(t.id, update);
  ASSERT_TRUE(updated) << updated.error().message();
  EXPECT_FALSE(updated->description);
  EXPECT_EQ(updated->metadata.at("team").as_string(), "ops");
  TunnelUpdate clear;
  clear.metadata = boost::json::object{};
  clear.description = "again";
  updated = c.update(t.id, clear);
  ASSERT_TRUE(updated);
  EXPECT_TRUE(updated->metadata.empty());
  EXPECT_EQ(updated->description, "again");

  auto rotated = c.rotate_secret(t.id);
  ASSERT_TRUE(rotated) << rotated.error().message();
  EXPECT_TRUE(rotated->starts_with("tsec_"));
  EXPECT_NE(*rotated, created->connect_secret);

  auto deleted = c.delete_tunnel(t.id);
  ASSERT_TRUE(deleted) << deleted.error().message();
  EXPECT_EQ(deleted->status, "delete_pending");
  EXPECT_TRUE(deleted->restore_deadline_at);

  auto again = c.delete_tunnel(t.id);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ControlErrorKind::http_status);
  EXPECT_EQ(again.error().status, 409);

  auto restored = c.restore(t.id);
  ASSERT_TRUE(restored) << restored.error().message();
  EXPECT_EQ(restored->status, "active");
  EXPECT_FALSE(restored->restore_deadline_at);

  auto not_pending = c.force_delete(t.id);
  ASSERT_FALSE(not_pending);
  EXPECT_EQ(not_pending.error().status, 409);

  ASSERT_TRUE(c.delete_tunnel(t.id));
  auto forced = c.force_delete(t.id);
  ASSERT_TRUE(forced) << forced.error().message();

  auto gone = c.get(t.id);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().kind, ControlErrorKind::http_status);
  EXPECT_EQ(gone.error().status, 404);
  EXPECT_EQ(gone.error().detail, "tunnel not found");
  EXPECT_EQ(gone.error().message(), "get tunnel " + t.id + ": HTTP 404: tunnel not found");
}

TEST(ControlClient, CreateWithMetadataPatchesItAfterwards) {
  TestControlPlane cp;
  ControlClient c = client_for(api_url(cp), cp.admin_key());
  CreateTunnelRequest req;
  req.tunnel_name = "with-meta";
  req.metadata = boost::json::object{{"owner", "ops"}};
  auto created = c.create(req);
  ASSERT_TRUE(created) << created.error().message();
  EXPECT_FALSE(created->metadata_error);
  EXPECT_EQ(created->tunnel.metadata.at("owner").as_string(), "ops");

  // Metadata over the 4 KB cap: the tunnel and its secret survive, the PATCH error is reported.
  req.tunnel_name = "too-much-meta";
  req.metadata = boost::json::object{{"big", std::string(5000, 'x')}};
  created = c.create(req);
  ASSERT_TRUE(created);
  EXPECT_FALSE(created->connect_secret.empty());
  ASSERT_TRUE(created->metadata_error);
  EXPECT_EQ(created->metadata_error->status, 422);
  EXPECT_TRUE(c.get(created->tunnel.id));
}

TEST(ControlClient, HttpErrorsCarryTheStatusAndTheServersDetail) {
  TestControlPlane cp;
  ControlClient admin = client_for(api_url(cp), cp.admin_key());
  CreateTunnelRequest req;
  req.tunnel_name = "taken";
  ASSERT_TRUE(admin.create(req));
  auto dup = admin.create(req);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().status, 409);
  EXPECT_NE(dup.error().detail.find("taken"), std::string::npos) << dup.error().detail;
  EXPECT_EQ(dup.error().message().find('\n'), std::string::npos);

  req.tunnel_name = "Bad--Name";  // the server's own check (the CLI checks first)
  auto bad = admin.create(req);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().status, 422);

  ControlClient member = client_for(api_url(cp), cp.member_key());
  req.tunnel_name = "by-member";
  auto forbidden = member.create(req);
  ASSERT_FALSE(forbidden);
  EXPECT_EQ(forbidden.error().status, 403);
  EXPECT_TRUE(member.list()) << "member keys may read";

  ControlClient stranger = client_for(api_url(cp), "ApiKey_00000000-0000-4000-8000-000000000000.nope");
  auto unauthorized = stranger.list();
  ASSERT_FALSE(unauthorized);
  EXPECT_EQ(unauthorized.error().status, 401);
  EXPECT_FALSE(unauthorized.error().is_transport());
}

TEST(ControlClient, SignsACsrForAPassthroughTunnel) {
  TestControlPlane cp;
  ControlClient c = client_for(api_url(cp), cp.admin_key());
  CreateTunnelRequest req;
  req.tunnel_name = "pt-agent";
  req.tls_mode = "passthrough";
  auto created = c.create(req);
  ASSERT_TRUE(created);
  EXPECT_EQ(created->tunnel.status, "awaiting_cert");

  auto key = pki::generate_p256_key();
  ASSERT_TRUE(key);
  auto csr = pki::make_csr_pem(key->get(), *created->tunnel.public_host);
  ASSERT_TRUE(csr) << csr.error();
  auto cert = c.sign_csr(created->tunnel.id, *csr);
  ASSERT_TRUE(cert) << cert.error().message();
  EXPECT_TRUE(cert->cert_pem.ends_with("\n"));
  EXPECT_FALSE(cert->chain_pem.empty());
  auto leaf = pki::parse_first_certificate(cert->cert_pem);
  ASSERT_TRUE(leaf);
  EXPECT_EQ(pki::certificate_fingerprint_sha256(leaf->get()), cert->cert_fingerprint_sha256);
  EXPECT_TRUE(pki::certificate_matches_key(leaf->get(), key->get()));
  auto now_active = c.get(created->tunnel.id);
  ASSERT_TRUE(now_active);
  EXPECT_EQ(now_active->status, "active");
  EXPECT_EQ(now_active->cert_fingerprint_sha256, cert->cert_fingerprint_sha256);

  req.tunnel_name = "edge-agent";
  req.tls_mode = "edge";
  auto edge = c.create(req);
  ASSERT_TRUE(edge);
  auto mismatch = c.sign_csr(edge->tunnel.id, *pki::make_csr_pem(key->get(), *edge->tunnel.public_host));
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().status, 409);
  EXPECT_NE(mismatch.error().detail.find("tls_mode"), std::string::npos) << mismatch.error().detail;
}

TEST(ControlClient, RefusesBadConfiguration) {
  EXPECT_EQ(config_error_kind(""), ControlErrorKind::invalid_config);
  EXPECT_EQ(config_error_kind("http://127.0.0.1:1", ""), ControlErrorKind::invalid_config);
  EXPECT_EQ(config_error_kind("ftp://127.0.0.1"), ControlErrorKind::invalid_config);
  EXPECT_EQ(config_error_kind("http://127.0.0.1:1?x=1"), ControlErrorKind::invalid_config);
  // The API key never crosses a network in the clear.
  const auto remote = config_error("http://api.example.com");
  ASSERT_TRUE(remote);
  EXPECT_EQ(remote->kind, ControlErrorKind::invalid_config);
  EXPECT_NE(remote->detail.find("https"), std::string::npos) << remote->detail;
  EXPECT_FALSE(config_error("http://localhost:8081"));
  EXPECT_FALSE(config_error("http://[::1]:8081"));
  EXPECT_FALSE(config_error("http://127.0.0.2:8081"));
  EXPECT_FALSE(config_error("https://api.example.com/inkwire/"));
  const auto ca = config_error("https://127.0.0.1:1", "ApiKey_x.y", "/nonexistent/ca.pem");
  ASSERT_TRUE(ca);
  EXPECT_EQ(ca->kind, ControlErrorKind::invalid_config);
  EXPECT_NE(ca->detail.find("/nonexistent/ca.pem"), std::string::npos) << ca->detail;
}

TEST(ControlClient, ReportsConnectionRefusedAndTimeouts) {
  ControlClient refused = client_for("http://127.0.0.1:" + std::to_string(closed_port()), "ApiKey_x.y");
  auto r = refused.list();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ControlErrorKind::connect);
  EXPECT_TRUE(r.error().is_transport());
  EXPECT_NE(r.error().detail.find("refused"), std::string::npos) << r.error().detail;

  // A listener that never answers (the kernel completes the handshake from the backlog).
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  ControlClient slow = client_for("http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()), "ApiKey_x.y",
                                  {}, 300ms);
  const auto start = std::chrono::steady_clock::now();
  auto t = slow.list();
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().kind, ControlErrorKind::timeout) << t.error().message();
  EXPECT_NE(t.error().detail.find("300 ms"), std::string::npos) << t.error().detail;
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 5s);
}

TEST(ControlClient, SendsTheSdkHeadersAndReadsOddAnswers) {
  const std::string tunnel = R"({"id":"0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10","organization_id":"o","tunnel_name":"abc",)"
                             R"("tls_mode":"edge","status":"active","created_at":"t","updated_at":"t",)"
                             R"("public_host":"","zone":null,"metadata":null})";
  CannedServer server({
      CannedServer::response(200, "[" + tunnel + "]"),  // a bare list: accepted, as the SDKs do
      CannedServer::response(200, tunnel),              // restore: bodiless POST
      CannedServer::response(422, R"({"detail":[{"loc":["body","tunnel_name"],"msg":"bad name"},{"loc":["body"],"msg":"x"}]})"),
      CannedServer::response(500, "upstream\nexploded"),
      CannedServer::response(307, "", "Location: https://elsewhere/\r\n"),
      CannedServer::response(200, "<html>not json</html>"),
      CannedServer::response(200, R"({"id":"not-a-uuid"})"),
  });
  ControlClient c = client_for(server.url() + "/prefix//", "ApiKey_k.s");
  auto list = c.list();
  ASSERT_TRUE(list) << list.error().message();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_FALSE((*list)[0].public_host) << "an empty public_host is no public host (§2.8)";
  EXPECT_FALSE((*list)[0].zone);
  EXPECT_TRUE((*list)[0].metadata.empty());

  ASSERT_TRUE(c.restore("0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10"));

  auto fastapi = c.get("x/y");
  ASSERT_FALSE(fastapi);
  EXPECT_EQ(fastapi.error().status, 422);
  EXPECT_EQ(fastapi.error().detail, "body.tunnel_name: bad name; body: x");

  auto raw = c.get("a");
  ASSERT_FALSE(raw);
  EXPECT_EQ(raw.error().status, 500);
  EXPECT_EQ(raw.error().detail, "upstream exploded") << "the raw text, on one line";

  auto redirect = c.get("a");
  ASSERT_FALSE(redirect);
  EXPECT_EQ(redirect.error().kind, ControlErrorKind::bad_response);
  EXPECT_NE(redirect.error().detail.find("https://elsewhere/"), std::string::npos) << redirect.error().detail;

  auto html = c.get("a");
  ASSERT_FALSE(html);
  EXPECT_EQ(html.error().kind, ControlErrorKind::bad_response);

  auto not_uuid = c.get("a");
  ASSERT_FALSE(not_uuid);
  EXPECT_EQ(not_uuid.error().kind, ControlErrorKind::bad_response);

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 7u);
  const std::string& get = requests[0];
  EXPECT_EQ(get.rfind("GET /prefix/api/v1/tunnels/ HTTP/1.1\r\n", 0), 0u) << get;
  EXPECT_NE(get.find("X-API-Key: ApiKey_k.s\r\n"), std::string::npos) << get;
  EXPECT_NE(get.find("Accept: application/json\r\n"), std::string::npos) << get;
  EXPECT_EQ(get.find("Content-Type"), std::string::npos) << get;
  const std::string& restore = requests[1];
  EXPECT_EQ(restore.rfind("POST /prefix/api/v1/tunnels/0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10/restore HTTP/1.1\r\n", 0), 0u)
      << restore;
  EXPECT_EQ(restore.find("Content-Type"), std::string::npos) << "a bodiless POST has no Content-Type (§2.1)";
  EXPECT_TRUE(restore.ends_with("\r\n\r\n")) << "and no body";
  EXPECT_EQ(requests[2].rfind("GET /prefix/api/v1/tunnels/x%2Fy HTTP/1.1\r\n", 0), 0u) << "ids are one path segment";
}

TEST(ControlClient, HttpsVerifiesTheServerByIpSanAndByNameWithSni) {
  TestControlPlane cp;
  TestCa ca;
  const auto [cert, key] = ca.issue("api", {"localhost"}, {"127.0.0.1"});
  TlsFront front(cp.port(), cert, key);
  const std::string port = std::to_string(front.port());

  ControlClient by_ip = client_for("https://127.0.0.1:" + port, cp.admin_key(), ca.ca_file());
  auto listed = by_ip.list();
  ASSERT_TRUE(listed) << listed.error().message();
  CreateTunnelRequest req;
  req.tunnel_name = "over-tls";
  auto created = by_ip.create(req);
  ASSERT_TRUE(created) << created.error().message();

  ControlClient by_name = client_for("https://localhost:" + port, cp.admin_key(), ca.ca_file());
  auto got = by_name.get(created->tunnel.id);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(got->tunnel_name, "over-tls");

  const auto names = front.server_names();
  ASSERT_EQ(names.size(), 3u);
  EXPECT_EQ(names[0], "") << "no SNI for an IP literal (RFC 6066)";
  EXPECT_EQ(names[2], "localhost");
}

TEST(ControlClient, HttpsSaysWhyVerificationFailed) {
  TestControlPlane cp;
  TestCa ca;
  const auto [cert, key] = ca.issue("api", {"localhost"}, {"127.0.0.1"});
  TlsFront front(cp.port(), cert, key);
  const auto [other_cert, other_key] = ca.issue("other", {"other.test"}, {});
  TlsFront wrong_name(cp.port(), other_cert, other_key);

  // The test CA is not a system root.
  auto untrusted = client_for("https://127.0.0.1:" + std::to_string(front.port()), cp.admin_key()).list();
  ASSERT_FALSE(untrusted);
  EXPECT_EQ(untrusted.error().kind, ControlErrorKind::tls_verify);
  // (The front sends the CA with the leaf, so OpenSSL reports the self-signed root it cannot trust.)
  EXPECT_NE(untrusted.error().detail.find("self-signed certificate in certificate chain"), std::string::npos)
      << untrusted.error().detail;
  EXPECT_NE(untrusted.error().detail.find("no CA file given"), std::string::npos) << untrusted.error().detail;
  EXPECT_TRUE(untrusted.error().is_transport());

  auto ip_mismatch =
      client_for("https://127.0.0.1:" + std::to_string(wrong_name.port()), cp.admin_key(), ca.ca_file()).list();
  ASSERT_FALSE(ip_mismatch);
  EXPECT_EQ(ip_mismatch.error().kind, ControlErrorKind::tls_verify);
  EXPECT_NE(ip_mismatch.error().detail.find("IP address mismatch"), std::string::npos) << ip_mismatch.error().detail;

  auto name_mismatch =
      client_for("https://localhost:" + std::to_string(wrong_name.port()), cp.admin_key(), ca.ca_file()).list();
  ASSERT_FALSE(name_mismatch);
  EXPECT_EQ(name_mismatch.error().kind, ControlErrorKind::tls_verify);
  EXPECT_NE(name_mismatch.error().detail.find("hostname mismatch"), std::string::npos) << name_mismatch.error().detail;

  // https:// against the plain-HTTP API port.
  auto plain = client_for("https://127.0.0.1:" + std::to_string(cp.port()), cp.admin_key(), ca.ca_file()).list();
  ASSERT_FALSE(plain);
  EXPECT_EQ(plain.error().kind, ControlErrorKind::tls_handshake);
  EXPECT_NE(plain.error().detail.find("plain http"), std::string::npos) << plain.error().detail;
}

TEST(ControlClient, ParsesTheTunnelObjectStrictlyWhereTheSdkIsStrict) {
  auto ok = parse_tunnel(boost::json::parse(
      R"({"id":"0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10","organization_id":"o","tunnel_name":"abc","tls_mode":"passthrough",)"
      R"("status":"something_new","created_at":"t","updated_at":"t","currently_connected":true,"unknown":1})"));
  ASSERT_TRUE(ok) << ok.error();
  EXPECT_EQ(ok->status, "something_new") << "unknown statuses are kept";
  EXPECT_TRUE(ok->currently_connected);
  EXPECT_FALSE(parse_tunnel(boost::json::parse(R"({"id":"0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10"})")));
  EXPECT_FALSE(parse_tunnel(boost::json::parse(
      R"({"id":"0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10","organization_id":"o","tunnel_name":"abc","tls_mode":"tcp",)"
      R"("status":"active","created_at":"t","updated_at":"t"})")));
  EXPECT_FALSE(parse_tunnel(boost::json::parse("[]")));
}
