#pragma once
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/random_source.h"
#include "controlplane/repo/pg/pg_access_repository.h"
#include "controlplane/service/service_types.h"

namespace inkwire::controlplane {

struct NewApiKey {
  ApiKeyRecord record;
  std::string api_key;  // plaintext "ApiKey_<uuid>.<secret>", shown exactly once
};

// API keys: `ApiKey_<uuid>.<secret>` (PROTOCOL.md §2.1). Only SHA-256 of the whole key is stored.
// Successful lookups are cached for a short time so a GET costs one query, not two; a revocation
// drops the entry at once here and, through NOTIFY, on other nodes (forget()).
class ApiKeyService {
 public:
  ApiKeyService(PgAccessRepository& repo, const Config& config, const Clock& clock, RandomSource& random,
                prometheus::Registry& registry, Logger logger);

  // 401 for a missing, malformed, unknown, wrong or revoked key; 403 for a disabled organisation.
  boost::asio::awaitable<ServiceResult<Caller>> authenticate(std::string_view header_value, std::string source_ip);

  boost::asio::awaitable<ServiceResult<NewApiKey>> create(const Caller& caller, KeyScope scope,
                                                          std::optional<std::string> description);
  boost::asio::awaitable<ServiceResult<std::vector<ApiKeyRecord>>> list(const Caller& caller);
  boost::asio::awaitable<ServiceResult<Unit>> revoke(const Caller& caller, Uuid key_id);

  // Drops a key from the cache (called on revocation NOTIFY).
  void forget(Uuid key_id);
  // Drops every cached key (after missed notifications, e.g. a database reconnect).
  void forget_all();

  // For the CLI: a new key record plus its plaintext.
  static NewApiKey generate(Uuid organization_id, KeyScope scope, std::optional<std::string> description,
                            Timestamp now, RandomSource& random);
  static std::string display_prefix(Uuid key_id) { return "ApiKey_" + key_id.to_string(); }

 private:
  struct CachedKey {
    ApiKeyRecord record;
    std::chrono::steady_clock::time_point expires;
  };

  PgAccessRepository& repo_;
  const Config& config_;
  const Clock& clock_;
  RandomSource& random_;
  Logger logger_;
  std::mutex mutex_;
  std::unordered_map<Uuid, CachedKey, UuidHash> cache_;
  prometheus::Family<prometheus::Counter>& auth_results_;
};

}  // namespace inkwire::controlplane
