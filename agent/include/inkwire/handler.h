#pragma once
// In-process handlers for inkwire's agent (PROTOCOL.md §6.6): instead of forwarding to a local
// URL, the agent calls a coroutine of the program's own for each request (and, optionally, each
// WebSocket). Handlers run on the listener's executor (the thread that called wait(), or the
// executor serve_forever() was awaited on); they must not block it.
//
//   options.handler = [](inkwire::HttpRequest& request, inkwire::HandlerContext& context)
//       -> boost::asio::awaitable<inkwire::HttpResponse> {
//     auto body = co_await request.body().read_all(1 << 20);
//     co_return inkwire::HttpResponse{200, {{"content-type", "text/plain"}}, "hello " + request.path};
//   };
#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.h"

namespace inkwire {

struct HttpHeader {
  std::string name;  // lowercase
  std::string value;
};

// The envelope as the relay delivered it, read-only (TS `ctx.envelope`).
struct EnvelopeView {
  std::string request_id;  // empty in passthrough (synthesised)
  std::string method;
  std::string path;
  std::string route_kind;  // webhook, ws-upgrade, tcp-stream
  std::string ws_id;
  std::string tcp_id;
  std::optional<std::string> forwarded_for_ip;
  std::optional<std::string> sni_host;
  std::vector<HttpHeader> forwarded_headers;
};

// The request body as a stream: pieces as the third party sends them.
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  // The next piece; "" at the end. Error: the request was cut off, or the body is over the cap.
  virtual boost::asio::awaitable<Expected<std::string, std::string>> read() = 0;
  // The whole body, failing when it exceeds max_bytes.
  boost::asio::awaitable<Expected<std::string, std::string>> read_all(std::size_t max_bytes);
};

struct HttpRequest {
  std::string method;
  std::string path;  // origin form with query, as received (checked, not decoded)
  std::string url;   // https://{public_host}{path}
  // host, x-forwarded-host, x-forwarded-proto, x-forwarded-for and forwarded (when the client's
  // address is known), then the third party's headers except those five.
  std::vector<HttpHeader> headers;
  BodyReader* body_reader = nullptr;
  BodyReader& body() { return *body_reader; }
  // The first value of a (lowercase) header, or nullptr.
  const std::string* header(std::string_view name) const;
};

struct HandlerContext {
  std::optional<std::string> forwarded_for_ip;
  std::optional<std::string> sni_host;
  EnvelopeView envelope;
  std::chrono::steady_clock::time_point deadline;  // the response deadline
  // Emits terminal cancellation when the deadline passes: bind it to the handler's own waits
  // (boost::asio::bind_cancellation_slot(context.cancellation_slot(), ...)).
  boost::asio::cancellation_slot cancellation_slot() { return signal.slot(); }
  bool cancelled() const { return deadline_passed; }

  boost::asio::cancellation_signal signal;  // (the agent's side)
  bool deadline_passed = false;
};

struct HttpResponse {
  int status = 200;
  std::vector<HttpHeader> headers;
  std::string body;  // the whole body, unless body_stream is set
  // A streamed body: called until it returns "" (then the response ends) or an error (the
  // response is reset, and the third party sees it cut off).
  std::function<boost::asio::awaitable<Expected<std::string, std::string>>()> body_stream;
};

using HttpHandler = std::function<boost::asio::awaitable<HttpResponse>(HttpRequest&, HandlerContext&)>;

struct WebSocketMessage {
  bool binary = false;
  std::string data;
};

// One third-party WebSocket, handed to a WebSocketHandler before it is accepted.
class WebSocketSession {
 public:
  virtual ~WebSocketSession() = default;
  virtual const std::string& url() const = 0;  // wss://{public_host}{path}
  virtual const std::vector<HttpHeader>& headers() const = 0;
  virtual const std::vector<std::string>& offered_protocols() const = 0;
  virtual const HandlerContext& context() const = 0;
  // Accepts, with a subprotocol that must be one of offered_protocols(). Error: not offered, or
  // the relay did not open the bridge (the third party left).
  virtual boost::asio::awaitable<Expected<Unit, std::string>> accept(std::optional<std::string> protocol = {},
                                                                     std::vector<HttpHeader> headers = {}) = 0;
  // Refuses with an HTTP status (instead of accepting).
  virtual boost::asio::awaitable<void> reject(int status, std::string body = {}) = 0;
  // The next message; nullopt once the session has closed (close_code() says how).
  virtual boost::asio::awaitable<std::optional<WebSocketMessage>> receive() = 0;
  virtual boost::asio::awaitable<bool> send_text(std::string_view text) = 0;
  virtual boost::asio::awaitable<bool> send_binary(std::string_view bytes) = 0;
  virtual boost::asio::awaitable<void> close(int code = 1000, std::string_view reason = {}) = 0;
  virtual std::optional<int> close_code() const = 0;  // the peer's, once it closed
};

// Returning without accept() or reject() refuses the WebSocket with 403.
using WebSocketHandler = std::function<boost::asio::awaitable<void>(WebSocketSession&)>;

}  // namespace inkwire
