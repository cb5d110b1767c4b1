#include "proto/h2_callbacks.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string>
#include <string_view>

#include "proto/h2_session.h"

namespace inkwire::proto {

void H2Callbacks::install(nghttp2_session_callbacks* callbacks) {
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk_recv);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, on_frame_send);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks, on_frame_not_send);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(callbacks, on_invalid_frame_recv);
  nghttp2_session_callbacks_set_error_callback2(callbacks, on_error);
}

H2Session& H2Callbacks::self(void* user_data) { return *static_cast<H2Session*>(user_data); }

int H2Callbacks::on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
  H2Session& s = self(ud);
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  s.pending_ = H2Session::PendingHeaders{};
  s.pending_.stream_id = frame->hd.stream_id;
  s.pending_.category = frame->headers.cat;
  if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    s.streams_.try_emplace(frame->hd.stream_id);
    ++s.stats_.streams_opened;
  }
  return 0;
}

int H2Callbacks::on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                           size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                           void* ud) {
  H2Session& s = self(ud);
  H2Session::PendingHeaders& p = s.pending_;
  if (p.stream_id != frame->hd.stream_id) return 0;
  p.list_size += namelen + valuelen + kH2FieldOverhead;
  if (p.list_size > s.settings_.max_header_list_size) {
    // nghttp2 answers with RST_STREAM(INTERNAL_ERROR) and skips the rest of the block.
    if (!p.oversized) ++s.stats_.oversized_header_blocks;
    p.oversized = true;
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  std::string_view n(reinterpret_cast<const char*>(name), namelen);
  std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (!n.empty() && n.front() == ':') {
    // nghttp2's HTTP messaging checks already rejected unknown or repeated pseudo-headers.
    if (n == ":method") {
      p.method = v;
    } else if (n == ":scheme") {
      p.scheme = v;
    } else if (n == ":authority") {
      p.authority = v;
    } else if (n == ":path") {
      p.path = v;
    } else if (n == ":protocol") {
      p.protocol = v;
    } else if (n == ":status") {
      p.status = v;
    }
    return 0;
  }
  p.fields.push_back(H2Header{std::string(n), std::string(v)});
  return 0;
}

void H2Callbacks::finish_headers(H2Session& s, const nghttp2_frame* frame) {
  H2Session::PendingHeaders& p = s.pending_;
  const int32_t id = frame->hd.stream_id;
  if (p.stream_id != id || p.oversized) return;
  const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    H2RequestHeaders ev;
    ev.stream_id = id;
    ev.method = std::move(p.method);
    ev.scheme = std::move(p.scheme);
    ev.authority = std::move(p.authority);
    ev.path = std::move(p.path);
    ev.protocol = std::move(p.protocol);
    if (ev.authority.empty()) {
      for (const H2Header& h : p.fields) {
        if (h.name == "host") ev.authority = h.value;
      }
    }
    ev.headers = std::move(p.fields);
    ev.end_stream = end_stream;
    if (auto it = s.streams_.find(id); it != s.streams_.end()) {
      it->second.announced = true;
      it->second.headers_queued = true;
      it->second.headers_seq = s.popped_ + s.events_.size();
    }
    s.push_event(std::move(ev));
  } else if (!p.status.empty()) {
    int status = 0;
    std::from_chars(p.status.data(), p.status.data() + p.status.size(), status);
    if (status >= 200) {  // 1xx interim responses carry nothing we use
      s.push_event(H2ResponseHeaders{id, status, std::move(p.fields), end_stream});
    }
  } else if (end_stream) {
    s.push_data_end(id);  // trailers: only the end of the stream matters to us
  }
  p = H2Session::PendingHeaders{};
}

int H2Callbacks::on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* ud) {
  H2Session& s = self(ud);
  ++s.stats_.frames_in;
  const int32_t id = frame->hd.stream_id;
  switch (frame->hd.type) {
    case NGHTTP2_DATA:
      if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) s.push_data_end(id);
      break;
    case NGHTTP2_HEADERS:
      finish_headers(s, frame);
      break;
    case NGHTTP2_SETTINGS:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
        // nghttp2 has applied the frame by now, so the remote settings are current.
        H2SettingsReceived ev;
        ev.enable_connect_protocol = nghttp2_session_get_remote_settings(
                                         session, NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL) != 0;
        ev.max_concurrent_streams =
            nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        ev.initial_window_size =
            nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE);
        ev.max_frame_size =
            nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_FRAME_SIZE);
        ev.max_header_list_size =
            nghttp2_session_get_remote_settings(session, NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE);
        s.push_event(ev);
      }
      break;
    case NGHTTP2_RST_STREAM:
      ++s.stats_.resets_received;
      if (auto it = s.streams_.find(id); it != s.streams_.end()) it->second.reset_by_peer = true;
      break;
    case NGHTTP2_GOAWAY: {
      ++s.stats_.goaways_received;
      const nghttp2_goaway& g = frame->goaway;
      s.push_event(H2GoAwayReceived{
          g.last_stream_id, g.error_code,
          std::string(reinterpret_cast<const char*>(g.opaque_data), g.opaque_data_len)});
      break;
    }
    case NGHTTP2_PING:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) {
        uint64_t opaque = 0;
        for (uint8_t b : frame->ping.opaque_data) opaque = (opaque << 8) | b;
        s.push_event(H2PingAcked{opaque});
      } else {
        ++s.stats_.pings_received;
      }
      break;
    default:
      break;
  }
  return 0;
}

int H2Callbacks::on_data_chunk_recv(nghttp2_session*, uint8_t, int32_t stream_id,
                                    const uint8_t* data, size_t len, void* ud) {
  H2Session& s = self(ud);
  if (H2Data* last = s.open_data_tail(stream_id)) {
    last->bytes.insert(last->bytes.end(), data, data + len);
    return 0;
  }
  s.push_event(H2Data{stream_id, std::vector<uint8_t>(data, data + len), false});
  return 0;
}

int H2Callbacks::on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                 void* ud) {
  self(ud).close_stream(stream_id, error_code);
  return 0;
}

int H2Callbacks::on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
  H2Session& s = self(ud);
  ++s.stats_.frames_out;
  if (frame->hd.type == NGHTTP2_RST_STREAM) {
    ++s.stats_.resets_sent;
  } else if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
             (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    s.on_end_sent(frame->hd.stream_id);
  } else if (frame->hd.type == NGHTTP2_GOAWAY) {
    ++s.stats_.goaways_sent;
    // A GOAWAY we did not ask for comes from nghttp2's defences: ENHANCE_YOUR_CALM for too many
    // SETTINGS entries and the like, INTERNAL_ERROR from the RST_STREAM rate limiter.
    const uint32_t code = frame->goaway.error_code;
    if (!s.local_goaway_ && (code == NGHTTP2_ENHANCE_YOUR_CALM || code == NGHTTP2_INTERNAL_ERROR)) {
      ++s.stats_.flood_errors;
    }
  }
  return 0;
}

int H2Callbacks::on_frame_not_send(nghttp2_session* session, const nghttp2_frame* frame, int,
                                   void* ud) {
  // A request whose HEADERS never left (GOAWAY arrived first, stream ids ran out) may have no
  // nghttp2 stream to close: tell the owner it was refused, which is safe to retry.
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST &&
      nghttp2_session_find_stream(session, frame->hd.stream_id) == nullptr) {
    self(ud).close_stream(frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
  }
  return 0;
}

int H2Callbacks::on_invalid_frame_recv(nghttp2_session*, const nghttp2_frame*, int, void* ud) {
  ++self(ud).stats_.protocol_errors;
  return 0;
}

int H2Callbacks::on_error(nghttp2_session*, int, const char* msg, size_t len, void* ud) {
  self(ud).last_library_message_.assign(msg, len);
  return 0;
}

ssize_t H2Callbacks::read_data(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                               uint32_t* data_flags, nghttp2_data_source*, void* ud) {
  H2Session& s = self(ud);
  auto it = s.streams_.find(stream_id);
  if (it == s.streams_.end()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  H2Session::Stream& st = it->second;
  const size_t available = st.buffered();
  if (available == 0 && !st.end_requested) return NGHTTP2_ERR_DEFERRED;
  const size_t n = std::min(available, length);
  if (n > 0) std::memcpy(buf, st.out.data() + st.out_off, n);
  st.out_off += n;
  if (st.out_off == st.out.size()) {
    st.out.clear();
    st.out_off = 0;
  } else if (st.out_off >= 64 * 1024 && st.out_off * 2 >= st.out.size()) {
    st.out.erase(0, st.out_off);  // amortised: only once half the buffer is spent
    st.out_off = 0;
  }
  if (st.end_requested && st.buffered() == 0) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    st.local_ended = true;
  }
  if (st.blocked && st.buffered() <= s.settings_.outbound_buffer_limit / 2) {
    st.blocked = false;
    s.push_event(H2StreamWritable{stream_id});
  }
  return static_cast<ssize_t>(n);
}
}  // namespace inkwire::proto
