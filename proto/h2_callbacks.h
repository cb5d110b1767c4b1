#pragma once
// The nghttp2 callbacks behind H2Session (internal to proto/). They run inside mem_recv/mem_send
// and only record events and counters on the session; they never call out to the owner.

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>

namespace inkwire::proto {

class H2Session;

inline constexpr size_t kH2FieldOverhead = 32;  // RFC 9113 §6.5.2: name + value + 32 per field

struct H2Callbacks {
  static void install(nghttp2_session_callbacks* callbacks);
  // The data source of every stream we send a body on: serves the stream's outbound buffer and
  // defers (NGHTTP2_ERR_DEFERRED) when it is empty and not ended.
  static ssize_t read_data(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source*, void* user_data);

 private:
  static H2Session& self(void* user_data);
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                       void* user_data);
  static void finish_headers(H2Session& s, const nghttp2_frame* frame);
  static int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data);
  static int on_data_chunk_recv(nghttp2_session*, uint8_t flags, int32_t stream_id,
                                const uint8_t* data, size_t len, void* user_data);
  static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                             void* user_data);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user_data);
  static int on_frame_not_send(nghttp2_session* session, const nghttp2_frame* frame, int lib_error,
                               void* user_data);
  static int on_invalid_frame_recv(nghttp2_session*, const nghttp2_frame*, int lib_error,
                                   void* user_data);
  static int on_error(nghttp2_session*, int lib_error, const char* msg, size_t len,
                      void* user_data);
};

}  // namespace inkwire::proto
