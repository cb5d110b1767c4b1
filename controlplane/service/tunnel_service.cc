#include "controlplane/service/tunnel_service.h"

#include "common/encoding.h"
#include "common/secret_hash.h"
#include "proto/tunnel_name.h"

namespace inkwire::controlplane {
namespace {

// Infrastructure labels that must never become someone's tunnel (PROTOCOL.md §2.6, §8 A20).
constexpr const char* kBuiltinReserved[] = {
    "www",    "api",     "admin",   "app",  "console", "mail", "smtp",    "imap",      "mx",      "dns",
    "cdn",    "static",  "docs",    "status", "auth",  "login", "sso",    "billing",   "support", "staging",
    "test",   "dev",     "prod",    "localhost", "proxy", "vpn", "webhook", "webhooks", "tunnel", "relay",
    "edge",   "metrics", "inkwire", "inkbox"};

ServiceError from_repo(const RepoFailure& f, std::string_view conflict_detail = {}) {
  using Kind = RepoFailure::Kind;
  switch (f.kind) {
    case Kind::not_found: return not_found();
    case Kind::conflict:
      if (!conflict_detail.empty()) return {409, std::string(conflict_detail)};
      return {409, "tunnel is in " + std::string(to_string(f.current_status.value_or(TunnelStatus::active))) + " state"};
    case Kind::name_taken: return {409, "tunnel_name already taken"};
    case Kind::limit_reached: return {429, "daily tunnel creation limit reached for this organization"};
    case Kind::unavailable: return unavailable();
  }
  return unavailable();
}

ServiceError admin_required(std::string_view what) {
  return {403, std::string(what) + " requires an admin-scoped API key"};
}

}  // namespace

TunnelService::TunnelService(PgTunnelRepository& repo, const CertificateAuthority& ca, const Config& config,
                             const Clock& clock, RandomSource& random, prometheus::Registry& registry, Logger logger)
    : repo_(repo),
      ca_(ca),
      config_(config),
      clock_(clock),
      random_(random),
      logger_(std::move(logger)),
      events_(prometheus::BuildCounter()
                  .Name("inkwire_tunnel_events_total")
                  .Help("Tunnel lifecycle changes made through the API, by event")
                  .Register(registry)) {
  for (const char* n : kBuiltinReserved) reserved_.insert(n);
  const auto dot = config_.zone.find('.');
  reserved_.insert(config_.zone.substr(0, dot));
  for (const auto& n : config_.controlplane.reserved_names) reserved_.insert(n);
}

bool TunnelService::is_reserved(std::string_view name) const {
  if (reserved_.contains(name)) return true;
  for (const auto& prefix : config_.controlplane.reserved_prefixes)
    if (name.starts_with(prefix)) return true;
  return false;
}

std::string TunnelService::new_secret() {
  std::array<std::uint8_t, 32> bytes{};
  random_.fill(bytes);
  return "tsec_" + base64url_encode(bytes);
}

ServiceResult<Unit> TunnelService::check_description(const std::optional<std::string>& description) const {
  if (description && utf8_length(*description) > config_.controlplane.max_description_chars)
    return unexpected(ServiceError{422, "description must be at most " +
                                            std::to_string(config_.controlplane.max_description_chars) +
                                            " characters"});
  return Unit{};
}

boost::asio::awaitable<ServiceResult<CreatedTunnel>> TunnelService::create(const Caller& caller,
                                                                           CreateTunnelInput input) {
  if (!caller.is_admin()) co_return unexpected(admin_required("creating a tunnel"));
  if (auto err = proto::tunnel_name_error(input.tunnel_name); !err.empty())
    co_return unexpected(ServiceError{422, std::string(err)});
  if (is_reserved(input.tunnel_name))
    co_return unexpected(ServiceError{409, "tunnel_name '" + input.tunnel_name + "' is reserved"});
  if (auto ok = check_description(input.description); !ok) co_return unexpected(ok.error());

  std::string secret = new_secret();
  NewTunnel n;
  n.id = Uuid::random(random_);
  n.organization_id = caller.organization_id;
  n.tunnel_name = std::move(input.tunnel_name);
  n.description = std::move(input.description);
  n.tls_mode = input.tls_mode;
  n.secret_sha256 = hex_encode(sha256(secret));
  n.now = clock_.now();
  n.daily_create_limit = caller.organization_daily_create_limit.value_or(config_.controlplane.daily_create_limit);
  auto r = co_await repo_.create(std::move(n), caller.actor());
  if (!r) co_return unexpected(from_repo(r.error()));
  events_.Add({{"event", "created"}}).Increment();
  logger_->info("tunnel created id={} name={} tls_mode={} key={}", r->id.to_string(), r->tunnel_name,
                to_string(r->tls_mode), caller.api_key_id.to_string());
  co_return CreatedTunnel{std::move(*r), std::move(secret)};
}

boost::asio::awaitable<ServiceResult<TunnelRecord>> TunnelService::get(const Caller& caller, Uuid id) {
  auto r = co_await repo_.get(caller.organization_id, id, clock_.now());
  if (!r) co_return unexpected(from_repo(r.error()));
  co_return std::move(*r);
}

boost::asio::awaitable<ServiceResult<std::vector<TunnelRecord>>> TunnelService::list(const Caller& caller) {
  auto r = co_await repo_.list(caller.organization_id, clock_.now());
  if (!r) co_return unexpected(from_repo(r.error()));
  co_return std::move(*r);
}

boost::asio::awaitable<ServiceResult<TunnelRecord>> TunnelService::update(const Caller& caller, Uuid id,
                                                                          TunnelPatch patch) {
  if (!caller.is_admin()) co_return unexpected(admin_required("updating a tunnel"));
  if (patch.description) {
    if (auto ok = check_description(*patch.description); !ok) co_return unexpected(ok.error());
  }
  if (patch.metadata_json && patch.metadata_json->size() > config_.controlplane.max_metadata_bytes)
    co_return unexpected(ServiceError{422, "metadata must be at most " +
                                               std::to_string(config_.controlplane.max_metadata_bytes) +
                                               " bytes when serialized as compact JSON"});
  auto r = co_await repo_.update(id, std::move(patch), caller.actor(), clock_.now());
  if (!r) co_return unexpected(from_repo(r.error()));
  events_.Add({{"event", "updated"}}).Increment();
  co_return std::move(*r);
}

boost::asio::awaitable<ServiceResult<TunnelRecord>> TunnelService::remove(const Caller& caller, Uuid id) {
  if (!caller.is_admin()) co_return unexpected(admin_required("deleting a tunnel"));
  const Timestamp now = clock_.now();
  const Timestamp deadline = now + std::chrono::seconds(config_.controlplane.delete_grace_seconds);
  auto r = co_await repo_.mark_deleted(id, caller.actor(), now, deadline);
  if (!r) co_return unexpected(from_repo(r.error(), "tunnel is already in delete_pending state"));
  events_.Add({{"event", "deleted"}}).Increment();
  logger_->info("tunnel deleted id={} name={} (restorable until the grace window ends)", r->id.to_string(),
                r->tunnel_name);
  co_return std::move(*r);
}

boost::asio::awaitable<ServiceResult<TunnelRecord>> TunnelService::restore(const Caller& caller, Uuid id) {
  if (!caller.is_admin()) co_return unexpected(admin_required("restoring a tunnel"));
  auto r = co_await repo_.restore(id, caller.actor(), clock_.now());
  if (!r) co_return unexpected(from_repo(r.error(), "tunnel is not in delete_pending state"));
  events_.Add({{"event", "restored"}}).Increment();
  logger_->info("tunnel restored id={} name={} status={}", r->id.to_string(), r->tunnel_name, to_string(r->status));
  co_return std::move(*r);
}

boost::asio::awaitable<ServiceResult<TunnelRecord>> TunnelService::force_delete(const Caller& caller, Uuid id) {
  if (!caller.is_admin()) co_return unexpected(admin_required("force-delete"));
  auto r = co_await repo_.force_delete(id, caller.actor(), clock_.now());
  if (!r) co_return unexpected(from_repo(r.error(), "tunnel is not in delete_pending state; delete it first"));
  events_.Add({{"event", "force_deleted"}}).Increment();
  logger_->info("tunnel force-deleted id={} name={} (name released)", r->id.to_string(), r->tunnel_name);
  co_return std::move(*r);
}

boost::asio::awaitable<ServiceResult<std::string>> TunnelService::rotate_secret(const Caller& caller, Uuid id) {
  if (!caller.is_admin()) co_return unexpected(admin_required("rotating a secret"));
  std::string secret = new_secret();
  auto r = co_await repo_.rotate_secret(id, hex_encode(sha256(secret)), caller.actor(), clock_.now());
  if (!r) co_return unexpected(from_repo(r.error()));
  events_.Add({{"event", "secret_rotated"}}).Increment();
  logger_->info("tunnel secret rotated id={}", r->id.to_string());
  co_return secret;
}

boost::asio::awaitable<ServiceResult<IssuedCertificate>> TunnelService::sign_csr(const Caller& caller, Uuid id,
                                                                                 std::string csr_pem) {
  if (!caller.is_admin()) co_return unexpected(admin_required("signing a certificate"));
  auto t = co_await repo_.get(caller.organization_id, id, clock_.now());
  if (!t) co_return unexpected(from_repo(t.error()));
  // The SDK tells the two 409s apart by the words edge/tls_mode/passthrough (§2.5.9): the state
  // conflict text must contain none of them.
  if (t->tls_mode != TlsMode::passthrough)
    co_return unexpected(ServiceError{409, "tunnel is in edge tls_mode; CSR signing is passthrough-only"});
  if (t->status != TunnelStatus::awaiting_cert && t->status != TunnelStatus::active)
    co_return unexpected(ServiceError{409, "tunnel is in " + std::string(to_string(t->status)) + " state"});
  auto issued = ca_.sign_csr(csr_pem, public_host(*t), config_.ca.leaf_days);
  if (!issued) co_return unexpected(ServiceError{422, issued.error()});
  // A named local, not a braced temporary inside the co_await: GCC 12 destroys such a temporary
  // twice (a double free on every successful sign-csr, found by TunnelsApi.SignCsrIssuesCertificate).
  IssuedCertificateFields fields{issued->cert_pem, issued->fingerprint_sha256, issued->not_after};
  auto r = co_await repo_.record_certificate(id, std::move(fields), caller.actor(), clock_.now());
  if (!r) {
    if (r.error().kind == RepoFailure::Kind::conflict)
      co_return unexpected(ServiceError{
          409, "tunnel is in " + std::string(to_string(r.error().current_status.value_or(TunnelStatus::deleted))) +
                   " state"});
    co_return unexpected(from_repo(r.error()));
  }
  events_.Add({{"event", "certificate_issued"}}).Increment();
  logger_->info("certificate issued tunnel={} host={} fingerprint={}", id.to_string(), public_host(*r),
                issued->fingerprint_sha256);
  co_return std::move(*issued);
}

}  // namespace inkwire::controlplane
