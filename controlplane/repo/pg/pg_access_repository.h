#pragma once
#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/expected.h"
#include "controlplane/repo/pg/pg_pool.h"
#include "controlplane/repo/records.h"

namespace inkwire::controlplane {

// Organisations, API keys and the audit log: who may call the API, and what they did.
class PgAccessRepository {
 public:
  static constexpr const char* kApiKeyEventsChannel = "inkwire_api_key_events";  // payload: key id
  // payload: {"organization_id":"<uuid>","disabled":true|false}, when an organisation is disabled
  // or enabled; relays close a disabled organisation's sessions, API nodes drop cached keys.
  static constexpr const char* kOrganizationEventsChannel = "inkwire_organization_events";

  explicit PgAccessRepository(PgPool& pool);

  // Blocking: used by `inkwired admin` and at startup.
  Expected<OrganizationRecord, DbError> create_organization(const OrganizationRecord& org);
  Expected<std::optional<OrganizationRecord>, DbError> find_organization(const std::string& name_or_id);
  // Sets `disabled` and/or the daily creation limit (nullopt inside: back to the configured default).
  // Returns false when no such organisation exists.
  Expected<bool, DbError> update_organization(Uuid id, std::optional<bool> disabled,
                                              std::optional<std::optional<int>> daily_create_limit);
  Expected<Unit, DbError> insert_api_key(const ApiKeyRecord& key, const Actor& actor);
  Expected<std::vector<ApiKeyRecord>, DbError> list_api_keys_blocking(Uuid organization_id);
  // Revokes a key of the organisation (any organisation when nullopt). false: no such live key.
  Expected<bool, DbError> revoke_api_key_blocking(Uuid key_id, std::optional<Uuid> organization_id, const Actor& actor,
                                                  Timestamp now);

  // Async, for the API.
  boost::asio::awaitable<Expected<std::optional<ApiKeyRecord>, DbError>> find_api_key(Uuid key_id);
  boost::asio::awaitable<Expected<Unit, DbError>> create_api_key(ApiKeyRecord key, Actor actor);
  boost::asio::awaitable<Expected<std::vector<ApiKeyRecord>, DbError>> list_api_keys(Uuid organization_id);
  boost::asio::awaitable<Expected<bool, DbError>> revoke_api_key(Uuid key_id, Uuid organization_id, Actor actor,
                                                                 Timestamp now);
  // Newest first; only ids below `before_id` when given.
  boost::asio::awaitable<Expected<std::vector<AuditRecord>, DbError>> list_audit(Uuid organization_id,
                                                                                 std::optional<std::int64_t> before_id,
                                                                                 int limit);
  // Cheap readiness probe.
  boost::asio::awaitable<Expected<Unit, DbError>> ping();

 private:
  PgPool& pool_;
};

}  // namespace inkwire::controlplane
