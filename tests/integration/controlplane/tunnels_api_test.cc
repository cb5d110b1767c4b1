// Every tunnel endpoint of PROTOCOL.md §2.4 and every status code it can answer, over real HTTP on
// loopback against a real PostgreSQL database (one TestControlPlane per TEST).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "tests/support/api_test_helpers.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire::testing;
using namespace inkwire::testing::api;
namespace json = boost::json;

namespace {

constexpr const char* kDefaultZone = "inkwire.localhost";
constexpr const char* kNotPending = "tunnel is not in delete_pending state";
constexpr const char* kNameTaken = "tunnel_name already taken";

// A valid UUID that no tunnel has.
constexpr const char* kUnknownId = "0f0e0d0c-0b0a-4908-8706-050403020100";

std::int64_t now_us(TestControlPlane& cp) { return micros_of(cp.clock().now()); }

std::int64_t time_of(const json::value& tunnel, std::string_view member) {
  return parse_utc_micros(str(tunnel, member)).value_or(-1);
}

json::value get_tunnel(const HttpClient& c, const std::string& key, const std::string& id) {
  auto r = c.get(tunnel_path(id), key);
  EXPECT_EQ(r.status, 200) << r.body;
  return r.json();
}

void expect_default_shape(const json::value& v) { expect_tunnel_shape(v, kDefaultZone, kDefaultZone); }

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string repeat(std::string_view unit, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += unit;
  return s;
}

// {"k":"<filler>"} whose compact serialisation is exactly `bytes` long, built from `unit` (ASCII
// or a multibyte UTF-8 character) with ASCII padding for the remainder.
std::string metadata_of_size(std::size_t bytes, std::string_view unit = "x") {
  const std::size_t overhead = std::string_view(R"({"k":""})").size();
  const std::size_t units = (bytes - overhead) / unit.size();
  const std::string value = repeat(unit, units) + std::string(bytes - overhead - units * unit.size(), 'x');
  return R"({"k":")" + value + R"("})";
}

std::string patch_body(std::string_view member, const std::string& raw_json_value) {
  return "{\"" + std::string(member) + "\":" + raw_json_value + "}";
}

std::string json_string(std::string_view s) { return json::serialize(json::value(s)); }

}  // namespace

TEST(TunnelsApi, CreateReturnsCreatedTunnelWithEveryField) {
  // A zone and a separate data-plane host, so public_host and zone cannot be confused.
  TestControlPlane cp([](inkwire::Config& c) {
    c.zone = "tunnels.example.test";
    c.data_plane_host = "connect.example.test";
  });
  auto c = cp.client();
  const auto created_at = now_us(cp);

  auto r = create_tunnel(c, cp.admin_key(), "my-agent", "edge");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.header("content-type").value_or(""), "application/json");
  EXPECT_FALSE(r.header("set-cookie")) << "the server should not set cookies (§2.1)";
  auto body = r.json();
  ASSERT_TRUE(body.is_object()) << r.body;
  EXPECT_EQ(body.as_object().size(), 2u) << "CreatedTunnel is {tunnel, connect_secret}: " << r.body;
  const std::string secret = str(body, "connect_secret");
  ASSERT_EQ(secret.size(), 5u + 43u) << secret;
  EXPECT_EQ(secret.substr(0, 5), "tsec_");
  EXPECT_TRUE(is_base64url(secret.substr(5))) << secret;

  const json::value& t = body.at("tunnel");
  expect_tunnel_shape(t, "tunnels.example.test", "connect.example.test");
  EXPECT_EQ(str(t, "organization_id"), cp.org_id());
  EXPECT_EQ(str(t, "tunnel_name"), "my-agent");
  EXPECT_TRUE(t.at("description").is_null());
  EXPECT_EQ(str(t, "tls_mode"), "edge");
  EXPECT_EQ(str(t, "status"), "active");
  for (const char* m : {"cert_pem", "cert_fingerprint_sha256", "cert_expires_at", "last_connected_at",
                        "last_connected_ip_addr", "restore_deadline_at"})
    EXPECT_TRUE(t.at(m).is_null()) << m;
  EXPECT_EQ(t.at("currently_connected"), json::value(false));
  EXPECT_EQ(str(t, "public_host"), "my-agent.tunnels.example.test");
  EXPECT_EQ(str(t, "zone"), "connect.example.test");
  EXPECT_EQ(t.at("metadata"), json::value(json::object{}));
  EXPECT_EQ(time_of(t, "created_at"), created_at);
  EXPECT_EQ(time_of(t, "updated_at"), created_at);
  EXPECT_EQ(str(t, "created_at").back(), 'Z');

  // Passthrough, through the path without the trailing slash, with a description.
  cp.clock().advance(std::chrono::seconds(1));
  auto r2 = c.post(kTunnels, cp.admin_key(), R"({"tunnel_name":"my-pt","tls_mode":"passthrough","description":"hi"})");
  ASSERT_EQ(r2.status, 201) << r2.body;
  const json::value t2 = r2.json().at("tunnel");
  expect_tunnel_shape(t2, "tunnels.example.test", "connect.example.test");
  EXPECT_EQ(str(t2, "tls_mode"), "passthrough");
  EXPECT_EQ(str(t2, "status"), "awaiting_cert");
  EXPECT_EQ(str(t2, "description"), "hi");
  EXPECT_NE(str(r2.json(), "connect_secret"), secret);
  EXPECT_NE(str(t2, "id"), str(t, "id"));

  // The zone's first label is reserved for the configured zone too.
  auto reserved = create_tunnel(c, cp.admin_key(), "tunnels");
  EXPECT_TRUE(is_json_error(reserved, 409));
  EXPECT_NE(reserved.detail().find("reserved"), std::string::npos) << reserved.detail();

  // GET returns exactly what create returned.
  EXPECT_EQ(get_tunnel(c, cp.admin_key(), str(t, "id")), t);
  EXPECT_EQ(get_tunnel(c, cp.admin_key(), str(t2, "id")), t2);
  // ... also with a trailing slash.
  EXPECT_EQ(c.get(tunnel_path(str(t, "id")) + "/", cp.admin_key()).json(), t);

  // Both list forms: 200, no redirect, identical bodies.
  auto l1 = c.get(kTunnels, cp.admin_key());
  auto l2 = c.get(kTunnelsSlash, cp.admin_key());
  ASSERT_EQ(l1.status, 200) << l1.body;
  ASSERT_EQ(l2.status, 200) << l2.body;
  EXPECT_FALSE(l1.header("location"));
  EXPECT_FALSE(l2.header("location"));
  EXPECT_EQ(l1.body, l2.body);
  EXPECT_EQ(l1.header("content-type").value_or(""), "application/json");
  const json::array list = l1.json().at("tunnels").as_array();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0], t);
  EXPECT_EQ(list[1], t2);

  // Health endpoints need no key.
  auto health = c.get("/healthz", "");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_TRUE(health.json().is_object()) << health.body;
  auto ready = c.get("/readyz", "");
  EXPECT_EQ(ready.status, 200) << ready.body;
  EXPECT_TRUE(ready.json().is_object()) << ready.body;
}

TEST(TunnelsApi, GetListOrderAndOtherOrganisations) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  const std::string& other = cp.other_org_admin_key();

  // Creation order differs from name order (and from the random ids' order).
  auto first = must_create(c, admin, "zz-first");
  cp.clock().advance(std::chrono::seconds(1));
  auto second = must_create(c, admin, "aa-second", "passthrough");
  cp.clock().advance(std::chrono::seconds(1));
  auto third = must_create(c, admin, "mm-third");
  ASSERT_FALSE(HasFailure());
  const std::string id1 = str(first, "id"), id2 = str(second, "id"), id3 = str(third, "id");
  expect_default_shape(first);
  EXPECT_EQ(str(first, "zone"), kDefaultZone);
  EXPECT_EQ(str(first, "public_host"), "zz-first.inkwire.localhost");

  cp.clock().advance(std::chrono::seconds(1));
  auto deleted = c.del(tunnel_path(id2), admin);
  ASSERT_EQ(deleted.status, 200) << deleted.body;

  auto listed = c.get(kTunnelsSlash, admin);
  ASSERT_EQ(listed.status, 200) << listed.body;
  const json::array list = listed.json().at("tunnels").as_array();
  ASSERT_EQ(list.size(), 3u) << listed.body;
  EXPECT_EQ(str(list[0], "id"), id1);
  EXPECT_EQ(str(list[1], "id"), id2);
  EXPECT_EQ(str(list[2], "id"), id3);
  EXPECT_EQ(str(list[1], "status"), "delete_pending") << "delete_pending tunnels must be listed (§2.5.1)";
  for (const auto& t : list) {
    expect_default_shape(t);
    EXPECT_EQ(get_tunnel(c, admin, str(t, "id")), t) << "list entry and GET differ";
  }
  EXPECT_LT(time_of(list[0], "created_at"), time_of(list[1], "created_at"));
  EXPECT_LT(time_of(list[1], "created_at"), time_of(list[2], "created_at"));

  // Unknown id: 404 {"detail":"tunnel not found"}.
  auto unknown = c.get(tunnel_path(kUnknownId), admin);
  ASSERT_TRUE(is_json_error(unknown, 404));
  EXPECT_EQ(unknown.detail(), "tunnel not found");

  // Another organisation sees nothing: an empty list, and on every id route the very same 404 as
  // for an id that does not exist.
  auto other_list = c.get(kTunnelsSlash, other);
  ASSERT_EQ(other_list.status, 200);
  EXPECT_EQ(other_list.json(), json::parse(R"({"tunnels":[]})"));
  const std::string csr = csr_body(make_csr_pem("aa-second.inkwire.localhost", {"aa-second.inkwire.localhost"}));
  for (const std::string& id : {id1, id2}) {
    SCOPED_TRACE(id);
    std::vector<std::pair<std::string, HttpResult>> answers = {
        {"GET", c.get(tunnel_path(id), other)},
        {"PATCH", c.patch(tunnel_path(id), other, R"({"description":"mine now"})")},
        {"DELETE", c.del(tunnel_path(id), other)},
        {"restore", c.post(tunnel_path(id) + "/restore", other, std::nullopt)},
        {"force", c.del(tunnel_path(id) + "/force", other)},
        {"rotate-secret", c.post(tunnel_path(id) + "/rotate-secret", other, std::nullopt)},
        {"sign-csr", c.post(tunnel_path(id) + "/sign-csr", other, csr)},
    };
    for (const auto& [what, r] : answers) {
      SCOPED_TRACE(what);
      EXPECT_TRUE(is_json_error(r, 404));
      EXPECT_EQ(r.body, unknown.body) << "another organisation's tunnel must look like an unknown one";
    }
  }
  // ... and the owner's tunnels are untouched.
  auto after = c.get(kTunnelsSlash, admin);
  EXPECT_EQ(after.body, listed.body);

  // Unknown ids on every id route, for the owner too.
  std::vector<std::pair<std::string, HttpResult>> unknowns = {
      {"PATCH", c.patch(tunnel_path(kUnknownId), admin, "{}")},
      {"DELETE", c.del(tunnel_path(kUnknownId), admin)},
      {"restore", c.post(tunnel_path(kUnknownId) + "/restore", admin, std::nullopt)},
      {"force", c.del(tunnel_path(kUnknownId) + "/force", admin)},
      {"rotate-secret", c.post(tunnel_path(kUnknownId) + "/rotate-secret", admin, std::nullopt)},
      {"sign-csr", c.post(tunnel_path(kUnknownId) + "/sign-csr", admin, csr)},
  };
  for (const auto& [what, r] : unknowns) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(is_json_error(r, 404));
  }
}

TEST(TunnelsApi, PatchDescriptionAndMetadata) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  auto created = must_create(c, admin, "patchy");
  ASSERT_FALSE(HasFailure());
  const std::string path = tunnel_path(str(created, "id"));
  auto patch = [&](const std::string& body) {
    cp.clock().advance(std::chrono::seconds(1));
    return c.patch(path, admin, body);
  };

  // {} changes nothing (updated_at may move).
  auto noop = patch("{}");
  ASSERT_EQ(noop.status, 200) << noop.body;
  {
    auto before = json::value(created);
    auto now = noop.json();
    expect_default_shape(now);
    before.as_object().erase("updated_at");
    now.as_object().erase("updated_at");
    EXPECT_EQ(now, before);
  }

  auto set_desc = patch(R"({"description":"first"})");
  ASSERT_EQ(set_desc.status, 200) << set_desc.body;
  EXPECT_EQ(str(set_desc.json(), "description"), "first");
  EXPECT_EQ(set_desc.json().at("metadata"), json::value(json::object{}));
  EXPECT_EQ(time_of(set_desc.json(), "updated_at"), now_us(cp));
  EXPECT_EQ(time_of(set_desc.json(), "created_at"), time_of(created, "created_at"));

  // An object replaces the whole metadata; description stays.
  auto m1 = patch(R"({"metadata":{"a":1,"b":{"c":[1,2,"x"]},"u":"\u00e9\ud83d\ude00"}})");
  ASSERT_EQ(m1.status, 200) << m1.body;
  EXPECT_EQ(m1.json().at("metadata"), json::parse(R"({"a":1,"b":{"c":[1,2,"x"]},"u":"é😀"})"));
  EXPECT_EQ(str(m1.json(), "description"), "first");
  auto m2 = patch(R"({"metadata":{"z":true}})");
  ASSERT_EQ(m2.status, 200) << m2.body;
  EXPECT_EQ(m2.json().at("metadata"), json::parse(R"({"z":true})")) << "metadata must be replaced, not merged";

  // null clears the description; metadata stays.
  auto clear_desc = patch(R"({"description":null})");
  ASSERT_EQ(clear_desc.status, 200) << clear_desc.body;
  EXPECT_TRUE(clear_desc.json().at("description").is_null());
  EXPECT_EQ(clear_desc.json().at("metadata"), json::parse(R"({"z":true})"));

  // {} and null both clear metadata to {}.
  auto clear1 = patch(R"({"metadata":{}})");
  ASSERT_EQ(clear1.status, 200) << clear1.body;
  EXPECT_EQ(clear1.json().at("metadata"), json::value(json::object{}));
  ASSERT_EQ(patch(R"({"metadata":{"k":"v"},"description":"both"})").status, 200);
  auto clear2 = patch(R"({"metadata":null})");
  ASSERT_EQ(clear2.status, 200) << clear2.body;
  EXPECT_EQ(clear2.json().at("metadata"), json::value(json::object{}));
  EXPECT_EQ(str(clear2.json(), "description"), "both");
  EXPECT_EQ(get_tunnel(c, admin, str(created, "id")), clear2.json());

  // Non-object metadata → 422, nothing changed.
  for (const char* bad : {R"("x")", "[1]", "5", "true", "[]"}) {
    SCOPED_TRACE(bad);
    EXPECT_TRUE(is_json_error(patch(patch_body("metadata", bad)), 422));
  }

  // Metadata: exactly 4096 bytes as compact JSON is accepted, 4097 is not.
  const std::string at_limit = metadata_of_size(4096);
  ASSERT_EQ(at_limit.size(), 4096u);
  auto ok = patch(patch_body("metadata", at_limit));
  ASSERT_EQ(ok.status, 200) << ok.detail();
  EXPECT_EQ(ok.json().at("metadata"), json::parse(at_limit));
  EXPECT_EQ(json::serialize(get_tunnel(c, admin, str(created, "id")).at("metadata")), at_limit);
  auto over = patch(patch_body("metadata", metadata_of_size(4097)));
  EXPECT_TRUE(is_json_error(over, 422));
  EXPECT_EQ(json::serialize(get_tunnel(c, admin, str(created, "id")).at("metadata")), at_limit)
      << "a refused PATCH must not change the metadata";
  // The limit is on the compact form: whitespace the client sends does not count...
  std::string spaced = at_limit;
  spaced.insert(1, 500, ' ');
  spaced.insert(spaced.size() - 1, 500, '\n');
  EXPECT_EQ(patch(patch_body("metadata", spaced)).status, 200);
  // ... but UTF-8 bytes do: 2044 two-byte characters + 8 bytes of {"k":""} = 4096.
  const std::string multibyte = metadata_of_size(4096, "é");
  ASSERT_EQ(multibyte.size(), 4096u);
  EXPECT_EQ(patch(patch_body("metadata", multibyte)).status, 200);
  EXPECT_TRUE(is_json_error(patch(patch_body("metadata", metadata_of_size(4097, "é"))), 422));

  // Description: at most 1000 characters, counted as characters, not bytes.
  struct DescCase {
    std::string label;
    std::string text;
    int status;
  };
  const std::vector<DescCase> descriptions = {
      {"1000 ASCII", std::string(1000, 'd'), 200},
      {"1001 ASCII", std::string(1001, 'd'), 422},
      {"1000 two-byte", repeat("é", 1000), 200},
      {"1000 four-byte", repeat("😀", 1000), 200},
      {"1001 two-byte", repeat("é", 1001), 422},
      {"empty", "", 200},
  };
  for (const auto& d : descriptions) {
    SCOPED_TRACE(d.label);
    auto r = patch(patch_body("description", json_string(d.text)));
    if (d.status == 200) {
      ASSERT_EQ(r.status, 200) << r.body;
      EXPECT_EQ(str(r.json(), "description"), d.text);
    } else {
      EXPECT_TRUE(is_json_error(r, d.status));
    }
  }
  // The same limit at create.
  EXPECT_TRUE(is_json_error(
      c.post(kTunnelsSlash, admin, R"({"tunnel_name":"desc-long","description":)" + json_string(std::string(1001, 'd')) + "}"),
      422));
  auto long_ok = c.post(kTunnelsSlash, admin,
                        R"({"tunnel_name":"desc-ok","description":)" + json_string(repeat("é", 1000)) + "}");
  EXPECT_EQ(long_ok.status, 201) << long_ok.body;

  // PATCH is allowed while delete_pending, and keeps the state and its deadline.
  auto del = c.del(path, admin);
  ASSERT_EQ(del.status, 200) << del.body;
  auto pending_patch = patch(R"({"description":"still here","metadata":{"p":1}})");
  ASSERT_EQ(pending_patch.status, 200) << pending_patch.body;
  EXPECT_EQ(str(pending_patch.json(), "status"), "delete_pending");
  EXPECT_EQ(pending_patch.json().at("restore_deadline_at"), del.json().at("restore_deadline_at"));
  EXPECT_EQ(str(pending_patch.json(), "description"), "still here");
}

TEST(TunnelsApi, DeleteAndRestore) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  auto edge = must_create(c, admin, "del-edge");
  auto pt = must_create(c, admin, "del-pt", "passthrough");
  ASSERT_FALSE(HasFailure());
  const std::string edge_path = tunnel_path(str(edge, "id"));
  const std::string pt_path = tunnel_path(str(pt, "id"));

  cp.clock().advance(std::chrono::minutes(10));
  const auto deleted_at = now_us(cp);
  auto del = c.del(edge_path, admin);
  ASSERT_EQ(del.status, 200) << del.body;
  EXPECT_EQ(del.header("content-type").value_or(""), "application/json");
  const json::value pending = del.json();
  expect_default_shape(pending);
  EXPECT_EQ(str(pending, "id"), str(edge, "id"));
  EXPECT_EQ(str(pending, "status"), "delete_pending");
  EXPECT_EQ(time_of(pending, "restore_deadline_at"), deleted_at + kDayMicros) << pending;
  EXPECT_EQ(time_of(pending, "updated_at"), deleted_at);
  EXPECT_EQ(get_tunnel(c, admin, str(edge, "id")), pending);

  // DELETE again → 409; nothing changes.
  cp.clock().advance(std::chrono::minutes(1));
  auto again = c.del(edge_path, admin);
  EXPECT_TRUE(is_json_error(again, 409));
  EXPECT_EQ(get_tunnel(c, admin, str(edge, "id")), pending);

  // Restore (bodiless, as the SDK sends it) → 200, active at once, deadline cleared.
  auto restored = c.post(edge_path + "/restore", admin, std::nullopt);
  ASSERT_EQ(restored.status, 200) << restored.body;
  expect_default_shape(restored.json());
  EXPECT_EQ(str(restored.json(), "status"), "active");
  EXPECT_TRUE(restored.json().at("restore_deadline_at").is_null());
  EXPECT_EQ(get_tunnel(c, admin, str(edge, "id")), restored.json());

  // Restore when not delete_pending → 409 with the documented detail.
  auto not_pending = c.post(edge_path + "/restore", admin, std::nullopt);
  ASSERT_TRUE(is_json_error(not_pending, 409));
  EXPECT_EQ(not_pending.detail(), kNotPending);

  // Passthrough without a certificate: delete from awaiting_cert, restore back to awaiting_cert.
  auto pt_del = c.del(pt_path, admin);
  ASSERT_EQ(pt_del.status, 200) << pt_del.body;
  EXPECT_EQ(str(pt_del.json(), "status"), "delete_pending");
  auto pt_restored = c.post(pt_path + "/restore", admin, std::nullopt);
  ASSERT_EQ(pt_restored.status, 200) << pt_restored.body;
  EXPECT_EQ(str(pt_restored.json(), "status"), "awaiting_cert");
  EXPECT_TRUE(pt_restored.json().at("restore_deadline_at").is_null());
  auto pt_not_pending = c.post(pt_path + "/restore", admin, std::nullopt);
  ASSERT_TRUE(is_json_error(pt_not_pending, 409));
  EXPECT_EQ(pt_not_pending.detail(), kNotPending);

  // Restore works until the very end of the window ...
  auto del2 = c.del(edge_path, admin);
  ASSERT_EQ(del2.status, 200) << del2.body;
  EXPECT_EQ(time_of(del2.json(), "restore_deadline_at"), now_us(cp) + kDayMicros);
  cp.clock().advance(std::chrono::hours(24) - std::chrono::seconds(1));
  auto late = c.post(edge_path + "/restore", admin, std::nullopt);
  ASSERT_EQ(late.status, 200) << late.body;
  EXPECT_EQ(str(late.json(), "status"), "active");
  // ... and past it the tunnel is gone: restore → 404, GET → 404, not listed.
  ASSERT_EQ(c.del(edge_path, admin).status, 200);
  cp.clock().advance(std::chrono::hours(24) + std::chrono::seconds(1));
  EXPECT_TRUE(is_json_error(c.post(edge_path + "/restore", admin, std::nullopt), 404));
  EXPECT_TRUE(is_json_error(c.get(edge_path, admin), 404));
  auto list = c.get(kTunnelsSlash, admin).json().at("tunnels").as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(str(list[0], "id"), str(pt, "id"));
}

TEST(TunnelsApi, ForceDelete) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  auto t = must_create(c, admin, "force-me");
  ASSERT_FALSE(HasFailure());
  const std::string path = tunnel_path(str(t, "id"));

  // Member key: 403 whatever the state; not pending: 409.
  EXPECT_TRUE(is_json_error(c.del(path + "/force", cp.member_key()), 403));
  auto active = c.del(path + "/force", admin);
  EXPECT_TRUE(is_json_error(active, 409));
  EXPECT_EQ(str(get_tunnel(c, admin, str(t, "id")), "status"), "active");

  ASSERT_EQ(c.del(path, admin).status, 200);
  EXPECT_TRUE(is_json_error(c.del(path + "/force", cp.member_key()), 403));
  EXPECT_EQ(str(get_tunnel(c, admin, str(t, "id")), "status"), "delete_pending");

  cp.clock().advance(std::chrono::minutes(5));
  auto forced = c.del(path + "/force", admin);
  ASSERT_EQ(forced.status, 200) << forced.body;
  EXPECT_EQ(forced.header("content-type").value_or(""), "application/json");
  expect_default_shape(forced.json());
  EXPECT_EQ(str(forced.json(), "id"), str(t, "id"));
  EXPECT_EQ(str(forced.json(), "status"), "deleted");
  EXPECT_EQ(time_of(forced.json(), "updated_at"), now_us(cp));

  // Gone: GET and every other route → 404, not listed, and the name is free again.
  EXPECT_TRUE(is_json_error(c.get(path, admin), 404));
  EXPECT_TRUE(is_json_error(c.del(path + "/force", admin), 404));
  EXPECT_TRUE(is_json_error(c.post(path + "/restore", admin, std::nullopt), 404));
  EXPECT_TRUE(is_json_error(c.del(path, admin), 404));
  EXPECT_TRUE(is_json_error(c.patch(path, admin, "{}"), 404));
  EXPECT_TRUE(is_json_error(c.post(path + "/rotate-secret", admin, std::nullopt), 404));
  EXPECT_EQ(c.get(kTunnelsSlash, admin).json(), json::parse(R"({"tunnels":[]})"));
  auto again = create_tunnel(c, admin, "force-me", "passthrough");
  ASSERT_EQ(again.status, 201) << again.body;
  EXPECT_NE(str(again.json().at("tunnel"), "id"), str(t, "id"));
  EXPECT_EQ(str(again.json().at("tunnel"), "status"), "awaiting_cert");
}

TEST(TunnelsApi, RotateSecret) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  auto created = create_tunnel(c, admin, "rotor");
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string id = str(created.json().at("tunnel"), "id");
  const std::string path = tunnel_path(id);
  std::vector<std::string> secrets = {str(created.json(), "connect_secret")};

  auto rotate = [&] {
    auto r = c.post(path + "/rotate-secret", admin, std::nullopt);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type").value_or(""), "application/json");
    auto v = r.json();
    EXPECT_TRUE(v.is_object() && v.as_object().size() == 1) << "RotatedSecret is {connect_secret}: " << r.body;
    const std::string s = str(v, "connect_secret");
    EXPECT_EQ(s.size(), 48u) << s;
    EXPECT_EQ(s.rfind("tsec_", 0), 0u) << s;
    EXPECT_TRUE(is_base64url(s.substr(std::min<std::size_t>(5, s.size())))) << s;
    for (const auto& old : secrets) EXPECT_NE(s, old) << "rotation must produce a new secret";
    secrets.push_back(s);
  };
  rotate();
  rotate();
  EXPECT_EQ(str(get_tunnel(c, admin, id), "status"), "active");

  // Allowed while delete_pending (the SDK's advice: rotate first, then restore).
  ASSERT_EQ(c.del(path, admin).status, 200);
  rotate();
  EXPECT_EQ(str(get_tunnel(c, admin, id), "status"), "delete_pending") << "rotation must not restore";
  auto restored = c.post(path + "/restore", admin, std::nullopt);
  ASSERT_EQ(restored.status, 200) << restored.body;
  EXPECT_EQ(str(restored.json(), "status"), "active");
  // The secret never appears in a Tunnel object.
  for (const auto& s : secrets) EXPECT_EQ(restored.body.find(s), std::string::npos);
}

TEST(TunnelsApi, SignCsrRefusals) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  auto edge = must_create(c, admin, "csr-edge");
  auto pt = must_create(c, admin, "csr-pt", "passthrough");
  ASSERT_FALSE(HasFailure());
  const std::string host = "csr-pt.inkwire.localhost";
  const std::string pt_path = tunnel_path(str(pt, "id"));
  auto sign = [&](const std::string& path, const std::string& pem) {
    return c.post(path + "/sign-csr", admin, csr_body(pem));
  };

  // Edge tunnel → 409 naming tls_mode (the SDK's TunnelTLSModeMismatch), whatever the CSR.
  const std::string edge_host = "csr-edge.inkwire.localhost";
  for (const std::string& pem : {make_csr_pem(edge_host, {edge_host}), std::string("junk")}) {
    auto on_edge = sign(tunnel_path(str(edge, "id")), pem);
    ASSERT_TRUE(is_json_error(on_edge, 409));
    EXPECT_NE(on_edge.detail().find("tls_mode"), std::string::npos) << on_edge.detail();
  }

  // Bad CSRs → 422; the tunnel stays awaiting_cert without a certificate.
  struct Bad {
    const char* label;
    std::string pem;
  };
  const std::vector<Bad> bad = {
      {"wrong CN", make_csr_pem("other.inkwire.localhost", {"other.inkwire.localhost"})},
      {"wrong CN, right SAN", make_csr_pem("other.inkwire.localhost", {host})},
      {"CN without the zone", make_csr_pem("csr-pt", {})},
      {"right CN, wrong SAN", make_csr_pem(host, {"other.inkwire.localhost"})},
      {"right CN, extra SAN", make_csr_pem(host, {host, "evil.example.com"})},
      {"another tunnel's host", make_csr_pem(edge_host, {edge_host})},
      {"not PEM", "hello"},
      {"empty", ""},
      {"truncated", make_csr_pem(host, {host}).substr(0, 200)},
      {"two CSRs", make_csr_pem(host, {host}) + make_csr_pem(host, {host})},
  };
  for (const auto& b : bad) {
    SCOPED_TRACE(b.label);
    EXPECT_TRUE(is_json_error(sign(pt_path, b.pem), 422));
  }
  auto still = get_tunnel(c, admin, str(pt, "id"));
  EXPECT_EQ(str(still, "status"), "awaiting_cert");
  EXPECT_TRUE(still.at("cert_pem").is_null());
  EXPECT_EQ(still, json::value(pt));

  // delete_pending → 409 whose detail avoids the words that mean a tls_mode mismatch (the SDK's
  // TunnelCSRStateConflict), even for a CSR that would otherwise be refused.
  ASSERT_EQ(c.del(pt_path, admin).status, 200);
  for (const std::string& pem : {make_csr_pem(host, {host}), std::string("junk")}) {
    auto pending = sign(pt_path, pem);
    ASSERT_TRUE(is_json_error(pending, 409));
    for (const char* word : {"edge", "tls_mode", "passthrough"})
      EXPECT_EQ(lower(pending.detail()).find(word), std::string::npos) << word << " in: " << pending.detail();
  }
  // Restoring a passthrough tunnel without a certificate → awaiting_cert.
  auto restored = c.post(pt_path + "/restore", admin, std::nullopt);
  ASSERT_EQ(restored.status, 200) << restored.body;
  EXPECT_EQ(str(restored.json(), "status"), "awaiting_cert");
}

TEST(TunnelsApi, SignCsrIssuesCertificate) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  auto pt = must_create(c, admin, "csr-pt", "passthrough");
  auto pt2 = must_create(c, admin, "csr-pt2", "passthrough");
  ASSERT_FALSE(HasFailure());
  const std::string host = "csr-pt.inkwire.localhost";
  const std::string pt_path = tunnel_path(str(pt, "id"));
  const std::string pt2_path = tunnel_path(str(pt2, "id"));
  auto sign = [&](const std::string& path, const std::string& pem) {
    return c.post(path + "/sign-csr", admin, csr_body(pem));
  };

  // A CSR as the SDK builds it → 200 SignedCert, tunnel active with the cert fields set.
  cp.clock().advance(std::chrono::hours(1));
  const auto signed_at = now_us(cp);
  auto good = sign(pt_path, make_csr_pem(host, {host}));
  ASSERT_EQ(good.status, 200) << good.body;
  EXPECT_EQ(good.header("content-type").value_or(""), "application/json");
  const json::value cert = good.json();
  ASSERT_TRUE(cert.is_object()) << good.body;
  EXPECT_EQ(cert.as_object().size(), 4u) << good.body;
  const std::string cert_pem = str(cert, "cert_pem");
  const std::string chain_pem = str(cert, "chain_pem");
  const std::string fingerprint = str(cert, "cert_fingerprint_sha256");
  EXPECT_EQ(cert_pem.rfind("-----BEGIN CERTIFICATE-----", 0), 0u) << cert_pem;
  ASSERT_FALSE(cert_pem.empty());
  EXPECT_EQ(cert_pem.back(), '\n');
  ASSERT_FALSE(chain_pem.empty());
  EXPECT_EQ(chain_pem.back(), '\n');
  EXPECT_EQ(chain_pem.find(cert_pem), std::string::npos) << "the chain must not repeat the leaf";
  EXPECT_EQ(fingerprint.size(), 64u);
  EXPECT_TRUE(is_lower_hex(fingerprint)) << fingerprint;
  const auto expires = parse_utc_micros(str(cert, "cert_expires_at"));
  ASSERT_TRUE(expires) << cert;
  EXPECT_NEAR(static_cast<double>(*expires - signed_at), static_cast<double>(90 * kDayMicros),
              static_cast<double>(kHourMicros))
      << "leaves live about 90 days from the server clock's now";
  {
    auto leaf = parse_certificate(cert_pem);
    ASSERT_TRUE(leaf);
    EXPECT_EQ(sha256_hex(certificate_der(leaf.get())), fingerprint) << "fingerprint is SHA-256 over the leaf's DER";
    EXPECT_EQ(X509_check_host(leaf.get(), host.c_str(), host.size(), 0, nullptr), 1) << "leaf must name " << host;
    auto ca = parse_certificate(chain_pem);
    ASSERT_TRUE(ca);
    EXPECT_EQ(X509_verify(leaf.get(), X509_get0_pubkey(ca.get())), 1) << "chain_pem must hold the issuer";
  }
  auto active = get_tunnel(c, admin, str(pt, "id"));
  expect_default_shape(active);
  EXPECT_EQ(str(active, "status"), "active");
  EXPECT_EQ(str(active, "cert_pem"), cert_pem);
  EXPECT_EQ(str(active, "cert_fingerprint_sha256"), fingerprint);
  EXPECT_EQ(active.at("cert_expires_at"), cert.at("cert_expires_at"));

  // Signing again on an active tunnel (renewal with a new key, here without a SAN) → 200, active,
  // and the tunnel now carries the new certificate.
  cp.clock().advance(std::chrono::hours(24));
  auto renewed = sign(pt_path, make_csr_pem(host, {}));
  ASSERT_EQ(renewed.status, 200) << renewed.body;
  EXPECT_NE(str(renewed.json(), "cert_fingerprint_sha256"), fingerprint);
  EXPECT_GT(parse_utc_micros(str(renewed.json(), "cert_expires_at")).value_or(0), *expires);
  auto after_renewal = get_tunnel(c, admin, str(pt, "id"));
  EXPECT_EQ(str(after_renewal, "status"), "active");
  EXPECT_EQ(str(after_renewal, "cert_fingerprint_sha256"), str(renewed.json(), "cert_fingerprint_sha256"));

  // delete_pending with a certificate: signing → 409 (state), restore → active with the cert kept.
  ASSERT_EQ(c.del(pt_path, admin).status, 200);
  auto pending = sign(pt_path, make_csr_pem(host, {host}));
  ASSERT_TRUE(is_json_error(pending, 409));
  for (const char* word : {"edge", "tls_mode", "passthrough"})
    EXPECT_EQ(lower(pending.detail()).find(word), std::string::npos) << word << " in: " << pending.detail();
  auto restored = c.post(pt_path + "/restore", admin, std::nullopt);
  ASSERT_EQ(restored.status, 200) << restored.body;
  EXPECT_EQ(str(restored.json(), "status"), "active");
  EXPECT_EQ(str(restored.json(), "cert_fingerprint_sha256"), str(renewed.json(), "cert_fingerprint_sha256"));

  // A CN-only CSR (no SAN) on a fresh awaiting_cert tunnel → accepted, active.
  const std::string host2 = "csr-pt2.inkwire.localhost";
  auto cn_only = sign(pt2_path, make_csr_pem(host2, {}));
  ASSERT_EQ(cn_only.status, 200) << cn_only.body;
  EXPECT_EQ(str(get_tunnel(c, admin, str(pt2, "id")), "status"), "active");

  // Issuing is audited like every other mutation.
  auto audit = c.get("/api/v1/audit-log?limit=500", admin);
  ASSERT_EQ(audit.status, 200) << audit.body;
  int issued = 0;
  const json::value entries = audit.json();
  for (const auto& e : entries.at("entries").as_array()) {
    if (str(e, "action") != "tunnel.certificate_issued") continue;
    ++issued;
    EXPECT_EQ(str(e, "api_key_id"), key_id_of(admin));
    EXPECT_EQ(str(e, "source_ip"), "127.0.0.1");
  }
  EXPECT_EQ(issued, 3);
}

TEST(TunnelsApi, NameTakenAndReserved) {
  TestControlPlane cp([](inkwire::Config& c) {
    c.controlplane.reserved_names = {"acme-internal"};
    c.controlplane.reserved_prefixes = {"pr-"};
  });
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  const std::string& other = cp.other_org_admin_key();

  ASSERT_EQ(create_tunnel(c, admin, "taken").status, 201);
  auto held = must_create(c, admin, "held", "passthrough");
  ASSERT_EQ(c.del(tunnel_path(str(held, "id")), admin).status, 200);
  ASSERT_EQ(create_tunnel(c, other, "globex-own").status, 201);

  struct Taken {
    const char* label;
    const std::string* key;
    const char* name;
    const char* mode;
  };
  const std::vector<Taken> taken = {
      {"same org", &admin, "taken", "edge"},
      {"same org, other mode", &admin, "taken", "passthrough"},
      {"other org", &other, "taken", "edge"},
      {"held by delete_pending", &admin, "held", "passthrough"},
      {"held by delete_pending, other org", &other, "held", "edge"},
      {"held by another org", &admin, "globex-own", "edge"},
  };
  for (const auto& t : taken) {
    SCOPED_TRACE(t.label);
    auto r = create_tunnel(c, *t.key, t.name, t.mode);
    ASSERT_TRUE(is_json_error(r, 409));
    EXPECT_EQ(r.detail(), kNameTaken);
  }

  // Reserved names → 409 (not 422) mentioning "reserved".
  for (const char* name : {"www", "api", "inkwire", "admin", "localhost", "acme-internal", "pr-123"}) {
    SCOPED_TRACE(name);
    auto r = create_tunnel(c, admin, name);
    ASSERT_TRUE(is_json_error(r, 409));
    EXPECT_NE(r.detail().find("reserved"), std::string::npos) << r.detail();
  }
  // Syntax comes first: an invalid spelling of a reserved name is a 422.
  EXPECT_TRUE(is_json_error(create_tunnel(c, admin, "WWW"), 422));
  // Names that merely contain or resemble reserved ones are fine.
  for (const char* name : {"www2", "my-api", "apps", "acme-internal2", "p-r"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(create_tunnel(c, admin, name).status, 201);
  }

  // None of the refusals created anything.
  auto list = c.get(kTunnelsSlash, admin).json().at("tunnels").as_array();
  EXPECT_EQ(list.size(), 2u + 5u);
}

TEST(TunnelsApi, DailyCreateLimit) {
  TestControlPlane cp([](inkwire::Config& c) { c.controlplane.daily_create_limit = 3; });
  auto c = cp.client();
  const std::string& admin = cp.admin_key();

  for (const char* name : {"lim-1", "lim-2", "lim-3"}) ASSERT_EQ(create_tunnel(c, admin, name).status, 201) << name;
  auto refused = create_tunnel(c, admin, "lim-4");
  ASSERT_TRUE(is_json_error(refused, 429));
  EXPECT_TRUE(is_json_error(create_tunnel(c, admin, "lim-5", "passthrough"), 429)) << "refusals do not reset it";
  EXPECT_EQ(c.get(kTunnelsSlash, admin).json().at("tunnels").as_array().size(), 3u);
  // Deleting does not give creations back.
  auto list = c.get(kTunnelsSlash, admin).json().at("tunnels").as_array();
  ASSERT_EQ(c.del(tunnel_path(str(list[0], "id")), admin).status, 200);
  EXPECT_TRUE(is_json_error(create_tunnel(c, admin, "lim-4"), 429));

  // The limit is per organisation.
  EXPECT_EQ(create_tunnel(c, cp.other_org_admin_key(), "gx-1").status, 201);

  // A day later the organisation may create again, including the name refused earlier.
  cp.clock().advance(std::chrono::hours(24));
  auto next_day = create_tunnel(c, admin, "lim-4");
  EXPECT_EQ(next_day.status, 201) << next_day.body;
}

TEST(TunnelsApi, MemberKeyIsReadOnly) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  const std::string& member = cp.member_key();
  auto edge = must_create(c, admin, "mem-edge");
  auto pt = must_create(c, admin, "mem-pt", "passthrough");
  ASSERT_FALSE(HasFailure());
  const std::string edge_path = tunnel_path(str(edge, "id"));
  const std::string pt_path = tunnel_path(str(pt, "id"));

  // Reads are allowed.
  auto list = c.get(kTunnelsSlash, member);
  ASSERT_EQ(list.status, 200) << list.body;
  EXPECT_EQ(list.json().at("tunnels").as_array().size(), 2u);
  auto got = c.get(edge_path, member);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.json(), json::value(edge));

  // Every mutation → 403 with a detail, and changes nothing.
  const std::string before = list.body;
  const std::string csr = csr_body(make_csr_pem("mem-pt.inkwire.localhost", {"mem-pt.inkwire.localhost"}));
  std::vector<std::pair<std::string, HttpResult>> refused = {
      {"create", create_tunnel(c, member, "mem-new")},
      {"patch", c.patch(edge_path, member, R"({"description":"x"})")},
      {"patch {}", c.patch(edge_path, member, "{}")},
      {"delete", c.del(edge_path, member)},
      {"rotate-secret", c.post(edge_path + "/rotate-secret", member, std::nullopt)},
      {"sign-csr", c.post(pt_path + "/sign-csr", member, csr)},
  };
  for (const auto& [what, r] : refused) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(is_json_error(r, 403));
  }
  EXPECT_EQ(c.get(kTunnelsSlash, admin).body, before);

  // Restore and force-delete of a delete_pending tunnel → 403 too.
  auto pending = c.del(edge_path, admin);
  ASSERT_EQ(pending.status, 200);
  EXPECT_TRUE(is_json_error(c.post(edge_path + "/restore", member, std::nullopt), 403));
  EXPECT_TRUE(is_json_error(c.del(edge_path + "/force", member), 403));
  EXPECT_EQ(get_tunnel(c, admin, str(edge, "id")), pending.json());

  // The refused create did not take the name.
  EXPECT_EQ(create_tunnel(c, admin, "mem-new").status, 201);
}

TEST(TunnelsApi, AuthenticationFailuresAre401) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  auto t = must_create(c, admin, "auth-me");
  ASSERT_FALSE(HasFailure());
  const std::string path = tunnel_path(str(t, "id"));

  // Use the member key once so a cached lookup exists, then revoke it through the API.
  ASSERT_EQ(c.get(kTunnelsSlash, cp.member_key()).status, 200);
  auto revoke = c.del("/api/v1/api-keys/" + key_id_of(cp.member_key()), admin);
  ASSERT_EQ(revoke.status, 200) << revoke.body;

  const std::string admin_id = key_id_of(admin);
  const std::string secret43(43, 'A');
  struct BadKey {
    const char* label;
    std::string key;
  };
  const std::vector<BadKey> keys = {
      {"missing", ""},
      {"malformed", "not-a-key"},
      {"prefix only", "ApiKey_"},
      {"id not a uuid", "ApiKey_not-a-uuid-at-all-not-a-uuid-at-all.secret"},
      {"no secret part", "ApiKey_" + admin_id},
      {"lowercase prefix", "apikey_" + admin.substr(7)},
      {"unknown key id", "ApiKey_0f0e0d0c-0b0a-4908-8706-050403020100." + secret43},
      {"wrong secret part", "ApiKey_" + admin_id + "." + secret43},
      {"truncated secret", admin.substr(0, admin.size() - 1)},
      {"extra character", admin + "x"},
      {"far too long", admin + std::string(400, 'x')},
      {"revoked", cp.member_key()},
  };
  for (const auto& k : keys) {
    SCOPED_TRACE(k.label);
    EXPECT_TRUE(is_json_error(c.get(kTunnelsSlash, k.key), 401));
    EXPECT_TRUE(is_json_error(c.get(path, k.key), 401));
    EXPECT_TRUE(is_json_error(create_tunnel(c, k.key, "auth-new"), 401));
    EXPECT_TRUE(is_json_error(c.del(path, k.key), 401));
    EXPECT_TRUE(is_json_error(c.post(path + "/rotate-secret", k.key, std::nullopt), 401));
    // Authentication comes before validation: a malformed body or id still gets 401.
    EXPECT_TRUE(is_json_error(c.post(kTunnelsSlash, k.key, "{"), 401));
    EXPECT_TRUE(is_json_error(c.get(tunnel_path("not-a-uuid"), k.key), 401));
  }
  // Nothing changed, and the admin key (cached by now) still works.
  auto list = c.get(kTunnelsSlash, admin);
  ASSERT_EQ(list.status, 200);
  const json::array tunnels = list.json().at("tunnels").as_array();
  ASSERT_EQ(tunnels.size(), 1u);
  EXPECT_EQ(tunnels[0], json::value(t));
}
