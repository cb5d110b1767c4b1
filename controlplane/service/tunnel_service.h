#pragma once
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/config.h"
#include "common/logging.h"
#include "common/random_source.h"
#include "controlplane/ca/certificate_authority.h"
#include "controlplane/repo/pg/pg_tunnel_repository.h"
#include "controlplane/service/service_types.h"

namespace inkwire::controlplane {

struct CreateTunnelInput {
  std::string tunnel_name;
  TlsMode tls_mode = TlsMode::edge;
  std::optional<std::string> description;
};

struct CreatedTunnel {
  TunnelRecord tunnel;
  std::string connect_secret;  // plaintext, returned exactly once
};

// The tunnel rules of PROTOCOL.md §2: names, limits, scopes, the lifecycle and its grace window,
// one-time secrets and certificate signing. Transport-free: the API maps results to HTTP.
class TunnelService {
 public:
  TunnelService(PgTunnelRepository& repo, const CertificateAuthority& ca, const Config& config, const Clock& clock,
                RandomSource& random, prometheus::Registry& registry, Logger logger);

  boost::asio::awaitable<ServiceResult<CreatedTunnel>> create(const Caller& caller, CreateTunnelInput input);
  boost::asio::awaitable<ServiceResult<TunnelRecord>> get(const Caller& caller, Uuid id);
  boost::asio::awaitable<ServiceResult<std::vector<TunnelRecord>>> list(const Caller& caller);
  boost::asio::awaitable<ServiceResult<TunnelRecord>> update(const Caller& caller, Uuid id, TunnelPatch patch);
  boost::asio::awaitable<ServiceResult<TunnelRecord>> remove(const Caller& caller, Uuid id);
  boost::asio::awaitable<ServiceResult<TunnelRecord>> restore(const Caller& caller, Uuid id);
  boost::asio::awaitable<ServiceResult<TunnelRecord>> force_delete(const Caller& caller, Uuid id);
  boost::asio::awaitable<ServiceResult<std::string>> rotate_secret(const Caller& caller, Uuid id);
  boost::asio::awaitable<ServiceResult<IssuedCertificate>> sign_csr(const Caller& caller, Uuid id, std::string csr_pem);

  // The public host of a tunnel: {name}.{zone}.
  std::string public_host(const TunnelRecord& t) const { return t.tunnel_name + "." + config_.zone; }
  const std::string& data_plane_host() const { return config_.effective_data_plane_host(); }

  // Reserved names in effect (built-in infrastructure labels, the zone's first label, config).
  bool is_reserved(std::string_view name) const;

 private:
  std::string new_secret();
  ServiceResult<Unit> check_description(const std::optional<std::string>& description) const;

  PgTunnelRepository& repo_;
  const CertificateAuthority& ca_;
  const Config& config_;
  const Clock& clock_;
  RandomSource& random_;
  Logger logger_;
  std::set<std::string, std::less<>> reserved_;
  prometheus::Family<prometheus::Counter>& events_;
};

}  // namespace inkwire::controlplane
