// libFuzzer target: an agent's HTTP/2 connection as the relay sees it. Arbitrary bytes go into an
// H2Session in the server role (optionally behind a valid client preface and an empty SETTINGS
// frame), in fuzzer-chosen chunks; after every chunk the events are drained and answered the way
// the relay would (responses with or without a body, DATA, END_STREAM, RST_STREAM, GOAWAY, PING,
// consume() of every received byte), each choice made by the fuzzer, and the output is drained
// with produce() in fuzzer-chosen slices. Besides "no crash, no sanitizer report, no leak" it traps
// when the session breaks a promise of proto/h2_session.h that the relay relies on:
//   * receive() takes all it is given, or fails and then want_read() is false;
//   * produce() appends exactly what it returns, at most max_bytes, nothing while want_write() is
//     false, and a full drain ends; the total output stays within a budget linear in the input and
//     in what the owner submitted;
//   * tracked_streams() never exceeds our SETTINGS_MAX_CONCURRENT_STREAMS (nghttp2 refuses a
//     request HEADERS beyond the pending or acknowledged limit before on_begin_headers, and every
//     stream it opened leaves through on_stream_close), and never falls below the streams the owner
//     was told about and not yet told closed;
//   * stream events follow the contract: H2RequestHeaders first (odd, increasing ids, lowercase
//     regular field names, a :method), then H2Data (nothing after end_stream), H2StreamWritable only
//     after write_data refused bytes, and H2StreamClosed exactly once, last; no event names a
//     stream the owner never heard of;
//   * write_data accepts at most what it is offered and never buffers past outbound_buffer_limit,
//     and succeeds on an open stream the owner has not ended.
// Integer choices come from the end of the input (FuzzedDataProvider), wire bytes from the front,
// so a seed is real frames followed by a few choice bytes read back to front.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proto/h2_session.h"

namespace {

using namespace inkwire::proto;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr std::string_view kEmptySettings("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9);
constexpr size_t kBufferLimit = 4096;
// Output the session may produce on its own (our SETTINGS, connection WINDOW_UPDATE, a GOAWAY
// with nghttp2's reason text) before anything is charged to the input or to the owner.
constexpr size_t kOutputSlack = 4096;
// Per received byte: every frame the peer sends (9 bytes at least) is answered by at most a couple
// of frames (SETTINGS/PING ACK, RST_STREAM, WINDOW_UPDATE for padding).
constexpr size_t kOutputPerInputByte = 8;
// Per owner call, on top of the bytes it hands over (frame headers, WINDOW_UPDATEs, ...).
constexpr size_t kOutputPerAction = 64;

struct OwnStream {
  bool remote_ended = false;
  bool local_ended = false;  // end requested by us (end_stream, or a response with end_stream)
  bool responded = false;
  bool blocked = false;  // write_data refused bytes since the last H2StreamWritable
  size_t unconsumed = 0;
};

const std::array<uint8_t, 8192> kPattern = [] {
  std::array<uint8_t, 8192> p{};
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>((i * 31 + 7) % 251);
  return p;
}();

class Harness {
 public:
  Harness(FuzzedDataProvider& fdp, std::unique_ptr<H2Session> session, uint32_t max_streams)
      : fdp_(fdp), h2_(std::move(session)), max_streams_(max_streams) {}

  void receive(std::span<const uint8_t> bytes) {
    if (bytes.empty() || failed_) return;
    if (!h2_->want_read()) return;
    bytes_in_ += bytes.size();
    auto r = h2_->receive(bytes);
    if (r) {
      check(*r == bytes.size());
    } else {
      failed_ = true;
      check(!h2_->want_read());
    }
    check_streams();
  }

  void drain_events() {
    while (auto ev = h2_->next_event()) {
      budget_ += kOutputPerAction;
      std::visit([this](auto& e) { on_event(e); }, *ev);
      check_streams();
    }
    // Every stream the owner knows is still tracked by the session.
    check(h2_->tracked_streams() >= open_.size());
  }

  void act() {
    const int actions = fdp_.ConsumeIntegralInRange<int>(0, 3);
    for (int i = 0; i < actions && fdp_.remaining_bytes() > 0; ++i) {
      budget_ += kOutputPerAction;
      switch (fdp_.ConsumeIntegralInRange<int>(0, 9)) {
        case 0: write(pick_stream(), fdp_.ConsumeIntegral<uint8_t>() * size_t{24}); break;
        case 1: end(pick_stream()); break;
        case 2: reset(pick_stream()); break;
        case 3: respond(pick_stream()); break;
        case 4: {
          static constexpr std::array<uint32_t, 4> kCodes = {kH2NoError, kH2ProtocolError,
                                                             kH2Superseded, kH2EnhanceYourCalm};
          const uint32_t code = kCodes[fdp_.ConsumeIntegralInRange<size_t>(0, kCodes.size() - 1)];
          const std::string debug(fdp_.ConsumeIntegralInRange<size_t>(0, 40), 'd');
          budget_ += debug.size();
          std::optional<int32_t> last;
          if (fdp_.ConsumeBool()) last = fdp_.ConsumeIntegralInRange<int32_t>(0, 255);
          (void)h2_->goaway(code, debug, last);
          break;
        }
        case 5: (void)h2_->ping(fdp_.ConsumeIntegral<uint8_t>()); break;
        case 6: consume_all(); break;
        case 7: (void)h2_->terminate(fdp_.ConsumeBool() ? kH2NoError : kH2ProtocolError); break;
        case 8: {
          // Calls on streams the session does not know fail, and harmlessly: stream 0, even ids
          // (never a client's) and streams already closed.
          int32_t id = 2 * fdp_.ConsumeIntegralInRange<int32_t>(0, 127);
          if (!closed_.empty() && fdp_.ConsumeBool()) {
            auto it = closed_.begin();
            std::advance(it, fdp_.ConsumeIntegralInRange<size_t>(0, closed_.size() - 1));
            id = *it;
          }
          std::string_view bytes = "x";
          if (!failed_) check(!h2_->write_data(id, bytes));
          if (!failed_) check(!h2_->end_stream(id));
          if (!failed_) check(!h2_->reset_stream(id, kH2Cancel));
          if (!failed_) check(!h2_->submit_response(id, 200, {}, true));
          (void)h2_->consume(id, fdp_.ConsumeIntegral<uint8_t>());
          check(h2_->outbound_buffered(id) == 0);
          break;
        }
        default: {
          // The client-only call fails in the server role.
          check(!h2_->submit_request("GET", "https", "a", "/", {}, true));
          break;
        }
      }
      check_streams();
    }
  }

  // One produce() call or a full drain, as the fuzzer likes.
  void produce() {
    if (fdp_.ConsumeBool()) {
      const size_t max_bytes = fdp_.ConsumeIntegralInRange<size_t>(1, 64);
      produce_once(max_bytes);
    } else {
      drain_output();
    }
  }

  void drain_output() {
    for (int i = 0;; ++i) {
      check(i < 100000);  // a full drain ends
      if (produce_once(size_t{1} << 20) == 0) break;
    }
  }

  void finish() {
    drain_output();
    drain_events();
    consume_all();
    drain_output();
    drain_events();
  }

 private:
  size_t produce_once(size_t max_bytes) {
    // The relay's writer sleeps while want_write() is false: nothing may be waiting then.
    const bool wanted = h2_->want_write();
    check(h2_->should_close() == (!h2_->want_read() && !wanted));
    std::string out = "prefix";
    auto r = h2_->produce(out, max_bytes);
    size_t n = 0;
    if (r) {
      n = *r;
      check(n <= max_bytes);
      check(out.size() == 6 + n);
      check(wanted || n == 0);
    } else {
      failed_ = true;
      check(out.size() >= 6 && out.size() - 6 <= max_bytes);
      n = out.size() - 6;
    }
    bytes_out_ += n;
    check(bytes_out_ <= kOutputSlack + kOutputPerInputByte * bytes_in_ + budget_);
    check_streams();
    drain_events();
    return r ? n : 0;
  }

  void check_streams() const { check(h2_->tracked_streams() <= max_streams_); }

  int32_t pick_stream() {
    // Sometimes a stream the session cannot know: even ids are never a client's. (An odd one
    // might be a stream whose header block was refused, which the session tracks silently.)
    if (open_.empty() || fdp_.ConsumeIntegralInRange<int>(0, 7) == 0) {
      return 2 * fdp_.ConsumeIntegralInRange<int32_t>(0, 127);
    }
    auto it = open_.begin();
    std::advance(it, fdp_.ConsumeIntegralInRange<size_t>(0, open_.size() - 1));
    return it->first;
  }

  void write(int32_t id, size_t n) {
    n = std::min(n, kPattern.size());
    budget_ += n;
    auto r = h2_->write_data(id, std::span<const uint8_t>(kPattern.data(), n));
    auto it = open_.find(id);
    if (it != open_.end() && !failed_ && !it->second.local_ended) check(r.has_value());
    if (r) {
      check(*r <= n);
      check(it != open_.end());
      if (*r < n) it->second.blocked = true;
    }
    check(h2_->outbound_buffered(id) <= kBufferLimit);
  }

  void end(int32_t id) {
    auto r = h2_->end_stream(id);
    auto it = open_.find(id);
    if (it != open_.end() && !failed_) check(r.has_value());
    if (r && it != open_.end()) it->second.local_ended = true;
  }

  void reset(int32_t id) {
    static constexpr std::array<uint32_t, 4> kCodes = {kH2Cancel, kH2InternalError,
                                                       kH2RefusedStream, kH2NoError};
    (void)h2_->reset_stream(id, kCodes[fdp_.ConsumeIntegralInRange<size_t>(0, kCodes.size() - 1)]);
  }

  void respond(int32_t id) {
    static constexpr std::array<int, 8> kStatuses = {200, 204, 404, 500, 101, 599, 600, 302};
    static const std::array<H2Header, 6> kFields = {
        H2Header{"content-type", "application/json"}, H2Header{"x-inkbox", "1"},
        H2Header{"set-cookie", "a=b; Path=/"},        H2Header{"connection", "close"},
        H2Header{"Upper", "case"},                    H2Header{"x-bad", "a\r\nb"},
    };
    const int status = kStatuses[fdp_.ConsumeIntegralInRange<size_t>(0, kStatuses.size() - 1)];
    std::vector<H2Header> fields;
    const size_t n = fdp_.ConsumeIntegralInRange<size_t>(0, 3);
    for (size_t i = 0; i < n; ++i) {
      fields.push_back(kFields[fdp_.ConsumeIntegralInRange<size_t>(0, kFields.size() - 1)]);
      budget_ += fields.back().name.size() + fields.back().value.size() + 8;
    }
    if (fdp_.ConsumeBool()) {  // an oversized field, refused by the send-side limits or not
      fields.push_back({"x-big", std::string(fdp_.ConsumeIntegral<uint8_t>() * size_t{300}, 'b')});
      budget_ += fields.back().value.size() + 16;
    }
    const bool end_stream = fdp_.ConsumeBool();
    auto r = h2_->submit_response(id, status, fields, end_stream);
    auto it = open_.find(id);
    if (r) {
      check(it != open_.end() && !it->second.responded);
      check(status >= 200 && status <= 599);
      it->second.responded = true;
      if (end_stream) it->second.local_ended = true;
    }
  }

  void consume_all() {
    for (auto& [id, s] : open_) {
      if (s.unconsumed == 0) continue;
      budget_ += kOutputPerAction;
      (void)h2_->consume(id, s.unconsumed);
      s.unconsumed = 0;
    }
  }

  void on_event(H2RequestHeaders& e) {
    check(e.stream_id > last_request_id_ && (e.stream_id & 1) == 1);
    last_request_id_ = e.stream_id;
    check(open_.count(e.stream_id) == 0 && closed_.count(e.stream_id) == 0);
    check(!e.method.empty());
    for (const H2Header& h : e.headers) {
      check(!h.name.empty() && h.name.front() != ':');
      check(std::none_of(h.name.begin(), h.name.end(), [](char c) { return c >= 'A' && c <= 'Z'; }));
    }
    OwnStream& s = open_[e.stream_id];
    s.remote_ended = e.end_stream;
    // The relay looks at the request and answers at once, later, or refuses it.
    switch (fdp_.ConsumeIntegralInRange<int>(0, 3)) {
      case 0: {  // a relay-like reply: small JSON body and END_STREAM
        // May fail: the peer's SETTINGS_MAX_HEADER_LIST_SIZE can be too small for any response.
        auto r = h2_->submit_response(e.stream_id, 200, {}, false);
        if (!r) break;
        s.responded = true;
        budget_ += 16;
        write(e.stream_id, 16);
        end(e.stream_id);
        break;
      }
      case 1: respond(e.stream_id); break;
      case 2: reset(e.stream_id); break;
      default: break;  // answer later (an action), or never
    }
  }

  void on_event(H2Data& e) {
    auto it = open_.find(e.stream_id);
    check(it != open_.end());
    OwnStream& s = it->second;
    check(!s.remote_ended);
    s.remote_ended = e.end_stream;
    s.unconsumed += e.bytes.size();
    if (!fdp_.ConsumeBool()) {  // usually consumed at once (the relay forwards it)
      (void)h2_->consume(e.stream_id, s.unconsumed);
      s.unconsumed = 0;
    }
  }

  void on_event(H2StreamClosed& e) {
    auto it = open_.find(e.stream_id);
    check(it != open_.end());
    // Bytes taken from a closed stream are still credited to the connection.
    if (it->second.unconsumed > 0) (void)h2_->consume(e.stream_id, it->second.unconsumed);
    open_.erase(it);
    closed_.insert(e.stream_id);
  }

  void on_event(H2StreamWritable& e) {
    auto it = open_.find(e.stream_id);
    check(it != open_.end());
    check(it->second.blocked);
    it->second.blocked = false;
    if (fdp_.ConsumeBool()) write(e.stream_id, fdp_.ConsumeIntegral<uint8_t>() * size_t{24});
  }

  void on_event(H2ResponseHeaders&) { check(false); }  // client role only
  void on_event(H2GoAwayReceived&) {}
  void on_event(H2SettingsReceived&) {}
  void on_event(H2PingAcked&) {}

  FuzzedDataProvider& fdp_;
  std::unique_ptr<H2Session> h2_;
  uint32_t max_streams_;
  std::map<int32_t, OwnStream> open_;  // announced, not closed
  std::set<int32_t> closed_;
  int32_t last_request_id_ = 0;
  bool failed_ = false;
  size_t bytes_in_ = 0;
  size_t bytes_out_ = 0;
  size_t budget_ = 0;  // output the owner's own calls account for
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  const bool preface = fdp.ConsumeBool();
  const uint8_t config = fdp.ConsumeIntegral<uint8_t>();

  H2Settings settings;
  settings.max_concurrent_streams = 1 + (config & 0x07);  // 1..8
  settings.outbound_buffer_limit = kBufferLimit;
  settings.initial_window_size = (config & 0x08) ? 1024 : 65535;
  settings.max_header_list_size = (config & 0x10) ? 512 : 16384;
  settings.connection_window = (config & 0x20) ? 65536 : 0;
  settings.max_send_header_list_size = 4096;
  settings.max_continuations = 4;
  settings.max_outbound_ack = 64;
  settings.reset_burst = (config & 0x40) ? 4 : 1000;
  settings.enable_connect_protocol = (config & 0x80) == 0;
  auto created = H2Session::create(H2Session::Role::server, settings);
  check(created.has_value());
  Harness h(fdp, std::move(*created), settings.max_concurrent_streams);

  if (preface) {
    std::string start(kPreface);
    start += kEmptySettings;
    h.receive({reinterpret_cast<const uint8_t*>(start.data()), start.size()});
    h.drain_events();
  }
  for (int round = 0; round < 4096 && fdp.remaining_bytes() > 0; ++round) {
    // 0 feeds the rest in one go (seeds are frames followed by a few choice bytes).
    const size_t chunk = fdp.ConsumeIntegral<uint8_t>();
    const std::vector<uint8_t> bytes = fdp.ConsumeBytes<uint8_t>(chunk == 0 ? size : chunk);
    h.receive(bytes);
    h.drain_events();
    h.act();
    h.produce();
  }
  h.finish();
  return 0;
}
