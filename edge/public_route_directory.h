#pragma once
// The edge's view of public names: {name}.{zone} -> the tunnel's id, status, TLS mode and whether
// its organisation is disabled. Read from PostgreSQL and cached; control-plane NOTIFYs (passed on
// by the relay) mark entries stale at once, so a delete takes effect on the next request. Names
// that do not exist are cached too (a scanner must not turn into one query per request), and
// every event forgets them, because a create may have just taken the name.
// During a database outage, stale entries keep serving (logged and counted), like the relay's.
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/expected.h"
#include "common/logging.h"
#include "common/uuid.h"
#include "controlplane/repo/pg/pg_session_repository.h"

namespace inkwire::edge {

using PublicRoute = controlplane::HelloRecord;  // secret_sha256 stays empty for the edge

class PublicRouteDirectory {
 public:
  PublicRouteDirectory(controlplane::PgSessionRepository& repository, const Clock& clock, std::chrono::seconds ttl,
                       prometheus::Registry& registry, Logger logger);

  // nullopt: no tunnel has this name (or it is finalised). Error: no database and nothing cached.
  boost::asio::awaitable<Expected<std::optional<PublicRoute>, std::string>> lookup(const std::string& name);
  // A notification from the control plane (channel and JSON payload); an empty channel means
  // events may have been missed and everything must be re-read.
  void on_event(const std::string& channel, const std::string& payload);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::optional<PublicRoute> route;
    std::chrono::steady_clock::time_point fetched_at;
    bool stale = false;
  };
  void mark_all_stale();

  controlplane::PgSessionRepository& repository_;
  const Clock& clock_;
  std::chrono::seconds ttl_;
  Logger logger_;
  std::unordered_map<std::string, Entry> entries_;
  std::unordered_map<Uuid, std::string, UuidHash> names_by_id_;
  std::size_t max_entries_ = 100000;
  std::uint64_t invalidations_ = 0;
  bool outage_logged_ = false;
  prometheus::Counter& hits_;
  prometheus::Counter& misses_;
  prometheus::Counter& stale_served_;
  prometheus::Counter& db_errors_;
};

}  // namespace inkwire::edge
