#pragma once
// Shared pieces of the relay integration tests: one control plane + relay per test (fresh
// database), a tunnel, and shorthands for what an agent sends.

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <memory>
#include <string>

#include "proto/bridge_message.h"
#include "proto/ws_frame.h"
#include "tests/support/test_control_plane.h"
#include "tests/support/test_relay.h"

namespace inkwire::testing {

using namespace std::chrono_literals;

class RelayTest : public ::testing::Test {
 protected:
  // Override to change the relay's settings before it starts.
  virtual void adjust(Config&) {}

  void SetUp() override {
    control_plane_ = std::make_unique<TestControlPlane>();
    relay_ = std::make_unique<TestRelay>(*control_plane_, [this](Config& c) { adjust(c); });
    tunnel_ = relay_->create_tunnel("alpha");
  }
  void TearDown() override {
    relay_.reset();
    control_plane_.reset();
  }

  TestRelay& relay() { return *relay_; }
  TestControlPlane& cp() { return *control_plane_; }
  const CreatedTunnel& tunnel() const { return tunnel_; }

  // GET /api/v1/tunnels/{id} as JSON.
  boost::json::value tunnel_json(const std::string& id) {
    auto res = control_plane_->client().get("/api/v1/tunnels/" + id, control_plane_->admin_key());
    return res.json();
  }

  std::unique_ptr<TestControlPlane> control_plane_;
  std::unique_ptr<TestRelay> relay_;
  CreatedTunnel tunnel_;
};

// A frame as an agent sends it: masked with a fixed key.
inline std::string agent_frame(proto::WsOpcode op, std::string_view payload, bool fin = true) {
  std::string out;
  proto::encode_ws_frame(out, op, std::span(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()),
                         fin, std::array<std::uint8_t, 4>{0x11, 0x22, 0x33, 0x44});
  return out;
}

// Decodes every complete frame in `bytes` (server frames: unmasked).
inline std::vector<proto::WsFrame> decode_frames(const std::string& bytes) {
  proto::WsFrameDecoder decoder(proto::WsFrameLimits{1 << 24, proto::WsMaskPolicy::require_unmasked, false});
  std::vector<proto::WsFrame> frames;
  std::span<const std::uint8_t> in(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  while (!in.empty()) {
    in = in.subspan(decoder.feed(in));
    for (;;) {
      auto next = decoder.next();
      if (!next || !*next) break;
      frames.push_back(std::move(**next));
    }
  }
  return frames;
}

}  // namespace inkwire::testing
