// libFuzzer target: the edge's WebSocket codec toward a third party (proto/public_websocket.h),
// driven by a fuzzer-chosen sequence of events: raw client bytes, well-formed masked client frames
// (any opcode, fin, mask), raw agent bytes, well-formed bridge messages, END_STREAM, RST, the
// client going away, keepalive pings and output takes. Besides "no crash, no sanitizer report" it
// checks:
//   * what goes to the client is a clean stream of unmasked, unfragmented RFC 6455 frames: valid
//     UTF-8 text, at most one CLOSE with a sendable code (or empty), nothing after it;
//   * what goes to the agent is a clean §4.8.2 stream: every message decodes (nothing the agent
//     would skip), no message above the limit, at most one close with a sendable code (never
//     1005/1006/1015), nothing after it;
//   * the state queries match the streams, only ever move forward, and after finished() nothing
//     more is produced; the memory held besides the output stays within the limits;
//   * feeding the same bytes one at a time gives exactly the same output and states.
// Event choices and lengths come from the end of the input (FuzzedDataProvider), payloads from the
// front.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "proto/bridge_message.h"
#include "proto/header_rules.h"
#include "proto/public_websocket.h"
#include "proto/ws_frame.h"

namespace {

using namespace inkwire::proto;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

std::span<const std::uint8_t> span_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

struct Event {
  enum class Kind : std::uint8_t { client, agent, agent_finished, agent_failed, client_gone, ping, take };
  Kind kind = Kind::take;
  std::string bytes;
  std::optional<std::uint16_t> code;
};

// Reads what the edge sent the client and checks it as a browser would.
class ClientStream {
 public:
  void read(std::string_view bytes) {
    std::span<const std::uint8_t> rest = span_of(bytes);
    while (!rest.empty()) {
      rest = rest.subspan(decoder_.feed(rest));
      for (;;) {
        auto r = decoder_.next_view();
        check(r.has_value());
        if (!*r) break;
        const WsFrameView& f = **r;
        check(!closed_);  // nothing after our CLOSE
        check(f.fin);     // never fragmented
        check(f.opcode != WsOpcode::continuation);
        if (f.opcode == WsOpcode::text) {
          check(is_valid_utf8(std::string_view(reinterpret_cast<const char*>(f.payload.data()), f.payload.size())));
        }
        if (f.opcode == WsOpcode::close) {
          closed_ = true;
          const auto c = decode_close_payload(f.payload);
          check(c.has_value());
          if (!f.payload.empty()) {
            check(is_sendable_close_code(c->code));
            check(is_valid_utf8(c->reason));
          }
        }
      }
    }
  }
  bool closed() const { return closed_; }

 private:
  WsFrameDecoder decoder_{{.max_frame_payload = 64 * 1024 * 1024, .mask_policy = WsMaskPolicy::require_unmasked}};
  bool closed_ = false;
};

// Reads what the edge sent the agent and checks it as the agents would.
class AgentStream {
 public:
  explicit AgentStream(std::size_t max_message) : max_message_(max_message) {}
  void read(std::string_view bytes) {
    std::span<const std::uint8_t> rest = span_of(bytes);
    while (!rest.empty()) {
      rest = rest.subspan(decoder_.feed(rest));
      for (;;) {
        auto r = decoder_.next();
        check(r.has_value());
        if (!*r) break;
        const auto* m = std::get_if<BridgeMessage>(&**r);
        check(m != nullptr);  // nothing the agent would skip
        check(!closed_);
        if (m->type == BridgeMessage::Type::close) {
          closed_ = true;
          check(m->close_code >= 0 && m->close_code <= 0xFFFF);
          check(is_sendable_close_code(static_cast<std::uint16_t>(m->close_code)));
        } else {
          check(m->data.size() <= max_message_);
        }
      }
    }
  }
  bool closed() const { return closed_; }

 private:
  std::size_t max_message_;
  BridgeMessageDecoder decoder_{{.max_message_bytes = 256 * 1024 * 1024}};
  bool closed_ = false;
};

struct State {
  bool client_close_sent, client_close_received, client_gone, agent_close_sent, agent_ended, finished;
  std::optional<std::uint16_t> to_client, to_agent;
  bool operator==(const State&) const = default;
};

State state_of(const PublicWebSocket& ws) {
  return {ws.client_close_sent(), ws.client_close_received(), ws.client_gone(), ws.agent_close_sent(),
          ws.agent_ended(),       ws.finished(),              ws.close_code_to_client(), ws.close_code_to_agent()};
}

// Flags only ever go from false to true, and a chosen code never changes.
void check_forward(const State& before, const State& after) {
  check(!before.client_close_sent || after.client_close_sent);
  check(!before.client_close_received || after.client_close_received);
  check(!before.client_gone || after.client_gone);
  check(!before.agent_close_sent || after.agent_close_sent);
  check(!before.agent_ended || after.agent_ended);
  check(!before.finished || after.finished);
  if (before.to_client) check(after.to_client == before.to_client);
  if (before.to_agent) check(after.to_agent == before.to_agent);
}

void apply(PublicWebSocket& ws, const Event& e, bool bytewise) {
  switch (e.kind) {
    case Event::Kind::client:
    case Event::Kind::agent: {
      const auto bytes = span_of(e.bytes);
      const bool client = e.kind == Event::Kind::client;
      if (!bytewise) {
        client ? ws.feed_from_client(bytes) : ws.feed_from_agent(bytes);
      } else {
        for (std::size_t i = 0; i < bytes.size(); ++i)
          client ? ws.feed_from_client(bytes.subspan(i, 1)) : ws.feed_from_agent(bytes.subspan(i, 1));
      }
      return;
    }
    case Event::Kind::agent_finished: ws.agent_finished(e.code); return;
    case Event::Kind::agent_failed: ws.agent_failed(); return;
    case Event::Kind::client_gone: ws.client_gone(e.code); return;
    case Event::Kind::ping: ws.send_ping(span_of(e.bytes)); return;
    case Event::Kind::take: return;
  }
}

std::vector<Event> read_events(FuzzedDataProvider& fdp) {
  std::vector<Event> events;
  while (fdp.remaining_bytes() > 0 && events.size() < 200) {
    Event e;
    switch (fdp.ConsumeIntegralInRange<int>(0, 9)) {
      case 0:  // raw client bytes
        e.kind = Event::Kind::client;
        e.bytes = fdp.ConsumeBytesAsString(fdp.ConsumeIntegralInRange<std::size_t>(0, 2048));
        break;
      case 1: {  // one client frame: bit 7 fin, bit 6 unmasked, low nibble the opcode (any)
        e.kind = Event::Kind::client;
        const auto head = fdp.ConsumeIntegral<std::uint8_t>();
        const std::string payload = fdp.ConsumeBytesAsString(fdp.ConsumeIntegralInRange<std::size_t>(0, 2048));
        std::optional<std::array<std::uint8_t, 4>> key;
        if ((head & 0x40) == 0)
          key = std::array<std::uint8_t, 4>{fdp.ConsumeIntegral<std::uint8_t>(), 0x5a, 0x0f, 0xc3};
        encode_ws_frame(e.bytes, static_cast<WsOpcode>(head & 0x0F), span_of(payload), (head & 0x80) != 0, key);
        break;
      }
      case 2:  // raw agent bytes
        e.kind = Event::Kind::agent;
        e.bytes = fdp.ConsumeBytesAsString(fdp.ConsumeIntegralInRange<std::size_t>(0, 2048));
        break;
      case 3: {  // one bridge message
        e.kind = Event::Kind::agent;
        const auto type = fdp.ConsumeIntegralInRange<int>(0, 2);
        const std::string payload = fdp.ConsumeBytesAsString(fdp.ConsumeIntegralInRange<std::size_t>(0, 2048));
        if (type == 0 && is_valid_utf8(payload)) encode_bridge_text(e.bytes, payload);
        if (type == 0 && !is_valid_utf8(payload)) encode_bridge_binary(e.bytes, span_of(payload));
        if (type == 1) encode_bridge_binary(e.bytes, span_of(payload));
        if (type == 2) {
          const std::string reason = is_valid_utf8(payload) ? payload : std::string();
          encode_bridge_close(e.bytes, fdp.ConsumeIntegral<std::uint16_t>(), reason);
        }
        break;
      }
      case 4:
        e.kind = Event::Kind::agent_finished;
        if (fdp.ConsumeBool()) e.code = fdp.ConsumeIntegral<std::uint16_t>();
        break;
      case 5: e.kind = Event::Kind::agent_failed; break;
      case 6:
        e.kind = Event::Kind::client_gone;
        if (fdp.ConsumeBool()) e.code = fdp.ConsumeIntegral<std::uint16_t>();
        break;
      case 7:
        e.kind = Event::Kind::ping;
        e.bytes = fdp.ConsumeBytesAsString(fdp.ConsumeIntegralInRange<std::size_t>(0, 200));
        break;
      default: e.kind = Event::Kind::take; break;
    }
    events.push_back(std::move(e));
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  // Small limits so that inputs of a few KiB reach the limit paths.
  const auto config = fdp.ConsumeIntegral<std::uint8_t>();
  constexpr std::size_t kMessage[] = {16 * 1024 * 1024, 64, 1000, 300};
  constexpr std::size_t kFrame[] = {16 * 1024 * 1024, 50, 700, 125};
  constexpr std::size_t kJson[] = {0, 200};
  const PublicWebSocketLimits limits{.max_message_bytes = kMessage[config & 3],
                                     .max_frame_payload = kFrame[(config >> 2) & 3],
                                     .max_agent_json_bytes = kJson[(config >> 4) & 1]};
  const std::vector<Event> events = read_events(fdp);

  PublicWebSocket whole(limits);
  PublicWebSocket bytewise(limits);
  ClientStream client;
  AgentStream agent(limits.max_message_bytes);
  const std::size_t json_limit = limits.max_agent_json_bytes == 0 ? 3 * limits.max_message_bytes + 1024
                                                                  : limits.max_agent_json_bytes;
  const std::size_t held_bound =
      kWsMaxHeaderSize + limits.max_frame_payload + limits.max_message_bytes + 4 + json_limit;

  State before = state_of(whole);
  for (const Event& e : events) {
    const bool was_finished = whole.finished();
    apply(whole, e, false);
    apply(bytewise, e, true);
    const State after = state_of(whole);
    check(after == state_of(bytewise));
    check_forward(before, after);
    before = after;
    check(whole.buffered_bytes() == bytewise.buffered_bytes());
    check(whole.buffered_bytes() - whole.pending_to_client() - whole.pending_to_agent() <= held_bound);

    // Take at every take event, and as soon as finished() holds: from then on nothing more may
    // come out.
    if (e.kind != Event::Kind::take && !after.finished) continue;
    const std::string to_client = whole.take_to_client();
    const std::string to_agent = whole.take_to_agent();
    check(to_client == bytewise.take_to_client());
    check(to_agent == bytewise.take_to_agent());
    if (was_finished) check(to_client.empty() && to_agent.empty());  // nothing after finished()
    client.read(to_client);
    agent.read(to_agent);
    if (client.closed()) check(whole.client_close_sent());
    check(agent.closed() == whole.agent_close_sent());
  }
  const std::string to_client = whole.take_to_client();
  const std::string to_agent = whole.take_to_agent();
  check(to_client == bytewise.take_to_client());
  check(to_agent == bytewise.take_to_agent());
  client.read(to_client);
  agent.read(to_agent);
  if (client.closed()) check(whole.client_close_sent());
  check(agent.closed() == whole.agent_close_sent());
  return 0;
}
