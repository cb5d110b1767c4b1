#include "relay/bridge_stream.h"

#include <algorithm>

namespace inkwire::relay {

namespace {
constexpr std::size_t kMaxFramePayloadOut = 64 * 1024;  // §4.9: one frame per read, at most 64 KiB
}

BridgeStream::BridgeStream(proto::RouteKind kind, std::shared_ptr<Exchange> exchange, std::size_t max_frame_payload)
    : kind_(kind),
      exchange_(std::move(exchange)),
      // Both SDKs mask; §4.8.1 only says the server MUST unmask, so unmasked frames are tolerated.
      decoder_(proto::WsFrameLimits{max_frame_payload, proto::WsMaskPolicy::accept_any, false}) {}

bool BridgeStream::on_agent_data(std::span<const std::uint8_t> bytes) {
  received_ += bytes.size();
  if (failed_) return false;
  BytePipe& out = exchange_->from_agent();
  while (!bytes.empty()) {
    bytes = bytes.subspan(decoder_.feed(bytes));
    for (;;) {
      auto frame = decoder_.next_view();
      if (!frame) {
        failed_ = true;
        return false;
      }
      if (!*frame) break;
      const proto::WsFrameView& f = **frame;
      switch (f.opcode) {
        case proto::WsOpcode::binary:
        case proto::WsOpcode::text:
          if (!agent_closed_) out.push(f.payload);
          break;
        case proto::WsOpcode::continuation:
          // Ignored on the ws bridge (§4.8.1); joined on the tcp bridge (§4.9), where the bytes
          // are a plain stream.
          if (kind_ == proto::RouteKind::tcp_stream && !agent_closed_) out.push(f.payload);
          break;
        case proto::WsOpcode::ping:
          proto::encode_ws_frame(staging_, proto::WsOpcode::pong, f.payload);
          break;
        case proto::WsOpcode::pong:
          break;
        case proto::WsOpcode::close:
          if (!agent_closed_) {
            agent_closed_ = true;
            if (auto close = proto::decode_close_payload(f.payload)) exchange_->set_agent_close_code(close->code);
          }
          break;
      }
    }
  }
  return true;
}

void BridgeStream::on_agent_end() { exchange_->from_agent().finish(); }

std::size_t BridgeStream::take_credit() {
  const std::uint64_t held = exchange_->from_agent().size();
  const std::uint64_t due = received_ > credited_ + held ? received_ - credited_ - held : 0;
  credited_ += due;
  return static_cast<std::size_t>(due);
}

std::size_t BridgeStream::take_all_credit() {
  const std::uint64_t due = received_ - credited_;
  credited_ = received_;
  return static_cast<std::size_t>(due);
}

BridgeStream::Pump BridgeStream::pump(proto::H2Session& h2, std::int32_t stream_id) {
  BytePipe& in = exchange_->to_agent();
  for (;;) {
    if (staging_off_ < staging_.size()) {
      auto written = h2.write_data(stream_id, std::string_view(staging_).substr(staging_off_));
      if (!written) return Pump::reset;
      staging_off_ += *written;
      if (staging_off_ < staging_.size()) return Pump::wait;
      staging_.clear();
      staging_off_ = 0;
    }
    if (in.size() > 0) {
      auto bytes = in.peek();
      const std::size_t n = std::min(bytes.size(), kMaxFramePayloadOut);
      proto::encode_ws_frame(staging_, proto::WsOpcode::binary, bytes.first(n));
      sent_payload_ += n;
      in.take(n);
      continue;
    }
    if (in.end() == PipeEnd::aborted) return Pump::reset;
    if (in.end() == PipeEnd::finished) {
      if (!close_sent_) {
        close_sent_ = true;
        const std::string payload = proto::encode_close_payload(proto::ws_close::normal, {});
        proto::encode_ws_frame(staging_, proto::WsOpcode::close,
                               std::span(reinterpret_cast<const std::uint8_t*>(payload.data()), payload.size()));
        continue;
      }
      return Pump::end_stream;
    }
    return Pump::wait;
  }
}

}  // namespace inkwire::relay
