#pragma once
// Keeps a tunnel's connection facts (§8 A34: currently_connected, last_connected_at,
// last_connected_ip_addr) true to fact. Hellos and session ends happen in order on the relay's
// thread, but their database writes run on different pool connections; written naively, an
// agent that connects and leaves at once could have its "connected" land after its
// "disconnected". So the writes of one tunnel run one at a time, and only the latest wanted state
// is written after a write in flight (tunnels still write in parallel).

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "common/logging.h"
#include "common/uuid.h"
#include "controlplane/repo/pg/pg_session_repository.h"

namespace inkwire::relay {

class ConnectionFacts {
 public:
  ConnectionFacts(boost::asio::any_io_executor executor, controlplane::PgSessionRepository& repository,
                  const Clock& clock, Logger logger);

  void connected(const Uuid& tunnel_id, std::string ip);
  void disconnected(const Uuid& tunnel_id);
  std::size_t writes_in_flight() const { return slots_.size(); }

 private:
  struct Wanted {
    bool connected = false;
    std::string ip;
    Timestamp at;
  };
  struct Slot {
    bool busy = false;
    std::optional<Wanted> next;
  };
  void want(const Uuid& tunnel_id, Wanted state);
  boost::asio::awaitable<void> drain(Uuid tunnel_id);

  boost::asio::any_io_executor executor_;
  controlplane::PgSessionRepository& repository_;
  const Clock& clock_;
  Logger logger_;
  std::unordered_map<Uuid, Slot, UuidHash> slots_;
};

}  // namespace inkwire::relay
