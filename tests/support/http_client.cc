#include "tests/support/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <stdexcept>

namespace inkwire::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::optional<std::string> HttpResult::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (beast::iequals(k, name)) return v;
  return std::nullopt;
}

boost::json::value HttpResult::json() const {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec) return nullptr;
  return v;
}

std::string HttpResult::detail() const {
  auto v = json();
  if (!v.is_object()) return {};
  auto* d = v.as_object().if_contains("detail");
  if (!d || !d->is_string()) return {};
  return std::string(d->as_string());
}

HttpResult HttpClient::send(const HttpRequestSpec& spec) const {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(timeout_);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  http::request<http::string_body> req{http::string_to_verb(spec.method), spec.target, 11};
  req.set(http::field::host, "127.0.0.1:" + std::to_string(port_));
  req.set(http::field::accept, "application/json");
  for (const auto& [k, v] : spec.headers) req.set(k, v);
  if (spec.body) {
    if (!spec.content_type.empty()) req.set(http::field::content_type, spec.content_type);
    req.body() = *spec.body;
  }
  req.prepare_payload();
  req.keep_alive(false);
  stream.expires_after(timeout_);
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 * 1024 * 1024);
  stream.expires_after(timeout_);
  http::read(stream, buffer, parser);
  auto& res = parser.get();
  HttpResult out;
  out.status = res.result_int();
  for (const auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  out.body = std::move(res.body());
  return out;
}

std::string HttpClient::send_raw(const std::string& bytes) const {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(timeout_);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_));
  stream.expires_after(timeout_);
  asio::write(stream, asio::buffer(bytes));
  std::string out;
  char chunk[4096];
  for (;;) {
    boost::system::error_code ec;
    stream.expires_after(timeout_);
    const auto n = stream.read_some(asio::buffer(chunk), ec);
    out.append(chunk, n);
    if (ec) break;
  }
  return out;
}

HttpResult HttpClient::get(const std::string& target, const std::string& key) const {
  HttpRequestSpec s{"GET", target, {}, std::nullopt};
  if (!key.empty()) s.headers.emplace_back("X-API-Key", key);
  return send(s);
}

HttpResult HttpClient::post(const std::string& target, const std::string& key, std::optional<std::string> body) const {
  HttpRequestSpec s{"POST", target, {}, std::move(body)};
  if (!key.empty()) s.headers.emplace_back("X-API-Key", key);
  return send(s);
}

HttpResult HttpClient::patch(const std::string& target, const std::string& key, std::string body) const {
  HttpRequestSpec s{"PATCH", target, {}, std::move(body)};
  if (!key.empty()) s.headers.emplace_back("X-API-Key", key);
  return send(s);
}

HttpResult HttpClient::del(const std::string& target, const std::string& key) const {
  HttpRequestSpec s{"DELETE", target, {}, std::nullopt};
  if (!key.empty()) s.headers.emplace_back("X-API-Key", key);
  return send(s);
}

}  // namespace inkwire::testing
