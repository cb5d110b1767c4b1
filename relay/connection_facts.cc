#include "relay/connection_facts.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

namespace inkwire::relay {

ConnectionFacts::ConnectionFacts(boost::asio::any_io_executor executor, controlplane::PgSessionRepository& repository,
                                 const Clock& clock, Logger logger)
    : executor_(std::move(executor)), repository_(repository), clock_(clock), logger_(std::move(logger)) {}

void ConnectionFacts::connected(const Uuid& tunnel_id, std::string ip) {
  want(tunnel_id, Wanted{true, std::move(ip), clock_.now()});
}

void ConnectionFacts::disconnected(const Uuid& tunnel_id) { want(tunnel_id, Wanted{false, {}, clock_.now()}); }

void ConnectionFacts::want(const Uuid& tunnel_id, Wanted state) {
  Slot& slot = slots_[tunnel_id];
  slot.next = std::move(state);
  if (slot.busy) return;  // the running drain picks it up after its write
  slot.busy = true;
  boost::asio::co_spawn(executor_, drain(tunnel_id), boost::asio::detached);
}

boost::asio::awaitable<void> ConnectionFacts::drain(Uuid tunnel_id) {
  for (;;) {
    auto it = slots_.find(tunnel_id);
    if (it == slots_.end()) co_return;
    if (!it->second.next) {
      slots_.erase(it);
      co_return;
    }
    Wanted state = std::move(*it->second.next);
    it->second.next.reset();
    if (state.connected) {
      auto done = co_await repository_.mark_connected(tunnel_id, state.ip, state.at);
      if (!done) logger_->warn("relay: cannot record connect of {}: {}", tunnel_id.to_string(), done.error().message);
    } else {
      auto done = co_await repository_.mark_disconnected(tunnel_id);
      if (!done)
        logger_->warn("relay: cannot record disconnect of {}: {}", tunnel_id.to_string(), done.error().message);
    }
  }
}

}  // namespace inkwire::relay
