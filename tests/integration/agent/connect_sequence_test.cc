// resolve_tunnel (PROTOCOL.md §2.9) against the in-process control plane: first create, reuse,
// removed tunnels, the pending-removal policies, secret recovery after rotate-secret, tls_mode
// mismatch, and the passthrough key, CSR, sign-csr and renewal.
#include "agent/connect_sequence.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/pki.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire;
using namespace inkwire::agent;
using namespace inkwire::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "inkwire-connect-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 01000000;
  return st.st_mode & 07777;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class ConnectSequence : public ::testing::Test {
 protected:
  ConnectSequence() : client_(make_client(cp_.port(), cp_.admin_key())) {}

  static ControlClient make_client(unsigned short port, const std::string& key) {
    ControlClientOptions o;
    o.api_url = "http://127.0.0.1:" + std::to_string(port);
    o.api_key = key;
    auto c = ControlClient::create(o);
    if (!c) throw std::runtime_error(c.error().message());
    return std::move(*c);
  }

  ConnectRequest request(const std::string& name, const std::string& tls_mode = "edge") {
    ConnectRequest r;
    r.name = name;
    r.tls_mode = tls_mode;
    r.state_dir = tmp_.path() / name;
    r.print_secret = true;
    r.banner_stream = &banner_;
    r.clock = &cp_.clock();  // the CA signs with the control plane's fake clock
    return r;
  }

  Expected<ResolvedTunnel, ConnectError> connect(const ConnectRequest& r) { return resolve_tunnel(client_, r); }

  ResolvedTunnel must_connect(const ConnectRequest& r) {
    auto resolved = connect(r);
    if (!resolved) throw std::runtime_error(std::string(to_string(resolved.error().kind)) + ": " + resolved.error().message);
    return std::move(*resolved);
  }

  proto::TunnelState state_of(const std::string& name) {
    auto s = proto::parse_state_json(read_file(tmp_.path() / name / "state.json"));
    return s.value_or(proto::TunnelState{});
  }

  TestControlPlane cp_;
  ControlClient client_;
  TempDir tmp_;
  std::ostringstream banner_;
};

}  // namespace

TEST_F(ConnectSequence, FirstConnectCreatesTheTunnelAndStoresTheSecretAtOnce) {
  const ResolvedTunnel r = must_connect(request("my-agent"));
  EXPECT_TRUE(r.created);
  EXPECT_FALSE(r.restored);
  EXPECT_EQ(r.tunnel.tunnel_name, "my-agent");
  EXPECT_EQ(r.tunnel.status, "active");
  EXPECT_TRUE(r.secret.starts_with("tsec_"));
  EXPECT_EQ(r.public_host, "my-agent." + cp_.config().zone);
  EXPECT_EQ(r.zone, cp_.config().effective_data_plane_host());
  EXPECT_EQ(r.state_dir, tmp_.path() / "my-agent");
  EXPECT_TRUE(r.private_key_file.empty());

  const proto::TunnelState s = state_of("my-agent");
  EXPECT_EQ(s.tunnel_id, r.tunnel.id);
  EXPECT_EQ(s.name, "my-agent");
  EXPECT_EQ(s.secret, r.secret);
  EXPECT_EQ(s.mode, "edge");
  EXPECT_EQ(s.zone, r.zone);
  EXPECT_EQ(s.public_host, r.public_host);
  EXPECT_EQ(mode_of(tmp_.path() / "my-agent"), 0700u);
  EXPECT_EQ(mode_of(tmp_.path() / "my-agent" / "state.json"), 0600u);
  EXPECT_EQ(read_file(tmp_.path() / "my-agent" / "state.json"), proto::serialize_state_json(s)) << "Python's bytes";

  // The one-time banner names the secret and where it was saved.
  const std::string banner = banner_.str();
  EXPECT_NE(banner.find(r.secret), std::string::npos) << banner;
  EXPECT_NE(banner.find((tmp_.path() / "my-agent" / "state.json").string()), std::string::npos) << banner;

  // Forced off: no banner.
  banner_.str("");
  ConnectRequest quiet = request("quiet-agent");
  quiet.print_secret = false;
  EXPECT_TRUE(must_connect(quiet).created);
  EXPECT_TRUE(banner_.str().empty());
}

TEST_F(ConnectSequence, SecondConnectReusesTheTunnelAndTheStoredSecret) {
  const ResolvedTunnel first = must_connect(request("my-agent"));
  const std::string state_before = read_file(tmp_.path() / "my-agent" / "state.json");
  banner_.str("");
  const ResolvedTunnel second = must_connect(request("my-agent"));
  EXPECT_FALSE(second.created);
  EXPECT_EQ(second.tunnel.id, first.tunnel.id);
  EXPECT_EQ(second.secret, first.secret);
  EXPECT_TRUE(banner_.str().empty()) << "the banner is printed on create only";
  EXPECT_EQ(read_file(tmp_.path() / "my-agent" / "state.json"), state_before);
  auto all = client_.list();
  ASSERT_TRUE(all);
  EXPECT_EQ(all->size(), 1u);
}

TEST_F(ConnectSequence, AStoredIdTheServerDoesNotKnowIsTunnelRemoved) {
  const ConnectRequest r = request("my-agent");
  auto dir = StateDirectory::open(*r.state_dir);
  ASSERT_TRUE(dir);
  proto::TunnelState s;
  s.tunnel_id = "0b7c2f1e-4d7a-4c59-9a51-2f0c7e3f9d10";
  s.name = "my-agent";
  s.secret = "tsec_stale";
  s.mode = "edge";
  ASSERT_TRUE(dir->write_state(s));

  auto resolved = connect(r);
  ASSERT_FALSE(resolved);
  EXPECT_EQ(resolved.error().kind, ConnectErrorKind::tunnel_removed);
  EXPECT_EQ(resolved.error().message,
            "tunnel was removed; clear the state directory " + r.state_dir->string() + " to create a new one");
  ASSERT_TRUE(resolved.error().cause);
  EXPECT_EQ(resolved.error().cause->status, 404);
  auto all = client_.list();
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->empty()) << "no silent re-create";

  // The same after a real removal: delete, then force-delete.
  const ResolvedTunnel other = must_connect(request("other-agent"));
  ASSERT_TRUE(client_.delete_tunnel(other.tunnel.id));
  ASSERT_TRUE(client_.force_delete(other.tunnel.id));
  auto removed = connect(request("other-agent"));
  ASSERT_FALSE(removed);
  EXPECT_EQ(removed.error().kind, ConnectErrorKind::tunnel_removed);
}

TEST_F(ConnectSequence, ADeletedTunnelIsRestoredByDefault) {
  const ResolvedTunnel first = must_connect(request("my-agent"));
  auto deleted = client_.delete_tunnel(first.tunnel.id);
  ASSERT_TRUE(deleted);
  ASSERT_EQ(deleted->status, "delete_pending");

  const ResolvedTunnel again = must_connect(request("my-agent"));
  EXPECT_TRUE(again.restored);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.tunnel.id, first.tunnel.id);
  EXPECT_EQ(again.tunnel.status, "active");
  EXPECT_EQ(again.secret, first.secret);
  auto got = client_.get(first.tunnel.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, "active");
}

TEST_F(ConnectSequence, ADeletedTunnelWithTheErrorPolicyFails) {
  const ResolvedTunnel first = must_connect(request("my-agent"));
  ASSERT_TRUE(client_.delete_tunnel(first.tunnel.id));
  ConnectRequest r = request("my-agent");
  r.on_pending_removal = PendingRemovalPolicy::error;
  auto resolved = connect(r);
  ASSERT_FALSE(resolved);
  EXPECT_EQ(resolved.error().kind, ConnectErrorKind::pending_removal);
  EXPECT_NE(resolved.error().message.find("inkwire tunnels restore my-agent"), std::string::npos)
      << resolved.error().message;
  auto got = client_.get(first.tunnel.id);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, "delete_pending") << "nothing was restored";
}

TEST_F(ConnectSequence, ADeletedTunnelWithoutASecretIsNotRestored) {
  CreateTunnelRequest create;
  create.tunnel_name = "lost-secret";
  auto created = client_.create(create);
  ASSERT_TRUE(created);
  ASSERT_TRUE(client_.delete_tunnel(created->tunnel.id));
  auto resolved = connect(request("lost-secret"));
  ASSERT_FALSE(resolved);
  EXPECT_EQ(resolved.error().kind, ConnectErrorKind::secret_unavailable);
  EXPECT_NE(resolved.error().message.find("rotate-secret"), std::string::npos) << resolved.error().message;
  EXPECT_EQ(client_.get(created->tunnel.id)->status, "delete_pending");

  // The documented recovery: rotate first (allowed while pending), then connect with the secret.
  auto rotated = client_.rotate_secret(created->tunnel.id);
  ASSERT_TRUE(rotated);
  ConnectRequest r = request("lost-secret");
  r.secret = *rotated;
  const ResolvedTunnel ok = must_connect(r);
  EXPECT_TRUE(ok.restored);
  EXPECT_EQ(ok.secret, *rotated);
  EXPECT_EQ(state_of("lost-secret").secret, *rotated);
}

TEST_F(ConnectSequence, AnExistingTunnelNeedsASecret) {
  CreateTunnelRequest create;
  create.tunnel_name = "made-elsewhere";
  ASSERT_TRUE(client_.create(create));
  auto resolved = connect(request("made-elsewhere"));
  ASSERT_FALSE(resolved);
  EXPECT_EQ(resolved.error().kind, ConnectErrorKind::secret_unavailable);
}

TEST_F(ConnectSequence, AnExplicitSecretWinsAndIsSaved) {
  const ResolvedTunnel first = must_connect(request("my-agent"));
  auto rotated = client_.rotate_secret(first.tunnel.id);
  ASSERT_TRUE(rotated);

  // Without it, the stale stored secret is what connect hands on (the relay would refuse it).
  EXPECT_EQ(must_connect(request("my-agent")).secret, first.secret);

  ConnectRequest r = request("my-agent");
  r.secret = *rotated;
  const ResolvedTunnel second = must_connect(r);
  EXPECT_EQ(second.secret, *rotated);
  EXPECT_EQ(state_of("my-agent").secret, *rotated);
  // And the next start needs no argument.
  EXPECT_EQ(must_connect(request("my-agent")).secret, *rotated);
}

TEST_F(ConnectSequence, ATlsModeMismatchIsALocalError) {
  must_connect(request("my-agent", "edge"));
  auto resolved = connect(request("my-agent", "passthrough"));
  ASSERT_FALSE(resolved);
  EXPECT_EQ(resolved.error().kind, ConnectErrorKind::tls_mode_mismatch);
  EXPECT_NE(resolved.error().message.find("tls_mode edge"), std::string::npos) << resolved.error().message;
  EXPECT_FALSE(fs::exists(tmp_.path() / "my-agent" / "private_key.pem")) << "no passthrough work was done";
}

TEST_F(ConnectSequence, PassthroughFirstConnectSignsAndWritesTheChain) {
  const ResolvedTunnel r = must_connect(request("pt-agent", "passthrough"));
  EXPECT_TRUE(r.created);
  EXPECT_TRUE(r.certificate_signed);
  EXPECT_EQ(r.tunnel.status, "active") << "re-fetched after sign-csr";
  const fs::path dir = tmp_.path() / "pt-agent";
  EXPECT_EQ(r.private_key_file, dir / "private_key.pem");
  EXPECT_EQ(r.cert_chain_file, dir / "cert_chain.pem");
  EXPECT_EQ(mode_of(r.private_key_file), 0600u);
  EXPECT_EQ(mode_of(r.cert_chain_file), 0600u);

  const std::string chain = read_file(r.cert_chain_file);
  auto leaf = pki::parse_first_certificate(chain);
  ASSERT_TRUE(leaf);
  auto api = client_.get(r.tunnel.id);
  ASSERT_TRUE(api);
  ASSERT_TRUE(api->cert_fingerprint_sha256);
  EXPECT_EQ(pki::certificate_fingerprint_sha256(leaf->get()), *api->cert_fingerprint_sha256);
  auto key = pki::parse_private_key_pem(read_file(r.private_key_file));
  ASSERT_TRUE(key);
  EXPECT_TRUE(pki::certificate_matches_key(leaf->get(), key->get()));
  // Leaf then chain, each ending in one LF.
  EXPECT_EQ(chain, *api->cert_pem + chain.substr(api->cert_pem->size()));
  EXPECT_EQ(chain.find("\n\n"), std::string::npos);
  EXPECT_EQ(state_of("pt-agent").mode, "passthrough");

  // Reconnect: the certificate is good, nothing is signed.
  const ResolvedTunnel again = must_connect(request("pt-agent", "passthrough"));
  EXPECT_FALSE(again.certificate_signed);
  EXPECT_EQ(read_file(r.cert_chain_file), chain);

  // 80 of the 90 days later: fewer than 14 left, so it is renewed.
  cp_.clock().advance(std::chrono::hours(24 * 80));
  const ResolvedTunnel renewed = must_connect(request("pt-agent", "passthrough"));
  EXPECT_TRUE(renewed.certificate_signed);
  auto renewed_leaf = pki::parse_first_certificate(read_file(r.cert_chain_file));
  ASSERT_TRUE(renewed_leaf);
  EXPECT_NE(pki::certificate_fingerprint_sha256(renewed_leaf->get()), pki::certificate_fingerprint_sha256(leaf->get()));
  EXPECT_EQ(pki::certificate_fingerprint_sha256(renewed_leaf->get()), *client_.get(r.tunnel.id)->cert_fingerprint_sha256);

  // A new key on disk: the certificate no longer matches it, so it is signed again.
  fs::remove(r.private_key_file);
  const ResolvedTunnel rekeyed = must_connect(request("pt-agent", "passthrough"));
  EXPECT_TRUE(rekeyed.certificate_signed);
  auto new_key = pki::parse_private_key_pem(read_file(r.private_key_file));
  auto rekeyed_leaf = pki::parse_first_certificate(read_file(r.cert_chain_file));
  ASSERT_TRUE(new_key && rekeyed_leaf);
  EXPECT_TRUE(pki::certificate_matches_key(rekeyed_leaf->get(), new_key->get()));
}

TEST_F(ConnectSequence, APassthroughTunnelRestoredWithoutACertificateIsSigned) {
  CreateTunnelRequest create;
  create.tunnel_name = "pt-pending";
  create.tls_mode = "passthrough";
  auto created = client_.create(create);
  ASSERT_TRUE(created);
  ASSERT_TRUE(client_.delete_tunnel(created->tunnel.id));
  ConnectRequest r = request("pt-pending", "passthrough");
  r.secret = created->connect_secret;
  const ResolvedTunnel resolved = must_connect(r);
  EXPECT_TRUE(resolved.restored);
  EXPECT_TRUE(resolved.certificate_signed);
  EXPECT_EQ(resolved.tunnel.status, "active");
}

TEST_F(ConnectSequence, ADataPlaneHostOverrideIsStoredAsZone) {
  ConnectRequest r = request("my-agent");
  r.data_plane_host = "relay.example.net:8443";
  const ResolvedTunnel resolved = must_connect(r);
  EXPECT_EQ(resolved.zone, "relay.example.net:8443");
  EXPECT_EQ(state_of("my-agent").zone, "relay.example.net:8443");
  EXPECT_EQ(resolved.public_host, "my-agent." + cp_.config().zone) << "the public host is never derived from it";
}

TEST_F(ConnectSequence, AStateDirectoryOfAnotherTunnelIsRefused) {
  const ResolvedTunnel a = must_connect(request("agent-a"));
  ConnectRequest r = request("agent-b");
  r.state_dir = a.state_dir;
  auto resolved = connect(r);
  ASSERT_FALSE(resolved);
  EXPECT_EQ(resolved.error().kind, ConnectErrorKind::state_dir_error);
  EXPECT_NE(resolved.error().message.find("agent-a"), std::string::npos) << resolved.error().message;
}

TEST_F(ConnectSequence, ChecksItsArgumentsBeforeAnyRequest) {
  for (const char* name : {"ab", "My-Agent", "a--b", "-ab", "../etc"}) {
    auto resolved = connect(request(name));
    ASSERT_FALSE(resolved) << name;
    EXPECT_EQ(resolved.error().kind, ConnectErrorKind::invalid_argument) << name;
  }
  ConnectRequest pool = request("my-agent");
  pool.pool_size = 33;
  EXPECT_EQ(connect(pool).error().kind, ConnectErrorKind::invalid_argument);
  pool.pool_size = 0;
  EXPECT_EQ(connect(pool).error().kind, ConnectErrorKind::invalid_argument);
  EXPECT_EQ(connect(request("my-agent", "tcp")).error().kind, ConnectErrorKind::invalid_argument);
  auto all = client_.list();
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->empty());
  EXPECT_FALSE(fs::exists(tmp_.path() / "ab"));
}

TEST_F(ConnectSequence, ApiErrorsAreTypedWithAdvice) {
  // The name belongs to another organisation.
  ControlClient other = make_client(cp_.port(), cp_.other_org_admin_key());
  CreateTunnelRequest create;
  create.tunnel_name = "contested";
  ASSERT_TRUE(other.create(create));
  auto taken = connect(request("contested"));
  ASSERT_FALSE(taken);
  EXPECT_EQ(taken.error().kind, ConnectErrorKind::api_error);
  EXPECT_NE(taken.error().message.find("choose another name"), std::string::npos) << taken.error().message;

  ControlClient member = make_client(cp_.port(), cp_.member_key());
  auto forbidden = resolve_tunnel(member, request("member-made"));
  ASSERT_FALSE(forbidden);
  EXPECT_EQ(forbidden.error().kind, ConnectErrorKind::api_error);
  EXPECT_EQ(forbidden.error().cause->status, 403);

  ControlClient nowhere = make_client(1, cp_.admin_key());
  auto unreachable = resolve_tunnel(nowhere, request("my-agent"));
  ASSERT_FALSE(unreachable);
  EXPECT_EQ(unreachable.error().kind, ConnectErrorKind::transport_error);
}

TEST_F(ConnectSequence, TheDefaultStateDirectoryIsUnderHome) {
  const char* old_home = std::getenv("HOME");
  const std::string saved = old_home ? old_home : "";
  ::setenv("HOME", tmp_.path().c_str(), 1);
  ConnectRequest r = request("home-agent");
  r.state_dir.reset();
  auto resolved = connect(r);
  if (old_home) ::setenv("HOME", saved.c_str(), 1); else ::unsetenv("HOME");
  ASSERT_TRUE(resolved) << resolved.error().message;
  EXPECT_EQ(resolved->state_dir, tmp_.path() / ".inkbox" / "tunnels" / "home-agent");
  EXPECT_TRUE(fs::exists(tmp_.path() / ".inkbox" / "tunnels" / "home-agent" / "state.json"));
  EXPECT_EQ(mode_of(tmp_.path() / ".inkbox" / "tunnels" / "home-agent"), 0700u);
}
