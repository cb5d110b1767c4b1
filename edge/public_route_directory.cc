#include "edge/public_route_directory.h"

#include <boost/json/parse.hpp>

namespace inkwire::edge {

namespace {
prometheus::Counter& lookups(prometheus::Registry& registry, const char* result) {
  return prometheus::BuildCounter()
      .Name("inkwire_edge_directory_lookups_total")
      .Help("Public-name lookups by the edge, by result")
      .Register(registry)
      .Add({{"result", result}});
}
}  // namespace

PublicRouteDirectory::PublicRouteDirectory(controlplane::PgSessionRepository& repository, const Clock& clock,
                                           std::chrono::seconds ttl, prometheus::Registry& registry, Logger logger)
    : repository_(repository),
      clock_(clock),
      ttl_(ttl),
      logger_(std::move(logger)),
      hits_(lookups(registry, "hit")),
      misses_(lookups(registry, "miss")),
      stale_served_(lookups(registry, "stale_during_outage")),
      db_errors_(prometheus::BuildCounter()
                     .Name("inkwire_edge_directory_db_errors_total")
                     .Help("Database errors while the edge looked up a public name")
                     .Register(registry)
                     .Add({})) {}

boost::asio::awaitable<Expected<std::optional<PublicRoute>, std::string>> PublicRouteDirectory::lookup(
    const std::string& name) {
  const auto now = std::chrono::steady_clock::now();
  if (auto it = entries_.find(name); it != entries_.end() && !it->second.stale && now - it->second.fetched_at < ttl_) {
    hits_.Increment();
    co_return it->second.route;
  }
  misses_.Increment();
  for (int attempt = 0;; ++attempt) {
    const std::uint64_t epoch = invalidations_;
    auto fetched = co_await repository_.lookup_by_name(name, clock_.now());
    if (!fetched) {
      db_errors_.Increment();
      if (auto it = entries_.find(name); it != entries_.end()) {
        stale_served_.Increment();
        if (!outage_logged_) {
          logger_->warn("edge: database unavailable ({}); serving cached tunnel names", fetched.error().message);
          outage_logged_ = true;
        }
        co_return it->second.route;
      }
      co_return unexpected(fetched.error().message);
    }
    if (outage_logged_) {
      logger_->info("edge: database reachable again");
      outage_logged_ = false;
    }
    // A NOTIFY that arrived during the read may describe a change the read missed: read again
    // once, and never cache a read that raced one.
    if (invalidations_ != epoch) {
      if (attempt == 0) continue;
      co_return *fetched;
    }
    if (entries_.size() >= max_entries_) {  // crude but bounded; refills on demand
      entries_.clear();
      names_by_id_.clear();
    }
    entries_[name] = Entry{*fetched, std::chrono::steady_clock::now(), false};
    if (*fetched) names_by_id_[(*fetched)->id] = name;
    co_return *fetched;
  }
}

void PublicRouteDirectory::mark_all_stale() {
  for (auto& [name, entry] : entries_) entry.stale = true;
}

void PublicRouteDirectory::on_event(const std::string& channel, const std::string& payload) {
  ++invalidations_;
  if (channel.empty()) {
    mark_all_stale();
    return;
  }
  // A create (or a finalisation that frees a name) may change what a name maps to: unknown names
  // are re-read.
  for (auto& [name, entry] : entries_) {
    if (!entry.route) entry.stale = true;
  }
  boost::system::error_code ec;
  auto value = boost::json::parse(payload, ec);
  if (ec || !value.is_object()) {
    mark_all_stale();
    return;
  }
  const auto& obj = value.as_object();
  if (const auto* tunnel = obj.if_contains("tunnel_id"); tunnel && tunnel->is_string()) {
    if (const auto id = Uuid::parse(tunnel->as_string())) {
      if (auto it = names_by_id_.find(*id); it != names_by_id_.end()) {
        if (auto entry = entries_.find(it->second); entry != entries_.end()) entry->second.stale = true;
      }
      return;
    }
  }
  if (const auto* org = obj.if_contains("organization_id"); org && org->is_string()) {
    if (const auto id = Uuid::parse(org->as_string())) {
      for (auto& [name, entry] : entries_) {
        if (entry.route && entry.route->organization_id == *id) entry.stale = true;
      }
      return;
    }
  }
  mark_all_stale();
}

}  // namespace inkwire::edge
