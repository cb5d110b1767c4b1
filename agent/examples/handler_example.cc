// An agent whose requests are served in-process (PROTOCOL.md §6.6) instead of by a local URL: the
// example for the library's handler API, and the program tests/e2e/agent_e2e.sh drives.
//
//   inkwire-handler-example NAME [--state-dir DIR]     (INKWIRE_API_URL / _API_KEY / _CA_FILE)
//
// GET /hello      "hello from a handler", with what the handler saw in x-seen-* headers
// POST /echo      the body streamed back as it is read (body_stream)
// GET /slow       waits for the response deadline; the context's cancellation is observed and
//                 printed as "handler: cancelled at the deadline" on stderr
// GET /throw      the handler throws: 500
// WebSocket       accepts the first offered subprotocol, echoes messages, "close:4001" closes
//                 with 4001 "bye"
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <stdexcept>

#include "inkwire/agent.h"

namespace asio = boost::asio;

namespace {

asio::awaitable<inkwire::HttpResponse> handle(inkwire::HttpRequest& request, inkwire::HandlerContext& context) {
  const std::string route = request.path.substr(0, request.path.find('?'));  // the path carries the query
  if (route == "/hello") {
    inkwire::HttpResponse response{200, {{"content-type", "text/plain"}}, "hello from a handler\n", {}};
    response.headers.push_back({"x-seen-url", request.url});
    response.headers.push_back({"x-seen-forwarded-for", context.forwarded_for_ip.value_or("")});
    const std::string* host = request.header("host");
    response.headers.push_back({"x-seen-host", host ? *host : ""});
    response.headers.push_back({"x-seen-request-id", context.envelope.request_id});
    co_return response;
  }
  if (route == "/echo" && request.method == "POST") {
    inkwire::HttpResponse response;
    response.headers.push_back({"content-type", "application/octet-stream"});
    inkwire::BodyReader* body = &request.body();
    response.body_stream = [body]() { return body->read(); };
    co_return response;
  }
  if (route == "/slow") {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_at(context.deadline + std::chrono::seconds(60));
    auto [ec] = co_await timer.async_wait(
        asio::bind_cancellation_slot(context.cancellation_slot(), asio::as_tuple(asio::use_awaitable)));
    if (ec == asio::error::operation_aborted && context.cancelled()) {
      std::cerr << "handler: cancelled at the deadline" << std::endl;
    }
    co_return inkwire::HttpResponse{200, {}, "too late\n", {}};
  }
  if (route == "/throw") throw std::runtime_error("the example handler throws on /throw");
  co_return inkwire::HttpResponse{404, {{"content-type", "text/plain"}}, "not found\n", {}};
}

asio::awaitable<void> handle_websocket(inkwire::WebSocketSession& ws) {
  std::optional<std::string> protocol;
  if (!ws.offered_protocols().empty()) protocol = ws.offered_protocols().front();
  auto accepted = co_await ws.accept(protocol, {});
  if (!accepted) {
    std::cerr << "handler: accept failed: " << accepted.error() << std::endl;
    co_return;
  }
  while (auto message = co_await ws.receive()) {
    if (!message->binary && message->data == "close:4001") {
      co_await ws.close(4001, "bye");
      co_return;
    }
    bool sent = false;
    if (message->binary) {
      sent = co_await ws.send_binary(message->data);
    } else {
      sent = co_await ws.send_text(message->data);
    }
    if (!sent) break;
  }
}

}  // namespace

// For the signal-policy test: the program's own SIGTERM handler (a program that owns its shutdown).
extern "C" void own_sigterm(int) {
  const char line[] = "program: SIGTERM handled by the program\n";
  (void)!write(2, line, sizeof line - 1);
}

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  // INKWIRE_EXAMPLE_SIGNALS=auto|on|off picks the SignalPolicy (default on);
  // INKWIRE_EXAMPLE_OWN_SIGTERM=1 installs a SIGTERM handler of the program's own first.
  const char* policy = std::getenv("INKWIRE_EXAMPLE_SIGNALS");
  const char* own = std::getenv("INKWIRE_EXAMPLE_OWN_SIGTERM");
  if (own && std::strcmp(own, "1") == 0) std::signal(SIGTERM, own_sigterm);
  if (argc < 2) {
    std::cerr << "usage: inkwire-handler-example NAME [--state-dir DIR]\n";
    return 2;
  }
  inkwire::ConnectOptions options;
  options.name = argv[1];
  if (argc >= 4 && std::strcmp(argv[2], "--state-dir") == 0) options.state_dir = argv[3];
  options.handler = handle;
  options.ws_handler = handle_websocket;
  options.signals = inkwire::SignalPolicy::on;
  if (policy && std::strcmp(policy, "auto") == 0) options.signals = inkwire::SignalPolicy::automatic;
  if (policy && std::strcmp(policy, "off") == 0) options.signals = inkwire::SignalPolicy::off;
  options.on_status = [](const inkwire::StatusChange& change) {
    static const char* names[] = {"connecting", "connected", "reconnecting", "closed"};
    std::cerr << names[static_cast<int>(change.status)] << (change.detail.empty() ? "" : ": ") << change.detail
              << std::endl;
  };
  options.on_request = [](const inkwire::RequestLogLine& line) {
    std::cout << line.method << " " << line.path << " " << line.status << std::endl;
  };
  // For the async lifecycle: the io_context must outlive the listener served on it (the listener's
  // timers and sockets belong to it), so it is made first and destroyed last.
  asio::io_context io;
  auto listener = inkwire::TunnelListener::connect(options);
  if (!listener) {
    std::cerr << "inkwire-handler-example: " << listener.error().message << "\n";
    return 1;
  }
  std::cerr << "Serving " << (*listener)->public_url() << " in-process" << std::endl;
  // INKWIRE_EXAMPLE_ASYNC=1: the async lifecycle (serve_forever on an io_context of the program's).
  const char* async = std::getenv("INKWIRE_EXAMPLE_ASYNC");
  if (async && std::strcmp(async, "1") == 0) {
    inkwire::TunnelListener& l = **listener;
    int rc = 1;
    asio::co_spawn(io, [&l, &rc]() -> asio::awaitable<void> {
      auto result = co_await l.serve_forever();
      if (!result) {
        std::cerr << "inkwire-handler-example: " << result.error().message << "\n";
        co_return;
      }
      rc = 0;
    }, asio::detached);
    io.run();
    // The two lifecycles are exclusive on one listener.
    auto mixed = l.wait();
    if (!mixed && mixed.error().kind == inkwire::AgentError::Kind::usage) {
      std::cerr << "wait() after serve_forever(): " << mixed.error().message << std::endl;
    }
    return rc;
  }
  auto served = (*listener)->wait();
  if (!served) {
    std::cerr << "inkwire-handler-example: " << served.error().message << "\n";
    return 1;
  }
  return 0;
}
