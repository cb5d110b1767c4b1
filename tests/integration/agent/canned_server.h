#pragma once
// A plain-HTTP server on 127.0.0.1 (port 0) that answers each connection with the next canned
// response and records the raw requests, for testing what the agent's REST client sends and how
// it reads answers the real server never gives (redirects, non-JSON, FastAPI error lists).
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace inkwire::testing {

class CannedServer {
 public:
  explicit CannedServer(std::vector<std::string> responses) : responses_(responses.begin(), responses.end()), acceptor_(io_) {
    using boost::asio::ip::tcp;
    tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~CannedServer() {
    // A blocking accept() is not woken by closing the acceptor from another thread: connect once.
    stopping_ = true;
    boost::system::error_code ignored;
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket wake(io);
    wake.connect({boost::asio::ip::make_address("127.0.0.1"), port_}, ignored);
    thread_.join();
  }
  unsigned short port() const { return port_; }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // "HTTP/1.1 <status>" with a body and its Content-Length.
  static std::string response(int status, const std::string& body, const std::string& extra_headers = "") {
    return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body;
  }

 private:
  void serve() {
    using boost::asio::ip::tcp;
    while (!responses_.empty()) {
      boost::system::error_code ec;
      tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      std::string data;
      // Head, then as many body bytes as Content-Length says.
      std::size_t head_end = boost::asio::read_until(socket, boost::asio::dynamic_buffer(data), "\r\n\r\n", ec);
      if (ec) continue;
      std::size_t length = 0;
      std::string lower = data.substr(0, head_end);
      for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (auto p = lower.find("content-length:"); p != std::string::npos) length = std::stoul(lower.substr(p + 15));
      while (data.size() < head_end + length) {
        char chunk[4096];
        const std::size_t n = socket.read_some(boost::asio::buffer(chunk), ec);
        if (ec) break;
        data.append(chunk, n);
      }
      {
        std::lock_guard lock(mu_);
        requests_.push_back(data);
      }
      boost::asio::write(socket, boost::asio::buffer(responses_.front()), ec);
      responses_.pop_front();
      socket.shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  std::deque<std::string> responses_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

}  // namespace inkwire::testing
