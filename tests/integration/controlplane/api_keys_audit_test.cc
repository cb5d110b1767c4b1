// /api/v1/api-keys (admin-only key management, revocation taking effect at once) and
// /api/v1/audit-log (every tunnel mutation recorded with its caller, newest first, paged), over
// real HTTP against a real PostgreSQL database.
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/support/api_test_helpers.h"
#include "tests/support/test_control_plane.h"

using namespace inkwire::testing;
using namespace inkwire::testing::api;
namespace json = boost::json;

namespace {

constexpr const char* kKeys = "/api/v1/api-keys";
constexpr const char* kAudit = "/api/v1/audit-log";

std::int64_t now_us(TestControlPlane& cp) { return micros_of(cp.clock().now()); }

bool is_api_key(const std::string& key) {
  static const std::regex re(
      "^ApiKey_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\\.[A-Za-z0-9_-]{43}$");
  return std::regex_match(key, re);
}

// Creates a key through the API and returns the 201 body.
json::value create_key(const HttpClient& c, const std::string& admin, const std::string& body) {
  auto r = c.post(kKeys, admin, body);
  EXPECT_EQ(r.status, 201) << r.body;
  return r.json();
}

json::array list_keys(const HttpClient& c, const std::string& key) {
  auto r = c.get(kKeys, key);
  EXPECT_EQ(r.status, 200) << r.body;
  auto v = r.json();
  if (!v.is_object() || !v.as_object().contains("api_keys")) return {};
  return v.at("api_keys").as_array();
}

const json::value* find_by(const json::array& a, std::string_view member, std::string_view value) {
  for (const auto& e : a)
    if (str(e, member) == value) return &e;
  return nullptr;
}

json::value audit_page(const HttpClient& c, const std::string& key, const std::string& query) {
  auto r = c.get(std::string(kAudit) + query, key);
  EXPECT_EQ(r.status, 200) << query << ": " << r.body;
  EXPECT_EQ(r.header("content-type").value_or(""), "application/json");
  return r.json();
}

// The members of one audit entry, with their JSON types.
void expect_entry_shape(const json::value& e) {
  ASSERT_TRUE(e.is_object()) << e;
  ASSERT_TRUE(e.as_object().contains("id") && e.at("id").is_int64()) << e;
  EXPECT_TRUE(parse_utc_micros(str(e, "at"))) << e;
  EXPECT_FALSE(str(e, "action").empty()) << e;
  for (const char* m : {"organization_id", "api_key_id", "tunnel_id", "source_ip", "detail"}) {
    ASSERT_TRUE(e.as_object().contains(m)) << m << " missing in " << e;
    EXPECT_TRUE(e.at(m).is_string() || e.at(m).is_null()) << m << " in " << e;
  }
}

}  // namespace

TEST(ApiKeys, CreateListAndRevoke) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();

  // Create a member key: 201, the key shown once, in the documented format.
  const auto created_at = now_us(cp);
  auto created = c.post(kKeys, admin, R"({"scope":"member","description":"ci"})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("content-type").value_or(""), "application/json");
  const json::value k = created.json();
  const std::string key = str(k, "api_key");
  const std::string id = str(k, "id");
  EXPECT_TRUE(is_api_key(key)) << key;
  EXPECT_TRUE(is_canonical_uuid(id)) << id;
  EXPECT_EQ(key_id_of(key), id);
  EXPECT_EQ(str(k, "display_prefix"), "ApiKey_" + id);
  EXPECT_EQ(key.rfind(str(k, "display_prefix") + ".", 0), 0u);
  EXPECT_EQ(str(k, "organization_id"), cp.org_id());
  EXPECT_EQ(str(k, "scope"), "member");
  EXPECT_EQ(str(k, "description"), "ci");
  EXPECT_EQ(parse_utc_micros(str(k, "created_at")), created_at);
  EXPECT_TRUE(k.at("revoked_at").is_null());

  // It works at once, with member rights.
  EXPECT_EQ(c.get(kTunnelsSlash, key).status, 200);
  EXPECT_TRUE(is_json_error(create_tunnel(c, key, "by-member"), 403));

  // An admin key made through the API has admin rights.
  const json::value k2 = create_key(c, admin, R"({"scope":"admin"})");
  const std::string admin2 = str(k2, "api_key");
  EXPECT_TRUE(is_api_key(admin2)) << admin2;
  EXPECT_EQ(str(k2, "scope"), "admin");
  EXPECT_TRUE(k2.at("description").is_null());
  EXPECT_NE(admin2, key);
  EXPECT_EQ(create_tunnel(c, admin2, "by-new-admin").status, 201);
  EXPECT_EQ(c.get(kKeys, admin2).status, 200);

  // The list shows every key of the organisation, never a secret or its hash.
  auto listed = c.get(kKeys, admin);
  ASSERT_EQ(listed.status, 200) << listed.body;
  const auto keys = listed.json().at("api_keys").as_array();
  ASSERT_EQ(keys.size(), 4u) << listed.body;  // the fixture's admin and member keys, and the two new ones
  for (const std::string& full : {cp.admin_key(), cp.member_key(), key, admin2}) {
    ASSERT_NE(find_by(keys, "id", key_id_of(full)), nullptr) << key_id_of(full);
    EXPECT_EQ(listed.body.find(full), std::string::npos) << "the list shows a key";
    EXPECT_EQ(listed.body.find(full.substr(full.find('.') + 1)), std::string::npos) << "the list shows a secret";
    EXPECT_EQ(listed.body.find(sha256_hex(full)), std::string::npos) << "the list shows a key hash";
  }
  for (const auto& e : keys) {
    for (const char* m : {"api_key", "secret", "secret_sha256", "hash"})
      EXPECT_FALSE(e.as_object().contains(m)) << m << " in " << e;
    EXPECT_EQ(str(e, "display_prefix"), "ApiKey_" + str(e, "id"));
  }
  {
    json::value expected = k;
    expected.as_object().erase("api_key");
    EXPECT_EQ(*find_by(keys, "id", id), expected) << "list entry differs from the create response";
  }

  // Revocation through the API takes effect at once, even though the key was just used (and so
  // is in the server's authentication cache).
  ASSERT_EQ(c.get(kTunnelsSlash, key).status, 200);
  cp.clock().advance(std::chrono::minutes(3));
  auto revoked = c.del(std::string(kKeys) + "/" + id, admin);
  ASSERT_EQ(revoked.status, 200) << revoked.body;
  EXPECT_TRUE(revoked.json().is_object()) << revoked.body;
  EXPECT_TRUE(is_json_error(c.get(kTunnelsSlash, key), 401));
  EXPECT_TRUE(is_json_error(c.get(kTunnelsSlash, key), 401));
  const json::array after_revocation = list_keys(c, admin);
  const auto* entry = find_by(after_revocation, "id", id);
  ASSERT_NE(entry, nullptr) << "a revoked key stays listed";
  EXPECT_EQ(parse_utc_micros(str(*entry, "revoked_at")), now_us(cp));
  // Revoking it again finds no active key.
  auto again = c.del(std::string(kKeys) + "/" + id, admin);
  EXPECT_TRUE(is_json_error(again, 404));

  // Unknown key, and another organisation's key → 404 (which leaves that key working).
  EXPECT_TRUE(is_json_error(c.del(std::string(kKeys) + "/0f0e0d0c-0b0a-4908-8706-050403020100", admin), 404));
  const std::string& other = cp.other_org_admin_key();
  auto cross = c.del(std::string(kKeys) + "/" + key_id_of(other), admin);
  EXPECT_TRUE(is_json_error(cross, 404));
  EXPECT_EQ(c.get(kTunnelsSlash, other).status, 200);
  auto cross_back = c.del(std::string(kKeys) + "/" + key_id_of(admin2), other);
  EXPECT_TRUE(is_json_error(cross_back, 404));
  EXPECT_EQ(c.get(kTunnelsSlash, admin2).status, 200);
  // ... and another organisation's list holds none of ours.
  const auto other_keys = list_keys(c, other);
  EXPECT_EQ(other_keys.size(), 1u);
  for (const std::string& full : {cp.admin_key(), cp.member_key(), key, admin2})
    EXPECT_EQ(find_by(other_keys, "id", key_id_of(full)), nullptr);

  // Validation.
  EXPECT_TRUE(is_json_error(c.post(kKeys, admin, R"({"scope":"root"})"), 422));
  EXPECT_TRUE(is_json_error(c.post(kKeys, admin, R"({"scope":"member","description":)" +
                                                     json::serialize(json::value(std::string(1001, 'd'))) + "}"),
                            422));
  EXPECT_EQ(c.post(kKeys, admin, R"({"scope":"member","description":)" +
                                      json::serialize(json::value(std::string(1000, 'd'))) + "}")
                .status,
            201);
  // Characters, not bytes: 1000 two-byte characters are fine, 1001 are not.
  std::string e1000;
  for (int i = 0; i < 1000; ++i) e1000 += "é";
  EXPECT_EQ(c.post(kKeys, admin, R"({"scope":"member","description":)" + json::serialize(json::value(e1000)) + "}")
                .status,
            201);
  EXPECT_TRUE(is_json_error(
      c.post(kKeys, admin, R"({"scope":"member","description":)" + json::serialize(json::value(e1000 + "é")) + "}"),
      422));

  // An admin may revoke another admin key, including the one the fixture uses.
  ASSERT_EQ(c.del(std::string(kKeys) + "/" + key_id_of(admin), admin2).status, 200);
  EXPECT_TRUE(is_json_error(c.get(kTunnelsSlash, admin), 401));
  EXPECT_EQ(c.get(kTunnelsSlash, admin2).status, 200);
}

TEST(ApiKeys, MemberKeyCannotManageKeysOrReadTheAuditLog) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& member = cp.member_key();
  EXPECT_TRUE(is_json_error(c.get(kKeys, member), 403));
  EXPECT_TRUE(is_json_error(c.post(kKeys, member, R"({"scope":"member"})"), 403));
  EXPECT_TRUE(is_json_error(c.post(kKeys, member, R"({"scope":"admin"})"), 403));
  EXPECT_TRUE(is_json_error(c.del(std::string(kKeys) + "/" + key_id_of(cp.admin_key()), member), 403));
  EXPECT_TRUE(is_json_error(c.del(std::string(kKeys) + "/" + key_id_of(member), member), 403));
  EXPECT_TRUE(is_json_error(c.get(kAudit, member), 403));
  // No key at all → 401.
  EXPECT_TRUE(is_json_error(c.get(kKeys, ""), 401));
  EXPECT_TRUE(is_json_error(c.post(kKeys, "", R"({"scope":"admin"})"), 401));
  EXPECT_TRUE(is_json_error(c.get(kAudit, ""), 401));
  // Nothing was created or revoked.
  EXPECT_EQ(list_keys(c, cp.admin_key()).size(), 2u);
  EXPECT_EQ(c.get(kTunnelsSlash, cp.admin_key()).status, 200);
  EXPECT_EQ(c.get(kTunnelsSlash, member).status, 200);
}

TEST(AuditLog, RecordsEveryMutationWithItsCaller) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  const std::string admin_id = key_id_of(admin);

  struct Expected {
    std::string action;
    std::string tunnel_id;
    std::string key_id;
    std::int64_t at;
  };
  std::vector<Expected> expected;  // oldest first
  auto step = [&] { cp.clock().advance(std::chrono::seconds(1)); };

  // A second admin key, made through the API, performs one of the steps.
  step();
  const json::value k2 = create_key(c, admin, R"({"scope":"admin","description":"rotator"})");
  const std::string admin2 = str(k2, "api_key");
  const std::string admin2_id = str(k2, "id");
  const auto key_created_at = now_us(cp);

  step();
  auto t = must_create(c, admin, "audited");
  ASSERT_FALSE(HasFailure());
  const std::string tid = str(t, "id");
  const std::string path = tunnel_path(tid);
  expected.push_back({"tunnel.created", tid, admin_id, now_us(cp)});

  step();
  ASSERT_EQ(c.patch(path, admin, R"({"description":"x","metadata":{"a":1}})").status, 200);
  expected.push_back({"tunnel.updated", tid, admin_id, now_us(cp)});
  step();
  ASSERT_EQ(c.del(path, admin).status, 200);
  expected.push_back({"tunnel.deleted", tid, admin_id, now_us(cp)});
  // Refusals are not mutations: none of these leaves an entry.
  step();
  ASSERT_EQ(c.del(path, admin).status, 409);
  ASSERT_EQ(c.post(path + "/restore", cp.member_key(), std::nullopt).status, 403);
  ASSERT_EQ(c.patch(path, admin, R"({"metadata":"x"})").status, 422);
  step();
  ASSERT_EQ(c.post(path + "/restore", admin, std::nullopt).status, 200);
  expected.push_back({"tunnel.restored", tid, admin_id, now_us(cp)});
  step();
  ASSERT_EQ(c.post(path + "/rotate-secret", admin2, std::nullopt).status, 200);
  expected.push_back({"tunnel.secret_rotated", tid, admin2_id, now_us(cp)});
  step();
  ASSERT_EQ(c.del(path, admin).status, 200);
  expected.push_back({"tunnel.deleted", tid, admin_id, now_us(cp)});
  step();
  ASSERT_EQ(c.del(path + "/force", admin).status, 200);
  expected.push_back({"tunnel.force_deleted", tid, admin_id, now_us(cp)});

  // A second tunnel, created by the second key. (tunnel.certificate_issued is checked in
  // TunnelsApi.SignCsrIssuesCertificate.)
  step();
  auto pt = must_create(c, admin2, "audited-pt", "passthrough");
  ASSERT_FALSE(HasFailure());
  const std::string pid = str(pt, "id");
  expected.push_back({"tunnel.created", pid, admin2_id, now_us(cp)});
  step();
  ASSERT_EQ(c.patch(tunnel_path(pid), admin, R"({"metadata":null})").status, 200);
  expected.push_back({"tunnel.updated", pid, admin_id, now_us(cp)});

  // Key revocation is recorded as well.
  step();
  ASSERT_EQ(c.del(std::string(kKeys) + "/" + admin2_id, admin).status, 200);
  const auto key_revoked_at = now_us(cp);

  auto page = audit_page(c, admin, "?limit=500");
  ASSERT_TRUE(page.is_object());
  EXPECT_TRUE(page.at("next_before").is_null()) << "a page shorter than the limit is the last one";
  const auto& entries = page.at("entries").as_array();

  // Newest first, all of this organisation.
  std::int64_t previous_id = INT64_MAX;
  for (const auto& e : entries) {
    expect_entry_shape(e);
    EXPECT_LT(e.at("id").as_int64(), previous_id) << "entries must be newest first";
    previous_id = e.at("id").as_int64();
    EXPECT_EQ(str(e, "organization_id"), cp.org_id()) << e;
  }

  // The tunnel entries, oldest first, match what was done, by whom, when and from where.
  std::vector<json::value> tunnel_entries;
  for (const auto& e : entries)
    if (e.at("tunnel_id").is_string()) tunnel_entries.insert(tunnel_entries.begin(), e);
  ASSERT_EQ(tunnel_entries.size(), expected.size()) << page;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(expected[i].action + " #" + std::to_string(i));
    const auto& e = tunnel_entries[i];
    EXPECT_EQ(str(e, "action"), expected[i].action);
    EXPECT_EQ(str(e, "tunnel_id"), expected[i].tunnel_id);
    EXPECT_EQ(str(e, "api_key_id"), expected[i].key_id);
    EXPECT_EQ(str(e, "source_ip"), "127.0.0.1");
    EXPECT_EQ(parse_utc_micros(str(e, "at")), expected[i].at);
  }

  // Key management entries name the key concerned and the caller.
  auto key_entry = [&](const std::string& action) -> const json::value* {
    for (const auto& e : entries)
      if (str(e, "action") == action && str(e, "detail") == admin2_id) return &e;
    return nullptr;
  };
  const auto* kc = key_entry("api_key.created");
  ASSERT_NE(kc, nullptr) << page;
  EXPECT_EQ(str(*kc, "api_key_id"), admin_id);
  EXPECT_EQ(str(*kc, "source_ip"), "127.0.0.1");
  EXPECT_EQ(parse_utc_micros(str(*kc, "at")), key_created_at);
  const auto* kr = key_entry("api_key.revoked");
  ASSERT_NE(kr, nullptr) << page;
  EXPECT_EQ(str(*kr, "api_key_id"), admin_id);
  EXPECT_EQ(parse_utc_micros(str(*kr, "at")), key_revoked_at);
  EXPECT_EQ(str(entries.at(0), "action"), "api_key.revoked") << "the newest entry comes first";

  // Another organisation sees none of it.
  auto other = audit_page(c, cp.other_org_admin_key(), "?limit=500");
  const std::set<std::string> ours = {tid, pid, cp.org_id(), admin_id, admin2_id, key_id_of(cp.member_key())};
  for (const auto& e : other.at("entries").as_array()) {
    for (const char* m : {"organization_id", "api_key_id", "tunnel_id", "detail"})
      EXPECT_FALSE(ours.contains(str(e, m))) << m << " leaks into another organisation: " << e;
  }
  for (const auto& id : ours) EXPECT_EQ(json::serialize(other).find(id), std::string::npos) << id;
}

TEST(AuditLog, PagingAndQueryValidation) {
  TestControlPlane cp;
  auto c = cp.client();
  const std::string& admin = cp.admin_key();
  for (int i = 0; i < 5; ++i) {
    auto t = must_create(c, admin, "page-" + std::to_string(i));
    ASSERT_FALSE(HasFailure());
    ASSERT_EQ(c.patch(tunnel_path(str(t, "id")), admin, R"({"description":"d"})").status, 200);
  }

  auto full = audit_page(c, admin, "?limit=500");
  const auto& all = full.at("entries").as_array();
  ASSERT_GE(all.size(), 10u);
  EXPECT_TRUE(full.at("next_before").is_null());
  std::vector<std::int64_t> all_ids;
  for (const auto& e : all) all_ids.push_back(e.at("id").as_int64());
  // The default page holds them all as well (fewer than the default limit).
  EXPECT_EQ(audit_page(c, admin, ""), full);

  // Walk with limit=2: pages of at most two, no overlap, nothing skipped.
  std::vector<std::int64_t> walked;
  std::string query = "?limit=2";
  for (int pages = 0; pages < 100; ++pages) {
    auto page = audit_page(c, admin, query);
    const auto& entries = page.at("entries").as_array();
    EXPECT_LE(entries.size(), 2u);
    for (const auto& e : entries) walked.push_back(e.at("id").as_int64());
    if (page.at("next_before").is_null()) break;
    ASSERT_TRUE(page.at("next_before").is_int64()) << page;
    ASSERT_FALSE(entries.empty());
    EXPECT_EQ(page.at("next_before").as_int64(), entries.back().at("id").as_int64());
    query = "?limit=2&before=" + std::to_string(page.at("next_before").as_int64());
  }
  EXPECT_EQ(walked, all_ids);
  EXPECT_EQ(std::set<std::int64_t>(walked.begin(), walked.end()).size(), walked.size()) << "pages overlap";

  // A page that ends exactly at the last entry still has a next_before; the page after is empty.
  auto exact = audit_page(c, admin, "?limit=" + std::to_string(all.size()));
  EXPECT_EQ(exact.at("entries"), full.at("entries"));
  ASSERT_TRUE(exact.at("next_before").is_int64());
  auto after = audit_page(c, admin, "?before=" + std::to_string(exact.at("next_before").as_int64()) + "&limit=5");
  EXPECT_TRUE(after.at("entries").as_array().empty());
  EXPECT_TRUE(after.at("next_before").is_null());
  // before= picks up right below the given id.
  auto below = audit_page(c, admin, "?limit=1&before=" + std::to_string(all_ids[2]));
  ASSERT_EQ(below.at("entries").as_array().size(), 1u);
  EXPECT_EQ(below.at("entries").as_array()[0].at("id").as_int64(), all_ids[3]);

  // Bad query values → 422.
  for (const char* q : {"?limit=0", "?limit=abc", "?limit=-1", "?limit=501", "?limit=", "?limit=1.5", "?limit=2x",
                        "?limit=99999999999999999999", "?before=-1", "?before=0", "?before=abc", "?before=",
                        "?limit=2&before=x"}) {
    SCOPED_TRACE(q);
    EXPECT_TRUE(is_json_error(c.get(std::string(kAudit) + q, admin), 422));
  }
  EXPECT_EQ(c.get(std::string(kAudit) + "?limit=500", admin).status, 200);
  EXPECT_EQ(c.get(std::string(kAudit) + "?limit=1", admin).status, 200);
}
