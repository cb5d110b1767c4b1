// controlplane_load: a closed-loop HTTP/1.1 load generator for the control-plane benchmark
// (bench/controlplane). Keep-alive connections, each running one request at a time; latencies of
// every request are kept and summarised as p50/p99/max. Usage:
//   controlplane_load create PORT KEY COUNT CONNECTIONS PREFIX   -> creates COUNT tunnels
//   controlplane_load get    PORT KEY SECONDS CONNECTIONS         -> GETs random existing tunnels
//   controlplane_load list   PORT KEY COUNT                       -> COUNT sequential list calls
//     (bench/controlplane measures list latency with curl instead; this mode is for quick checks)
// Prints one line of JSON with the figures.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <algorithm>
#include <fstream>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Clock = std::chrono::steady_clock;

namespace {

struct Stats {
  std::vector<double> latencies_ms;
  long ok = 0;
  long failed = 0;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

struct Job {
  unsigned short port;
  std::string key;
  std::string mode;
  std::string prefix;
  std::vector<std::string> ids;  // for get
  std::vector<std::string>* created = nullptr;  // create: "id secret" of each new tunnel, when wanted
  std::atomic<long> next{0};
  long count = 0;
  Clock::time_point deadline;
};

asio::awaitable<void> worker(Job& job, Stats& stats, int worker_id) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  co_await stream.async_connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), job.port),
                                asio::use_awaitable);
  beast::flat_buffer buffer;
  std::mt19937_64 rng(static_cast<unsigned>(worker_id) * 7919u + 1u);
  for (;;) {
    http::request<http::string_body> req;
    req.version(11);
    req.set(http::field::host, "127.0.0.1");
    req.set("X-API-Key", job.key);
    req.set(http::field::accept, "application/json");
    if (job.mode == "create") {
      const long n = job.next++;
      if (n >= job.count) break;
      req.method(http::verb::post);
      req.target("/api/v1/tunnels/");
      req.set(http::field::content_type, "application/json");
      req.body() = R"({"tunnel_name":")" + job.prefix + std::to_string(n) + R"(","tls_mode":"edge"})";
    } else if (job.mode == "get") {
      if (Clock::now() >= job.deadline) break;
      req.method(http::verb::get);
      req.target("/api/v1/tunnels/" + job.ids[rng() % job.ids.size()]);
    } else {
      const long n = job.next++;
      if (n >= job.count) break;
      req.method(http::verb::get);
      req.target("/api/v1/tunnels/");
    }
    req.prepare_payload();
    const auto start = Clock::now();
    co_await http::async_write(stream, req, asio::use_awaitable);
    http::response_parser<http::string_body> parser;
    parser.body_limit(512 * 1024 * 1024);
    co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    const auto status = parser.get().result_int();
    if (status / 100 == 2) {
      if (job.created && job.mode == "create") {
        const auto doc = boost::json::parse(parser.get().body());
        job.created->push_back(std::string(doc.at("tunnel").at("id").as_string()) + " " +
                               std::string(doc.at("connect_secret").as_string()));
      }
      ++stats.ok;
      stats.latencies_ms.push_back(ms);
    } else {
      ++stats.failed;
      if (stats.failed <= 3) std::cerr << "status " << status << ": " << parser.get().body().substr(0, 200) << "\n";
    }
  }
}

std::vector<std::string> fetch_ids(unsigned short port, const std::string& key) {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::verb::get, "/api/v1/tunnels/", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set("X-API-Key", key);
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(512 * 1024 * 1024);
  http::read(stream, buffer, parser);
  std::vector<std::string> ids;
  const auto doc = boost::json::parse(parser.get().body());
  for (const auto& t : doc.as_object().at("tunnels").as_array()) ids.emplace_back(t.as_object().at("id").as_string());
  return ids;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::cerr << "usage: controlplane_load create|get|list PORT KEY N [CONNECTIONS] [PREFIX] [SECRETS_OUT]\n";
    return 2;
  }
  Job job;
  job.mode = argv[1];
  job.port = static_cast<unsigned short>(std::stoi(argv[2]));
  job.key = argv[3];
  const long n = std::stol(argv[4]);
  int connections = argc > 5 ? std::stoi(argv[5]) : 1;
  job.prefix = argc > 6 ? argv[6] : "bench-";
  std::vector<std::string> created;
  if (argc > 7) job.created = &created;  // create: write "id secret" lines there (bench/relay)
  if (job.mode == "get") {
    job.ids = fetch_ids(job.port, job.key);
    if (job.ids.empty()) {
      std::cerr << "no tunnels to GET\n";
      return 1;
    }
    job.deadline = Clock::now() + std::chrono::seconds(n);
  } else if (job.mode == "list") {
    connections = 1;
    job.count = n;
  } else if (job.mode == "create") {
    job.count = n;
  } else {
    std::cerr << "unknown mode " << job.mode << "\n";
    return 2;
  }

  asio::io_context io(1);
  std::vector<Stats> stats(static_cast<std::size_t>(connections));
  const auto start = Clock::now();
  for (int i = 0; i < connections; ++i)
    asio::co_spawn(io, worker(job, stats[static_cast<std::size_t>(i)], i), [](std::exception_ptr e) {
      if (e) std::rethrow_exception(e);
    });
  io.run();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  Stats all;
  for (auto& s : stats) {
    all.ok += s.ok;
    all.failed += s.failed;
    all.latencies_ms.insert(all.latencies_ms.end(), s.latencies_ms.begin(), s.latencies_ms.end());
  }
  if (job.created) {
    std::ofstream out(argv[7], std::ios::trunc);
    for (const auto& line : created) out << line << "\n";
  }
  const double p50 = percentile(all.latencies_ms, 0.50);
  const double p99 = percentile(all.latencies_ms, 0.99);
  const double max = all.latencies_ms.empty() ? 0 : all.latencies_ms.back();
  std::printf(
      "{\"mode\":\"%s\",\"connections\":%d,\"ok\":%ld,\"failed\":%ld,\"seconds\":%.3f,\"per_second\":%.1f,"
      "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f}\n",
      job.mode.c_str(), connections, all.ok, all.failed, seconds, static_cast<double>(all.ok) / seconds, p50, p99, max);
  return all.failed == 0 ? 0 : 1;
}
