#pragma once
#include <boost/json/value.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace inkwire::testing {

struct HttpResult {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;

  std::optional<std::string> header(std::string_view name) const;
  // Parsed body (null when it is not JSON).
  boost::json::value json() const;
  // The "detail" member as a string ("" when absent).
  std::string detail() const;
};

struct HttpRequestSpec {
  std::string method = "GET";
  std::string target = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<std::string> body;  // nullopt: no body and no Content-Type
  std::string content_type = "application/json";
};

// A blocking HTTP/1.1 client over loopback for tests: one connection per request, bounded by a
// timeout (throws on timeout or connection failure, so a hung server fails the test).
class HttpClient {
 public:
  explicit HttpClient(unsigned short port, std::chrono::milliseconds timeout = std::chrono::seconds(20))
      : port_(port), timeout_(timeout) {}

  HttpResult send(const HttpRequestSpec& spec) const;
  // Sends raw bytes and returns whatever the server answers before closing (or the timeout).
  std::string send_raw(const std::string& bytes) const;

  // Shorthands; `key` is sent as X-API-Key when non-empty.
  HttpResult get(const std::string& target, const std::string& key) const;
  HttpResult post(const std::string& target, const std::string& key, std::optional<std::string> body) const;
  HttpResult patch(const std::string& target, const std::string& key, std::string body) const;
  HttpResult del(const std::string& target, const std::string& key) const;

 private:
  unsigned short port_;
  std::chrono::milliseconds timeout_;
};

}  // namespace inkwire::testing
