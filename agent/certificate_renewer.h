#pragma once
// Keeps a passthrough tunnel's certificate fresh while the agent runs (PROTOCOL.md §5: re-sign
// when fewer than 14 days are left). connect() signs at start; a long-running agent checks again
// every `interval`. The control-plane call blocks (sign-csr may take long), so it runs on a thread
// of its own and the result comes back to the executor; the new context is handed to
// `on_renewed`, which swaps it in for new third-party connections (live ones keep theirs).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "agent/control_client.h"
#include "common/logging.h"
#include "common/tls_server_context.h"

namespace inkwire::agent {

class CertificateRenewer {
 public:
  CertificateRenewer(boost::asio::any_io_executor executor, ControlClient client, std::filesystem::path state_dir,
                     std::string tunnel_id, std::string public_host, std::chrono::seconds interval, Logger logger);
  ~CertificateRenewer();  // waits for a renewal in progress (bounded by the client's timeout)

  // Checks every interval until stop(). Renewals that fail are logged and tried at the next check.
  boost::asio::awaitable<void> run();
  void stop();
  std::function<void(SslCtxPtr)> on_renewed;

 private:
  struct Outcome;
  static std::shared_ptr<Outcome> renew_if_needed(const ControlClient& client, const std::filesystem::path& dir,
                                                  const std::string& tunnel_id, const std::string& public_host);

  boost::asio::any_io_executor executor_;
  ControlClient client_;
  std::filesystem::path state_dir_;
  std::string tunnel_id_;
  std::string public_host_;
  std::chrono::seconds interval_;
  Logger logger_;
  boost::asio::steady_timer timer_;
  std::thread worker_;
  bool stopped_ = false;
};

}  // namespace inkwire::agent
