#pragma once
#include "edge/edge.h"
// The relay role in-process on 127.0.0.1 port 0, beside a TestControlPlane (same database, same
// FakeClock), with a server certificate for 127.0.0.1/localhost issued by the control plane's CA.
// Tests play the edge through the seam (SessionRegistry::dispatch + Exchange) with `call()`, and
// the agent with TestAgent.

#include <prometheus/registry.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "relay/relay.h"
#include "tests/support/test_agent.h"
#include "tests/support/test_control_plane.h"

namespace inkwire::testing {

// What the third party would get back through the edge.
struct EdgeResult {
  int status = 0;  // the agent's inkbox-status, or the relay's failure status (502/503/504)
  std::vector<proto::HeaderField> headers;
  std::string body;
  bool body_complete = false;  // false: the body pipe was aborted
  std::string failure_reason;  // set when the relay failed the exchange
  std::string request_id;
  std::string bridge_id;
  std::optional<std::string> header(std::string_view name) const;
  std::vector<std::string> header_values(std::string_view name) const;
};

struct CreatedTunnel {
  std::string id;
  std::string secret;
  std::string name;
};

class TestRelay {
 public:
  explicit TestRelay(TestControlPlane& control_plane, const std::function<void(Config&)>& adjust = {});
  ~TestRelay();

  // Where agents dial: the relay's listener, or the edge's shared one (with_edge).
  unsigned short port() const { return relay_->port() ? relay_->port() : edge_->https_port(); }
  unsigned short https_port() const { return edge_ ? edge_->https_port() : 0; }
  unsigned short http_port() const { return edge_ ? edge_->http_port() : 0; }
  edge::Edge* edge() { return edge_.get(); }
  // An `adjust` for the constructor: the edge in the same process, agents on its shared listener.
  static void with_edge(Config& config);
  const std::string& ca_file() const { return ca_file_; }
  relay::Relay& relay() { return *relay_; }
  prometheus::Registry& registry() { return *registry_; }
  const Config& config() const { return config_; }

  CreatedTunnel create_tunnel(const std::string& name, const std::string& tls_mode = "edge");
  AgentOptions agent_options() const;
  std::unique_ptr<TestAgent> connect_agent(std::function<void(AgentOptions&)> adjust = {}) const;
  // connect + hello(pool) + one intake per slot; fails the test on error.
  struct Session {
    std::unique_ptr<TestAgent> agent;
    std::string owner_token;
    std::vector<int32_t> intakes;
  };
  Session connect_and_park(const CreatedTunnel& tunnel, int intakes = 1,
                           std::function<void(AgentOptions&)> adjust = {}) const;

  // Runs `fn` (returning an awaitable) on the relay's executor and waits for its result.
  template <typename Fn>
  auto run(Fn fn, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto future = boost::asio::co_spawn(relay_->executor(), fn(), boost::asio::use_future);
    if (future.wait_for(timeout) != std::future_status::ready) throw std::runtime_error("relay task hung");
    return future.get();
  }

  // Plays the edge for one webhook: dispatch, stream the body in, await the head, read the body.
  // Returns at once; the future resolves when the exchange ends.
  std::future<EdgeResult> call(const std::string& tunnel_id, std::string method, std::string target,
                               std::vector<std::pair<std::string, std::string>> headers = {},
                               std::optional<std::string> body = std::nullopt);
  // Dispatches any route kind and hands back the exchange (for bridge tests).
  std::shared_ptr<relay::Exchange> dispatch(const std::string& tunnel_id, proto::RouteKind kind,
                                            std::vector<std::pair<std::string, std::string>> headers = {},
                                            std::string target = "/");
  // Reads a metric (counter or gauge) by name and label set; 0 when absent.
  double metric(const std::string& name, const std::map<std::string, std::string>& labels = {}) const;

 private:
  TestControlPlane& control_plane_;
  Config config_;
  SecureRandom random_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::string dir_;
  std::string ca_file_;
  boost::asio::io_context io_;
  std::unique_ptr<relay::Relay> relay_;
  std::unique_ptr<edge::Edge> edge_;
  std::thread thread_;
};

// Reads one intake envelope (the intake's 200 reply) into a map of its headers.
struct Envelope {
  int status = 0;
  proto::H2Headers headers;
  std::string body;
  std::optional<std::string> header(std::string_view name) const;
};
// Polls `condition` every 5 ms until it holds or the timeout passes.
bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds timeout);
std::optional<Envelope> wait_envelope(TestAgent& agent, int32_t intake, std::chrono::milliseconds timeout);

}  // namespace inkwire::testing
