#include "proto/h2_session.h"

#include "proto/h2_memory.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <charconv>

#include "proto/h2_callbacks.h"
#include "proto/h2_field_rules.h"
#include "proto/header_rules.h"

namespace inkwire::proto {
namespace {

constexpr uint32_t kMaxWindow = 16u * 1024 * 1024;  // our cap for configured windows (16 MiB)
constexpr uint32_t kMinFrameSize = 16384;
constexpr uint32_t kMaxFrameSize = 16777215;

// Fields HPACK must never put in its dynamic table, so a compression side channel cannot probe
// them (RFC 7541 §7.1.3).
bool is_sensitive(std::string_view name) {
  return name == "authorization" || name == "proxy-authorization" || name == "x-tunnel-secret" ||
         name == "x-owner-token";
}

nghttp2_nv make_nv(std::string_view name, std::string_view value) {
  nghttp2_nv nv{};
  // nghttp2 copies names and values during submit (no NO_COPY flags), so views are enough.
  nv.name = reinterpret_cast<uint8_t*>(const_cast<char*>(name.data()));
  nv.namelen = name.size();
  nv.value = reinterpret_cast<uint8_t*>(const_cast<char*>(value.data()));
  nv.valuelen = value.size();
  nv.flags = is_sensitive(name) ? NGHTTP2_NV_FLAG_NO_INDEX : NGHTTP2_NV_FLAG_NONE;
  return nv;
}

H2Error error(H2ErrorKind kind, std::string detail, int lib_error = 0) {
  return H2Error{kind, lib_error, std::move(detail)};
}

H2Error lib_failure(int lib_error, std::string_view what) {
  std::string detail(what);
  detail += ": ";
  detail += nghttp2_strerror(lib_error);
  return H2Error{H2ErrorKind::protocol, lib_error, std::move(detail)};
}

struct CallbacksDeleter {
  void operator()(nghttp2_session_callbacks* p) const { nghttp2_session_callbacks_del(p); }
};
struct OptionDeleter {
  void operator()(nghttp2_option* p) const { nghttp2_option_del(p); }
};

}  // namespace

Expected<std::unique_ptr<H2Session>, H2Error> H2Session::create(Role role,
                                                                const H2Settings& settings) {
  if (settings.initial_window_size > kMaxWindow) {
    return unexpected(error(H2ErrorKind::invalid_argument, "initial_window_size above 16 MiB"));
  }
  if (settings.connection_window > kMaxWindow) {
    return unexpected(error(H2ErrorKind::invalid_argument, "connection_window above 16 MiB"));
  }
  if (settings.max_frame_size < kMinFrameSize || settings.max_frame_size > kMaxFrameSize) {
    return unexpected(
        error(H2ErrorKind::invalid_argument, "max_frame_size outside 16384..16777215"));
  }
  if (settings.outbound_buffer_limit == 0 || settings.max_header_list_size == 0) {
    return unexpected(error(H2ErrorKind::invalid_argument, "zero buffer or header limit"));
  }
  std::unique_ptr<H2Session> session(new H2Session(role, settings));
  if (auto ok = session->init(); !ok) return unexpected(ok.error());
  return session;
}

H2Session::H2Session(Role role, const H2Settings& settings) : role_(role), settings_(settings) {}

H2Session::~H2Session() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

Expected<Unit, H2Error> H2Session::init() {
  nghttp2_session_callbacks* raw_callbacks = nullptr;
  if (int rv = nghttp2_session_callbacks_new(&raw_callbacks); rv != 0) {
    return unexpected(lib_failure(rv, "callbacks"));
  }
  std::unique_ptr<nghttp2_session_callbacks, CallbacksDeleter> callbacks(raw_callbacks);
  H2Callbacks::install(callbacks.get());

  nghttp2_option* raw_option = nullptr;
  if (int rv = nghttp2_option_new(&raw_option); rv != 0)
    return unexpected(lib_failure(rv, "option"));
  std::unique_ptr<nghttp2_option, OptionDeleter> option(raw_option);
  // Windows open only as the owner consumes (consume()), so a slow reader exerts backpressure.
  nghttp2_option_set_no_auto_window_update(option.get(), 1);
  // We never use RFC 7540 priorities; closed streams need not be kept for the priority tree.
  nghttp2_option_set_no_closed_streams(option.get(), 1);
  nghttp2_option_set_stream_reset_rate_limit(option.get(), settings_.reset_burst,
                                             settings_.reset_rate_per_second);
  nghttp2_option_set_max_continuations(option.get(), settings_.max_continuations);
  nghttp2_option_set_max_settings(option.get(), settings_.max_settings_entries);
  nghttp2_option_set_max_outbound_ack(option.get(), settings_.max_outbound_ack);
  if (role_ == Role::client && settings_.assumed_peer_max_concurrent_streams != 0) {
    nghttp2_option_set_peer_max_concurrent_streams(option.get(),
                                                   settings_.assumed_peer_max_concurrent_streams);
  }

  const int rv = role_ == Role::server
                     ? nghttp2_session_server_new3(&session_, callbacks.get(), this, option.get(), h2_allocator())
                     : nghttp2_session_client_new3(&session_, callbacks.get(), this, option.get(), h2_allocator());
  if (rv != 0) {
    session_ = nullptr;
    return unexpected(lib_failure(rv, "session"));
  }

  std::vector<nghttp2_settings_entry> iv;
  // Nobody pushes on our connections. A client must say so; a server may (RFC 9113 §6.5.2), and
  // PROTOCOL.md §6.5 asks the agent's plaintext server to advertise it.
  iv.push_back({NGHTTP2_SETTINGS_ENABLE_PUSH, 0});
  iv.push_back({NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings_.max_concurrent_streams});
  iv.push_back({NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings_.initial_window_size});
  iv.push_back({NGHTTP2_SETTINGS_MAX_FRAME_SIZE, settings_.max_frame_size});
  iv.push_back({NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings_.max_header_list_size});
  if (settings_.header_table_size != 4096) {
    iv.push_back({NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, settings_.header_table_size});
  }
  if (role_ == Role::server && settings_.enable_connect_protocol) {
    iv.push_back({NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1});
  }
  if (int r = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv.data(), iv.size()); r != 0) {
    return unexpected(lib_failure(r, "settings"));
  }
  if (settings_.connection_window > 0) {
    const auto target =
        static_cast<int32_t>(NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE + settings_.connection_window);
    if (int r = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, target);
        r != 0) {
      return unexpected(lib_failure(r, "connection window"));
    }
  }
  return Unit{};
}

H2Error H2Session::fail(int lib_error, std::string_view what) {
  failed_ = true;
  H2Error e = lib_failure(lib_error, what);
  uint32_t code = NGHTTP2_PROTOCOL_ERROR;
  if (lib_error == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
    e.kind = H2ErrorKind::bad_preface;
  } else if (lib_error == NGHTTP2_ERR_FLOODED) {
    // The peer does not read what we owe it; writing more only feeds the flood.
    e.kind = H2ErrorKind::flooded;
    ++stats_.flood_errors;
    write_closed_ = true;
    return e;
  } else if (lib_error == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
    e.kind = H2ErrorKind::flooded;
    ++stats_.flood_errors;
    code = NGHTTP2_ENHANCE_YOUR_CALM;
  } else if (lib_error == NGHTTP2_ERR_NOMEM || lib_error == NGHTTP2_ERR_CALLBACK_FAILURE) {
    code = NGHTTP2_INTERNAL_ERROR;
  }
  local_goaway_ = true;
  // Queue a GOAWAY so the peer learns why; should_close() turns true once it is written.
  if (nghttp2_session_terminate_session(session_, code) != 0) write_closed_ = true;
  return e;
}

Expected<Unit, H2Error> H2Session::check_session_open() const {
  if (failed_) return unexpected(error(H2ErrorKind::session_closed, "session failed"));
  return Unit{};
}

Expected<size_t, H2Error> H2Session::receive(std::span<const uint8_t> bytes) {
  if (auto ok = check_session_open(); !ok) return unexpected(ok.error());
  const ssize_t rv = nghttp2_session_mem_recv(session_, bytes.data(), bytes.size());
  if (rv < 0) return unexpected(fail(static_cast<int>(rv), "receive"));
  stats_.bytes_in += static_cast<uint64_t>(rv);
  credit_dropped_bytes();
  return static_cast<size_t>(rv);
}

std::optional<H2Event> H2Session::next_event() {
  while (!events_.empty()) {
    std::optional<H2Event> ev = std::move(events_.front());
    events_.pop_front();
    ++popped_;
    if (ev.has_value()) return ev;
  }
  return std::nullopt;
}

Expected<size_t, H2Error> H2Session::produce(std::string& out, size_t max_bytes) {
  size_t written = 0;
  if (write_closed_) return written;
  // Resets due since the last call go behind everything that call serialized (see
  // reset_after_response), so they never share a write with the response they follow; while a
  // tail of that output is still carried over, they wait one more call.
  if (carry_.empty() && !resets_due_.empty()) {
    if (!failed_) {
      for (const int32_t id : resets_due_) reset_if_peer_sending(id);
    }
    resets_due_.clear();
  }
  if (carry_off_ < carry_.size()) {
    const size_t n = std::min(carry_.size() - carry_off_, max_bytes);
    out.append(carry_, carry_off_, n);
    carry_off_ += n;
    written += n;
    if (carry_off_ == carry_.size()) {
      carry_.clear();
      carry_off_ = 0;
    }
  }
  // mem_send hands out one frame per call; keep calling so frames coalesce into one write.
  while (written < max_bytes && carry_.empty()) {
    const uint8_t* data = nullptr;
    const ssize_t rv = nghttp2_session_mem_send(session_, &data);
    if (rv < 0) {
      stats_.bytes_out += written;
      H2Error e = fail(static_cast<int>(rv), "produce");
      write_closed_ = true;
      return unexpected(std::move(e));
    }
    if (rv == 0) break;
    const auto len = static_cast<size_t>(rv);
    const size_t take = std::min(len, max_bytes - written);
    out.append(reinterpret_cast<const char*>(data), take);
    written += take;
    // The chunk is valid only until the next mem_send: keep what did not fit.
    if (take < len) carry_.assign(reinterpret_cast<const char*>(data) + take, len - take);
  }
  stats_.bytes_out += written;
  credit_dropped_bytes();  // streams closed by our GOAWAY may have been withdrawn
  return written;
}

bool H2Session::want_read() const { return !failed_ && nghttp2_session_want_read(session_) != 0; }

bool H2Session::want_write() const {
  if (write_closed_) return false;
  return carry_off_ < carry_.size() || !resets_due_.empty() ||
         nghttp2_session_want_write(session_) != 0;
}

bool H2Session::should_close() const { return !want_read() && !want_write(); }

Expected<Unit, H2Error> H2Session::check_fields(std::span<const H2Header> headers,
                                                size_t pseudo_count, size_t pseudo_size) const {
  if (pseudo_count + headers.size() > settings_.max_send_header_fields) {
    return unexpected(error(H2ErrorKind::invalid_header, "too many header fields"));
  }
  size_t limit = settings_.max_send_header_list_size;
  limit = std::min<size_t>(
      limit, nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE));
  size_t size = pseudo_size;
  for (const H2Header& h : headers) {
    if (std::string_view why = h2_field_problem(h.name, h.value); !why.empty()) {
      // The value is left out on purpose: it may be a secret.
      return unexpected(
          error(H2ErrorKind::invalid_header, "field '" + h.name + "': " + std::string(why)));
    }
    size += h.name.size() + h.value.size() + kH2FieldOverhead;
  }
  if (size > limit) return unexpected(error(H2ErrorKind::invalid_header, "header list too large"));
  return Unit{};
}

Expected<Unit, H2Error> H2Session::submit_response(int32_t stream_id, int status,
                                                   std::span<const H2Header> headers,
                                                   bool end_stream) {
  if (role_ != Role::server) {
    return unexpected(
        error(H2ErrorKind::invalid_argument, "submit_response needs the server role"));
  }
  if (auto ok = check_session_open(); !ok) return ok;
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return unexpected(error(H2ErrorKind::unknown_stream, "no such stream"));
  Stream& st = it->second;
  if (st.headers_submitted) {
    return unexpected(error(H2ErrorKind::stream_state, "response already submitted"));
  }
  // No 1xx: the data plane never uses them (PROTOCOL.md §4.12), and 101 is not HTTP/2.
  if (status < 200 || status > 599) {
    return unexpected(error(H2ErrorKind::invalid_argument, "status outside 200..599"));
  }
  char status_text[4];
  std::to_chars(status_text, status_text + 3, status);
  const std::string_view status_view(status_text, 3);
  if (auto ok = check_fields(headers, 1, 7 + 3 + kH2FieldOverhead); !ok) return ok;

  std::vector<nghttp2_nv> nva;
  nva.reserve(headers.size() + 1);
  nva.push_back(make_nv(":status", status_view));
  for (const H2Header& h : headers) nva.push_back(make_nv(h.name, h.value));

  const bool attach = !(end_stream && st.buffered() == 0);
  nghttp2_data_provider provider{};
  provider.read_callback = H2Callbacks::read_data;
  const int rv = nghttp2_submit_response(session_, stream_id, nva.data(), nva.size(),
                                         attach ? &provider : nullptr);
  if (rv != 0) return unexpected(lib_failure(rv, "submit_response"));
  st.headers_submitted = true;
  st.provider = attach;
  if (end_stream) st.end_requested = true;  // with bytes buffered: END_STREAM after them
  if (!attach) st.local_ended = true;
  return Unit{};
}

Expected<int32_t, H2Error> H2Session::submit_request(
    std::string_view method, std::string_view scheme, std::string_view authority,
    std::string_view path, std::span<const H2Header> headers, bool end_stream,
    std::optional<std::string> protocol) {
  if (role_ != Role::client) {
    return unexpected(error(H2ErrorKind::invalid_argument, "submit_request needs the client role"));
  }
  if (auto ok = check_session_open(); !ok) return unexpected(ok.error());
  if (nghttp2_session_check_request_allowed(session_) == 0) {
    return unexpected(error(H2ErrorKind::session_closed, "no new requests (GOAWAY or ids spent)"));
  }
  if (!is_token(method)) return unexpected(error(H2ErrorKind::invalid_argument, "bad :method"));
  // RFC 9113 §8.5: a plain CONNECT carries only :method and :authority.
  const bool plain_connect = method == "CONNECT" && !protocol.has_value();
  if (plain_connect && authority.empty()) {
    return unexpected(error(H2ErrorKind::invalid_argument, "CONNECT needs :authority"));
  }
  if (!plain_connect && (scheme.empty() || path.empty())) {
    return unexpected(error(H2ErrorKind::invalid_argument, "request needs :scheme and :path"));
  }
  if (protocol.has_value() && (method != "CONNECT" || !is_token(*protocol))) {
    return unexpected(error(H2ErrorKind::invalid_argument, ":protocol needs CONNECT and a token"));
  }

  std::array<std::pair<std::string_view, std::string_view>, 5> pseudo;
  size_t count = 0;
  pseudo[count++] = {":method", method};
  if (!plain_connect) pseudo[count++] = {":scheme", scheme};
  if (!authority.empty()) pseudo[count++] = {":authority", authority};
  if (!plain_connect) pseudo[count++] = {":path", path};
  if (protocol.has_value()) pseudo[count++] = {":protocol", *protocol};
  size_t pseudo_size = 0;
  for (size_t i = 0; i < count; ++i) {
    if (!h2_value_problem(pseudo[i].second).empty()) {
      return unexpected(
          error(H2ErrorKind::invalid_argument, std::string(pseudo[i].first) + " value"));
    }
    pseudo_size += pseudo[i].first.size() + pseudo[i].second.size() + kH2FieldOverhead;
  }
  if (auto ok = check_fields(headers, count, pseudo_size); !ok) return unexpected(ok.error());

  std::vector<nghttp2_nv> nva;
  nva.reserve(count + headers.size());
  for (size_t i = 0; i < count; ++i) nva.push_back(make_nv(pseudo[i].first, pseudo[i].second));
  for (const H2Header& h : headers) nva.push_back(make_nv(h.name, h.value));

  nghttp2_data_provider provider{};
  provider.read_callback = H2Callbacks::read_data;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                            end_stream ? nullptr : &provider, nullptr);
  if (id < 0) return unexpected(lib_failure(id, "submit_request"));
  Stream& st = streams_[id];
  st.headers_submitted = true;
  st.announced = true;
  st.provider = !end_stream;
  st.end_requested = end_stream;
  st.local_ended = end_stream;
  ++stats_.streams_opened;
  return id;
}

Expected<size_t, H2Error> H2Session::write_data(int32_t stream_id, std::span<const uint8_t> bytes) {
  if (auto ok = check_session_open(); !ok) return unexpected(ok.error());
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return unexpected(error(H2ErrorKind::unknown_stream, "no such stream"));
  Stream& st = it->second;
  if (st.end_requested || st.local_ended) {
    return unexpected(error(H2ErrorKind::stream_state, "stream already ended"));
  }
  const size_t buffered = st.buffered();
  const size_t room =
      settings_.outbound_buffer_limit > buffered ? settings_.outbound_buffer_limit - buffered : 0;
  const size_t n = std::min(room, bytes.size());
  st.out.append(reinterpret_cast<const char*>(bytes.data()), n);
  if (n < bytes.size()) st.blocked = true;
  // Not deferred (or not started yet) makes resume_data fail harmlessly.
  if (n > 0 && st.provider) nghttp2_session_resume_data(session_, stream_id);
  return n;
}

Expected<size_t, H2Error> H2Session::write_data(int32_t stream_id, std::string_view bytes) {
  return write_data(stream_id, std::span<const uint8_t>(
                                   reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

Expected<Unit, H2Error> H2Session::end_stream(int32_t stream_id) {
  if (auto ok = check_session_open(); !ok) return ok;
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return unexpected(error(H2ErrorKind::unknown_stream, "no such stream"));
  Stream& st = it->second;
  if (st.end_requested || st.local_ended) return Unit{};
  st.end_requested = true;
  if (st.provider) nghttp2_session_resume_data(session_, stream_id);
  return Unit{};
}

Expected<Unit, H2Error> H2Session::reset_stream(int32_t stream_id, uint32_t error_code) {
  if (auto ok = check_session_open(); !ok) return ok;
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return unexpected(error(H2ErrorKind::unknown_stream, "no such stream"));
  const int rv = nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code);
  if (rv != 0) return unexpected(lib_failure(rv, "reset_stream"));
  // Whatever was buffered will never be sent.
  it->second.out.clear();
  it->second.out_off = 0;
  return Unit{};
}

Expected<Unit, H2Error> H2Session::reset_after_response(int32_t stream_id) {
  if (role_ != Role::server) {
    return unexpected(
        error(H2ErrorKind::invalid_argument, "reset_after_response needs the server role"));
  }
  if (auto ok = check_session_open(); !ok) return ok;
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return unexpected(error(H2ErrorKind::unknown_stream, "no such stream"));
  Stream& st = it->second;
  if (!st.headers_submitted || !st.end_requested) {
    return unexpected(error(H2ErrorKind::stream_state, "the response has not been ended"));
  }
  if (st.end_sent) {
    resets_due_.push_back(stream_id);  // the response is already out
  } else {
    st.reset_when_ended = true;  // on_end_sent makes it due once the response is out
  }
  return Unit{};
}

Expected<Unit, H2Error> H2Session::goaway(uint32_t error_code, std::string_view debug_data,
                                          std::optional<int32_t> last_stream_id) {
  if (auto ok = check_session_open(); !ok) return ok;
  const int32_t last = last_stream_id.value_or(nghttp2_session_get_last_proc_stream_id(session_));
  const int rv =
      nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last, error_code,
                            reinterpret_cast<const uint8_t*>(debug_data.data()), debug_data.size());
  if (rv != 0) return unexpected(lib_failure(rv, "goaway"));
  local_goaway_ = true;
  return Unit{};
}

Expected<Unit, H2Error> H2Session::terminate(uint32_t error_code) {
  if (auto ok = check_session_open(); !ok) return ok;
  const int rv = nghttp2_session_terminate_session(session_, error_code);
  if (rv != 0) return unexpected(lib_failure(rv, "terminate"));
  local_goaway_ = true;
  return Unit{};
}

Expected<Unit, H2Error> H2Session::ping(uint64_t opaque) {
  if (auto ok = check_session_open(); !ok) return ok;
  std::array<uint8_t, 8> data{};
  for (int i = 7; i >= 0; --i) {
    data[static_cast<size_t>(i)] = static_cast<uint8_t>(opaque & 0xff);
    opaque >>= 8;
  }
  const int rv = nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, data.data());
  if (rv != 0) return unexpected(lib_failure(rv, "ping"));
  return Unit{};
}

Expected<Unit, H2Error> H2Session::consume(int32_t stream_id, size_t n) {
  if (n == 0 || failed_) return Unit{};
  if (stream_id <= 0) return unexpected(error(H2ErrorKind::invalid_argument, "stream id"));
  // nghttp2 credits the connection window even when the stream has gone.
  const int rv = nghttp2_session_consume(session_, stream_id, n);
  if (rv != 0) return unexpected(lib_failure(rv, "consume"));
  return Unit{};
}

size_t H2Session::outbound_buffered(int32_t stream_id) const {
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? 0 : it->second.buffered();
}

int32_t H2Session::remote_window(int32_t stream_id) const {
  return nghttp2_session_get_stream_remote_window_size(session_, stream_id);
}

int32_t H2Session::connection_remote_window() const {
  return nghttp2_session_get_remote_window_size(session_);
}

void H2Session::close_stream(int32_t stream_id, uint32_t error_code) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  const Stream st = std::move(it->second);
  streams_.erase(it);
  ++stats_.streams_closed;
  // A stream the owner never heard of (its header block was refused) closes silently.
  if (!st.announced) return;
  if (st.headers_queued && st.headers_seq >= popped_) {
    // Opened and closed before the owner looked (the rapid-reset pattern): withdraw it whole.
    withdraw_events(stream_id, st.headers_seq);
    ++stats_.requests_dropped_unseen;
    return;
  }
  push_event(H2StreamClosed{stream_id, error_code, st.reset_by_peer});
}

// Called from the frame-sent callback once the frame carrying our END_STREAM is serialized: a
// RST_STREAM submitted after this cannot drop any part of the response. It is submitted by the
// next produce(), not here, so that it travels in a later write than the response.
void H2Session::on_end_sent(int32_t stream_id) {
  auto it = streams_.find(stream_id);
  if (it == streams_.end()) return;
  it->second.end_sent = true;
  if (it->second.reset_when_ended) resets_due_.push_back(stream_id);
}

void H2Session::reset_if_peer_sending(int32_t stream_id) {
  // Once the peer has ended too, nghttp2 closes the stream cleanly by itself.
  if (nghttp2_session_get_stream_remote_close(session_, stream_id) != 0) return;
  (void)nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_NO_ERROR);
}

void H2Session::withdraw_events(int32_t stream_id, uint64_t from_seq) {
  for (auto i = static_cast<size_t>(from_seq - popped_); i < events_.size(); ++i) {
    std::optional<H2Event>& ev = events_[i];
    if (!ev.has_value()) continue;
    if (const auto* req = std::get_if<H2RequestHeaders>(&*ev);
        req != nullptr && req->stream_id == stream_id) {
      ev.reset();
    } else if (const auto* d = std::get_if<H2Data>(&*ev);
               d != nullptr && d->stream_id == stream_id) {
      dropped_unconsumed_ += d->bytes.size();  // nobody will consume these: credit them here
      ev.reset();
    }
  }
}

void H2Session::credit_dropped_bytes() {
  if (dropped_unconsumed_ == 0 || failed_) return;
  // The stream is gone, so only the connection window is owed.
  nghttp2_session_consume_connection(session_, dropped_unconsumed_);
  dropped_unconsumed_ = 0;
}

H2Data* H2Session::open_data_tail(int32_t stream_id) {
  if (events_.empty() || !events_.back().has_value()) return nullptr;
  auto* last = std::get_if<H2Data>(&*events_.back());
  return last != nullptr && last->stream_id == stream_id && !last->end_stream ? last : nullptr;
}

void H2Session::push_data_end(int32_t stream_id) {
  if (H2Data* last = open_data_tail(stream_id)) {
    last->end_stream = true;
    return;
  }
  push_event(H2Data{stream_id, {}, true});
}

}  // namespace inkwire::proto
