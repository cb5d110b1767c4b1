#pragma once
// Edge integration tests: the relay and the edge in-process (TestRelay::with_edge), a TestAgent
// behind them playing the SDK, and real third-party clients (curl, openssl) run as processes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "tests/support/test_control_plane.h"
#include "tests/support/test_relay.h"

namespace inkwire::testing {

using namespace std::chrono_literals;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout (and stderr when the command redirects it)
};

// Runs a shell command (bounded by `timeout` in the command itself) and captures its stdout.
inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 65536> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline std::future<CommandResult> run_command_async(std::string command) {
  return std::async(std::launch::async, [command = std::move(command)] { return run_command(command); });
}

class EdgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    control_plane_ = std::make_unique<TestControlPlane>();
    relay_ = std::make_unique<TestRelay>(*control_plane_, [this](Config& c) {
      TestRelay::with_edge(c);
      c.relay.queue_wait_seconds = 2;
      adjust(c);
    });
    web_ = relay_->create_tunnel("web");
  }
  void TearDown() override {
    relay_.reset();
    control_plane_.reset();
  }
  virtual void adjust(Config&) {}

  TestRelay& relay() { return *relay_; }
  const CreatedTunnel& web() const { return web_; }
  std::string zone() const { return relay_->config().zone; }
  // curl against https://{name}.{zone}:{port}{path}, resolving to 127.0.0.1 and trusting the CA.
  // Writes the response head and body to stdout (-i); `extra` goes before the URL.
  std::string curl(const std::string& name, const std::string& path, const std::string& extra = "") const {
    const std::string host = name + "." + relay_->config().zone;
    const std::string port = std::to_string(relay_->https_port());
    return "timeout 20 curl -sS -i --max-time 15 --cacert " + relay_->ca_file() + " --resolve " + host + ":" + port +
           ":127.0.0.1 " + extra + " 'https://" + host + ":" + port + path + "' 2>&1";
  }

 private:
  std::unique_ptr<TestControlPlane> control_plane_;
  std::unique_ptr<TestRelay> relay_;
  CreatedTunnel web_;
};

}  // namespace inkwire::testing
