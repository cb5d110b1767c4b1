#include "agent/plaintext_server.h"

#include <boost/asio/this_coro.hpp>

#include "agent/plaintext_h1.h"
#include "agent/plaintext_h2.h"

namespace inkwire::agent {

namespace asio = boost::asio;

asio::awaitable<void> serve_plaintext(ByteStream& stream, std::string_view alpn, const PlaintextServerSettings& settings,
                                      HttpForwarder& forwarder, Logger logger) {
  auto executor = co_await asio::this_coro::executor;
  if (alpn == "h2") {
    PlaintextH2Connection connection(executor, stream, settings, forwarder, logger);
    co_await connection.run();
  } else if (alpn.empty() || alpn == "http/1.1") {
    PlaintextH1Connection connection(executor, stream, settings, forwarder, logger);
    co_await connection.run();
  } else {
    // Only h2 and http/1.1 are offered in the agent's handshake; anything else is a bug upstream
    // of us, and there is nothing to serve.
    logger->info("agent: passthrough connection with unexpected ALPN \"{}\"; closed", alpn);
  }
  stream.close();
}

}  // namespace inkwire::agent
