#pragma once
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/expected.h"
#include "controlplane/repo/pg/pg_pool.h"
#include "controlplane/repo/records.h"

namespace inkwire::controlplane {

// Why a repository operation did not produce a tunnel.
struct RepoFailure {
  enum class Kind { not_found, conflict, name_taken, limit_reached, unavailable };
  Kind kind = Kind::unavailable;
  std::optional<TunnelStatus> current_status;  // for conflicts
};

template <typename T>
using RepoResult = Expected<T, RepoFailure>;

struct NewTunnel {
  Uuid id;
  Uuid organization_id;
  std::string tunnel_name;
  std::optional<std::string> description;
  TlsMode tls_mode = TlsMode::edge;
  std::string secret_sha256;
  std::string metadata_json = "{}";
  Timestamp now;
  int daily_create_limit = 0;  // creations allowed in this organisation on now's UTC day
};

// Fields of a PATCH; nullopt leaves the stored value unchanged.
struct TunnelPatch {
  std::optional<std::optional<std::string>> description;  // outer: present; inner: null clears
  std::optional<std::string> metadata_json;               // "{}" clears
};

struct IssuedCertificateFields {
  std::string cert_pem;
  std::string fingerprint_sha256;
  Timestamp expires_at;
};

// The tunnels table. Every mutation runs in one transaction together with its audit-log row and an
// event row (the tunnel_events outbox); EventPublisher turns committed events into NOTIFYs on
// kTunnelEventsChannel. on_commit (set once at startup) is called after every committed change
// so the publisher sends at once instead of at its next sweep.
class PgTunnelRepository {
 public:
  // NOTIFY channel; payload {"event_id","event","tunnel_id","organization_id","tunnel_name","status"}.
  static constexpr const char* kTunnelEventsChannel = "inkwire_tunnel_events";

  explicit PgTunnelRepository(PgPool& pool);
  void set_on_commit(std::function<void()> on_commit) { on_commit_ = std::move(on_commit); }

  boost::asio::awaitable<RepoResult<TunnelRecord>> create(NewTunnel tunnel, Actor actor);
  // Reads see a tunnel past its grace window as gone even before the reaper finalises it.
  boost::asio::awaitable<RepoResult<TunnelRecord>> get(Uuid organization_id, Uuid id, Timestamp now);
  boost::asio::awaitable<RepoResult<std::vector<TunnelRecord>>> list(Uuid organization_id, Timestamp now);
  boost::asio::awaitable<RepoResult<TunnelRecord>> update(Uuid id, TunnelPatch patch, Actor actor, Timestamp now);
  // active|awaiting_cert -> delete_pending until now + grace.
  boost::asio::awaitable<RepoResult<TunnelRecord>> mark_deleted(Uuid id, Actor actor, Timestamp now,
                                                                 Timestamp restore_deadline);
  // delete_pending (deadline not passed) -> active, or awaiting_cert for a passthrough tunnel
  // without a certificate. A tunnel whose deadline has passed is finalised here and is not_found.
  boost::asio::awaitable<RepoResult<TunnelRecord>> restore(Uuid id, Actor actor, Timestamp now);
  // delete_pending -> deleted (finalised; the name is free).
  boost::asio::awaitable<RepoResult<TunnelRecord>> force_delete(Uuid id, Actor actor, Timestamp now);
  boost::asio::awaitable<RepoResult<TunnelRecord>> rotate_secret(Uuid id, std::string secret_sha256, Actor actor,
                                                                  Timestamp now);
  // Passthrough tunnel in awaiting_cert or active -> active with the new certificate.
  boost::asio::awaitable<RepoResult<TunnelRecord>> record_certificate(Uuid id, IssuedCertificateFields cert,
                                                                       Actor actor, Timestamp now);
  // Finalises up to `batch` tunnels whose grace window ended; returns how many.
  boost::asio::awaitable<RepoResult<int>> finalize_expired(Timestamp now, int batch);

 private:
  void committed() const;
  boost::asio::awaitable<RepoResult<TunnelRecord>> insert(const NewTunnel& n, const Actor& actor);

  PgPool& pool_;
  std::function<void()> on_commit_;
};

}  // namespace inkwire::controlplane
