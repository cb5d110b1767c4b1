#pragma once
// The relay's view of tunnel state (who exists, status, tls_mode, secret hash), read from
// PostgreSQL and cached in memory. NOTIFY events on `inkwire_tunnel_events` drop an entry at once
// (and are passed on to the relay, which closes sessions of deleted tunnels); entries also expire
// after `ttl`. When the database cannot be reached, an expired entry is still served: known
// tunnels keep routing through a short outage, which is logged and counted.

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <unordered_map>

#include "common/clock.h"
#include "common/expected.h"
#include "common/logging.h"
#include "common/uuid.h"
#include "controlplane/repo/pg/pg_session_repository.h"

namespace inkwire::relay {

using controlplane::HelloRecord;

class TunnelDirectory {
 public:
  TunnelDirectory(controlplane::PgSessionRepository& repository, const Clock& clock, std::chrono::seconds ttl,
                  prometheus::Registry& registry, Logger logger);

  // nullopt: unknown, finalised or expired tunnel. Error: no database and nothing cached.
  boost::asio::awaitable<Expected<std::optional<HelloRecord>, std::string>> lookup(Uuid id);
  void invalidate(const Uuid& id);
  // After a lost LISTEN connection events may have been missed: everything must be re-read, but
  // the stale copies stay usable while the database is down.
  void invalidate_all();
  // An organisation was disabled or enabled: its tunnels' entries must be re-read.
  void invalidate_organization(const Uuid& organization_id);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::optional<HelloRecord> record;
    std::chrono::steady_clock::time_point fetched_at;
    bool stale = false;
  };
  controlplane::PgSessionRepository& repository_;
  const Clock& clock_;
  std::chrono::seconds ttl_;
  Logger logger_;
  std::unordered_map<Uuid, Entry, UuidHash> entries_;
  std::size_t max_entries_ = 100000;
  bool outage_logged_ = false;
  std::uint64_t invalidations_ = 0;  // bumped by every invalidate*(); see lookup()
  prometheus::Counter& hits_;
  prometheus::Counter& misses_;
  prometheus::Counter& stale_served_;
  prometheus::Counter& db_errors_;
};

}  // namespace inkwire::relay
