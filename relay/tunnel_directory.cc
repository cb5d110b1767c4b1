#include "relay/tunnel_directory.h"

namespace inkwire::relay {

TunnelDirectory::TunnelDirectory(controlplane::PgSessionRepository& repository, const Clock& clock,
                                 std::chrono::seconds ttl, prometheus::Registry& registry, Logger logger)
    : repository_(repository),
      clock_(clock),
      ttl_(ttl),
      logger_(std::move(logger)),
      hits_(prometheus::BuildCounter()
                .Name("inkwire_relay_directory_lookups_total")
                .Help("Tunnel state lookups by the relay, by result")
                .Register(registry)
                .Add({{"result", "hit"}})),
      misses_(prometheus::BuildCounter()
                  .Name("inkwire_relay_directory_lookups_total")
                  .Help("Tunnel state lookups by the relay, by result")
                  .Register(registry)
                  .Add({{"result", "miss"}})),
      stale_served_(prometheus::BuildCounter()
                        .Name("inkwire_relay_directory_lookups_total")
                        .Help("Tunnel state lookups by the relay, by result")
                        .Register(registry)
                        .Add({{"result", "stale_during_outage"}})),
      db_errors_(prometheus::BuildCounter()
                     .Name("inkwire_relay_directory_db_errors_total")
                     .Help("Database errors while reading tunnel state")
                     .Register(registry)
                     .Add({})) {}

boost::asio::awaitable<Expected<std::optional<HelloRecord>, std::string>> TunnelDirectory::lookup(Uuid id) {
  const auto now = std::chrono::steady_clock::now();
  if (auto it = entries_.find(id); it != entries_.end() && !it->second.stale && now - it->second.fetched_at < ttl_) {
    hits_.Increment();
    co_return it->second.record;
  }
  misses_.Increment();
  // An invalidation (NOTIFY) that arrives while the row is being read may describe a change the
  // read missed (a delete, a rotation): read again once, and never cache a read that raced one.
  for (int attempt = 0;; ++attempt) {
    const std::uint64_t epoch = invalidations_;
    auto fetched = co_await repository_.lookup_for_hello(id, clock_.now());
    if (!fetched) {
      db_errors_.Increment();
      if (auto it = entries_.find(id); it != entries_.end()) {
        stale_served_.Increment();
        if (!outage_logged_) {
          logger_->warn("relay: database unavailable ({}); serving cached tunnel state", fetched.error().message);
          outage_logged_ = true;
        }
        co_return it->second.record;
      }
      co_return unexpected(fetched.error().message);
    }
    if (outage_logged_) {
      logger_->info("relay: database reachable again");
      outage_logged_ = false;
    }
    if (invalidations_ != epoch) {
      if (attempt == 0) continue;
      co_return *fetched;  // fresh enough to answer, not to keep
    }
    if (entries_.size() >= max_entries_) entries_.clear();  // crude but bounded; refills on demand
    entries_[id] = Entry{*fetched, std::chrono::steady_clock::now(), false};
    co_return *fetched;
  }
}

void TunnelDirectory::invalidate(const Uuid& id) {
  ++invalidations_;
  if (auto it = entries_.find(id); it != entries_.end()) it->second.stale = true;
}

void TunnelDirectory::invalidate_organization(const Uuid& organization_id) {
  ++invalidations_;
  for (auto& [id, entry] : entries_) {
    if (entry.record && entry.record->organization_id == organization_id) entry.stale = true;
  }
}

void TunnelDirectory::invalidate_all() {
  ++invalidations_;
  for (auto& [id, entry] : entries_) entry.stale = true;
}

}  // namespace inkwire::relay
