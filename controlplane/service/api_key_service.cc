#include "controlplane/service/api_key_service.h"

#include "common/encoding.h"
#include "common/secret_hash.h"

namespace inkwire::controlplane {
namespace {

constexpr std::string_view kPrefix = "ApiKey_";
constexpr std::size_t kMaxKeyLength = 256;
constexpr std::size_t kMaxCacheEntries = 100000;

ServiceError unauthorized() { return {401, "missing or invalid API key (send it in the X-API-Key header)"}; }

}  // namespace

ApiKeyService::ApiKeyService(PgAccessRepository& repo, const Config& config, const Clock& clock, RandomSource& random,
                             prometheus::Registry& registry, Logger logger)
    : repo_(repo),
      config_(config),
      clock_(clock),
      random_(random),
      logger_(std::move(logger)),
      auth_results_(prometheus::BuildCounter()
                        .Name("inkwire_api_key_auth_total")
                        .Help("API key checks by result (ok, cached, invalid, revoked, disabled, error)")
                        .Register(registry)) {}

NewApiKey ApiKeyService::generate(Uuid org, KeyScope scope, std::optional<std::string> description, Timestamp now,
                                  RandomSource& random) {
  NewApiKey k;
  k.record.id = Uuid::random(random);
  k.record.organization_id = org;
  k.record.scope = scope;
  k.record.description = std::move(description);
  k.record.created_at = now;
  std::array<std::uint8_t, 32> secret{};
  random.fill(secret);
  k.api_key = display_prefix(k.record.id) + "." + base64url_encode(secret);
  k.record.secret_sha256 = hex_encode(sha256(k.api_key));
  return k;
}

boost::asio::awaitable<ServiceResult<Caller>> ApiKeyService::authenticate(std::string_view key, std::string source_ip) {
  // ApiKey_<36-char uuid>.<secret>
  if (key.size() > kMaxKeyLength || !key.starts_with(kPrefix) || key.size() < kPrefix.size() + 38 ||
      key[kPrefix.size() + 36] != '.') {
    auth_results_.Add({{"result", "invalid"}}).Increment();
    co_return unexpected(unauthorized());
  }
  auto id = Uuid::parse(key.substr(kPrefix.size(), 36));
  if (!id) {
    auth_results_.Add({{"result", "invalid"}}).Increment();
    co_return unexpected(unauthorized());
  }
  const auto presented = hex_encode(sha256(key));

  std::optional<ApiKeyRecord> record;
  bool cached = false;
  {
    std::lock_guard lock(mutex_);
    auto it = cache_.find(*id);
    if (it != cache_.end()) {
      if (it->second.expires > std::chrono::steady_clock::now()) {
        record = it->second.record;
        cached = true;
      } else {
        cache_.erase(it);
      }
    }
  }
  if (!record) {
    auto found = co_await repo_.find_api_key(*id);
    if (!found) {
      auth_results_.Add({{"result", "error"}}).Increment();
      co_return unexpected(unavailable());
    }
    record = std::move(*found);
  }
  if (!record || !constant_time_equal(as_bytes(record->secret_sha256), as_bytes(presented))) {
    auth_results_.Add({{"result", "invalid"}}).Increment();
    co_return unexpected(unauthorized());
  }
  if (record->revoked_at) {
    auth_results_.Add({{"result", "revoked"}}).Increment();
    co_return unexpected(unauthorized());
  }
  if (record->organization_disabled) {
    auth_results_.Add({{"result", "disabled"}}).Increment();
    co_return unexpected(ServiceError{403, "organization is disabled"});
  }
  if (!cached && config_.controlplane.api_key_cache_seconds > 0) {
    std::lock_guard lock(mutex_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();  // bounded; refills on demand
    cache_[*id] = CachedKey{*record, std::chrono::steady_clock::now() +
                                         std::chrono::seconds(config_.controlplane.api_key_cache_seconds)};
  }
  auth_results_.Add({{"result", cached ? "cached" : "ok"}}).Increment();
  co_return Caller{record->organization_id, record->id, record->scope, record->organization_daily_create_limit,
                   std::move(source_ip)};
}

boost::asio::awaitable<ServiceResult<NewApiKey>> ApiKeyService::create(const Caller& caller, KeyScope scope,
                                                                       std::optional<std::string> description) {
  if (!caller.is_admin()) co_return unexpected(ServiceError{403, "managing API keys requires an admin-scoped API key"});
  if (description && utf8_length(*description) > config_.controlplane.max_description_chars)
    co_return unexpected(ServiceError{422, "description must be at most " +
                                               std::to_string(config_.controlplane.max_description_chars) +
                                               " characters"});
  NewApiKey k = generate(caller.organization_id, scope, std::move(description), clock_.now(), random_);
  auto r = co_await repo_.create_api_key(k.record, caller.actor());
  if (!r) co_return unexpected(unavailable());
  logger_->info("api key created id={} scope={} by key={}", k.record.id.to_string(), to_string(scope),
                caller.api_key_id.to_string());
  co_return std::move(k);
}

boost::asio::awaitable<ServiceResult<std::vector<ApiKeyRecord>>> ApiKeyService::list(const Caller& caller) {
  if (!caller.is_admin()) co_return unexpected(ServiceError{403, "managing API keys requires an admin-scoped API key"});
  auto r = co_await repo_.list_api_keys(caller.organization_id);
  if (!r) co_return unexpected(unavailable());
  co_return std::move(*r);
}

boost::asio::awaitable<ServiceResult<Unit>> ApiKeyService::revoke(const Caller& caller, Uuid key_id) {
  if (!caller.is_admin()) co_return unexpected(ServiceError{403, "managing API keys requires an admin-scoped API key"});
  auto r = co_await repo_.revoke_api_key(key_id, caller.organization_id, caller.actor(), clock_.now());
  if (!r) co_return unexpected(unavailable());
  if (!*r) co_return unexpected(ServiceError{404, "api key not found"});
  forget(key_id);
  logger_->info("api key revoked id={} by key={}", key_id.to_string(), caller.api_key_id.to_string());
  co_return Unit{};
}

void ApiKeyService::forget(Uuid key_id) {
  std::lock_guard lock(mutex_);
  cache_.erase(key_id);
}

}  // namespace inkwire::controlplane

namespace inkwire::controlplane {

void ApiKeyService::forget_all() {
  std::lock_guard lock(mutex_);
  cache_.clear();
}

}  // namespace inkwire::controlplane
