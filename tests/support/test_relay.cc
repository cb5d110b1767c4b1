#include "tests/support/test_relay.h"

#include <prometheus/text_serializer.h>

#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

#include "common/logging.h"
#include "controlplane/ca/certificate_authority.h"

namespace inkwire::testing {

namespace asio = boost::asio;

namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::optional<std::string> first_value(const auto& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.name == name) return h.value;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> EdgeResult::header(std::string_view name) const { return first_value(headers, name); }
std::vector<std::string> EdgeResult::header_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& h : headers) {
    if (h.name == name) out.push_back(h.value);
  }
  return out;
}
std::optional<std::string> Envelope::header(std::string_view name) const { return first_value(headers, name); }

TestRelay::TestRelay(TestControlPlane& control_plane, const std::function<void(Config&)>& adjust)
    : control_plane_(control_plane), config_(control_plane.config()), registry_(std::make_shared<prometheus::Registry>()) {
  dir_ = (std::filesystem::temp_directory_path() / ("inkwire-test-relay-" + std::to_string(::getpid()) + "-" +
                                                    std::to_string(reinterpret_cast<std::uintptr_t>(this))))
             .string();
  std::filesystem::create_directories(dir_);
  // A CA of its own on the real clock: the control plane's CA follows the FakeClock (2027), and
  // TLS clients check validity against real time.
  static const SystemClock system_clock;
  CaConfig ca_config;
  ca_config.dir = dir_ + "/ca";
  auto ca = controlplane::CertificateAuthority::open(ca_config, system_clock);
  if (!ca) throw std::runtime_error("cannot open the test CA: " + ca.error());
  // The zone names too, for tests that run the edge beside the relay (TestRelay::with_edge).
  auto pair = (*ca)->issue_server_certificate({"localhost", config_.zone, "*." + config_.zone}, {"127.0.0.1"}, 2);
  if (!pair) throw std::runtime_error("cannot issue the relay certificate: " + pair.error());
  write_file(dir_ + "/server.pem", pair->cert_pem + (*ca)->ca_pem());
  write_file(dir_ + "/server.key", pair->key_pem);
  ca_file_ = dir_ + "/ca.pem";
  write_file(ca_file_, (*ca)->ca_pem());

  config_.roles = {"relay"};
  config_.tls.cert_file = dir_ + "/server.pem";
  config_.tls.key_file = dir_ + "/server.key";
  config_.relay.listen = "127.0.0.1:0";
  config_.database.pool_size = 2;
  if (adjust) adjust(config_);
  relay_ = std::make_unique<relay::Relay>(config_, control_plane.clock(), random_, *registry_,
                                          make_logger("relay", std::getenv("INKWIRE_TEST_LOG") ? "debug" : "warn"));
  if (auto ok = relay_->start(io_); !ok) throw std::runtime_error(ok.error());
  if (config_.has_role("edge")) {
    edge_ = std::make_unique<edge::Edge>(config_, *relay_, control_plane.clock(), *registry_,
                                         make_logger("edge", std::getenv("INKWIRE_TEST_LOG") ? "debug" : "warn"));
    if (auto ok = edge_->start(io_); !ok) throw std::runtime_error(ok.error());
  }
  thread_ = std::thread([this] { io_.run(); });
}

void TestRelay::with_edge(Config& config) {
  config.roles = {"relay", "edge"};
  config.relay.listen = "";
  config.edge.listen = "127.0.0.1:0";
  config.edge.http_listen = "127.0.0.1:0";
  config.edge.cert_check_seconds = 0;
}

TestRelay::~TestRelay() {
  asio::post(io_, [this] {
    if (edge_) {
      edge_->begin_drain();
      edge_->close_all();
    }
    relay_->begin_drain();
    relay_->close_all();
  });
  // Every session coroutine ends on its own once its socket is closed; bounded by the join below.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!io_.stopped() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (relay_->active_sessions() == 0 && (!edge_ || edge_->open_connections() == 0)) break;
  }
  io_.stop();
  thread_.join();
  edge_.reset();
  relay_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

CreatedTunnel TestRelay::create_tunnel(const std::string& name, const std::string& tls_mode) {
  auto res = control_plane_.client().post("/api/v1/tunnels/", control_plane_.admin_key(),
                                          R"({"tunnel_name":")" + name + R"(","tls_mode":")" + tls_mode + R"("})");
  if (res.status != 201) throw std::runtime_error("create tunnel: " + std::to_string(res.status) + " " + res.body);
  auto json = res.json();
  CreatedTunnel t;
  t.id = std::string(json.at("tunnel").at("id").as_string());
  t.secret = std::string(json.at("connect_secret").as_string());
  t.name = name;
  return t;
}

AgentOptions TestRelay::agent_options() const {
  AgentOptions options;
  options.port = port();
  options.ca_file = ca_file_;
  return options;
}

std::unique_ptr<TestAgent> TestRelay::connect_agent(std::function<void(AgentOptions&)> adjust) const {
  AgentOptions options = agent_options();
  if (adjust) adjust(options);
  auto agent = TestAgent::connect(options);
  if (!agent) throw std::runtime_error("agent connect: " + agent.error());
  return std::move(*agent);
}

TestRelay::Session TestRelay::connect_and_park(const CreatedTunnel& tunnel, int intakes,
                                               std::function<void(AgentOptions&)> adjust) const {
  Session s;
  s.agent = connect_agent(std::move(adjust));
  auto hello = s.agent->hello(tunnel.id, tunnel.secret, intakes);
  if (!hello || hello->status != 200) {
    throw std::runtime_error("hello failed: " + (hello ? std::to_string(hello->status) + " " + hello->body : "timeout"));
  }
  s.owner_token = hello->owner_token;
  for (int slot = 0; slot < intakes; ++slot) s.intakes.push_back(s.agent->open_intake(tunnel.id, s.owner_token, slot));
  // Parking is asynchronous: wait (bounded) until the relay counts them.
  wait_for([&] { return metric("inkwire_relay_parked_intakes") >= intakes; }, std::chrono::seconds(5));
  return s;
}

std::future<EdgeResult> TestRelay::call(const std::string& tunnel_id, std::string method, std::string target,
                                        std::vector<std::pair<std::string, std::string>> headers,
                                        std::optional<std::string> body) {
  relay::InboundCall call;
  call.tunnel_id = *Uuid::parse(tunnel_id);
  call.kind = proto::RouteKind::webhook;
  call.request.method = std::move(method);
  call.request.target = std::move(target);
  call.request.headers = std::move(headers);
  call.request.client_ip = "203.0.113.7";
  call.has_body = body.has_value();
  relay::SessionRegistry& registry = relay_->registry();
  return asio::co_spawn(
      relay_->executor(),
      [&registry, call = std::move(call), body = std::move(body)]() mutable -> asio::awaitable<EdgeResult> {
        EdgeResult result;
        auto dispatched = registry.dispatch(std::move(call));
        if (!dispatched) {
          result.status = dispatched.error().http_status;
          result.failure_reason = std::string(dispatched.error().reason);
          co_return result;
        }
        auto exchange = *dispatched;
        result.request_id = exchange->request_id();
        if (body) {
          co_await exchange->request_body().write(*body);
          exchange->request_body().finish();
        }
        auto head = co_await exchange->response();
        if (!head) {
          result.status = head.error().status;
          result.failure_reason = head.error().reason;
          co_return result;
        }
        result.status = head->status;
        result.headers = head->headers;
        for (;;) {
          auto chunk = co_await exchange->response_body().read();
          result.body += chunk.bytes;
          if (chunk.bytes.empty() && chunk.end != relay::PipeEnd::open) {
            result.body_complete = chunk.end == relay::PipeEnd::finished;
            break;
          }
        }
        co_return result;
      },
      asio::use_future);
}

std::shared_ptr<relay::Exchange> TestRelay::dispatch(const std::string& tunnel_id, proto::RouteKind kind,
                                                     std::vector<std::pair<std::string, std::string>> headers,
                                                     std::string target) {
  relay::InboundCall call;
  call.tunnel_id = *Uuid::parse(tunnel_id);
  call.kind = kind;
  call.request.method = "GET";
  call.request.target = std::move(target);
  call.request.headers = std::move(headers);
  call.request.client_ip = "203.0.113.7";
  call.request.sni_host = "x.example";
  return run([&]() -> asio::awaitable<std::shared_ptr<relay::Exchange>> {
    auto dispatched = relay_->registry().dispatch(std::move(call));
    if (!dispatched) throw std::runtime_error("dispatch refused: " + std::string(dispatched.error().reason));
    co_return *dispatched;
  });
}

double TestRelay::metric(const std::string& name, const std::map<std::string, std::string>& labels) const {
  double total = 0;
  for (const auto& family : registry_->Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const auto& l : m.label) found = found || (l.name == k && l.value == v);
        match = match && found;
      }
      if (!match) continue;
      total += m.counter.value + m.gauge.value;
    }
  }
  return total;
}

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::optional<Envelope> wait_envelope(TestAgent& agent, int32_t intake, std::chrono::milliseconds timeout) {
  auto state = agent.wait_end(intake, timeout);
  if (!state || !state->headers_received) return std::nullopt;
  Envelope e;
  e.status = state->status;
  e.headers = state->headers;
  e.body = state->body;
  return e;
}

}  // namespace inkwire::testing
